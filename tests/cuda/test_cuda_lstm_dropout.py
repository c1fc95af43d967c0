"""CUDA LSTM with Keras's implementation-1 dropout masks (per gate, fixed over the sequence)
against the NumPy reference: input and/or recurrent masks, with masks, pre-padding, a fully
masked row, go_backwards, initial states, float32 and float64; masks of ones are no
dropout; repeatable; bad mask shapes are clear errors. Tiny shapes: on a machine without a
GPU this runs in numba's CUDA simulator."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from fastseq._kernels import reference  # noqa: E402
from fastseq._kernels.cuda import lstm as cuda_lstm  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402

NAMES = ["outputs", "h_last", "c_last", "dx", "dkernel", "drecurrent_kernel", "dbias", "dh0",
         "dc0"]


def _problem(batch, steps, dim, hidden, dtype, seed, masked, dropout="both", with_bias=True,
             with_state=True):
    rng = np.random.default_rng(seed)

    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    def dropout_mask(*shape):
        return ((rng.random(shape) > 0.4) / 0.6).astype(dtype)

    args = dict(
        x=draw(batch, steps, dim), kernel=draw(dim, 4 * hidden, scale=0.5),
        recurrent_kernel=draw(hidden, 4 * hidden, scale=0.5),
        bias=draw(4 * hidden, scale=0.5) if with_bias else None,
        h0=draw(batch, hidden) if with_state else None,
        c0=draw(batch, hidden) if with_state else None,
        mask=None,
        input_masks=dropout_mask(4, batch, dim) if dropout in ("input", "both") else None,
        recurrent_masks=(dropout_mask(4, batch, hidden) if dropout in ("recurrent", "both")
                         else None),
    )
    if masked:  # a row masked at the start (pre-padding), one fully masked, others with holes
        mask = rng.random((batch, steps)) > 0.4
        mask[0, :2] = False
        mask[0, 2:] = True
        mask[-1] = False
        args["mask"] = mask
    grads = dict(grad_outputs=draw(batch, steps, hidden), grad_h_last=draw(batch, hidden),
                 grad_c_last=draw(batch, hidden))
    return args, grads


def _run(module, args, grads, go_backwards):
    outputs, h_last, c_last, cache = module.lstm_forward(**args, go_backwards=go_backwards)
    backward = module.lstm_backward(cache, **grads)
    return [to_host(a) if a is not None else None for a in (outputs, h_last, c_last) + backward]


def _assert_close(got, want, dtype):
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for name, g, w in zip(NAMES, got, want):
        if w is None:
            assert g is None, name
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=name, **tol)


@pytest.mark.parametrize("dropout", ["input", "recurrent", "both"])
@pytest.mark.parametrize("go_backwards, masked", [(False, False), (True, True), (False, True)])
def test_matches_reference(dropout, go_backwards, masked):
    args, grads = _problem(3, 4, 3, 2, np.float32, seed=int(go_backwards) * 2 + masked,
                           masked=masked, dropout=dropout)
    _assert_close(_run(cuda_lstm, args, grads, go_backwards),
                  _run(reference, args, grads, go_backwards), np.float32)


def test_float64_no_bias_no_state_partial_gradients():
    args, grads = _problem(2, 3, 2, 3, np.float64, seed=11, masked=True, with_bias=False,
                           with_state=False)
    grads["grad_c_last"] = None  # only some gradients given: the rest count as 0
    grads["grad_outputs"] = None
    _assert_close(_run(cuda_lstm, args, grads, True), _run(reference, args, grads, True),
                  np.float64)


def test_one_row_one_step():
    args, grads = _problem(1, 1, 2, 2, np.float64, seed=4, masked=False)
    _assert_close(_run(cuda_lstm, args, grads, False), _run(reference, args, grads, False),
                  np.float64)


def test_masks_of_ones_are_no_dropout():
    args, grads = _problem(2, 3, 2, 2, np.float64, seed=5, masked=True)
    args["input_masks"] = np.ones_like(args["input_masks"])
    args["recurrent_masks"] = np.ones_like(args["recurrent_masks"])
    plain = dict(args, input_masks=None, recurrent_masks=None)
    _assert_close(_run(cuda_lstm, args, grads, False), _run(cuda_lstm, plain, grads, False),
                  np.float64)


def test_inference_returns_no_cache_and_the_training_outputs():
    args, _ = _problem(2, 3, 2, 2, np.float32, seed=6, masked=True)
    outputs, h_last, c_last, cache = cuda_lstm.lstm_forward(**args, training=False)
    assert cache is None
    want = cuda_lstm.lstm_forward(**args, training=True)
    for got, w in zip((outputs, h_last, c_last), want[:3]):
        assert to_host(got).tobytes() == to_host(w).tobytes()


def test_backward_is_bitwise_repeatable():
    args, grads = _problem(2, 3, 2, 2, np.float32, seed=7, masked=True)
    first = _run(cuda_lstm, args, grads, False)
    again = _run(cuda_lstm, args, grads, False)
    for name, a, b in zip(NAMES, first, again):
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("B, T", [(0, 3), (2, 0)])
def test_empty_batch_or_sequence(B, T):
    args, grads = _problem(B, T, 3, 2, np.float32, seed=8, masked=False)
    got = _run(cuda_lstm, args, grads, False)
    want = _run(reference, args, grads, False)
    for name, g, w in zip(NAMES, got, want):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=name)


def test_bad_mask_shapes_are_clear_errors():
    args, _ = _problem(2, 3, 2, 2, np.float32, seed=9, masked=False)
    with pytest.raises(ValueError, match=r"input_masks must have shape \(4, B, D\) = "
                                         r"\(4, 2, 2\), got \(3, 2, 2\)"):
        cuda_lstm.lstm_forward(**{**args, "input_masks": np.ones((3, 2, 2), np.float32)})
    with pytest.raises(ValueError, match=r"recurrent_masks must have shape \(4, B, H\)"):
        cuda_lstm.lstm_forward(**{**args, "recurrent_masks": np.ones((4, 2, 3), np.float32)})
    with pytest.raises(ValueError, match="recurrent_masks"):
        cuda_lstm.lstm_forward(**{**args, "recurrent_masks": np.ones((4, 2), np.float32)})
    with pytest.raises(TypeError, match="float32"):
        cuda_lstm.lstm_forward(**{**args, "input_masks": np.ones((4, 2, 2))})
