"""Losses: values against Keras's formulas and docstring examples, gradients by finite
differences in float64, label checks."""
import numpy as np
import pytest

from fastseq import losses
from fastseq.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

EPS = 1e-7


def numeric_grad(loss, y_true, y_pred, from_logits=None, h=1e-6):
    grad = np.zeros_like(y_pred)
    for i in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (loss.forward_backward(y_true, up, from_logits)[0]
                   - loss.forward_backward(y_true, down, from_logits)[0]) / (2 * h)
    return grad


def check_grad(loss, y_true, y_pred, from_logits=None):
    value, grad = loss.forward_backward(y_true, y_pred, from_logits)
    assert grad.shape == y_pred.shape and grad.dtype == y_pred.dtype
    np.testing.assert_allclose(grad, numeric_grad(loss, y_true, y_pred, from_logits),
                               rtol=1e-6, atol=1e-8)
    return value


# ---------------------------------------------------------------- values
def test_keras_docstring_examples():
    # keras.losses.binary_crossentropy docstring: [0.916, 0.714]
    per = losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_allclose(per, [0.916, 0.714], atol=1e-3)
    # keras.losses.categorical_crossentropy docstring: [0.0513, 2.303]
    per = losses.categorical_crossentropy([[0, 1, 0], [0, 0, 1]],
                                          [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    np.testing.assert_allclose(per, [0.0513, 2.303], atol=1e-3)
    per = losses.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    np.testing.assert_allclose(per, [0.0513, 2.303], atol=1e-3)
    # keras.losses.MeanSquaredError docs: [[0., 1.], [0., 0.]] vs [[1., 1.], [1., 0.]] -> 0.5
    assert MeanSquaredError()([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]) == 0.5


def test_values_match_formulas():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (8, 3))
    p[0, 0], p[1, 1] = 0.0, 1.0  # clipped
    y = rng.integers(0, 2, (8, 3)).astype(float)
    pc = np.clip(p, EPS, 1 - EPS)
    expected = np.mean(-(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
    np.testing.assert_allclose(BinaryCrossentropy()(y, p), expected, rtol=1e-12)
    x = rng.standard_normal((8, 3)) * 4
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(BinaryCrossentropy(from_logits=True)(y, x),
                               np.mean(-(y * np.log(sig) + (1 - y) * np.log(1 - sig))),
                               rtol=1e-10)
    onehot = np.eye(3)[rng.integers(0, 3, 8)]
    q = p / p.sum(-1, keepdims=True)
    expected = np.mean(-np.sum(onehot * np.log(np.clip(q, EPS, 1 - EPS)), -1))
    np.testing.assert_allclose(CategoricalCrossentropy()(onehot, p), expected, rtol=1e-12)
    np.testing.assert_allclose(SparseCategoricalCrossentropy()(onehot.argmax(-1), p), expected,
                               rtol=1e-12)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    np.testing.assert_allclose(CategoricalCrossentropy(from_logits=True)(onehot, x),
                               np.mean(-np.sum(onehot * logp, -1)), rtol=1e-10)
    np.testing.assert_allclose(MeanAbsoluteError()(y, p), np.mean(np.abs(y - p)), rtol=1e-12)


def test_label_smoothing_as_keras():
    y = np.array([[1.0], [0.0]])
    p = np.array([[0.7], [0.2]])
    ys = y * 0.8 + 0.5 * 0.2
    expected = np.mean(-(ys * np.log(p) + (1 - ys) * np.log(1 - p)))
    np.testing.assert_allclose(BinaryCrossentropy(label_smoothing=0.2)(y, p), expected)
    onehot = np.array([[0.0, 1.0, 0.0]])
    q = np.array([[0.2, 0.5, 0.3]])
    ys = onehot * 0.9 + 0.1 / 3
    np.testing.assert_allclose(CategoricalCrossentropy(label_smoothing=0.1)(onehot, q),
                               -np.sum(ys * np.log(q)))


def test_labels_b_for_output_b1_and_sample_weight():
    p = np.array([[0.9], [0.2], [0.6]])
    y = np.array([1, 0, 0])
    loss = BinaryCrossentropy()
    assert loss(y, p) == pytest.approx(loss(y[:, None], p))
    per = losses.binary_crossentropy(y[:, None], p)
    sw = np.array([1.0, 0.0, 2.0])
    # Keras "sum_over_batch_size": sum(per * w) / number of samples
    assert loss(y, p, sample_weight=sw) == pytest.approx(np.sum(per * sw) / 3)
    value, grad = loss.forward_backward(y, p, sample_weight=sw)
    assert value == pytest.approx(np.sum(per * sw) / 3)
    assert grad[1, 0] == 0.0


def test_from_logits_agrees_with_probabilities():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    prob = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    np.testing.assert_allclose(CategoricalCrossentropy(from_logits=True)(y, x),
                               CategoricalCrossentropy()(y, prob), rtol=1e-10)
    # forward_backward(from_logits=True) on a probability-mode loss: logits semantics
    v1, g1 = CategoricalCrossentropy().forward_backward(y, x, from_logits=True)
    np.testing.assert_allclose(g1, (prob - y) / 5, rtol=1e-10)
    xb = rng.standard_normal((6, 1)) * 3
    yb = rng.integers(0, 2, (6, 1)).astype(float)
    _, gb = BinaryCrossentropy().forward_backward(yb, xb, from_logits=True)
    np.testing.assert_allclose(gb, (1 / (1 + np.exp(-xb)) - yb) / 6, rtol=1e-10)


def test_stable_logits_extremes():
    x = np.array([[800.0], [-800.0]])
    y = np.array([[0.0], [1.0]])
    value, grad = BinaryCrossentropy(from_logits=True).forward_backward(y, x)
    assert value == pytest.approx(800.0)
    np.testing.assert_allclose(grad, [[0.5], [-0.5]])
    value, grad = SparseCategoricalCrossentropy(from_logits=True).forward_backward(
        [0], np.array([[-1000.0, 1000.0]]))
    assert value == pytest.approx(2000.0) and np.all(np.isfinite(grad))


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_bce_gradient(label_smoothing):
    rng = np.random.default_rng(2)
    loss = BinaryCrossentropy(label_smoothing=label_smoothing)
    check_grad(loss, rng.integers(0, 2, (5, 3)).astype(float), rng.uniform(0.02, 0.98, (5, 3)))
    check_grad(loss, rng.integers(0, 2, 6), rng.uniform(0.02, 0.98, (6, 1)))  # (B,) labels
    check_grad(loss, rng.integers(0, 2, (4, 3)).astype(float), rng.standard_normal((4, 3)) * 3,
               from_logits=True)
    check_grad(BinaryCrossentropy(from_logits=True), rng.integers(0, 2, (2, 3, 1)),
               rng.standard_normal((2, 3, 1)))


def test_bce_gradient_is_zero_where_clipped():
    p = np.array([[0.0], [1.0], [0.5]])
    _, grad = BinaryCrossentropy().forward_backward(np.array([1.0, 0.0, 1.0]), p)
    assert grad[0, 0] == 0 and grad[1, 0] == 0 and grad[2, 0] != 0


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_categorical_gradients(shape):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, shape[-1], shape[:-1])
    onehot = np.eye(shape[-1])[labels]
    probs = rng.uniform(0.05, 1.0, shape)  # unnormalized: Keras renormalizes
    check_grad(CategoricalCrossentropy(), onehot, probs)
    check_grad(CategoricalCrossentropy(label_smoothing=0.2), onehot, probs)
    check_grad(CategoricalCrossentropy(), onehot, rng.standard_normal(shape), from_logits=True)
    soft = rng.dirichlet(np.ones(shape[-1]), shape[:-1])  # probability labels
    check_grad(CategoricalCrossentropy(), soft, probs)
    check_grad(SparseCategoricalCrossentropy(), labels, probs)
    check_grad(SparseCategoricalCrossentropy(), labels[..., None], probs)
    check_grad(SparseCategoricalCrossentropy(from_logits=True), labels,
               rng.standard_normal(shape))


def test_regression_gradients():
    rng = np.random.default_rng(4)
    for loss in (MeanSquaredError(), MeanAbsoluteError()):
        check_grad(loss, rng.standard_normal((5, 2)), rng.standard_normal((5, 2)))
        check_grad(loss, rng.standard_normal(5), rng.standard_normal((5, 1)))
        check_grad(loss, rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2)))


