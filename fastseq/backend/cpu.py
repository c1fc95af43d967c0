"""The CPU backend: fastseq's checked fast kernels (Cython + OpenMP, Numba) for the kernel
pairs and the optimizer updates; the small ops are the NumPy ones of the base, except the
matmul, which is made deterministic (below)."""
import numpy as np

from fastseq import kernels as _kernels
from fastseq._api._blas import serial_blas
from fastseq._kernels import optim as _optim
from fastseq._kernels._forkjoin import run_tasks
from fastseq._threads import get_num_threads

from .ops import Ops

__all__ = ["CpuOps"]

# A multithreaded BLAS splits a GEMM by the thread count, and OpenBLAS rounds some shapes
# differently on 1 and on 2+ threads (a K=700 Dense, measured): a model would train to
# other weights on another machine. So the layers' GEMMs run the BLAS single-threaded on
# blocks of the output chosen from the shapes alone, the blocks spread over fastseq's
# threads: bitwise the same for any thread count, and as parallel as the BLAS's own split.
_MIN_BLOCK = 64              # rows (or columns) of the output per block, at least
# OpenBLAS runs a GEMM of m * n * k <= 65536 * GEMM_MULTITHREAD_THRESHOLD (4) on the calling
# thread whatever its thread count: such small products (a Dense head) skip the switch to a
# serial BLAS (two C calls per library, ~7 us, more than the product itself)
_SERIAL_ANYWAY = 65536 * 4
_FLOPS_PER_BLOCK = 1 << 22   # below ~4 MFLOP a block costs more to hand out than it saves
_MAX_BLOCKS = 16


def _blocks(m, k, n):
    """(axis, bounds) of the output blocks of an (m, k) @ (k, n) product: rows when m >= n,
    else columns; from the shapes alone."""
    axis, size = (0, m) if m >= n else (1, n)
    count = min(_MAX_BLOCKS, size // _MIN_BLOCK, (2 * m * k * n) // _FLOPS_PER_BLOCK)
    count = max(1, count)
    edges = [size * i // count for i in range(count + 1)]
    return axis, list(zip(edges[:-1], edges[1:]))


class CpuOps(Ops):
    name = "cpu"
    device = "cpu"
    _kernels = _kernels
    _optim = _optim

    def run_concurrently(self, jobs):
        # One job a thread. A kernel called from a job finds the helper threads taken and
        # runs its row blocks on the job's thread, in the same blocks (the same results);
        # one serial-BLAS context over both, so neither's exit restores a multithreaded BLAS
        # while the other still runs.
        with serial_blas():
            return run_tasks(lambda job: job(), [(job,) for job in jobs], get_num_threads())

    # a: (M, K), b: (K, N) -> (M, N), deterministic for any thread count (see above)
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        a = a.T if transpose_a else a
        b = b.T if transpose_b else b
        m, k = a.shape
        n = b.shape[1]
        if m * n * k <= _SERIAL_ANYWAY:
            return a @ b
        axis, bounds = _blocks(m, k, n)
        with serial_blas():
            if len(bounds) == 1:
                return a @ b
            out = np.empty((m, n), dtype=np.result_type(a, b))

            def block(lo, hi):
                if axis == 0:
                    np.matmul(a[lo:hi], b, out=out[lo:hi])
                else:
                    np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

            run_tasks(block, bounds, get_num_threads())
        return out
