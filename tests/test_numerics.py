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



# ------------------------------------------------------------ Winograd near the float maximum

def _rel_err(got, want):
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("k,padding,dilation", [
    (2, "valid", 1), (3, "valid", 1), (3, "same", 2), (4, "causal", 1), (5, "valid", 1),
    (6, "same", 1), (7, "valid", 1),
])
def test_winograd_does_not_overflow_where_the_exact_result_is_finite(k, padding, dilation):
    rng = np.random.default_rng(k)
    x = (rng.choice([-1.0, 1.0], (3, 40, 16)) * rng.uniform(2e37, 3e37, (3, 40, 16)))
    x = x.astype(np.float32)
    kernel = (rng.uniform(-1, 1, (k, 16, 5)) / np.sqrt(16 * k)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    y, cache = fast.conv1d_forward(x, kernel, bias, padding=padding, dilation_rate=dilation)
    y_ref, cache_ref = ref.conv1d_forward(x.astype(np.float64), kernel.astype(np.float64),
                                          bias.astype(np.float64), 1, padding, dilation)
    assert np.isfinite(y_ref).all() and np.abs(y_ref).max() < 3e38
    assert np.isfinite(y).all()
    assert _rel_err(y, y_ref) < 1e-6
    grad = (0.01 * rng.standard_normal(y.shape)).astype(np.float32)
    got = fast.conv1d_backward(cache, grad)
    want = ref.conv1d_backward(cache_ref, grad.astype(np.float64))
    for name, g, w in zip(("dx", "dkernel", "dbias"), got, want):
        assert np.abs(w).max() < 1e38, name
        assert np.isfinite(g).all(), name
        assert _rel_err(g, w) < 1e-5, name


def test_winograd_kernel_size_3_with_inputs_of_3e37():
    """F(4, 3)'s input transform has rows 4 x0 - 5 x2 + x4: inputs of period 4 (+, +, -, -)
    meet them with the same signs, 10 x = 3e38, and the products overflowed."""
    x = np.tile([1.0, 1.0, -1.0, -1.0], 10)[None, :, None] * np.full((2, 1, 16), 3e37)
    x = x.astype(np.float32)
    kernel = np.full((3, 16, 2), 0.1, np.float32)
    kernel[1] *= -1
    y, cache = fast.conv1d_forward(x, kernel)
    y_ref, _ = ref.conv1d_forward(x.astype(np.float64), kernel.astype(np.float64))
    assert np.isfinite(y_ref).all() and np.abs(y_ref).max() < 3e38
    assert np.isfinite(y).all()
    assert _rel_err(y, y_ref) < 1e-6


def test_winograd_float64_near_its_maximum():
    rng = np.random.default_rng(1)
    x = rng.choice([-1.0, 1.0], (2, 30, 8)) * 1.5e307
    kernel = rng.uniform(-1, 1, (5, 8, 3)) / 6
    y, _ = fast.conv1d_forward(x, kernel)
    y_ref, _ = ref.conv1d_forward(x, kernel)
    assert np.isfinite(y_ref).all() and np.isfinite(y).all()
    assert _rel_err(y, y_ref) < 1e-12


def test_ordinary_ranges_keep_the_winograd_path():
    rng = np.random.default_rng(2)
    kernel = (0.1 * rng.standard_normal((3, 100, 64))).astype(np.float32)
    for scale in (1.0, 1e6, 1e30):
        x = (scale * rng.standard_normal((4, 50, 100))).astype(np.float32)
        assert fast.conv1d_forward(x, kernel)[1]["path"] == "winograd"
    x = (1e37 * rng.standard_normal((4, 50, 100))).astype(np.float32)
    assert fast.conv1d_forward(x, kernel)[1]["path"] == "im2col"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_huge_grad_y_is_scaled_exactly(dtype):
    """A backward task whose grad_y could overflow the transforms runs on grad_y scaled by
    a power of two: exactly the unscaled arithmetic, so 2**e * grad_y gives 2**e times the
    gradients, bit for bit; and finite where the exact gradients are."""
    rng = np.random.default_rng(4)
    x = (1e-3 * rng.standard_normal((6, 64, 8))).astype(dtype)
    kernel = (0.01 * rng.standard_normal((3, 8, 7))).astype(dtype)
    y, cache = fast.conv1d_forward(x, kernel, np.zeros(7, dtype), padding="same")
    assert cache["path"] == "winograd"
    grad = rng.standard_normal(y.shape)
    grad = (grad - grad.mean(axis=(0, 1))).astype(dtype)  # dbias stays finite scaled too
    e = 124 if dtype == np.float32 else 1020  # A @ grad (up to 15 |grad|) overflowed
    big = grad * dtype(2.0) ** e
    small = fast.conv1d_backward(cache, grad)
    scaled = fast.conv1d_backward(cache, big)
    exact = ref.conv1d_backward(
        ref.conv1d_forward(x.astype(np.float64), kernel.astype(np.float64), np.zeros(7), 1,
                           "same")[1], grad.astype(np.float64))
    for name, a, b, w in zip(("dx", "dkernel", "dbias"), small, scaled, exact):
        # the exact gradient, scaled, is finite
        assert np.abs(w).max() < 2.0 ** (np.finfo(dtype).maxexp - e - 2), name
        assert np.isfinite(b).all(), name
        np.testing.assert_array_equal(b, a * dtype(2.0) ** e, err_msg=name)


def test_inf_and_nan_in_x_reach_exactly_the_outputs_that_read_them():
    x = np.zeros((1, 30, 2), np.float32)
    x[0, 7, 0] = np.nan
    x[0, 20, 1] = np.inf
    kernel = np.ones((3, 2, 1), np.float32)
    y, cache = fast.conv1d_forward(x, kernel)
    y_ref, _ = ref.conv1d_forward(x, kernel)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(y_ref))
    np.testing.assert_array_equal(np.nan_to_num(y), np.nan_to_num(y_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_abs(dtype):
    from fastseq._kernels.conv1d import max_abs

    rng = np.random.default_rng(6)
    a = rng.standard_normal((5, 7, 3)).astype(dtype)
    a[2, 3, 1] = -40
    assert max_abs(a, 0, 5) == 40 and max_abs(a, 3, 5) == np.abs(a[3:]).max()
    assert max_abs(a, 2, 2) == 0
    a[4, 0, 0] = -np.inf
    assert max_abs(a, 0, 5) == np.inf and max_abs(a, 0, 4) == 40
    a[1, 1, 1] = np.nan
    assert np.isnan(max_abs(a, 0, 5)) and max_abs(a, 2, 4) == 40


if __name__ == "__main__":
    {"cuda": _cuda_worker}[sys.argv[1]]()
