"""fastseq.constraints against Keras 3's formulas (epsilon 1e-7 included), dtypes, axes,
get / serialize / deserialize."""
import json

import numpy as np
import pytest

from fastseq import constraints
from fastseq.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm
from fastseq.variables import Variable

EPS = 1e-7


def test_max_norm_rescales_only_the_long_vectors():
    # columns (axis 0) of norm 5 and 0.5; max_value 2
    w = np.array([[3.0, 0.0], [4.0, 0.5]])
    out = MaxNorm(max_value=2)(w)
    np.testing.assert_allclose(out[:, 0], w[:, 0] * 2 / (EPS + 5.0), rtol=1e-15)
    np.testing.assert_allclose(out[:, 1], w[:, 1] * 0.5 / (EPS + 0.5), rtol=1e-15)
    # axis=1: rows of norm 3 and sqrt(16.25)
    out = MaxNorm(max_value=2, axis=1)(w)
    np.testing.assert_allclose(out[1], w[1] * 2 / (EPS + np.sqrt(16.25)), rtol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [2, 2], rtol=1e-6)


def test_unit_norm_divides_by_epsilon_plus_norm():
    w = np.array([[3.0, 1e-7, 0.0], [4.0, 0.0, 0.0]])
    out = UnitNorm()(w)
    np.testing.assert_allclose(out[:, 0], [3 / (5 + EPS), 4 / (5 + EPS)], rtol=1e-15)
    # a vector of norm epsilon comes out with norm 1/2; a zero vector stays zero (no NaN)
    np.testing.assert_allclose(out[:, 1], [0.5, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(out[:, 2], [0.0, 0.0])


def test_min_max_norm_with_rate():
    w = np.array([[3.0, 0.03], [4.0, 0.04]])  # column norms 5 and 0.05
    out = MinMaxNorm(min_value=0.5, max_value=1.0, rate=0.5)(w)
    # desired = rate * clip(norm, min, max) + (1 - rate) * norm
    desired = np.array([0.5 * 1.0 + 0.5 * 5.0, 0.5 * 0.5 + 0.5 * 0.05])
    np.testing.assert_allclose(out, w * desired / (EPS + np.array([5.0, 0.05])), rtol=1e-14)
    strict = MinMaxNorm(min_value=0.5, max_value=1.0)(w)
    np.testing.assert_allclose(np.linalg.norm(strict, axis=0), [1.0, 0.5], rtol=1e-5)


def test_axes_of_a_conv_kernel():
    # Keras: axis=[0, 1] constrains each filter (k, in) of a Conv1D kernel (k, in, filters)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4, 2)) * 5
    out = MaxNorm(max_value=1.0, axis=[0, 1])(w)
    norms = np.sqrt(np.sum(w ** 2, axis=(0, 1)))
    np.testing.assert_allclose(out, w * (1.0 / (EPS + norms)), rtol=1e-14)
    assert MaxNorm(axis=[0, 1]).get_config() == {"max_value": 2, "axis": [0, 1]}


def test_non_neg():
    np.testing.assert_array_equal(NonNeg()(np.array([-1.0, 0.0, 2.5])), [0.0, 0.0, 2.5])


@pytest.mark.parametrize("constraint", [MaxNorm(1.0), UnitNorm(), MinMaxNorm(0.2, 0.8, 0.7),
                                        NonNeg(), Constraint()], ids=repr)
def test_float32_in_float32_out_as_keras_computes(constraint):
    rng = np.random.default_rng(1)
    w = (rng.normal(size=(5, 3)) * 3).astype(np.float32)
    out = constraint(w)
    assert out.dtype == np.float32 and out.shape == w.shape
    np.testing.assert_allclose(out, constraint(w.astype(np.float64)), rtol=2e-6, atol=1e-7)


def test_takes_a_variable_and_leaves_it_unchanged():
    var = Variable(np.array([[3.0], [4.0]], dtype=np.float32), "kernel")
    out = UnitNorm()(var)
    np.testing.assert_allclose(out, [[0.6], [0.8]], rtol=1e-6)
    np.testing.assert_array_equal(var.value, [[3.0], [4.0]])


def test_get_names_aliases_and_errors():
    assert constraints.get(None) is None
    for name, cls in [("max_norm", MaxNorm), ("MaxNorm", MaxNorm), ("non_neg", NonNeg),
                      ("unit_norm", UnitNorm), ("min_max_norm", MinMaxNorm)]:
        assert type(constraints.get(name)) is cls
    assert constraints.max_norm is MaxNorm and constraints.non_neg is NonNeg
    assert constraints.unit_norm is UnitNorm and constraints.min_max_norm is MinMaxNorm
    assert constraints.get("max_norm").get_config() == {"max_value": 2, "axis": 0}
    assert constraints.get("min_max_norm").get_config() == {
        "min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    c = MaxNorm(3)
    assert constraints.get(c) is c
    with pytest.raises(ValueError, match=r"Unknown constraint 'maxnorm'; known names: .*'max_norm'"):
        constraints.get("maxnorm")
    with pytest.raises(ValueError, match="Could not interpret constraint identifier 1.5"):
        constraints.get(1.5)


def test_serialize_round_trip_in_keras3_format():
    assert constraints.serialize(None) is None
    config = constraints.serialize(MinMaxNorm(0.1, 2.0, 0.5, axis=1))
    assert config == {"module": "keras.constraints", "class_name": "MinMaxNorm",
                      "config": {"min_value": 0.1, "max_value": 2.0, "rate": 0.5, "axis": 1},
                      "registered_name": None}
    json.dumps(config)
    for c in (MaxNorm(3, axis=1), NonNeg(), UnitNorm(axis=[0, 1]), MinMaxNorm(0.1, 2.0)):
        clone = constraints.deserialize(constraints.serialize(c))
        assert type(clone) is type(c) and clone.get_config() == c.get_config()
    assert constraints.deserialize({"class_name": "MaxNorm",
                                    "config": {"max_value": 4, "axis": 0}}).max_value == 4
