"""The Keras 2.4-2.12 location of the preprocessing layers
(``keras.layers.experimental.preprocessing.TextVectorization``), kept so that old scripts run
with only their imports changed."""
from . import preprocessing

__all__ = ["preprocessing"]
