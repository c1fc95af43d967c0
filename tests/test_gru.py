"""The GRU kernels: the NumPy reference against a per-sequence, per-step transcription of
Keras 3's GRUCell (keras/src/layers/rnn/gru.py) and against finite differences; the Numba
kernels (through fastseq._api.gru, the public wrappers) against the reference, finite
differences, PyTorch's nn.GRU, Keras's mask rules, determinism and bad inputs."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference_lstm import MASK_KINDS, make_mask

import fastseq
from fastseq._api.gru import gru_backward, gru_forward
from fastseq._kernels import lstm as lstm_kernels
from fastseq._kernels.reference import gru as reference

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
GRAD_NAMES = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"]
DROPOUT = ["none", "input", "recurrent", "both"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def random_gru(rng, B, T, D, H, dtype=np.float64, reset_after=True, scale=0.6):
    """x, kernel, recurrent_kernel, bias, h0"""
    x = rng.standard_normal((B, T, D)).astype(dtype)
    kernel = (scale * rng.standard_normal((D, 3 * H))).astype(dtype)
    recurrent_kernel = (scale * rng.standard_normal((H, 3 * H))).astype(dtype)
    bias = (0.5 * rng.standard_normal((2, 3 * H) if reset_after else 3 * H)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    return x, kernel, recurrent_kernel, bias, h0


def dropout_masks(rng, kind, B, D, H, dtype=np.float64, rate=0.4):
    """(input_masks (3, B, D) or None, recurrent_masks (3, B, H) or None), inverted scaling
    as Keras's: 0 or 1 / (1 - rate)"""
    def draw(F):
        return ((rng.random((3, B, F)) >= rate) / (1 - rate)).astype(dtype)

    return (draw(D) if kind in ("input", "both") else None,
            draw(H) if kind in ("recurrent", "both") else None)


def keras_gru_one_sequence(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards,
                           reset_after, input_masks, recurrent_masks):
    """Keras 3's GRUCell.call (implementation 1, the one with dropout masks) and the RNN
    layer's mask rule, for one sequence, one step at a time.

    x: (T, D), mask: (T,), input_masks: (3, D), recurrent_masks: (3, H) -> outputs in
    processing order (T, H), h_last"""
    H = recurrent_kernel.shape[0]
    if bias is None:
        input_bias = recurrent_bias = None
    elif reset_after:
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        input_bias, recurrent_bias = bias, None
    ones_d, ones_h = np.ones((3, x.shape[1])), np.ones((3, H))
    dp = ones_d if input_masks is None else input_masks
    rec_dp = ones_h if recurrent_masks is None else recurrent_masks
    order = range(x.shape[0] - 1, -1, -1) if go_backwards else range(x.shape[0])
    h_tm1 = h0.copy()
    outputs = []
    for t in order:
        inputs = x[t]
        x_z = (inputs * dp[0]) @ kernel[:, :H]
        x_r = (inputs * dp[1]) @ kernel[:, H:2 * H]
        x_h = (inputs * dp[2]) @ kernel[:, 2 * H:]
        if input_bias is not None:
            x_z = x_z + input_bias[:H]
            x_r = x_r + input_bias[H:2 * H]
            x_h = x_h + input_bias[2 * H:]
        recurrent_z = (h_tm1 * rec_dp[0]) @ recurrent_kernel[:, :H]
        recurrent_r = (h_tm1 * rec_dp[1]) @ recurrent_kernel[:, H:2 * H]
        if reset_after and recurrent_bias is not None:
            recurrent_z = recurrent_z + recurrent_bias[:H]
            recurrent_r = recurrent_r + recurrent_bias[H:2 * H]
        z = _sigmoid(x_z + recurrent_z)
        r = _sigmoid(x_r + recurrent_r)
        if reset_after:
            recurrent_h = (h_tm1 * rec_dp[2]) @ recurrent_kernel[:, 2 * H:]
            if recurrent_bias is not None:
                recurrent_h = recurrent_h + recurrent_bias[2 * H:]
            recurrent_h = r * recurrent_h
        else:
            recurrent_h = (r * (h_tm1 * rec_dp[2])) @ recurrent_kernel[:, 2 * H:]
        hh = np.tanh(x_h + recurrent_h)
        h = z * h_tm1 + (1 - z) * hh
        if mask is None or mask[t]:
            h_tm1 = h
        # masked: the state stays and the output repeats the previous output, which is h
        outputs.append(h_tm1.copy())
    return np.array(outputs).reshape(x.shape[0], H), h_tm1


