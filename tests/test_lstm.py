"""The Numba LSTM kernels (through fastseq._api.lstm, the public wrappers) against the
NumPy reference, finite differences, Keras's mask rules, determinism and bad inputs."""
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


def run_both(args, kwargs, grads):
    """Forward + backward through the fast kernels and through the reference."""
    results = []
    for forward, backward in ((lstm_forward, lstm_backward),
                              (reference.lstm_forward, reference.lstm_backward)):
        outputs, h_last, c_last, cache = forward(*args, **kwargs)
        results.append((outputs, h_last, c_last) + tuple(backward(cache, *grads)))
    return results


# B = 17 runs in two row blocks (two threads); the others in one.
@settings(max_examples=30, deadline=None)
@given(B=st.sampled_from([1, 2, 17]), T=st.sampled_from([1, 2, 5]),
       D=st.sampled_from([1, 3]), H=st.sampled_from([1, 2, 5]),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       which_grads=st.sampled_from(["all", "outputs", "h", "c", "h_c"]),
       seed=st.integers(0, 2**31 - 1))
def test_forward_and_gradients_match_reference(B, T, D, H, dtype, mask_kind, go_backwards,
                                               with_state, with_bias, which_grads, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, dtype)
    mask = make_mask(rng, mask_kind, B, T)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gh = rng.standard_normal((B, H)).astype(dtype)
    gc = rng.standard_normal((B, H)).astype(dtype)
    grads = {"all": (go, gh, gc), "outputs": (go, None, None), "h": (None, gh, None),
             "c": (None, None, gc), "h_c": (None, gh, gc)}[which_grads]
    args = (x, kernel, recurrent_kernel, bias if with_bias else None,
            h0 if with_state else None, c0 if with_state else None)
    fast, ref = run_both(args, dict(mask=mask, go_backwards=go_backwards), grads)
    names = ["outputs", "h_last", "c_last"] + GRAD_NAMES
    for name, got, want in zip(names, fast, ref):
        if want is None:
            assert got is None, name
            continue
        assert got.dtype == dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=name, **TOL[dtype])


