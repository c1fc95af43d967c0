"""class_weight -> sample_weight with Keras 3's semantics (its own test cases in
keras/src/trainers/data_adapters/data_adapter_utils_test.py), key checks, and
check_sample_weight's shapes and errors."""
import importlib.util
import os
import sys

import numpy as np
import pytest

from fastseq._sample_weights import check_sample_weight, class_weight_to_sample_weight

CW = {0: 1.0, 1: 2.0, 2: 3.0}


@pytest.mark.parametrize("y, class_weight, expected", [
    (np.array([0, 1, 0, 2]), CW, [1.0, 2.0, 1.0, 3.0]),                      # class indices
    (np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]), CW, [1, 2, 1, 3]),  # one-hot
    (np.array([0, 3, 0, 2]), CW, [1.0, 1.0, 1.0, 3.0]),  # 3 has no weight: 1.0
    (np.array([[0], [1], [0], [2]]), CW, [1.0, 2.0, 1.0, 3.0]),              # (n, 1)
    (np.array([0, 1, 0, 2]), {}, [1.0, 1.0, 1.0, 1.0]),                      # all unmapped
], ids=["class_labels", "one_hot", "unmapped_class", "n_by_1", "all_unmapped"])
def test_keras3_cases(y, class_weight, expected):
    weights = class_weight_to_sample_weight(y, class_weight)
    assert weights.dtype == np.float64 and weights.shape == (len(y),)
    np.testing.assert_array_equal(weights, expected)


def test_probabilities_take_the_argmax_and_float_labels_round_half_to_even():
    probs = np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    np.testing.assert_array_equal(class_weight_to_sample_weight(probs, CW), [2.0, 1.0])
    # a sigmoid output's float targets, (n, 1): np.round as Keras (0.5 -> 0, 1.5 -> 2)
    y = np.array([[0.0], [1.0], [0.5], [1.5], [0.9]], dtype=np.float32)
    np.testing.assert_array_equal(class_weight_to_sample_weight(y, {0: 0.5, 1: 4.0, 2: 7.0}),
                                  [0.5, 4.0, 0.5, 7.0, 4.0])


def test_numpy_int_keys_are_classes_too():
    weights = class_weight_to_sample_weight(np.array([0, 1]), {np.int64(1): 3.0})
    np.testing.assert_array_equal(weights, [1.0, 3.0])


@pytest.mark.parametrize("class_weight, bad", [
    ({0: 1.0, "1": 2.0}, "'1'"), ({-1: 2.0}, "-1"), ({1.0: 2.0}, "1.0"), ({True: 2.0}, "True"),
])
def test_keys_that_are_not_class_indices(class_weight, bad):
    with pytest.raises(ValueError, match=rf"class_weight keys \[{bad}\] are not classes"):
        class_weight_to_sample_weight(np.array([0, 1]), class_weight)


def test_keys_beyond_the_known_classes():
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    with pytest.raises(ValueError, match=r"keys \[3, 7\] are not classes of the data: "
                                         r"expected class indices 0 \.\. 2"):
        class_weight_to_sample_weight(one_hot, {0: 1.0, 3: 2.0, 7: 1.0})
    labels = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"keys \[4\].*0 \.\. 3"):
        class_weight_to_sample_weight(labels, {4: 1.0}, n_outputs_classes=4)
    # one sigmoid unit: the classes are 0 and 1
    np.testing.assert_array_equal(
        class_weight_to_sample_weight(labels, {1: 5.0}, n_outputs_classes=1), [1, 5, 5])
    with pytest.raises(ValueError, match=r"keys \[2\].*0 \.\. 1"):
        class_weight_to_sample_weight(labels, {2: 1.0}, n_outputs_classes=1)