def numeric_gradients(forward, args, grads, eps=1e-6):
    """Central differences of L = sum(outputs * go) + sum(h_last * gh) with respect to each
    float64 array in args."""
    go, gh = grads

    def loss():
        outputs, h_last, _ = forward(*args)
        return np.sum(outputs * go) + np.sum(h_last * gh)

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


# ---------------------------------------------------------------------------------------
# the reference: Keras's cell, finite differences

@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 3), H=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       reset_after=st.booleans(), dropout=st.sampled_from(DROPOUT),
       seed=st.integers(0, 2**31 - 1))
def test_reference_matches_per_step_keras_transcription(B, T, D, H, dtype, mask_kind,
                                                        go_backwards, with_state, with_bias,
                                                        reset_after, dropout, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H, dtype, reset_after)
    bias = bias if with_bias else None
    h0 = h0 if with_state else None
    mask = make_mask(rng, mask_kind, B, T)
    im, rm = dropout_masks(rng, dropout, B, D, H, dtype)
    outputs, h_last, _ = reference.gru_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                               go_backwards, True, reset_after, im, rm)
    assert outputs.dtype == h_last.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    # the transcription runs in float64 on the same (rounded) inputs
    f64 = [None if a is None else a.astype(np.float64)
           for a in (x, kernel, recurrent_kernel, bias, h0, im, rm)]
    for b in range(B):
        want_out, want_h = keras_gru_one_sequence(
            f64[0][b], f64[1], f64[2], f64[3], np.zeros(H) if h0 is None else f64[4][b],
            None if mask is None else mask[b], go_backwards, reset_after,
            None if im is None else f64[5][:, b], None if rm is None else f64[6][:, b])
        np.testing.assert_allclose(outputs[b], want_out, **tol)
        np.testing.assert_allclose(h_last[b], want_h, **tol)


