"""The device GEMM against NumPy: shapes, strided (transposed) operands, alpha/beta."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from numba import cuda  # noqa: E402

from fastseq._kernels.cuda import SIMULATOR, gemm_backend, matmul, to_host  # noqa: E402


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (9, 4, 10), (2, 9, 3)])
def test_gemm_matches_numpy(m, k, n, dtype):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = matmul(a, b)
    assert c.dtype == dtype and tuple(c.shape) == (m, n)
    np.testing.assert_allclose(to_host(c), a @ b, **_tol(dtype))


def test_gemm_transposed_views_alpha_beta():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 3)).astype(np.float32)  # used as a.T: (3, 6)
    b = rng.standard_normal((5, 6)).astype(np.float32)  # used as b.T: (6, 5)
    c0 = rng.standard_normal((3, 5)).astype(np.float32)
    out = cuda.to_device(c0.copy())
    matmul(cuda.to_device(a).T, cuda.to_device(b).T, out=out, alpha=2.0, beta=-0.5)
    np.testing.assert_allclose(to_host(out), 2 * a.T @ b.T - 0.5 * c0, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 2.0)])
def test_gemm_split_k_long_inner_dimension(alpha, beta):
    # one output tile and a long K: the numba kernel splits K and sums the partials in order
    rng = np.random.default_rng(2)
    a = rng.standard_normal((40, 3)).astype(np.float32)  # used as a.T: (3, 40)
    b = rng.standard_normal((40, 2)).astype(np.float32)
    c0 = rng.standard_normal((3, 2)).astype(np.float32)
    out = cuda.to_device(c0.copy())
    matmul(cuda.to_device(a).T, b, out=out, alpha=alpha, beta=beta)
    first = to_host(out)
    np.testing.assert_allclose(first, alpha * a.T @ b + beta * c0, rtol=1e-5, atol=1e-5)
    again = cuda.to_device(c0.copy())
    matmul(cuda.to_device(a).T, b, out=again, alpha=alpha, beta=beta)
    assert first.tobytes() == to_host(again).tobytes()


def test_gemm_beta_zero_ignores_garbage_in_out():
    a = np.ones((2, 3), np.float32)
    out = cuda.to_device(np.full((2, 2), np.nan, np.float32))
    matmul(a, np.ones((3, 2), np.float32), out=out)
    np.testing.assert_array_equal(to_host(out), np.full((2, 2), 3, np.float32))


def test_gemm_empty_inner_dimension():
    out = cuda.to_device(np.full((2, 3), 4.0, np.float32))
    matmul(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), out=out, beta=0.5)
    np.testing.assert_array_equal(to_host(out), np.full((2, 3), 2.0, np.float32))


def test_gemm_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="a.shape\\[1\\] must equal b.shape\\[0\\]"):
        matmul(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="dtype float32"):
        matmul(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        matmul(np.zeros((2, 3), np.int64), np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match="out must be"):
        matmul(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32),
               out=cuda.device_array((3, 3), np.float32))


def test_gemm_backend_is_reported():
    name = gemm_backend()
    assert name in ("cupy", "nvmath", "torch", "numba")
    if SIMULATOR:
        assert name == "numba"