def test_bad_class_weight_values_and_labels():
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        class_weight_to_sample_weight(np.array([0, 1]), [1.0, 2.0])
    for value in (-1.0, float("nan"), "2", None):
        with pytest.raises(ValueError, match=r"class_weight\[1\] must be a finite number"):
            class_weight_to_sample_weight(np.array([0, 1]), {1: value})
    with pytest.raises(ValueError, match="not finite at samples 1"):
        class_weight_to_sample_weight(np.array([0.0, np.nan]), {0: 1.0})
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\)"):
        class_weight_to_sample_weight(np.zeros((2, 3, 4)), {0: 1.0})
    with pytest.raises(TypeError, match="numeric labels"):
        class_weight_to_sample_weight(np.array(["a", "b"]), {0: 1.0})


# ---------------------------------------------------------------- check_sample_weight
def test_sample_weight_shapes():
    assert check_sample_weight(None, 3) is None
    out = check_sample_weight([1, 0, 2], 3)
    assert out.dtype == np.float64 and out.shape == (3,)
    np.testing.assert_array_equal(out, [1.0, 0.0, 2.0])
    np.testing.assert_array_equal(check_sample_weight(np.array([[1.0], [2.0]]), 2), [1.0, 2.0])
    temporal = check_sample_weight(np.ones((2, 4), dtype=np.float32), 2, timesteps=4)
    assert temporal.shape == (2, 4) and temporal.dtype == np.float64
    np.testing.assert_array_equal(check_sample_weight(np.array([True, False]), 2), [1.0, 0.0])
    weights = np.array([1.0, 2.0])
    assert check_sample_weight(weights, 2) is not weights  # a copy: the caller's is kept


def test_sample_weight_errors_name_what_and_expected():
    with pytest.raises(ValueError, match=r"sample_weight has 2 entries but the data have 3 "
                                         r"samples: expected shape \(3,\) or \(3, T\)"):
        check_sample_weight([1.0, 2.0], 3)
    with pytest.raises(ValueError, match=r"val_sample_weight has 4 entries"):
        check_sample_weight(np.ones(4), 3, what="val_sample_weight")
    with pytest.raises(ValueError, match=r"shape \(3,\).*got shape \(\)"):
        check_sample_weight(1.0, 3)
    with pytest.raises(ValueError, match=r"got shape \(3, 2, 1\)"):
        check_sample_weight(np.ones((3, 2, 1)), 3)
    with pytest.raises(ValueError, match=r"has 5 steps per sample but the output has 4"):
        check_sample_weight(np.ones((3, 5)), 3, timesteps=4)
    with pytest.raises(ValueError, match="must be finite: NaN or infinite at 1, 3"):
        check_sample_weight([1.0, np.nan, 1.0, np.inf], 4)
    with pytest.raises(ValueError, match=r"must be >= 0: negative at \(1, 0\)"):
        check_sample_weight([[1.0, 1.0], [-1.0, 1.0]], 2)
    with pytest.raises(TypeError, match="must hold numbers.*dtype <U1"):
        check_sample_weight(["a", "b"], 2)
    with pytest.raises(TypeError, match="dtype object"):
        check_sample_weight([1.0, None], 2)


