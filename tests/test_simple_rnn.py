"""The SimpleRNN kernels: the NumPy reference against a per-sample, per-step transcription of
Keras's cell; the Numba kernels (through fastseq._api.simple_rnn, the public wrappers)
against the reference; finite differences of every gradient; Keras's mask and dropout
rules on hand-built cases; PyTorch's nn.RNN as an independent oracle; determinism; bad
inputs."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference_lstm import MASK_KINDS, make_mask

import fastseq
from fastseq._api.simple_rnn import simple_rnn_backward, simple_rnn_forward
from fastseq._kernels import simple_rnn as simple_rnn_kernels
from fastseq._kernels.reference import simple_rnn as reference

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]
GRAD_NAMES = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"]
DROPOUT_KINDS = ["none", "input", "recurrent", "both"]


def _act(name, z):
    return {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "linear": lambda v: v}[name](z)


def random_rnn(rng, B, T, D, H, dtype=np.float64, scale=0.6):
    x = rng.standard_normal((B, T, D)).astype(dtype)
    kernel = (scale * rng.standard_normal((D, H))).astype(dtype)
    recurrent_kernel = (scale * rng.standard_normal((H, H))).astype(dtype)
    bias = (0.5 * rng.standard_normal(H)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    return x, kernel, recurrent_kernel, bias, h0


def dropout_masks(rng, kind, B, D, H, dtype=np.float64, rate=0.3):
    """Keras-style inverted dropout masks (0 or 1 / (1 - rate)), one per sequence."""
    def draw(n):
        return ((rng.random((B, n)) >= rate) / (1 - rate)).astype(dtype)
    input_mask = draw(D) if kind in ("input", "both") else None
    recurrent_mask = draw(H) if kind in ("recurrent", "both") else None
    return input_mask, recurrent_mask


def keras_simple_rnn_one_sequence(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards,
                                  activation, input_mask, recurrent_mask):
    """Keras's SimpleRNNCell.call and the RNN's mask rule, one sequence, one step at a time.

    x: (T, D), mask: (T,) -> outputs in processing order (T, H), h_last"""
    order = range(x.shape[0] - 1, -1, -1) if go_backwards else range(x.shape[0])
    h = h0.copy()
    outputs = []
    for t in order:
        sequence = x[t] if input_mask is None else x[t] * input_mask
        z = sequence @ kernel
        if bias is not None:
            z = z + bias
        prev_output = h if recurrent_mask is None else h * recurrent_mask
        output = _act(activation, z + prev_output @ recurrent_kernel)
        if mask is None or mask[t]:
            h = output
        # masked: the state stays and the output repeats the previous output, which is h
        outputs.append(h.copy())
    return np.array(outputs).reshape(x.shape[0], -1), h


# ---------------------------------------------------------------------------------------
# the reference against Keras's cell

@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 3), H=st.integers(1, 4),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       activation=st.sampled_from(ACTIVATIONS), dropout=st.sampled_from(DROPOUT_KINDS),
       seed=st.integers(0, 2**31 - 1))
def test_reference_matches_per_step_keras_transcription(B, T, D, H, dtype, mask_kind,
                                                        go_backwards, with_state, with_bias,
                                                        activation, dropout, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H, dtype)
    bias = bias if with_bias else None
    h0 = h0 if with_state else None
    mask = make_mask(rng, mask_kind, B, T)
    input_mask, recurrent_mask = dropout_masks(rng, dropout, B, D, H, dtype)
    outputs, h_last, _ = reference.simple_rnn_forward(
        x, kernel, recurrent_kernel, bias, h0, mask, go_backwards, activation=activation,
        input_mask=input_mask, recurrent_mask=recurrent_mask)
    assert outputs.dtype == h_last.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)

    def f64(a):
        return None if a is None else a.astype(np.float64)

    for b in range(B):
        want_out, want_h = keras_simple_rnn_one_sequence(
            f64(x[b]), f64(kernel), f64(recurrent_kernel), f64(bias),
            np.zeros(H) if h0 is None else f64(h0[b]), None if mask is None else mask[b],
            go_backwards, activation, None if input_mask is None else f64(input_mask[b]),
            None if recurrent_mask is None else f64(recurrent_mask[b]))
        np.testing.assert_allclose(outputs[b], want_out, **tol)
        np.testing.assert_allclose(h_last[b], want_h, **tol)


def numeric_gradients(forward, args, grads, eps=1e-6):
    """Central differences of L = sum(outputs * go) + sum(h_last * gh) with respect to each
    float64 array in args (None for the others)."""
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


FD_CASES = [(act, mask_kind, go_backwards, dropout)
            for act in ACTIVATIONS
            for mask_kind, go_backwards, dropout in (("none", False, "none"),
                                                     ("random", True, "both"),
                                                     ("leading", False, "recurrent"),
                                                     ("row_fully_masked", True, "input"))]


@pytest.mark.parametrize("implementation", ["reference", "fast"])
@pytest.mark.parametrize("activation, mask_kind, go_backwards, dropout", FD_CASES)
def test_gradients_match_finite_differences(implementation, activation, mask_kind,
                                            go_backwards, dropout):
    forward, backward = {
        "reference": (reference.simple_rnn_forward, reference.simple_rnn_backward),
        "fast": (simple_rnn_forward, simple_rnn_backward)}[implementation]
    seed = 100 + 10 * ACTIVATIONS.index(activation) + MASK_KINDS.index(mask_kind)
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 4, 2, 3
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H)
    mask = make_mask(rng, mask_kind, B, T)
    if mask is not None:
        mask[:, 1] = False  # a step masked for the whole batch (skipped by the kernels)
    input_mask, recurrent_mask = dropout_masks(rng, dropout, B, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    args = [x, kernel, recurrent_kernel, bias, h0, mask, go_backwards]
    kwargs = dict(activation=activation, input_mask=input_mask, recurrent_mask=recurrent_mask)
    _, _, cache = forward(*args, **kwargs)
    analytic = backward(cache, go, gh)
    numeric = numeric_gradients(lambda *a: forward(*a, training=False, **kwargs), args,
                                (go, gh))
    for name, got, want in zip(GRAD_NAMES, analytic, numeric[:5]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


# ---------------------------------------------------------------------------------------
# the fast kernels against the reference

def run_both(args, kwargs, grads):
    """Forward + backward through the fast kernels and through the reference."""
    results = []
    for forward, backward in ((simple_rnn_forward, simple_rnn_backward),
                              (reference.simple_rnn_forward, reference.simple_rnn_backward)):
        outputs, h_last, cache = forward(*args, **kwargs)
        results.append((outputs, h_last) + tuple(backward(cache, *grads)))
    return results


# B = 17 runs in two row blocks (two threads); the others in one.
@settings(max_examples=60, deadline=None)
@given(B=st.sampled_from([1, 2, 17]), T=st.sampled_from([1, 2, 5]),
       D=st.sampled_from([1, 3]), H=st.sampled_from([1, 2, 5]),
       dtype=st.sampled_from([np.float32, np.float64]), mask_kind=st.sampled_from(MASK_KINDS),
       go_backwards=st.booleans(), with_state=st.booleans(), with_bias=st.booleans(),
       activation=st.sampled_from(ACTIVATIONS), dropout=st.sampled_from(DROPOUT_KINDS),
       which_grads=st.sampled_from(["all", "outputs", "h"]),
       seed=st.integers(0, 2**31 - 1))
def test_forward_and_gradients_match_reference(B, T, D, H, dtype, mask_kind, go_backwards,
                                               with_state, with_bias, activation, dropout,
                                               which_grads, seed):
    rng = np.random.default_rng(seed)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H, dtype)
    mask = make_mask(rng, mask_kind, B, T)
    input_mask, recurrent_mask = dropout_masks(rng, dropout, B, D, H, dtype)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    gh = rng.standard_normal((B, H)).astype(dtype)
    grads = {"all": (go, gh), "outputs": (go, None), "h": (None, gh)}[which_grads]
    args = (x, kernel, recurrent_kernel, bias if with_bias else None,
            h0 if with_state else None)
    kwargs = dict(mask=mask, go_backwards=go_backwards, activation=activation,
                  input_mask=input_mask, recurrent_mask=recurrent_mask)
    fast, ref = run_both(args, kwargs, grads)
    names = ["outputs", "h_last"] + GRAD_NAMES
    for name, got, want in zip(names, fast, ref):
        if want is None:
            assert got is None, name
            continue
        assert got.dtype == dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=name, **TOL[dtype])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_larger_shapes_match_reference(activation, dtype):
    # many steps, wider units, two row blocks, several blocks of steps at the default size
    rng = np.random.default_rng(21)
    B, T, D, H = 20, 60, 7, 33
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H, dtype, scale=0.3)
    mask = make_mask(rng, "leading", B, T)
    input_mask, recurrent_mask = dropout_masks(rng, "both", B, D, H, dtype)
    go = rng.standard_normal((B, T, H)).astype(dtype)
    kwargs = dict(mask=mask, activation=activation, input_mask=input_mask,
                  recurrent_mask=recurrent_mask)
    fast, ref = run_both((x, kernel, recurrent_kernel, bias, h0), kwargs, (go, None))
    # compared relative to each result's scale (linear and relu states grow with the
    # steps); in float32 both sides' rounding through 60 steps of BPTT reaches ~1e-4 of it
    # (measured against a float64 run: the reference's within 1e-4, the kernels' too)
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    for name, got, want in zip(["outputs", "h_last"] + GRAD_NAMES, fast, ref):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got / scale, want / scale, err_msg=name, **tol)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_pytorch_rnn(activation, go_backwards):
    # an independent oracle when PyTorch is installed: nn.RNN is the same cell with
    # transposed weights; go_backwards is nn.RNN on x reversed
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    B, T, D, H = 3, 5, 4, 3
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H)
    go = rng.standard_normal((B, T, H))
    gh = rng.standard_normal((B, H))
    out, h, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0,
                                       go_backwards=go_backwards, activation=activation)
    grads = simple_rnn_backward(cache, go, gh)
    rnn = torch.nn.RNN(D, H, batch_first=True, nonlinearity=activation).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(bias))
        rnn.bias_hh_l0.zero_()
    xt = torch.from_numpy(np.ascontiguousarray(x[:, ::-1] if go_backwards else x))
    xt.requires_grad_()
    h0t = torch.from_numpy(h0[None].copy()).requires_grad_()
    out_t, h_t = rnn(xt, h0t)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h, h_t[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    ((out_t * torch.from_numpy(go)).sum() + (h_t[0] * torch.from_numpy(gh)).sum()).backward()
    dx_t = xt.grad.numpy()[:, ::-1] if go_backwards else xt.grad.numpy()
    want = [dx_t, rnn.weight_ih_l0.grad.numpy().T, rnn.weight_hh_l0.grad.numpy().T,
            rnn.bias_ih_l0.grad.numpy(), h0t.grad.numpy()[0]]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------
# Keras semantics, on hand-built cases

@pytest.mark.parametrize("activation", ACTIVATIONS + [None])
def test_one_step_is_the_keras_cell(activation):
    rng = np.random.default_rng(5)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 1, 3, 4)
    out, h, _ = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0,
                                   activation=activation)
    # SimpleRNNCell.call: h = x @ kernel; h += bias; output = h + prev @ recurrent_kernel
    want = _act(activation or "linear", x[:, 0] @ kernel + bias + h0 @ recurrent_kernel)
    np.testing.assert_allclose(h, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-13, atol=1e-15)


def test_dropout_masks_as_keras_cell():
    # one input mask (B, D) and one recurrent mask (B, H) for every step: the input is
    # masked before the projection, h_prev before the recurrent product, the state never
    rng = np.random.default_rng(15)
    B, T, D, H = 2, 3, 4, 3
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H)
    input_mask = np.array([[0, 2, 2, 0], [2, 2, 0, 2]], float)  # rate 0.5: 0 or 2
    recurrent_mask = np.array([[2, 0, 2], [0, 2, 2]], float)
    out, h_last, _ = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0,
                                        input_mask=input_mask, recurrent_mask=recurrent_mask)
    h = h0
    for t in range(T):
        h = np.tanh((x[:, t] * input_mask) @ kernel + bias + (h * recurrent_mask)
                    @ recurrent_kernel)
        np.testing.assert_allclose(out[:, t], h, rtol=1e-13)
    np.testing.assert_allclose(h_last, h, rtol=1e-13)
    # a dropped input feature gets no gradient, a kept one twice the unmasked one's path
    _, _, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0,
                                     input_mask=input_mask, recurrent_mask=recurrent_mask)
    dx = simple_rnn_backward(cache, np.ones((B, T, H)))[0]
    np.testing.assert_array_equal(dx[input_mask[:, None, :].repeat(T, 1) == 0], 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_masks_of_ones_change_nothing(dtype):
    rng = np.random.default_rng(16)
    B, T, D, H = 17, 6, 3, 4
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H, dtype)
    mask = rng.random((B, T)) < 0.8
    go = rng.standard_normal((B, T, H)).astype(dtype)
    plain = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask)
    ones = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                              input_mask=np.ones((B, D), dtype),
                              recurrent_mask=np.ones((B, H), dtype))
    for a, b in zip(plain[:2] + simple_rnn_backward(plain[2], go),
                    ones[:2] + simple_rnn_backward(ones[2], go)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_step_repeats_previous_output_and_keeps_state(dtype):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 5, 3, 2, dtype)
    mask = np.array([[True, False, True, True, False], [True, True, True, True, True]])
    out, h_last, _ = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask)
    # row 0 is the same as running its unmasked steps only
    kept, kept_h, _ = simple_rnn_forward(x[:1, [0, 2, 3]], kernel, recurrent_kernel, bias,
                                         h0[:1])
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-13)
    np.testing.assert_allclose(out[0], kept[0, [0, 0, 1, 2, 2]], **tol)
    np.testing.assert_allclose(h_last[0], kept_h[0], **tol)
    # a masked step repeats the previous output exactly
    np.testing.assert_array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(out[0, 4], out[0, 3])
    full, _, _ = simple_rnn_forward(x[1:], kernel, recurrent_kernel, bias, h0[1:])
    np.testing.assert_allclose(out[1], full[0], **tol)


def test_fully_masked_sequence_outputs_h0():
    rng = np.random.default_rng(1)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 3, 2, 2)
    mask = np.array([[False, False, False], [True, False, True]])
    out, h_last, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask)
    np.testing.assert_array_equal(out[0], np.repeat(h0[:1], 3, axis=0))
    np.testing.assert_array_equal(h_last[0], h0[0])
    # its gradients pass straight to h0; its inputs get none
    go = rng.standard_normal((2, 3, 2))
    gh = rng.standard_normal((2, 2))
    dx, _, _, _, dh0 = simple_rnn_backward(cache, go, gh)
    np.testing.assert_allclose(dh0[0], go[0].sum(axis=0) + gh[0], rtol=1e-14)
    np.testing.assert_array_equal(dx[0], 0)
    # every step masked: outputs h0 (zeros by default), state unchanged, zero weight grads
    none = np.zeros((2, 3), dtype=bool)
    out, h_last, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, mask=none)
    np.testing.assert_array_equal(out, 0)
    np.testing.assert_array_equal(h_last, 0)
    dx, dk, drk, db, dh0 = simple_rnn_backward(cache, go)
    for g in (dx, dk, drk, db):
        np.testing.assert_array_equal(g, 0)
    np.testing.assert_allclose(dh0, go.sum(axis=1), rtol=1e-14)


def test_pre_padded_batch_skips_padding_and_outputs_h0_before_it():
    rng = np.random.default_rng(2)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 3, 6, 2, 3)
    mask = np.ones((3, 6), dtype=bool)
    mask[:, :2] = False  # padding for the whole batch
    mask[0, 2] = False  # and one more step for row 0
    out, h_last, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask)
    np.testing.assert_array_equal(out[:, :2], np.stack([h0, h0], axis=1))
    trimmed, trimmed_h, _ = simple_rnn_forward(x[:, 2:], kernel, recurrent_kernel, bias, h0,
                                               mask[:, 2:])
    np.testing.assert_array_equal(out[:, 2:], trimmed)
    np.testing.assert_array_equal(h_last, trimmed_h)
    # the two padding steps are not computed at all: the cache holds 4 steps, not 6
    assert cache["blocks"][0]["x_t"].shape[1] == 4
    assert cache["blocks"][0]["hs"].shape[0] == 5


def test_go_backwards_returns_outputs_in_processing_order():
    rng = np.random.default_rng(3)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 5, 3, 2)
    mask = rng.random((2, 5)) < 0.7
    back = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards=True)
    fwd = simple_rnn_forward(x[:, ::-1], kernel, recurrent_kernel, bias, h0, mask[:, ::-1])
    for a, b in zip(back[:2], fwd[:2]):
        np.testing.assert_array_equal(a, b)
    # and dx comes back in the input's time order
    go = rng.standard_normal((2, 5, 2))
    dx_back = simple_rnn_backward(back[2], go)[0]
    dx_fwd = simple_rnn_backward(fwd[2], go)[0]
    np.testing.assert_array_equal(dx_back, dx_fwd[:, ::-1])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_nan_input_propagates_like_the_reference(activation):
    rng = np.random.default_rng(4)
    x, kernel, recurrent_kernel, bias, _ = random_rnn(rng, 2, 4, 2, 3, np.float32)
    x[0, 1, 0] = np.nan
    out = simple_rnn_forward(x, kernel, recurrent_kernel, bias, activation=activation)[0]
    want = reference.simple_rnn_forward(x, kernel, recurrent_kernel, bias,
                                        activation=activation)[0]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    assert np.isnan(out[0, 1:]).all() and not np.isnan(out[1]).any()


@pytest.mark.parametrize("B, T", [(0, 3), (2, 0)])
def test_empty_batch_or_sequence(B, T):
    x = np.zeros((B, T, 3), np.float32)
    kernel = np.ones((3, 2), np.float32)
    recurrent_kernel = np.ones((2, 2), np.float32)
    h0 = np.ones((B, 2), np.float32)
    out, h_last, cache = simple_rnn_forward(x, kernel, recurrent_kernel, None, h0)
    assert out.shape == (B, T, 2)
    np.testing.assert_array_equal(h_last, h0)
    dx, dk, drk, db, dh0 = simple_rnn_backward(cache, grad_h_last=h0)
    assert dx.shape == (B, T, 3) and db is None
    np.testing.assert_array_equal(dk, 0)
    np.testing.assert_array_equal(drk, 0)
    np.testing.assert_array_equal(dh0, h0)


# ---------------------------------------------------------------------------------------
# determinism, the cache

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bitwise_deterministic_for_one_or_two_threads(activation):
    rng = np.random.default_rng(6)
    B, T, D, H = 19, 7, 3, 5  # two row blocks
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, B, T, D, H, np.float32)
    mask = rng.random((B, T)) < 0.8
    input_mask, recurrent_mask = dropout_masks(rng, "both", B, D, H, np.float32)
    go = rng.standard_normal((B, T, H)).astype(np.float32)
    before = fastseq.get_num_threads()
    results = []
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            fastseq.set_num_threads(n)
            out, h, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                               activation=activation, input_mask=input_mask,
                                               recurrent_mask=recurrent_mask)
            results.append((out, h) + simple_rnn_backward(cache, go, h))
    finally:
        fastseq.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_inference_matches_training_forward_and_returns_no_cache():
    rng = np.random.default_rng(8)
    args = random_rnn(rng, 3, 40, 2, 3, np.float32)
    mask = rng.random((3, 40)) < 0.9
    input_mask, recurrent_mask = dropout_masks(rng, "both", 3, 2, 3, np.float32)
    kwargs = dict(mask=mask, input_mask=input_mask, recurrent_mask=recurrent_mask)
    infer = simple_rnn_forward(*args, training=False, **kwargs)
    train = simple_rnn_forward(*args, training=True, **kwargs)
    assert infer[2] is None
    for a, b in zip(infer[:2], train[:2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_steps_give_the_same_results(monkeypatch, dtype):
    # the input projection and the backward's weight GEMMs run per block of steps (sized to
    # stay in cache); blocks of 1 and 2 steps agree with the default (one block here)
    rng = np.random.default_rng(9)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 9, 2, 3, dtype)
    mask = rng.random((2, 9)) < 0.8
    input_mask, recurrent_mask = dropout_masks(rng, "both", 2, 2, 3, dtype)
    go = rng.standard_normal((2, 9, 3)).astype(dtype)
    kwargs = dict(input_mask=input_mask, recurrent_mask=recurrent_mask)

    def run():
        infer = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                   training=False, **kwargs)
        out, h, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask,
                                           **kwargs)
        return infer[:2] + (out, h) + simple_rnn_backward(cache, go, h)

    whole = run()
    for values in (2 * 3, 2 * 2 * 3):  # 1 and 2 steps of 2 rows and 3 units
        monkeypatch.setattr(simple_rnn_kernels, "_BLOCK_VALUES", values)
        for a, b in zip(whole, run()):
            np.testing.assert_allclose(a, b, **TOL[dtype])


def test_a_cache_serves_several_backward_passes():
    rng = np.random.default_rng(10)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 17, 3, 2, 2, np.float32)
    out, h, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)
    first = simple_rnn_backward(cache, out)
    other = simple_rnn_backward(cache, grad_h_last=h)
    again = simple_rnn_backward(cache, out)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    want = reference.simple_rnn_backward(
        reference.simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)[2], grad_h_last=h)
    for a, b in zip(other, want):
        np.testing.assert_allclose(a, b, **TOL[np.float32])


def test_weights_updated_in_place_after_the_forward_do_not_change_the_backward():
    rng = np.random.default_rng(13)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 3, 4, 2, 3)
    go = rng.standard_normal((3, 4, 3))
    _, _, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)
    want = simple_rnn_backward(cache, go)
    _, _, cache = simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0)
    kernel += 1.0  # an optimizer step between the forward and the backward
    recurrent_kernel += 1.0
    for a, b in zip(simple_rnn_backward(cache, go), want):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# bad input

def _good(dtype=np.float32):
    rng = np.random.default_rng(0)
    x, kernel, recurrent_kernel, bias, h0 = random_rnn(rng, 2, 3, 4, 5, dtype)
    return dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0)


def _with(**changes):
    args = _good()
    args.update(changes)
    return args


f32 = np.float32
BAD_FORWARD = [
    (_with(x=np.zeros((2, 3), f32)), ValueError, r"x must be 3-D \(batch, time, features\)"),
    (_with(x=np.zeros((2, 3, 4), np.int32)), TypeError, "x must be a float32 or float64 array"),
    (_with(kernel=np.zeros((3, 5), f32)), ValueError,
     r"kernel must have shape \(features, units\) = \(4, 5\), got \(3, 5\)"),
    (_with(kernel=np.zeros((4, 5, 1), f32)), ValueError, "kernel must be 2-D"),
    (_with(kernel=np.zeros((4, 5))), TypeError, "kernel must have dtype float32"),
    (_with(recurrent_kernel=np.zeros((5, 20), f32)), ValueError,
     r"recurrent_kernel must have shape \(units, units\)"),
    (_with(recurrent_kernel=np.zeros((0, 0), f32)), ValueError, "units >= 1"),
    (_with(recurrent_kernel=np.zeros(5, f32)), ValueError, "recurrent_kernel must be 2-D"),
    (_with(bias=np.zeros(4, f32)), ValueError, r"bias must have shape \(units,\) = \(5,\)"),
    (_with(bias=np.zeros((1, 5), f32)), ValueError, "bias must be 1-D"),
    (_with(bias=np.zeros(5, np.float64)), TypeError, "bias must have dtype float32"),
    (_with(h0=np.zeros((3, 5), f32)), ValueError,
     r"h0 must have shape \(batch, units\) = \(2, 5\)"),
    (_with(h0=np.zeros((2, 5), np.float64)), TypeError, "h0 must have dtype float32"),
    (_with(mask=np.ones((2, 4), bool)), ValueError,
     r"mask must have shape \(batch, time\) = \(2, 3\)"),
    (_with(mask=np.ones((2, 3, 1), bool)), ValueError, "mask must be 2-D"),
    (_with(mask=np.ones((2, 3), f32)), TypeError, "mask must be a bool"),
    (_with(go_backwards=1), TypeError, "go_backwards must be a bool"),
    (_with(training="yes"), TypeError, "training must be a bool"),
    (_with(activation="softmax"), ValueError,
     r"activation must be one of 'tanh', 'relu', 'sigmoid', 'linear' .*got 'softmax'"),
    (_with(activation=np.tanh), ValueError, "activation must be one of"),
    (_with(input_mask=np.ones((2, 5), f32)), ValueError,
     r"input_mask must have shape \(batch, features\) = \(2, 4\), got \(2, 5\)"),
    (_with(input_mask=np.ones((2, 4))), TypeError, "input_mask must have dtype float32"),
    (_with(input_mask=np.ones(4, f32)), ValueError, "input_mask must be 2-D"),
    (_with(recurrent_mask=np.ones((2, 4), f32)), ValueError,
     r"recurrent_mask must have shape \(batch, units\) = \(2, 5\), got \(2, 4\)"),
    (_with(recurrent_mask=np.ones((2, 5), bool)), TypeError,
     "recurrent_mask must be a float32 or float64 array"),
]


@pytest.mark.parametrize("args, error, message", BAD_FORWARD)
def test_bad_forward_input(args, error, message):
    with pytest.raises(error, match=message):
        simple_rnn_forward(**args)


def test_bad_backward_input():
    args = _good()
    out, h, cache = simple_rnn_forward(**args)
    with pytest.raises(ValueError, match="at least one of grad_outputs, grad_h_last"):
        simple_rnn_backward(cache)
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(batch, time, units\)"):
        simple_rnn_backward(cache, out[:, :2])
    with pytest.raises(ValueError, match="grad_h_last must be 2-D"):
        simple_rnn_backward(cache, grad_h_last=out)
    with pytest.raises(TypeError, match="grad_h_last must have dtype float32"):
        simple_rnn_backward(cache, grad_h_last=h.astype(np.float64))
    with pytest.raises(TypeError, match="cache must be the dict simple_rnn_forward returns"):
        simple_rnn_backward((1, 2), out)
    with pytest.raises(ValueError, match="training=True"):
        simple_rnn_backward(simple_rnn_forward(**args, training=False)[2], out)
    # the failed calls above left the cache usable
    assert simple_rnn_backward(cache, out)[0].shape == args["x"].shape


def test_integer_mask_and_list_inputs_are_accepted():
    args = _good()
    mask = np.array([[1, 0, 1], [1, 1, 0]])
    got = simple_rnn_forward(**args, mask=mask)[0]
    want = simple_rnn_forward(**args, mask=mask.astype(bool))[0]
    np.testing.assert_array_equal(got, want)
    listed = {k: v.tolist() for k, v in args.items()}
    np.testing.assert_array_equal(simple_rnn_forward(**listed)[0],
                                  simple_rnn_forward(**args)[0])
