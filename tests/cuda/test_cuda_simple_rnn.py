"""CUDA SimpleRNN forward/backward against the NumPy reference (Keras semantics: masks,
go_backwards, initial state, the four activations, dropout masks), float32 and float64,
determinism, and bad input. Tiny shapes: without a GPU this runs in numba's simulator."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from fastseq._kernels.cuda import simple_rnn as cuda_simple_rnn  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402
from fastseq._kernels.reference import simple_rnn as reference  # noqa: E402

NAMES = ["outputs", "h_last", "dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"]


def _problem(batch, steps, dim, hidden, dtype, seed, masked, with_bias=True, with_state=True,
             dropout=False):
    rng = np.random.default_rng(seed)

    def draw(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    def dropout_mask(*shape):
        return ((rng.random(shape) >= 0.3) / 0.7).astype(dtype)

    args = dict(
        x=draw(batch, steps, dim), kernel=draw(dim, hidden, scale=0.5),
        recurrent_kernel=draw(hidden, hidden, scale=0.5),
        bias=draw(hidden, scale=0.5) if with_bias else None,
        h0=draw(batch, hidden) if with_state else None,
        mask=None,
        input_mask=dropout_mask(batch, dim) if dropout else None,
        recurrent_mask=dropout_mask(batch, hidden) if dropout else None,
    )
    if masked:  # a row masked at the start (pre-padding), one with holes
        mask = rng.random((batch, steps)) > 0.4
        mask[0, :2] = False
        mask[0, 2:] = True
        args["mask"] = mask
    grads = dict(grad_outputs=draw(batch, steps, hidden), grad_h_last=draw(batch, hidden))
    return args, grads


def _run(module, args, grads, go_backwards, activation="tanh"):
    outputs, h_last, cache = module.simple_rnn_forward(**args, go_backwards=go_backwards,
                                                       activation=activation)
    backward = module.simple_rnn_backward(cache, **grads)
    return [to_host(a) if a is not None else None for a in (outputs, h_last) + backward]


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
@pytest.mark.parametrize("dropout", [False, True])
def test_matches_reference(go_backwards, masked, dropout):
    args, grads = _problem(2, 4, 3, 2, np.float32, seed=int(go_backwards) * 4 + masked * 2
                           + dropout, masked=masked, dropout=dropout)
    _assert_close(_run(cuda_simple_rnn, args, grads, go_backwards),
                  _run(reference, args, grads, go_backwards), np.float32)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear", None])
def test_activations_match_reference_float64(activation):
    args, grads = _problem(2, 3, 2, 3, np.float64, seed=7, masked=True, dropout=True)
    _assert_close(_run(cuda_simple_rnn, args, grads, False, activation),
                  _run(reference, args, grads, False, activation), np.float64)


def test_float64_no_bias_no_state_partial_gradients():
    args, grads = _problem(2, 3, 2, 3, np.float64, seed=11, masked=True, with_bias=False,
                           with_state=False)
    grads["grad_outputs"] = None  # only some gradients given: the rest count as 0
    _assert_close(_run(cuda_simple_rnn, args, grads, True), _run(reference, args, grads, True),
                  np.float64)


def test_inference_returns_no_cache_and_one_step_works():
    args, _ = _problem(1, 1, 2, 1, np.float32, seed=4, masked=False)
    outputs, h_last, cache = cuda_simple_rnn.simple_rnn_forward(**args, training=False)
    assert cache is None
    want = reference.simple_rnn_forward(**args, training=False)
    np.testing.assert_allclose(to_host(outputs), want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_host(h_last), want[1], rtol=1e-5, atol=1e-6)


def test_backward_is_bitwise_repeatable():
    args, grads = _problem(2, 3, 2, 2, np.float32, seed=5, masked=True, dropout=True)
    first = _run(cuda_simple_rnn, args, grads, False)
    again = _run(cuda_simple_rnn, args, grads, False)
    for name, a, b in zip(NAMES, first, again):
        assert a.tobytes() == b.tobytes(), name


def test_bad_input_is_a_clear_error():
    args, _ = _problem(2, 3, 2, 2, np.float32, seed=6, masked=False)
    with pytest.raises(ValueError, match=r"kernel must have shape \(D, H\)"):
        cuda_simple_rnn.simple_rnn_forward(**{**args, "kernel": args["kernel"][:, :1]})
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, H\)"):
        cuda_simple_rnn.simple_rnn_forward(
            **{**args, "recurrent_kernel": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="mask must have shape"):
        cuda_simple_rnn.simple_rnn_forward(**{**args, "mask": np.ones((2, 4), bool)})
    with pytest.raises(ValueError, match=r"input_mask must have shape \(2, 2\)"):
        cuda_simple_rnn.simple_rnn_forward(**{**args, "input_mask": np.ones((2, 3), np.float32)})
    with pytest.raises(TypeError, match="float32"):
        cuda_simple_rnn.simple_rnn_forward(**{**args, "h0": args["h0"].astype(np.float64)})
    with pytest.raises(ValueError, match="activation must be one of"):
        cuda_simple_rnn.simple_rnn_forward(**args, activation="softmax")
    with pytest.raises(ValueError, match="training=True"):
        cuda_simple_rnn.simple_rnn_backward(None)
