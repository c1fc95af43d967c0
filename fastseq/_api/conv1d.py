"""Conv1D and 1-D pooling: forward/backward pairs on channels-last NumPy arrays.

Keras semantics (keras/src/layers/convolutional/base_conv.py, ops/operation_utils.py,
layers/pooling/*): x is (batch, steps, channels); the kernel is (kernel_size, in, filters);
with span = dilation_rate * (kernel_size - 1) + 1 the output length is
  valid:  (L - span) // strides + 1
  same:   (L - 1) // strides + 1, padded as TensorFlow does (the odd zero on the right)
  causal: (L - 1) // strides + 1, dilation_rate * (kernel_size - 1) zeros on the left.
strides > 1 together with dilation_rate > 1 is a ValueError, as in Keras.

Each forward returns ``(output, cache)``; the backward takes the cache back. The cache is
an opaque dict: pass it to the matching backward, once or more, and do not modify it.
float32 and float64 (inputs keep their dtype); deterministic: the same inputs give the
same bits whatever the thread count.
"""
from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike

from .._kernels import conv1d as _k
from .._kernels._forkjoin import run_tasks
from .._kernels.geometry import (
    CONV_PADDINGS,
    POOL_PADDINGS,
    conv1d_output_geometry,
    conv1d_output_length,
    max_pool1d_output_geometry,
    max_pool1d_output_length,
    padding_mode,
)
from ._blas import serial_blas
from ._checks import float_array, positive_int

# Winograd F(m, k) tile size per kernel size: n = m + k - 1 <= 8 keeps the transforms'
# constants small (float32 error ~1e-6 of the output's scale) and the GEMMs doing
# n / (m k) = 0.4-0.6 of the direct FLOPs.
_WINOGRAD_TILE = {2: 6, 3: 4, 4: 4, 5: 4, 6: 3, 7: 2}
# Both conv paths split the batch into tasks of whole sequences (so no two tasks touch the
# same dx row) that run on the calling thread and get_num_threads() - 1 helpers
# (fastseq/_kernels/_forkjoin.py; the Numba kernels and the BLAS release the GIL), each
# task calling a single-threaded BLAS.
# Why not one multithreaded BLAS call per step: the Winograd path makes n GEMM calls per
# pass, and each multithreaded call is a sync point of the BLAS's threads; on a 2-core
# machine with anything else running, each waits for a scheduler time slice (~5-10 ms per
# call, measured), while a single-threaded call never waits. The split depends only on the
# problem (never on the thread count) and partial sums are added in task order, so results
# are bitwise the same for any thread count (a multithreaded OpenBLAS rounds differently
# for 1 and 2 threads). A task's transformed tiles, (n, tiles, C), are about _TASK_BYTES:
# they stay in cache between the transform, the GEMM and the transform back.
_TASK_BYTES = 4 << 20
_MIN_TASKS = 4  # enough tasks to share out on a few cores, whatever the sizes
# Tasks of about this many tiles: smaller, and the GEMMs get small and the hand-offs weigh.
_TILES_PER_TASK = 128


def _run_tasks(fn, tasks):
    """fn(*task) for every task, on fastseq's thread count, each calling a single-threaded
    BLAS; results in task order."""
    from .._threads import get_num_threads

    with serial_blas():
        return run_tasks(fn, tasks, get_num_threads())


def _sum_in_task_order(partials, shapes, dtype):
    """Each task's partial arrays summed over the tasks in task order (the same bits for any
    thread count), into the first task's arrays (the tasks' own); zeros for no task."""
    if not partials:
        return tuple(np.zeros(shape, dtype=dtype) for shape in shapes)
    sums = partials[0]
    for part in partials[1:]:
        for total, value in zip(sums, part):
            total += value
    return sums