def _check_finite_differences(forward, backward, reset_after, dropout, mask_kind,
                              go_backwards, seed):
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 4, 2, 3
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H, reset_after=reset_after)
    mask = make_mask(rng, mask_kind, B, T)
    if mask is not None:
        mask[:, 1] = False  # a step masked for the whole batch (skipped by the kernels)
    im, rm = dropout_masks(rng, dropout, B, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    args = [x, kernel, recurrent_kernel, bias, h0]
    options = dict(mask=mask, go_backwards=go_backwards, reset_after=reset_after,
                   input_masks=im, recurrent_masks=rm)
    _, _, cache = forward(*args, **options)
    analytic = backward(cache, go, gh)
    numeric = numeric_gradients(lambda *a: forward(*a, training=False, **options), args,
                                (go, gh))
    for name, got, want in zip(GRAD_NAMES, analytic, numeric):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


FD_CASES = [(reset_after, dropout, mask_kind, go_backwards)
            for reset_after in (True, False)
            for dropout, mask_kind, go_backwards in (
                ("none", "none", False), ("none", "random", True), ("both", "leading", False),
                ("both", "row_fully_masked", True), ("input", "random", False),
                ("recurrent", "none", True))]


@pytest.mark.parametrize("reset_after, dropout, mask_kind, go_backwards", FD_CASES)
def test_reference_gradients_match_finite_differences(reset_after, dropout, mask_kind,
                                                      go_backwards):
    _check_finite_differences(reference.gru_forward, reference.gru_backward, reset_after,
                              dropout, mask_kind, go_backwards,
                              seed=7 + FD_CASES.index((reset_after, dropout, mask_kind,
                                                       go_backwards)))


@pytest.mark.parametrize("reset_after, dropout, mask_kind, go_backwards", FD_CASES)
def test_gradients_match_finite_differences(reset_after, dropout, mask_kind, go_backwards):
    _check_finite_differences(gru_forward, gru_backward, reset_after, dropout, mask_kind,
                              go_backwards,
                              seed=70 + FD_CASES.index((reset_after, dropout, mask_kind,
                                                        go_backwards)))


def test_reference_backward_without_bias_or_output_gradients():
    rng = np.random.default_rng(3)
    x, kernel, recurrent_kernel, _, h0 = random_gru(rng, 2, 3, 2, 2)
    gh = rng.standard_normal((2, 2))
    _, _, cache = reference.gru_forward(x, kernel, recurrent_kernel, None, h0)
    dx, dk, drk, dbias, dh0 = reference.gru_backward(cache, grad_h_last=gh)
    assert dbias is None
    args = [x, kernel, recurrent_kernel, None, h0]
    numeric = numeric_gradients(
        lambda *a: reference.gru_forward(*a, training=False), args, (np.zeros((2, 3, 2)), gh))
    for got, want in zip([dx, dk, drk, dh0], [numeric[i] for i in (0, 1, 2, 4)]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------
# the Numba kernels against the reference

def run_both(args, kwargs, grads):
    """Forward + backward through the fast kernels and through the reference."""
    results = []
    for forward, backward in ((gru_forward, gru_backward),
                              (reference.gru_forward, reference.gru_backward)):
        outputs, h_last, cache = forward(*args, **kwargs)
        results.append((outputs, h_last) + tuple(backward(cache, *grads)))
    return results


# B = 17 runs in two row blocks (two threads); the others in one.
@settings(max_examples=40, deadline=None)
@given(B=st.sampled_from([1, 2, 17]), T=st.sampled_from([1, 2, 5]),
       D=st.sampled_from([1, 3]), H=st.sampled_from([1, 2, 5]),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       reset_after=st.booleans(), dropout=st.sampled_from(DROPOUT),
       which_grads=st.sampled_from(["all", "outputs", "h"]), seed=st.integers(0, 2**31 - 1))
def test_forward_and_gradients_match_reference(B, T, D, H, dtype, mask_kind, go_backwards,
                                               with_state, with_bias, reset_after, dropout,
                                               which_grads, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H, dtype, reset_after)
    mask = make_mask(rng, mask_kind, B, T)
    im, rm = dropout_masks(rng, dropout, B, D, H, dtype)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gh = rng.standard_normal((B, H)).astype(dtype)
    grads = {"all": (go, gh), "outputs": (go, None), "h": (None, gh)}[which_grads]
    args = (x, kernel, recurrent_kernel, bias if with_bias else None, h0 if with_state else None)
    kwargs = dict(mask=mask, go_backwards=go_backwards, reset_after=reset_after,
                  input_masks=im, recurrent_masks=rm)
    fast, ref = run_both(args, kwargs, grads)
    for name, got, want in zip(["outputs", "h_last"] + GRAD_NAMES, fast, ref):
        if want is None:
            assert got is None, name
            continue
        assert got.dtype == dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=name, **TOL[dtype])


@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_pytorch_gru(go_backwards):
    # an independent oracle when PyTorch is installed: nn.GRU is Keras's reset_after=True
    # cell with the gates in the order r, z, n and transposed weights; go_backwards is
    # nn.GRU on x reversed
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    B, T, D, H = 3, 5, 4, 3
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    out, h, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0, go_backwards=go_backwards)
    grads = gru_backward(cache, go, gh)
    to_torch = np.r_[H:2 * H, 0:H, 2 * H:3 * H]  # Keras's z, r, h -> torch's r, z, n
    gru = torch.nn.GRU(D, H, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(kernel[:, to_torch].T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel[:, to_torch].T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(bias[0, to_torch].copy()))
        gru.bias_hh_l0.copy_(torch.from_numpy(bias[1, to_torch].copy()))
    xt = torch.from_numpy(np.ascontiguousarray(x[:, ::-1] if go_backwards else x)).requires_grad_()
    h0t = torch.from_numpy(h0[None].copy()).requires_grad_()
    out_t, h_t = gru(xt, h0t)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h, h_t[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    ((out_t * torch.from_numpy(go)).sum() + (h_t[0] * torch.from_numpy(gh)).sum()).backward()
    from_torch = np.argsort(to_torch)
    dx_t = xt.grad.numpy()[:, ::-1] if go_backwards else xt.grad.numpy()
    want = [dx_t, gru.weight_ih_l0.grad.numpy().T[:, from_torch],
            gru.weight_hh_l0.grad.numpy().T[:, from_torch],
            np.stack([gru.bias_ih_l0.grad.numpy()[from_torch],
                      gru.bias_hh_l0.grad.numpy()[from_torch]]),
            h0t.grad.numpy()[0]]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------
# Keras semantics, on hand-built cases

@pytest.mark.parametrize("forward", [gru_forward, reference.gru_forward])
def test_one_step_is_the_keras_cell_either_reset_convention(forward):
    rng = np.random.default_rng(5)
    B, D, H = 2, 3, 4
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, 1, D, H)
    W_z, W_r, W_h = np.split(kernel, 3, axis=1)  # Keras's gate order: z, r, h
    U_z, U_r, U_h = np.split(recurrent_kernel, 3, axis=1)
    (bz, br, bh), (rz, rr, rh) = np.split(bias[0], 3), np.split(bias[1], 3)
    xt = x[:, 0]
    # reset_after=True: the reset gate multiplies the recurrent product and its bias
    z = _sigmoid(xt @ W_z + bz + h0 @ U_z + rz)
    r = _sigmoid(xt @ W_r + br + h0 @ U_r + rr)
    hh = np.tanh(xt @ W_h + bh + r * (h0 @ U_h + rh))
    want = z * h0 + (1 - z) * hh
    out, h, _ = forward(x, kernel, recurrent_kernel, bias, h0)
    np.testing.assert_allclose(h, want, rtol=1e-13)
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-13)
    # reset_after=False: one (3H,) input bias; the reset gate multiplies h before U_h
    z = _sigmoid(xt @ W_z + bz + h0 @ U_z)
    r = _sigmoid(xt @ W_r + br + h0 @ U_r)
    hh = np.tanh(xt @ W_h + bh + (r * h0) @ U_h)
    want = z * h0 + (1 - z) * hh
    out, h, _ = forward(x, kernel, recurrent_kernel, bias[0], h0, reset_after=False)
    np.testing.assert_allclose(h, want, rtol=1e-13)
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-13)


