"""Reshape, Permute and RepeatVector (Keras 3's keras/src/layers/reshaping). None of them
supports masking in Keras: a mask arriving here is dropped, with a warning."""
import math
import operator

import numpy as np

from .base import Layer

__all__ = ["Reshape", "Permute", "RepeatVector"]


def _int_tuple(value, what):
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {value!r}") from None
    out = []
    for item in items:
        try:
            out.append(operator.index(item))
        except TypeError:
            raise TypeError(f"{what} must be a tuple of ints, got {value!r}") from None
    return tuple(out)


def _check_rank(layer, shape, rank):
    if len(shape) != rank:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} expects inputs of {rank} dimensions "
            f"(batch included), got shape {tuple(shape)}")


class Reshape(Layer):
    """(batch, ...) -> (batch, *target_shape); one entry of ``target_shape`` may be -1, the
    size that makes the element count match."""

    _mask_policy = "drop"

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = _int_tuple(target_shape, "Reshape: target_shape")
        if target_shape.count(-1) > 1:
            raise ValueError("The `target_shape` argument must not contain more than one `-1` "
                             f"value. Received: target_shape={target_shape}")
        if any(d < 1 and d != -1 for d in target_shape):
            raise ValueError("Reshape: target_shape entries must be positive (or one -1), got "
                             f"{target_shape}")
        self.target_shape = target_shape

    def _resolved(self, sample_shape):
        """target_shape with its -1 resolved for a sample of ``sample_shape`` (None where a
        size is unknown); a ValueError when the element counts cannot match."""
        target = self.target_shape
        known = math.prod(d for d in target if d != -1)
        if any(d is None for d in sample_shape):
            return tuple(None if d == -1 else d for d in target)
        size = math.prod(sample_shape)
        if -1 in target:
            if known == 0 or size % known:
                raise ValueError(
                    f"Reshape {self.name!r}: an input of shape {tuple(sample_shape)} "
                    f"({size} elements per sample) cannot be reshaped to {target}")
            return tuple(size // known if d == -1 else d for d in target)
        if size != known:
            raise ValueError(
                f"Reshape {self.name!r}: an input of shape {tuple(sample_shape)} ({size} "
                f"elements per sample) cannot be reshaped to {target} ({known} elements)")
        return target

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolved(tuple(input_shape[1:]))

    # x: (B, ...) -> (B, *target_shape)
    def forward(self, x, mask=None, training=False):
        x = self.ops.contiguous(x)
        if training:
            self._cache = tuple(x.shape)
        return x.reshape((x.shape[0],) + self._resolved(tuple(x.shape[1:])))

    def backward(self, grad_y, need_input_grad=True):
        x_shape, self._cache = self._cache, None
        if not need_input_grad:
            return None
        return self.ops.contiguous(grad_y).reshape(x_shape)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


def _transposed(x, axes):
    return np.ascontiguousarray(np.transpose(x, axes))


class Permute(Layer):
    """Reorders the non-batch axes: ``dims`` counts from 1 (the batch axis stays first),
    ``Permute((2, 1))`` swaps steps and features."""

    _mask_policy = "drop"

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = _int_tuple(dims, "Permute: dims")
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices in "
                f"`dims` must be consecutive and start from 1. Received dims={dims}")
        self.dims = dims
        self._axes = (0,) + dims
        self._inverse = tuple(int(a) for a in np.argsort(self._axes))

    def build(self, input_shape):
        _check_rank(self, input_shape, len(self.dims) + 1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[a] for a in self._axes)

    # x: (B, d1, ..., dn) -> (B, d_dims[0], ..., d_dims[n-1])
    def forward(self, x, mask=None, training=False):
        _check_rank(self, x.shape, len(self.dims) + 1)
        return self.ops.apply(_transposed, x, self._axes)

    def backward(self, grad_y, need_input_grad=True):
        if not need_input_grad:
            return None
        return self.ops.apply(_transposed, grad_y, self._inverse)

    def get_config(self):
        config = super().get_config()
        config["dims"] = self.dims
        return config


def _repeated(x, n):
    return np.ascontiguousarray(np.repeat(x[:, None, :], n, axis=1))


def _summed_over_repeats(grad_y):
    return grad_y.sum(axis=1)


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): the input repeated n times."""

    _mask_policy = "drop"

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        try:
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"Expected an integer value for `n`, got {type(n)}.") from None
        if n < 1:
            raise ValueError(f"RepeatVector: n must be a positive int, got {n}")
        self.n = n

    def build(self, input_shape):
        _check_rank(self, input_shape, 2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    # x: (B, D) -> (B, n, D)
    def forward(self, x, mask=None, training=False):
        _check_rank(self, x.shape, 2)
        self._check_input(x)
        return self.ops.apply(_repeated, x, self.n)

    def backward(self, grad_y, need_input_grad=True):
        if not need_input_grad:
            return None
        return self.ops.apply(_summed_over_repeats, grad_y)

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config
