"""Layers: every backward by central finite differences in float64 (masks, dropout, strides,
paddings included), Keras's default initializers, masks, weights, config and naming."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq import activations, initializers
from fastseq.layers import (
    LSTM,
    Activation,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Layer,
    MaxPooling1D,
    deserialize,
    reset_name_uids,
    serialize,
)
from fastseq.utils import set_random_seed
from fastseq.variables import SparseGrad

F64 = "float64"


def _grad_of(var):
    g = var.grad
    if isinstance(g, SparseGrad):
        g = g.to_dense(var.shape)
    return g


def _numeric_grad(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of array."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def check_layer_gradients(layer, x, mask=None, seed=0, check_x=True, rtol=1e-5, atol=1e-7):
    """Backward of ``layer`` against finite differences of sum(forward(x) * R) for a random
    R, for the input (when float) and every trainable weight. The random seed is reset
    before every forward so dropout masks repeat."""
    if not layer.built:
        layer._build_for((None,) + x.shape[1:])
    rng = np.random.default_rng(seed + 1)

    def forward(training=True):
        set_random_seed(seed)
        return layer.forward(x, mask=mask, training=training)

    y = forward()
    r = rng.standard_normal(y.shape)

    def loss():
        out = forward()
        layer._cache = None
        return float(np.sum(out * r))

    forward()
    dx = layer.backward(r.copy(), need_input_grad=True)
    grads = [_grad_of(v) for v in layer.trainable_weights]  # names repeat (Bidirectional)
    if check_x and x.dtype.kind == "f":
        want = _numeric_grad(loss, x)
        np.testing.assert_allclose(dx, want, rtol=rtol, atol=atol, err_msg="input gradient")
    for var, got in zip(layer.trainable_weights, grads):
        want = _numeric_grad(loss, var.value)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {var.name}")
    return y


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------- Dense


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("rank", [2, 3])
def test_dense_gradients(activation, rank):
    layer = Dense(4, activation=activation, dtype=F64, bias_initializer="uniform")
    x = _rand(3, 5) if rank == 2 else _rand(2, 3, 5)
    y = check_layer_gradients(layer, x)
    assert y.shape == x.shape[:-1] + (4,)
    assert y.dtype == np.float64


def test_dense_forward_is_keras_formula():
    layer = Dense(3, activation="relu")
    x = _rand(4, 2).astype(np.float32)
    y = layer(x)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, np.maximum(x @ kernel + bias, 0), rtol=1e-6)
    assert y.dtype == np.float32 and kernel.dtype == np.float32


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_backward_from_logits_skips_the_activation(activation):
    layer = Dense(3, activation=activation, dtype=F64)
    layer._keep_logits = True
    x = _rand(4, 5)
    layer._build_for((None, 5))
    r = _rand(4, 3, seed=3)

    def loss():
        layer.forward(x, training=True)
        z = layer._last_logits.copy()
        layer._cache = None
        return float(np.sum(z * r))

    layer.forward(x, training=True)
    np.testing.assert_allclose(layer._last_logits, x @ layer.kernel.value + layer.bias.value)
    dx = layer.backward_from_logits(r.copy())
    grads = {v.name: v.grad for v in layer.weights}
    np.testing.assert_allclose(dx, _numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for var in layer.weights:
        np.testing.assert_allclose(grads[var.name], _numeric_grad(loss, var.value), rtol=1e-6,
                                   atol=1e-8)


def test_dense_rejects_wrong_feature_size():
    layer = Dense(2)
    layer._build_for((None, 5))
    with pytest.raises(ValueError, match="axis -1"):
        layer.forward(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="ndim"):
        layer.forward(np.zeros((3, 2, 5), np.float32))


def test_dense_needs_defined_last_dimension():
    with pytest.raises(ValueError, match="should be defined"):
        Dense(2)._build_for((None, None))


def test_dense_without_input_grad_skips_it():
    layer = Dense(2, dtype=F64)
    layer._build_for((None, 3))
    layer.forward(_rand(4, 3), training=True)
    assert layer.backward(_rand(4, 2), need_input_grad=False) is None
    assert layer.kernel.grad.shape == (3, 2)


# ---------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activation_layer_gradients(name):
    check_layer_gradients(Activation(name, dtype=F64), _rand(3, 4))


def test_activation_functions_and_errors():
    z = np.array([[-1000.0, 0.0, 1000.0]])
    np.testing.assert_allclose(activations.sigmoid(z), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(activations.softmax(np.array([[1.0, 1.0]])), [[0.5, 0.5]])
    assert np.all(np.isfinite(activations.softmax(z)))
    assert activations.get(None).name == "linear"
    assert activations.get(activations.relu).name == "relu"
    with pytest.raises(ValueError, match="Unknown activation 'swishy'"):
        activations.get("swishy")
    with pytest.raises(TypeError, match="derivative"):
        Dense(2, activation=lambda v: v)


# ---------------------------------------------------------------------------- Dropout


def test_dropout_training_and_inference():
    set_random_seed(1)
    layer = Dropout(0.25)
    x = np.ones((400, 50), np.float32)
    assert layer(x) is x  # inference: the identity
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, y)  # the same mask and scale


def test_dropout_gradients_and_noise_shape():
    check_layer_gradients(Dropout(0.5, dtype=F64), _rand(4, 6))
    layer = Dropout(0.5, noise_shape=(None, 1, 3), dtype=F64)
    y = check_layer_gradients(layer, _rand(4, 5, 3))
    zero = y == 0
    assert np.all(zero == zero[:, :1, :])  # one mask shared along axis 1


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


# ---------------------------------------------------------------------------- Flatten


def test_flatten_gradients_and_shapes():
    check_layer_gradients(Flatten(dtype=F64), _rand(2, 3, 4))
    assert Flatten().compute_output_shape((None, 3, 4)) == (None, 12)
    assert Flatten().compute_output_shape((None, None, 4)) == (None, None)


# ---------------------------------------------------------------------------- Embedding


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_embedding_gradient_is_sparse_and_exact(index_dtype):
    layer = Embedding(7, 3, dtype=F64)
    x = np.array([[1, 2, 2, 0], [6, 1, 0, 0]], dtype=index_dtype)
    check_layer_gradients(layer, x)
    layer.forward(x, training=True)
    layer.backward(_rand(2, 4, 3))
    grad = layer.embeddings.grad
    assert isinstance(grad, SparseGrad)
    np.testing.assert_array_equal(grad.rows, [0, 1, 2, 6])  # row 0 too: Keras has no padding_idx


def test_embedding_forward_looks_up_rows():
    layer = Embedding(10, 3, input_length=6)
    data = np.array([[0, 0, 1, 2, 3, 4], [0, 1, 2, 5, 3, 4]])
    out = layer(data)
    (table,) = layer.get_weights()
    assert out.shape == (2, 6, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, table[data])
    assert layer.input_shape == (None, 6) and layer.output_shape == (None, 6, 3)


def test_embedding_default_initializer_is_uniform_005():
    set_random_seed(0)
    (table,) = Embedding(2000, 50).get_weights()
    assert table.shape == (2000, 50) and table.dtype == np.float32
    assert table.min() >= -0.05 and table.max() <= 0.05
    assert abs(table.mean()) < 1e-3
    assert abs(table.std() - 0.05 / np.sqrt(3)) < 1e-3


def test_embedding_weights_argument_and_index_errors():
    matrix = np.arange(12, dtype=np.float64).reshape(4, 3)
    layer = Embedding(4, 3, weights=[matrix])
    np.testing.assert_array_equal(layer.get_weights()[0], matrix.astype(np.float32))
    with pytest.raises(IndexError, match="4"):
        layer(np.array([[0, 4]]))
    with pytest.raises(IndexError):
        layer(np.array([[-1, 0]]))
    np.testing.assert_array_equal(layer(np.array([[1.0, 2.0]])), matrix[[[1, 2]]])
    with pytest.raises(ValueError, match="fractional"):
        layer(np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        layer(np.array([[np.nan, 2.0]]))
    with pytest.raises(ValueError, match=r"position \(0, 1\) is -?inf, not a finite number"):
        layer(np.array([[1.0, -np.inf]]))
    with pytest.raises(IndexError, match=r"index 1e\+20 at position \(0, 0\) is out of range"):
        layer(np.array([[1e20, 2.0]]))
    with pytest.raises(IndexError, match="out of range"):  # fits int64, beyond input_dim
        layer(np.array([[1e10, 2.0]]))
    with pytest.raises(TypeError, match="integer"):
        layer(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="shape"):
        Embedding(4, 3, weights=[np.zeros((5, 3))]).get_weights()


def test_embedding_constant_initializer():
    matrix = _rand(5, 2)
    layer = Embedding(5, 2, embeddings_initializer=initializers.Constant(matrix))
    np.testing.assert_allclose(layer.get_weights()[0], matrix.astype(np.float32))


def test_frozen_embedding_gets_no_gradient():
    layer = Embedding(5, 2)
    assert layer.weights == []  # Keras: no weights before the layer is built
    layer.get_weights()
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1
    layer.forward(np.array([[1, 2]]), training=True)
    layer.backward(np.ones((1, 2, 2), np.float32))
    assert layer.embeddings.grad is None


# ---------------------------------------------------------------------------- LSTM


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_lstm_gradients(return_sequences, go_backwards, masked):
    layer = LSTM(3, return_sequences=return_sequences, go_backwards=go_backwards, dtype=F64,
                 bias_initializer="uniform")
    x = _rand(2, 5, 4)
    mask = None
    if masked:
        mask = np.array([[False, False, True, True, True], [True, True, False, True, True]])
    y = check_layer_gradients(layer, x, mask=mask)
    assert y.shape == ((2, 5, 3) if return_sequences else (2, 3))


def test_lstm_input_dropout_gradients_and_no_bias():
    layer = LSTM(3, dropout=0.4, use_bias=False, dtype=F64)
    check_layer_gradients(layer, _rand(3, 4, 5))
    assert [w.name for w in layer.weights] == ["kernel", "recurrent_kernel"]
    x = _rand(3, 4, 5)
    np.testing.assert_array_equal(layer(x), layer(x))  # inference: no dropout


def test_lstm_input_dropout_is_one_mask_for_all_steps():
    layer = LSTM(2, dropout=0.5, dtype=F64)
    layer._build_for((None, 6, 8))
    x = np.ones((5, 6, 8))
    set_random_seed(3)
    layer.forward(x, training=True)
    _, dropout_mask = layer._cache
    assert dropout_mask.shape == (5, 1, 8)
    assert set(np.unique(dropout_mask)) <= {0.0, 2.0}


def test_lstm_masked_steps_keep_state_and_repeat_output():
    layer = LSTM(3, return_sequences=True, dtype=F64)
    x = _rand(2, 5, 4)
    mask = np.array([[True, True, False, True, False], [False, True, True, True, True]])
    y = layer(x, mask=mask)
    np.testing.assert_array_equal(y[0, 2], y[0, 1])  # a masked step repeats the output
    np.testing.assert_array_equal(y[0, 4], y[0, 3])
    np.testing.assert_array_equal(y[1, 0], 0)  # before any unmasked step: h0 = 0
    # the unmasked steps alone give the same final state
    compact = layer(x[:1, [0, 1, 3]])
    np.testing.assert_allclose(y[0, 4], compact[0, 2], rtol=1e-12)


def test_lstm_return_state_and_go_backwards_order():
    layer = LSTM(3, return_state=True, return_sequences=True, dtype=F64)
    x = _rand(2, 4, 2)
    out, h, c = layer(x)
    np.testing.assert_array_equal(out[:, -1], h)
    assert c.shape == (2, 3)
    assert layer.compute_output_shape((None, 4, 2)) == [(None, 4, 3), (None, 3), (None, 3)]
    back = LSTM(3, go_backwards=True, return_sequences=True, dtype=F64)
    back._build_for((None, 4, 2))
    fwd = LSTM(3, return_sequences=True, dtype=F64)
    fwd._build_for((None, 4, 2))
    fwd.set_weights(back.get_weights())
    # go_backwards: the reversed sequence, outputs in processing order (Keras)
    np.testing.assert_allclose(back(x), fwd(x[:, ::-1]), rtol=1e-12)


def test_lstm_keras_default_initializers():
    set_random_seed(0)
    layer = LSTM(20)
    layer._build_for((None, None, 30))
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.shape == (30, 80) and recurrent.shape == (20, 80) and bias.shape == (80,)
    limit = np.sqrt(6 / (30 + 80))  # glorot_uniform
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    # orthogonal: a wide matrix gets orthonormal rows
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(20), atol=1e-5)
    # unit_forget_bias: ones in the f block of (i, f, c, o)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(20), np.ones(20), np.zeros(40)])
    layer = LSTM(4, unit_forget_bias=False)
    layer._build_for((None, 2, 3))
    np.testing.assert_array_equal(layer.get_weights()[2], 0)


def test_lstm_unsupported_options_are_clear():
    with pytest.raises(NotImplementedError, match="stateful"):
        LSTM(4, stateful=True)
    with pytest.raises(ValueError, match="recurrent_dropout must be in"):
        LSTM(4, recurrent_dropout=1.5)
    with pytest.raises(NotImplementedError, match="activation"):
        LSTM(4, activation="relu")
    with pytest.raises(ValueError, match="dropout"):
        LSTM(4, dropout=1.0)
    with pytest.raises(ValueError, match="3-D"):
        LSTM(4)._build_for((None, 5))


# ---------------------------------------------------------------------------- Conv1D


@pytest.mark.parametrize(
    "padding,strides,dilation",
    [("valid", 1, 1), ("same", 1, 1), ("causal", 1, 1), ("valid", 2, 1), ("same", 3, 1),
     ("valid", 1, 2), ("causal", 1, 2)],
)
@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv1d_gradients(padding, strides, dilation, activation):
    layer = Conv1D(3, 3, strides=strides, padding=padding, dilation_rate=dilation,
                   activation=activation, dtype=F64, bias_initializer="uniform")
    x = _rand(2, 9, 2)
    y = check_layer_gradients(layer, x)
    assert y.shape[1:] == layer.compute_output_shape((None, 9, 2))[1:]


def test_conv1d_keras_defaults_and_geometry():
    set_random_seed(0)
    layer = Conv1D(64, 3, activation="relu", input_shape=(64, 100))
    layer._build_for((None, 64, 100))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 100, 64) and bias.shape == (64,)
    limit = np.sqrt(6 / (3 * 100 + 3 * 64))  # fans include the receptive field
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    np.testing.assert_array_equal(bias, 0)
    assert layer.output_shape == (None, 62, 64)
    assert Conv1D(2, 3, padding="same", strides=2).compute_output_shape((None, 7, 1)) == (None, 4, 2)
    with pytest.raises(ValueError, match="too short"):
        Conv1D(2, 5)._build_for((None, 3, 1))
    with pytest.raises(ValueError, match="padding"):
        Conv1D(2, 3, padding="full")


def test_conv1d_matches_direct_formula():
    layer = Conv1D(2, 3, dtype=F64)
    x = _rand(1, 6, 2)
    y = layer(x)
    kernel, bias = layer.get_weights()
    want = np.stack([sum(x[0, t + j] @ kernel[j] for j in range(3)) + bias for t in range(4)])
    np.testing.assert_allclose(y[0], want, rtol=1e-12)


# ---------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 1, "valid"),
                                                  (3, 2, "same"), (2, None, "same")])
def test_max_pooling_gradients(pool, strides, padding):
    layer = MaxPooling1D(pool, strides=strides, padding=padding, dtype=F64)
    x = _rand(2, 7, 3)
    y = check_layer_gradients(layer, x)
    assert y.shape[1:] == layer.compute_output_shape((None, 7, 3))[1:]


@pytest.mark.parametrize("cls", [GlobalAveragePooling1D, GlobalMaxPooling1D])
@pytest.mark.parametrize("masked", [False, True])
def test_global_pooling_gradients(cls, masked):
    x = _rand(3, 5, 4)
    mask = None
    if masked:
        mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]], dtype=bool)
    y = check_layer_gradients(cls(dtype=F64), x, mask=mask)
    reduce = np.mean if cls is GlobalAveragePooling1D else np.max
    for b in range(3):
        steps = x[b] if mask is None else x[b][mask[b]]
        np.testing.assert_allclose(y[b], reduce(steps, axis=0), rtol=1e-12)


def test_global_pooling_keepdims():
    y = GlobalMaxPooling1D(keepdims=True)(np.ones((2, 3, 4), np.float32))
    assert y.shape == (2, 1, 4)


# ---------------------------------------------------------------------------- masks


def test_mask_propagation_rules():
    emb = Embedding(10, 3, mask_zero=True)
    x = np.array([[0, 0, 3, 4], [5, 0, 6, 0]])
    mask = emb.compute_mask(x)
    np.testing.assert_array_equal(mask, x != 0)
    assert Embedding(10, 3).compute_mask(x) is None
    assert LSTM(2, return_sequences=True).compute_mask(None, mask) is mask
    assert LSTM(2).compute_mask(None, mask) is None
    assert Dense(2).compute_mask(None, mask) is mask
    assert Dropout(0.1).compute_mask(None, mask) is mask
    assert GlobalAveragePooling1D().compute_mask(None, mask) is None
    for layer in (Flatten(), Conv1D(2, 2), MaxPooling1D()):
        with pytest.warns(UserWarning, match="does not support masking"):
            assert layer.compute_mask(None, mask) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            layer.compute_mask(None, mask)  # warns once per layer


# ---------------------------------------------------------------------------- weights, config, names


def test_set_weights_checks_everything_first():
    layer = Dense(3)
    layer._build_for((None, 2))
    before = layer.get_weights()
    with pytest.raises(ValueError, match="expecting 2 weights"):
        layer.set_weights([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        layer.set_weights([np.ones((2, 3)), np.ones((4,))])
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)  # nothing changed
    layer.set_weights([np.ones((2, 3)), np.ones(3)])
    assert layer.count_params() == 9
    with pytest.raises(ValueError, match="isn't built"):
        Dense(2).count_params()


def test_keras_naming():
    reset_name_uids()
    names = [Dense(1).name, Dense(1).name, LSTM(1).name, Embedding(2, 2).name,
             GlobalAveragePooling1D().name, MaxPooling1D().name, Conv1D(1, 1).name,
             Dense(1, name="out").name]
    assert names == ["dense", "dense_1", "lstm", "embedding", "global_average_pooling1d",
                     "max_pooling1d", "conv1d", "out"]


@pytest.mark.parametrize("layer", [
    Dense(3, activation="relu", input_shape=(4,)),
    Dropout(0.3),
    Flatten(),
    Activation("tanh"),
    Embedding(20, 4, mask_zero=True, input_length=7),
    LSTM(5, return_sequences=True, go_backwards=True, dropout=0.1),
    Conv1D(4, 3, strides=2, padding="same", activation="relu"),
    MaxPooling1D(3, strides=2, padding="same"),
    GlobalAveragePooling1D(),
    GlobalMaxPooling1D(keepdims=True),
], ids=lambda l: type(l).__name__)
def test_config_round_trip(layer):
    config = serialize(layer)
    assert set(config) == {"class_name", "config"}
    clone = deserialize(config)
    assert type(clone) is type(layer)
    assert serialize(clone) == config


def test_unknown_arguments_and_classes():
    with pytest.raises(TypeError, match="unexpected keyword"):
        Dense(3, foo=1)
    with pytest.raises(ValueError, match="Unknown layer class"):
        deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="units"):
        Dense(0)
    with pytest.raises(ValueError, match="Unknown regularizer 'nope'"):
        Dense(2, kernel_regularizer="nope")
    assert isinstance(Dense(2), Layer)


def test_input_dim_keyword():
    assert Dense(2, input_dim=5).input_shape == (None, 5)


# ---------------------------------------------------------------------------- initializers


def test_initializers_keras_formulas():
    set_random_seed(0)
    w = initializers.get("glorot_uniform")((300, 200))
    limit = np.sqrt(6 / 500)
    assert np.abs(w).max() <= limit and abs(w.std() - limit / np.sqrt(3)) < 2e-3
    w = initializers.get("he_normal")((400, 300))
    assert abs(w.std() - np.sqrt(2 / 400)) < 3e-3 and np.abs(w).max() <= 2 * np.sqrt(2 / 400) / 0.8796 + 1e-6
    w = initializers.get("orthogonal")((50, 30))  # tall: orthonormal columns
    np.testing.assert_allclose(w.T @ w, np.eye(30), atol=1e-5)
    assert initializers.get("zeros")((2,)).sum() == 0
    a = initializers.RandomUniform(seed=5)((3, 3))
    np.testing.assert_array_equal(a, initializers.RandomUniform(seed=5)((3, 3)))
    config = initializers.serialize(initializers.get("uniform"))
    assert config == {"class_name": "RandomUniform",
                      "config": {"minval": -0.05, "maxval": 0.05, "seed": None}}
    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.get("nope")


@settings(max_examples=25, deadline=None)
@given(units=st.integers(1, 6), features=st.integers(1, 5), steps=st.integers(1, 4),
       batch=st.integers(1, 3), seed=st.integers(0, 1000))
def test_lstm_gradients_random_shapes(units, features, steps, batch, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((batch, steps)) > 0.3
    layer = LSTM(units, return_sequences=bool(seed % 2), dtype=F64)
    check_layer_gradients(layer, rng.standard_normal((batch, steps, features)), mask=mask,
                          seed=seed)