@pytest.mark.parametrize("forward", [gru_forward, reference.gru_forward])
def test_dropout_masks_as_keras_implementation_1(forward):
    # one step by hand: every gate reads its own dropped-out x and h; the update z * h +
    # (1 - z) * hh reads h itself
    rng = np.random.default_rng(6)
    B, D, H = 3, 4, 2
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, 1, D, H)
    im, rm = dropout_masks(rng, "both", B, D, H)
    W, U = np.split(kernel, 3, axis=1), np.split(recurrent_kernel, 3, axis=1)
    b_in, b_rec = np.split(bias[0], 3), np.split(bias[1], 3)
    xt = x[:, 0]
    for reset_after in (True, False):
        xg = [(xt * im[g]) @ W[g] + b_in[g] for g in range(3)]
        hg = [(h0 * rm[g]) @ U[g] + (b_rec[g] if reset_after else 0) for g in range(3)]
        z = _sigmoid(xg[0] + hg[0])
        r = _sigmoid(xg[1] + hg[1])
        if reset_after:
            hh = np.tanh(xg[2] + r * hg[2])
        else:
            hh = np.tanh(xg[2] + (r * (h0 * rm[2])) @ U[2])
        want = z * h0 + (1 - z) * hh
        out, h, _ = forward(x, kernel, recurrent_kernel, bias if reset_after else bias[0], h0,
                            reset_after=reset_after, input_masks=im, recurrent_masks=rm)
        np.testing.assert_allclose(h, want, rtol=1e-13)


