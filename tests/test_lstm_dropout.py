"""LSTM dropout masks inside the kernels (Keras 3's implementation 1, used whenever
recurrent_dropout > 0: per-gate masks fixed over the sequence). The NumPy reference against a
per-step transcription of Keras's LSTMCell.call (keras/src/layers/rnn/lstm.py) and finite
differences; the Numba kernels (through fastseq._api.lstm, the public wrappers) against the
reference, finite differences, masks of ones, Keras's mask rules, determinism for 1 and 2
threads, and clear errors for bad masks."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference_lstm import (
    GRAD_NAMES,
    MASK_KINDS,
    _sigmoid,
    make_mask,
    numeric_gradients,
    random_lstm,
)

import fastseq
from fastseq._api.lstm import lstm_backward, lstm_forward
from fastseq._kernels import lstm as lstm_kernels
from fastseq._kernels import reference

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
DROPOUT = ["none", "input", "recurrent", "both"]
OUT_NAMES = ["outputs", "h_last", "c_last"]


def dropout_masks(rng, kind, B, D, H, dtype=np.float64, rate=0.4):
    """(input_masks (4, B, D) or None, recurrent_masks (4, B, H) or None), inverted scaling
    as Keras's: 0 or 1 / (1 - rate)"""
    def draw(F):
        return ((rng.random((4, B, F)) >= rate) / (1 - rate)).astype(dtype)

    return (draw(D) if kind in ("input", "both") else None,
            draw(H) if kind in ("recurrent", "both") else None)


def keras_lstm_one_sequence(x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards,
                            input_masks, recurrent_masks):
    """Keras 3's LSTMCell.call with implementation 1 (its path when recurrent_dropout > 0)
    and the RNN layer's mask rule, for one sequence, one step at a time.

    x: (T, D), mask: (T,), input_masks: (4, D) or None, recurrent_masks: (4, H) or None
    -> outputs in processing order (T, H), h_last, c_last"""
    H = recurrent_kernel.shape[0]
    dp = np.ones((4, x.shape[1])) if input_masks is None else input_masks
    rec_dp = np.ones((4, H)) if recurrent_masks is None else recurrent_masks
    k_i, k_f, k_c, k_o = np.split(kernel, 4, axis=1)
    order = range(x.shape[0] - 1, -1, -1) if go_backwards else range(x.shape[0])
    h_tm1, c_tm1 = h0.copy(), c0.copy()
    outputs = []
    for t in order:
        inputs = x[t]
        x_i = (inputs * dp[0]) @ k_i
        x_f = (inputs * dp[1]) @ k_f
        x_c = (inputs * dp[2]) @ k_c
        x_o = (inputs * dp[3]) @ k_o
        if bias is not None:
            b_i, b_f, b_c, b_o = np.split(bias, 4)
            x_i, x_f, x_c, x_o = x_i + b_i, x_f + b_f, x_c + b_c, x_o + b_o
        h_tm1_i = h_tm1 * rec_dp[0]
        h_tm1_f = h_tm1 * rec_dp[1]
        h_tm1_c = h_tm1 * rec_dp[2]
        h_tm1_o = h_tm1 * rec_dp[3]
        # _compute_carry_and_output
        i = _sigmoid(x_i + h_tm1_i @ recurrent_kernel[:, :H])
        f = _sigmoid(x_f + h_tm1_f @ recurrent_kernel[:, H:2 * H])
        c = f * c_tm1 + i * np.tanh(x_c + h_tm1_c @ recurrent_kernel[:, 2 * H:3 * H])
        o = _sigmoid(x_o + h_tm1_o @ recurrent_kernel[:, 3 * H:])
        h = o * np.tanh(c)
        if mask is None or mask[t]:
            h_tm1, c_tm1 = h, c
        # masked: the state stays and the output repeats the previous output, which is h
        outputs.append(h_tm1.copy())
    return np.array(outputs).reshape(x.shape[0], H), h_tm1, c_tm1


# ---------------------------------------------------------------------------------------
# the reference: Keras's cell, finite differences

