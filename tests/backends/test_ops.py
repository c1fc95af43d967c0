"""Every op of the backend interface on every backend, against the reference backend:
the kernel pairs, the small ops, the loss and metric pieces and the optimizer updates, and
one whole model fitted on each backend. The reference backend is the NumPy oracle; "cpu"
must equal it within float rounding, "cuda" too (in numba's CUDA simulator where there is no
GPU, see tests/conftest.py). Tiny shapes: under the simulator every CUDA thread is Python."""
import numpy as np
import pytest

from fastseq import activations, losses, metrics
from fastseq.backend import get_ops
from fastseq.backend.ops import KERNEL_NAMES, OPTIMIZER_NAMES, Ops


def _cuda_usable():
    from fastseq._device import cuda_status

    try:
        return cuda_status()[0]
    except Exception:
        return False


BACKENDS = ["reference", "cpu",
            pytest.param("cuda", marks=pytest.mark.skipif(not _cuda_usable(),
                                                          reason="numba.cuda unusable"))]
TOL = dict(rtol=2e-5, atol=2e-6)
REF = get_ops("reference")


@pytest.fixture(params=BACKENDS)
def ops(request):
    return get_ops(request.param)


def _host(ops, value):
    if isinstance(value, (tuple, list)):
        return type(value)(_host(ops, v) for v in value)
    return ops.to_numpy(value) if ops.owns(value) else value


def _close(got, want):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    elif want is None:
        assert got is None
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


def _floats(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _up(ops, array):
    """A backend copy of host ``array`` (host backends compute in place on what they get)."""
    return ops.asarray(np.array(array, copy=True))


def test_every_backend_has_the_whole_interface(ops):
    assert isinstance(ops, Ops)
    for name in KERNEL_NAMES + OPTIMIZER_NAMES:
        assert callable(getattr(ops, name)), name


# ---------------------------------------------------------------------------- kernel pairs
def test_embedding_pair(ops):
    rng = np.random.default_rng(0)
    weights, idx = _floats(rng, 7, 3), rng.integers(0, 7, (2, 4))
    grad = _floats(rng, 2, 4, 3)
    results = []
    for o in (ops, REF):
        y = o.embedding_forward(o.asarray(weights), idx)
        rows, values = o.embedding_backward_sparse(idx, o.asarray(grad), num_embeddings=7)
        dense = o.embedding_backward(idx, o.asarray(grad), 7)
        results.append(_host(o, (y, rows, values, dense)))
    _close(*results)


def test_lstm_pair_with_mask_and_go_backwards(ops):
    rng = np.random.default_rng(1)
    x, kernel, rec, bias = (_floats(rng, 3, 4, 2), _floats(rng, 2, 8), _floats(rng, 2, 8),
                            _floats(rng, 8))
    mask = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]], bool)
    grad = _floats(rng, 3, 4, 2)
    results = []
    for o in (ops, REF):
        out, h, c, cache = o.lstm_forward(*(o.asarray(a) for a in (x, kernel, rec, bias)),
                                          mask=mask, go_backwards=True, training=True)
        grads = o.lstm_backward(cache, grad_outputs=o.asarray(grad))
        results.append(_host(o, (out, h, c) + tuple(grads[:4])))
    _close(*results)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_pair_with_dropout_masks(ops, reset_after):
    rng = np.random.default_rng(11)
    x, kernel, rec = _floats(rng, 3, 4, 2), _floats(rng, 2, 9), _floats(rng, 3, 9)
    bias = _floats(rng, 2, 9) if reset_after else _floats(rng, 9)
    mask = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]], bool)
    input_masks = (rng.random((3, 3, 2)) > 0.3).astype(np.float32) / np.float32(0.7)
    recurrent_masks = (rng.random((3, 3, 3)) > 0.3).astype(np.float32) / np.float32(0.7)
    grad = _floats(rng, 3, 4, 3)
    results = []
    for o in (ops, REF):
        out, h, cache = o.gru_forward(*(_up(o, a) for a in (x, kernel, rec, bias)), mask=mask,
                                      go_backwards=True, training=True,
                                      reset_after=reset_after,
                                      input_masks=_up(o, input_masks),
                                      recurrent_masks=_up(o, recurrent_masks))
        grads = o.gru_backward(cache, grad_outputs=_up(o, grad))
        results.append(_host(o, (out, h) + tuple(grads)))
    _close(*results)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_pair_with_dropout_masks(ops, activation):
    rng = np.random.default_rng(12)
    x, kernel, rec, bias = (_floats(rng, 3, 4, 2), _floats(rng, 2, 3), _floats(rng, 3, 3),
                            _floats(rng, 3))
    mask = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]], bool)
    input_mask = (rng.random((3, 2)) > 0.3).astype(np.float32) / np.float32(0.7)
    recurrent_mask = (rng.random((3, 3)) > 0.3).astype(np.float32) / np.float32(0.7)
    grad = _floats(rng, 3, 3)
    results = []
    for o in (ops, REF):
        out, h, cache = o.simple_rnn_forward(
            *(_up(o, a) for a in (x, kernel, rec, bias)), mask=mask, training=True,
            activation=activation, input_mask=_up(o, input_mask),
            recurrent_mask=_up(o, recurrent_mask))
        grads = o.simple_rnn_backward(cache, grad_h_last=_up(o, grad))
        results.append(_host(o, (out, h) + tuple(grads)))
    _close(*results)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d_pair(ops, padding):
    rng = np.random.default_rng(2)
    x, kernel, bias = _floats(rng, 2, 7, 3), _floats(rng, 3, 3, 4), _floats(rng, 4)
    results = []
    for o in (ops, REF):
        y, cache = o.conv1d_forward(o.asarray(x), o.asarray(kernel), o.asarray(bias),
                                    strides=1, padding=padding, dilation_rate=2)
        grads = o.conv1d_backward(cache, o.asarray(np.ones(tuple(y.shape), np.float32)))
        results.append(_host(o, (y,) + tuple(grads)))
    _close(*results)


