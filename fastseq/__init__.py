"""fastseq: fast embedding, LSTM and Conv1D kernels under a Keras-compatible Sequential API.

    from fastseq import Sequential
    from fastseq.layers import Embedding, LSTM, Dense

The kernels are public in :mod:`fastseq.kernels` (plain NumPy arrays in and out). The public
submodules (``fastseq.layers``, ``fastseq.models``, ``fastseq.preprocessing``, ...) are
attributes of the package, as in Keras, each imported on first use.
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


# Public submodules, reachable as attributes after `import fastseq` (as `keras.layers`), each
# imported on first use so that `import fastseq.kernels` stays light.
_SUBMODULES = (
    "activations", "backend", "callbacks", "constraints", "datasets", "initializers",
    "kernels", "layers", "losses", "metrics", "models", "optimizers", "preprocessing",
    "regularizers", "saving", "utils",
)
# Names imported on first use: the models, Input and the device functions.
_LAZY_NAMES = {"Sequential": "models", "Model": "models", "Input": "layers",
               "set_device": "_device", "device": "_device", "get_device": "_device"}


def __getattr__(name):
    import importlib

    if name in _SUBMODULES:
        # import_module also sets the attribute on this package: __getattr__ runs once
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'fastseq' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_LAZY_NAMES))


__all__ = ["Sequential", "Model", "Input", "set_num_threads", "get_num_threads", "__version__"]