@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 3), H=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       dropout=st.sampled_from(DROPOUT), seed=st.integers(0, 2**31 - 1))
def test_reference_matches_per_step_keras_transcription(B, T, D, H, dtype, mask_kind,
                                                        go_backwards, with_state, with_bias,
                                                        dropout, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    bias = bias if with_bias else None
    h0, c0 = (h0, c0) if with_state else (None, None)
    mask = make_mask(rng, mask_kind, B, T)
    im, rm = dropout_masks(rng, dropout, B, D, H, dtype)
    outputs, h_last, c_last, _ = reference.lstm_forward(
        x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, True, im, rm)
    assert outputs.dtype == h_last.dtype == c_last.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    # the transcription runs in float64 on the same (rounded) inputs
    f64 = [None if a is None else a.astype(np.float64)
           for a in (x, kernel, recurrent_kernel, bias, h0, c0, im, rm)]
    zeros = np.zeros(H)
    for b in range(B):
        want_out, want_h, want_c = keras_lstm_one_sequence(
            f64[0][b], f64[1], f64[2], f64[3], zeros if h0 is None else f64[4][b],
            zeros if c0 is None else f64[5][b], None if mask is None else mask[b],
            go_backwards, None if im is None else f64[6][:, b],
            None if rm is None else f64[7][:, b])
        np.testing.assert_allclose(outputs[b], want_out, **tol)
        np.testing.assert_allclose(h_last[b], want_h, **tol)
        np.testing.assert_allclose(c_last[b], want_c, **tol)


def _check_finite_differences(forward, backward, dropout, mask_kind, go_backwards, seed,
                              with_bias=True):
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 4, 2, 3
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H)
    bias = bias if with_bias else None
    mask = make_mask(rng, mask_kind, B, T)
    if mask is not None:
        mask[:, 1] = False  # a step masked for the whole batch (skipped by the kernels)
    im, rm = dropout_masks(rng, dropout, B, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    gc = rng.standard_normal((B, H))
    args = [x, kernel, recurrent_kernel, bias, h0, c0]
    options = dict(mask=mask, go_backwards=go_backwards, input_masks=im, recurrent_masks=rm)
    cache = forward(*args, **options)[3]
    analytic = backward(cache, go, gh, gc)
    numeric = numeric_gradients(lambda *a: forward(*a, training=False, **options), args,
                                (go, gh, gc))
    for name, got, want in zip(GRAD_NAMES, analytic, numeric):
        if want is None:
            assert got is None, name
            continue
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


FD_CASES = [("both", "none", False), ("both", "random", True), ("both", "leading", False),
            ("both", "row_fully_masked", True), ("input", "random", False),
            ("recurrent", "none", True), ("recurrent", "leading", False)]


@pytest.mark.parametrize("dropout, mask_kind, go_backwards", FD_CASES)
def test_reference_gradients_match_finite_differences(dropout, mask_kind, go_backwards):
    _check_finite_differences(reference.lstm_forward, reference.lstm_backward, dropout,
                              mask_kind, go_backwards,
                              seed=17 + FD_CASES.index((dropout, mask_kind, go_backwards)))


@pytest.mark.parametrize("dropout, mask_kind, go_backwards", FD_CASES)
def test_gradients_match_finite_differences(dropout, mask_kind, go_backwards):
    _check_finite_differences(lstm_forward, lstm_backward, dropout, mask_kind, go_backwards,
                              seed=71 + FD_CASES.index((dropout, mask_kind, go_backwards)))


@pytest.mark.parametrize("forward, backward", [(lstm_forward, lstm_backward),
                                               (reference.lstm_forward,
                                                reference.lstm_backward)])
def test_gradients_without_bias_match_finite_differences(forward, backward):
    _check_finite_differences(forward, backward, "both", "random", False, seed=5,
                              with_bias=False)


# ---------------------------------------------------------------------------------------
# the Numba kernels against the reference

def run_both(args, kwargs, grads):
    """Forward + backward through the fast kernels and through the reference."""
    results = []
    for forward, backward in ((lstm_forward, lstm_backward),
                              (reference.lstm_forward, reference.lstm_backward)):
        outputs, h_last, c_last, cache = forward(*args, **kwargs)
        results.append((outputs, h_last, c_last) + tuple(backward(cache, *grads)))
    return results


def _assert_all_close(fast, ref, dtype):
    for name, got, want in zip(OUT_NAMES + GRAD_NAMES, fast, ref):
        if want is None:
            assert got is None, name
            continue
        assert got.dtype == dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=name, **TOL[dtype])