@pytest.mark.parametrize("mask_kind", ["none", "random", "leading", "row_fully_masked"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradients_match_finite_differences(mask_kind, go_backwards):
    rng = np.random.default_rng(11 + MASK_KINDS.index(mask_kind) + 10 * go_backwards)
    B, T, D, H = 3, 4, 2, 3
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H)
    mask = make_mask(rng, mask_kind, B, T)
    if mask is not None:
        mask[:, 1] = False  # a step masked for the whole batch (skipped by the kernels)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    gc = rng.standard_normal((B, H))
    args = [x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards]
    _, _, _, cache = lstm_forward(*args)
    analytic = lstm_backward(cache, go, gh, gc)
    numeric = numeric_gradients(lambda *a: lstm_forward(*a, training=False), args, (go, gh, gc))
    for name, got, want in zip(GRAD_NAMES, analytic, numeric[:6]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_pytorch_lstm(go_backwards):
    # an independent oracle when PyTorch is installed: nn.LSTM has the same cell and gate
    # order (i, f, g, o), with transposed weights; go_backwards is nn.LSTM on x reversed
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    B, T, D, H = 3, 5, 4, 3
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    out, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0,
                                    go_backwards=go_backwards)
    grads = lstm_backward(cache, go, gh)
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        lstm.bias_hh_l0.zero_()
    xt = torch.from_numpy(np.ascontiguousarray(x[:, ::-1] if go_backwards else x)).requires_grad_()
    h0t = torch.from_numpy(h0[None].copy()).requires_grad_()
    c0t = torch.from_numpy(c0[None].copy()).requires_grad_()
    out_t, (h_t, c_t) = lstm(xt, (h0t, c0t))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c, c_t[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    ((out_t * torch.from_numpy(go)).sum() + (h_t[0] * torch.from_numpy(gh)).sum()).backward()
    dx_t = xt.grad.numpy()[:, ::-1] if go_backwards else xt.grad.numpy()
    want = [dx_t, lstm.weight_ih_l0.grad.numpy().T, lstm.weight_hh_l0.grad.numpy().T,
            lstm.bias_ih_l0.grad.numpy(), h0t.grad.numpy()[0], c0t.grad.numpy()[0]]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------
# Keras semantics, on hand-built cases

def test_one_step_is_the_keras_cell():
    rng = np.random.default_rng(5)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 1, 3, 4)
    out, h, c, _ = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0)
    z = x[:, 0] @ kernel + h0 @ recurrent_kernel + bias
    i, f, g, o = np.split(z, 4, axis=1)  # Keras's gate order: i, f, c, o
    want_c = _sigmoid(f) * c0 + _sigmoid(i) * np.tanh(g)
    want_h = _sigmoid(o) * np.tanh(want_c)
    np.testing.assert_allclose(c, want_c, rtol=1e-13)
    np.testing.assert_allclose(h, want_h, rtol=1e-13)
    np.testing.assert_allclose(out[:, 0], want_h, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_step_repeats_previous_output_and_keeps_state(dtype):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 5, 3, 2, dtype)
    mask = np.array([[True, False, True, True, False], [True, True, True, True, True]])
    out, h_last, c_last, _ = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
    # row 0 is the same as running its unmasked steps only
    kept, kept_h, kept_c, _ = lstm_forward(x[:1, [0, 2, 3]], kernel, recurrent_kernel, bias,
                                           h0[:1], c0[:1])
    # (other batch sizes may round differently in the BLAS: equal to a few ulps)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-13)
    np.testing.assert_allclose(out[0], kept[0, [0, 0, 1, 2, 2]], **tol)
    np.testing.assert_allclose(h_last[0], kept_h[0], **tol)
    np.testing.assert_allclose(c_last[0], kept_c[0], **tol)
    # a masked step repeats the previous output exactly
    np.testing.assert_array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(out[0, 4], out[0, 3])
    full, _, _, _ = lstm_forward(x[1:], kernel, recurrent_kernel, bias, h0[1:], c0[1:])
    np.testing.assert_allclose(out[1], full[0], **tol)


def test_fully_masked_sequence_outputs_h0():
    rng = np.random.default_rng(1)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 3, 2, 2)
    mask = np.array([[False, False, False], [True, False, True]])
    out, h_last, c_last, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
    np.testing.assert_array_equal(out[0], np.repeat(h0[:1], 3, axis=0))
    np.testing.assert_array_equal(h_last[0], h0[0])
    np.testing.assert_array_equal(c_last[0], c0[0])
    # its gradients pass straight to h0 and c0; its inputs get none
    go = rng.standard_normal((2, 3, 2))
    gc = rng.standard_normal((2, 2))
    dx, _, _, _, dh0, dc0 = lstm_backward(cache, go, None, gc)
    np.testing.assert_allclose(dh0[0], go[0].sum(axis=0), rtol=1e-14)
    np.testing.assert_array_equal(dc0[0], gc[0])
    np.testing.assert_array_equal(dx[0], 0)
    # every step masked: outputs h0 (zeros by default), state unchanged, zero weight grads
    none = np.zeros((2, 3), dtype=bool)
    out, h_last, c_last, cache = lstm_forward(x, kernel, recurrent_kernel, bias, mask=none)
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(h_last, 0)
    dx, dk, drk, db, dh0, _ = lstm_backward(cache, go)
    for g in (dx, dk, drk, db):
        np.testing.assert_array_equal(g, 0)
    np.testing.assert_allclose(dh0, go.sum(axis=1), rtol=1e-14)


def test_pre_padded_batch_skips_padding_and_outputs_h0_before_it():
    rng = np.random.default_rng(2)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 3, 6, 2, 3)
    mask = np.ones((3, 6), dtype=bool)
    mask[:, :2] = False  # padding for the whole batch
    mask[0, 2] = False  # and one more step for row 0
    out, h_last, _, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
    np.testing.assert_array_equal(out[:, :2], np.stack([h0, h0], axis=1))
    trimmed, trimmed_h, _, _ = lstm_forward(x[:, 2:], kernel, recurrent_kernel, bias, h0, c0,
                                            mask[:, 2:])
    np.testing.assert_array_equal(out[:, 2:], trimmed)
    np.testing.assert_array_equal(h_last, trimmed_h)
    # the two padding steps are not computed at all: the cache holds 4 steps, not 6
    assert sum(block["gates"].shape[0] for block in cache["blocks"][:1]) == 4