def test_float32_gradient_dtype():
    p = np.array([[0.3], [0.8]], dtype=np.float32)
    value, grad = BinaryCrossentropy().forward_backward([1, 0], p)
    assert grad.dtype == np.float32 and isinstance(value, float)


# ---------------------------------------------------------------- label checks
def test_check_targets_messages():
    bce = losses.get("binary_crossentropy")
    bce.check_targets(np.zeros(10), (None, 1))
    bce.check_targets(np.zeros((10, 1)), (10, 1))
    with pytest.raises(ValueError, match=r"expected labels of shape \(10, 1\) or \(10,\)"):
        bce.check_targets(np.zeros((10, 2)), (None, 1))
    cce = losses.get("categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        cce.check_targets(np.zeros(10, dtype=int), (None, 5))
    scce = losses.get("sparse_categorical_crossentropy")
    scce.check_targets(np.array([0, 4, 2]), (None, 5))
    scce.check_targets(np.array([[0], [4]]), (2, 5))
    with pytest.raises(ValueError, match=r"expected integer class labels of shape \(3,\)"):
        scce.check_targets(np.zeros((3, 5)), (None, 5))
    with pytest.raises(ValueError, match=r"label 5 is outside \[0, 5\)"):
        scce.check_targets(np.array([0, 5]), (None, 5))
    with pytest.raises(ValueError, match="integer"):
        scce.check_targets(np.array([0.5, 1.0]), (None, 5))
    with pytest.raises(ValueError, match="non-finite"):
        bce.check_targets(np.array([0.0, np.nan]), (None, 1))
    with pytest.raises(ValueError, match="3 labels for 4 samples"):
        bce.check_targets(np.zeros(3), (4, 1))
    with pytest.raises(ValueError, match="shape"):
        scce.forward_backward([0, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="outside"):
        scce([0, 3], np.ones((2, 3)))
    with pytest.raises(ValueError, match="expected labels of shape"):
        losses.get("mse")(np.zeros((4, 2)), np.zeros((4, 3)))


def test_get_names_objects_configs():
    assert isinstance(losses.get("binary_crossentropy"), BinaryCrossentropy)
    assert isinstance(losses.get("BinaryCrossentropy"), BinaryCrossentropy)
    assert isinstance(losses.get("MSE"), MeanSquaredError)
    assert isinstance(losses.get("mae"), MeanAbsoluteError)
    assert isinstance(losses.get(losses.sparse_categorical_crossentropy),
                      SparseCategoricalCrossentropy)
    loss = CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert losses.get(loss) is loss
    again = losses.get(losses.serialize(loss))
    assert again.from_logits and again.label_smoothing == 0.1
    assert losses.get("binary_crossentropy").name == "binary_crossentropy"
    with pytest.raises(ValueError, match="binary_crossentropy, categorical_crossentropy"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="gradient"):
        losses.get(lambda y, p: 0.0)
    with pytest.raises(ValueError, match="reduction"):
        BinaryCrossentropy(reduction="mean")
