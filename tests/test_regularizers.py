"""fastseq.regularizers against Keras 3's formulas and documented examples, gradients by
finite differences, get / serialize / deserialize, and the layer keywords (stored on the
weights, get_config / from_config, model files)."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

from fastseq import constraints, regularizers
from fastseq.layers import GRU, LSTM, Bidirectional, Conv1D, Dense, Embedding, SimpleRNN
from fastseq.regularizers import L1, L1L2, L2, OrthogonalRegularizer, Regularizer
from fastseq.variables import Variable


def _numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f(x) with respect to every element of x."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (f(up) - f(down)) / (2 * eps)
    return grad


def _away_from_zero(shape, seed=0):
    # |x| >= 0.1: L1's kink at 0 stays outside the finite-difference step
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    return x


# ---------------------------------------------------------------- values
def test_values_are_keras_formulas():
    x = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
    assert L1(0.1)(x) == pytest.approx(0.1 * 3.5)
    assert L2(0.1)(x) == pytest.approx(0.1 * 5.25)
    assert L1L2(l1=0.1, l2=0.2)(x) == pytest.approx(0.1 * 3.5 + 0.2 * 5.25)
    assert L1L2()(x) == 0.0
    assert Regularizer()(x) == 0.0
    assert isinstance(L2()(x), float)


def test_keras_documented_examples():
    # keras.regularizers docstring: L2(2.) on ones((5, 5)) is 50; a custom L2 of 0.5 on a
    # ones kernel is 12.5; Dense(5, kernel ones, kernel L1(0.01), activity L2(0.01)) on
    # ones((5, 5)) * 2: kernel term 0.25, activity term 5.0 after dividing by the batch (5)
    assert L2(2.0)(np.ones((5, 5))) == pytest.approx(50.0)
    assert L2(0.5)(np.ones((5, 5))) == pytest.approx(12.5)
    layer = Dense(5, kernel_initializer="ones", kernel_regularizer=L1(0.01),
                  activity_regularizer=L2(0.01))
    out = layer(np.ones((5, 5), dtype=np.float32) * 2.0)
    assert layer.kernel.regularizer(layer.kernel) == pytest.approx(0.25)
    assert layer.activity_regularizer(out) / out.shape[0] == pytest.approx(5.0)


def test_sum_is_float64_on_float32_weights():
    # 1e6 float32 values of 1.1: a float32 running sum drifts; ours is exact to float64
    x = np.full(1_000_000, 1.1, dtype=np.float32)
    exact = float(np.sum(x.astype(np.float64) ** 2))
    assert L2(1.0)(x) == pytest.approx(exact, rel=1e-12)


def test_orthogonal_regularizer_is_keras_formula():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 3))

    def by_pairs(vectors):
        unit = [v / np.linalg.norm(v) for v in vectors]
        pairs = [(i, j) for i in range(len(unit)) for j in range(i + 1, len(unit))]
        # 0.5 * sum over i != j of |u_i . u_j| = sum over i < j, then / pair count
        return 0.01 * sum(abs(unit[i] @ unit[j]) for i, j in pairs) / len(pairs)

    assert OrthogonalRegularizer()(w) == pytest.approx(by_pairs(list(w)))
    assert OrthogonalRegularizer(0.01, mode="columns")(w) == pytest.approx(by_pairs(list(w.T)))
    # orthogonal rows: no penalty; a single row: no pair, 0 (Keras: 0 / 0)
    assert OrthogonalRegularizer()(np.eye(3)) == pytest.approx(0.0)
    assert OrthogonalRegularizer()(np.ones((1, 3))) == 0.0
    with pytest.raises(ValueError, match="rank 2"):
        OrthogonalRegularizer()(np.ones(3))
    with pytest.raises(ValueError, match="mode"):
        OrthogonalRegularizer(mode="diagonal")


def test_takes_a_variable():
    var = Variable(np.array([3.0, -4.0], dtype=np.float32), "kernel")
    assert L2(1.0)(var) == pytest.approx(25.0)
    np.testing.assert_allclose(L1(1.0).gradient(var), [1.0, -1.0])


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("regularizer", [
    L1(0.3), L2(0.2), L1L2(l1=0.1, l2=0.4), OrthogonalRegularizer(0.5),
    OrthogonalRegularizer(0.5, mode="columns"),
], ids=repr)
def test_gradient_matches_finite_differences(regularizer):
    x = _away_from_zero((4, 3))
    np.testing.assert_allclose(regularizer.gradient(x), _numeric_grad(regularizer, x),
                               rtol=1e-6, atol=1e-9)


def test_orthogonal_gradient_with_a_tiny_row_matches_finite_differences():
    # a row below epsilon is scaled by 1 / epsilon instead of normalized (Keras's clamp)
    x = _away_from_zero((3, 4))
    x[1] = 1e-9
    regularizer = OrthogonalRegularizer(0.5)
    np.testing.assert_allclose(regularizer.gradient(x), _numeric_grad(regularizer, x, 1e-11),
                               rtol=1e-4, atol=1e-6)


def test_gradient_keeps_shape_and_dtype_and_l1_is_zero_at_zero():
    x = np.array([[0.0, 2.0, -3.0]], dtype=np.float32)
    for regularizer in (L1(0.5), L2(0.5), L1L2(0.5, 0.5), OrthogonalRegularizer(),
                        Regularizer()):
        grad = regularizer.gradient(x)
        assert grad.shape == x.shape and grad.dtype == np.float32
    np.testing.assert_array_equal(L1(0.5).gradient(x), [[0.0, 0.5, -0.5]])
    np.testing.assert_allclose(L1L2(0.5, 0.25).gradient(x), [[0.0, 1.5, -2.0]])
    assert L2().gradient(np.array([1, 2])).dtype == np.float64  # integers: float64


def test_custom_regularizer_without_gradient_says_so():
    class Penalty(Regularizer):
        def __call__(self, x):
            return float(np.sum(x))

    with pytest.raises(NotImplementedError, match="Penalty.*gradient"):
        Penalty().gradient(np.ones(2))


# ---------------------------------------------------------------- get / serialize
def test_get_names_and_keras3_defaults():
    assert regularizers.get(None) is None
    assert regularizers.get("l1").get_config() == {"l1": 0.01}
    assert regularizers.get("L2").get_config() == {"l2": 0.01}
    assert regularizers.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}
    assert regularizers.get("L1L2").get_config() == {"l1": 0.0, "l2": 0.0}
    # 'l1_l2': the defaults of Keras 3's docs (and Keras 2's function)
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert isinstance(regularizers.get("orthogonal_regularizer"), OrthogonalRegularizer)
    # Keras 3: the lowercase names are the classes
    assert regularizers.l2 is L2 and regularizers.l1 is L1 and regularizers.l1_l2 is L1L2
    assert L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert regularizers.l1_l2(l1=0.001, l2=0.002).get_config() == {"l1": 0.001, "l2": 0.002}
    reg = L2(0.3)
    assert regularizers.get(reg) is reg
    assert isinstance(regularizers.get(L1), L1)  # a class: an instance with its defaults

    class Custom:  # any object with __call__ and gradient will do
        def __call__(self, x):
            return 0.0

        def gradient(self, x):
            return np.zeros_like(x)

    custom = Custom()
    assert regularizers.get(custom) is custom


def test_a_function_regularizer_is_refused_before_training():
    # Keras differentiates a plain function f(x) itself; fastseq needs gradient(x)
    def penalty(x):
        return 0.0

    with pytest.raises(TypeError, match="'penalty' has no gradient.*subclasses "
                                        "fastseq.regularizers.Regularizer"):
        regularizers.get(penalty)
    with pytest.raises(TypeError, match="has no gradient"):
        Dense(2, kernel_regularizer=penalty)


def test_unknown_or_bad_identifiers_are_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown regularizer 'l3'; known names: .*'l1_l2'"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier 3"):
        regularizers.get(3)
    with pytest.raises(ValueError, match="Unknown regularizer class 'L3'"):
        regularizers.deserialize({"class_name": "L3", "config": {}})
    for bad in (-0.1, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match="non-negative float"):
            L2(bad)
    with pytest.raises(ValueError, match="l1"):
        L1L2(l1=-1)


def test_serialize_writes_keras3_format_and_round_trips():
    assert regularizers.serialize(None) is None
    config = regularizers.serialize(L1L2(l1=0.1, l2=0.2))
    assert config == {"module": "keras.regularizers", "class_name": "L1L2",
                      "config": {"l1": 0.1, "l2": 0.2}, "registered_name": None}
    json.dumps(config)
    for reg in (L1(0.3), L2(0.4), L1L2(0.1, 0.2), OrthogonalRegularizer(0.2, "columns")):
        clone = regularizers.deserialize(regularizers.serialize(reg))
        assert type(clone) is type(reg) and clone.get_config() == reg.get_config()
        assert regularizers.get(regularizers.serialize(reg)).get_config() == reg.get_config()
    # Keras 2's dicts have no module; a name deserializes too
    assert regularizers.deserialize({"class_name": "L2", "config": {"l2": 0.5}}).l2 == 0.5
    assert isinstance(regularizers.deserialize("l1"), L1)


def test_custom_classes_and_functions_need_custom_objects():
    class Scaled(Regularizer):
        def __init__(self, scale=1.0):
            self.scale = scale

        def __call__(self, x):
            return self.scale * float(np.sum(x))

        def gradient(self, x):
            return np.full_like(x, self.scale)

        def get_config(self):
            return {"scale": self.scale}

    config = regularizers.serialize(Scaled(2.0))
    assert config["class_name"] == "Scaled" and config["registered_name"] == "Scaled"
    with pytest.raises(ValueError, match="Unknown regularizer class 'Scaled'"):
        regularizers.deserialize(config)
    assert regularizers.deserialize(config, custom_objects={"Scaled": Scaled}).scale == 2.0

    def my_penalty(x):
        return 0.01 * float(np.sum(np.abs(x)))

    # written as Keras writes functions; read back only through custom_objects, and then
    # refused as untrainable (no gradient)
    config = regularizers.serialize(my_penalty)
    assert config["class_name"] == "function" and config["config"] == "my_penalty"
    with pytest.raises(ValueError, match="custom_objects"):
        regularizers.deserialize(config)
    with pytest.raises(TypeError, match="'my_penalty' has no gradient"):
        regularizers.deserialize(config, custom_objects={"my_penalty": my_penalty})


# ---------------------------------------------------------------- layer keywords
def _layers_with_keywords():
    reg, con = L1L2(0.01, 0.02), constraints.MaxNorm(1.5)
    weights = dict(kernel_regularizer=reg, bias_regularizer=L2(0.03), kernel_constraint=con,
                   bias_constraint="non_neg", activity_regularizer="l1")
    recurrent = dict(weights, recurrent_regularizer=L1(0.04),
                     recurrent_constraint=constraints.UnitNorm(axis=1))
    return [
        (Dense(3, **weights), (2, 4), {"kernel", "bias"}),
        (Conv1D(3, 2, **weights), (2, 5, 4), {"kernel", "bias"}),
        (Embedding(10, 3, embeddings_regularizer=reg, embeddings_constraint=con,
                   activity_regularizer="l1"), (2, 5), {"embeddings"}),
        (LSTM(3, **recurrent), (2, 5, 4), {"kernel", "recurrent_kernel", "bias"}),
        (GRU(3, **recurrent), (2, 5, 4), {"kernel", "recurrent_kernel", "bias"}),
        (SimpleRNN(3, **recurrent), (2, 5, 4), {"kernel", "recurrent_kernel", "bias"}),
    ]


def _build(layer, shape):
    if isinstance(layer, Embedding):
        layer(np.ones(shape, dtype=np.int64))
    else:
        layer(np.ones(shape, dtype=np.float32))


def _expected_options(layer, weight_name):
    # each weight takes the keywords named after it ('recurrent_kernel' -> recurrent_*)
    prefix = {"recurrent_kernel": "recurrent"}.get(weight_name, weight_name)
    return getattr(layer, f"{prefix}_regularizer"), getattr(layer, f"{prefix}_constraint")


@pytest.mark.parametrize("index", range(6), ids=["Dense", "Conv1D", "Embedding", "LSTM", "GRU",
                                                 "SimpleRNN"])
def test_layer_keywords_reach_the_weights_and_round_trip(index):
    layer, shape, names = _layers_with_keywords()[index]
    _build(layer, shape)
    assert {w.name for w in layer.weights} == names
    for var in layer.weights:
        regularizer, constraint = _expected_options(layer, var.name)
        assert var.regularizer is regularizer and var.regularizer is not None
        assert var.constraint is constraint and var.constraint is not None
    assert isinstance(layer.activity_regularizer, L1)
    config = layer.get_config()
    json.dumps(config)  # what model files write
    assert config["activity_regularizer"]["class_name"] == "L1"
    for key in layer._weight_option_keys:
        assert config[key] == (regularizers.serialize(getattr(layer, key))
                               if key.endswith("regularizer")
                               else constraints.serialize(getattr(layer, key)))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    _build(clone, shape)
    for var, clone_var in zip(layer.weights, clone.weights):
        assert type(clone_var.regularizer) is type(var.regularizer)
        assert clone_var.regularizer.get_config() == var.regularizer.get_config()
        assert clone_var.constraint.get_config() == var.constraint.get_config()


def test_layers_without_keywords_keep_keras_config():
    layer = Dense(2)
    layer(np.ones((1, 3), dtype=np.float32))
    config = layer.get_config()
    # Keras 3: the weight keywords are always written (None), the activity one only when set
    assert config["kernel_regularizer"] is None and config["bias_constraint"] is None
    assert "activity_regularizer" not in config
    assert all(v.regularizer is None and v.constraint is None for v in layer.weights)


def test_bidirectional_copies_carry_the_keywords():
    layer = Bidirectional(LSTM(2, kernel_regularizer=L2(0.1), recurrent_constraint="max_norm",
                               activity_regularizer="l2"))
    layer(np.ones((2, 3, 4), dtype=np.float32))
    for direction in (layer.forward_layer, layer.backward_layer):
        assert direction.kernel.regularizer.get_config() == {"l2": 0.1}
        assert isinstance(direction.recurrent_kernel.constraint, constraints.MaxNorm)
        assert isinstance(direction.activity_regularizer, L2)
    assert sum(v.regularizer is not None for v in layer.weights) == 2
    clone = Bidirectional.from_config(layer.get_config())
    clone(np.ones((2, 3, 4), dtype=np.float32))
    assert clone.backward_layer.kernel.regularizer.get_config() == {"l2": 0.1}


def test_bad_layer_keywords_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'"):
        Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="Unknown constraint 'max'"):
        LSTM(2, recurrent_constraint="max")
    with pytest.raises(ValueError, match="Unknown regularizer 'x'"):
        Embedding(5, 2, activity_regularizer="x")


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_model_files_keep_the_keywords(tmp_path, name):
    if name.endswith(".h5"):
        pytest.importorskip("h5py")
    from fastseq import models

    model = models.Sequential([
        Embedding(20, 4, input_length=5, embeddings_regularizer="l2"),
        LSTM(3, kernel_regularizer=L1L2(0.01, 0.02), recurrent_constraint="unit_norm"),
        Dense(1, activation="sigmoid", kernel_constraint=constraints.MinMaxNorm(0.5, 1.5),
              activity_regularizer=L1(0.05)),
    ])
    model.build((None, 5))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.save(tmp_path / name)
    loaded = models.load_model(tmp_path / name)
    for a, b in zip(model.layers, loaded.layers):
        assert a.get_config() == b.get_config()
        for va, vb in zip(a.weights, b.weights):
            for attribute in ("regularizer", "constraint"):
                ra, rb = getattr(va, attribute), getattr(vb, attribute)
                assert (ra is None) == (rb is None)
                if ra is not None:
                    assert type(ra) is type(rb) and ra.get_config() == rb.get_config()
    assert loaded.layers[2].activity_regularizer.get_config() == {"l1": 0.05}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras's torch backend, NumPy 2
def test_same_numbers_and_configs_as_keras_itself():
    """Where Keras 3 is installed (any backend): the penalties, the constraints and the
    configs of both agree (gradients: Keras's autodiff, here the explicit formulas above)."""
    if "keras" not in sys.modules and importlib.util.find_spec("torch") is not None:
        os.environ.setdefault("KERAS_BACKEND", "torch")  # as tests/test_keras_interop.py
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    w = (rng.normal(size=(5, 4)) * 2).astype(np.float32)
    tensor = keras.ops.convert_to_tensor(w)  # (Keras's normalize has a NumPy-only path)
    for name, args in [("L1", (0.3,)), ("L2", (0.2,)), ("L1L2", (0.1, 0.4)),
                       ("OrthogonalRegularizer", (0.5, "columns"))]:
        theirs = getattr(keras.regularizers, name)(*args)
        ours = getattr(regularizers, name)(*args)
        assert ours(w) == pytest.approx(float(keras.ops.convert_to_numpy(theirs(tensor))),
                                        rel=1e-5)
        config = keras.regularizers.serialize(theirs)
        assert regularizers.deserialize(config).get_config() == pytest.approx(ours.get_config())
        assert regularizers.serialize(ours).keys() == config.keys()
    for name, args in [("MaxNorm", (1.5, 1)), ("UnitNorm", ()), ("NonNeg", ()),
                       ("MinMaxNorm", (0.5, 1.5, 0.7))]:
        theirs = getattr(keras.constraints, name)(*args)
        ours = getattr(constraints, name)(*args)
        np.testing.assert_allclose(ours(w), keras.ops.convert_to_numpy(theirs(tensor)),
                                   rtol=1e-6, atol=1e-7)
        assert constraints.serialize(ours) == keras.constraints.serialize(theirs)
    layer = keras.layers.Dense(5, kernel_initializer="ones",
                               kernel_regularizer=keras.regularizers.L1(0.01),
                               activity_regularizer=keras.regularizers.L2(0.01))
    layer(np.ones((5, 5), "float32") * 2.0)
    assert sorted(float(keras.ops.convert_to_numpy(v)) for v in layer.losses) == \
        pytest.approx([0.25, 5.0])


def test_training_gradient_with_every_weight_regularized_matches_finite_differences():
    """Embedding (its row-sparse gradient meets the dense penalty gradient), Conv1D, LSTM
    and Dense, every weight and every output penalized: one SGD(1.0) step moves each weight
    by minus the finite-difference gradient of the loss test_on_batch reports."""
    from fastseq import models
    from fastseq.optimizers import SGD

    f64 = "float64"
    model = models.Sequential([
        Embedding(8, 3, input_length=5, dtype=f64, embeddings_regularizer=L1L2(0.01, 0.02),
                  activity_regularizer=L2(0.01)),
        Conv1D(4, 2, activation="tanh", dtype=f64, kernel_regularizer=L2(0.03),
               bias_regularizer=L1(0.02), activity_regularizer=L1(0.01)),
        LSTM(3, dtype=f64, kernel_regularizer=L1(0.01), recurrent_regularizer=L2(0.05),
             bias_regularizer=L1L2(0.01, 0.01), activity_regularizer=L2(0.02)),
        Dense(1, dtype=f64, kernel_regularizer=OrthogonalRegularizer(0.1, "columns")),
    ])
    model.build((None, 5))
    rng = np.random.default_rng(7)
    model.set_weights([_away_from_zero(w.shape, seed=i) * 0.5
                       for i, w in enumerate(model.get_weights())])
    model.compile(optimizer=SGD(learning_rate=1.0), loss="mse")
    x = rng.integers(0, 6, (4, 5))  # rows 6 and 7 of the embedding get only the penalty
    y = rng.standard_normal((4, 1))
    before = model.get_weights()

    def loss_at(weights):
        model.set_weights(weights)
        return model.test_on_batch(x, y)

    numeric = []
    for k, w in enumerate(before):
        numeric.append(_numeric_grad(
            lambda v, k=k: loss_at(before[:k] + [v] + before[k + 1:]), w))
    model.set_weights(before)
    unregularized = models.Sequential([type(layer).from_config(
        {key: value for key, value in layer.get_config().items()
         if "regularizer" not in key}) for layer in model.layers])
    unregularized.build((None, 5))
    unregularized.set_weights(before)
    unregularized.compile(optimizer="sgd", loss="mse")
    assert model.test_on_batch(x, y) > unregularized.test_on_batch(x, y) + 0.01
    model.train_on_batch(x, y)
    for w0, w1, g in zip(before, model.get_weights(), numeric):
        np.testing.assert_allclose(w0 - w1, g, rtol=1e-5, atol=1e-8)
