"""The NumPy LSTM reference (the oracle of tests/test_lstm.py) against a per-sample,
per-step transcription of Keras's cell and mask rules, against finite differences, and on
hand-built Keras mask cases."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq._kernels.reference import lstm_backward, lstm_forward


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def keras_lstm_one_sequence(x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards):
    """Keras's LSTM cell and RNN mask rule, one sequence and one step at a time.

    x: (T, D), mask: (T,) -> outputs in processing order (T, H), h_last, c_last"""
    H = recurrent_kernel.shape[0]
    order = range(x.shape[0] - 1, -1, -1) if go_backwards else range(x.shape[0])
    h, c = h0.copy(), c0.copy()
    outputs = []
    for t in order:
        z = x[t] @ kernel + h @ recurrent_kernel + (0 if bias is None else bias)
        i, f = _sigmoid(z[:H]), _sigmoid(z[H:2 * H])
        g, o = np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if mask is None or mask[t]:
            h, c = h_new, c_new
        # masked: the state stays and the output repeats the previous output, which is h
        outputs.append(h.copy())
    return np.array(outputs).reshape(x.shape[0], H), h, c


def random_lstm(rng, B, T, D, H, dtype=np.float64, scale=0.6):
    x = rng.standard_normal((B, T, D)).astype(dtype)
    kernel = (scale * rng.standard_normal((D, 4 * H))).astype(dtype)
    recurrent_kernel = (scale * rng.standard_normal((H, 4 * H))).astype(dtype)
    bias = (0.5 * rng.standard_normal(4 * H)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    return x, kernel, recurrent_kernel, bias, h0, c0


MASK_KINDS = ["none", "random", "leading", "trailing", "row_fully_masked", "all_masked"]


def make_mask(rng, kind, B, T):
    if kind == "none":
        return None
    if kind == "random":
        return rng.random((B, T)) < 0.6
    mask = np.ones((B, T), dtype=bool)
    if kind == "leading":  # pre-padding: each row starts with its own number of pads
        for b in range(B):
            mask[b, :rng.integers(0, T + 1)] = False
    elif kind == "trailing":
        for b in range(B):
            mask[b, rng.integers(0, T + 1):] = False
    elif kind == "row_fully_masked":
        mask = rng.random((B, T)) < 0.7
        mask[rng.integers(0, B)] = False
    elif kind == "all_masked":
        mask[:] = False
    return mask


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 3), H=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_reference_matches_per_step_keras_transcription(B, T, D, H, dtype, mask_kind,
                                                        go_backwards, with_state, with_bias,
                                                        seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    if not with_bias:
        bias = None
    if not with_state:
        h0 = c0 = None
    mask = make_mask(rng, mask_kind, B, T)
    outputs, h_last, c_last, _ = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask,
                                              go_backwards)
    assert outputs.dtype == h_last.dtype == c_last.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    # the transcription runs in float64 on the same (rounded) inputs
    f64 = [None if a is None else a.astype(np.float64) for a in (x, kernel, recurrent_kernel,
                                                                  bias, h0, c0)]
    zeros = np.zeros((B, H))
    for b in range(B):
        want_out, want_h, want_c = keras_lstm_one_sequence(
            f64[0][b], f64[1], f64[2], f64[3], zeros[b] if h0 is None else f64[4][b],
            zeros[b] if c0 is None else f64[5][b], None if mask is None else mask[b],
            go_backwards)
        np.testing.assert_allclose(outputs[b], want_out, **tol)
        np.testing.assert_allclose(h_last[b], want_h, **tol)
        np.testing.assert_allclose(c_last[b], want_c, **tol)


def numeric_gradients(forward, args, grads, eps=1e-6):
    """Central differences of L = sum(outputs * go) + sum(h_last * gh) + sum(c_last * gc)
    with respect to each array in args (float64)."""
    go, gh, gc = grads

    def loss():
        outputs, h_last, c_last, _ = forward(*args)
        return np.sum(outputs * go) + np.sum(h_last * gh) + np.sum(c_last * gc)

    result = []
    for a in args:
        if not isinstance(a, np.ndarray) or a.dtype != np.float64:
            result.append(None)
            continue
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = loss()
            a[idx] = old - eps
            minus = loss()
            a[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        result.append(g)
    return result


GRAD_NAMES = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"]


@pytest.mark.parametrize("mask_kind", ["none", "random", "leading", "row_fully_masked"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_reference_gradients_match_finite_differences(mask_kind, go_backwards):
    rng = np.random.default_rng(7 + MASK_KINDS.index(mask_kind) + 10 * go_backwards)
    B, T, D, H = 3, 4, 2, 3
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H)
    mask = make_mask(rng, mask_kind, B, T)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    gc = rng.standard_normal((B, H))
    args = [x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards]
    _, _, _, cache = lstm_forward(*args)
    analytic = lstm_backward(cache, go, gh, gc)

    def forward(*a):
        return lstm_forward(*a, training=False)

    numeric = numeric_gradients(forward, args, (go, gh, gc))
    for name, got, want in zip(GRAD_NAMES, analytic, numeric[:6]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


def test_reference_backward_with_only_last_state_gradients():
    rng = np.random.default_rng(3)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 3, 2, 2)
    gh = rng.standard_normal((2, 2))
    _, _, _, cache = lstm_forward(x, kernel, recurrent_kernel, None, h0, c0)
    dx, dk, drk, dbias, dh0, dc0 = lstm_backward(cache, grad_h_last=gh)
    assert dbias is None
    args = [x, kernel, recurrent_kernel, None, h0, c0]
    numeric = numeric_gradients(lambda *a: lstm_forward(*a, training=False), args,
                                (np.zeros((2, 3, 2)), gh, np.zeros((2, 2))))
    for got, want in zip([dx, dk, drk, dh0, dc0], [numeric[i] for i in (0, 1, 2, 4, 5)]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_reference_masked_step_repeats_previous_output_and_keeps_state():
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 1, 4, 3, 2)
    mask = np.array([[True, False, True, False]])
    out, h_last, c_last, _ = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
    # the same as running only the unmasked steps
    kept, kept_h, kept_c, _ = lstm_forward(x[:, [0, 2]], kernel, recurrent_kernel, bias, h0, c0)
    np.testing.assert_allclose(out[:, [0, 1, 2, 3]], kept[:, [0, 0, 1, 1]], rtol=1e-14)
    np.testing.assert_allclose(h_last, kept_h, rtol=1e-14)
    np.testing.assert_allclose(c_last, kept_c, rtol=1e-14)


def test_reference_fully_masked_sequence_outputs_h0():
    rng = np.random.default_rng(1)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 3, 2, 2)
    mask = np.array([[False, False, False], [True, True, False]])
    out, h_last, c_last, _ = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
    np.testing.assert_array_equal(out[0], np.repeat(h0[:1], 3, axis=0))
    np.testing.assert_array_equal(h_last[0], h0[0])
    np.testing.assert_array_equal(c_last[0], c0[0])
    # without h0 the fully masked row outputs zeros (Keras's zero initial state)
    out, h_last, _, _ = lstm_forward(x, kernel, recurrent_kernel, bias, mask=mask)
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(h_last[0], 0)


def test_reference_go_backwards_returns_outputs_in_processing_order():
    rng = np.random.default_rng(2)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 5, 3, 2)
    back = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, go_backwards=True)
    fwd_reversed = lstm_forward(x[:, ::-1], kernel, recurrent_kernel, bias, h0, c0)
    for a, b in zip(back[:3], fwd_reversed[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_reference_inference_returns_no_cache():
    rng = np.random.default_rng(4)
    args = random_lstm(rng, 2, 3, 2, 2)
    assert lstm_forward(*args, training=False)[3] is None