def test_dropout_masks_of_ones_are_no_dropout_and_zero_input_masks_drop_x():
    rng = np.random.default_rng(7)
    B, T, D, H = 5, 6, 3, 4
    for reset_after in (True, False):
        x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H,
                                                           reset_after=reset_after)
        args = (x, kernel, recurrent_kernel, bias, h0)
        go = rng.standard_normal((B, T, H))
        plain = gru_forward(*args, reset_after=reset_after)
        ones = gru_forward(*args, reset_after=reset_after, input_masks=np.ones((3, B, D)),
                           recurrent_masks=np.ones((3, B, H)))
        for a, b in zip(plain[:2] + gru_backward(plain[2], go),
                        ones[:2] + gru_backward(ones[2], go)):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
        # input masks all zero: the inputs never reach the cell, and get no gradient
        zero = gru_forward(*args, reset_after=reset_after, input_masks=np.zeros((3, B, D)))
        no_x = gru_forward(np.zeros_like(x), *args[1:], reset_after=reset_after)
        np.testing.assert_allclose(zero[0], no_x[0], rtol=1e-14)
        dx, dk = gru_backward(zero[2], go)[:2]
        np.testing.assert_array_equal(dx, 0)
        np.testing.assert_array_equal(dk, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_masked_step_repeats_previous_output_and_keeps_state(dtype, reset_after):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 5, 3, 2, dtype, reset_after)
    mask = np.array([[True, False, True, True, False], [True, True, True, True, True]])
    out, h_last, _ = gru_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                 reset_after=reset_after)
    # row 0 is the same as running its unmasked steps only
    kept, kept_h, _ = gru_forward(x[:1, [0, 2, 3]], kernel, recurrent_kernel, bias, h0[:1],
                                  reset_after=reset_after)
    # (other batch sizes may round differently in the BLAS: equal to a few ulps)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-13)
    np.testing.assert_allclose(out[0], kept[0, [0, 0, 1, 2, 2]], **tol)
    np.testing.assert_allclose(h_last[0], kept_h[0], **tol)
    # a masked step repeats the previous output exactly
    np.testing.assert_array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(out[0, 4], out[0, 3])
    full, _, _ = gru_forward(x[1:], kernel, recurrent_kernel, bias, h0[1:],
                             reset_after=reset_after)
    np.testing.assert_allclose(out[1], full[0], **tol)


def test_fully_masked_sequence_outputs_h0():
    rng = np.random.default_rng(1)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 3, 2, 2)
    mask = np.array([[False, False, False], [True, False, True]])
    out, h_last, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0, mask)
    np.testing.assert_array_equal(out[0], np.repeat(h0[:1], 3, axis=0))
    np.testing.assert_array_equal(h_last[0], h0[0])
    # its gradients pass straight to h0; its inputs get none
    go = rng.standard_normal((2, 3, 2))
    gh = rng.standard_normal((2, 2))
    dx, _, _, _, dh0 = gru_backward(cache, go, gh)
    np.testing.assert_allclose(dh0[0], go[0].sum(axis=0) + gh[0], rtol=1e-14)
    np.testing.assert_array_equal(dx[0], 0)
    # every step masked: outputs h0 (zeros by default), state unchanged, zero weight grads
    none = np.zeros((2, 3), dtype=bool)
    out, h_last, cache = gru_forward(x, kernel, recurrent_kernel, bias, mask=none)
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(h_last, 0)
    dx, dk, drk, db, dh0 = gru_backward(cache, go)
    for g in (dx, dk, drk, db):
        np.testing.assert_array_equal(g, 0)
    np.testing.assert_allclose(dh0, go.sum(axis=1), rtol=1e-14)


@pytest.mark.parametrize("reset_after", [True, False])
def test_pre_padded_batch_skips_padding_and_outputs_h0_before_it(reset_after):
    rng = np.random.default_rng(2)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 3, 6, 2, 3, reset_after=reset_after)
    mask = np.ones((3, 6), dtype=bool)
    mask[:, :2] = False  # padding for the whole batch
    mask[0, 2] = False  # and one more step for row 0
    out, h_last, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                     reset_after=reset_after)
    np.testing.assert_array_equal(out[:, :2], np.stack([h0, h0], axis=1))
    trimmed, trimmed_h, _ = gru_forward(x[:, 2:], kernel, recurrent_kernel, bias, h0,
                                        mask[:, 2:], reset_after=reset_after)
    np.testing.assert_array_equal(out[:, 2:], trimmed)
    np.testing.assert_array_equal(h_last, trimmed_h)
    # the two padding steps are not computed at all: the cache holds 4 steps, not 6
    assert cache["blocks"][0]["gates"].shape[0] == 4


