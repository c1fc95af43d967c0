"""NumPy baselines: the slow obvious version of every kernel.

They are the oracle of the tests and the baseline of the benchmarks, so each is as fast as
plain NumPy reasonably gets (np.take rather than fancy indexing, one matmul for the LSTM
input projection). Same signatures as the public kernels in :mod:`fastseq.kernels`.
"""
from .conv1d import *  # noqa: F401,F403
from .conv1d import __all__ as _conv1d_all
from .embedding import embedding_backward, embedding_backward_sparse, embedding_forward
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .simple_rnn import simple_rnn_backward, simple_rnn_forward

__all__ = [
    "embedding_forward", "embedding_backward", "embedding_backward_sparse",
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "simple_rnn_forward", "simple_rnn_backward",
    *_conv1d_all,
]
