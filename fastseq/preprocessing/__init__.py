"""Keras-style text preprocessing: ``fastseq.preprocessing.text`` (Tokenizer) and
``fastseq.preprocessing.sequence`` (pad_sequences), with the legacy Keras semantics.

    from fastseq.preprocessing.text import Tokenizer
    from fastseq.preprocessing.sequence import pad_sequences
"""
from . import sequence, text
from .sequence import pad_sequences
from .text import Tokenizer, hashing_trick, one_hot, text_to_word_sequence, tokenizer_from_json

__all__ = [
    "Tokenizer",
    "hashing_trick",
    "one_hot",
    "pad_sequences",
    "sequence",
    "text",
    "text_to_word_sequence",
    "tokenizer_from_json",
]
