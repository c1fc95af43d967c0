"""Weight and activity penalties with Keras 3's names, defaults and formulas
(keras/src/regularizers/regularizers.py).

A regularizer is called on an array (or a :class:`~fastseq.variables.Variable`) and returns
the penalty as a Python float, summed in float64; ``gradient(x)`` returns d(penalty)/dx with
x's shape and dtype (L1's is ``l1 * sign(x)``, 0 at 0, the subgradient TensorFlow and torch
take). Layers take them as ``kernel_regularizer=``, ``recurrent_regularizer=``,
``bias_regularizer=``, ``embeddings_regularizer=`` (stored on the weight's Variable as
``var.regularizer``) and ``activity_regularizer=`` (on the layer).

How Keras 3 uses them (the training step follows it): every trainable weight's penalty
``regularizer(weight)`` is added to the loss as it is; an activity regularizer's penalty on
a layer's output is divided by the batch size (``output.shape[0]``) first; both are part of
the loss that is minimized and of the loss that train_on_batch, fit's History and evaluate
report.

Names for :func:`get` (Keras 3's, plus 'l1_l2'): 'l1' / 'L1' -> L1(0.01), 'l2' / 'L2' ->
L2(0.01), 'l1l2' / 'L1L2' -> L1L2(0.0, 0.0), 'orthogonal_regularizer' /
'OrthogonalRegularizer' -> OrthogonalRegularizer(0.01, 'rows'). 'l1_l2' -> L1L2(l1=0.01,
l2=0.01), as Keras 3's docs and Keras 2 give it (Keras 3.15's ``get`` itself does not know
that name). As in Keras 3, ``l1``, ``l2`` and ``l1_l2`` are the classes themselves, so
``l1_l2()`` has l1 = l2 = 0.0 (Keras 2's function had 0.01 for both).
"""
import math

import numpy as np

from fastseq._keras_objects import deserialize_object, get_object, serialize_object
from fastseq.variables import Variable

__all__ = [
    "Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
    "orthogonal_regularizer", "get", "serialize", "deserialize",
]

_EPSILON = 1e-7  # keras.backend.epsilon(): the smallest norm OrthogonalRegularizer divides by


def _as_array(x):
    return x.value if isinstance(x, Variable) else np.asarray(x)


def _float_gradient(x):
    """x as an array, and the float dtype its gradient has (x's own when x is float)."""
    x = _as_array(x)
    return x, (x.dtype if x.dtype.kind == "f" else np.dtype(np.float64))


