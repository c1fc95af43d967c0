"""The pooling kernels split over the batch (issue 16): the same bits for any split and any
thread count, equal to the NumPy reference, and no memory written outside each task's
sequences or outside the arrays."""
import threading

import numba
import numpy as np
import pytest

import fastseq
from fastseq._api import conv1d as fast
from fastseq._kernels import conv1d as _k
from fastseq._kernels._forkjoin import run_tasks
from fastseq._kernels.reference import conv1d as ref

FLOATS = [np.float32, np.float64]
# (37, 300, 16) float32 moves ~0.7 MB per pass: above the serial threshold, several tasks
SHAPE = (37, 300, 16)


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(SHAPE), 1).astype(dtype)  # ties in the windows
    x[3, 10:13, 2] = np.nan  # a NaN wins its windows and the global max
    mask = rng.random(SHAPE[:2]) < 0.7
    mask[5] = False  # a fully masked sequence
    return rng, x, mask


def _all_results(x, mask, rng):
    """Every pooling forward and backward output, in a fixed order."""
    out = []
    for pool, strides, padding in ((3, None, "valid"), (3, 2, "same"), (4, 1, "valid")):
        y, cache = fast.max_pool1d_forward(x, pool, strides, padding)
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        out += [y, cache["argmax"], fast.max_pool1d_backward(cache, grad)]
    for name in ("global_average_pool1d", "global_max_pool1d"):
        forward = getattr(fast, name + "_forward")
        backward = getattr(fast, name + "_backward")
        for m in (None, mask):
            y, cache = forward(x, m)
            out += [y, backward(cache, rng.standard_normal(y.shape).astype(x.dtype))]
    return out


@pytest.mark.parametrize("dtype", FLOATS)
def test_the_batch_splits_into_several_tasks_at_these_sizes(dtype):
    _, x, _ = _problem(dtype)
    tasks = fast._pool_tasks(SHAPE[0], SHAPE[1] * SHAPE[2] * x.itemsize, 2)
    assert len(tasks) >= 2


