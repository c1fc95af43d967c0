"""The BLAS kept to the calling thread, for kernels that are themselves the parallelism.

The LSTM's row blocks and the Conv1D's tasks call the BLAS from several threads at once; a
multithreaded BLAS would oversubscribe the cores (and OpenBLAS serializes its multithreaded
calls)."""

_controllers = []


class _SerialBlas:
    """A context in which the BLAS runs each call on the calling thread, restored on exit.
    threadpoolctl's library handles are found once; the switch itself is two C calls per
    library (threadpoolctl's own limit() costs ~50 us)."""

    def __enter__(self):
        if not _controllers:
            # Numba's np.dot calls the BLAS behind SciPy's cython_blas: load it before
            # threadpoolctl looks for the loaded BLAS libraries
            import scipy.linalg.cython_blas  # noqa: F401
            from threadpoolctl import ThreadpoolController

            _controllers.extend(ThreadpoolController().select(user_api="blas").lib_controllers)
        self.saved = []
        for lib in _controllers:
            threads = lib.get_num_threads()
            if threads != 1:
                lib.set_num_threads(1)
                self.saved.append((lib, threads))
        return self

    def __exit__(self, *exc):
        for lib, threads in self.saved:
            lib.set_num_threads(threads)


def serial_blas():
    return _SerialBlas()