def test_go_backwards_returns_outputs_in_processing_order():
    rng = np.random.default_rng(3)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 5, 3, 2)
    mask = rng.random((2, 5)) < 0.7
    im, rm = dropout_masks(rng, "both", 2, 3, 2)
    kw = dict(input_masks=im, recurrent_masks=rm)
    back = gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards=True, **kw)
    fwd = gru_forward(x[:, ::-1], kernel, recurrent_kernel, bias, h0, mask[:, ::-1], **kw)
    for a, b in zip(back[:2], fwd[:2]):
        np.testing.assert_array_equal(a, b)
    # and dx comes back in the input's time order
    go = rng.standard_normal((2, 5, 2))
    dx_back = gru_backward(back[2], go)[0]
    dx_fwd = gru_backward(fwd[2], go)[0]
    np.testing.assert_array_equal(dx_back, dx_fwd[:, ::-1])


def test_nan_input_propagates_like_the_reference():
    rng = np.random.default_rng(4)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 4, 2, 3, np.float32)
    x[0, 1, 0] = np.nan
    out = gru_forward(x, kernel, recurrent_kernel, bias)[0]
    want = reference.gru_forward(x, kernel, recurrent_kernel, bias)[0]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    assert np.isnan(out[0, 1:]).all() and not np.isnan(out[1]).any()


@pytest.mark.parametrize("B, T", [(0, 3), (2, 0)])
def test_empty_batch_or_sequence(B, T):
    x = np.zeros((B, T, 3), np.float32)
    kernel = np.ones((3, 6), np.float32)
    recurrent_kernel = np.ones((2, 6), np.float32)
    h0 = np.ones((B, 2), np.float32)
    out, h_last, cache = gru_forward(x, kernel, recurrent_kernel, None, h0)
    assert out.shape == (B, T, 2)
    np.testing.assert_array_equal(h_last, h0)
    dx, dk, drk, db, dh0 = gru_backward(cache, grad_h_last=h0)
    assert dx.shape == (B, T, 3) and db is None
    np.testing.assert_array_equal(dk, 0)
    np.testing.assert_array_equal(drk, 0)
    np.testing.assert_array_equal(dh0, h0)


# ---------------------------------------------------------------------------------------
# determinism, the cache

@pytest.mark.parametrize("reset_after", [True, False])
def test_bitwise_deterministic_for_one_or_two_threads(reset_after):
    rng = np.random.default_rng(6)
    B, T, D, H = 19, 7, 3, 5  # two row blocks
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, B, T, D, H, np.float32, reset_after)
    mask = rng.random((B, T)) < 0.8
    im, rm = dropout_masks(rng, "both", B, D, H, np.float32)
    go = rng.standard_normal((B, T, H)).astype(np.float32)
    before = fastseq.get_num_threads()
    results = []
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            fastseq.set_num_threads(n)
            for masks in ((None, None), (im, rm)):
                out, h, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                            reset_after=reset_after, input_masks=masks[0],
                                            recurrent_masks=masks[1])
                results.append((out, h) + gru_backward(cache, go, h))
    finally:
        fastseq.set_num_threads(before)
    # results: (without masks, with masks) for 1, 2 and again 1 thread
    for i in range(2, len(results)):
        for a, b in zip(results[i % 2], results[i]):
            np.testing.assert_array_equal(a, b)


def test_inference_matches_training_forward_and_returns_no_cache():
    rng = np.random.default_rng(8)
    for reset_after in (True, False):
        args = random_gru(rng, 3, 40, 2, 3, np.float32, reset_after)
        mask = rng.random((3, 40)) < 0.9
        im, rm = dropout_masks(rng, "both", 3, 2, 3, np.float32)
        kw = dict(mask=mask, reset_after=reset_after, input_masks=im, recurrent_masks=rm)
        infer = gru_forward(*args, training=False, **kw)
        train = gru_forward(*args, training=True, **kw)
        assert infer[2] is None
        for a, b in zip(infer[:2], train[:2]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [True, False])