def test_go_backwards_returns_outputs_in_processing_order():
    rng = np.random.default_rng(3)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 5, 3, 2)
    mask = rng.random((2, 5)) < 0.7
    back = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards=True)
    fwd = lstm_forward(x[:, ::-1], kernel, recurrent_kernel, bias, h0, c0, mask[:, ::-1])
    for a, b in zip(back[:3], fwd[:3]):
        np.testing.assert_array_equal(a, b)
    # and dx comes back in the input's time order
    go = rng.standard_normal((2, 5, 2))
    dx_back = lstm_backward(back[3], go)[0]
    dx_fwd = lstm_backward(fwd[3], go)[0]
    np.testing.assert_array_equal(dx_back, dx_fwd[:, ::-1])


def test_nan_input_propagates_like_the_reference():
    rng = np.random.default_rng(4)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 4, 2, 3, np.float32)
    x[0, 1, 0] = np.nan
    out = lstm_forward(x, kernel, recurrent_kernel, bias)[0]
    want = reference.lstm_forward(x, kernel, recurrent_kernel, bias)[0]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    assert np.isnan(out[0, 1:]).all() and not np.isnan(out[1]).any()


@pytest.mark.parametrize("B, T", [(0, 3), (2, 0)])
def test_empty_batch_or_sequence(B, T):
    x = np.zeros((B, T, 3), np.float32)
    kernel = np.ones((3, 8), np.float32)
    recurrent_kernel = np.ones((2, 8), np.float32)
    h0 = np.ones((B, 2), np.float32)
    out, h_last, c_last, cache = lstm_forward(x, kernel, recurrent_kernel, None, h0)
    assert out.shape == (B, T, 2)
    np.testing.assert_array_equal(h_last, h0)
    np.testing.assert_array_equal(c_last, 0)
    dx, dk, drk, db, dh0, dc0 = lstm_backward(cache, grad_h_last=h0)
    assert dx.shape == (B, T, 3) and db is None
    np.testing.assert_array_equal(dk, 0)
    np.testing.assert_array_equal(dh0, h0)


def test_activations_are_accurate_float32():
    # the vectorized float32 tanh and sigmoid, over the whole range and special values
    x = np.concatenate([np.linspace(-100, 100, 400001), np.geomspace(1e-38, 1, 2000),
                        -np.geomspace(1e-38, 1, 2000), [7.9, -7.9, 1e-45, 0.0]]).astype(np.float32)
    tanh = np.empty_like(x)
    sigmoid = np.empty_like(x)
    lstm_kernels.tanh_sigmoid(x, tanh, sigmoid)
    x64 = x.astype(np.float64)
    ulp = np.spacing(np.float32(1)).astype(np.float64)  # float32 epsilon
    want_tanh = np.tanh(x64)
    want_sigmoid = 1 / (1 + np.exp(-x64))
    assert np.all(np.abs(tanh - want_tanh) <= 5 * ulp * np.abs(want_tanh) + 1e-37)
    assert np.all(np.abs(sigmoid - want_sigmoid) <= 2 * ulp * want_sigmoid + 2e-7)
    assert np.all(np.abs(tanh) <= 1) and np.all((sigmoid >= 0) & (sigmoid <= 1))
    special = np.array([np.nan, np.inf, -np.inf], np.float32)
    tanh = np.empty_like(special)
    sigmoid = np.empty_like(special)
    lstm_kernels.tanh_sigmoid(special, tanh, sigmoid)
    assert np.isnan(tanh[0]) and np.isnan(sigmoid[0])
    assert tanh[1] == 1 and tanh[2] == -1 and sigmoid[1] == 1 and sigmoid[2] == 0


