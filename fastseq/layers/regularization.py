"""SpatialDropout1D: dropout of whole channels (Keras 3's
keras/src/layers/regularization/spatial_dropout.py)."""
from .core import Dropout

__all__ = ["SpatialDropout1D"]


class SpatialDropout1D(Dropout):
    """Drops whole channels of a (batch, steps, channels) input: in training each sample's
    channel is zeroed with probability ``rate`` at every step at once (a (B, 1, C) mask) and
    the kept ones are scaled by 1 / (1 - rate); the identity in inference. Passes a mask
    on, as Keras's Dropout."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, noise_shape=(None, 1, None), seed=seed, **kwargs)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"SpatialDropout1D {self.name!r} expects 3-D input (batch, steps, channels), "
                f"got shape {tuple(input_shape)}")

    def forward(self, x, mask=None, training=False):
        if x.ndim != 3:
            raise ValueError(
                f"SpatialDropout1D {self.name!r} expects 3-D input (batch, steps, channels), "
                f"got shape {tuple(x.shape)}")
        return super().forward(x, mask=mask, training=training)

    def get_config(self):
        # Keras's config: rate and seed (the noise shape is the layer's own)
        config = super().get_config()
        config.pop("noise_shape")
        return config
