"""Conv1D (channels-last), with Keras's arguments and weights (kernel (k, in, filters), bias
(filters,))."""
from fastseq import activations as _activations
from fastseq import initializers as _initializers
from fastseq._kernels.geometry import CONV_PADDINGS, conv1d_output_length

from .base import Layer
from .core import _check_units, _FusedActivationMixin, _one_int

# Keras 2's keras.layers.convolutional also exported the pooling layers
from .pooling import (  # noqa: F401
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPool1D,
    MaxPooling1D,
)

__all__ = ["Conv1D", "Convolution1D", "conv1d_output_length"]



class Conv1D(_FusedActivationMixin, Layer):
    """1-D convolution over (batch, steps, channels). Drops a mask, with a warning."""

    _mask_policy = "drop"

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 data_format="channels_last", dilation_rate=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._set_weight_options(
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.filters = _check_units(filters, "Conv1D: filters")
        self.kernel_size = _one_int(kernel_size, "Conv1D: kernel_size")
        self.strides = _one_int(strides, "Conv1D: strides")
        self.dilation_rate = _one_int(dilation_rate, "Conv1D: dilation_rate")
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                "Conv1D: strides > 1 is incompatible with dilation_rate > 1 (as Keras)")
        padding = str(padding).lower()
        if padding not in CONV_PADDINGS:
            raise ValueError(f"Conv1D: padding must be one of {CONV_PADDINGS}, got {padding!r}")
        self.padding = padding
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(
                f"Conv1D: only data_format='channels_last' is supported, got {data_format!r}")
        self.data_format = "channels_last"
        if groups != 1:
            raise NotImplementedError(f"Conv1D: groups > 1 is not supported, got {groups}")
        self.groups = 1
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel = self.bias = None

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"Conv1D {self.name!r} expects 3-D input (batch, steps, channels), got shape "
                f"{input_shape}"
            )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Conv1D {self.name!r}: the channel size of the input must be "
                             f"known, got {input_shape}")
        self._check_length(input_shape[1])
        self.kernel = self.add_weight(
            "kernel", (self.kernel_size, channels, self.filters), self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def _check_length(self, length):
        out = conv1d_output_length(length, self.kernel_size, self.strides, self.padding,
                                   self.dilation_rate)
        if out is not None and out < 1:
            raise ValueError(
                f"Conv1D {self.name!r}: an input of {length} steps is too short for "
                f"kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate} with "
                f"padding={self.padding!r} (the output would have {out} steps)"
            )

    def compute_output_shape(self, input_shape):
        length = conv1d_output_length(input_shape[1], self.kernel_size, self.strides,
                                      self.padding, self.dilation_rate)
        return (input_shape[0], length, self.filters)

    # x: (B, L, Cin) -> y: (B, Lout, filters)
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        self._check_length(x.shape[1])
        z, cache = self.ops.conv1d_forward(
            x, self.kernel.data, None if self.bias is None else self.bias.data,
            strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate,
        )
        y = self._activate(z, training)
        self._cache = (cache, y) if training else None
        return y

    def backward(self, grad_y, need_input_grad=True):
        _, y = self._cache
        return self._backward_z(self.ops.activation_backward(self.activation, grad_y, y),
                                need_input_grad)

    def backward_from_logits(self, grad_z, need_input_grad=True):
        return self._backward_z(grad_z, need_input_grad)

    def _backward_z(self, dz, need_input_grad):
        cache, _ = self._cache
        self._cache = None
        self._last_logits = None
        dx, dkernel, dbias = self.ops.conv1d_backward(cache, self.ops.contiguous(dz))
        if self.kernel.trainable:
            self.kernel.grad = dkernel
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = dbias
        return dx if need_input_grad else None

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": (self.kernel_size,),
            "strides": (self.strides,),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": (self.dilation_rate,),
            "groups": self.groups,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
        })
        return config


Convolution1D = Conv1D  # Keras 1 / 2 name
