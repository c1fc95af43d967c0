"""numba.cuda kernels: the GPU twins of the CPU kernels, one module per op family.

Same functions and signatures as :mod:`fastseq.kernels`; they take numba device arrays
(NumPy arrays are copied to the device first) and return device arrays, caches included,
so a training step keeps everything on the GPU and only what the caller asks for comes
back (``to_host``). Importing this package needs numba's CUDA target (``pip install
"fastseq[cuda]"``); it runs on an NVIDIA GPU, or in the CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` was set before numba was imported.

- :mod:`.embedding`: gather; dense and row-sparse backward, deterministic (sort + ordered
  segment sums, no float atomics)
- :mod:`.lstm`, :mod:`.gru`, :mod:`.simple_rnn`: forward/backward through time (GEMMs + one
  fused kernel per step)
- :mod:`.conv1d`: Conv1D (im2col + GEMM, col2im gather), max / global pooling
- :mod:`.gemm`: ``gemm`` through cuBLAS (CuPy / nvmath-python) when installed, else our
  tiled numba kernel; ``gemm_backend()`` says which
- :mod:`.elementwise`: device-array helpers, reductions, activations, losses' elementwise
  parts, optimizer updates
"""
from . import conv1d, elementwise
from .conv1d import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .embedding import embedding_backward, embedding_backward_sparse, embedding_forward
from .gemm import gemm as matmul
from .gemm import gemm_backend, set_gemm_backend
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .simple_rnn import simple_rnn_backward, simple_rnn_forward

__all__ = (
    ["embedding_forward", "embedding_backward", "embedding_backward_sparse",
     "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "simple_rnn_forward",
     "simple_rnn_backward", "matmul", "gemm_backend", "set_gemm_backend"]
    + conv1d.__all__ + elementwise.__all__
)
