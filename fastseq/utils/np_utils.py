"""Keras 2's ``keras.utils.np_utils`` path: ``from fastseq.utils.np_utils import
to_categorical`` works as in the tutorials that import it from there."""
from . import to_categorical

__all__ = ["to_categorical"]
