"""MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D and GlobalMaxPooling1D
(channels-last)."""
import numpy as np

from fastseq._kernels.geometry import (
    POOL_PADDINGS,
    max_pool1d_output_geometry,
    max_pool1d_output_length,
)

from .base import Layer
from .core import _one_int

__all__ = ["MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
           "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D", "GlobalAveragePool1D", "GlobalMaxPool1D"]


def _check_3d(layer, shape):
    if len(shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} expects 3-D input (batch, steps, channels), "
            f"got shape {shape}"
        )


def _channels_last(data_format, what):
    if data_format not in (None, "channels_last"):
        raise NotImplementedError(
            f"{what}: only data_format='channels_last' is supported, got {data_format!r}")
    return "channels_last"


class _Pooling1D(Layer):
    """Windows of ``pool_size`` steps (strides default to pool_size), Keras's 'valid' /
    'same' geometry (_kernels/geometry.py). Drops a mask, with a warning (Keras's pooling
    layers do not support masking)."""

    _mask_policy = "drop"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last",
                 **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        self.pool_size = _one_int(pool_size, f"{what}: pool_size")
        self.strides = (self.pool_size if strides is None
                        else _one_int(strides, f"{what}: strides"))
        padding = str(padding).lower()
        if padding not in POOL_PADDINGS:
            raise ValueError(f"{what}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self.data_format = _channels_last(data_format, what)

    def _output_length(self, length):
        return max_pool1d_output_length(length, self.pool_size, self.strides, self.padding)

    def _check_length(self, length):
        out = self._output_length(length)
        if out is not None and out < 1:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: an input of {length} steps is shorter "
                f"than pool_size={self.pool_size} with padding='valid'"
            )

    def build(self, input_shape):
        _check_3d(self, input_shape)
        self._check_length(input_shape[1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._output_length(input_shape[1]), input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": (self.pool_size,), "strides": (self.strides,),
                       "padding": self.padding, "data_format": self.data_format})
        return config


class MaxPooling1D(_Pooling1D):
    """Max over windows of ``pool_size`` steps; in 'same' padding the padded steps never
    win."""

    # x: (B, L, C) -> y: (B, Lout, C)
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        self._check_length(x.shape[1])
        y, cache = self.ops.max_pool1d_forward(
            x, pool_size=self.pool_size, strides=self.strides, padding=self.padding
        )
        self._cache = cache if training else None
        return y

    def backward(self, grad_y, need_input_grad=True):
        cache, self._cache = self._cache, None
        if not need_input_grad:
            return None
        return self.ops.max_pool1d_backward(cache, self.ops.contiguous(grad_y))


def _average_windows(length, pool_size, strides, padding):
    """(first step of each window (Lout,), real steps in each window (Lout,)): a 'same'
    window counts only the real steps it covers, as Keras's average pooling does."""
    out_length, pad_left = max_pool1d_output_geometry(length, pool_size, strides, padding)
    starts = np.arange(out_length) * strides - pad_left
    counts = np.minimum(starts + pool_size, length) - np.maximum(starts, 0)
    return starts, counts


# x: (B, L, C) -> y: (B, Lout, C), the mean of each window's real steps
def _average_pool1d_forward(x, pool_size, strides, padding):
    starts, counts = _average_windows(x.shape[1], pool_size, strides, padding)
    y = np.zeros((x.shape[0], len(starts), x.shape[2]), dtype=x.dtype)
    for offset in range(pool_size):  # one window offset at a time: no (B, Lout, pool, C)
        steps = starts + offset
        real = (steps >= 0) & (steps < x.shape[1])
        y[:, real] += x[:, steps[real]]
    y /= counts.astype(x.dtype)[None, :, None]
    return y


# grad_y: (B, Lout, C) -> grad_x: (B, L, C)
def _average_pool1d_backward(grad_y, length, pool_size, strides, padding):
    starts, counts = _average_windows(length, pool_size, strides, padding)
    share = grad_y / counts.astype(grad_y.dtype)[None, :, None]
    grad_x = np.zeros((grad_y.shape[0], length, grad_y.shape[2]), dtype=grad_y.dtype)
    for offset in range(pool_size):
        steps = starts + offset
        real = (steps >= 0) & (steps < length)
        # one offset never meets a step twice (strides >= 1): plain indexed adds are exact
        grad_x[:, steps[real]] += share[:, real]
    return grad_x


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps; a 'same' window at an edge averages only
    its real steps (Keras: the window sum over the count of real entries)."""

    # x: (B, L, C) -> y: (B, Lout, C)
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        self._check_length(x.shape[1])
        y = self.ops.apply(_average_pool1d_forward, x, self.pool_size, self.strides,
                           self.padding)
        self._cache = x.shape[1] if training else None
        return y

    def backward(self, grad_y, need_input_grad=True):
        length, self._cache = self._cache, None
        if not need_input_grad:
            return None
        return self.ops.apply(_average_pool1d_backward, grad_y, length, self.pool_size,
                              self.strides, self.padding)


class _GlobalPooling1D(Layer):
    """(B, L, C) -> (B, C) (or (B, 1, C) with keepdims); masked steps are ignored and the
    mask stops here."""

    _mask_policy = "consume"
    _forward_name = _backward_name = None

    def __init__(self, data_format="channels_last", keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _channels_last(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        _check_3d(self, input_shape)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], 1, input_shape[2])
        return (input_shape[0], input_shape[2])

    def compute_mask(self, x, mask=None):
        return None

    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        if mask is not None and mask.shape != tuple(x.shape[:2]):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: mask of shape {mask.shape} does not fit "
                f"the input {x.shape}"
            )
        y, cache = getattr(self.ops, self._forward_name)(x, mask=mask)
        self._cache = cache if training else None
        if self.keepdims:
            y = y.reshape(y.shape[0], 1, y.shape[1])
        return y

    def backward(self, grad_y, need_input_grad=True):
        cache, self._cache = self._cache, None
        if not need_input_grad:
            return None
        grad_y = self.ops.contiguous(grad_y.reshape(grad_y.shape[0], tuple(grad_y.shape)[-1]))
        return getattr(self.ops, self._backward_name)(cache, grad_y)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps; with a mask, over the unmasked steps only."""

    _forward_name = "global_average_pool1d_forward"
    _backward_name = "global_average_pool1d_backward"


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the steps; with a mask, over the unmasked steps only.

    This differs on purpose from Keras, whose GlobalMaxPooling1D ignores the mask (so padded
    zeros can win the max): fastseq follows the rule that global pooling skips masked
    steps, for max as for average. Without a mask the two agree exactly."""

    _forward_name = "global_max_pool1d_forward"
    _backward_name = "global_max_pool1d_backward"


# Keras's aliases
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalAvgPool1D = GlobalAveragePool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