def test_activations_are_accurate_float64():
    x = np.concatenate([np.linspace(-50, 50, 200001), np.geomspace(1e-300, 1, 2000),
                        -np.geomspace(1e-300, 1, 2000), [0.625, -0.625, 700.0, -700.0]])
    tanh = np.empty_like(x)
    sigmoid = np.empty_like(x)
    lstm_kernels.tanh_sigmoid(x, tanh, sigmoid)
    eps = np.finfo(np.float64).eps
    want_sigmoid = 1 / (1 + np.exp(-x))
    np.testing.assert_array_less(np.abs(tanh - np.tanh(x)), 3 * eps * np.abs(np.tanh(x)) + 1e-300)
    np.testing.assert_array_less(np.abs(sigmoid - want_sigmoid), 4 * eps * want_sigmoid + 1e-300)
    special = np.array([np.nan, np.inf, -np.inf, 800.0, -800.0])
    tanh = np.empty_like(special)
    sigmoid = np.empty_like(special)
    lstm_kernels.tanh_sigmoid(special, tanh, sigmoid)
    assert np.isnan(tanh[0]) and np.isnan(sigmoid[0])
    np.testing.assert_array_equal(tanh[1:], [1, -1, 1, -1])
    np.testing.assert_allclose(sigmoid[1:], [1, 0, 1, 0], atol=1e-300)


# ---------------------------------------------------------------------------------------
# determinism, the cache

def test_bitwise_deterministic_for_one_or_two_threads():
    rng = np.random.default_rng(6)
    B, T, D, H = 19, 7, 3, 5  # two row blocks
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, B, T, D, H, np.float32)
    mask = rng.random((B, T)) < 0.8
    go = rng.standard_normal((B, T, H)).astype(np.float32)
    before = fastseq.get_num_threads()
    results = []
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            fastseq.set_num_threads(n)
            out, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
            results.append((out, h, c) + lstm_backward(cache, go, h, c))
    finally:
        fastseq.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_inference_matches_training_forward_and_returns_no_cache():
    rng = np.random.default_rng(8)
    args = random_lstm(rng, 3, 40, 2, 3, np.float32)
    mask = rng.random((3, 40)) < 0.9
    infer = lstm_forward(*args, mask=mask, training=False)
    train = lstm_forward(*args, mask=mask, training=True)
    assert infer[3] is None
    for a, b in zip(infer[:3], train[:3]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_steps_give_the_same_results(monkeypatch, dtype):
    # the input projection and the backward's weight GEMMs run per block of steps (sized to
    # stay in cache); blocks of 1 and 2 steps agree with the default (one block here)
    rng = np.random.default_rng(9)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 9, 2, 3, dtype)
    mask = rng.random((2, 9)) < 0.8
    go = rng.standard_normal((2, 9, 3)).astype(dtype)
    tol = TOL[dtype]

    def run():
        infer = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, training=False)
        out, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask)
        return infer[:3] + (out, h, c) + lstm_backward(cache, go, h, c)

    whole = run()
    for values in (2 * 4 * 3, 2 * 2 * 4 * 3):  # 1 and 2 steps of 2 rows and 4 * 3 gates
        monkeypatch.setattr(lstm_kernels, "_BLOCK_VALUES", values)
        for a, b in zip(whole, run()):
            np.testing.assert_allclose(a, b, **tol)


def test_a_cache_serves_several_backward_passes():
    rng = np.random.default_rng(10)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 17, 3, 2, 2, np.float32)
    out, h, _, cache = lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0)
    first = lstm_backward(cache, out)
    other = lstm_backward(cache, grad_h_last=h)
    again = lstm_backward(cache, out)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    want = reference.lstm_backward(reference.lstm_forward(x, kernel, recurrent_kernel, bias,
                                                          h0, c0)[3], grad_h_last=h)
    for a, b in zip(other, want):
        np.testing.assert_allclose(a, b, **TOL[np.float32])


# ---------------------------------------------------------------------------------------
# bad input

