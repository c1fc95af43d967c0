"""sample_weight, class_weight, weighted_metrics, regularizers and constraints inside the
training loop, with Keras 3's semantics (fastseq/_sample_weights.py's docstring): the loss
is sum(loss * w) / n, compiled metrics are unweighted and weighted_metrics weighted, the
regularization joins the loss that fit / evaluate / train_on_batch report, constraints act
after every update. Bad weights raise before any weight changes."""
import numpy as np
import pytest
from test_layers import _numeric_grad

from fastseq import Input, Model
from fastseq.constraints import MaxNorm, NonNeg
from fastseq.layers import LSTM, Dense, Embedding
from fastseq.losses import BinaryCrossentropy
from fastseq.models import Sequential
from fastseq.regularizers import L1, L2

F64 = "float64"


def binary_model(seed=0, **dense_kwargs):
    model = Sequential([Dense(3, activation="tanh", input_shape=(4,), dtype=F64, **dense_kwargs),
                        Dense(1, activation="sigmoid", dtype=F64)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    return model


def binary_data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(np.float64)[:, None]
    return x, y


def test_sample_weight_enters_the_loss_as_keras_sum_over_batch_size():
    model = binary_model()
    model.compile("sgd", "binary_crossentropy")
    x, y = binary_data()
    w = np.linspace(0.0, 2.0, len(x))
    per_sample = BinaryCrossentropy(reduction="none")(y, model.predict(x))
    want = float(np.sum(per_sample * w) / len(x))  # not / sum(w)
    np.testing.assert_allclose(model.test_on_batch(x, y, sample_weight=w), want, rtol=1e-10)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=w, batch_size=len(x),
                                              verbose=0), want, rtol=1e-10)

    def loss():
        return model.test_on_batch(x, y, sample_weight=w)

    weights = [v.value.copy() for v in model.trainable_weights]
    numeric = [_numeric_grad(loss, v.value) for v in model.trainable_weights]
    model.compile("sgd", "binary_crossentropy")  # lr 0.01: w_new = w - 0.01 g
    model.train_on_batch(x, y, sample_weight=w)
    for before, var, g in zip(weights, model.trainable_weights, numeric):
        np.testing.assert_allclose(before - var.value, 0.01 * g, rtol=1e-5, atol=1e-10)


def test_class_weight_equals_the_sample_weights_it_stands_for():
    x, y = binary_data(16)
    a, b = binary_model(), binary_model()
    for m in (a, b):
        m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    class_weight = {0: 1.0, 1: 3.0}
    ha = a.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0,
               class_weight=class_weight)
    hb = b.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0,
               sample_weight=np.where(y[:, 0] == 1, 3.0, 1.0))
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_metrics_are_unweighted_and_weighted_metrics_weighted():
    model = binary_model()
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    x, y = binary_data(40)
    right = (model.predict(x) > 0.5) == (y > 0.5)
    w = right[:, 0].astype(float)  # weight only the samples the model gets right
    logs = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(right.mean())
    assert logs["weighted_accuracy"] == pytest.approx(1.0)
    assert model.metrics_names == ["loss", "accuracy", "weighted_accuracy"]


def test_bad_weights_raise_before_any_weight_changes():
    model = binary_model()
    model.compile("sgd", "binary_crossentropy")
    x, y = binary_data()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="12 samples"):
        model.fit(x, y, sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ValueError, match="2"):
        model.fit(x, y, class_weight={0: 1.0, 2: 5.0}, verbose=0)  # no class 2 here
    with pytest.raises(ValueError, match="same time"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(12), verbose=0)
    with pytest.raises(ValueError, match="finite|NaN"):
        model.train_on_batch(x, y, sample_weight=np.full(12, np.nan))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sample_weight_on_a_masked_sequence_output():
    """(n,) weights on a per-step output are repeated over the steps; masked steps are
    left out of the mean (Keras: sum(l * w * mask) / valid)."""
    model = Sequential([Embedding(9, 3, mask_zero=True, input_length=4, dtype=F64),
                        LSTM(2, return_sequences=True, dtype=F64),
                        Dense(1, activation="sigmoid", dtype=F64)])
    model.compile("sgd", "binary_crossentropy")
    x = np.array([[1, 2, 0, 0], [3, 4, 5, 0], [6, 7, 8, 1]])
    y = np.random.default_rng(2).integers(0, 2, (3, 4, 1)).astype(float)
    w = np.array([1.0, 0.5, 2.0])
    mask = x != 0
    per_step = BinaryCrossentropy(reduction="none")(y, model.predict(x))
    want = float(np.sum((per_step * w[:, None])[mask]) / mask.sum())
    np.testing.assert_allclose(model.test_on_batch(x, y, sample_weight=w), want, rtol=1e-10)


