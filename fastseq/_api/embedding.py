"""Embedding kernels: the row gather (forward) and its scatter-add gradient (backward).

All arrays are plain NumPy. Indices may have any shape of up to 63 dimensions (NumPy 2
allows 64, and the output has one more) and be int32 or int64 (other integer dtypes are
widened to int64); weights and gradients are float32 or float64.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._kernels import embedding as _emb
from ._checks import MAX_NDIM, float_array, index_array, positive_int

# Above this ratio of index range to index count, the counting sort's O(range) table costs
# more than it saves: the sparse backward first compacts the indices with np.unique.
_COUNTING_SORT_MAX_RANGE_PER_INDEX = 16


def _check_indices_in_range(idx, low, high, what):
    """IndexError naming the first index outside [low, high) and its position."""
    _raise_if_out_of_range(idx, _emb.first_out_of_range(idx, low, high), low, high, what)


def _raise_if_out_of_range(idx, pos, low, high, what):
    """IndexError naming the index at C-order position ``pos`` (none when pos < 0)."""
    if pos >= 0:
        where = np.unravel_index(pos, idx.shape) if idx.ndim else ()
        value = idx.reshape(-1)[pos]
        raise IndexError(
            f"index {value} at position {tuple(int(i) for i in where)} is out of range: "
            f"{what} must be in [{low}, {high})"
        )


def _check_index_rank(idx):
    """The output (and grad_output) is indices.shape + (embedding_dim,): one dimension more
    than indices, within NumPy's limit."""
    if idx.ndim > MAX_NDIM - 1:
        raise ValueError(
            f"indices must have at most {MAX_NDIM - 1} dimensions: the output and "
            f"grad_output have shape indices.shape + (embedding_dim,), one more, and NumPy "
            f"allows {MAX_NDIM}; got {idx.ndim}-D indices"
        )


def _check_weights(weights):
    if not isinstance(weights, np.ndarray):
        raise TypeError(f"weights must be a NumPy array, got {type(weights).__name__}")
    if weights.ndim != 2:
        raise ValueError(
            f"weights must be 2-D (num_embeddings, embedding_dim), got shape {weights.shape}"
        )
    return float_array(weights, "weights")


