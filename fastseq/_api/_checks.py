"""Input checks shared by the public kernel wrappers. Each raises an error that names the
argument, what it got and what was expected."""
import numpy as np

from .._kernels.geometry import positive_int  # noqa: F401 (the wrappers' size check)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _numpy_max_ndim():
    """The most dimensions an ndarray may have in the running NumPy (64 on NumPy 2)."""
    for n in (64, 32):
        try:
            np.empty((0,) * n)
            return n
        except ValueError:
            pass
    return 32


MAX_NDIM = _numpy_max_ndim()


def float_array(x, name, ndim=None, dtype=None):
    """``x`` as a C-contiguous float32/float64 ndarray (copied only when it must be).

    Lists are converted (to float32 when ``dtype`` is None, as Keras does); an ndarray of
    any other dtype is a TypeError, the wrong rank a ValueError. ``dtype`` forces a match."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=dtype if dtype is not None else np.float32)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)} (as the weights), got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    return c_contiguous(x)


def c_contiguous(x):
    """``x`` itself when C-contiguous and aligned, else a C-ordered (aligned) copy (0-d
    arrays stay 0-d, unlike np.ascontiguousarray). The C kernels read it through typed
    pointers."""
    return x if x.flags.c_contiguous and x.flags.aligned else x.copy(order="C")


def index_array(x, name):
    """``x`` as a C-contiguous int32/int64 ndarray. Other integer dtypes are widened to
    int64 (uint64 only when its values fit); floats, bools and objects are a TypeError."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if x.size == 0 and x.dtype.kind == "f":  # np.asarray([]) is float64
            x = x.astype(np.int64)
    kind = x.dtype.kind
    if kind not in "iu":
        raise TypeError(f"{name} must be an int32 or int64 array, got dtype {x.dtype}")
    if x.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        if x.dtype == np.dtype(np.uint64) and x.size and x.max() > np.iinfo(np.int64).max:
            raise IndexError(f"{name} holds {x.max()}, which does not fit in int64")
        x = x.astype(np.int64)
    return c_contiguous(x)
