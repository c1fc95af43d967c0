"""Embedding: integer indices -> rows of a (input_dim, output_dim) weight."""
import numpy as np

from fastseq import initializers as _initializers
from fastseq._api._checks import index_array
from fastseq.variables import SparseGrad

from .base import Layer
from .core import _check_units

__all__ = ["Embedding"]


def as_indices(x, layer_name):
    """Integer indices from ``x``: int arrays pass; floats holding whole numbers (Keras casts
    them) become int64; anything else is an error naming the layer."""
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind in "iu":
        return index_array(x, f"Embedding {layer_name!r}: the input indices")
    if kind == "f":
        if np.isnan(x).any():
            raise ValueError(f"Embedding {layer_name!r}: the input indices contain NaN")
        if not np.isfinite(x).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"Embedding {layer_name!r}: the input indices are floats and the "
                             f"one at position {where} is {x[where]}, not a finite number")
        too_big = np.abs(x) >= 2.0 ** 63
        if too_big.any():
            where = tuple(int(i) for i in np.argwhere(too_big)[0])
            raise IndexError(f"Embedding {layer_name!r}: index {x[where]:g} at position "
                             f"{where} is out of range: it does not fit in int64")
        as_int = x.astype(np.int64)
        if not np.array_equal(as_int, x):
            raise ValueError(
                f"Embedding {layer_name!r} expects integer indices, got floats with a "
                "fractional part"
            )
        return as_int
    raise TypeError(
        f"Embedding {layer_name!r} expects integer indices, got an array of dtype {x.dtype}"
    )


class Embedding(Layer):
    """Keras's Embedding. ``mask_zero=True`` masks index 0 for the following layers;
    ``input_length`` fixes the input length (as Keras 2, for Flatten -> Dense);
    ``weights=[matrix]`` sets the initial weights. Its gradient reaches the optimizer as a
    row-sparse :class:`~fastseq.variables.SparseGrad`."""

    _mask_policy = "consume"
    _takes_indices = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, activity_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        # Keras 2: an Embedding always knows its input shape, (input_length,) or (None,)
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            if input_length is None:
                kwargs["input_shape"] = (None,)
            elif isinstance(input_length, (list, tuple)):
                kwargs["input_shape"] = tuple(input_length)
            else:
                kwargs["input_shape"] = (input_length,)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._set_weight_options(embeddings_regularizer=embeddings_regularizer,
                                 embeddings_constraint=embeddings_constraint)
        self.input_dim = _check_units(input_dim, "Embedding: input_dim")
        self.output_dim = _check_units(output_dim, "Embedding: output_dim")
        self.embeddings_initializer = _initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self.embeddings = None

    def build(self, input_shape):
        if self.embeddings is None:
            self.embeddings = self.add_weight(
                "embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
                regularizer=self.embeddings_regularizer, constraint=self.embeddings_constraint,
            )

    def _ensure_built_for_weights(self):
        # the weight's shape does not depend on the input: build on demand (set_weights
        # before the layer joins a model, as Keras 2's weights= argument)
        if not self.built:
            self._build_for(self._batch_input_shape or (None, None))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, x, mask=None):
        if not self.mask_zero:
            return None
        return x != 0

    def _check_input(self, x):
        expected = self._input_shape
        if expected is not None and x.ndim != len(expected):
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: expected "
                f"ndim={len(expected)} (shape {expected}), found ndim={x.ndim}, full shape "
                f"received: {x.shape}"
            )

    def _accepts_shape(self, shape):
        return self._input_shape is None or len(shape) == len(self._input_shape)

    def checked_indices(self, x):
        """``x`` as int32/int64 indices, checked as :meth:`forward` checks them (the rank;
        floats must hold whole numbers); the range is checked where they are read."""
        self._check_input(x)
        if x.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
            x = as_indices(x, self.name)
        return x

    # indices: (B, T) -> y: (B, T, output_dim)
    def forward(self, x, mask=None, training=False):
        x = self.checked_indices(x)
        y = self.ops.embedding_forward(self.embeddings.data, x)
        if training:
            self._cache = x
        return y

    # grad_y: (B, T, output_dim) -> no input gradient (indices)
    def backward(self, grad_y, need_input_grad=True):
        indices, self._cache = self._cache, None
        if self.embeddings.trainable:
            # Keras has no padding_idx: index 0 gets its gradient like any other row
            rows, values = self.ops.embedding_backward_sparse(
                indices, grad_y, padding_idx=None, num_embeddings=self.input_dim
            )
            self.embeddings.grad = SparseGrad(rows, values)
        return None

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": _initializers.serialize(self.embeddings_initializer),
            "mask_zero": self.mask_zero,
            "input_length": self.input_length,
        })
        return config