@functools.lru_cache(maxsize=256)
def _sequence_tasks(batch, tiles_per_seq, n, channels, itemsize):
    """((tile_lo, tile_hi), ...) ranges of whole sequences, from the problem's sizes only
    (cached: a training loop asks for the same few layers' splits every step)."""
    total = batch * tiles_per_seq
    if batch == 0:
        return ()
    by_bytes = -(-total * n * channels * itemsize // _TASK_BYTES)
    # the nearest count, not the floor: 240 tiles make two tasks of 120, not one of 240
    by_tiles = max(1, (total + _TILES_PER_TASK // 2) // _TILES_PER_TASK)
    count = max(1, min(batch, max(by_bytes, min(_MIN_TASKS, by_tiles))))
    per_task = -(-batch // count)
    return tuple((b0 * tiles_per_seq, min(batch, b0 + per_task) * tiles_per_seq)
                 for b0 in range(0, batch, per_task))


@functools.lru_cache(maxsize=None)
def _winograd(m, k, dtype_char):
    """(A^T, A, G, G^T, B^T) in the dtype of that character code ('f', 'd'), C-contiguous and
    read-only; built once per (m, k, dtype). (Keyed by ``dtype.char``: ``dtype.name`` costs
    microseconds per call.)"""
    a_t, g, b_t = _k.winograd_matrices(m, k)
    mats = [np.ascontiguousarray(a, dtype=dtype_char) for a in (a_t, a_t.T, g, g.T, b_t)]
    for a in mats:
        a.flags.writeable = False
    return tuple(mats)


# The Winograd path's range. Its transforms multiply values by up to beta = 10-50 (B^T's
# row sums) and its sums run over larger terms than the direct sum's, so near the float
# maximum it can overflow where the exact result is finite. _kernels.conv1d.winograd_bounds
# bounds every intermediate by the inputs' ranges; a conv runs Winograd only where those
# bounds stay under the float maximum / _RANGE_MARGIN (room for the rounding and the bias):
#   forward:  max|x| * max(beta, Cin * C_f * max|kernel|) <= FLT_MAX / 4, with C_f = 48
#             for kernel_size 3 (F(4, 3)) and 48-115 for kernel sizes 2-7 (e.g. Cin = 100,
#             max|kernel| = 0.1, k = 3: max|x| up to 1.8e35 in float32, 9e304 in float64),
#             and gamma * max|kernel| <= FLT_MAX / 4 (gamma <= 1.34);
# otherwise (and for an inf or NaN in x or the kernel) it takes the exact im2col path. The
# check is a max-abs pass over each task's sequences, on the task's thread just before its
# transform reads them (an integer max of the sign-cleared bits: it vectorizes; ~7 us for
# seed 004's first Conv1D input, (16, 64, 100) float32, against ~330 us for its forward).
#   backward: a task whose results come out with an inf or NaN (a check over its dx rows
#             and its partial dkernel and dbias, in cache: no pass over grad_y) and whose
#             max|grad_y| * max(alpha, Cout * C_dx * max|kernel|, tiles * (C_dk * max|x|
#             + alpha)) exceeds FLT_MAX / 4 runs again on grad_y scaled by an exact power
#             of two and scales its results back (the backward is linear in grad_y): the
#             same bits, where nothing underflows.
_RANGE_MARGIN = 4.0


@functools.lru_cache(maxsize=None)
def _winograd_bounds(m, k, dtype_char):
    """(_kernels.conv1d.winograd_bounds(m, k), the float maximum / _RANGE_MARGIN)."""
    return _k.winograd_bounds(m, k), float(np.finfo(dtype_char).max) / _RANGE_MARGIN


def _winograd_x_limit(bounds, top, cin, w_max):
    """The largest max|x| the Winograd forward takes with a kernel of max|kernel| = w_max;
    -1 for none (also for an inf or NaN in the kernel)."""
    if not bounds["gamma"] * w_max <= top:
        return -1.0
    return top / max(bounds["beta"], cin * bounds["forward"] * w_max)


def _winograd_grad_limit(bounds, top, cout, w_max, x_max, tiles):
    """The largest max|grad_y| a Winograd backward task of ``tiles`` tiles, whose forward
    read max|x| = x_max, runs unscaled."""
    return top / max(bounds["alpha"], cout * bounds["dx"] * w_max,
                     tiles * (bounds["dkernel"] * x_max + bounds["alpha"]))


def _input3d(x, name="x"):
    if isinstance(x, np.ndarray) and x.ndim != 3:
        raise ValueError(f"{name} must be 3-D (batch, steps, channels), got shape {x.shape}")
    return float_array(x, name, ndim=3)


# x: (B, L, Cin), kernel: (k, Cin, Cout), bias: (Cout,) -> y: (B, Lout, Cout)
def conv1d_forward(x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None = None,
                   strides: int = 1, padding: str = "valid", dilation_rate: int = 1
                   ) -> tuple[np.ndarray, dict]:
    """1-D convolution (cross-correlation, as Keras's Conv1D without its activation).

    x: (batch, steps, in_channels) float32/float64; kernel: (kernel_size, in_channels,
    filters) of x's dtype; bias: (filters,) or None. Returns ``(y, cache)`` with y of shape
    (batch, out_steps, filters) (see the module doc for out_steps).

    Stride 1 (any dilation, kernel_size 2-7) runs Winograd F(m, k): about half the GEMM
    FLOPs of im2col, at the price of a little more rounding (float32: ~1e-6 of the output's
    scale, against ~1e-7) and of tiles that mix m outputs' inputs: a causal output moves
    with later inputs at the rounding level, and an inf or NaN in grad_y spreads to dx over
    the whole tiles that read it. Inputs whose range could overflow Winograd's transforms
    (for kernel_size 3: max|x| * max|kernel| above FLT_MAX / (192 * in_channels), or max|x|
    above FLT_MAX / 40; the bounds for every size are in the module's source), or that hold
    an inf or NaN, take the exact path. Other cases: im2col rows and one GEMM."""
    x = _input3d(x)
    if isinstance(kernel, np.ndarray) and kernel.ndim != 3:
        raise ValueError(
            f"kernel must be 3-D (kernel_size, in_channels, filters), got shape {kernel.shape}"
        )
    kernel = float_array(kernel, "kernel", ndim=3, dtype=x.dtype)
    batch, length, cin = x.shape
    k, kernel_cin, cout = kernel.shape
    if cin < 1:
        raise ValueError(f"x must have at least 1 input channel, got shape {x.shape}")
    if kernel_cin != cin:
        raise ValueError(
            f"kernel must have shape (kernel_size, {cin}, filters) to match x's {cin} input "
            f"channels, got {kernel.shape}"
        )
    if k < 1 or cout < 1:
        raise ValueError(f"kernel_size and filters must be >= 1, got kernel shape {kernel.shape}")
    if bias is not None:
        bias = float_array(bias, "bias", ndim=1, dtype=x.dtype)
        if bias.shape != (cout,):
            raise ValueError(f"bias must have shape ({cout},) (the filters), got {bias.shape}")
    strides = positive_int(strides, "strides")
    dilation_rate = positive_int(dilation_rate, "dilation_rate")
    padding = padding_mode(padding, CONV_PADDINGS)
    if strides > 1 and dilation_rate > 1:
        raise ValueError(
            "strides > 1 is not supported together with dilation_rate > 1 (as in Keras), got "
            f"strides={strides} and dilation_rate={dilation_rate}"
        )
    out_length, pad_left, _ = conv1d_output_geometry(length, k, strides, padding,
                                                   dilation_rate)
    if out_length < 1:
        needed = dilation_rate * (k - 1) + 1 if padding == "valid" else 1
        raise ValueError(
            f"x has {length} steps, too short for kernel_size={k} with dilation_rate="
            f"{dilation_rate} under padding='{padding}': it needs at least {needed} steps"
        )
    bias_arg = bias if bias is not None else np.zeros(0, dtype=x.dtype)
    cache = {
        "x_shape": x.shape, "kernel": kernel, "has_bias": bias is not None, "strides": strides,
        "dilation_rate": dilation_rate, "pad_left": pad_left, "out_length": out_length,
    }
    m = _WINOGRAD_TILE.get(k) if strides == 1 else None
    bounds, top = _winograd_bounds(m, k, x.dtype.char) if m else (None, 0.0)
    w_max = _k.max_abs(kernel, 0, k) if m else 0.0
    x_limit = _winograd_x_limit(bounds, top, cin, w_max) if m else -1.0
    if x_limit >= 0:
        a_t, _, g, _, b_t = _winograd(m, k, x.dtype.char)
        u = (g @ kernel.reshape(k, cin * cout)).reshape(-1, cin, cout)
        n = u.shape[0]
        tiles_per_phase, total = _k.tile_counts(batch, out_length, m, dilation_rate)
        tasks = _sequence_tasks(batch, total // max(batch, 1), n, max(cin, cout), x.itemsize)
        v = np.empty((n, total, cin), dtype=x.dtype)
        y = np.empty((batch, out_length, cout), dtype=x.dtype)
        x_maxes = _run_tasks(
            lambda lo, hi: _k.winograd_forward_tiles(
                x, u, a_t, b_t, pad_left, dilation_rate, tiles_per_phase, lo, hi, bias_arg, v,
                y, x_limit
            ),
            tasks,
        )
        if all(x_max <= x_limit for x_max in x_maxes):
            cache.update(path="winograd", tile=m, u=u, v=v, tasks=tasks,
                         tiles_per_phase=tiles_per_phase, x_maxes=tuple(x_maxes), w_max=w_max)
            return y, cache
        # x's range is beyond what Winograd takes (a task skipped its tiles): the exact path
    # im2col: each task copies its sequences' windows into their rows of cols, one GEMM
    pointwise = k == 1 and strides == 1  # cols is x itself: no copy
    cols = x.reshape(batch * length, cin) if pointwise else np.empty(
        (batch * out_length, k * cin), dtype=x.dtype)
    y = np.empty((batch * out_length, cout), dtype=x.dtype)
    w2 = kernel.reshape(k * cin, cout)
    tasks = _sequence_tasks(batch, out_length, 1, k * cin + cout, x.itemsize)

    def forward_task(b_lo, b_hi):
        if not pointwise:
            _k.im2col(x, k, strides, dilation_rate, pad_left, out_length, b_lo, b_hi, cols)
        rows = slice(b_lo * out_length, b_hi * out_length)
        np.matmul(cols[rows], w2, out=y[rows])
        if bias is not None:
            y[rows] += bias

    _run_tasks(forward_task, [(lo // out_length, hi // out_length) for lo, hi in tasks])
    cache.update(path="im2col", cols=cols, tasks=tasks)
    return y.reshape(batch, out_length, cout), cache


def _check_cache(cache, keys, name):
    if not isinstance(cache, dict) or not all(key in cache for key in keys):
        raise TypeError(f"cache must be the cache returned by {name}")


def _grad(grad, shape, dtype, name="grad_y"):
    grad = float_array(grad, name, dtype=dtype)
    if grad.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (the forward's output), got {grad.shape}"
        )
    return grad


# grad_y: (B, Lout, Cout) -> dx: (B, L, Cin), dkernel: (k, Cin, Cout), dbias: (Cout,) or None
def conv1d_backward(cache: dict, grad_y: ArrayLike
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv1d_forward`: ``(dx, dkernel, dbias)``, dbias None when the
    forward had no bias."""
    _check_cache(cache, ("x_shape", "kernel", "path"), "conv1d_forward")
    kernel = cache["kernel"]
    batch, length, cin = cache["x_shape"]
    k, _, cout = kernel.shape
    out_length = cache["out_length"]
    gy = _grad(grad_y, (batch, out_length, cout), kernel.dtype)
    dilation, pad_left = cache["dilation_rate"], cache["pad_left"]
    if cache["path"] == "winograd":
        m = cache["tile"]
        _, a, _, g_t, b_t = _winograd(m, k, kernel.dtype.char)
        dx = np.empty((batch, length, cin), dtype=gy.dtype)  # each task zeroes its rows
        v, u, tiles_per_phase = cache["v"], cache["u"], cache["tiles_per_phase"]
        bounds, top = _winograd_bounds(m, k, kernel.dtype.char)
        tasks = [(lo, hi, _winograd_grad_limit(bounds, top, cout, cache["w_max"], x_max, hi - lo))
                 for (lo, hi), x_max in zip(cache["tasks"], cache["x_maxes"])]
        partials = _run_tasks(
            lambda lo, hi, grad_limit: _k.winograd_backward_tiles(
                v, gy, u, a, b_t, g_t, pad_left, dilation, tiles_per_phase, lo, hi, dx,
                grad_limit
            ),
            tasks,
        )
        dkernel, dbias = _sum_in_task_order(partials, ((k, cin, cout), (cout,)), gy.dtype)
    else:
        cols = cache["cols"]
        strides = cache["strides"]
        gy2 = gy.reshape(batch * out_length, cout)
        w2 = kernel.reshape(k * cin, cout)
        pointwise = k == 1 and strides == 1
        dx = np.empty((batch, length, cin), dtype=gy.dtype)

        def backward_task(b_lo, b_hi):
            rows = slice(b_lo * out_length, b_hi * out_length)
            dkernel_part = cols[rows].T @ gy2[rows]
            dbias_part = gy2[rows].sum(axis=0)
            if pointwise:
                np.matmul(gy2[rows], w2.T, out=dx.reshape(batch * length, cin)[rows])
            else:
                dcols = gy2[rows] @ w2.T
                # col2im reads rows b * Lout + t: hand it this task's block with b from 0
                _k.col2im(dcols, k, strides, dilation, pad_left, out_length, 0, b_hi - b_lo,
                          dx[b_lo:b_hi])
            return dkernel_part, dbias_part

        tasks = [(lo // out_length, hi // out_length) for lo, hi in cache["tasks"]]
        partials = _run_tasks(backward_task, tasks)
        dkernel, dbias = _sum_in_task_order(partials, ((k * cin, cout), (cout,)), gy.dtype)
        dkernel = dkernel.reshape(k, cin, cout)
    return dx, dkernel, (dbias if cache["has_bias"] else None)


# ----------------------------------------------------------------------------- pooling
#
# Pooling is memory-bound: one pass over x and one over dx. The kernels run on ranges of
# whole sequences (fastseq/_kernels/conv1d.py), which the fork-join hands to fastseq's
# threads; each element is computed alike in any range, so the bits never depend on the
# split or the thread count. A few tasks per thread rather than one: a thread that the
# scheduler holds back (a shared machine) leaves its share to the others. Below
# _POOL_SERIAL_BYTES moved the calling thread does it all: a hand-off to a helper costs
# about what copying that much does (~10-20 us).
_POOL_SERIAL_BYTES = 256 << 10
_POOL_TASK_BYTES = 1 << 20
_POOL_TASKS_PER_THREAD = 4


def _pool_tasks(batch, bytes_per_sequence, threads):
    """((b_lo, b_hi), ...) ranges of whole sequences covering [0, batch), in order."""
    if threads <= 1 or batch <= 1 or batch * bytes_per_sequence < _POOL_SERIAL_BYTES:
        return ((0, batch),)
    by_bytes = batch * bytes_per_sequence // _POOL_TASK_BYTES
    count = min(batch, max(threads, min(_POOL_TASKS_PER_THREAD * threads, by_bytes)))
    per_task = -(-batch // count)
    return tuple((lo, min(batch, lo + per_task)) for lo in range(0, batch, per_task))


def _run_pool_kernel(kernel, batch, bytes_per_sequence, *args):
    """kernel(*args, b_lo, b_hi) over [0, batch) on fastseq's threads."""
    from .._threads import get_num_threads

    threads = get_num_threads()
    tasks = _pool_tasks(batch, bytes_per_sequence, threads)
    if len(tasks) == 1:
        kernel(*args, *tasks[0])
    else:
        run_tasks(lambda lo, hi: kernel(*args, lo, hi), tasks, threads)


# x: (B, L, C) -> y: (B, Lout, C)
def max_pool1d_forward(x: ArrayLike, pool_size: int = 2, strides: int | None = None,
                       padding: str = "valid") -> tuple[np.ndarray, dict]:
    """Max over windows of ``pool_size`` steps every ``strides`` (default: pool_size), as
    Keras's MaxPooling1D. Padded steps ('same') never win; on ties the gradient goes to
    the first maximum. A window holding a NaN gives NaN, as NumPy's max, and its gradient
    goes to the first NaN. Returns ``(y, cache)``."""
    x = _input3d(x)
    pool_size = positive_int(pool_size, "pool_size")
    strides = pool_size if strides is None else positive_int(strides, "strides")
    padding = padding_mode(padding, POOL_PADDINGS)
    batch, length, channels = x.shape
    out_length, pad_left = max_pool1d_output_geometry(length, pool_size, strides, padding)
    if out_length < 1:
        raise ValueError(
            f"x has {length} steps, too short for pool_size={pool_size} under padding="
            f"'{padding}': it needs at least {pool_size if padding == 'valid' else 1} steps"
        )
    y = np.empty((batch, out_length, channels), dtype=x.dtype)
    argmax = np.empty((batch, out_length, channels), dtype=np.int32 if length < 2**31 else np.int64)
    _run_pool_kernel(_k.max_pool1d_forward, batch,
                     length * channels * x.itemsize
                     + out_length * channels * (x.itemsize + argmax.itemsize),
                     x, pool_size, strides, pad_left, y, argmax)
    cache = {"x_shape": x.shape, "argmax": argmax, "pool_size": pool_size, "strides": strides,
             "pad_left": pad_left, "dtype": x.dtype}
    return y, cache


# grad_y: (B, Lout, C) -> dx: (B, L, C)
def max_pool1d_backward(cache: dict, grad_y: ArrayLike) -> np.ndarray:
    """Gradient of :func:`max_pool1d_forward`: each window's gradient goes to its max."""
    _check_cache(cache, ("x_shape", "argmax", "pool_size"), "max_pool1d_forward")
    argmax = cache["argmax"]
    gy = _grad(grad_y, argmax.shape, cache["dtype"])
    dx = np.empty(cache["x_shape"], dtype=gy.dtype)
    batch = dx.shape[0]
    _run_pool_kernel(_k.max_pool1d_backward, batch,
                     (dx.nbytes + gy.nbytes + argmax.nbytes) // max(batch, 1),
                     gy, argmax, cache["pool_size"], cache["strides"], cache["pad_left"], dx)
    return dx


def _mask(mask, batch, length):
    if mask is None:
        return np.ones((0, 0), dtype=np.bool_), False
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "biu":
            raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
        mask = mask != 0
    if mask.shape != (batch, length):
        raise ValueError(
            f"mask must have shape (batch, steps) = {(batch, length)}, got {mask.shape}"
        )
    return np.ascontiguousarray(mask), True


# x: (B, L, C), mask: (B, L) bool -> y: (B, C)
def global_average_pool1d_forward(x: ArrayLike, mask: ArrayLike | None = None
                                  ) -> tuple[np.ndarray, dict]:
    """Mean over the steps, as Keras's GlobalAveragePooling1D: with a mask only the
    unmasked (True) steps count, and a fully masked sequence gives 0 (Keras: 0/0 = NaN).
    Returns ``(y, cache)``."""
    x = _input3d(x)
    batch, length, channels = x.shape
    mask, use_mask = _mask(mask, batch, length)
    if length < 1:
        raise ValueError(f"x must have at least 1 step, got shape {x.shape}")
    y = np.empty((batch, channels), dtype=x.dtype)
    inv_counts = np.empty(batch, dtype=x.dtype)
    _run_pool_kernel(_k.global_average_pool1d_forward, batch, length * channels * x.itemsize,
                     x, mask, use_mask, y, inv_counts)
    return y, {"x_shape": x.shape, "mask": mask, "use_mask": use_mask, "inv_counts": inv_counts}


# grad_y: (B, C) -> dx: (B, L, C)
def global_average_pool1d_backward(cache: dict, grad_y: ArrayLike) -> np.ndarray:
    _check_cache(cache, ("x_shape", "inv_counts"), "global_average_pool1d_forward")
    batch, length, channels = cache["x_shape"]
    inv_counts = cache["inv_counts"]
    gy = _grad(grad_y, (batch, channels), inv_counts.dtype)
    dx = np.empty(cache["x_shape"], dtype=gy.dtype)
    _run_pool_kernel(_k.global_average_pool1d_backward, batch, length * channels * gy.itemsize,
                     gy, inv_counts, cache["mask"], cache["use_mask"], dx)
    return dx


# x: (B, L, C), mask: (B, L) bool -> y: (B, C)
def global_max_pool1d_forward(x: ArrayLike, mask: ArrayLike | None = None
                              ) -> tuple[np.ndarray, dict]:
    """Max over the steps; ties send the gradient to the first maximum. A NaN among the
    (unmasked) steps gives NaN, as NumPy's max, and the gradient goes to the first NaN.

    With a mask only the unmasked (True) steps count and a fully masked sequence gives 0.
    Note: Keras's GlobalMaxPooling1D takes no mask (its call() reduces over every step), so
    a Keras-compatible layer calls this with mask=None. Returns ``(y, cache)``."""
    x = _input3d(x)
    batch, length, channels = x.shape
    mask, use_mask = _mask(mask, batch, length)
    if length < 1:
        raise ValueError(f"x must have at least 1 step, got shape {x.shape}")
    y = np.empty((batch, channels), dtype=x.dtype)
    argmax = np.empty((batch, channels), dtype=np.int64)
    _run_pool_kernel(_k.global_max_pool1d_forward, batch, length * channels * x.itemsize,
                     x, mask, use_mask, y, argmax)
    return y, {"x_shape": x.shape, "argmax": argmax, "dtype": x.dtype}


# grad_y: (B, C) -> dx: (B, L, C)
def global_max_pool1d_backward(cache: dict, grad_y: ArrayLike) -> np.ndarray:
    _check_cache(cache, ("x_shape", "argmax"), "global_max_pool1d_forward")
    argmax = cache["argmax"]
    gy = _grad(grad_y, argmax.shape, cache["dtype"])
    dx = np.empty(cache["x_shape"], dtype=gy.dtype)
    batch, length, channels = dx.shape
    _run_pool_kernel(_k.global_max_pool1d_backward, batch, length * channels * gy.itemsize,
                     gy, argmax, dx)
    return dx


__all__ = [
    "conv1d_forward", "conv1d_backward",
    "max_pool1d_forward", "max_pool1d_backward",
    "global_average_pool1d_forward", "global_average_pool1d_backward",
    "global_max_pool1d_forward", "global_max_pool1d_backward",
    "conv1d_output_length", "max_pool1d_output_length",
]
