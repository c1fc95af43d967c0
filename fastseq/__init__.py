"""fastseq: fast embedding, LSTM and Conv1D kernels under a Keras-compatible Sequential API.

    from fastseq import Sequential
    from fastseq.layers import Embedding, LSTM, Dense

The kernels are public in :mod:`fastseq.kernels` (plain NumPy arrays in and out).
"""
__version__ = "0.1.0"

import os as _os

# Before libgomp loads: OpenMP threads that spin after a parallel region (libgomp's default
# is ~300k spins) steal the cores from the BLAS threads that run next. On 2 cores that made
# a Dense + Embedding training step 6x slower (8.0 ms vs 1.3 ms measured). A short spin
# keeps back-to-back kernels quick to wake (sleeping waiters cost ~20 us per region) without
# starving the BLAS. A wait policy or spin count the user set is kept.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

from ._threads import get_num_threads, set_num_threads


def _warn_if_serial():
    import warnings

    from ._kernels import embedding

    if not embedding.openmp_enabled():
        warnings.warn(
            "fastseq was built without OpenMP: the Cython kernels run on one thread",
            RuntimeWarning,
            stacklevel=3,
        )


_warn_if_serial()


def __getattr__(name):
    # Sequential and friends are imported on first use so `import fastseq.kernels` stays light.
    if name == "Sequential":
        from .models import Sequential

        return Sequential
    if name in ("set_device", "device", "get_device"):
        from . import _device

        return getattr(_device, name)
    raise AttributeError(f"module 'fastseq' has no attribute {name!r}")


__all__ = ["Sequential", "set_num_threads", "get_num_threads", "__version__"]
