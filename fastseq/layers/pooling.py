"""MaxPooling1D, GlobalAveragePooling1D and GlobalMaxPooling1D (channels-last)."""
from fastseq._kernels.geometry import POOL_PADDINGS, max_pool1d_output_length

from .base import Layer
from .core import _one_int

__all__ = ["MaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPool1D",
           "GlobalAvgPool1D", "GlobalAveragePool1D", "GlobalMaxPool1D"]


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


class MaxPooling1D(Layer):
    """Max over windows of ``pool_size`` steps (strides default to pool_size). Drops a mask,
    with a warning."""

    _mask_policy = "drop"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last",
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _one_int(pool_size, "MaxPooling1D: pool_size")
        self.strides = (self.pool_size if strides is None
                        else _one_int(strides, "MaxPooling1D: strides"))
        padding = str(padding).lower()
        if padding not in POOL_PADDINGS:
            raise ValueError(f"MaxPooling1D: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self.data_format = _channels_last(data_format, "MaxPooling1D")

    def _output_length(self, length):
        return max_pool1d_output_length(length, self.pool_size, self.strides, self.padding)

    def _check_length(self, length):
        out = self._output_length(length)
        if out is not None and out < 1:
            raise ValueError(
                f"MaxPooling1D {self.name!r}: an input of {length} steps is shorter than "
                f"pool_size={self.pool_size} with padding='valid'"
            )

    def build(self, input_shape):
        _check_3d(self, input_shape)
        self._check_length(input_shape[1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._output_length(input_shape[1]), input_shape[2])

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

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": (self.pool_size,), "strides": (self.strides,),
                       "padding": self.padding, "data_format": self.data_format})
        return config


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
GlobalAvgPool1D = GlobalAveragePool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