@pytest.mark.parametrize("kind", ["max", "global_average", "global_max"])
def test_pooling_pairs(ops, kind):
    rng = np.random.default_rng(3)
    x = _floats(rng, 2, 6, 3)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    results = []
    for o in (ops, REF):
        if kind == "max":
            y, cache = o.max_pool1d_forward(o.asarray(x), pool_size=2, strides=2,
                                            padding="same")
            dx = o.max_pool1d_backward(cache, o.asarray(np.ones(tuple(y.shape), np.float32)))
        else:
            forward = getattr(o, f"{kind}_pool1d_forward")
            backward = getattr(o, f"{kind}_pool1d_backward")
            y, cache = forward(o.asarray(x), mask=mask)
            dx = backward(cache, o.asarray(np.ones(tuple(y.shape), np.float32)))
        results.append(_host(o, (y, dx)))
    _close(*results)


# ---------------------------------------------------------------------------- small ops
@pytest.mark.parametrize("transpose_a,transpose_b", [(False, False), (True, False),
                                                     (False, True)])
def test_matmul(ops, transpose_a, transpose_b):
    rng = np.random.default_rng(4)
    a = _floats(rng, *((5, 3) if transpose_a else (3, 5)))
    b = _floats(rng, *((4, 5) if transpose_b else (5, 4)))
    got = ops.matmul(ops.asarray(a), ops.asarray(b), transpose_a, transpose_b)
    _close(ops.to_numpy(got), REF.matmul(a, b, transpose_a, transpose_b))


def test_bias_add_column_sum_multiply_cast_moveaxis(ops):
    rng = np.random.default_rng(5)
    z, bias = _floats(rng, 4, 3), _floats(rng, 3)
    got = ops.bias_add(_up(ops, z.copy()), _up(ops, bias))
    _close(ops.to_numpy(got), z + bias)
    _close(ops.to_numpy(ops.column_sum(_up(ops, z))), z.sum(axis=0))
    x, same, steps, other = (_floats(rng, 2, 3, 4), _floats(rng, 2, 3, 4), _floats(rng, 2, 1, 4),
                             _floats(rng, 1, 3, 1))
    for scale in (same, steps, other):  # elementwise, one mask per sequence, any broadcast
        _close(ops.to_numpy(ops.multiply(_up(ops, x), _up(ops, scale))), x * scale)
    out = _up(ops, x)
    assert ops.multiply(out, _up(ops, same), out=out) is out
    _close(ops.to_numpy(out), x * same)
    cast = ops.cast(_up(ops, x), np.float64)
    assert cast.dtype == np.float64
    _close(ops.to_numpy(cast), x)
    _close(ops.to_numpy(ops.moveaxis(_up(ops, x), 1, -1)), np.moveaxis(x, 1, -1))
    full = ops.full((2, 3), 0.5, np.float32)
    ops.copy_into(full, z[:2])
    _close(ops.to_numpy(full), z[:2])
    assert ops.sum_of_squares(_up(ops, z)) == pytest.approx(float(np.sum(z.astype(float)**2)))
    _close(ops.to_numpy(ops.scaled(_up(ops, z), 0.5)), z * 0.5)
    _close(ops.to_numpy(ops.clipped(_up(ops, z), 0.3)), np.clip(z, -0.3, 0.3))
    w = _up(ops, z)
    ops.decay(w, 0.1)
    _close(ops.to_numpy(w), z - z * np.float32(0.1))


