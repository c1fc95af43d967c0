"""Metrics: Keras's docstring examples, hand-computed values, sample-count weighting and
the name the user gave."""
import numpy as np
import pytest

from fastseq import losses, metrics
from fastseq.metrics import (
    AutoAccuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    Mean,
    SparseCategoricalAccuracy,
)


def test_keras_docstring_examples():
    m = BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5)
    m = CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
                   sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)
    m = SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    assert m.result() == pytest.approx(0.75)


def test_weighted_by_sample_count_across_batches():
    rng = np.random.default_rng(0)
    m = BinaryAccuracy()
    hits = total = 0
    for size in (7, 3, 11, 1):
        y = rng.integers(0, 2, size)
        p = rng.uniform(0, 1, (size, 1))
        m.update_state(y, p)
        hits += np.sum((p[:, 0] > 0.5) == y)
        total += size
    assert m.result() == pytest.approx(hits / total)
    m.reset_state()
    assert m.result() == 0.0


def test_mean_tracks_loss_weighted_by_batch_size():
    tracker = Mean(name="loss")
    tracker.update_state(0.5, sample_weight=64)
    tracker.update_state(2.0, sample_weight=16)
    assert tracker.result() == pytest.approx((0.5 * 64 + 2.0 * 16) / 80)
    plain = Mean()
    plain.update_state([1.0, 2.0, 6.0])
    plain.update_state(3.0)
    assert plain.result() == pytest.approx(3.0)


def test_binary_accuracy_threshold_and_multi_unit_outputs():
    m = BinaryAccuracy(threshold=0.7)
    m.update_state([[1, 0], [1, 1]], [[0.8, 0.6], [0.65, 0.9]])
    # per sample: mean over the last axis: [1.0, 0.5]
    assert m.result() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="threshold"):
        BinaryAccuracy(threshold=1.0)


def test_sequence_outputs_averaged_per_sample():
    # (B, T, C) outputs: matches per time step, averaged over T then over samples
    m = SparseCategoricalAccuracy()
    y = np.array([[0, 1], [1, 1]])
    p = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.9, 0.1], [0.3, 0.7]]])
    m.update_state(y, p)
    assert m.result() == pytest.approx((1.0 + 0.5) / 2)


@pytest.mark.parametrize("name", ["accuracy", "acc", "Accuracy", "ACC"])
def test_accuracy_keeps_the_given_name(name):
    m = metrics.get(name, loss="binary_crossentropy")
    assert m.name == name
    m.update_state([1, 0], [[0.9], [0.8]])
    assert m.result() == pytest.approx(0.5)


@pytest.mark.parametrize("loss,y,p,kind", [
    ("binary_crossentropy", [1, 0], [[0.9], [0.2]], BinaryAccuracy),
    ("binary_crossentropy", [[1, 0, 1]], [[0.9, 0.2, 0.7]], BinaryAccuracy),  # multi-label
    ("mse", [1.0, 0.0], [[0.9], [0.2]], BinaryAccuracy),  # one output unit
    ("sparse_categorical_crossentropy", [2, 0], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]],
     SparseCategoricalAccuracy),
    ("categorical_crossentropy", [[0, 0, 1], [1, 0, 0]], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]],
     CategoricalAccuracy),
    (None, [2, 0], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]], SparseCategoricalAccuracy),  # shapes
    (None, [[0, 0, 1], [1, 0, 0]], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]], CategoricalAccuracy),
])
def test_accuracy_resolution(loss, y, p, kind):
    m = metrics.get("acc", loss=losses.get(loss) if loss else None)
    assert isinstance(m, AutoAccuracy)
    m.update_state(y, p)
    assert type(m.resolved) is kind and m.resolved.name == "acc"
    assert m.result() == pytest.approx(1.0)


def test_get_names_and_objects():
    assert metrics.get("mse").name == "mse"
    assert metrics.get("mean_squared_error").name == "mean_squared_error"
    assert isinstance(metrics.get("mae"), metrics.MeanAbsoluteError)
    assert metrics.get("BinaryAccuracy").name == "binary_accuracy"
    assert metrics.get("binary_accuracy").name == "binary_accuracy"
    m = BinaryAccuracy(name="ba")
    assert metrics.get(m) is m
    assert metrics.get(BinaryAccuracy).name == "binary_accuracy"

    def exact(y_true, y_pred):
        return (np.asarray(y_true) == np.asarray(y_pred)).astype(float)

    fn_metric = metrics.get(exact)
    assert fn_metric.name == "exact"
    fn_metric.update_state([1, 2, 3], [1, 0, 3])
    assert fn_metric.result() == pytest.approx(2 / 3)
    again = metrics.get(metrics.serialize(BinaryAccuracy(name="x", threshold=0.3)))
    assert again.name == "x" and again.threshold == 0.3
    with pytest.raises(ValueError, match="accuracy"):
        metrics.get("f1")
    with pytest.raises(TypeError):
        metrics.get(3)


def test_regression_and_crossentropy_metrics():
    m = metrics.get("mse")
    m.update_state([[1.0, 2.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 1.0]])
    assert m.result() == pytest.approx((2.0 + 1.0) / 2)
    m = metrics.get("mae")
    m.update_state([[1.0, 2.0]], [[0.0, 0.0]])
    assert m.result() == pytest.approx(1.5)
    m = metrics.get("binary_crossentropy")
    y, p = np.array([1, 0]), np.array([[0.8], [0.4]])
    m.update_state(y, p)
    assert m.result() == pytest.approx(losses.BinaryCrossentropy()(y, p))
    assert m._direction == "down" and metrics.get("acc")._direction == "up"


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="one-hot"):
        CategoricalAccuracy().update_state([1, 2], [[0.1, 0.9, 0.0], [0.3, 0.3, 0.4]])
    with pytest.raises(ValueError, match="integer labels"):
        SparseCategoricalAccuracy().update_state([[1, 0], [0, 1]], [[0.1, 0.9], [0.3, 0.7]][:1])
