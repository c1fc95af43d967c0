"""Numbers at the edges: NaN in max pooling (fast, reference and CUDA kernels agree with
NumPy's max), and the Winograd Conv1D near the float maximum (no overflow where the exact
result is finite)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastseq import kernels as fast
from fastseq._kernels import reference as ref

_HERE = os.path.abspath(__file__)
_CUDA_TESTS = os.path.join(os.path.dirname(_HERE), "cuda")


# ------------------------------------------------------------------------- NaN in max pooling

def _with_nans(rng, shape, dtype, share=0.15):
    x = np.round(rng.standard_normal(shape), 1).astype(dtype)  # ties as well
    x[rng.random(shape) < share] = np.nan
    x[rng.random(shape) < 0.05] = -np.inf
    return x


def _numpy_max_pool(x, pool_size, strides, padding):
    """NumPy's max over each window's real steps (the geometry from the reference)."""
    out_length, pad_left = ref.max_pool1d_output_geometry(x.shape[1], pool_size, strides,
                                                          padding)
    y = np.empty((x.shape[0], out_length, x.shape[2]), dtype=x.dtype)
    for t in range(out_length):
        start = t * strides - pad_left
        y[:, t] = x[:, max(start, 0):start + pool_size].max(axis=1)
    return y


def test_max_pool_of_the_issue_example():
    x = np.array([1, np.nan, np.nan, 2], dtype=np.float32).reshape(1, 4, 1)
    for impl in (fast, ref):
        y, cache = impl.max_pool1d_forward(x, 2)
        np.testing.assert_array_equal(y.ravel(), [np.nan, np.nan])
        y, cache = impl.max_pool1d_forward(x, 2, 1)
        np.testing.assert_array_equal(y.ravel(), [np.nan, np.nan, np.nan])
        # each window's gradient goes to its first NaN
        dx = impl.max_pool1d_backward(cache, np.array([1, 10, 100], np.float32).reshape(1, 3, 1))
        np.testing.assert_array_equal(dx.ravel(), [0, 11, 100, 0])
        y, cache = impl.global_max_pool1d_forward(x)
        np.testing.assert_array_equal(y.ravel(), [np.nan])
        dx = impl.global_max_pool1d_backward(cache, np.array([[5]], np.float32))
        np.testing.assert_array_equal(dx.ravel(), [0, 5, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool_size,strides,padding", [
    (2, None, "valid"), (3, 1, "valid"), (3, 2, "same"), (4, 3, "same"), (5, 2, "valid"),
])
def test_max_pool_propagates_nan_as_numpy(dtype, pool_size, strides, padding):
    rng = np.random.default_rng(pool_size * 10 + (strides or 0))
    x = _with_nans(rng, (3, 23, 17), dtype)
    want = _numpy_max_pool(x, pool_size, strides or pool_size, padding)
    y, cache = fast.max_pool1d_forward(x, pool_size, strides, padding)
    y_ref, cache_ref = ref.max_pool1d_forward(x, pool_size, strides, padding)
    np.testing.assert_array_equal(y_ref, want)
    np.testing.assert_array_equal(y, want)
    assert np.isnan(want).any() and not np.isnan(want).all()
    # the gradient takes the same step in both: the first NaN, else the first maximum
    grad = rng.standard_normal(y.shape).astype(dtype)
    dx = fast.max_pool1d_backward(cache, grad)
    np.testing.assert_array_equal(dx, ref.max_pool1d_backward(cache_ref, grad))
    assert np.isfinite(dx).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_global_max_pool_propagates_nan_as_numpy(dtype, masked):
    rng = np.random.default_rng(3)
    x = _with_nans(rng, (6, 19, 13), dtype, share=0.03)
    mask = None
    if masked:
        mask = rng.random(x.shape[:2]) < 0.6
        mask[0] = False  # fully masked: 0, no gradient
    keep = np.ones(x.shape[:2], bool) if mask is None else mask
    want = np.where(keep[:, :, None], x, -np.inf).max(axis=1)
    want[~keep.any(axis=1)] = 0
    y, cache = fast.global_max_pool1d_forward(x, mask)
    y_ref, cache_ref = ref.global_max_pool1d_forward(x, mask)
    np.testing.assert_array_equal(y_ref, want)
    np.testing.assert_array_equal(y, want)
    assert np.isnan(want).any() and not np.isnan(want).all()
    grad = rng.standard_normal(y.shape).astype(dtype)
    dx = fast.global_max_pool1d_backward(cache, grad)
    np.testing.assert_array_equal(dx, ref.global_max_pool1d_backward(cache_ref, grad))
    # a NaN max's gradient sits at the first kept NaN
    first_nan = np.where(np.isnan(x) & keep[:, :, None], np.arange(x.shape[1])[:, None],
                         x.shape[1]).min(axis=1)
    b, c = np.nonzero(np.isnan(want))
    np.testing.assert_array_equal(dx[b, first_nan[b, c], c], grad[b, c])


def test_a_masked_nan_does_not_count():
    x = np.array([[[3.0], [np.nan], [1.0]]])
    for impl in (fast, ref):
        y, cache = impl.global_max_pool1d_forward(x, np.array([[True, False, True]]))
        assert y.ravel().tolist() == [3.0]
        dx = impl.global_max_pool1d_backward(cache, np.array([[2.0]]))
        assert dx.ravel().tolist() == [2.0, 0.0, 0.0]


# CUDA: the same checks in a child process, on the GPU where there is one and otherwise in
# Numba's simulator, chosen by tests/cuda/conftest.py's rule (the simulator must be chosen
# before numba.cuda is first imported, so not in this process).

def _cuda_worker():
    sys.path.insert(0, _CUDA_TESTS)
    import conftest  # noqa: F401  (sets NUMBA_ENABLE_CUDASIM=1 where there is no GPU)

    from fastseq._kernels.cuda import conv1d as cuda_conv
    from fastseq._kernels.cuda import to_host

    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = _with_nans(rng, (2, 9, 3), dtype, share=0.2)
        x[0, :4, 0] = [1, np.nan, np.nan, 2]
        for pool_size, strides, padding in ((2, 2, "valid"), (3, 1, "same"), (2, 1, "valid")):
            y, cache = cuda_conv.max_pool1d_forward(x, pool_size, strides, padding)
            y_ref, cache_ref = ref.max_pool1d_forward(x, pool_size, strides, padding)
            np.testing.assert_array_equal(to_host(y), y_ref)
            np.testing.assert_array_equal(
                to_host(y), _numpy_max_pool(x, pool_size, strides, padding))
            grad = rng.standard_normal(y_ref.shape).astype(dtype)
            np.testing.assert_array_equal(to_host(cuda_conv.max_pool1d_backward(cache, grad)),
                                          ref.max_pool1d_backward(cache_ref, grad))
        for mask in (None, rng.random(x.shape[:2]) < 0.7):
            y, cache = cuda_conv.global_max_pool1d_forward(x, mask)
            y_ref, cache_ref = ref.global_max_pool1d_forward(x, mask)
            np.testing.assert_array_equal(to_host(y), y_ref)
            grad = rng.standard_normal(y_ref.shape).astype(dtype)
            np.testing.assert_array_equal(
                to_host(cuda_conv.global_max_pool1d_backward(cache, grad)),
                ref.global_max_pool1d_backward(cache_ref, grad))
    print("cuda pooling: NaN as NumPy")


def test_cuda_max_pool_propagates_nan_as_numpy():
    pytest.importorskip("numba.cuda")
    proc = subprocess.run([sys.executable, _HERE, "cuda"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NaN as NumPy" in proc.stdout


if __name__ == "__main__":
    {"cuda": _cuda_worker}[sys.argv[1]]()