def _penalty_factor(value, name):
    # Keras's validate_float_arg: a finite, non-negative number
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float, "
                         f"got {name}={value!r}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x) -> float`` (the penalty), ``gradient(x) -> array``,
    ``get_config()`` / ``from_config(config)``. The base itself penalizes nothing."""

    def __call__(self, x):
        return 0.0

    def gradient(self, x):
        if type(self).__call__ is not Regularizer.__call__:
            raise NotImplementedError(
                f"{type(self).__name__} defines a penalty but no gradient(x); fastseq trains "
                "with an explicit gradient: implement gradient(x) -> array of x's shape")
        x, dtype = _float_gradient(x)
        return np.zeros(x.shape, dtype=dtype)

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _penalty_factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _penalty_factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        x = _as_array(x)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.sum(np.abs(x), dtype=np.float64))
        if self.l2:
            penalty += self.l2 * float(np.sum(np.square(x, dtype=np.float64)))
        return penalty

    def gradient(self, x):
        x, dtype = _float_gradient(x)
        grad = np.zeros(x.shape, dtype=dtype)
        if self.l1:
            grad += self.l1 * np.sign(x)
        if self.l2:
            grad += (2.0 * self.l2) * x
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|x|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x ** 2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a 2-D weight towards orthogonality:
    ``factor * 0.5 * sum(|P - diag(P)|) / (n (n - 1) / 2)`` with ``P = N @ N.T``, N the rows
    (columns) divided by their L2 norm (at least epsilon), n their count. With a single row
    (column) there is no pair: the penalty is 0 (Keras divides 0 by 0 there)."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _penalty_factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError('Invalid value for argument `mode`. Expected one of '
                             f'{{"rows", "columns"}}. Received: mode={mode!r}')
        self.mode = mode

    def _vectors(self, x):
        """The vectors to decorrelate as rows (float64), and whether x was transposed."""
        x = _as_array(x)
        if x.ndim != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={x.shape}")
        vectors = x.astype(np.float64)
        return (vectors if self.mode == "rows" else vectors.T), x

    def _normalized(self, vectors):
        # Keras's normalize on tensors: x * min(1 / norm, 1 / epsilon)
        norms = np.sqrt(np.sum(np.square(vectors), axis=1, keepdims=True))
        inv_norms = np.minimum(1.0 / np.maximum(norms, 1e-300), 1.0 / _EPSILON)
        return vectors * inv_norms, inv_norms, norms > _EPSILON

    def _scale(self, count):
        return self.factor * 0.5 / (count * (count - 1.0) / 2.0)

    def __call__(self, x):
        vectors, _ = self._vectors(x)
        count = vectors.shape[0]
        if count < 2:
            return 0.0
        unit, _, _ = self._normalized(vectors)
        product = unit @ unit.T
        np.fill_diagonal(product, 0.0)
        return self._scale(count) * float(np.sum(np.abs(product)))

    def gradient(self, x):
        vectors, x = self._vectors(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        count = vectors.shape[0]
        if count < 2:
            return np.zeros(x.shape, dtype=dtype)
        unit, inv_norms, normalized = self._normalized(vectors)
        product = unit @ unit.T
        d_product = np.sign(product) * self._scale(count)
        np.fill_diagonal(d_product, 0.0)
        d_unit = 2.0 * d_product @ unit  # d_product is symmetric
        # through unit = v / |v|: (g - unit (unit . g)) / |v|; where |v| <= epsilon
        # unit = v / epsilon, a plain scaling
        radial = np.sum(unit * d_unit, axis=1, keepdims=True)
        d_vectors = np.where(normalized, d_unit - unit * radial, d_unit) * inv_norms
        if self.mode == "columns":
            d_vectors = d_vectors.T
        return d_vectors.astype(dtype)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras 3: the lowercase names are the classes themselves
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_CLASSES = {cls.__name__: cls for cls in (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)}
_NAMES = dict(_CLASSES)
_NAMES.update({"regularizer": Regularizer, "l1": L1, "l2": L2, "l1l2": L1L2,
               "orthogonal_regularizer": OrthogonalRegularizer,
               "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)})


def _trainable(regularizer):
    """fastseq trains with explicit gradients: a regularizer without ``gradient`` (a plain
    function, which Keras differentiates itself) is refused here, before any training."""
    if regularizer is not None and not callable(getattr(regularizer, "gradient", None)):
        name = getattr(regularizer, "__name__", type(regularizer).__name__)
        raise TypeError(
            f"The regularizer {name!r} has no gradient(x): fastseq computes gradients "
            "explicitly, so a custom regularizer subclasses fastseq.regularizers.Regularizer "
            "with __call__(x) -> float and gradient(x) -> array of x's shape")
    return regularizer


def serialize(regularizer):
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` (None for None)."""
    return serialize_object(regularizer, "keras.regularizers", _CLASSES)


def deserialize(config, custom_objects=None):
    """A regularizer from :func:`serialize`'s dict (Keras 3's or Keras 2's) or a name."""
    return _trainable(deserialize_object(config, "regularizer", _NAMES, custom_objects))


def get(identifier, custom_objects=None):
    """None, a name ('l2'), a config dict or a Regularizer (an object with ``__call__`` and
    ``gradient``) -> a regularizer."""
    return _trainable(get_object(identifier, "regularizer", _NAMES, custom_objects))
