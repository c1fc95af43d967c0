"""LSTM, with Keras's arguments, weights (kernel (D, 4u), recurrent_kernel (u, 4u), bias (4u,),
gates i, f, c, o) and masking."""
import numpy as np

from fastseq import initializers as _initializers

from .base import Layer
from .core import _check_units, _reject_unsupported

__all__ = ["LSTM"]


class LSTM(Layer):
    """Keras's LSTM on (batch, time, features) inputs.

    A mask (from ``Embedding(mask_zero=True)``) makes masked steps keep the state and repeat
    the previous output; it passes on only with ``return_sequences``. ``dropout`` drops input
    features in training (one mask per sequence for all steps, as Keras);
    ``recurrent_dropout`` is not supported. With ``return_state`` the layer returns
    ``[output, h, c]`` and must be the model's last layer."""

    _mask_policy = "consume"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, implementation=2, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, time_major=False,
                 unroll=False, **kwargs):
        super().__init__(**kwargs)
        _reject_unsupported(
            "LSTM", kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
        )
        self.units = _check_units(units, "LSTM: units")
        if activation != "tanh" or recurrent_activation != "sigmoid":
            raise NotImplementedError(
                "LSTM: fastseq's kernels implement activation='tanh' with "
                f"recurrent_activation='sigmoid', got {activation!r} / {recurrent_activation!r}"
            )
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"LSTM: {what} must be in [0, 1), got {rate}")
        if recurrent_dropout:
            raise NotImplementedError(
                "LSTM: recurrent_dropout > 0 is not supported by fastseq's fused LSTM kernel; "
                "use dropout= (input dropout) or a Dropout layer after the LSTM"
            )
        if stateful:
            raise NotImplementedError("LSTM: stateful=True is not supported by fastseq")
        if time_major:
            raise NotImplementedError(
                "LSTM: time_major=True is not supported; inputs are (batch, time, features)")
        self.activation = "tanh"
        self.recurrent_activation = "sigmoid"
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.recurrent_initializer = _initializers.get(recurrent_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.dropout = float(dropout)
        self.recurrent_dropout = 0.0
        self.implementation = implementation
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.kernel = self.recurrent_kernel = self.bias = None

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"LSTM {self.name!r} expects 3-D input (batch, time, features), got shape "
                f"{input_shape}"
            )
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"LSTM {self.name!r}: the feature size of the input must be "
                             f"known, got {input_shape}")
        u = self.units
        self.kernel = self.add_weight("kernel", (in_dim, 4 * u), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (u, 4 * u), self.recurrent_initializer
        )
        if self.use_bias:
            if self.unit_forget_bias:
                bias_init = self.bias_initializer

                def forget_ones(shape, dtype="float32"):
                    # Keras: the forget gate's bias block starts at one
                    return np.concatenate([
                        bias_init((u,), dtype=dtype),
                        np.ones((u,), dtype=dtype),
                        bias_init((2 * u,), dtype=dtype),
                    ])

                self.bias = self.add_weight("bias", (4 * u,), forget_ones)
            else:
                self.bias = self.add_weight("bias", (4 * u,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        out = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out, (batch, self.units), (batch, self.units)]
        return out

    def compute_mask(self, x, mask=None):
        # as Keras's RNN: passed on as given, also with go_backwards (whose outputs come in
        # processing order, so the mask is not reversed with them)
        if self.return_sequences:
            return mask
        return None

    def _training_changes_forward(self):
        return self.dropout > 0

    # x: (B, T, D), mask: (B, T) bool -> (B, T, u) or (B, u) [, h (B, u), c (B, u)]
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        if mask is not None and mask.shape != tuple(x.shape[:2]):
            raise ValueError(
                f"LSTM {self.name!r}: mask of shape {mask.shape} does not fit the input {x.shape}"
            )
        ops = self.ops
        dropout_mask = None
        if training and self.dropout > 0:
            from fastseq.utils import get_rng

            # one dropout mask per sequence and feature, shared by all steps (Keras)
            keep = get_rng().random((x.shape[0], 1, x.shape[2]), dtype=x.dtype) >= self.dropout
            dropout_mask = keep.astype(x.dtype)
            dropout_mask *= 1.0 / (1.0 - self.dropout)
            dropout_mask = ops.asarray(dropout_mask)
            x = ops.multiply(x, dropout_mask)
        outputs, h_last, c_last, cache = ops.lstm_forward(
            x, self.kernel.data, self.recurrent_kernel.data,
            None if self.bias is None else self.bias.data,
            mask=mask, go_backwards=self.go_backwards, training=training,
        )
        self._cache = (cache, dropout_mask) if training else None
        out = outputs if self.return_sequences else h_last
        if self.return_state:
            return [out, h_last, c_last]
        return out

    # grad_y: (B, T, u) with return_sequences, else (B, u) -> grad_x: (B, T, D)
    def backward(self, grad_y, need_input_grad=True):
        if self.return_state:
            raise NotImplementedError(
                f"LSTM {self.name!r}: training through return_state=True is not supported"
            )
        cache, dropout_mask = self._cache
        self._cache = None
        ops = self.ops
        if self.return_sequences:
            grads = ops.lstm_backward(cache, grad_outputs=grad_y)
        else:
            grads = ops.lstm_backward(cache, grad_h_last=grad_y)
        dx, dkernel, drecurrent, dbias = grads[:4]
        if self.kernel.trainable:
            self.kernel.grad = dkernel
        if self.recurrent_kernel.trainable:
            self.recurrent_kernel.grad = drecurrent
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = dbias
        if not need_input_grad:
            return None
        if dropout_mask is not None:
            dx = ops.multiply(dx, dropout_mask, out=dx)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": _initializers.serialize(self.recurrent_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "implementation": self.implementation,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
        })
        return config