# B = 17 and 40 run in two row blocks (two threads); the others in one.
@settings(max_examples=50, deadline=None)
@given(B=st.sampled_from([1, 2, 17, 40]), T=st.sampled_from([1, 2, 5]),
       D=st.sampled_from([1, 3]), H=st.sampled_from([1, 2, 5]),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       dropout=st.sampled_from(DROPOUT),
       which_grads=st.sampled_from(["all", "outputs", "h", "c"]),
       seed=st.integers(0, 2**31 - 1))
def test_forward_and_gradients_match_reference(B, T, D, H, dtype, mask_kind, go_backwards,
                                               with_state, with_bias, dropout, which_grads,
                                               seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    mask = make_mask(rng, mask_kind, B, T)
    im, rm = dropout_masks(rng, dropout, B, D, H, dtype)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gh = rng.standard_normal((B, H)).astype(dtype)
    gc = rng.standard_normal((B, H)).astype(dtype)
    grads = {"all": (go, gh, gc), "outputs": (go, None, None), "h": (None, gh, None),
             "c": (None, None, gc)}[which_grads]
    args = (x, kernel, recurrent_kernel, bias if with_bias else None,
            h0 if with_state else None, c0 if with_state else None)
    kwargs = dict(mask=mask, go_backwards=go_backwards, input_masks=im, recurrent_masks=rm)
    _assert_all_close(*run_both(args, kwargs, grads), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask_kind", ["leading", "row_fully_masked"])
def test_pre_padded_and_fully_masked_rows_with_dropout(dtype, mask_kind):
    # pre-padding (steps masked for the whole batch, skipped by the kernels) and a row
    # masked at every step, together with dropout masks, at a shape with two row blocks
    rng = np.random.default_rng(3)
    B, T, D, H = 19, 9, 4, 6
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    mask = make_mask(rng, mask_kind, B, T)
    mask[:, :3] = False  # padding for the whole batch
    mask[5] = False  # a fully masked row
    im, rm = dropout_masks(rng, "both", B, D, H, dtype)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gh = rng.standard_normal((B, H)).astype(dtype)
    args = (x, kernel, recurrent_kernel, bias, h0, c0)
    kwargs = dict(mask=mask, input_masks=im, recurrent_masks=rm)
    fast, ref = run_both(args, kwargs, (go, gh, None))
    _assert_all_close(fast, ref, dtype)
    outputs, h_last, c_last, dx, _, _, _, dh0, dc0 = fast
    # the fully masked row outputs h0 at every step, keeps its state, and its inputs get no
    # gradient; its gradients pass straight to h0
    np.testing.assert_array_equal(outputs[5], np.repeat(h0[5:6], T, axis=0))
    np.testing.assert_array_equal(h_last[5], h0[5])
    np.testing.assert_array_equal(c_last[5], c0[5])
    np.testing.assert_array_equal(dx[5], 0)
    np.testing.assert_array_equal(dx[:, :3], 0)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-13)
    np.testing.assert_allclose(dh0[5], go[5].sum(axis=0) + gh[5], **tol)
    np.testing.assert_array_equal(dc0[5], 0)
    # the padding is not computed at all: the cache holds T - 3 steps
    _, _, _, cache = lstm_forward(*args, **kwargs)
    assert all(block["gates"].shape[0] == T - 3 for block in cache["blocks"])


@pytest.mark.parametrize("B, T", [(0, 3), (2, 0)])
def test_empty_batch_or_sequence_with_masks(B, T):
    x = np.zeros((B, T, 3), np.float32)
    kernel = np.ones((3, 8), np.float32)
    recurrent_kernel = np.ones((2, 8), np.float32)
    h0 = np.ones((B, 2), np.float32)
    kw = dict(input_masks=np.ones((4, B, 3), np.float32),
              recurrent_masks=np.ones((4, B, 2), np.float32))
    out, h_last, c_last, cache = lstm_forward(x, kernel, recurrent_kernel, None, h0, **kw)
    assert out.shape == (B, T, 2)
    np.testing.assert_array_equal(h_last, h0)
    dx, dk, drk, db, dh0, dc0 = lstm_backward(cache, grad_h_last=h0)
    assert dx.shape == (B, T, 3) and db is None
    np.testing.assert_array_equal(dk, 0)
    np.testing.assert_array_equal(drk, 0)
    np.testing.assert_array_equal(dh0, h0)


# ---------------------------------------------------------------------------------------
# Keras semantics, on hand-built cases

@pytest.mark.parametrize("forward", [lstm_forward, reference.lstm_forward])
def test_one_step_is_keras_implementation_1(forward):
    # one step by hand: every gate reads its own dropped-out x and h; the cell update
    # c = f * c + i * g and h = o * tanh(c) read the undropped state
    rng = np.random.default_rng(6)
    B, D, H = 3, 4, 2
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, 1, D, H)
    im, rm = dropout_masks(rng, "both", B, D, H)
    W, U, b = np.split(kernel, 4, axis=1), np.split(recurrent_kernel, 4, axis=1), \
        np.split(bias, 4)
    z = [(x[:, 0] * im[g]) @ W[g] + b[g] + (h0 * rm[g]) @ U[g] for g in range(4)]
    i, f, g, o = _sigmoid(z[0]), _sigmoid(z[1]), np.tanh(z[2]), _sigmoid(z[3])
    c = f * c0 + i * g
    h = o * np.tanh(c)
    out, h_last, c_last, _ = forward(x, kernel, recurrent_kernel, bias, h0, c0,
                                     input_masks=im, recurrent_masks=rm)
    np.testing.assert_allclose(h_last, h, rtol=1e-13)
    np.testing.assert_allclose(c_last, c, rtol=1e-13)
    np.testing.assert_allclose(out[:, 0], h, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_of_ones_are_no_dropout(dtype):
    rng = np.random.default_rng(7)
    B, T, D, H = 19, 6, 3, 4
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    mask = rng.random((B, T)) < 0.8
    args = (x, kernel, recurrent_kernel, bias, h0, c0)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gc = rng.standard_normal((B, H)).astype(dtype)
    ones = dict(input_masks=np.ones((4, B, D), dtype), recurrent_masks=np.ones((4, B, H), dtype))
    for forward, backward in ((lstm_forward, lstm_backward),
                              (reference.lstm_forward, reference.lstm_backward)):
        plain = forward(*args, mask=mask)
        for kw in (ones, {"input_masks": ones["input_masks"]},
                   {"recurrent_masks": ones["recurrent_masks"]}):
            masked = forward(*args, mask=mask, **kw)
            # (the same sums, in per-gate GEMMs: equal to rounding)
            for name, a, b in zip(OUT_NAMES + GRAD_NAMES,
                                  plain[:3] + backward(plain[3], go, None, gc),
                                  masked[:3] + backward(masked[3], go, None, gc)):
                np.testing.assert_allclose(a, b, err_msg=name, **TOL[dtype])


def test_zero_input_masks_drop_x_and_zero_recurrent_masks_drop_h():
    rng = np.random.default_rng(8)
    B, T, D, H = 5, 6, 3, 4
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H)
    args = (x, kernel, recurrent_kernel, bias, h0, c0)
    go = rng.standard_normal((B, T, H))
    # input masks all zero: the inputs never reach the cell, and get no gradient
    zero = lstm_forward(*args, input_masks=np.zeros((4, B, D)))
    no_x = lstm_forward(np.zeros_like(x), *args[1:])
    np.testing.assert_allclose(zero[0], no_x[0], rtol=1e-14)
    dx, dk = lstm_backward(zero[3], go)[:2]
    np.testing.assert_array_equal(dx, 0)
    np.testing.assert_array_equal(dk, 0)
    # recurrent masks all zero: the gates never see h (c still carries over), and the
    # recurrent kernel gets no gradient
    zero = lstm_forward(*args, recurrent_masks=np.zeros((4, B, H)))
    no_u = lstm_forward(*args[:2], np.zeros_like(recurrent_kernel), *args[3:])
    np.testing.assert_allclose(zero[0], no_u[0], rtol=1e-14)
    drk = lstm_backward(zero[3], go)[2]
    np.testing.assert_array_equal(drk, 0)


