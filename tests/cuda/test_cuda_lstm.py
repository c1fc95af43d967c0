"""CUDA LSTM forward/backward against the NumPy reference (Keras semantics: masks,
go_backwards, initial states), float32 and float64, determinism, and bad input."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from fastseq._kernels import reference  # noqa: E402
from fastseq._kernels.cuda import lstm as cuda_lstm  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402

NAMES = ["outputs", "h_last", "c_last", "dx", "dkernel", "drecurrent_kernel", "dbias", "dh0",
         "dc0"]


def _problem(batch, steps, dim, hidden, dtype, seed, masked, with_bias=True, with_state=True):
    rng = np.random.default_rng(seed)

    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    args = dict(
        x=draw(batch, steps, dim), kernel=draw(dim, 4 * hidden, scale=0.5),
        recurrent_kernel=draw(hidden, 4 * hidden, scale=0.5),
        bias=draw(4 * hidden, scale=0.5) if with_bias else None,
        h0=draw(batch, hidden) if with_state else None,
        c0=draw(batch, hidden) if with_state else None,
        mask=None,
    )
    if masked:  # a row masked at the start (pre-padding), one with holes
        mask = rng.random((batch, steps)) > 0.4
        mask[0, :2] = False
        mask[0, 2:] = True
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


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_reference(go_backwards, masked):
    args, grads = _problem(2, 4, 3, 2, np.float32, seed=int(go_backwards) * 2 + masked,
                           masked=masked)
    _assert_close(_run(cuda_lstm, args, grads, go_backwards),
                  _run(reference, args, grads, go_backwards), np.float32)


def test_float64_no_bias_no_state_partial_gradients():
    args, grads = _problem(2, 3, 2, 3, np.float64, seed=11, masked=True, with_bias=False,
                           with_state=False)
    grads["grad_c_last"] = None  # only some gradients given: the rest count as 0
    grads["grad_outputs"] = None
    _assert_close(_run(cuda_lstm, args, grads, True), _run(reference, args, grads, True),
                  np.float64)


def test_inference_returns_no_cache_and_one_step_works():
    args, _ = _problem(1, 1, 2, 2, np.float32, seed=4, masked=False)
    outputs, h_last, c_last, cache = cuda_lstm.lstm_forward(**args, training=False)
    assert cache is None
    want = reference.lstm_forward(**args, training=False)
    np.testing.assert_allclose(to_host(outputs), want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_host(c_last), want[2], rtol=1e-5, atol=1e-6)


def test_backward_is_bitwise_repeatable():
    args, grads = _problem(2, 3, 2, 2, np.float32, seed=5, masked=True)
    first = _run(cuda_lstm, args, grads, False)
    again = _run(cuda_lstm, args, grads, False)
    for name, a, b in zip(NAMES, first, again):
        assert a.tobytes() == b.tobytes(), name


def test_bad_shapes_are_clear_errors():
    args, _ = _problem(2, 3, 2, 2, np.float32, seed=6, masked=False)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, 4H\)"):
        cuda_lstm.lstm_forward(**{**args, "kernel": args["kernel"][:, :4]})
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 4H\)"):
        cuda_lstm.lstm_forward(**{**args, "recurrent_kernel": args["recurrent_kernel"][:1]})
    with pytest.raises(ValueError, match="mask must have shape"):
        cuda_lstm.lstm_forward(**{**args, "mask": np.ones((2, 4), bool)})
    with pytest.raises(TypeError, match="float32"):
        cuda_lstm.lstm_forward(**{**args, "h0": args["h0"].astype(np.float64)})
    with pytest.raises(ValueError, match="training=True"):
        cuda_lstm.lstm_backward(None)
