"""Weight constraints with Keras 3's names, defaults and formulas
(keras/src/constraints/constraints.py).

A constraint maps a weight array to its projection, ``constraint(w) -> new w`` (same shape
and dtype; computed in w's dtype, as Keras computes in the variable's). Layers take them as
``kernel_constraint=``, ``recurrent_constraint=``, ``bias_constraint=``,
``embeddings_constraint=``, stored on the weight's Variable as ``var.constraint``; as Keras 3's
optimizers, the training step assigns ``constraint(var)`` to every trainable weight that has
one after each update. Norms are taken over ``axis`` (0 by default: for a Dense kernel
(in, units), each unit's incoming weight vector) and divided with Keras's epsilon, 1e-7.
"""
import numpy as np

from fastseq._keras_objects import deserialize_object, get_object, serialize_object
from fastseq.variables import Variable

__all__ = [
    "Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
    "unit_norm", "min_max_norm", "get", "serialize", "deserialize",
]

_EPSILON = 1e-7  # keras.backend.epsilon()


def _as_float_array(w):
    w = w.value if isinstance(w, Variable) else np.asarray(w)
    return w if w.dtype.kind == "f" else w.astype(np.float64)


def _axis(axis):
    """Keras allows an int or a list of ints (the axes of one filter tensor)."""
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=_axis(axis), keepdims=True))


class Constraint:
    """Base class: ``__call__(w) -> projected w``; the base returns w unchanged."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescales each weight vector (norm over ``axis``) whose norm exceeds ``max_value``:
    ``w * clip(norm, 0, max_value) / (epsilon + norm)``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = _as_float_array(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (w.dtype.type(_EPSILON) + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """``maximum(w, 0)``."""

    def __call__(self, w):
        w = _as_float_array(w)
        return np.maximum(w, w.dtype.type(0))


class UnitNorm(Constraint):
    """``w / (epsilon + norm)``: each weight vector (norm over ``axis``) to unit norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = _as_float_array(w)
        return (w / (w.dtype.type(_EPSILON) + _norms(w, self.axis))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each weight vector's norm towards [min_value, max_value]:
    ``w * desired / (epsilon + norm)``, ``desired = rate * clip(norm, min_value, max_value)
    + (1 - rate) * norm`` (rate 1.0: strict)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        w = _as_float_array(w)
        norms = _norms(w, self.axis)
        desired = (self.rate * np.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return (w * (desired / (w.dtype.type(_EPSILON) + norms))).astype(w.dtype, copy=False)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


# Keras's lowercase names are the classes themselves
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_CLASSES = {cls.__name__: cls for cls in (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = dict(_CLASSES)
_NAMES.update({"constraint": Constraint, "max_norm": MaxNorm, "non_neg": NonNeg,
               "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm})


def serialize(constraint):
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` (None for None)."""
    return serialize_object(constraint, "keras.constraints", _CLASSES)


def deserialize(config, custom_objects=None):
    """A constraint from :func:`serialize`'s dict (Keras 3's or Keras 2's) or a name."""
    return deserialize_object(config, "constraint", _NAMES, custom_objects)


def get(identifier, custom_objects=None):
    """None, a name ('max_norm'), a config dict, a Constraint or a callable -> a constraint."""
    return get_object(identifier, "constraint", _NAMES, custom_objects)