def test_weight_and_activity_regularization_join_the_reported_loss():
    """Keras's Regularizer docstring example: Dense(5) with kernel L1(0.01) and activity
    L2(0.01), all-ones kernel, input ones * 2: kernel penalty 0.25, activity 25 / batch 5."""
    inp = Input(shape=(5,), dtype=F64)
    layer = Dense(5, kernel_initializer="ones", kernel_regularizer=L1(0.01),
                  activity_regularizer=L2(0.01), dtype=F64)
    model = Model(inp, layer(inp))
    model.compile("sgd", "mse")
    x = np.ones((5, 5)) * 2
    y = model.predict(x)  # zero data loss
    assert model.test_on_batch(x, y) == pytest.approx(5.25)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(5.25)
    assert model.losses == [pytest.approx(0.25)]
    history = model.fit(x, y, epochs=1, batch_size=5, verbose=0)
    assert history.history["loss"][0] == pytest.approx(5.25)


def test_regularization_gradient_by_finite_differences():
    model = binary_model(kernel_regularizer=L2(0.1), bias_regularizer=L1(0.05),
                         activity_regularizer=L2(0.02))
    model.compile("sgd", "binary_crossentropy")
    x, y = binary_data()

    def loss():
        return model.test_on_batch(x, y)

    before = [v.value.copy() for v in model.trainable_weights]
    numeric = [_numeric_grad(loss, v.value) for v in model.trainable_weights]
    data_loss = BinaryCrossentropy()(y, model.predict(x))
    reported = model.train_on_batch(x, y)
    assert reported > data_loss + 0.1 * np.sum(before[0] ** 2)  # + bias and activity terms
    for b, var, g in zip(before, model.trainable_weights, numeric):
        np.testing.assert_allclose(b - var.value, 0.01 * g, rtol=1e-5, atol=1e-10)


def test_constraints_hold_after_every_update():
    model = Sequential([Dense(4, input_shape=(3,), kernel_constraint=NonNeg()),
                        Dense(1, kernel_constraint=MaxNorm(0.5))])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((32, 3)), rng.standard_normal((32, 1)) * 10
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert (model.layers[0].kernel.value >= 0).all()
    norms = np.sqrt(np.sum(model.layers[1].kernel.value ** 2, axis=0))
    assert (norms <= 0.5 + 1e-6).all()


def test_activity_penalty_on_a_fused_sigmoid_output():
    """The activity penalty of an output layer whose sigmoid the loss takes as logits:
    the gradient is still exact (fusion is off for that layer)."""
    model = Sequential([Dense(3, activation="tanh", input_shape=(4,), dtype=F64),
                        Dense(1, activation="sigmoid", activity_regularizer=L2(0.3),
                              dtype=F64)])
    model.compile("sgd", "binary_crossentropy")
    x, y = binary_data()

    def loss():
        return model.test_on_batch(x, y)

    before = [v.value.copy() for v in model.trainable_weights]
    numeric = [_numeric_grad(loss, v.value) for v in model.trainable_weights]
    model.train_on_batch(x, y)
    for b, var, g in zip(before, model.trainable_weights, numeric):
        np.testing.assert_allclose(b - var.value, 0.01 * g, rtol=1e-5, atol=1e-10)