def _normalize_padding_idx(padding_idx, num_embeddings):
    """PyTorch's meaning: a row in [-V, V) whose gradient stays zero; -1 in C for none."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {type(padding_idx).__name__}")
    padding_idx = int(padding_idx)
    if num_embeddings is None:
        if padding_idx < 0:
            raise ValueError(
                "a negative padding_idx needs num_embeddings to count from the end; "
                f"got padding_idx={padding_idx} and num_embeddings=None"
            )
        return padding_idx
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"padding_idx must be in [-{num_embeddings}, {num_embeddings}), got {padding_idx}"
        )
    return padding_idx % num_embeddings


def _check_grad(indices_shape, grad_output):
    grad = float_array(grad_output, "grad_output")
    if grad.ndim != len(indices_shape) + 1 or grad.shape[:-1] != tuple(indices_shape):
        raise ValueError(
            f"grad_output must have shape indices.shape + (embedding_dim,) = "
            f"{tuple(indices_shape) + ('D',)}, a {len(indices_shape) + 1}-D array; got "
            f"shape {grad.shape}"
        )
    # explicit row count: reshape(-1, 0) is ambiguous when D == 0
    return grad.reshape(int(np.prod(indices_shape, dtype=np.int64)), grad.shape[-1])


def embedding_forward(weights: ArrayLike, indices: ArrayLike,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Gather rows: ``out[..., :] = weights[indices[...], :]``.

    # weights: (V, D), indices: (...) -> out: (..., D)

    weights: float32/float64 (V, D); a non-C-contiguous one is copied first.
    indices: int32/int64 of any shape of at most 63 dimensions (ValueError otherwise), every
    value in [0, V) (IndexError otherwise, naming the first bad value and its position).
    out: optional aligned C-contiguous array of shape ``indices.shape + (D,)`` and the
    dtype of weights, written in place and returned.
    Parallel over positions (OpenMP); memory-bound: it moves 2 * N * D * itemsize bytes."""
    if out is None:
        fast = _emb.gather_new(weights, indices)  # plain arrays, all in range: one C call
        if fast is not None:
            return fast
    weights = _check_weights(weights)
    idx = index_array(indices, "indices")
    _check_index_rank(idx)
    num_embeddings, dim = weights.shape
    out_shape = idx.shape + (dim,)
    if out is None:
        out = np.empty(out_shape, dtype=weights.dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
        if out.shape != out_shape or out.dtype != weights.dtype:
            raise ValueError(
                f"out must have shape {out_shape} and dtype {weights.dtype}, "
                f"got shape {out.shape} and dtype {out.dtype}"
            )
        if not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            raise ValueError("out must be a writeable, aligned C-contiguous array")
        if np.may_share_memory(out, weights) or np.may_share_memory(out, idx):
            raise ValueError("out must not overlap weights or indices")
    # the kernel checks the range first and writes nothing when an index is bad
    _raise_if_out_of_range(idx, _emb.gather(weights, idx, out), 0, num_embeddings, "indices")
    return out


def embedding_backward(indices: ArrayLike, grad_output: ArrayLike, num_embeddings: int,
                       padding_idx: int | None = None) -> np.ndarray:
    """Dense gradient of the gather: ``grad[r] = sum of grad_output[p] where indices[p] == r``.

    # indices: (...), grad_output: (..., D) -> grad_weights: (V, D)

    Positions are grouped by row with a stable counting sort and each row is summed in
    position order by one thread: the result is bitwise the same for any thread count (and
    equal to ``np.add.at``). Row ``padding_idx`` (PyTorch's meaning) gets no gradient."""
    num_embeddings = positive_int(num_embeddings, "num_embeddings")
    idx = index_array(indices, "indices")
    _check_index_rank(idx)
    grad = _check_grad(idx.shape, grad_output)
    _check_indices_in_range(idx, 0, num_embeddings, "indices")
    skip = _normalize_padding_idx(padding_idx, num_embeddings)
    return _emb.scatter_add_dense(idx.reshape(-1), grad, num_embeddings, skip)


def embedding_backward_sparse(indices: ArrayLike, grad_output: ArrayLike,
                              padding_idx: int | None = None,
                              num_embeddings: int | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Row-sparse gradient of the gather: ``(rows, values)``, no (V, D) array written.

    # indices: (...), grad_output: (..., D) -> rows: (U,) int64 ascending, values: (U, D)

    ``rows`` are the sorted unique indices (``padding_idx`` left out), ``values[u]`` the sum
    of grad_output over the positions of ``rows[u]``, in position order: deterministic and
    bitwise equal to ``np.add.at``. ``num_embeddings``, when given, bounds the indices."""
    idx = index_array(indices, "indices")
    _check_index_rank(idx)
    grad = _check_grad(idx.shape, grad_output)
    if num_embeddings is not None:
        num_embeddings = positive_int(num_embeddings, "num_embeddings")
        _check_indices_in_range(idx, 0, num_embeddings, "indices")
    else:
        _check_indices_in_range(idx, 0, np.iinfo(np.int64).max, "indices")
    skip = _normalize_padding_idx(padding_idx, num_embeddings)
    flat = idx.reshape(-1)
    n_idx = flat.size
    if n_idx == 0:
        return np.empty(0, dtype=np.int64), np.zeros((0, grad.shape[1]), dtype=grad.dtype)
    index_range = int(flat.max()) + 1
    if index_range <= _COUNTING_SORT_MAX_RANGE_PER_INDEX * n_idx + 65536:
        return _emb.scatter_add_sparse(flat, grad, index_range, skip)
    # Sparse, huge index range: compact to [0, U) so the counting sort's table stays O(N).
    unique_rows, compact = np.unique(flat, return_inverse=True)
    compact_skip = -1
    if skip >= 0:
        hit = np.searchsorted(unique_rows, skip)
        if hit < unique_rows.size and unique_rows[hit] == skip:
            compact_skip = int(hit)
    compact_rows, values = _emb.scatter_add_sparse(
        compact.reshape(-1).astype(np.int64), grad, unique_rows.size, compact_skip
    )
    return unique_rows[compact_rows].astype(np.int64), values
