"""The CPU backend: fastseq's checked fast kernels (Cython + OpenMP, Numba) for the kernel
pairs and the optimizer updates; the small ops stay the NumPy ones of the base (one BLAS
call or one ufunc each, already at the machine's speed)."""
from fastseq import kernels as _kernels
from fastseq._kernels import optim as _optim

from .ops import Ops

__all__ = ["CpuOps"]


class CpuOps(Ops):
    name = "cpu"
    device = "cpu"
    _kernels = _kernels
    _optim = _optim
