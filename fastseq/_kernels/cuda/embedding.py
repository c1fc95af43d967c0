"""numba.cuda: embedding gather (forward) and its deterministic scatter-add gradient.

Same functions and signatures as :mod:`fastseq.kernels`; arrays are numba device arrays
(NumPy arrays are copied to the device first) and results stay on the device.

Backward without float atomics: every position n gets the key ``index[n] * N + n``; the keys
are sorted on the device (bitonic sort, shared memory for the short strides); a row's
positions are then one run of the sorted keys, in ascending position order, and one thread
per (run, column) sums its run in that order. The sum order is fixed by the data alone, so
the gradient is bitwise the same on every run, and the same as NumPy's ``np.add.at``
(which also adds positions in ascending order, starting from 0).

Each call checks the index range on the device (integer atomics only) and copies one
number back: an index outside [0, num_embeddings) is an IndexError naming it and its
position, never an out-of-bounds read.
"""
import numpy as np
from numba import cuda, int64

from ..geometry import positive_int
from .elementwise import (
    MAX_THREADS,
    SIMULATOR,
    as_device,
    as_device_indices,
    launch,
    launch_1d,
    zeros,
)

__all__ = ["embedding_forward", "embedding_backward", "embedding_backward_sparse",
           "sort_keys"]

_INT64_MAX = np.iinfo(np.int64).max


# ---------------------------------------------------------------------------- checks
@cuda.jit(cache=True)
def _index_range_kernel(idx, low, high, result):
    # idx: (N,) -> result[0] = min position n with idx[n] outside [low, high) (N if none),
    # result[1] = max idx. Integer atomics: the result does not depend on thread order.
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, idx.size, step):
        v = int64(idx[n])
        cuda.atomic.max(result, 1, v)
        if v < low or v >= high:
            cuda.atomic.min(result, 0, int64(n))


def _check_index_range(idx, shape, low, high, what):
    """Raise IndexError for the first index outside [low, high); return the largest index."""
    n_total = idx.size
    if n_total == 0:
        return -1
    result = cuda.to_device(np.array([n_total, np.iinfo(np.int64).min], dtype=np.int64))
    blocks, threads = launch_1d(n_total)
    _index_range_kernel[blocks, threads](idx, low, high, result)
    first_bad, largest = (int(v) for v in result.copy_to_host())
    if first_bad < n_total:
        value = int(idx[first_bad:first_bad + 1].copy_to_host()[0])
        where = tuple(int(i) for i in np.unravel_index(first_bad, shape)) if shape else ()
        raise IndexError(f"index {value} at position {where} is out of range: {what} "
                         f"must be in [{low}, {high})")
    return largest


def _check_weights(weights):
    weights = as_device(weights, "weights")
    if len(weights.shape) != 2:
        raise ValueError("weights must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {tuple(weights.shape)}")
    return weights


def _check_grad(indices_shape, grad_output):
    grad = as_device(grad_output, "grad_output")
    if len(grad.shape) != len(indices_shape) + 1 or tuple(grad.shape)[:-1] != indices_shape:
        raise ValueError("grad_output must have shape indices.shape + (embedding_dim,) = "
                         f"{indices_shape + ('D',)}, got {tuple(grad.shape)}")
    return grad


def _normalize_padding_idx(padding_idx, num_embeddings):
    """PyTorch's meaning: a row in [-V, V) whose gradient stays zero; -1 for none."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx,
                                                                   (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {type(padding_idx).__name__}")
    padding_idx = int(padding_idx)
    if num_embeddings is None:
        if padding_idx < 0:
            raise ValueError("a negative padding_idx needs num_embeddings to count from the "
                             f"end; got padding_idx={padding_idx} and num_embeddings=None")
        return padding_idx
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx must be in [-{num_embeddings}, {num_embeddings}), "
                         f"got {padding_idx}")
    return padding_idx % num_embeddings


def _flat(x):
    """A contiguous device array as 1-D (views; the public arrays keep their shapes)."""
    return x.reshape(x.size)


# ---------------------------------------------------------------------------- forward
@cuda.jit(cache=True)
def _gather_kernel(weights, idx, out):
    # weights: (V, D), idx: (N,) -> out: (N, D); out[n, j] = weights[idx[n], j]
    dim = weights.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        n = i // dim
        j = i - n * dim
        out[n, j] = weights[idx[n], j]


def embedding_forward(weights, indices, out=None):
    """Gather rows: ``out[..., :] = weights[indices[...], :]``.

    # weights: (V, D), indices: (...) -> out: (..., D)

    weights: float32/float64 device array (V, D); indices: int32/int64 of any shape, values
    in [0, V) (IndexError otherwise). out: optional C-contiguous device array of shape
    ``indices.shape + (D,)`` and the weights' dtype, written and returned."""
    weights = _check_weights(weights)
    idx = as_device_indices(indices, "indices")
    shape = tuple(idx.shape)
    num_embeddings, dim = weights.shape
    _check_index_range(_flat(idx), shape, 0, num_embeddings, "indices")
    if out is None:
        out = cuda.device_array(shape + (dim,), dtype=weights.dtype)
    elif tuple(out.shape) != shape + (dim,) or out.dtype != weights.dtype:
        raise ValueError(f"out must be a {weights.dtype} array of shape {shape + (dim,)}, "
                         f"got {out.dtype} {tuple(out.shape)}")
    if out.size:
        blocks, threads = launch_1d(out.size)
        _gather_kernel[blocks, threads](weights, _flat(idx), out.reshape(idx.size, dim))
    return out


