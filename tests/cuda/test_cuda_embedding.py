"""CUDA embedding kernels against the NumPy reference: gather, dense and row-sparse
backward (bitwise: both add a row's positions in ascending order from 0), determinism, and
bad input."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from numba import cuda  # noqa: E402

from fastseq._kernels import reference  # noqa: E402
from fastseq._kernels.cuda import embedding as cuda_embedding  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402

# (index shape, V, D): empty, one index, repeats, and sizes past one sort block (the
# global bitonic stages: 2 * 4 threads = 8 keys a block in the simulator)
CASES = [((2, 3), 5, 3), ((4,), 10, 2), ((0,), 4, 3), ((1,), 1, 1), ((2, 7), 3, 2),
         ((3, 9), 10, 1)]


def _problem(shape, vocab, dim, float_dtype=np.float32, index_dtype=np.int64, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((vocab, dim)).astype(float_dtype)
    indices = rng.integers(0, vocab, size=shape).astype(index_dtype)
    grad = rng.standard_normal(shape + (dim,)).astype(float_dtype)
    return weights, indices, grad


@pytest.mark.parametrize("shape,vocab,dim", CASES)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_forward_matches_reference(shape, vocab, dim, index_dtype):
    weights, indices, _ = _problem(shape, vocab, dim, index_dtype=index_dtype)
    out = cuda_embedding.embedding_forward(weights, indices)
    assert cuda.devicearray.is_cuda_ndarray(out)
    np.testing.assert_array_equal(to_host(out), reference.embedding_forward(weights, indices))


def test_forward_float64_device_inputs_and_out():
    weights, indices, _ = _problem((2, 3), 6, 4, float_dtype=np.float64, seed=3)
    out = cuda.device_array((2, 3, 4), np.float64)
    result = cuda_embedding.embedding_forward(cuda.to_device(weights), cuda.to_device(indices),
                                              out=out)
    assert result is out
    np.testing.assert_array_equal(to_host(out), weights[indices])


@pytest.mark.parametrize("shape,vocab,dim", CASES)
@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_dense_backward_is_bitwise_the_reference(shape, vocab, dim, padding_idx):
    if padding_idx is not None and padding_idx >= vocab:
        padding_idx = 0
    _, indices, grad = _problem(shape, vocab, dim, seed=1)
    got = to_host(cuda_embedding.embedding_backward(indices, grad, vocab, padding_idx))
    want = reference.embedding_backward(indices, grad, vocab,
                                        None if padding_idx is None else padding_idx % vocab)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,vocab,dim", CASES)
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_sparse_backward_is_bitwise_the_reference(shape, vocab, dim, padding_idx):
    _, indices, grad = _problem(shape, vocab, dim, index_dtype=np.int32, seed=2)
    rows, values = cuda_embedding.embedding_backward_sparse(indices, grad, padding_idx)
    want_rows, want_values = reference.embedding_backward_sparse(indices, grad, padding_idx)
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(to_host(rows), want_rows)
    np.testing.assert_array_equal(to_host(values), want_values)


def test_sparse_backward_negative_padding_counts_from_num_embeddings():
    indices = np.array([[4, 1, 4, 0]])
    grad = np.arange(8, dtype=np.float64).reshape(1, 4, 2)
    rows, values = cuda_embedding.embedding_backward_sparse(indices, grad, padding_idx=-1,
                                                            num_embeddings=5)
    np.testing.assert_array_equal(to_host(rows), [0, 1])
    np.testing.assert_array_equal(to_host(values), [[6, 7], [2, 3]])


def test_backward_is_bitwise_repeatable_with_heavy_repeats():
    # many positions on few rows: the order of the sums decides the float32 bits
    rng = np.random.default_rng(7)
    indices = rng.integers(0, 3, size=(2, 8))
    grad = (rng.standard_normal((2, 8, 2)) * 1e3).astype(np.float32)
    first = to_host(cuda_embedding.embedding_backward(indices, grad, 3))
    again = to_host(cuda_embedding.embedding_backward(indices, grad, 3))
    assert first.tobytes() == again.tobytes()
    np.testing.assert_array_equal(first, reference.embedding_backward(indices, grad, 3))
    rows, values = cuda_embedding.embedding_backward_sparse(indices, grad)
    assert to_host(values).tobytes() == to_host(
        cuda_embedding.embedding_backward_sparse(indices, grad)[1]).tobytes()


def test_sort_keys_sorts_past_one_block():
    rng = np.random.default_rng(5)
    keys = rng.permutation(20).astype(np.int64) * 3
    size = 32
    device_keys = cuda.to_device(np.concatenate([keys, np.zeros(size - keys.size, np.int64)]))
    cuda_embedding.sort_keys(device_keys, keys.size)
    np.testing.assert_array_equal(to_host(device_keys)[:keys.size], np.sort(keys))


def test_out_of_range_index_is_an_index_error_naming_it():
    weights, _, _ = _problem((1,), 4, 2)
    with pytest.raises(IndexError, match=r"index 9 at position \(1, 0\).*\[0, 4\)"):
        cuda_embedding.embedding_forward(weights, np.array([[0, 1], [9, 2]]))
    with pytest.raises(IndexError, match=r"index -1 at position \(2,\)"):
        cuda_embedding.embedding_backward(np.array([0, 1, -1]), np.zeros((3, 2), np.float32), 4)
    with pytest.raises(IndexError, match="index -3"):
        cuda_embedding.embedding_backward_sparse(np.array([-3]), np.zeros((1, 2), np.float32))
    with pytest.raises(IndexError, match="index 4 at position"):
        cuda_embedding.embedding_backward_sparse(np.array([4]), np.zeros((1, 2), np.float32),
                                                 num_embeddings=4)


def test_bad_arguments_are_clear_errors():
    weights, indices, grad = _problem((2, 3), 5, 3)
    with pytest.raises(TypeError, match="indices must be an int32 or int64"):
        cuda_embedding.embedding_forward(weights, indices.astype(np.float32))
    with pytest.raises(TypeError, match="weights must be a float32 or float64"):
        cuda_embedding.embedding_forward(weights.astype(np.int64), indices)
    with pytest.raises(ValueError, match="weights must be 2-D"):
        cuda_embedding.embedding_forward(weights[0], indices)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        cuda_embedding.embedding_backward(indices, grad[:, :2], 5)
    with pytest.raises(ValueError, match="padding_idx must be in"):
        cuda_embedding.embedding_backward(indices, grad, 5, padding_idx=5)
    with pytest.raises(ValueError, match="num_embeddings must be >= 1"):
        cuda_embedding.embedding_backward(indices, grad, 0)
    with pytest.raises(ValueError, match="negative padding_idx needs num_embeddings"):
        cuda_embedding.embedding_backward_sparse(indices, grad, padding_idx=-1)
    with pytest.raises(ValueError, match="out must be"):
        cuda_embedding.embedding_forward(weights, indices, out=cuda.device_array((2, 3, 2)))
