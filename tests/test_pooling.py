"""1-D pooling kernels: Keras's geometry, against the NumPy reference, ties, masks, finite
differences, determinism and every bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq._api import conv1d as fast
from fastseq._kernels.reference import conv1d as ref

FLOATS = [np.float32, np.float64]


# Keras's pooling output lengths (ops/operation_utils.py compute_pooling_output_shape):
# valid: (L - pool) // strides + 1; same: (L - 1) // strides + 1; strides default pool.
@pytest.mark.parametrize("length,pool,strides,valid,same", [
    (10, 2, None, 5, 5),
    (10, 3, None, 3, 4),
    (11, 3, 1, 9, 11),
    (5, 2, 3, 2, 2),
    (3, 3, None, 1, 1),
    (2, 3, None, None, 1),  # valid: too short
    (60, 3, None, 20, 20),  # seed 004's MaxPooling1D(3) after two Conv1D(64, 3) on 64 steps
])
def test_output_lengths_are_keras(length, pool, strides, valid, same):
    x = np.random.default_rng(0).standard_normal((2, length, 3)).astype(np.float32)
    for padding, want in (("valid", valid), ("same", same)):
        if want is None:
            with pytest.raises(ValueError, match=r"x has 2 steps, too short for pool_size=3"):
                fast.max_pool1d_forward(x, pool, strides, padding)
            continue
        assert fast.max_pool1d_output_length(length, pool, strides, padding) == want
        y, _ = fast.max_pool1d_forward(x, pool, strides, padding)
        assert y.shape == (2, want, 3)
        assert ref.max_pool1d_forward(x, pool, strides, padding)[0].shape == (2, want, 3)


def naive_max_pool(x, pool, strides, pad_left, out_length):
    """Max over each window's real steps, straight from the definition."""
    y = np.empty((x.shape[0], out_length, x.shape[2]), x.dtype)
    for t in range(out_length):
        lo = max(t * strides - pad_left, 0)
        hi = min(t * strides - pad_left + pool, x.shape[1])
        y[:, t] = x[:, lo:hi].max(axis=1)
    return y


@pytest.mark.parametrize("length,pool,strides,pad_left", [
    (10, 3, 3, 1),  # Lout 4, total 3 * 3 + 3 - 10 = 2: 1 left
    (10, 2, 2, 0),  # total 0
    (5, 2, 2, 0),   # total 1: 0 left, 1 right
    (11, 3, 1, 1),  # total 2: 1 and 1
    (7, 4, 2, 1),   # Lout 4, total 6 + 4 - 7 = 3: 1 left, 2 right
])
def test_same_pads_as_tensorflow_and_padding_never_wins(length, pool, strides, pad_left):
    # all-negative input: a zero pad would win; TF pads with -inf
    x = -1.0 - np.random.default_rng(1).random((2, length, 3))
    out_length = (length - 1) // strides + 1
    y, _ = fast.max_pool1d_forward(x, pool, strides, "same")
    np.testing.assert_array_equal(y, naive_max_pool(x, pool, strides, pad_left, out_length))
    assert (y < 0).all()


@st.composite
def pool_problem(draw):
    dtype = draw(st.sampled_from(FLOATS))
    padding = draw(st.sampled_from(["valid", "same"]))
    pool = draw(st.integers(1, 4))
    strides = draw(st.sampled_from([None, 1, 2, 3, 4]))
    min_length = pool if padding == "valid" else 1
    length = draw(st.integers(min_length, min_length + 20))
    batch = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):  # few distinct values: many ties
        x = rng.integers(-2, 2, size=(batch, length, channels)).astype(dtype)
    else:
        x = rng.standard_normal((batch, length, channels)).astype(dtype)
    return x, pool, strides, padding, rng