def test_go_backwards_with_masks_returns_outputs_in_processing_order():
    rng = np.random.default_rng(9)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 5, 3, 2)
    mask = rng.random((2, 5)) < 0.7
    im, rm = dropout_masks(rng, "both", 2, 3, 2)
    kw = dict(h0=h0, c0=c0, input_masks=im, recurrent_masks=rm)
    back = lstm_forward(x, kernel, recurrent_kernel, bias, mask=mask, go_backwards=True, **kw)
    fwd = lstm_forward(x[:, ::-1], kernel, recurrent_kernel, bias, mask=mask[:, ::-1], **kw)
    for a, b in zip(back[:3], fwd[:3]):
        np.testing.assert_array_equal(a, b)
    go = rng.standard_normal((2, 5, 2))
    grads_back = lstm_backward(back[3], go)
    grads_fwd = lstm_backward(fwd[3], go)
    np.testing.assert_array_equal(grads_back[0], grads_fwd[0][:, ::-1])
    for a, b in zip(grads_back[1:], grads_fwd[1:]):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# determinism, blocks, the cache

def test_bitwise_deterministic_for_one_or_two_threads():
    rng = np.random.default_rng(10)
    B, T, D, H = 19, 7, 3, 5  # two row blocks
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, np.float32)
    mask = rng.random((B, T)) < 0.8
    go = rng.standard_normal((B, T, H)).astype(np.float32)
    variants = [(None, None)]
    for kind in ("input", "recurrent", "both"):
        variants.append(dropout_masks(rng, kind, B, D, H, np.float32))
    before = fastseq.get_num_threads()
    runs = []
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            fastseq.set_num_threads(n)
            run = []
            for im, rm in variants:
                out, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask,
                                                input_masks=im, recurrent_masks=rm)
                run.append((out, h, c) + lstm_backward(cache, go, h, c))
            runs.append(run)
    finally:
        fastseq.set_num_threads(before)
    for run in runs[1:]:
        for first, again in zip(runs[0], run):
            for a, b in zip(first, again):
                assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_steps_give_the_same_results(monkeypatch, dtype):
    # the input projection and the backward's weight GEMMs run per block of steps (sized to
    # stay in cache); blocks of 1 and 2 steps agree with the default (one block here)
    rng = np.random.default_rng(11)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 9, 2, 3, dtype)
    mask = rng.random((2, 9)) < 0.8
    im, rm = dropout_masks(rng, "both", 2, 2, 3, dtype)
    go = rng.standard_normal((2, 9, 3)).astype(dtype)

    def run():
        kw = dict(mask=mask, input_masks=im, recurrent_masks=rm)
        infer = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, training=False, **kw)
        o, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, **kw)
        return infer[:3] + (o, h, c) + lstm_backward(cache, go, h, c)

    whole = run()
    for values in (2 * 4 * 3, 2 * 2 * 8 * 3):  # 1 and 2 steps of 2 rows, forward and back
        monkeypatch.setattr(lstm_kernels, "_BLOCK_VALUES", values)
        for a, b in zip(whole, run()):
            np.testing.assert_allclose(a, b, **TOL[dtype])


