"""CUDA elementwise kernels: helpers and reductions, activations, losses' elementwise
parts, and the optimizer updates against the CPU kernels of fastseq._kernels.optim."""
import inspect

import numpy as np
import pytest

pytest.importorskip("numba.cuda")

from numba import cuda  # noqa: E402
from scipy.special import expit  # noqa: E402

from fastseq._kernels import optim as cpu_optim  # noqa: E402
from fastseq._kernels.cuda import elementwise as ew  # noqa: E402
from fastseq._kernels.cuda import to_host  # noqa: E402


def test_helpers_copy_host_arrays_and_pass_device_arrays_through():
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    dev = ew.as_device(host, "x")
    assert ew.is_device_array(dev) and not ew.is_device_array(host)
    assert ew.as_device(dev, "x") is dev
    np.testing.assert_array_equal(to_host(ew.zeros((2, 2), np.float64)), np.zeros((2, 2)))
    np.testing.assert_array_equal(to_host(ew.as_device([[1, 2]], "x")), [[1, 2]])
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        ew.as_device(np.zeros(2, np.int32), "x")
    with pytest.raises(ValueError, match="x must be 2-D"):
        ew.as_device(np.zeros(2, np.float32), "x", ndim=2)
    with pytest.raises(TypeError, match="i must be an int32 or int64"):
        ew.as_device_indices(np.zeros(2), "i")


@pytest.mark.parametrize("rows", [1, 5, 19])
def test_column_sum_and_sum_all_are_deterministic_sums(rows):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 3)).astype(np.float32)
    got = to_host(ew.column_sum(ew.as_device(x, "x")))
    np.testing.assert_allclose(got, x.sum(axis=0), rtol=1e-5, atol=1e-6)
    assert got.tobytes() == to_host(ew.column_sum(ew.as_device(x, "x"))).tobytes()
    np.testing.assert_allclose(to_host(ew.sum_all(ew.as_device(x, "x")))[0], x.sum(),
                               rtol=1e-5, atol=1e-5)