@settings(max_examples=30, deadline=None)
@given(pool_problem())
def test_max_pool_matches_reference(problem):
    x, pool, strides, padding, rng = problem
    y, cache = fast.max_pool1d_forward(x, pool, strides, padding)
    y_ref, cache_ref = ref.max_pool1d_forward(x, pool, strides, padding)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, y_ref)
    grad_y = rng.standard_normal(y.shape).astype(x.dtype)
    dx = fast.max_pool1d_backward(cache, grad_y)
    dx_ref = ref.max_pool1d_backward(cache_ref, grad_y)
    assert dx.dtype == x.dtype
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6 if x.dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("impl", [fast, ref], ids=["fast", "reference"])
def test_max_pool_ties_go_to_the_first_and_overlaps_add(impl):
    x = np.array([[[1.0], [3.0], [3.0], [2.0], [3.0], [0.0]]])
    # pool 2, strides 2: windows [1,3] [3,2] [3,0] -> steps 1, 2, 4
    y, cache = impl.max_pool1d_forward(x, 2)
    np.testing.assert_array_equal(y[0, :, 0], [3.0, 3.0, 3.0])
    dx = impl.max_pool1d_backward(cache, np.array([[[1.0], [10.0], [100.0]]]))
    np.testing.assert_array_equal(dx[0, :, 0], [0, 1, 10, 0, 100, 0])
    # pool 3, strides 1: windows [1,3,3] [3,3,2] [3,2,3] [2,3,0] -> steps 1, 1, 2, 4
    y, cache = impl.max_pool1d_forward(x, 3, 1)
    dx = impl.max_pool1d_backward(cache, np.array([[[1.0], [10.0], [100.0], [1000.0]]]))
    np.testing.assert_array_equal(dx[0, :, 0], [0, 11, 100, 0, 1000, 0])


@pytest.mark.parametrize("impl", [fast, ref], ids=["fast", "reference"])
def test_max_pool_minus_infinity_is_a_real_value(impl):
    x = np.full((1, 5, 2), -np.inf)
    y, cache = impl.max_pool1d_forward(x, 3, 3, "same")  # pad_left 0, but the last window pads
    assert np.isneginf(y).all()
    dx = impl.max_pool1d_backward(cache, np.ones_like(y))
    np.testing.assert_array_equal(dx[0, :, 0], [1, 0, 0, 1, 0])


# ----------------------------------------------------------------------------- global pooling


@st.composite
def global_problem(draw):
    dtype = draw(st.sampled_from(FLOATS))
    batch = draw(st.integers(1, 4))
    length = draw(st.integers(1, 12))
    channels = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):
        x = rng.integers(-2, 2, size=(batch, length, channels)).astype(dtype)
    else:
        x = rng.standard_normal((batch, length, channels)).astype(dtype)
    kind = draw(st.sampled_from(["none", "random", "with_empty_row"]))
    mask = None
    if kind != "none":
        mask = rng.random((batch, length)) < 0.6
        if kind == "with_empty_row":
            mask[0] = False
    return x, mask, rng


@pytest.mark.parametrize("name", ["global_average_pool1d", "global_max_pool1d"])
@settings(max_examples=25, deadline=None)
@given(problem=global_problem())
def test_global_pools_match_reference(name, problem):
    x, mask, rng = problem
    y, cache = getattr(fast, name + "_forward")(x, mask)
    y_ref, cache_ref = getattr(ref, name + "_forward")(x, mask)
    assert y.shape == (x.shape[0], x.shape[2]) and y.dtype == x.dtype
    tol = 1e-6 if x.dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    grad_y = rng.standard_normal(y.shape).astype(x.dtype)
    dx = getattr(fast, name + "_backward")(cache, grad_y)
    dx_ref = getattr(ref, name + "_backward")(cache_ref, grad_y)
    assert dx.dtype == x.dtype
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    if mask is not None:
        assert (dx[~mask] == 0).all()  # masked steps get no gradient
        empty = ~mask.any(axis=1)
        assert (y[empty] == 0).all() and not np.isnan(y).any()


@pytest.mark.parametrize("impl", [fast, ref], ids=["fast", "reference"])
def test_global_average_mask_semantics(impl):
    x = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
    mask = np.array([[True, False, True], [False, False, False]])
    y, cache = impl.global_average_pool1d_forward(x, mask)
    np.testing.assert_array_equal(y, [[(0 + 4) / 2, (1 + 5) / 2], [0, 0]])
    dx = impl.global_average_pool1d_backward(cache, np.ones((2, 2)))
    np.testing.assert_array_equal(dx[0], [[0.5, 0.5], [0, 0], [0.5, 0.5]])
    np.testing.assert_array_equal(dx[1], 0)
    y, _ = impl.global_average_pool1d_forward(x)
    np.testing.assert_array_equal(y, x.mean(axis=1))