def test_apply_runs_a_numpy_function_on_backend_arrays(ops):
    rng = np.random.default_rng(7)
    a, b = _floats(rng, 3, 4), _floats(rng, 3, 2)
    joined = ops.apply(lambda p, q: np.concatenate([p, q], axis=-1), _up(ops, a), _up(ops, b))
    assert ops.owns(joined)
    _close(_host(ops, joined), np.concatenate([a, b], axis=-1))
    parts = ops.apply(lambda p: np.split(p, [1], axis=0), _up(ops, a))
    assert isinstance(parts, list) and all(ops.owns(p) for p in parts)
    _close(_host(ops, parts), [a[:1], a[1:]])

@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activations(ops, name):
    act = activations.get(name)
    rng = np.random.default_rng(6)
    z, grad = _floats(rng, 3, 4), _floats(rng, 3, 4)
    y = ops.activation_forward(act, _up(ops, z), out=ops.empty_like(_up(ops, z)))
    want_y = act.forward(z.copy())
    _close(ops.to_numpy(y), want_y)
    dz = ops.activation_backward(act, _up(ops, grad), y)
    _close(ops.to_numpy(dz), act.backward(grad.copy(), want_y))


# ---------------------------------------------------------------------------- loss, metrics
LOSS_CASES = [
    (losses.BinaryCrossentropy(), (4, 1), "binary", False),
    (losses.BinaryCrossentropy(), (4, 1), "binary", True),
    (losses.CategoricalCrossentropy(), (4, 3), "onehot", True),
    (losses.CategoricalCrossentropy(), (4, 3), "onehot", False),
    (losses.SparseCategoricalCrossentropy(), (4, 3), "labels", True),
    (losses.MeanSquaredError(), (4, 2), "real", False),
    (losses.MeanAbsoluteError(), (4, 2), "real", False),
    (losses.BinaryCrossentropy(label_smoothing=0.1), (4, 1), "binary", False),
]


def _targets(rng, kind, shape):
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float32)
    if kind == "onehot":
        return np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    if kind == "labels":
        return rng.integers(0, shape[-1], shape[:-1])
    return _floats(rng, *shape)


@pytest.mark.parametrize("loss,shape,kind,from_logits", LOSS_CASES)
@pytest.mark.parametrize("sequence", [False, True])
def test_loss_forward_backward(ops, loss, shape, kind, from_logits, sequence):
    rng = np.random.default_rng(7)
    mask = None
    if sequence:  # (B, T, C) outputs with a mask: Keras weighs by it
        shape = (shape[0], 3) + shape[1:]
        mask = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 1], [1, 1, 0]], bool)
    pred = _floats(rng, *shape)
    if not from_logits and kind in ("binary", "onehot"):
        pred = 1 / (1 + np.exp(-pred))
    y = _targets(rng, kind, shape)
    got = ops.loss_forward_backward(loss, y, ops.asarray(pred), mask, from_logits=from_logits)
    want = REF.loss_forward_backward(loss, y, pred, mask, from_logits=from_logits)
    assert got[0] == pytest.approx(want[0], rel=1e-5)
    _close(ops.to_numpy(got[1]), want[1])
    value, grad = ops.loss_forward_backward(loss, y, ops.asarray(pred), mask,
                                            from_logits=from_logits, need_grad=False)
    assert grad is None and value == pytest.approx(want[0], rel=1e-5)


@pytest.mark.parametrize("metric,shape,kind", [
    ("binary_accuracy", (5, 1), "binary"), ("categorical_accuracy", (5, 3), "onehot"),
    ("sparse_categorical_accuracy", (5, 3), "labels"), ("mse", (5, 2), "real"),
])
def test_update_metrics(ops, metric, shape, kind):
    rng = np.random.default_rng(8)
    pred = rng.random(shape).astype(np.float32)
    y = _targets(rng, kind, shape)
    got, want = metrics.get(metric), metrics.get(metric)
    for _ in range(2):
        ops.update_metrics([got], y, ops.asarray(pred))
        REF.update_metrics([want], y, pred)
    assert float(got.result()) == pytest.approx(float(want.result()), rel=1e-6)


