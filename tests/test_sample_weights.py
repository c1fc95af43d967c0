"""class_weight -> sample_weight with Keras 3's semantics (its own test cases in
keras/src/trainers/data_adapters/data_adapter_utils_test.py), key checks, and
check_sample_weight's shapes and errors."""
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