def test_inference_matches_training_forward_and_returns_no_cache():
    rng = np.random.default_rng(12)
    args = random_lstm(rng, 3, 40, 2, 3, np.float32)
    mask = rng.random((3, 40)) < 0.9
    im, rm = dropout_masks(rng, "both", 3, 2, 3, np.float32)
    kw = dict(mask=mask, input_masks=im, recurrent_masks=rm)
    infer = lstm_forward(*args, training=False, **kw)
    train = lstm_forward(*args, training=True, **kw)
    assert infer[3] is None
    for a, b in zip(infer[:3], train[:3]):
        np.testing.assert_array_equal(a, b)


def test_the_cache_keeps_masks_and_weights_and_serves_several_backward_passes():
    rng = np.random.default_rng(13)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 17, 3, 2, 2, np.float32)
    im, rm = dropout_masks(rng, "both", 17, 2, 2, np.float32)
    want_masks = dict(input_masks=im.copy(), recurrent_masks=rm.copy())
    out, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0,
                                    input_masks=im, recurrent_masks=rm)
    first = lstm_backward(cache, out)
    # an optimizer's in-place update and new masks drawn into the same arrays before the
    # backward: the cache holds what the forward used
    kernel += 1
    recurrent_kernel += 1
    im[:] = 0
    rm[:] = 0
    other = lstm_backward(cache, grad_h_last=h)
    again = lstm_backward(cache, out)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    want_cache = reference.lstm_forward(x, kernel - 1, recurrent_kernel - 1, bias, h0, c0,
                                        **want_masks)[3]
    for a, b in zip(other, reference.lstm_backward(want_cache, grad_h_last=h)):
        np.testing.assert_allclose(a, b, **TOL[np.float32])