def test_bias_add():
    y = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    bias = np.array([1, -1, 0.5], np.float32)
    np.testing.assert_array_equal(to_host(ew.bias_add(ew.as_device(y, "y"), ew.as_device(
        bias, "b"))), y + bias)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "linear": (lambda z: z, lambda g, y: g),
    "relu": (lambda z: np.maximum(z, 0), lambda g, y: g * (y > 0)),
    "sigmoid": (expit, lambda g, y: g * y * (1 - y)),
    "tanh": (np.tanh, lambda g, y: g * (1 - y * y)),
    "softmax": (_softmax, lambda g, y: y * (g - (g * y).sum(axis=-1, keepdims=True))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_forward_and_backward(name):
    rng = np.random.default_rng(len(name))
    z = (rng.standard_normal((2, 2, 3)) * 3).astype(np.float32)
    z[0, 0, 0] = -100.0  # the stable sigmoid must not overflow
    grad = rng.standard_normal(z.shape).astype(np.float32)
    forward, backward = ACTIVATIONS[name]
    y = ew.activation_forward(name, z)
    np.testing.assert_allclose(to_host(y), forward(z), rtol=1e-6, atol=1e-7)
    dz = ew.activation_backward(name, grad, y)
    np.testing.assert_allclose(to_host(dz), backward(grad, forward(z)), rtol=1e-5, atol=1e-6)
    grad_dev = ew.as_device(grad, "g")  # in place (out is grad_y)
    ew.activation_backward(name, grad_dev, y, out=grad_dev)
    np.testing.assert_array_equal(to_host(grad_dev), to_host(dz))  # the same kernel, in place
    np.testing.assert_allclose(to_host(grad_dev), backward(grad, forward(z)), rtol=1e-5,
                               atol=1e-6)


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ew.activation_forward("swish", np.zeros(2, np.float32))


def test_binary_crossentropy_elementwise_keras_clipping():
    eps = 1e-7
    y_true = np.array([[1, 0, 1, 0, 1]], np.float64)
    y_pred = np.array([[0.9, 0.2, 1.0, 0.0, 0.5]], np.float64)
    loss, grad = ew.binary_crossentropy_elementwise(y_true, y_pred)

    def bce(t, q):
        p = np.clip(q, eps, 1 - eps)
        return -(t * np.log(p) + (1 - t) * np.log(1 - p))

    np.testing.assert_allclose(to_host(loss), bce(y_true, y_pred), rtol=1e-12)
    # finite differences where the clip is inactive; 0 where it is
    inside = [0, 1, 4]
    h = 1e-7
    fd = (bce(y_true, y_pred + h) - bce(y_true, y_pred - h))[0, inside] / (2 * h)
    np.testing.assert_allclose(to_host(grad)[0, inside], fd, rtol=1e-6)
    assert to_host(grad)[0, 2] == 0 and to_host(grad)[0, 3] == 0


def test_fused_logit_gradients_and_mse():
    rng = np.random.default_rng(0)
    prob = rng.random((3, 1)).astype(np.float32)
    target = np.array([[1], [0], [1]], np.float32)
    np.testing.assert_allclose(to_host(ew.sigmoid_binary_crossentropy_grad(target, prob, 1 / 3)),
                               (prob - target) / 3, rtol=1e-6)
    probs = _softmax(rng.standard_normal((2, 4))).astype(np.float32)
    labels = np.array([3, 0])
    want = probs.copy()
    want[np.arange(2), labels] -= 1
    np.testing.assert_allclose(to_host(ew.softmax_crossentropy_grad(labels, probs, 0.5)),
                               want * 0.5, rtol=1e-6)
    pred = rng.standard_normal((2, 3)).astype(np.float32)
    true = rng.standard_normal((2, 3)).astype(np.float32)
    loss, grad = ew.mean_squared_error_elementwise(true, pred)
    np.testing.assert_allclose(to_host(loss), (pred - true) ** 2, rtol=1e-6)
    np.testing.assert_allclose(to_host(grad), 2 * (pred - true), rtol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        ew.mean_squared_error_elementwise(true[:1], pred)


# ---------------------------------------------------------------------------- optimizers
# Every public update of the CPU kernels (fastseq._kernels.optim) has a device twin with the
# same name and parameters; the arguments are built by parameter name.
V, D = 4, 2
ROWS = np.array([0, 2], np.int64)
SCALARS = dict(lr=0.1, momentum=0.9, alpha=0.01, one_minus_b1=0.1, one_minus_b2=0.001,
               eps=1e-7, rho=0.9, one_minus_rho=0.1)
SLOTS = ("m", "v", "vhat", "vel", "mom", "avg", "acc")
CPU_UPDATES = sorted(name for name in dir(cpu_optim)
                     if not name.startswith("_") and name.endswith(("_dense", "_rows")))


def _params(function):
    return list(inspect.signature(getattr(function, "py_func", function)).parameters)


def _arguments(params, rng, lazy):
    """(cpu args, device args) for the parameter names of one update."""
    cpu, dev = [], []
    for name in params:
        if name in ("w", "g") or name in SLOTS:
            value = rng.standard_normal(V * D).astype(np.float32)
            if name in SLOTS:  # velocity >= 1, other slots small and positive: centered
                value = np.abs(value) * 0.1 + (1.0 if name == "vel" else 0.0)  # stays > 0
                value = value.astype(np.float32)
            cpu.append(value.copy())
            dev.append(cuda.to_device(value))
        elif name == "rows":
            cpu.append(ROWS)
            dev.append(cuda.to_device(ROWS))
        elif name == "values":
            value = rng.standard_normal(ROWS.size * D).astype(np.float32)
            cpu.append(value)
            dev.append(cuda.to_device(value))
        elif name == "width":
            cpu.append(D)
            dev.append(D)
        elif name == "lazy":
            cpu.append(lazy)
            dev.append(lazy)
        else:
            cpu.append(np.float32(SCALARS[name]))
            dev.append(np.float32(SCALARS[name]))
    return cpu, dev


def test_every_cpu_update_has_a_device_twin():
    assert CPU_UPDATES, "fastseq._kernels.optim exposes no *_dense / *_rows kernels"
    for name in CPU_UPDATES:
        assert hasattr(ew, name), f"no device kernel {name}"
        assert _params(getattr(ew, name)) == _params(getattr(cpu_optim, name)), name


@pytest.mark.parametrize("name,lazy", [
    (name, lazy) for name in CPU_UPDATES
    for lazy in ((False, True) if "lazy" in _params(getattr(cpu_optim, name)) else (False,))
])
def test_optimizer_updates_match_the_cpu_kernels(name, lazy):
    params = _params(getattr(cpu_optim, name))
    cpu_args, dev_args = _arguments(params, np.random.default_rng(len(name)), lazy)
    before = cpu_args[0].copy()
    for _ in range(2):  # two steps: the slots feed back
        getattr(cpu_optim, name)(*cpu_args)
        getattr(ew, name)(*dev_args)
    for param, cpu_value, dev_value in zip(params, cpu_args, dev_args):
        if param == "w" or param in SLOTS:
            np.testing.assert_allclose(to_host(dev_value), cpu_value, rtol=1e-5, atol=1e-6,
                                       err_msg=param)
    if name.endswith("_rows") and lazy:  # untouched rows kept their weights
        untouched = np.setdiff1d(np.arange(V), ROWS)
        np.testing.assert_array_equal(to_host(dev_args[0]).reshape(V, D)[untouched],
                                      before.reshape(V, D)[untouched])
