"""Keras 2 module path: ``from keras.layers.embeddings import Embedding`` becomes
``from fastseq.layers.embeddings import Embedding``. The layer lives in
:mod:`fastseq.layers.embedding` (Keras 3's name); this module re-exports its public names."""
from .embedding import *  # noqa: F401,F403
from .embedding import __all__  # noqa: F401