@pytest.mark.parametrize("dtype", FLOATS)
def test_results_match_the_reference(dtype):
    rng, x, mask = _problem(dtype)
    grad3 = rng.standard_normal((SHAPE[0], SHAPE[1] // 3, SHAPE[2])).astype(dtype)
    y, cache = fast.max_pool1d_forward(x, 3)
    want_y, want_cache = ref.max_pool1d_forward(x, 3)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(fast.max_pool1d_backward(cache, grad3),
                                  ref.max_pool1d_backward(want_cache, grad3))
    grad2 = rng.standard_normal((SHAPE[0], SHAPE[2])).astype(dtype)
    for name in ("global_average_pool1d", "global_max_pool1d"):
        y, cache = getattr(fast, name + "_forward")(x, mask)
        want_y, want_cache = getattr(ref, name + "_forward")(x, mask)
        tol = dict(rtol=1e-6 if dtype == np.float32 else 1e-12, atol=0)
        np.testing.assert_allclose(y, want_y, **tol)
        np.testing.assert_allclose(getattr(fast, name + "_backward")(cache, grad2),
                                   getattr(ref, name + "_backward")(want_cache, grad2), **tol)


@pytest.mark.parametrize("dtype", FLOATS)
def test_bitwise_the_same_for_any_thread_count(dtype):
    before = fastseq.get_num_threads()
    results = {}
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            fastseq.set_num_threads(threads)
            rng, x, mask = _problem(dtype)
            results[threads] = _all_results(x, mask, rng)
    finally:
        fastseq.set_num_threads(before)
    first = results[1]
    for other in results.values():
        assert len(other) == len(first)
        for a, b in zip(first, other):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _kernel_calls(x, mask, dtype):
    """(name, kernel, args before (b_lo, b_hi), output arrays) for every pooling kernel, the
    outputs inside guarded buffers (see _guarded)."""
    rng = np.random.default_rng(3)
    batch, length, channels = x.shape
    out_length = (length - 3) // 2 + 1
    y3, argmax3 = _guarded((batch, out_length, channels), dtype), _guarded(
        (batch, out_length, channels), np.int32)
    gy3 = rng.standard_normal((batch, out_length, channels)).astype(dtype)
    ref_argmax3 = fast.max_pool1d_forward(x, 3, 2)[1]["argmax"]
    y2, inv = _guarded((batch, channels), dtype), _guarded((batch,), dtype)
    ymax2, argmax2 = _guarded((batch, channels), dtype), _guarded((batch, channels), np.int64)
    gy2 = rng.standard_normal((batch, channels)).astype(dtype)
    inv_counts = fast.global_average_pool1d_forward(x, mask)[1]["inv_counts"]
    ref_argmax2 = fast.global_max_pool1d_forward(x, mask)[1]["argmax"]
    dx = [_guarded(x.shape, dtype) for _ in range(3)]
    return [
        ("max_pool1d_forward", _k.max_pool1d_forward, (x, 3, 2, 0, y3[0], argmax3[0]),
         [y3, argmax3]),
        ("max_pool1d_backward", _k.max_pool1d_backward, (gy3, ref_argmax3, 3, 2, 0, dx[0][0]),
         [dx[0]]),
        ("global_average_pool1d_forward", _k.global_average_pool1d_forward,
         (x, mask, True, y2[0], inv[0]), [y2, inv]),
        ("global_average_pool1d_backward", _k.global_average_pool1d_backward,
         (gy2, inv_counts, mask, True, dx[1][0]), [dx[1]]),
        ("global_max_pool1d_forward", _k.global_max_pool1d_forward,
         (x, mask, True, ymax2[0], argmax2[0]), [ymax2, argmax2]),
        ("global_max_pool1d_backward", _k.global_max_pool1d_backward,
         (gy2, ref_argmax2, dx[2][0]), [dx[2]]),
    ]


_SENTINEL = 77


def _guarded(shape, dtype):
    """(view, buffer): a C-contiguous view of ``shape`` inside a buffer with one extra
    sequence-sized block of sentinels on each side."""
    block = int(np.prod(shape[1:], dtype=np.int64))
    buffer = np.full(block * (shape[0] + 2), _SENTINEL, dtype=dtype)
    view = buffer[block:-block].reshape(shape)
    assert view.flags.c_contiguous
    return view, buffer, block


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_task_writes_only_its_own_sequences(dtype):
    _, x, mask = _problem(dtype)
    batch = x.shape[0]
    lo, hi = 11, 23
    for name, kernel, args, outputs in _kernel_calls(x, mask, dtype):
        for view, _, _ in outputs:
            view[...] = _SENTINEL
        kernel(*args, lo, hi)
        for view, buffer, block in outputs:
            outside = np.concatenate([buffer[:block * (lo + 1)],
                                      buffer[block * (hi + 1):]])
            assert (outside == _SENTINEL).all(), f"{name} wrote outside sequences [{lo}, {hi})"
        # and its sequences hold what one call over the whole batch gives them
        part = [view[lo:hi].copy() for view, _, _ in outputs]
        kernel(*args, 0, batch)
        for got, (view, _, _) in zip(part, outputs):
            np.testing.assert_array_equal(got, view[lo:hi], err_msg=name)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("threads", [1, 2, 3, 4, 8])
def test_any_split_gives_the_same_bits_and_stays_inside_the_arrays(dtype, threads):
    _, x, mask = _problem(dtype)
    batch, length, channels = x.shape
    tasks = fast._pool_tasks(batch, length * channels * x.itemsize, threads)
    whole = []
    for name, kernel, args, outputs in _kernel_calls(x, mask, dtype):
        kernel(*args, 0, batch)
        whole.append([view.copy() for view, _, _ in outputs])
    for (name, kernel, args, outputs), want in zip(_kernel_calls(x, mask, dtype), whole):
        run_tasks(lambda lo, hi: kernel(*args, lo, hi), list(tasks), threads)
        for (view, buffer, block), w in zip(outputs, want):
            assert view.tobytes() == w.tobytes(), name
            assert (buffer[:block] == _SENTINEL).all() and (buffer[-block:] == _SENTINEL).all()


@pytest.mark.parametrize("batch,bytes_per_sequence,threads", [
    (64, 500 * 128 * 4, 2), (64, 500 * 128 * 4, 3), (7, 1 << 20, 16), (2, 1 << 20, 2),
    (1000, 4096, 2), (37, 19200, 4), (1, 1 << 24, 2), (0, 100, 2), (5, 10, 2), (64, 100, 1),
])
def test_tasks_cover_the_batch_in_order(batch, bytes_per_sequence, threads):
    tasks = fast._pool_tasks(batch, bytes_per_sequence, threads)
    assert tasks[0][0] == 0 and tasks[-1][1] == batch
    assert all(a[1] == b[0] for a, b in zip(tasks, tasks[1:]))
    assert all(lo < hi for lo, hi in tasks) or tasks == ((0, 0),)
    if threads == 1 or batch * bytes_per_sequence < fast._POOL_SERIAL_BYTES:
        assert len(tasks) == 1
    else:
        assert min(threads, batch) <= len(tasks) <= fast._POOL_TASKS_PER_THREAD * threads


def test_empty_batch():
    x = np.zeros((0, 9, 4), np.float32)
    y, cache = fast.max_pool1d_forward(x, 3)
    assert y.shape == (0, 3, 4)
    assert fast.max_pool1d_backward(cache, y).shape == x.shape
    for name in ("global_average_pool1d", "global_max_pool1d"):
        y, cache = getattr(fast, name + "_forward")(x)
        assert y.shape == (0, 4)
        assert getattr(fast, name + "_backward")(cache, y).shape == x.shape


def test_two_threads_calling_at_once_get_their_own_results():
    # the second caller finds the helpers taken and runs its tasks on its own thread
    rng, x, mask = _problem(np.float32)
    want = _all_results(x, mask, np.random.default_rng(1))
    got = [None, None]

    def call(i):
        got[i] = _all_results(x, mask, np.random.default_rng(1))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in got:
        for a, b in zip(want, result):
            assert a.tobytes() == b.tobytes()