@pytest.mark.parametrize("impl", [fast, ref], ids=["fast", "reference"])
def test_global_max_mask_and_ties(impl):
    x = np.array([[[1.0, 5.0], [7.0, 5.0], [9.0, 2.0]], [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])
    mask = np.array([[True, True, False], [False, False, False]])
    y, cache = impl.global_max_pool1d_forward(x, mask)
    np.testing.assert_array_equal(y, [[7.0, 5.0], [0.0, 0.0]])  # 9 is masked out
    dx = impl.global_max_pool1d_backward(cache, np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(dx[0], [[0, 2], [1, 0], [0, 0]])  # tie 5, 5: the first
    np.testing.assert_array_equal(dx[1], 0)


@pytest.mark.parametrize("impl", [fast, ref], ids=["fast", "reference"])
@pytest.mark.parametrize("op", ["max_pool1d", "global_average_pool1d", "global_max_pool1d"])
def test_pool_gradients_by_finite_differences(impl, op):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 7, 3))  # distinct values: the max is differentiable
    if op == "max_pool1d":
        def forward(a):
            return impl.max_pool1d_forward(a, 3, 2, "same")
    else:
        mask = np.array([[True] * 7, [True, False, True, True, False, False, True]])

        def forward(a):
            return getattr(impl, op + "_forward")(a, mask)
    y, cache = forward(x)
    weights = rng.standard_normal(y.shape)
    dx = getattr(impl, op + "_backward")(cache, weights)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        numeric[idx] = ((forward(xp)[0] - forward(xm)[0]) * weights).sum() / (2 * eps)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_pooling_deterministic_for_any_thread_count():
    import numba

    rng = np.random.default_rng(8)
    x = rng.integers(-3, 3, size=(5, 97, 16)).astype(np.float32)
    mask = rng.random((5, 97)) < 0.5
    gy3 = rng.standard_normal((5, 49, 16)).astype(np.float32)
    gy2 = rng.standard_normal((5, 16)).astype(np.float32)

    def run():
        y1, c1 = fast.max_pool1d_forward(x, 3, 2, "same")
        y2, c2 = fast.global_average_pool1d_forward(x, mask)
        y3, c3 = fast.global_max_pool1d_forward(x, mask)
        return (y1, fast.max_pool1d_backward(c1, gy3), y2,
                fast.global_average_pool1d_backward(c2, gy2), y3,
                fast.global_max_pool1d_backward(c3, gy2))

    before = numba.get_num_threads()
    try:
        first = run()
        numba.set_num_threads(1)
        single = run()
    finally:
        numba.set_num_threads(before)
    for a, b in zip(first, single):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- bad input

X = np.zeros((2, 6, 3), np.float32)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(pool_size=0), ValueError, r"pool_size must be >= 1, got 0"),
    (dict(pool_size=2.0), TypeError, r"pool_size must be an int, got float"),
    (dict(strides=0), ValueError, r"strides must be >= 1, got 0"),
    (dict(padding="causal"), ValueError, r"padding must be one of \('valid', 'same'\), got 'causal'"),
    (dict(pool_size=7), ValueError, r"x has 6 steps, too short for pool_size=7 .* at least 7 steps"),
    (dict(x=np.zeros((6, 3), np.float32)), ValueError, r"x must be 3-D"),
    (dict(x=np.zeros((2, 6, 3), np.int32)), TypeError, r"x must be a float32 or float64 array"),
])
def test_bad_max_pool_input(kwargs, error, message):
    args = dict(x=X)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        fast.max_pool1d_forward(**args)


def test_bad_max_pool_grad():
    y, cache = fast.max_pool1d_forward(X, 2)
    with pytest.raises(ValueError, match=r"grad_y must have shape \(2, 3, 3\).*got \(2, 4, 3\)"):
        fast.max_pool1d_backward(cache, np.zeros((2, 4, 3), np.float32))
    with pytest.raises(TypeError, match=r"cache must be the cache returned by max_pool1d_forward"):
        fast.max_pool1d_backward({}, y)


@pytest.mark.parametrize("name", ["global_average_pool1d", "global_max_pool1d"])
def test_bad_global_pool_input(name):
    forward = getattr(fast, name + "_forward")
    backward = getattr(fast, name + "_backward")
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, steps\) = \(2, 6\), got \(2, 5\)"):
        forward(X, np.ones((2, 5), bool))
    with pytest.raises(TypeError, match=r"mask must be a bool array, got dtype float64"):
        forward(X, np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"x must have at least 1 step"):
        forward(np.zeros((2, 0, 3), np.float32))
    with pytest.raises(ValueError, match=r"x must be 3-D"):
        forward(np.zeros((2, 6), np.float32))
    y, cache = forward(X, np.ones((2, 6), np.int8))  # integer 0/1 masks are accepted
    with pytest.raises(ValueError, match=r"grad_y must have shape \(2, 3\).*got \(3, 3\)"):
        backward(cache, np.zeros((3, 3), np.float32))
    with pytest.raises(TypeError, match=r"grad_y must have dtype float32"):
        backward(cache, np.zeros((2, 3), np.float64))