# ---------------------------------------------------------------------------- sorting
# Bitonic sort of P = 2^p int64 keys. Strides j < LOCAL run inside one block's shared
# memory (LOCAL = 2 * threads keys a block); longer strides one global launch each.
_SORT_THREADS = 4 if SIMULATOR else 512
_LOCAL = 2 * _SORT_THREADS


@cuda.jit(cache=True)
def _bitonic_global_kernel(keys, k, j):
    # keys: (P,) -> one compare-exchange stage (k, j) of the bitonic network
    start, step = cuda.grid(1), cuda.gridsize(1)
    for t in range(start, keys.size // 2, step):
        i = 2 * j * (t // j) + (t % j)  # the lower element of pair t
        partner = i + j
        ascending = (i & k) == 0
        a, b = keys[i], keys[partner]
        if (a > b) == ascending:
            keys[i] = b
            keys[partner] = a


@cuda.jit(cache=True)
def _bitonic_local_kernel(keys, k_first, k_last):
    # keys: (P,) -> stages k = k_first, 2 k_first, ..., k_last, each with every stride
    # j < LOCAL, on this block's LOCAL keys in shared memory (k_first = 2: a full sort of
    # each block; k_first = k_last = k > LOCAL: the tail of merge stage k)
    shared = cuda.shared.array(_LOCAL, dtype=int64)
    t = cuda.threadIdx.x
    base = cuda.blockIdx.x * _LOCAL
    shared[t] = keys[base + t]
    shared[t + _SORT_THREADS] = keys[base + t + _SORT_THREADS]
    cuda.syncthreads()
    k = k_first
    while k <= k_last:
        j = min(k // 2, _LOCAL // 2)
        while j >= 1:
            i = 2 * j * (t // j) + (t % j)
            partner = i + j
            ascending = ((base + i) & k) == 0
            a, b = shared[i], shared[partner]
            if (a > b) == ascending:
                shared[i] = b
                shared[partner] = a
            cuda.syncthreads()
            j //= 2
        k *= 2
    keys[base + t] = shared[t]
    keys[base + t + _SORT_THREADS] = shared[t + _SORT_THREADS]


@cuda.jit(cache=True)
def _pad_keys_kernel(keys, n_real, sentinel):
    # keys: (P,) -> keys[n_real:] = sentinel (sorted to the end)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(n_real + start, keys.size, step):
        keys[i] = sentinel


def sort_keys(keys, n_real):
    """Sort the first ``n_real`` of ``keys`` (a (P,) int64 device array, P a power of two
    >= LOCAL) ascending in place; the tail is overwritten with INT64_MAX."""
    size = keys.size
    blocks, threads = launch_1d(size)
    _pad_keys_kernel[blocks, threads](keys, n_real, np.int64(_INT64_MAX))
    n_blocks = size // _LOCAL
    _bitonic_local_kernel[n_blocks, _SORT_THREADS](keys, 2, _LOCAL)
    k = 2 * _LOCAL
    pair_blocks, pair_threads = launch_1d(size // 2)
    while k <= size:
        j = k // 2
        while j >= _LOCAL:
            _bitonic_global_kernel[pair_blocks, pair_threads](keys, k, j)
            j //= 2
        _bitonic_local_kernel[n_blocks, _SORT_THREADS](keys, k, k)
        k *= 2
    return keys


@cuda.jit(cache=True)
def _make_keys_kernel(idx, keys):
    # idx: (N,) -> keys[n] = idx[n] * N + n: unique, and sorted means by row then position
    n_total = idx.size
    start, step = cuda.grid(1), cuda.gridsize(1)
    for n in range(start, n_total, step):
        keys[n] = int64(idx[n]) * n_total + n


def _sorted_keys(idx, largest):
    n_total = idx.size
    if largest > (_INT64_MAX - n_total) // n_total:
        raise IndexError(f"index {largest} is too large to sort {n_total} positions in int64")
    size = _LOCAL
    while size < n_total:
        size *= 2
    keys = cuda.device_array(size, dtype=np.int64)
    blocks, threads = launch_1d(n_total)
    _make_keys_kernel[blocks, threads](idx, keys)
    return sort_keys(keys, n_total)


# ---------------------------------------------------------------------------- backward
@cuda.jit(device=True, inline=True)
def _run_sum(keys, grad, k, j, row):
    # column j of grad summed over the run of ``row`` that starts at sorted key k, in
    # ascending position order (as np.add.at: 0 + first = first)
    n_total = grad.shape[0]
    acc = grad[keys[k] - row * n_total, j]
    end = k + 1
    while end < n_total and keys[end] // n_total == row:
        acc += grad[keys[end] - row * n_total, j]
        end += 1
    return acc


@cuda.jit(cache=True)
def _segment_sum_dense_kernel(keys, grad, padding_idx, out):
    # keys: (P,) sorted, grad: (N, D) -> out: (V, D), rows of touched runs written
    # (out starts at zero). Thread (k, j) works only when k starts a run.
    n_total, dim = grad.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_total * dim, step):
        k = i // dim
        j = i - k * dim
        row = keys[k] // n_total
        if row == padding_idx or (k > 0 and keys[k - 1] // n_total == row):
            continue
        out[row, j] = _run_sum(keys, grad, k, j, row)


def embedding_backward(indices, grad_output, num_embeddings, padding_idx=None):
    """Dense gradient of the gather: ``grad_weights[r] = sum of grad_output where index == r``.

    # indices: (...), grad_output: (..., D) -> grad_weights: (V, D)

    Deterministic (no atomics): see the module docstring. The row ``padding_idx`` (PyTorch's
    meaning, in [-V, V)) gets a zero gradient."""
    num_embeddings = positive_int(num_embeddings, "num_embeddings")
    idx = as_device_indices(indices, "indices")
    shape = tuple(idx.shape)
    grad = _check_grad(shape, grad_output)
    pad = _normalize_padding_idx(padding_idx, num_embeddings)
    flat_idx = _flat(idx)
    largest = _check_index_range(flat_idx, shape, 0, num_embeddings, "indices")
    return dense_gradient(flat_idx, grad, num_embeddings, pad, largest)


def dense_gradient(flat_idx, grad, num_embeddings, padding_idx, largest):
    """The (V, D) gradient of checked indices: flat_idx (N,) in [0, V) with max ``largest``,
    grad (..., D) with N rows; row ``padding_idx`` (-1: none) stays zero."""
    dim = tuple(grad.shape)[-1]
    out = zeros((num_embeddings, dim), grad.dtype)
    n_total = flat_idx.size
    if n_total == 0 or dim == 0:
        return out
    keys = _sorted_keys(flat_idx, largest)
    launch(_segment_sum_dense_kernel, n_total * dim, keys, grad.reshape(n_total, dim),
           padding_idx, out)
    return out


# Exclusive prefix sum of int64 flags: a Hillis-Steele scan per block in shared memory,
# the block totals scanned the same way (recursively), then added back.
_SCAN_THREADS = MAX_THREADS


@cuda.jit(cache=True)
def _run_start_flags_kernel(keys, n_total, padding_idx, flags):
    # keys: (P,) sorted -> flags: (N,) 1 where a run of a kept row starts, else 0
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, n_total, step):
        row = keys[k] // n_total
        first = k == 0 or keys[k - 1] // n_total != row
        flags[k] = 1 if (first and row != padding_idx) else 0


@cuda.jit(cache=True)
def _block_scan_kernel(values, exclusive, block_totals):
    # values: (N,) -> exclusive: (N,) exclusive scan within each block of _SCAN_THREADS,
    # block_totals: (blocks,) the sum of each block
    shared = cuda.shared.array(_SCAN_THREADS, dtype=int64)
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * _SCAN_THREADS + t
    own = values[i] if i < values.size else 0
    shared[t] = own
    cuda.syncthreads()
    offset = 1
    while offset < _SCAN_THREADS:
        v = shared[t]
        if t >= offset:
            v += shared[t - offset]
        cuda.syncthreads()
        shared[t] = v
        cuda.syncthreads()
        offset *= 2
    if i < values.size:
        exclusive[i] = shared[t] - own
    if t == _SCAN_THREADS - 1:
        block_totals[cuda.blockIdx.x] = shared[t]


@cuda.jit(cache=True)
def _add_block_offsets_kernel(exclusive, offsets):
    # exclusive: (N,), offsets: (blocks,) -> exclusive[i] += offsets[i // _SCAN_THREADS]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, exclusive.size, step):
        exclusive[i] += offsets[i // _SCAN_THREADS]


def exclusive_scan(values):
    """(exclusive scan, total) of a (N,) int64 device array; total as a (1,) device array."""
    n_total = values.size
    n_blocks = (n_total + _SCAN_THREADS - 1) // _SCAN_THREADS
    exclusive = cuda.device_array(n_total, dtype=np.int64)
    totals = cuda.device_array(n_blocks, dtype=np.int64)
    _block_scan_kernel[n_blocks, _SCAN_THREADS](values, exclusive, totals)
    if n_blocks == 1:
        return exclusive, totals
    offsets, total = exclusive_scan(totals)
    blocks, threads = launch_1d(n_total)
    _add_block_offsets_kernel[blocks, threads](exclusive, offsets)
    return exclusive, total


@cuda.jit(cache=True)
def _run_rows_kernel(keys, n_total, flags, slot, rows):
    # keys: (P,) sorted, flags/slot: (N,) -> rows: (U,), the row of each kept run
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, n_total, step):
        if flags[k] != 0:
            rows[slot[k]] = keys[k] // n_total


@cuda.jit(cache=True)
def _segment_sum_sparse_kernel(keys, grad, flags, slot, values):
    # keys: (P,) sorted, grad: (N, D), flags/slot: (N,) run starts and their exclusive scan
    # -> values: (U, D); run u = slot[k] of a kept row summed in order
    n_total, dim = grad.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_total * dim, step):
        k = i // dim
        j = i - k * dim
        if flags[k] == 0:
            continue
        values[slot[k], j] = _run_sum(keys, grad, k, j, keys[k] // n_total)


def embedding_backward_sparse(indices, grad_output, padding_idx=None, num_embeddings=None):
    """Row-sparse gradient: ``(rows, values)`` with rows the distinct indices (int64,
    ascending, ``padding_idx`` left out) and ``values[u]`` the summed gradient of rows[u].

    # indices: (...), grad_output: (..., D) -> rows: (U,) int64, values: (U, D)

    Deterministic (no atomics). num_embeddings, when given, bounds the indices (IndexError
    outside [0, V)) and lets padding_idx count from the end."""
    if num_embeddings is not None:
        num_embeddings = positive_int(num_embeddings, "num_embeddings")
    idx = as_device_indices(indices, "indices")
    shape = tuple(idx.shape)
    grad = _check_grad(shape, grad_output)
    pad = _normalize_padding_idx(padding_idx, num_embeddings)
    dim = tuple(grad.shape)[-1]
    flat_idx = _flat(idx)
    high = _INT64_MAX if num_embeddings is None else num_embeddings
    largest = _check_index_range(flat_idx, shape, 0, high,
                                 "indices" if num_embeddings is not None else "indices (>= 0)")
    n_total = flat_idx.size
    if n_total == 0:
        return (cuda.device_array(0, dtype=np.int64),
                cuda.device_array((0, dim), dtype=grad.dtype))
    keys = _sorted_keys(flat_idx, largest)
    flags = cuda.device_array(n_total, dtype=np.int64)
    blocks, threads = launch_1d(n_total)
    _run_start_flags_kernel[blocks, threads](keys, n_total, pad, flags)
    slot, total = exclusive_scan(flags)
    n_rows = int(total.copy_to_host()[-1])  # one number back: the output's size
    rows = cuda.device_array(n_rows, dtype=np.int64)
    values = cuda.device_array((n_rows, dim), dtype=grad.dtype)
    if n_rows:
        _run_rows_kernel[blocks, threads](keys, n_total, flags, slot, rows)
    if n_rows and dim:
        blocks, threads = launch_1d(n_total * dim)
        _segment_sum_sparse_kernel[blocks, threads](keys, grad.reshape(n_total, dim), flags,
                                                    slot, values)
    return rows, values
