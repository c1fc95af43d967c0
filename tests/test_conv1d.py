"""Conv1D kernels: Keras's geometry, the fast kernels against the NumPy reference,
finite differences, determinism and every bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq._api import conv1d as fast
from fastseq._kernels.reference import conv1d as ref

FLOATS = [np.float32, np.float64]
PADDINGS = ["valid", "same", "causal"]


def direct_conv1d(x, kernel, bias, strides, dilation, pad_left, out_length):
    """One tap at a time, straight from the definition: zero outside x."""
    batch, length, cin = x.shape
    k, _, cout = kernel.shape
    y = np.zeros((batch, out_length, cout), dtype=np.float64)
    for t in range(out_length):
        for j in range(k):
            s = t * strides + j * dilation - pad_left
            if 0 <= s < length:
                y[:, t] += x[:, s].astype(np.float64) @ kernel[j].astype(np.float64)
    if bias is not None:
        y += bias
    return y


# Output lengths written out from Keras's formula (ops/operation_utils.py): span = d(k-1)+1,
# valid: (L - span) // s + 1; same, causal: (L - 1) // s + 1. (L, k, s, d) -> lengths.
KERAS_LENGTHS = [
    # L,  k, s, d, valid, same, causal
    (10, 3, 1, 1, 8, 10, 10),
    (10, 3, 2, 1, 4, 5, 5),
    (10, 3, 3, 1, 3, 4, 4),
    (10, 3, 1, 2, 6, 10, 10),
    (10, 3, 1, 3, 4, 10, 10),
    (5, 5, 1, 1, 1, 5, 5),
    (7, 2, 3, 1, 2, 3, 3),
    (1, 1, 1, 1, 1, 1, 1),
    (1, 3, 1, 1, None, 1, 1),  # valid: too short
    (64, 3, 1, 1, 62, 64, 64),
    (8, 1, 3, 1, 3, 3, 3),
]


@pytest.mark.parametrize("length,k,s,d,valid,same,causal", KERAS_LENGTHS)
def test_output_lengths_are_keras(length, k, s, d, valid, same, causal):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, length, 3)).astype(np.float32)
    kernel = rng.standard_normal((k, 3, 4)).astype(np.float32)
    for padding, want in zip(PADDINGS, (valid, same, causal)):
        if want is None:
            with pytest.raises(ValueError, match="too short"):
                fast.conv1d_forward(x, kernel, padding=padding, strides=s, dilation_rate=d)
            continue
        assert fast.conv1d_output_length(length, k, s, padding, d) == want
        y, _ = fast.conv1d_forward(x, kernel, padding=padding, strides=s, dilation_rate=d)
        assert y.shape == (2, want, 4)
        y_ref, _ = ref.conv1d_forward(x, kernel, None, s, padding, d)
        assert y_ref.shape == (2, want, 4)


@pytest.mark.parametrize("length,k,s,pad_left", [
    # TF's 'same': total = max((Lout - 1) * s + k - L, 0), total // 2 on the left
    (5, 4, 1, 1),   # total 3: 1 left, 2 right
    (5, 3, 1, 1),   # total 2: 1 and 1
    (6, 2, 1, 0),   # total 1: 0 left, 1 right
    (10, 3, 2, 0),  # Lout 5, total 1
    (9, 3, 2, 1),   # Lout 5, total 2
    (10, 5, 3, 2),  # Lout 4, total 3 * 3 + 5 - 10 = 4: 2 and 2
])
def test_same_padding_splits_as_tensorflow(length, k, s, pad_left):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, length, 3))
    kernel = rng.standard_normal((k, 3, 2))
    out_length = (length - 1) // s + 1
    want = direct_conv1d(x, kernel, None, s, 1, pad_left, out_length)
    got, _ = fast.conv1d_forward(x, kernel, strides=s, padding="same")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("s,d", [(1, 1), (1, 2), (2, 1), (3, 1)])
def test_causal_pads_on_the_left_and_never_looks_ahead(s, d):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 11, 3))
    kernel = rng.standard_normal((3, 3, 2))
    y, _ = fast.conv1d_forward(x, kernel, strides=s, padding="causal", dilation_rate=d)
    want = direct_conv1d(x, kernel, None, s, d, d * 2, (11 - 1) // s + 1)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    x2 = x.copy()
    x2[:, 6:] += 100.0  # the future of step 5
    y2, _ = fast.conv1d_forward(x2, kernel, strides=s, padding="causal", dilation_rate=d)
    last = 5 // s  # outputs whose window ends at step t * s <= 5
    # Winograd tiles mix a tile's inputs with coefficients that cancel exactly only in exact
    # arithmetic: the future moves earlier outputs by rounding (~1e-16 of its size), no more
    np.testing.assert_allclose(y2[:, : last + 1], y[:, : last + 1], rtol=0, atol=100 * 1e-13)
    assert np.abs(y2[:, last + 1:] - y[:, last + 1:]).max() > 1.0


@st.composite
def conv_problem(draw):
    """Random conv: every padding, strides 1-3, dilation 1-3 (not both > 1, as Keras), k=1,
    L=k, B=1, Cin=1 included; float32 and float64; sometimes a non-contiguous x."""
    dtype = draw(st.sampled_from(FLOATS))
    padding = draw(st.sampled_from(PADDINGS))
    strides = draw(st.integers(1, 3))
    dilation = 1 if strides > 1 else draw(st.integers(1, 3))
    k = draw(st.integers(1, 8))
    span = dilation * (k - 1) + 1
    min_length = span if padding == "valid" else 1
    length = draw(st.one_of(st.just(min_length), st.integers(min_length, min_length + 30)))
    batch = draw(st.integers(1, 3))
    cin = draw(st.integers(1, 5))
    cout = draw(st.integers(1, 5))
    use_bias = draw(st.booleans())
    strided_x = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, length, 2 * cin if strided_x else cin)).astype(dtype)
    if strided_x:
        x = x[:, :, ::2]
    kernel = rng.standard_normal((k, cin, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype) if use_bias else None
    return x, kernel, bias, strides, padding, dilation, rng


def _tol(dtype):
    # Winograd's transforms round a little more than im2col: ~1e-6 of the output's scale
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


def _scaled_close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    tol = _tol(dtype)
    np.testing.assert_allclose(got / scale, want / scale, rtol=tol["rtol"], atol=tol["atol"])


def _check_against_reference(x, kernel, bias, strides, padding, dilation, rng):
    dtype = x.dtype
    y, cache = fast.conv1d_forward(x, kernel, bias, strides, padding, dilation)
    y_ref, cache_ref = ref.conv1d_forward(x, kernel, bias, strides, padding, dilation)
    assert y.shape == y_ref.shape and y.dtype == dtype
    _scaled_close(y, y_ref, dtype)
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    dx, dkernel, dbias = fast.conv1d_backward(cache, grad_y)
    dx_ref, dkernel_ref, dbias_ref = ref.conv1d_backward(cache_ref, grad_y)
    assert dx.shape == x.shape and dkernel.shape == kernel.shape
    assert dx.dtype == dtype and dkernel.dtype == dtype
    _scaled_close(dx, dx_ref, dtype)
    _scaled_close(dkernel, dkernel_ref, dtype)
    if bias is None:
        assert dbias is None and dbias_ref is None
    else:
        assert dbias.dtype == dtype
        _scaled_close(dbias, dbias_ref, dtype)


@settings(max_examples=30, deadline=None)
@given(conv_problem())
def test_forward_and_backward_match_reference(problem):
    _check_against_reference(*problem)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("batch,length,cin,k,cout,strides,padding,dilation", [
    (1, 1, 1, 1, 1, 1, "valid", 1),    # k = L = B = Cin = 1
    (1, 3, 1, 3, 2, 1, "valid", 1),    # L = k: one output
    (1, 5, 1, 3, 1, 1, "valid", 2),    # L = span
    (2, 4, 3, 1, 2, 3, "same", 1),     # pointwise, strided
    (1, 2, 2, 7, 3, 1, "same", 1),     # kernel longer than x
    (2, 3, 2, 5, 2, 1, "causal", 3),   # span 13 > L
    (3, 40, 4, 9, 3, 1, "same", 1),    # k beyond the Winograd tiles: im2col
])
def test_corner_cases_match_reference(dtype, batch, length, cin, k, cout, strides, padding, dilation):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch, length, cin)).astype(dtype)
    kernel = rng.standard_normal((k, cin, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    _check_against_reference(x, kernel, bias, strides, padding, dilation, rng)


@pytest.mark.parametrize("strides,padding,dilation,k", [
    (1, "valid", 1, 3), (1, "same", 1, 5), (1, "causal", 2, 3), (2, "same", 1, 3),
    (3, "valid", 1, 2), (1, "same", 3, 2), (1, "valid", 1, 1), (2, "causal", 1, 8),
])
@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_gradients_by_finite_differences(strides, padding, dilation, k, impl):
    mod = fast if impl == "fast" else ref
    rng = np.random.default_rng(3)
    length = 9 + dilation * (k - 1)
    x = rng.standard_normal((2, length, 3))
    kernel = rng.standard_normal((k, 3, 2))
    bias = rng.standard_normal(2)
    y, cache = mod.conv1d_forward(x, kernel, bias, strides, padding, dilation)
    weights = rng.standard_normal(y.shape)  # loss = sum(y * weights)
    dx, dkernel, dbias = mod.conv1d_backward(cache, weights)

    def loss(x_, kernel_, bias_):
        return float((mod.conv1d_forward(x_, kernel_, bias_, strides, padding, dilation)[0]
                      * weights).sum())

    eps = 1e-6
    for arr, grad, which in ((x, dx, 0), (kernel, dkernel, 1), (bias, dbias, 2)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args_p = [x.copy(), kernel.copy(), bias.copy()]
            args_m = [x.copy(), kernel.copy(), bias.copy()]
            args_p[which][idx] += eps
            args_m[which][idx] -= eps
            numeric[idx] = (loss(*args_p) - loss(*args_m)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", FLOATS)
def test_empty_batch(dtype):
    x = np.zeros((0, 7, 3), dtype)
    kernel = np.ones((3, 3, 2), dtype)
    for strides in (1, 2):
        y, cache = fast.conv1d_forward(x, kernel, np.zeros(2, dtype), strides=strides)
        assert y.shape == (0, (7 - 3) // strides + 1, 2)
        dx, dkernel, dbias = fast.conv1d_backward(cache, y)
        assert dx.shape == x.shape
        np.testing.assert_array_equal(dkernel, 0)
        np.testing.assert_array_equal(dbias, 0)


def _run(x, kernel, bias, grad_y, **kw):
    y, cache = fast.conv1d_forward(x, kernel, bias, **kw)
    return (y,) + fast.conv1d_backward(cache, grad_y)


@pytest.mark.parametrize("strides,k", [(1, 3), (1, 5), (2, 3), (1, 1)])
def test_deterministic_for_any_thread_count(strides, k):
    """The same bits on every run and for 1 or 2 threads (fastseq's and the BLAS's): the
    work is split by the problem's sizes only, every GEMM runs on one thread, and partial
    sums are added in a fixed order."""
    from threadpoolctl import threadpool_limits

    import fastseq

    rng = np.random.default_rng(4)
    # enough sequences for several tasks
    x = rng.standard_normal((9, 301, 40)).astype(np.float32)
    kernel = rng.standard_normal((k, 40, 96)).astype(np.float32)
    bias = rng.standard_normal(96).astype(np.float32)
    out_length = fast.conv1d_output_length(301, k, strides, "same")
    grad_y = rng.standard_normal((9, out_length, 96)).astype(np.float32)
    before = fastseq.get_num_threads()
    try:
        fastseq.set_num_threads(2)
        first = _run(x, kernel, bias, grad_y, strides=strides, padding="same")
        again = _run(x, kernel, bias, grad_y, strides=strides, padding="same")
        fastseq.set_num_threads(1)
        single = _run(x, kernel, bias, grad_y, strides=strides, padding="same")
        with threadpool_limits(limits=2, user_api="blas"):
            blas_two = _run(x, kernel, bias, grad_y, strides=strides, padding="same")
    finally:
        fastseq.set_num_threads(before)
    for a, b, c, d in zip(first, again, single, blas_two):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(a, d)


def test_inputs_converted_and_dtype_kept():
    x = [[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]
    kernel = np.ones((2, 2, 1), np.float32)
    y, _ = fast.conv1d_forward(x, kernel)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0, :, 0], [10.0, 18.0], rtol=1e-6)  # Winograd rounding
    y64, cache = fast.conv1d_forward(np.asarray(x), kernel.astype(np.float64))
    assert y64.dtype == np.float64
    dx, dk, db = fast.conv1d_backward(cache, np.ones_like(y64))
    assert dx.dtype == dk.dtype == np.float64 and db is None


# ----------------------------------------------------------------------------- bad input

X = np.zeros((2, 10, 3), np.float32)
K = np.zeros((3, 3, 4), np.float32)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(kernel=np.zeros((3, 5, 4), np.float32)), ValueError,
     r"kernel must have shape \(kernel_size, 3, filters\).*got \(3, 5, 4\)"),
    (dict(kernel=np.zeros((3, 3), np.float32)), ValueError, r"kernel must be 3-D"),
    (dict(kernel=np.zeros((0, 3, 4), np.float32)), ValueError, r"kernel_size and filters must be >= 1"),
    (dict(kernel=K.astype(np.float64)), TypeError, r"kernel must have dtype float32"),
    (dict(x=np.zeros((10, 3), np.float32)), ValueError, r"x must be 3-D \(batch, steps, channels\)"),
    (dict(x=np.zeros((2, 10, 3), np.int64)), TypeError, r"x must be a float32 or float64 array"),
    (dict(x=np.zeros((2, 2, 3), np.float32)), ValueError,
     r"x has 2 steps, too short for kernel_size=3 .* needs at least 3 steps"),
    (dict(x=np.zeros((2, 4, 3), np.float32), dilation_rate=2), ValueError,
     r"x has 4 steps.*dilation_rate=2.*needs at least 5 steps"),
    (dict(x=np.zeros((2, 0, 3), np.float32), padding="same"), ValueError,
     r"x has 0 steps, too short .* padding='same': it needs at least 1 steps"),
    (dict(x=np.zeros((2, 5, 0), np.float32), kernel=np.zeros((3, 0, 4), np.float32)), ValueError,
     r"x must have at least 1 input channel, got shape \(2, 5, 0\)"),
    (dict(padding="full"), ValueError, r"padding must be one of \('valid', 'same', 'causal'\), got 'full'"),
    (dict(padding=1), TypeError, r"padding must be a string"),
    (dict(strides=0), ValueError, r"strides must be >= 1, got 0"),
    (dict(strides=-2), ValueError, r"strides must be >= 1, got -2"),
    (dict(strides=1.5), TypeError, r"strides must be an int, got float"),
    (dict(dilation_rate=0), ValueError, r"dilation_rate must be >= 1, got 0"),
    (dict(strides=2, dilation_rate=2), ValueError,
     r"strides > 1 is not supported together with dilation_rate > 1.*strides=2 and dilation_rate=2"),
    (dict(bias=np.zeros(5, np.float32)), ValueError, r"bias must have shape \(4,\).*got \(5,\)"),
    (dict(bias=np.zeros(4, np.float64)), TypeError, r"bias must have dtype float32"),
])
def test_bad_forward_input(kwargs, error, message):
    args = dict(x=X, kernel=K)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        fast.conv1d_forward(**args)


def test_padding_is_case_insensitive_as_keras():
    y1, _ = fast.conv1d_forward(X, K, padding="SAME")
    y2, _ = fast.conv1d_forward(X, K, padding="same")
    np.testing.assert_array_equal(y1, y2)


def test_bad_backward_input():
    y, cache = fast.conv1d_forward(X, K)
    with pytest.raises(ValueError, match=r"grad_y must have shape \(2, 8, 4\).*got \(2, 9, 4\)"):
        fast.conv1d_backward(cache, np.zeros((2, 9, 4), np.float32))
    with pytest.raises(TypeError, match=r"grad_y must have dtype float32"):
        fast.conv1d_backward(cache, np.zeros((2, 8, 4), np.float64))
    with pytest.raises(TypeError, match=r"cache must be the cache returned by conv1d_forward"):
        fast.conv1d_backward((1, 2), y)
