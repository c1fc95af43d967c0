"""Embedding benchmarks: gather and scatter-add against np.take / np.add.at.

Indices are drawn Zipf-like (rank ~ 1/r, as word frequencies in text), so rows repeat as
they do in real batches. Floors (2 cores, ~12 GB/s copy bandwidth measured in the run):
forward moves 2*N*D*4 bytes (read the rows, write the output); the dense backward reads
N*D*4 bytes of gradient and writes V*D*4; the sparse one reads N*D*4 and writes U*D*4.

Forward, measured 2026-12-06 for issue 16 (alternating blocks against np.take in one
process, 5 runs, load 2.5-3.3 on 2 cores): the cache-resident cases run on the calling
thread with AVX row copies, np.take / fastseq = 1.07-1.19x at (5000, 32, 64, 500) (0.088-
0.097 ms, ~85 GB/s counting read + write: the output, 4 MB, streams to L3 at one core's
write rate, which bounds np.take too) and 1.06-1.25x at (1024, 256, 16, 64); one
`python -m fastseq bench` run the same day gave 0.87x and 1.26x (medians of 0.3 s, the
run's first case). The large table (100000, 300) keeps the parallel prefetching gather:
3.4x np.take on a quiet machine (README), 0.57-0.77x at load ~3 (its OpenMP region waits
for a worker the scheduler holds back).
"""
import numpy as np

from fastseq import kernels
from fastseq._kernels import reference

from .core import Case

# (V, D, B, T) from the issue: the seed's IMDB model, seed 003's tiny one, a mid-size one,
# and a large-vocabulary one that does not fit in cache.
SHAPES = [(5000, 32, 64, 500), (10000, 8, 32, 20), (1024, 256, 16, 64), (100000, 300, 64, 200)]
QUICK_SHAPES = [(5000, 32, 64, 500), (10000, 8, 32, 20)]


def zipf_indices(rng, vocab, shape):
    """Text-like token ids: rank r drawn with probability ~ 1/(r+1), shuffled over rows."""
    ranks = np.arange(1, vocab + 1, dtype=np.float64)
    p = 1.0 / ranks
    p /= p.sum()
    perm = rng.permutation(vocab)  # frequent words are not all at the top of the table
    return perm[rng.choice(vocab, size=shape, p=p)].astype(np.int32)


def _inputs(vocab, dim, batch, steps):
    def make():
        rng = np.random.default_rng(0)
        return {
            "weights": rng.standard_normal((vocab, dim)).astype(np.float32),
            "indices": zipf_indices(rng, vocab, (batch, steps)),
            "grad": rng.standard_normal((batch, steps, dim)).astype(np.float32),
            "vocab": vocab,
        }
    return make


def _torch_forward(inp):
    import torch

    w = torch.from_numpy(inp["weights"])
    i = torch.from_numpy(inp["indices"].astype(np.int64))
    return lambda: torch.nn.functional.embedding(i, w)


def _torch_backward_dense(inp):
    import torch

    i = torch.from_numpy(inp["indices"].astype(np.int64)).reshape(-1)
    g = torch.from_numpy(inp["grad"]).reshape(i.numel(), -1)
    vocab = inp["vocab"]

    def run():
        return torch.zeros(vocab, g.shape[1]).index_add_(0, i, g)
    return run


def _torch_backward_sparse(inp):
    import torch

    w = torch.from_numpy(inp["weights"]).requires_grad_()
    i = torch.from_numpy(inp["indices"].astype(np.int64))
    g = torch.from_numpy(inp["grad"])

    def run():
        w.grad = None
        torch.nn.functional.embedding(i, w, sparse=True).backward(g)
        return w.grad.coalesce()
    return run


def _unique_rows(inp):
    return np.unique(inp["indices"]).size


def cases(quick=False):
    out = []
    for vocab, dim, batch, steps in (QUICK_SHAPES if quick else SHAPES):
        shape = f"V={vocab} D={dim} B={batch} T={steps}"
        make = _inputs(vocab, dim, batch, steps)
        n_pos = batch * steps
        row_bytes = dim * 4
        out.append(Case(
            family="embedding", name="forward", shape=shape, make_inputs=make,
            baseline=lambda i: reference.embedding_forward(i["weights"], i["indices"]),
            fast=lambda i: kernels.embedding_forward(i["weights"], i["indices"]),
            torch=_torch_forward, bytes_moved=2 * n_pos * row_bytes,
            note="baseline: np.take(W, idx, axis=0)",
        ))
        out.append(Case(
            family="embedding", name="backward dense", shape=shape, make_inputs=make,
            baseline=lambda i: reference.embedding_backward(i["indices"], i["grad"], i["vocab"]),
            fast=lambda i: kernels.embedding_backward(i["indices"], i["grad"], i["vocab"]),
            torch=_torch_backward_dense, bytes_moved=n_pos * row_bytes + vocab * row_bytes,
            note="baseline: np.add.at; torch: index_add_",
        ))
        if vocab >= 100000 or quick:
            out.append(Case(
                family="embedding", name="backward sparse", shape=shape, make_inputs=make,
                baseline=lambda i: reference.embedding_backward_sparse(i["indices"], i["grad"]),
                fast=lambda i: kernels.embedding_backward_sparse(i["indices"], i["grad"]),
                torch=_torch_backward_sparse, bytes_moved=n_pos * row_bytes * 2,
                note="baseline: np.unique + np.add.at; torch: sparse=True backward + coalesce",
            ))
    return out