def test_blocks_of_steps_give_the_same_results(monkeypatch, dtype, reset_after):
    # the input projection and the backward's weight GEMMs run per block of steps (sized to
    # stay in cache); blocks of 1 and 2 steps agree with the default (one block here)
    rng = np.random.default_rng(9)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 9, 2, 3, dtype, reset_after)
    mask = rng.random((2, 9)) < 0.8
    im, rm = dropout_masks(rng, "both", 2, 2, 3, dtype)
    go = rng.standard_normal((2, 9, 3)).astype(dtype)
    tol = TOL[dtype]

    def run():
        out = ()
        for masks in ((None, None), (im, rm)):
            kw = dict(mask=mask, reset_after=reset_after, input_masks=masks[0],
                      recurrent_masks=masks[1])
            infer = gru_forward(x, kernel, recurrent_kernel, bias, h0, training=False, **kw)
            o, h, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0, **kw)
            out += infer[:2] + (o, h) + gru_backward(cache, go, h)
        return out

    whole = run()
    for values in (2 * 4 * 3, 2 * 2 * 4 * 3):  # 1 and 2 steps of 2 rows and 4 * 3 rows
        monkeypatch.setattr(lstm_kernels, "_BLOCK_VALUES", values)
        for a, b in zip(whole, run()):
            np.testing.assert_allclose(a, b, **tol)


def test_a_cache_serves_several_backward_passes_and_keeps_the_weights():
    rng = np.random.default_rng(10)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 17, 3, 2, 2, np.float32)
    out, h, cache = gru_forward(x, kernel, recurrent_kernel, bias, h0)
    first = gru_backward(cache, out)
    kernel += 1  # an optimizer's in-place update between forward and backward
    recurrent_kernel += 1
    other = gru_backward(cache, grad_h_last=h)
    again = gru_backward(cache, out)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    want = reference.gru_backward(reference.gru_forward(x, kernel - 1, recurrent_kernel - 1,
                                                        bias, h0)[2], grad_h_last=h)
    for a, b in zip(other, want):
        np.testing.assert_allclose(a, b, **TOL[np.float32])


# ---------------------------------------------------------------------------------------
# bad input

def _good(dtype=np.float32):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0 = random_gru(rng, 2, 3, 4, 5, dtype)
    return dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)


def _with(**changes):
    args = _good()
    args.update(changes)
    return args


f32 = np.float32
BAD_FORWARD = [
    (_with(x=np.zeros((2, 3), f32)), ValueError, r"x must be 3-D \(batch, time, features\)"),
    (_with(x=np.zeros((2, 3, 4), np.int32)), TypeError, "x must be a float32 or float64 array"),
    (_with(kernel=np.zeros((3, 15), f32)), ValueError,
     r"kernel must have shape \(features, 3 \* units\) = \(4, 15\), got \(3, 15\)"),
    (_with(kernel=np.zeros((4, 20), f32)), ValueError,
     r"kernel must have shape \(features, 3 \* units\) = \(4, 15\), got \(4, 20\)"),
    (_with(kernel=np.zeros((4, 15, 1), f32)), ValueError, "kernel must be 2-D"),
    (_with(kernel=np.zeros((4, 15))), TypeError, "kernel must have dtype float32"),
    (_with(recurrent_kernel=np.zeros((5, 20), f32)), ValueError,
     r"recurrent_kernel must have shape \(units, 3 \* units\)"),
    (_with(recurrent_kernel=np.zeros((0, 0), f32)), ValueError, "units >= 1"),
    (_with(recurrent_kernel=np.zeros(15, f32)), ValueError, "recurrent_kernel must be 2-D"),
    (_with(bias=np.zeros((2, 12), f32)), ValueError,
     r"bias must have shape \(2, 3 \* units\) with reset_after=True = \(2, 15\), got \(2, 12\)"),
    (_with(bias=np.zeros(15, f32)), ValueError,
     r"bias must be 2-D \(2, 3 \* units\) with reset_after=True, got shape \(15,\) "
     r"\(a \(3 \* units,\) bias goes with reset_after=False\)"),
    (_with(bias=np.zeros((2, 15), f32), reset_after=False), ValueError,
     r"bias must be 1-D \(3 \* units,\) with reset_after=False, got shape \(2, 15\)"),
    (_with(bias=np.zeros(12, f32), reset_after=False), ValueError,
     r"bias must have shape \(3 \* units,\) with reset_after=False = \(15,\), got \(12,\)"),
    (_with(bias=np.zeros((2, 15), np.float64)), TypeError, "bias must have dtype float32"),
    (_with(h0=np.zeros((3, 5), f32)), ValueError,
     r"h0 must have shape \(batch, units\) = \(2, 5\)"),
    (_with(h0=np.zeros((2, 5), np.float64)), TypeError, "h0 must have dtype float32"),
    (_with(h0=np.zeros((2, 5, 1), f32)), ValueError, "h0 must be 2-D"),
    (_with(mask=np.ones((2, 4), bool)), ValueError,
     r"mask must have shape \(batch, time\) = \(2, 3\)"),
    (_with(mask=np.ones((2, 3, 1), bool)), ValueError, "mask must be 2-D"),
    (_with(mask=np.ones((2, 3), f32)), TypeError, "mask must be a bool"),
    (_with(input_masks=np.ones((2, 4), f32)), ValueError,
     r"input_masks must be 3-D \(3, batch, features\)"),
    (_with(input_masks=np.ones((3, 2, 5), f32)), ValueError,
     r"input_masks must have shape \(3, batch, features\) = \(3, 2, 4\), got \(3, 2, 5\)"),
    (_with(input_masks=np.ones((1, 2, 4), f32)), ValueError,
     r"input_masks must have shape \(3, batch, features\) = \(3, 2, 4\)"),
    (_with(input_masks=np.ones((3, 2, 4), bool)), TypeError,
     "input_masks must be a float32 or float64 array"),
    (_with(recurrent_masks=np.ones((3, 2, 4), f32)), ValueError,
     r"recurrent_masks must have shape \(3, batch, units\) = \(3, 2, 5\), got \(3, 2, 4\)"),
    (_with(recurrent_masks=np.ones((3, 2, 5))), TypeError,
     "recurrent_masks must have dtype float32"),
    (_with(go_backwards=1), TypeError, "go_backwards must be a bool"),
    (_with(training="yes"), TypeError, "training must be a bool"),
    (_with(reset_after=None), TypeError, "reset_after must be a bool"),
]


