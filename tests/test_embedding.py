"""Embedding kernels against the NumPy reference, determinism, and every bad input."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastseq
from fastseq import kernels
from fastseq._kernels import reference

FLOATS = [np.float32, np.float64]
INTS = [np.int32, np.int64]


@st.composite
def embedding_problem(draw):
    """Random (weights, indices, grad_output): empty index arrays, one index, repeated
    indices, all-equal indices, V = 1, D = 1, any index rank, C/F order, non-contiguous."""
    vocab = draw(st.sampled_from([1, 2, 7, 50, 3000]))
    dim = draw(st.sampled_from([1, 3, 8, 33]))
    shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple))
    float_dtype = draw(st.sampled_from(FLOATS))
    index_dtype = draw(st.sampled_from(INTS))
    mode = draw(st.sampled_from(["random", "all_same", "few_rows"]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if mode == "all_same":
        indices = np.full(shape, rng.integers(vocab), dtype=index_dtype)
    elif mode == "few_rows":
        indices = rng.integers(0, min(vocab, 3), size=shape).astype(index_dtype)
    else:
        indices = rng.integers(0, vocab, size=shape).astype(index_dtype)
    weights = rng.standard_normal((vocab, dim)).astype(float_dtype)
    grad = rng.standard_normal(shape + (dim,)).astype(float_dtype)
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        # .copy(order="F") keeps 0-d arrays 0-d (np.asfortranarray would not)
        weights, indices, grad = (a.copy(order="F") for a in (weights, indices, grad))
    elif layout == "strided":
        weights = np.repeat(weights, 2, axis=1)[:, ::2]
        grad = np.repeat(grad, 2, axis=-1)[..., ::2]
    return weights, indices, grad


@settings(max_examples=60, deadline=None)
@given(embedding_problem())
def test_forward_matches_reference(problem):
    weights, indices, _ = problem
    got = kernels.embedding_forward(weights, indices)
    want = reference.embedding_forward(weights, indices)
    assert got.shape == indices.shape + (weights.shape[1],)
    assert got.dtype == weights.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(embedding_problem(), st.sampled_from([None, 0, -1]))
def test_dense_backward_matches_reference_bitwise(problem, padding_idx):
    weights, indices, grad = problem
    vocab = weights.shape[0]
    got = kernels.embedding_backward(indices, grad, vocab, padding_idx=padding_idx)
    want = reference.embedding_backward(indices, grad, vocab, padding_idx=padding_idx)
    assert got.shape == (vocab, weights.shape[1]) and got.dtype == grad.dtype
    # Both sum each row in position order starting from zero: bitwise equal.
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(embedding_problem(), st.sampled_from([None, 0, 2]))
def test_sparse_backward_matches_reference_bitwise(problem, padding_idx):
    weights, indices, grad = problem
    rows, values = kernels.embedding_backward_sparse(indices, grad, padding_idx=padding_idx)
    want_rows, want_values = reference.embedding_backward_sparse(
        indices, grad, padding_idx=padding_idx
    )
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(values, want_values)
    assert values.shape == (rows.size, weights.shape[1])


@pytest.mark.parametrize("dim", [3, 200])
def test_sparse_backward_negative_zero_as_np_add_at(dim):
    # values start uninitialized and take 0 + g at a row's first position: -0.0 must come
    # out as +0.0, exactly as np.add.at's zero-initialized sum (serial and parallel paths)
    indices = np.array([[4, 1, 4] * 100], dtype=np.int64)
    grad = np.full((1, 300, dim), -0.0, dtype=np.float32)
    rows, values = kernels.embedding_backward_sparse(indices, grad)
    ref_rows, ref_values = reference.embedding_backward_sparse(indices, grad)
    np.testing.assert_array_equal(rows, ref_rows)
    assert values.tobytes() == ref_values.tobytes()
    assert not np.signbit(values).any()


def test_sparse_backward_huge_index_range_compacts():
    # Indices up to 10^12: the counting-sort table must not be sized by the range.
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 10**12, size=(40,)).astype(np.int64)
    indices[5] = indices[9]
    grad = rng.standard_normal((40, 4))
    rows, values = kernels.embedding_backward_sparse(indices, grad, padding_idx=int(indices[3]))
    want_rows, want_values = reference.embedding_backward_sparse(
        indices, grad, padding_idx=int(indices[3])
    )
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(values, want_values)


def test_sparse_and_dense_agree_with_num_embeddings():
    rng = np.random.default_rng(2)
    indices = rng.integers(0, 30, size=(6, 9))
    grad = rng.standard_normal((6, 9, 5)).astype(np.float32)
    dense = kernels.embedding_backward(indices, grad, 30, padding_idx=-2)
    rows, values = kernels.embedding_backward_sparse(indices, grad, padding_idx=-2, num_embeddings=30)
    assert 28 not in rows
    np.testing.assert_array_equal(dense[rows], values)
    untouched = np.setdiff1d(np.arange(30), rows)
    assert not dense[untouched].any()


def test_backward_is_gradient_of_forward_by_finite_differences():
    # L = sum(forward(W, idx) * G): dL/dW is the scatter-add of G; check a few entries.
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((6, 3))
    indices = np.array([[0, 2, 2], [5, 2, 0]])
    grad = rng.standard_normal((2, 3, 3))
    analytic = kernels.embedding_backward(indices, grad, 6)
    eps = 1e-6
    for row, col in [(0, 0), (2, 1), (5, 2), (3, 0)]:
        plus, minus = weights.copy(), weights.copy()
        plus[row, col] += eps
        minus[row, col] -= eps
        numeric = (
            np.sum(kernels.embedding_forward(plus, indices) * grad)
            - np.sum(kernels.embedding_forward(minus, indices) * grad)
        ) / (2 * eps)
        assert abs(numeric - analytic[row, col]) < 1e-7


def test_forward_out_argument():
    rng = np.random.default_rng(4)
    weights = rng.standard_normal((10, 4)).astype(np.float32)
    indices = np.array([[1, 9], [0, 1]], dtype=np.int32)
    out = np.full((2, 2, 4), np.nan, dtype=np.float32)
    result = kernels.embedding_forward(weights, indices, out=out)
    assert result is out
    np.testing.assert_array_equal(out, weights[indices])


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_bad_index_leaves_out_unwritten(index_dtype):
    # the kernel checks every index before it copies a row, in the serial and parallel paths
    weights = np.ones((50, 300), dtype=np.float32)
    for n in (3, 2000):
        indices = np.arange(n, dtype=index_dtype) % 50
        indices[-1] = 50
        out = np.full((n, 300), 7.0, dtype=np.float32)
        with pytest.raises(IndexError, match=rf"index 50 at position \({n - 1},\)"):
            kernels.embedding_forward(weights, indices, out=out)
        assert (out == 7.0).all()


@pytest.mark.parametrize("dim", [24, 160])
def test_gradients_bitwise_equal_with_one_and_two_threads(dim):
    # Large enough that the parallel paths run (the backward's only for rows of >= 512
    # bytes: dim 160 in float32); rows repeat heavily (text-like).
    rng = np.random.default_rng(5)
    indices = (rng.zipf(1.3, size=(64, 400)) % 3000).astype(np.int64)
    grad = rng.standard_normal((64, 400, dim)).astype(np.float32)
    weights = rng.standard_normal((3000, dim)).astype(np.float32)
    results = []
    for threads in (1, 2):
        fastseq.set_num_threads(threads)
        try:
            results.append((
                kernels.embedding_forward(weights, indices),
                kernels.embedding_backward(indices, grad, 3000),
                *kernels.embedding_backward_sparse(indices, grad),
            ))
        finally:
            fastseq.set_num_threads(fastseq._threads._default_threads())
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


# --- bad input -------------------------------------------------------------------------

def test_byteswapped_indices_are_read_by_value():
    # '>i4' reports the same type number as int32: the C fast path must not read its bytes
    weights = np.arange(2 * 10**5, dtype=np.float32).reshape(10**5, 2)
    indices = np.array([[65536, 256], [0, 2]], dtype=">i4")  # byte-swapped: 256, 65536
    np.testing.assert_array_equal(kernels.embedding_forward(weights, indices),
                                  weights[indices.astype(np.int64)])


def test_index_out_of_range_names_value_and_position():
    weights = np.zeros((5, 2), dtype=np.float32)
    indices = np.array([[0, 1], [4, 7]])
    with pytest.raises(IndexError, match=r"index 7 at position \(1, 1\).*\[0, 5\)"):
        kernels.embedding_forward(weights, indices)
    with pytest.raises(IndexError, match=r"index -1 at position \(0,\)"):
        kernels.embedding_forward(weights, np.array([-1, 0]))
    grad = np.zeros((2, 2, 2), dtype=np.float32)
    with pytest.raises(IndexError, match=r"index 7 at position \(1, 1\)"):
        kernels.embedding_backward(indices, grad, 5)
    with pytest.raises(IndexError, match=r"index 7 at position \(1, 1\)"):
        kernels.embedding_backward_sparse(indices, grad, num_embeddings=5)
    with pytest.raises(IndexError, match=r"index -3 at position \(0, 1\)"):
        kernels.embedding_backward_sparse(np.array([[0, -3]]), grad[:1])


def test_float_or_bool_indices_are_type_errors():
    weights = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(TypeError, match="indices must be an int32 or int64 array, got dtype float64"):
        kernels.embedding_forward(weights, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="got dtype bool"):
        kernels.embedding_forward(weights, np.array([True]))


def test_other_integer_dtypes_are_widened():
    weights = np.arange(10, dtype=np.float32).reshape(5, 2)
    for dtype in (np.uint8, np.int16, np.uint32, np.uint64):
        got = kernels.embedding_forward(weights, np.array([4, 0], dtype=dtype))
        np.testing.assert_array_equal(got, weights[[4, 0]])


def test_bad_weights():
    with pytest.raises(ValueError, match=r"weights must be 2-D \(num_embeddings, embedding_dim\), got shape \(5,\)"):
        kernels.embedding_forward(np.zeros(5, dtype=np.float32), np.array([0]))
    with pytest.raises(TypeError, match="weights must be a float32 or float64 array, got dtype int64"):
        kernels.embedding_forward(np.zeros((5, 2), dtype=np.int64), np.array([0]))
    with pytest.raises(TypeError, match="weights must be a NumPy array"):
        kernels.embedding_forward([[0.0, 1.0]], np.array([0]))


def test_bad_grad_output_shape_and_dtype():
    indices = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"grad_output must have shape indices.shape \+ \(embedding_dim,\)"):
        kernels.embedding_backward(indices, np.zeros((2, 4, 5)), 3)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        kernels.embedding_backward_sparse(indices, np.zeros((6, 5)))
    with pytest.raises(TypeError, match="grad_output must be a float32 or float64 array"):
        kernels.embedding_backward(indices, np.zeros((2, 3, 5), dtype=np.int32), 3)


def test_zero_width_embedding():
    # D == 0 is degenerate but well-defined: empty rows in, empty rows out
    indices = np.array([[1, 2], [2, 0]])
    grad = np.zeros((2, 2, 0), dtype=np.float32)
    assert kernels.embedding_forward(np.zeros((3, 0), np.float32), indices).shape == (2, 2, 0)
    assert kernels.embedding_backward(indices, grad, 3).shape == (3, 0)
    rows, values = kernels.embedding_backward_sparse(indices, grad)
    np.testing.assert_array_equal(rows, [0, 1, 2])
    assert values.shape == (3, 0)


def test_bad_num_embeddings_and_padding_idx():
    indices = np.zeros((2,), dtype=np.int64)
    grad = np.zeros((2, 3))
    with pytest.raises(ValueError, match="num_embeddings must be >= 1, got 0"):
        kernels.embedding_backward(indices, grad, 0)
    with pytest.raises(TypeError, match="num_embeddings must be an int"):
        kernels.embedding_backward(indices, grad, 3.0)
    with pytest.raises(ValueError, match=r"padding_idx must be in \[-3, 3\), got 3"):
        kernels.embedding_backward(indices, grad, 3, padding_idx=3)
    with pytest.raises(ValueError, match="negative padding_idx needs num_embeddings"):
        kernels.embedding_backward_sparse(indices, grad, padding_idx=-1)


def test_bad_out():
    weights = np.zeros((5, 2), dtype=np.float32)
    indices = np.array([0, 1])
    with pytest.raises(ValueError, match=r"out must have shape \(2, 2\) and dtype float32, got shape \(2, 3\)"):
        kernels.embedding_forward(weights, indices, out=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="dtype float32, got shape \\(2, 2\\) and dtype float64"):
        kernels.embedding_forward(weights, indices, out=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.embedding_forward(weights, indices, out=np.zeros((2, 2), dtype=np.float32, order="F")[:, :])
    with pytest.raises(ValueError, match="must not overlap"):
        kernels.embedding_forward(weights, indices, out=weights[:2])


def test_empty_indices():
    weights = np.ones((4, 3), dtype=np.float32)
    out = kernels.embedding_forward(weights, np.zeros((0, 5), dtype=np.int32))
    assert out.shape == (0, 5, 3)
    dense = kernels.embedding_backward(np.zeros((0,), dtype=np.int64), np.zeros((0, 3), np.float32), 4)
    assert dense.shape == (4, 3) and not dense.any()
    rows, values = kernels.embedding_backward_sparse([], np.zeros((0, 3), np.float32))
    assert rows.shape == (0,) and values.shape == (0, 3)


@pytest.mark.parametrize("preset", [None, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"])
def test_import_shortens_openmp_spinning_unless_the_user_chose(preset):
    # spinning OpenMP threads starve the BLAS threads on small machines (see fastseq/__init__)
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if preset:
        env[preset] = "ACTIVE" if preset == "OMP_WAIT_POLICY" else "123"
    code = "import os, fastseq; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    expected = {None: "10000", "OMP_WAIT_POLICY": "None", "GOMP_SPINCOUNT": "123"}[preset]
    assert out == expected
