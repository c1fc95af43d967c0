"""CUDA Conv1D and pooling against the NumPy reference: every padding mode, strides,
dilation, overlapping pooling windows, masks; bad input."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from fastseq._kernels import reference  # noqa: E402
from fastseq._kernels.cuda import conv1d as cuda_conv  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402


def _host_all(values):
    return [None if v is None else to_host(v) for v in values]


@pytest.mark.parametrize("padding,strides,dilation", [
    ("valid", 1, 1), ("valid", 2, 1), ("same", 2, 1), ("same", 1, 2), ("causal", 1, 2),
    ("causal", 2, 1),
])
def test_conv1d_matches_reference(padding, strides, dilation):
    rng = np.random.default_rng(strides * 10 + dilation)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    kernel = rng.standard_normal((2, 3, 2)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    y, cache = cuda_conv.conv1d_forward(x, kernel, bias, strides, padding, dilation)
    want_y, want_cache = reference.conv1d_forward(x, kernel, bias, strides, padding, dilation)
    np.testing.assert_allclose(to_host(y), want_y, rtol=1e-5, atol=1e-6)
    grad_y = rng.standard_normal(want_y.shape).astype(np.float32)
    got = _host_all(cuda_conv.conv1d_backward(cache, grad_y))
    want = reference.conv1d_backward(want_cache, grad_y)
    for name, g, w in zip(["dx", "dkernel", "dbias"], got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=name)


def test_conv1d_float64_without_bias():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 2))
    kernel = rng.standard_normal((3, 2, 2))
    y, cache = cuda_conv.conv1d_forward(x, kernel, None, 1, "same")
    want_y, want_cache = reference.conv1d_forward(x, kernel, None, 1, "same")
    np.testing.assert_allclose(to_host(y), want_y, rtol=1e-12)
    dx, dkernel, dbias = cuda_conv.conv1d_backward(cache, np.ones_like(want_y))
    want = reference.conv1d_backward(want_cache, np.ones_like(want_y))
    assert dbias is None and want[2] is None
    np.testing.assert_allclose(to_host(dx), want[0], rtol=1e-12)
    np.testing.assert_allclose(to_host(dkernel), want[1], rtol=1e-12)


@pytest.mark.parametrize("pool_size,strides,padding", [
    (2, None, "valid"), (3, 1, "valid"), (3, 1, "same"), (2, 3, "same"),
])
def test_max_pool_is_bitwise_the_reference(pool_size, strides, padding):
    rng = np.random.default_rng(pool_size)
    x = rng.standard_normal((2, 5, 2)).astype(np.float32)
    x[0, 1] = x[0, 2]  # a tie: the first step wins
    y, cache = cuda_conv.max_pool1d_forward(x, pool_size, strides, padding)
    want_y, want_cache = reference.max_pool1d_forward(x, pool_size, strides, padding)
    np.testing.assert_array_equal(to_host(y), want_y)
    grad_y = rng.standard_normal(want_y.shape).astype(np.float32)
    np.testing.assert_array_equal(to_host(cuda_conv.max_pool1d_backward(cache, grad_y)),
                                  reference.max_pool1d_backward(want_cache, grad_y))


MASK = np.array([[True, False, True, True], [False, False, False, False]])


@pytest.mark.parametrize("mask", [None, MASK], ids=["unmasked", "masked"])
@pytest.mark.parametrize("kind", ["average", "max"])
def test_global_pooling_matches_reference(kind, mask):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    grad_y = rng.standard_normal((2, 3)).astype(np.float32)
    forward = getattr(cuda_conv, f"global_{kind}_pool1d_forward")
    backward = getattr(cuda_conv, f"global_{kind}_pool1d_backward")
    y, cache = forward(x, mask)
    want_y, want_cache = getattr(reference, f"global_{kind}_pool1d_forward")(x, mask)
    np.testing.assert_allclose(to_host(y), want_y, rtol=1e-6, atol=1e-7)
    want_dx = getattr(reference, f"global_{kind}_pool1d_backward")(want_cache, grad_y)
    np.testing.assert_allclose(to_host(backward(cache, grad_y)), want_dx, rtol=1e-6, atol=1e-7)


def test_bad_arguments_are_clear_errors():
    x = np.zeros((1, 3, 2), np.float32)
    with pytest.raises(ValueError, match="shorter than the kernel's span"):
        cuda_conv.conv1d_forward(x, np.zeros((4, 2, 1), np.float32))
    with pytest.raises(ValueError, match="Cin = 2"):
        cuda_conv.conv1d_forward(x, np.zeros((2, 3, 1), np.float32))
    with pytest.raises(ValueError, match="padding must be one of"):
        cuda_conv.conv1d_forward(x, np.zeros((1, 2, 1), np.float32), padding="full")
    with pytest.raises(ValueError, match="strides must be >= 1"):
        cuda_conv.conv1d_forward(x, np.zeros((1, 2, 1), np.float32), strides=0)
    with pytest.raises(ValueError, match="shorter than pool_size"):
        cuda_conv.max_pool1d_forward(x, pool_size=4)
    with pytest.raises(ValueError, match="mask must have shape"):
        cuda_conv.global_average_pool1d_forward(x, np.ones((1, 2), bool))
    _, cache = cuda_conv.conv1d_forward(x, np.zeros((1, 2, 1), np.float32))
    with pytest.raises(ValueError, match="grad_y must have shape"):
        cuda_conv.conv1d_backward(cache, np.zeros((1, 2, 1), np.float32))