@pytest.mark.parametrize("args, error, message", BAD_FORWARD)
def test_bad_forward_input(args, error, message):
    with pytest.raises(error, match=message):
        gru_forward(**args)


def test_bad_backward_input():
    args = _good()
    out, h, cache = gru_forward(**args)
    with pytest.raises(ValueError, match="at least one of grad_outputs, grad_h_last"):
        gru_backward(cache)
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(batch, time, units\)"):
        gru_backward(cache, out[:, :2])
    with pytest.raises(ValueError, match="grad_h_last must be 2-D"):
        gru_backward(cache, grad_h_last=out)
    with pytest.raises(TypeError, match="grad_h_last must have dtype float32"):
        gru_backward(cache, grad_h_last=h.astype(np.float64))
    with pytest.raises(TypeError, match="cache must be the dict gru_forward returns"):
        gru_backward((1, 2), out)
    with pytest.raises(ValueError, match="training=True"):
        gru_backward(gru_forward(**args, training=False)[2], out)
    # the failed calls above left the cache usable
    assert gru_backward(cache, out)[0].shape == args["x"].shape


def test_integer_mask_and_list_inputs_are_accepted():
    args = _good()
    mask = np.array([[1, 0, 1], [1, 1, 0]])
    got = gru_forward(**args, mask=mask)[0]
    want = gru_forward(**args, mask=mask.astype(bool))[0]
    np.testing.assert_array_equal(got, want)
    listed = {k: v.tolist() for k, v in args.items()}
    np.testing.assert_array_equal(gru_forward(**listed)[0], gru_forward(**args)[0])


def test_benchmark_torch_peer_runs_the_same_cell():
    # fastseq._bench.gru hands PyTorch our weights: its nn.GRU must compute our outputs
    torch = pytest.importorskip("torch")
    from fastseq._bench import gru as bench

    inputs = bench._inputs(3, 4, 5, 2)()
    _, gru, x, _ = bench.torch_gru(inputs)
    with torch.no_grad():
        want = gru(x)[0].numpy()
    got = gru_forward(inputs["x"], inputs["kernel"], inputs["recurrent_kernel"],
                      inputs["bias"])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
