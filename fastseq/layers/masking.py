"""Masking: masks the steps whose features all equal ``mask_value`` (Keras 3's
keras/src/layers/core/masking.py)."""
import numpy as np

from .base import Layer

__all__ = ["Masking"]


def _kept_steps(x, mask_value, keepdims):
    # x: (B, T, ..., D) -> True where any feature differs from mask_value
    return np.any(x != mask_value, axis=-1, keepdims=keepdims)


def _masked_forward(x, mask_value):
    keep = _kept_steps(x, mask_value, keepdims=True).astype(x.dtype)
    return [x * keep, keep]


class Masking(Layer):
    """``y = x * any(x != mask_value, axis=-1)``; the mask it gives the next layers is that
    ``any`` (the incoming mask is replaced, as Keras)."""

    _mask_policy = "consume"

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(
                mask_value, (int, float, np.integer, np.floating)):
            raise TypeError(f"Masking: mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Masking {self.name!r} expects inputs of at least 2 dimensions "
                             f"(batch, ..., features), got shape {tuple(input_shape)}")

    def compute_mask(self, x, mask=None):
        return _kept_steps(self.ops.to_numpy(x), self.mask_value, keepdims=False)

    # x: (B, T, D) -> (B, T, D), masked steps zeroed
    def forward(self, x, mask=None, training=False):
        self._check_input(x)
        y, keep = self.ops.apply(_masked_forward, x, self.mask_value)
        self._cache = keep if training else None
        return y

    def backward(self, grad_y, need_input_grad=True):
        keep, self._cache = self._cache, None
        if not need_input_grad:
            return None
        return self.ops.multiply(grad_y, keep)

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
