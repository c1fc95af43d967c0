"""One thread setting for the three pools fastseq uses: Numba's, OpenMP's (our Cython
kernels) and the BLAS's. Setting them together keeps them from oversubscribing the cores."""
import os

_num_threads = None


def _default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(n):
    """Use ``n`` threads in every fastseq kernel and in the BLAS it calls.

    ``n`` must be an int in [1, number of cores Numba started with] (Numba cannot grow its
    pool after start-up; set ``NUMBA_NUM_THREADS`` before import for more)."""
    global _num_threads
    import numba
    from threadpoolctl import threadpool_limits

    from ._kernels import embedding

    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"set_num_threads: n must be in [1, {numba.config.NUMBA_NUM_THREADS}], got {n}"
        )
    numba.set_num_threads(n)
    embedding.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")
    _num_threads = n


def get_num_threads():
    """The thread count set by :func:`set_num_threads` (default: all cores)."""
    global _num_threads
    if _num_threads is None:
        # worked out once: the kernels ask on every call, and the affinity query is a
        # system call (Numba's pool size is fixed at start-up anyway)
        import numba

        _num_threads = min(_default_threads(), numba.config.NUMBA_NUM_THREADS)
    return _num_threads
