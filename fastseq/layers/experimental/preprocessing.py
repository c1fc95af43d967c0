"""``fastseq.layers.experimental.preprocessing.TextVectorization``: the old Keras path."""
from ..text_vectorization import TextVectorization

__all__ = ["TextVectorization"]
