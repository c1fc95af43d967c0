"""fastseq's public kernel API: forward/backward pairs on plain NumPy arrays.

Every function checks its inputs once (dtype, contiguity, shapes, index range) and raises
a clear error naming what was wrong; the kernels below trust their inputs. No hidden global
state beyond the thread count (:func:`fastseq.set_num_threads`).

Embedding (Cython + OpenMP):
    embedding_forward(weights, indices, out=None)
    embedding_backward(indices, grad_output, num_embeddings, padding_idx=None)
    embedding_backward_sparse(indices, grad_output, padding_idx=None, num_embeddings=None)
LSTM (Numba):
    lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, mask=None,
                 go_backwards=False, training=True, input_masks=None, recurrent_masks=None)
        -> (outputs, h_last, c_last, cache)
    lstm_backward(cache, grad_outputs=None, grad_h_last=None, grad_c_last=None)
        -> (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)
GRU and SimpleRNN (Numba), the LSTM's conventions:
    gru_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None, go_backwards=False,
                training=True, reset_after=True, input_masks=None, recurrent_masks=None)
        -> (outputs, h_last, cache)
    gru_backward(cache, grad_outputs=None, grad_h_last=None)
        -> (dx, dkernel, drecurrent_kernel, dbias, dh0)
    simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None,
                       go_backwards=False, training=True, activation="tanh",
                       input_mask=None, recurrent_mask=None) -> (outputs, h_last, cache)
    simple_rnn_backward(cache, grad_outputs=None, grad_h_last=None)
        -> (dx, dkernel, drecurrent_kernel, dbias, dh0)
Conv1D and pooling (Numba):
    conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1)
        -> (y, cache);  conv1d_backward(cache, grad_y) -> (dx, dkernel, dbias)
    max_pool1d_forward / max_pool1d_backward, global_average_pool1d_forward / _backward,
    global_max_pool1d_forward / _backward
"""
from ._api.conv1d import (
    conv1d_backward,
    conv1d_forward,
    conv1d_output_length,
    global_average_pool1d_backward,
    global_average_pool1d_forward,
    global_max_pool1d_backward,
    global_max_pool1d_forward,
    max_pool1d_backward,
    max_pool1d_forward,
    max_pool1d_output_length,
)
from ._api.embedding import embedding_backward, embedding_backward_sparse, embedding_forward
from ._api.gru import gru_backward, gru_forward
from ._api.lstm import lstm_backward, lstm_forward
from ._api.simple_rnn import simple_rnn_backward, simple_rnn_forward

__all__ = [
    "embedding_forward", "embedding_backward", "embedding_backward_sparse",
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "simple_rnn_forward", "simple_rnn_backward",
    "conv1d_forward", "conv1d_backward",
    "max_pool1d_forward", "max_pool1d_backward",
    "global_average_pool1d_forward", "global_average_pool1d_backward",
    "global_max_pool1d_forward", "global_max_pool1d_backward",
    "conv1d_output_length", "max_pool1d_output_length",
]