# ---------------------------------------------------------------------------- optimizers
def _optimizer_args(name, n, width, rng, lazy):
    """(args, indices of the arrays updated in place) for update kernel ``name``."""
    slots = {"sgd": 0, "sgd_momentum": 1, "sgd_nesterov": 1, "adam": 2, "adam_amsgrad": 3,
             "rmsprop": 1, "rmsprop_momentum": 2, "rmsprop_centered": 2,
             "rmsprop_centered_momentum": 3, "adagrad": 1}
    base, kind = name.rsplit("_", 1)
    arrays = [rng.standard_normal(n * width).astype(np.float32)]
    # slots: a first one (velocity, accumulator...) well above the square of the others
    # (a centered RMSprop takes the root of velocity - average^2)
    arrays += [(np.abs(rng.standard_normal(n * width)) * (0.1 if i else 1) + (0 if i else 1))
               .astype(np.float32) for i in range(slots[base])]
    scalars = {"sgd": (0.1,), "sgd_momentum": (0.1, 0.9), "sgd_nesterov": (0.1, 0.9),
               "adam": (0.01, 0.1, 0.001, 1e-7), "adam_amsgrad": (0.01, 0.1, 0.001, 1e-7),
               "adagrad": (0.1, 1e-7)}.get(base, (0.01, 0.9, 0.1, 0.5, 1e-7))
    scalars = tuple(np.float32(s) for s in scalars)
    if kind == "dense":
        grad = (rng.standard_normal(n * width).astype(np.float32),)
    else:
        rows = np.array([1, 3], np.int64)
        grad = (rows, rng.standard_normal(rows.size * width).astype(np.float32), width)
    tail = (lazy,) if kind == "rows" and base not in ("sgd", "adagrad") else ()
    return arrays, grad, scalars, tail


# lazy applies to the row-sparse updates only
@pytest.mark.parametrize("name,lazy", [(n, False) for n in OPTIMIZER_NAMES]
                         + [(n, True) for n in OPTIMIZER_NAMES if n.endswith("_rows")])
def test_optimizer_updates(ops, name, lazy):
    rng = np.random.default_rng(9)
    arrays, grad, scalars, tail = _optimizer_args(name, 5, 2, rng, lazy)
    want = [a.copy() for a in arrays]
    getattr(REF, name)(*want, *grad, *scalars, *tail)
    got = [ops.asarray(a.copy()) for a in arrays]
    dev_grad = tuple(ops.asarray(g) if isinstance(g, np.ndarray) else g for g in grad)
    getattr(ops, name)(*got, *dev_grad, *scalars, *tail)
    for g, w in zip(got, want):
        np.testing.assert_allclose(ops.to_numpy(g), w, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- whole models
def test_the_same_model_fits_alike_on_every_backend(ops):
    import fastseq
    from fastseq.layers import (
        GRU,
        LSTM,
        Bidirectional,
        Dense,
        Dropout,
        Embedding,
        GlobalAveragePooling1D,
        SimpleRNN,
    )
    from fastseq.models import Sequential
    from fastseq.utils import set_random_seed

    def build():
        return Sequential([Embedding(12, 4, mask_zero=True, input_length=5),
                           LSTM(3, return_sequences=True, dropout=0.2),
                           Bidirectional(GRU(2, return_sequences=True)),
                           SimpleRNN(3, return_sequences=True),
                           GlobalAveragePooling1D(), Dropout(0.3),
                           Dense(1, activation="sigmoid")])

    rng = np.random.default_rng(10)
    x = rng.integers(0, 12, (8, 5))
    x[0, :3] = 0
    y = rng.integers(0, 2, 8).astype(np.float32)
    set_random_seed(0)
    reference_model = build()
    reference_model._use_ops(get_ops("reference"))
    with fastseq.device(ops.device):
        model = build()
    model._use_ops(ops)
    model.set_weights(reference_model.get_weights())
    results = []
    for m in (model, reference_model):
        m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        set_random_seed(3)
        history = m.fit(x, y, batch_size=4, epochs=2, verbose=0).history
        results.append((history["loss"], history["accuracy"], m.get_weights(),
                        m.predict(x, verbose=0)))
    (loss, acc, weights, pred), (ref_loss, ref_acc, ref_weights, ref_pred) = results
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(acc, ref_acc)
    for w, rw in zip(weights, ref_weights):
        np.testing.assert_allclose(w, rw, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred, ref_pred, rtol=1e-4, atol=1e-5)


def test_a_kernel_pair_a_device_lacks_runs_the_reference_through_the_host():
    if not _cuda_usable():
        pytest.skip("numba.cuda unusable")
    import types

    from fastseq.backend.cuda import _DeviceKernels

    ops = get_ops("cuda")
    kernels = _DeviceKernels(ops, types.SimpleNamespace())  # a device with no kernels at all
    rng = np.random.default_rng(13)
    x, kernel, rec, bias = (_floats(rng, 2, 3, 2), _floats(rng, 2, 8), _floats(rng, 2, 8),
                            _floats(rng, 8))
    out, h, c, cache = kernels.lstm_forward(*(ops.asarray(a) for a in (x, kernel, rec, bias)))
    assert ops.owns(out) and ops.owns(h)  # results come back to the device
    grads = kernels.lstm_backward(cache, grad_h_last=ops.asarray(np.ones((2, 2), np.float32)))
    want_out, want_h, want_c, want_cache = REF.lstm_forward(x, kernel, rec, bias)
    want_grads = REF.lstm_backward(want_cache, grad_h_last=np.ones((2, 2), np.float32))
    _close(_host(ops, (out, h, c) + tuple(grads)), (want_out, want_h, want_c) + tuple(want_grads))