# ---------------------------------------------------------------------------------------
# bad masks

def _good(dtype=np.float32):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 3, 4, 5, dtype)
    return dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0)


def _with(**changes):
    args = _good()
    args.update(changes)
    return args


f32 = np.float32
BAD_MASKS = [
    (_with(input_masks=np.ones((2, 4), f32)), ValueError,
     r"input_masks must be 3-D \(4, batch, features\), got shape \(2, 4\)"),
    (_with(input_masks=np.ones((3, 2, 4), f32)), ValueError,
     r"input_masks must have shape \(4, batch, features\) = \(4, 2, 4\), got \(3, 2, 4\)"),
    (_with(input_masks=np.ones((4, 3, 4), f32)), ValueError,
     r"input_masks must have shape \(4, batch, features\) = \(4, 2, 4\), got \(4, 3, 4\)"),
    (_with(input_masks=np.ones((4, 2, 5), f32)), ValueError,
     r"input_masks must have shape \(4, batch, features\) = \(4, 2, 4\), got \(4, 2, 5\)"),
    (_with(input_masks=np.ones((4, 2, 4), bool)), TypeError,
     "input_masks must be a float32 or float64 array, got dtype bool"),
    (_with(input_masks=np.ones((4, 2, 4))), TypeError,
     "input_masks must have dtype float32 \\(the dtype of x\\), got float64"),
    (_with(recurrent_masks=np.ones((4, 2, 4), f32)), ValueError,
     r"recurrent_masks must have shape \(4, batch, units\) = \(4, 2, 5\), got \(4, 2, 4\)"),
    (_with(recurrent_masks=np.ones((3, 2, 5), f32)), ValueError,
     r"recurrent_masks must have shape \(4, batch, units\) = \(4, 2, 5\), got \(3, 2, 5\)"),
    (_with(recurrent_masks=np.ones((4, 2, 5, 1), f32)), ValueError,
     r"recurrent_masks must be 3-D \(4, batch, units\)"),
    (_with(recurrent_masks=np.ones((4, 2, 5), np.int32)), TypeError,
     "recurrent_masks must be a float32 or float64 array"),
]


@pytest.mark.parametrize("args, error, message", BAD_MASKS)
def test_bad_masks_are_clear_errors(args, error, message):
    with pytest.raises(error, match=message):
        lstm_forward(**args)


def test_masks_as_lists_and_non_contiguous_arrays_are_accepted():
    args = _good()
    rng = np.random.default_rng(1)
    im, rm = dropout_masks(rng, "both", 2, 4, 5, np.float32)
    want = lstm_forward(**args, input_masks=im, recurrent_masks=rm)[0]
    got = lstm_forward(**args, input_masks=im.tolist(), recurrent_masks=rm.tolist())[0]
    np.testing.assert_array_equal(got, want)
    strided = np.repeat(rm, 2, axis=2)[:, :, ::2]
    got = lstm_forward(**args, input_masks=im, recurrent_masks=strided)[0]
    np.testing.assert_array_equal(got, want)
