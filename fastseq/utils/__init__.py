"""Utilities: the random seed shared by initializers, shuffling and dropout,
to_categorical, and the Keras progress bar (Progbar)."""
import random

import numpy as np

from .plotting import plot_history
from .progbar import Progbar

__all__ = ["set_random_seed", "get_rng", "to_categorical", "Progbar", "plot_history"]

_rng = np.random.default_rng()


def set_random_seed(seed):
    """Seed every random source fastseq uses (initializers, shuffling, dropout), as well as
    Python's ``random`` and NumPy's global generator, as ``keras.utils.set_random_seed``."""
    global _rng
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    _rng = np.random.default_rng(seed)


def get_rng():
    """The generator behind initializers, shuffling and dropout (reseeded by set_random_seed)."""
    return _rng


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels, as ``keras.utils.to_categorical``:
    (..., ) or (..., 1) ints -> (..., num_classes)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("to_categorical: y must hold integer class labels")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise TypeError(f"to_categorical: y must hold integer class labels, got dtype {y.dtype}")
    shape = y.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {y.min()}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= num_classes:
        raise ValueError(f"to_categorical: label {y.max()} is >= num_classes={num_classes}")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out.reshape(shape + (num_classes,))


# The data pipeline utilities, imported on first use (as the package's submodules).
_LAZY_NAMES = {
    "Sequence": "sequence_data", "PyDataset": "sequence_data",
    "BatchSource": "data_adapter", "is_batch_source": "data_adapter",
    "unpack_batch": "data_adapter",
    "bucket_by_length": "bucketing",
    "timeseries_dataset_from_array": "timeseries",
    "text_dataset_from_directory": "text_dataset",
}
__all__ += list(_LAZY_NAMES)


def __getattr__(name):
    import importlib

    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))