def _good(dtype=np.float32):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0, c0 = random_lstm(rng, 2, 3, 4, 5, dtype)
    return dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, c0=c0)


def _with(**changes):
    args = _good()
    args.update(changes)
    return args


f32 = np.float32
BAD_FORWARD = [
    (_with(x=np.zeros((2, 3), f32)), ValueError, r"x must be 3-D \(batch, time, features\)"),
    (_with(x=np.zeros((2, 3, 4), np.int32)), TypeError, "x must be a float32 or float64 array"),
    (_with(kernel=np.zeros((3, 20), f32)), ValueError,
     r"kernel must have shape \(features, 4 \* units\) = \(4, 20\), got \(3, 20\)"),
    (_with(kernel=np.zeros((4, 20, 1), f32)), ValueError, "kernel must be 2-D"),
    (_with(kernel=np.zeros((4, 20))), TypeError, "kernel must have dtype float32"),
    (_with(recurrent_kernel=np.zeros((5, 16), f32)), ValueError,
     r"recurrent_kernel must have shape \(units, 4 \* units\)"),
    (_with(recurrent_kernel=np.zeros((0, 0), f32)), ValueError, "units >= 1"),
    (_with(recurrent_kernel=np.zeros(20, f32)), ValueError, "recurrent_kernel must be 2-D"),
    (_with(bias=np.zeros(16, f32)), ValueError, r"bias must have shape \(4 \* units,\) = \(20,\)"),
    (_with(bias=np.zeros((1, 20), f32)), ValueError, "bias must be 1-D"),
    (_with(bias=np.zeros(20, np.float64)), TypeError, "bias must have dtype float32"),
    (_with(h0=np.zeros((3, 5), f32)), ValueError,
     r"h0 must have shape \(batch, units\) = \(2, 5\)"),
    (_with(c0=np.zeros((2, 5), np.float64)), TypeError, "c0 must have dtype float32"),
    (_with(c0=np.zeros((2, 5, 1), f32)), ValueError, "c0 must be 2-D"),
    (_with(mask=np.ones((2, 4), bool)), ValueError,
     r"mask must have shape \(batch, time\) = \(2, 3\)"),
    (_with(mask=np.ones((2, 3, 1), bool)), ValueError, "mask must be 2-D"),
    (_with(mask=np.ones((2, 3), f32)), TypeError, "mask must be a bool"),
    (_with(go_backwards=1), TypeError, "go_backwards must be a bool"),
    (_with(training="yes"), TypeError, "training must be a bool"),
]


@pytest.mark.parametrize("args, error, message", BAD_FORWARD)
def test_bad_forward_input(args, error, message):
    with pytest.raises(error, match=message):
        lstm_forward(**args)


def test_bad_backward_input():
    args = _good()
    out, h, c, cache = lstm_forward(**args)
    with pytest.raises(ValueError, match="at least one of grad_outputs"):
        lstm_backward(cache)
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(batch, time, units\)"):
        lstm_backward(cache, out[:, :2])
    with pytest.raises(ValueError, match="grad_h_last must be 2-D"):
        lstm_backward(cache, grad_h_last=out)
    with pytest.raises(TypeError, match="grad_c_last must have dtype float32"):
        lstm_backward(cache, grad_c_last=c.astype(np.float64))
    with pytest.raises(TypeError, match="cache must be the dict lstm_forward returns"):
        lstm_backward((1, 2), out)
    with pytest.raises(ValueError, match="training=True"):
        lstm_backward(lstm_forward(**args, training=False)[3], out)
    # the failed calls above left the cache usable
    assert lstm_backward(cache, out)[0].shape == args["x"].shape


def test_integer_mask_and_list_inputs_are_accepted():
    args = _good()
    mask = np.array([[1, 0, 1], [1, 1, 0]])
    got = lstm_forward(**args, mask=mask)[0]
    want = lstm_forward(**args, mask=mask.astype(bool))[0]
    np.testing.assert_array_equal(got, want)
    listed = {k: v.tolist() for k, v in args.items()}
    np.testing.assert_array_equal(lstm_forward(**listed)[0], lstm_forward(**args)[0])
