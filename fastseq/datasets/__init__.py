"""Datasets and pretrained vectors: ``fastseq.datasets.imdb`` (as ``keras.datasets.imdb``)
and ``fastseq.datasets.embeddings`` (GloVe and word2vec files)."""
from . import embeddings, imdb
from .embeddings import KeyedVectors, load_glove, load_word2vec

__all__ = ["embeddings", "imdb", "KeyedVectors", "load_glove", "load_word2vec"]
