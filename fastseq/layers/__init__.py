"""Keras-compatible layers: ``from fastseq.layers import Embedding, LSTM, Dense``.

Each layer holds its weights as :class:`fastseq.variables.Variable` (Keras's shapes and
order) and calls :mod:`fastseq.kernels` for the heavy work.
"""
from .base import Layer, deserialize, reset_name_uids, serialize
from .convolutional import Conv1D, Convolution1D
from .core import Activation, Dense, Dropout, Flatten
from .embedding import Embedding
from .input_layer import Input, InputLayer
from .lambda_layer import Lambda
from .masking import Masking
from .merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (
    AveragePooling1D,
    AvgPool1D,
    GlobalAveragePool1D,
    GlobalAveragePooling1D,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    GlobalMaxPooling1D,
    MaxPool1D,
    MaxPooling1D,
)
from .recurrent import GRU, LSTM, SimpleRNN
from .regularization import SpatialDropout1D
from .reshaping import Permute, RepeatVector, Reshape
from .text_vectorization import TextVectorization
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "Dense", "Dropout", "Flatten", "Activation", "Embedding", "LSTM", "GRU",
    "SimpleRNN", "Bidirectional", "Conv1D",
    "Convolution1D", "MaxPooling1D", "MaxPool1D", "GlobalAveragePooling1D",
    "GlobalAveragePool1D", "GlobalAvgPool1D", "GlobalMaxPooling1D", "GlobalMaxPool1D",
    "serialize", "deserialize", "reset_name_uids",
    "Input", "InputLayer", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "Dot", "add", "subtract", "multiply", "average", "maximum", "minimum",
    "concatenate", "dot",
    "SpatialDropout1D", "AveragePooling1D", "AvgPool1D", "TimeDistributed", "Masking",
    "BatchNormalization", "LayerNormalization", "Reshape", "Permute", "RepeatVector", "Lambda",
]
__all__ += ["TextVectorization"]
