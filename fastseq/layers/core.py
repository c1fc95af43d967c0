"""Dense, Dropout, Flatten and Activation."""
import math

import numpy as np

from fastseq import activations as _activations
from fastseq import initializers as _initializers

from .base import Layer

__all__ = ["Dense", "Dropout", "Flatten", "Activation"]


def _reject_unsupported(layer_name, **options):
    for key, value in options.items():
        if value is not None:
            raise NotImplementedError(
                f"{layer_name}: {key} is not supported by fastseq (got {value!r})"
            )


def _one_int(value, what):
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{what} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return _check_units(value, what)


def _check_units(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


class _FusedActivationMixin:
    """For layers that end in an activation: with ``_keep_logits`` set (by the model, when
    the loss can take the pre-activation values, e.g. binary cross-entropy after a sigmoid)
    the forward keeps the logits (``_last_logits``, also in inference, for the evaluation
    loss) and ``backward_from_logits`` skips the activation's derivative."""

    _keep_logits = False
    _last_logits = None

    def _activate(self, z, training):
        ops = self.ops
        if self._keep_logits and self.activation.name != "linear":
            self._last_logits = z
            return ops.activation_forward(self.activation, z, out=ops.empty_like(z))
        self._last_logits = None
        return ops.activation_forward(self.activation, z, out=z)


class Dense(_FusedActivationMixin, Layer):
    """``y = activation(x @ kernel + bias)`` on the last axis; kernel (in, units), bias
    (units,). Passes a mask on, as Keras."""

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._set_weight_options(
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.units = _check_units(units, "Dense: units")
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel = None
        self.bias = None

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"Dense {self.name!r}: input must be at least 2-D, got shape {input_shape}")
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to Dense {self.name!r} should be defined, "
                f"found None (input shape {input_shape}); give the model a fixed input "
                "length (e.g. Embedding(..., input_length=...)) before Flatten"
            )
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    # x: (..., in) -> y: (..., units)
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        ops = self.ops
        in_dim = self.kernel.shape[0]
        x2 = x.reshape(x.size // in_dim, in_dim)
        z = ops.matmul(x2, self.kernel.data)
        if self.bias is not None:
            ops.bias_add(z, self.bias.data)
        y = self._activate(z, training)
        if training:
            self._cache = (x2, y, x.shape)
        out_shape = tuple(x.shape[:-1]) + (self.units,)
        if self._last_logits is not None:
            self._last_logits = self._last_logits.reshape(out_shape)
        return y.reshape(out_shape)

    # grad_y: (..., units) -> grad_x: (..., in)
    def backward(self, grad_y, need_input_grad=True):
        _, y, _ = self._cache
        dz = self.ops.activation_backward(self.activation, grad_y.reshape(y.shape), y)
        return self._backward_z(dz, need_input_grad)

    def backward_from_logits(self, grad_z, need_input_grad=True):
        return self._backward_z(grad_z.reshape(grad_z.size // self.units, self.units),
                                need_input_grad)

    def _backward_z(self, dz, need_input_grad):
        x2, _, x_shape = self._cache
        self._cache = None
        self._last_logits = None
        ops = self.ops
        if self.kernel.trainable:
            self.kernel.grad = ops.matmul(x2, dz, transpose_a=True)
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = ops.column_sum(dz)
        if not need_input_grad:
            return None
        return ops.matmul(dz, self.kernel.data, transpose_b=True).reshape(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
        })
        return config


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of its inputs in training and scales the rest by
    1 / (1 - rate); the identity in inference."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)):
            raise TypeError(f"Dropout: rate must be a float, got {type(rate).__name__}")
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _random(self, shape):
        if self._rng is not None:
            return self._rng.random(shape, dtype=self.dtype)
        from fastseq.utils import get_rng

        return get_rng().random(shape, dtype=self.dtype)

    def _training_changes_forward(self):
        return self.rate > 0

    def forward(self, x, mask=None, training=False):
        if not training or self.rate == 0:
            self._cache = None
            return x
        shape = tuple(x.shape)
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(
                    f"Dropout {self.name!r}: noise_shape {self.noise_shape} does not match "
                    f"the input rank {x.ndim}"
                )
            shape = tuple(s if n is None else n for n, s in zip(self.noise_shape, x.shape))
        keep = self._random(shape) >= self.rate
        scale_mask = keep.astype(x.dtype)
        scale_mask *= 1.0 / (1.0 - self.rate)
        scale_mask = self.ops.asarray(scale_mask)
        self._cache = scale_mask
        return self.ops.multiply(x, scale_mask)

    def backward(self, grad_y, need_input_grad=True):
        scale_mask, self._cache = self._cache, None
        if not need_input_grad:
            return None
        if scale_mask is None:
            return grad_y
        if tuple(grad_y.shape) == tuple(scale_mask.shape):
            return self.ops.multiply(grad_y, scale_mask, out=grad_y)
        return self.ops.multiply(grad_y, scale_mask)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        return config


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...). Drops a mask, with a warning."""

    _mask_policy = "drop"

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten: unknown data_format {data_format!r}")
        self.data_format = data_format

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0], None)
        return (input_shape[0], int(np.prod(rest)) if rest else 1)

    def forward(self, x, mask=None, training=False):
        if x.ndim < 1:
            raise ValueError(f"Flatten {self.name!r}: input must have a batch axis, got a scalar")
        if training:
            self._cache = tuple(x.shape)
        if self.data_format == "channels_first" and x.ndim > 2:
            # Keras flattens channels_first inputs as if channels-last
            x = self.ops.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, grad_y, need_input_grad=True):
        x_shape, self._cache = self._cache, None
        if not need_input_grad:
            return None
        if self.data_format == "channels_first" and len(x_shape) > 2:
            moved = (x_shape[0],) + tuple(x_shape[2:]) + (x_shape[1],)
            return self.ops.moveaxis(grad_y.reshape(moved), -1, 1)
        return grad_y.reshape(x_shape)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Activation(_FusedActivationMixin, Layer):
    """Applies an activation by name ('relu', 'sigmoid', 'tanh', 'softmax', 'linear')."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def forward(self, x, mask=None, training=False):
        # a new array: the previous layer may keep x for its own backward
        keep = self._keep_logits and self.activation.name != "linear"
        self._last_logits = x if keep else None
        ops = self.ops
        y = ops.activation_forward(self.activation, x, out=ops.empty_like(x))
        if training:
            self._cache = y
        return y

    def backward(self, grad_y, need_input_grad=True):
        y, self._cache = self._cache, None
        self._last_logits = None
        if not need_input_grad:
            return None
        return self.ops.activation_backward(self.activation, grad_y, y)

    def backward_from_logits(self, grad_z, need_input_grad=True):
        self._cache = None
        self._last_logits = None
        return grad_z if need_input_grad else None

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation.name
        return config