def test_labels_that_are_not_one_hot_for_the_output_are_an_error():
    # (n, T) class indices of a sequence output: Keras 3 would argmax over the steps
    steps = np.array([[0, 2, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match=r"one-hot \(n, 4\) for this output, got y of shape "
                                         r"\(2, 3\).*sample_weight of shape \(n, T\)"):
        class_weight_to_sample_weight(steps, {0: 1.0}, n_outputs_classes=4)
    one_hot = np.eye(4)[[0, 3]]
    np.testing.assert_array_equal(
        class_weight_to_sample_weight(one_hot, {3: 2.0}, n_outputs_classes=4), [1.0, 2.0])


# ---------------------------------------------------------------- against Keras itself
def _keras():
    if "keras" not in sys.modules and importlib.util.find_spec("torch") is not None:
        os.environ.setdefault("KERAS_BACKEND", "torch")  # as tests/test_keras_interop.py
    return pytest.importorskip("keras")


def _twin_models(keras, regularized, output_activity=False):
    """The same masked Embedding -> LSTM -> Dense(softmax) in Keras and in fastseq, every
    weight regularized and constrained when ``regularized``."""
    from fastseq import constraints, layers, models, regularizers

    def make(lib_layers, lib_reg, lib_con):
        def reg(factory):
            return factory() if regularized else None

        return [
            lib_layers.Embedding(12, 3, mask_zero=True, dtype="float64",
                                 embeddings_regularizer=reg(lambda: lib_reg.L2(0.02)),
                                 activity_regularizer=reg(lambda: lib_reg.L1(0.01))),
            lib_layers.LSTM(4, dtype="float64",
                            kernel_regularizer=reg(lambda: lib_reg.L1L2(0.01, 0.02)),
                            recurrent_regularizer=reg(lambda: lib_reg.L2(0.03)),
                            recurrent_constraint=reg(lambda: lib_con.MaxNorm(0.4)),
                            activity_regularizer=reg(lambda: lib_reg.L2(0.05))),
            lib_layers.Dense(2, activation="softmax", dtype="float64",
                             kernel_regularizer=reg(lambda: lib_reg.L1(0.02)),
                             kernel_constraint=reg(lambda: lib_con.UnitNorm()),
                             activity_regularizer=(lib_reg.L2(0.3) if output_activity
                                                   else None)),
        ]

    theirs = keras.Sequential([keras.Input((6,), dtype="int64")]
                              + make(keras.layers, keras.regularizers, keras.constraints))
    ours = models.Sequential(make(layers, regularizers, constraints))
    ours.build((None, 6))
    weights = [np.random.default_rng(i).standard_normal(w.shape) * 0.4
               for i, w in enumerate(ours.get_weights())]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours


def _one_step_both(keras, theirs, ours, **weights):
    from fastseq.optimizers import SGD

    rng = np.random.default_rng(0)
    x = rng.integers(1, 12, (8, 6))
    x[:3, :2] = 0  # masked steps
    y = rng.integers(0, 2, 8)
    compiled = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                    weighted_metrics=["accuracy"])
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), **compiled)
    ours.compile(optimizer=SGD(0.5), **compiled)
    logs = [m.train_on_batch(x, y, return_dict=True, **weights) for m in (theirs, ours)]
    sample_weight = rng.random(8)
    evaluated = [m.evaluate(x, y, sample_weight=sample_weight, verbose=0, return_dict=True)
                 for m in (theirs, ours)]
    return logs, evaluated


# keras's torch backend warns about NumPy 2's __array__(copy=...) protocol
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("regularized", [False, True], ids=["plain", "regularized"])
@pytest.mark.parametrize("weights", ["none", "sample_weight", "class_weight"])
def test_one_training_step_equals_keras(weights, regularized):
    """train_on_batch's loss and metrics, the weights after the step (regularization
    gradients and constraints included) and evaluate with sample weights, as Keras 3's."""
    keras = _keras()
    theirs, ours = _twin_models(keras, regularized)
    kwargs = {"none": {}, "sample_weight": {"sample_weight": np.linspace(0.1, 2.0, 8)},
              "class_weight": {"class_weight": {0: 0.3, 1: 2.0}}}[weights]
    logs, evaluated = _one_step_both(keras, theirs, ours, **kwargs)
    for keras_logs, our_logs in (logs, evaluated):
        assert our_logs.keys() == keras_logs.keys()
        for key, value in keras_logs.items():
            assert our_logs[key] == pytest.approx(value, rel=1e-5), key
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_activity_regularizer_on_a_fused_output_equals_keras():
    keras = _keras()
    theirs, ours = _twin_models(keras, True, output_activity=True)
    _one_step_both(keras, theirs, ours)
    for a, b in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-6)
