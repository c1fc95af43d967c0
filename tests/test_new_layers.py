"""The layers of issue 15: SpatialDropout1D, AveragePooling1D, TimeDistributed, Masking,
BatchNormalization, LayerNormalization, Reshape, Permute, RepeatVector, Lambda.

Each against a NumPy reference written from Keras 3's formula (hand-built cases where the
numbers are easy to read), gradients by finite differences in float64, shapes, masks,
configs, a few fit steps inside a Sequential model with a save/load round trip (.keras and
.npz), every backend, and bad arguments."""
import warnings

import numpy as np
import pytest
from test_layers import _numeric_grad  # central differences, shared

import fastseq
from fastseq.backend import get_ops
from fastseq.layers import (
    LSTM,
    AveragePooling1D,
    AvgPool1D,
    BatchNormalization,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    Lambda,
    Layer,
    LayerNormalization,
    Masking,
    Permute,
    RepeatVector,
    Reshape,
    SpatialDropout1D,
    TimeDistributed,
    deserialize,
    serialize,
)
from fastseq.models import Sequential, load_model
from fastseq.utils import set_random_seed

KERAS_MASK_EPSILON = 1e-7


def _rng(seed=0):
    return np.random.default_rng(seed)


def _built(layer, shape, dtype=np.float64):
    """``layer`` built for inputs of ``shape`` (the batch size included), computing on the
    CPU backend."""
    layer._build_for((None,) + tuple(shape[1:]))
    return layer


# ---------------------------------------------------------------- finite differences
def _loss_and_grads(layer, x, upstream, mask=None):
    """sum(layer(x) * upstream) and its analytic gradients (x, then each trainable weight)."""
    y = layer.forward(x.copy(), mask=mask, training=True)
    for var in layer.trainable_weights:
        var.grad = None
    grad_x = layer.backward(np.array(upstream, copy=True), need_input_grad=True)
    return float(np.sum(y * upstream)), grad_x, [np.asarray(v.grad) for v in
                                                 layer.trainable_weights]


def check_gradients(layer, x, mask=None, seed=1, rtol=1e-6, atol=1e-8):
    """Every analytic gradient (input and trainable weights) against central differences of
    sum(layer(x) * upstream), in float64."""
    x = np.array(x, dtype=np.float64)
    y = layer.forward(x.copy(), mask=mask, training=True)
    upstream = _rng(seed).standard_normal(np.shape(y))
    layer._cache = None
    _, grad_x, weight_grads = _loss_and_grads(layer, x, upstream, mask)

    def loss():
        out = layer.forward(x.copy(), mask=mask, training=True)
        layer._cache = None
        return float(np.sum(out * upstream))

    np.testing.assert_allclose(grad_x, _numeric_grad(loss, x), rtol=rtol, atol=atol,
                               err_msg="input gradient")
    assert len(weight_grads) == len(layer.trainable_weights)
    for var, grad in zip(layer.trainable_weights, weight_grads):
        np.testing.assert_allclose(grad, _numeric_grad(loss, var.value), rtol=rtol, atol=atol,
                                   err_msg=var.name)


# ---------------------------------------------------------------- SpatialDropout1D
def test_spatial_dropout_drops_whole_channels_scaled():
    layer = SpatialDropout1D(0.5, seed=3)
    x = np.ones((6, 5, 8), np.float32)
    np.testing.assert_array_equal(layer(x), x)  # inference: the identity
    y = layer(x, training=True)
    # every (sample, channel) is 0 at every step or 1 / (1 - rate) at every step
    assert set(np.unique(y)) == {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    assert 0 < (y[:, 0] == 0).mean() < 1


def test_spatial_dropout_backward_uses_the_forward_mask():
    layer = SpatialDropout1D(0.4, seed=1)
    x = _rng().standard_normal((3, 4, 5)) + 5.0  # no zeros: y / x recovers the mask
    y = layer.forward(x, training=True)
    grad = _rng(2).standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(grad.copy()), grad * (y / x), rtol=1e-12)


def test_spatial_dropout_config_mask_and_bad_input():
    layer = SpatialDropout1D(0.25, seed=7, name="sd")
    config = layer.get_config()
    assert config["rate"] == 0.25 and config["seed"] == 7 and "noise_shape" not in config
    clone = deserialize(serialize(layer))
    assert isinstance(clone, SpatialDropout1D) and clone.get_config() == config
    mask = np.array([[True, False, True]])
    assert layer.compute_mask(np.zeros((1, 3, 2)), mask) is mask  # passed on, as Dropout
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        SpatialDropout1D(1.5)
    with pytest.raises(ValueError, match="expects 3-D input"):
        SpatialDropout1D(0.5)(np.zeros((2, 3)), training=True)


# ---------------------------------------------------------------- AveragePooling1D
@pytest.mark.parametrize("pool,strides,padding,want", [
    # x = 1, 2, 3, 4, 5
    (2, None, "valid", [1.5, 3.5]),
    (2, 1, "valid", [1.5, 2.5, 3.5, 4.5]),
    # Keras's docstring example: pool 2, strides 1, same: the last window holds 5 alone
    (2, 1, "same", [1.5, 2.5, 3.5, 4.5, 5.0]),
    # same, strides 2: Lout 3, total pad 1 on the right: windows [1,2], [3,4], [5]
    (2, None, "same", [1.5, 3.5, 5.0]),
    # same, pool 3, strides 1: pad 1 left, 1 right; edge windows average 2 real steps
    (3, 1, "same", [1.5, 2.0, 3.0, 4.0, 4.5]),
    # same, pool 4, strides 2: Lout 3, total 3 -> 1 left, 2 right
    (4, 2, "same", [2.0, 3.5, 4.5]),
])
def test_average_pooling_keras_cases(pool, strides, padding, want):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)
    x = np.concatenate([x, -x], axis=2)  # two channels pooled alike
    layer = AveragePooling1D(pool, strides=strides, padding=padding)
    y = layer(x)
    np.testing.assert_allclose(y[0, :, 0], want, rtol=1e-6)
    np.testing.assert_allclose(y[0, :, 1], -np.asarray(want), rtol=1e-6)
    assert layer.compute_output_shape((None, 5, 2)) == (None, len(want), 2)


def _naive_average_pool(x, pool, strides, padding):
    length = x.shape[1]
    if padding == "valid":
        out_length, pad_left = (length - pool) // strides + 1, 0
    else:
        out_length = (length - 1) // strides + 1
        pad_left = max((out_length - 1) * strides + pool - length, 0) // 2
    y = np.empty((x.shape[0], out_length, x.shape[2]))
    for t in range(out_length):
        lo = max(t * strides - pad_left, 0)
        hi = min(t * strides - pad_left + pool, length)
        y[:, t] = x[:, lo:hi].mean(axis=1)
    return y


@pytest.mark.parametrize("length,pool,strides,padding", [
    (7, 3, 2, "same"), (7, 3, 2, "valid"), (6, 2, None, "valid"), (5, 4, 1, "same"),
    (1, 3, 1, "same"), (9, 2, 3, "same"),
])
def test_average_pooling_matches_reference_and_gradients(length, pool, strides, padding):
    x = _rng(length).standard_normal((2, length, 3))
    layer = _built(AveragePooling1D(pool, strides=strides, padding=padding, dtype="float64"),
                   x.shape)
    np.testing.assert_allclose(layer.forward(x), _naive_average_pool(x, pool, strides or pool,
                                                                      padding), rtol=1e-12)
    check_gradients(layer, x)


def test_average_pooling_alias_config_mask_and_bad_arguments():
    assert AvgPool1D is AveragePooling1D
    layer = AveragePooling1D(3, strides=2, padding="same", name="avg")
    config = layer.get_config()
    assert (config["pool_size"], config["strides"], config["padding"]) == ((3,), (2,), "same")
    assert deserialize(serialize(layer)).get_config() == config
    with pytest.warns(UserWarning, match="does not support masking"):
        assert layer.compute_mask(np.zeros((1, 4, 2)), np.ones((1, 4), bool)) is None
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        AveragePooling1D(2, padding="full")
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        AveragePooling1D(0)
    with pytest.raises(NotImplementedError, match="channels_last"):
        AveragePooling1D(2, data_format="channels_first")
    with pytest.raises(ValueError, match="shorter than pool_size=4"):
        AveragePooling1D(4)(np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="expects 3-D input"):
        AveragePooling1D(2)(np.zeros((1, 3)))


# ---------------------------------------------------------------- TimeDistributed
def test_time_distributed_dense_is_dense_at_every_step():
    x = _rng().standard_normal((3, 4, 5)).astype(np.float32)
    layer = TimeDistributed(Dense(2, activation="tanh"))
    y = layer(x)
    kernel, bias = layer.get_weights()
    want = np.stack([np.tanh(x[:, t] @ kernel + bias) for t in range(4)], axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 4, 5)) == (None, 4, 2)
    assert [w.shape for w in layer.get_weights()] == [(5, 2), (2,)]
    assert layer.weights == layer.layer.weights


def test_time_distributed_conv1d_folds_time_into_the_batch():
    x = _rng(1).standard_normal((2, 3, 6, 4)).astype(np.float32)  # (B, T, L, C)
    layer = TimeDistributed(Conv1D(5, 3))
    y = layer(x)
    assert y.shape == (2, 3, 4, 5)
    inner = layer.layer
    for t in range(3):
        np.testing.assert_allclose(y[:, t], inner(x[:, t]), rtol=1e-5, atol=1e-6)


def test_time_distributed_embedding_takes_integer_inputs():
    x = _rng(31).integers(1, 9, (4, 3, 5))  # (batch, sentences, words)
    y = _rng(32).random((4, 1)).astype(np.float32)
    model = Sequential([TimeDistributed(Embedding(10, 2), input_shape=(3, 5)),
                        Reshape((3, 10)), LSTM(2), Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=2, verbose=0)
    table = model.layers[0].get_weights()[0]
    np.testing.assert_array_equal(model.layers[0](x), table[x])


def test_time_distributed_gradients():
    x = _rng(2).standard_normal((2, 3, 4))
    layer = _built(TimeDistributed(Dense(3, activation="sigmoid", dtype="float64")), x.shape)
    check_gradients(layer, x)


def test_time_distributed_mask_config_and_bad_input():
    layer = TimeDistributed(Dense(2), name="td")
    mask = np.array([[True, True, False]])
    assert layer.compute_mask(np.zeros((1, 3, 4)), mask) is mask  # passed through, as Keras
    layer(np.zeros((1, 3, 4), np.float32))
    config = layer.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["units"] == 2
    clone = deserialize(serialize(layer))
    assert isinstance(clone.layer, Dense) and clone.get_config() == config
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        TimeDistributed(Dense(2))(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="Layer instance"):
        TimeDistributed("dense")
    with pytest.raises(ValueError, match=r"mask.* of shape \(1, 3, \.\.\.\)"):
        layer.forward(np.zeros((1, 3, 4), np.float32), mask=np.ones((1, 2), bool))


# ---------------------------------------------------------------- Masking
def test_masking_zeroes_and_masks_the_padded_steps():
    x = np.array([[[1.0, 2.0], [0.0, 0.0], [0.0, 3.0]],
                  [[0.0, 0.0], [5.0, 5.0], [0.0, 0.0]]], np.float32)
    layer = Masking()
    np.testing.assert_array_equal(layer(x), x)  # mask_value 0: the masked steps are zero
    np.testing.assert_array_equal(layer.compute_mask(x), [[True, False, True],
                                                          [False, True, False]])
    layer = Masking(mask_value=5.0)
    y = layer(x)
    np.testing.assert_array_equal(y[1, 1], [0.0, 0.0])
    np.testing.assert_array_equal(y[0], x[0])
    mask = layer.compute_mask(x, np.zeros((2, 3), bool))  # replaces the incoming mask
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, True]])


def test_masking_gradients_config_and_bad_argument():
    x = _rng(3).standard_normal((2, 4, 3))
    x[0, 1] = 0.5
    x[1, 3] = 0.5
    layer = _built(Masking(0.5, dtype="float64"), x.shape)
    upstream = _rng(4).standard_normal(x.shape)
    _, grad_x, _ = _loss_and_grads(layer, x, upstream)
    keep = np.any(x != 0.5, axis=-1, keepdims=True)
    # y = x * keep: upstream where kept, zero on the masked steps (the mask is a step
    # function of x, flat everywhere but on its edge)
    np.testing.assert_array_equal(grad_x, upstream * keep)
    x_unmasked = x + 1.0  # no step equals 0.5 any more: finite differences everywhere
    check_gradients(layer, x_unmasked)
    assert deserialize(serialize(layer)).get_config()["mask_value"] == 0.5
    with pytest.raises(TypeError, match="mask_value must be a number"):
        Masking("zero")


def test_masking_before_lstm_skips_the_masked_steps():
    x = _rng(4).standard_normal((2, 5, 3)).astype(np.float32)
    x[0, 3:] = 0.0
    set_random_seed(0)
    masked = Sequential([Masking(input_shape=(5, 3)), LSTM(4)])
    plain = Sequential([LSTM(4, input_shape=(3, 3))])
    plain.set_weights(masked.get_weights())
    # a masked LSTM keeps its state over the masked tail: the output is that of 3 steps
    np.testing.assert_allclose(masked.predict(x, verbose=0)[0],
                               plain.predict(x[:1, :3], verbose=0)[0], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- BatchNormalization
def _bn_reference(x, gamma, beta, mean, var, epsilon):
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def test_batch_normalization_training_and_moving_statistics_as_keras():
    x = _rng(5).standard_normal((4, 3, 2)) * 3 + 1
    layer = _built(BatchNormalization(momentum=0.9, dtype="float64"), x.shape)
    gamma, beta = np.array([2.0, 0.5]), np.array([0.1, -0.3])
    layer.set_weights([gamma, beta, np.array([0.2, 0.4]), np.array([1.5, 2.5])])
    y = layer.forward(x, training=True)
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))  # the biased variance
    np.testing.assert_allclose(y, _bn_reference(x, gamma, beta, mean, var, 1e-3), rtol=1e-12)
    # Keras 3: moving = moving * momentum + batch * (1 - momentum)
    np.testing.assert_allclose(layer.moving_mean.value, np.array([0.2, 0.4]) * 0.9 + mean * 0.1)
    np.testing.assert_allclose(layer.moving_variance.value,
                               np.array([1.5, 2.5]) * 0.9 + var * 0.1)
    # inference: the moving statistics
    mm, mv = layer.moving_mean.value.copy(), layer.moving_variance.value.copy()
    np.testing.assert_allclose(layer.forward(x), _bn_reference(x, gamma, beta, mm, mv, 1e-3),
                               rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.value, mm)  # inference updates nothing


def test_batch_normalization_masked_statistics_are_keras_formula():
    x = _rng(6).standard_normal((3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    layer = _built(BatchNormalization(momentum=0.5, dtype="float64"), x.shape)
    y = layer.forward(x, mask=mask, training=True)
    w = mask[..., None].astype(np.float64)
    count = w.sum() + KERAS_MASK_EPSILON
    mean = (w * x).sum(axis=(0, 1)) / count
    var = (w * (w * x - mean) ** 2).sum(axis=(0, 1)) / count
    # the masked steps are left out of the statistics (but normalized like the others)
    np.testing.assert_allclose(mean, x[mask].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(y, _bn_reference(x, 1.0, 0.0, mean, var, 1e-3), rtol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.value, mean * 0.5, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.value, 0.5 + var * 0.5, rtol=1e-12)
    assert layer.compute_mask(x, mask) is mask


@pytest.mark.parametrize("axis,shape,with_mask", [
    (-1, (5, 3), False), (-1, (3, 4, 2), False), (-1, (3, 4, 2), True), (1, (3, 4, 2), False),
])
def test_batch_normalization_gradients(axis, shape, with_mask):
    x = _rng(7).standard_normal(shape) * 2 + 0.5
    layer = _built(BatchNormalization(axis=axis, dtype="float64"), x.shape)
    rng = _rng(8)
    layer.set_weights([rng.random(w.shape) + 0.5 if i < 2 else w
                       for i, w in enumerate(layer.get_weights())])
    mask = None
    if with_mask:
        mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]], bool)
    check_gradients(layer, x, mask=mask, rtol=1e-5, atol=1e-7)


def test_batch_normalization_frozen_uses_moving_statistics_and_passes_gradients():
    x = _rng(9).standard_normal((4, 3))
    layer = _built(BatchNormalization(dtype="float64", center=False), x.shape)
    layer.set_weights([np.array([2.0, 1.0, 0.5]), np.array([0.1, 0.2, 0.3]),
                       np.array([1.0, 2.0, 3.0])])
    layer.trainable = False
    assert not layer.trainable_weights and not layer._training_changes_forward()
    y = layer.forward(x, training=True)  # Keras: trainable=False runs in inference mode
    want = _bn_reference(x, np.array([2.0, 1.0, 0.5]), 0.0, np.array([0.1, 0.2, 0.3]),
                         np.array([1.0, 2.0, 3.0]), 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.value, [0.1, 0.2, 0.3])
    check_gradients(layer, x)


def test_batch_normalization_weights_order_config_and_bad_arguments():
    layer = _built(BatchNormalization(name="bn"), (2, 4))
    assert [v.name for v in layer.weights] == ["gamma", "beta", "moving_mean",
                                               "moving_variance"]
    assert [v.name for v in layer.non_trainable_weights] == ["moving_mean", "moving_variance"]
    np.testing.assert_array_equal(layer.get_weights()[3], np.ones(4))
    no_center = _built(BatchNormalization(center=False, scale=False), (2, 4))
    assert [v.name for v in no_center.weights] == ["moving_mean", "moving_variance"]
    config = layer.get_config()
    assert (config["axis"], config["momentum"], config["epsilon"]) == (-1, 0.99, 1e-3)
    assert config["moving_variance_initializer"]["class_name"] == "Ones"
    assert deserialize(serialize(layer)).get_config() == config
    with pytest.raises(ValueError, match="out of bounds"):
        _built(BatchNormalization(axis=3), (2, 4))
    with pytest.raises(ValueError, match="synchronized=True"):
        BatchNormalization(synchronized=True)
    with pytest.raises(TypeError, match="momentum must be a float"):
        BatchNormalization(momentum="fast")
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="one dimension less than the inputs"):
        layer.forward(np.zeros((2, 4), np.float32), mask=np.ones((2, 4), bool), training=True)
    with pytest.raises(ValueError, match="incompatible with the layer"):
        layer.forward(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("layer_class", [BatchNormalization, LayerNormalization])
def test_normalization_gamma_regularizer_and_constraint(layer_class):
    from fastseq import regularizers

    x = _rng(28).standard_normal((8, 3)).astype(np.float32)
    y = _rng(29).random((8, 1)).astype(np.float32)
    losses = []
    for penalty in (None, regularizers.l2(0.5)):
        set_random_seed(0)
        model = Sequential([layer_class(input_shape=(3,), gamma_regularizer=penalty,
                                        beta_constraint="non_neg"), Dense(1)])
        model.compile("sgd", "mse")
        model.layers[0].gamma.assign(np.array([1.0, 2.0, 3.0]))
        losses.append(model.evaluate(x, y, verbose=0))
        model.layers[0].beta.assign(np.array([-1.0, 0.5, 0.0]))
        model.train_on_batch(x, y)
        assert np.all(model.layers[0].beta.value >= 0)  # the constraint after the update
    # the penalty 0.5 * sum(gamma^2) joins the loss (Keras: the layer's losses)
    np.testing.assert_allclose(losses[1] - losses[0], 0.5 * 14.0, rtol=1e-5)
    config = model.layers[0].get_config()
    assert config["gamma_regularizer"]["class_name"] == "L2"
    clone = deserialize(serialize(model.layers[0]))
    assert clone.get_config() == config


# ---------------------------------------------------------------- LayerNormalization
def test_layer_normalization_is_keras_formula():
    x = _rng(10).standard_normal((3, 4, 5)) * 2 + 1
    layer = _built(LayerNormalization(dtype="float64"), x.shape)
    gamma, beta = _rng(11).random(5), _rng(12).random(5)
    layer.set_weights([gamma, beta])
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12)
    mask = np.ones((3, 4), bool)
    assert layer.compute_mask(x, mask) is mask


def test_layer_normalization_over_several_axes():
    x = _rng(13).standard_normal((2, 3, 4))
    layer = _built(LayerNormalization(axis=[1, 2], epsilon=1e-5, dtype="float64"), x.shape)
    assert [w.shape for w in layer.get_weights()] == [(3, 4), (3, 4)]
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(layer.forward(x), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("axis,shape", [(-1, (4, 5)), (-1, (2, 3, 4)), ([1, 2], (2, 3, 4)),
                                        (1, (2, 3, 4))])
def test_layer_normalization_gradients(axis, shape):
    x = _rng(14).standard_normal(shape)
    layer = _built(LayerNormalization(axis=axis, dtype="float64"), x.shape)
    layer.set_weights([_rng(15).random(w.shape) + 0.5 for w in layer.get_weights()])
    check_gradients(layer, x, rtol=1e-5, atol=1e-7)


def test_layer_normalization_config_and_bad_arguments():
    layer = LayerNormalization(name="ln", center=False)
    assert layer.get_config()["axis"] == -1
    _built(layer, (2, 3, 4))
    assert [v.name for v in layer.weights] == ["gamma"]
    config = layer.get_config()
    assert config["axis"] == [-1]  # Keras: a list once built
    assert deserialize(serialize(layer)).get_config() == config
    with pytest.raises(TypeError, match="an int or a list/tuple of ints"):
        LayerNormalization(axis="last")
    with pytest.raises(NotImplementedError, match="rms_scaling"):
        LayerNormalization(rms_scaling=True)
    with pytest.raises(ValueError, match="batch axis"):
        _built(LayerNormalization(axis=0), (2, 3))
    with pytest.raises(ValueError, match="out of bounds"):
        _built(LayerNormalization(axis=4), (2, 3))


# ---------------------------------------------------------------- Reshape, Permute, RepeatVector
def test_reshape_shapes_values_and_gradients():
    x = _rng(16).standard_normal((2, 12)).astype(np.float32)
    layer = Reshape((3, -1))
    assert layer.compute_output_shape((None, 12)) == (None, 3, 4)
    assert layer.compute_output_shape((None, None)) == (None, 3, None)
    y = layer(x)
    np.testing.assert_array_equal(y, x.reshape(2, 3, 4))
    check_gradients(_built(Reshape((2, 2, 3), dtype="float64"), x.shape), x)


def test_permute_and_repeat_vector_values_and_gradients():
    x = _rng(17).standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = Permute((3, 1, 2))
    assert layer.compute_output_shape((None, 3, 4, 5)) == (None, 5, 3, 4)
    np.testing.assert_array_equal(layer(x), np.transpose(x, (0, 3, 1, 2)))
    check_gradients(_built(Permute((2, 3, 1), dtype="float64"), x.shape), x)
    v = _rng(18).standard_normal((2, 3)).astype(np.float32)
    repeat = RepeatVector(4)
    assert repeat.compute_output_shape((None, 3)) == (None, 4, 3)
    np.testing.assert_array_equal(repeat(v), np.repeat(v[:, None], 4, axis=1))
    check_gradients(_built(RepeatVector(3, dtype="float64"), v.shape), v)


def test_reshaping_configs_masks_and_bad_arguments():
    for layer, key, value in [(Reshape((2, -1)), "target_shape", (2, -1)),
                              (Permute((2, 1)), "dims", (2, 1)),
                              (RepeatVector(3), "n", 3)]:
        config = layer.get_config()
        assert config[key] == value
        assert deserialize(serialize(layer)).get_config() == config
        with pytest.warns(UserWarning, match="does not support masking"):
            assert layer.compute_mask(np.zeros((1, 2, 2)), np.ones((1, 2), bool)) is None
    with pytest.raises(ValueError, match="more than one `-1`"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="cannot be reshaped to"):
        Reshape((5, 3))(np.zeros((1, 12), np.float32))
    with pytest.raises(ValueError, match="cannot be reshaped to"):
        Reshape((5, -1)).compute_output_shape((None, 12))
    with pytest.raises(ValueError, match="must be positive"):
        Reshape((0, 3))
    with pytest.raises(ValueError, match="consecutive and start from 1"):
        Permute((0, 1))
    with pytest.raises(ValueError, match="expects inputs of 3 dimensions"):
        Permute((2, 1))(np.zeros((1, 2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="integer value for `n`"):
        RepeatVector(2.5)
    with pytest.raises(ValueError, match="n must be a positive int"):
        RepeatVector(0)
    with pytest.raises(ValueError, match="expects inputs of 2 dimensions"):
        RepeatVector(2)(np.zeros((1, 2, 3), np.float32))


# ---------------------------------------------------------------- Lambda
def test_lambda_applies_the_function_and_infers_the_shape():
    x = _rng(19).standard_normal((2, 3, 4)).astype(np.float32)
    layer = Lambda(np.square)
    np.testing.assert_array_equal(layer(x), np.square(x))
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)
    assert Lambda(lambda t: t.sum(axis=-1)).compute_output_shape((None, None, 4)) == (None, None)
    assert Lambda(lambda t: t[:, :2], output_shape=(2, 4)).compute_output_shape(
        (None, 3, 4)) == (None, 2, 4)
    assert Lambda(np.square, output_shape=lambda s: s).compute_output_shape((None, 5)) == (None, 5)
    scaled = Lambda(lambda t, factor: t * factor, arguments={"factor": 3.0})
    np.testing.assert_allclose(scaled(x), x * 3.0)


def test_lambda_masks():
    x = np.zeros((1, 3, 2), np.float32)
    mask = np.array([[True, False, True]])
    with pytest.warns(UserWarning, match="does not support masking"):
        assert Lambda(np.square).compute_mask(x, mask) is None  # Keras: dropped
    keep_first = Lambda(np.square, mask=lambda inputs, previous: previous[:, :1])
    np.testing.assert_array_equal(keep_first.compute_mask(x, mask), [[True]])
    fixed = Lambda(np.square, mask=[[True, True, False]])
    np.testing.assert_array_equal(fixed.compute_mask(x, None), [[True, True, False]])
    seen = {}

    def with_mask(t, mask=None):
        seen["mask"] = mask
        return t

    Lambda(with_mask).forward(x, mask=mask)
    assert seen["mask"] is mask


def test_lambda_config_round_trip_only_for_importable_functions():
    layer = Lambda(np.tanh, output_shape=(3,), name="lam")
    config = layer.get_config()
    assert config["function"] == {"module": "numpy", "class_name": "function",
                                  "config": "tanh", "registered_name": "tanh"}
    clone = deserialize(serialize(layer))
    assert clone.function is np.tanh and clone.get_config() == config
    with pytest.raises(ValueError, match="only a function importable by module and name"):
        Lambda(lambda t: t + 1).get_config()

    def local(t):
        return t

    with pytest.raises(ValueError, match="only a function importable"):
        Lambda(local).get_config()
    with pytest.raises(ValueError, match="Python bytecode"):
        deserialize({"class_name": "Lambda", "config": {
            "function": {"class_name": "__lambda__", "config": {"code": "..."}}}})
    with pytest.raises(ValueError, match="cannot import the function"):
        deserialize({"class_name": "Lambda", "config": {
            "function": {"module": "numpy", "class_name": "function", "config": "nope"}}})
    with pytest.raises(TypeError, match="function must be callable"):
        Lambda(3)
    with pytest.raises(NotImplementedError, match="pass output_shape="):
        Lambda(lambda t: t.reshape(7, 7)).compute_output_shape((None, 3))


def test_lambda_is_inference_only_with_trainable_layers_below():
    x = _rng(20).standard_normal((8, 3)).astype(np.float32)
    y = _rng(21).random((8, 1)).astype(np.float32)
    # refused before the forward pass: the moving statistics below stay as they were too
    model = Sequential([Dense(4, input_shape=(3,)), BatchNormalization(), Lambda(np.tanh),
                        Dense(1)])
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(RuntimeError, match="cannot be trained through"):
        model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing changed
    # a Lambda below every trainable layer is fine
    first = Sequential([Lambda(np.tanh, input_shape=(3,)), Dense(1)])
    first.compile("sgd", "mse")
    first.fit(x, y, epochs=1, verbose=0)


# ---------------------------------------------------------------- in a model: fit, save, load
def _model_cases():
    return {
        "spatial_dropout": (lambda: [SpatialDropout1D(0.3, input_shape=(6, 4)), Flatten(),
                                     Dense(1)], (6, 4)),
        "average_pooling": (lambda: [AveragePooling1D(3, strides=2, padding="same",
                                                      input_shape=(6, 4)),
                                     Flatten(), Dense(1)], (6, 4)),
        "time_distributed": (lambda: [TimeDistributed(Dense(3), input_shape=(6, 4)),
                                      Flatten(), Dense(1)], (6, 4)),
        "masking": (lambda: [Masking(input_shape=(6, 4)), LSTM(3), Dense(1)], (6, 4)),
        "batch_normalization": (lambda: [BatchNormalization(input_shape=(6, 4)),
                                         GlobalAveragePooling1D(), Dense(1)], (6, 4)),
        "layer_normalization": (lambda: [Dense(3, input_shape=(6, 4)), LayerNormalization(),
                                         Flatten(), Dense(1)], (6, 4)),
        "reshape": (lambda: [Reshape((3, 8), input_shape=(6, 4)), Dense(2), Flatten(),
                             Dense(1)], (6, 4)),
        "permute": (lambda: [Permute((2, 1), input_shape=(6, 4)), Dense(2), Flatten(),
                             Dense(1)], (6, 4)),
        "repeat_vector": (lambda: [Dense(3, input_shape=(4,)), RepeatVector(2), LSTM(2),
                                   Dense(1)], (4,)),
        "lambda": (lambda: [Lambda(np.tanh, input_shape=(6, 4)), Flatten(), Dense(1)], (6, 4)),
    }


@pytest.mark.parametrize("case", sorted(_model_cases()))
@pytest.mark.parametrize("suffix", [".keras", ".npz"])
def test_fit_then_save_and_load_round_trip(case, suffix, tmp_path):
    build, sample_shape = _model_cases()[case]
    rng = _rng(22)
    x = rng.standard_normal((16,) + sample_shape).astype(np.float32)
    if case == "masking":
        x[:, 4:] = 0.0
    y = rng.random((16, 1)).astype(np.float32)
    set_random_seed(1)
    model = Sequential(build())
    model.compile("adam", "mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    # training goes on from the same state
    set_random_seed(2)
    a = model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False).history["loss"]
    set_random_seed(2)
    b = loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_batch_normalization_moving_statistics_are_saved_and_loaded(tmp_path):
    x = _rng(23).standard_normal((32, 3)).astype(np.float32) * 4 + 2
    y = _rng(24).random((32, 1)).astype(np.float32)
    model = Sequential([BatchNormalization(input_shape=(3,)), Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    bn = model.layers[0]
    moving_mean = bn.moving_mean.value.copy()
    assert not np.allclose(moving_mean, 0)  # moved towards the data's mean (2)
    # two epochs of 4 batches: 8 updates of momentum 0.99 from 0
    assert np.all(np.abs(moving_mean - 2 * (1 - 0.99 ** 8)) < 0.1)
    summary_counts = (sum(v.value.size for v in model.trainable_weights),
                      sum(v.value.size for v in model.non_trainable_weights))
    assert summary_counts == (3 + 3 + 3 + 1, 6)
    for suffix in (".keras", ".npz", ".h5"):
        path = tmp_path / f"bn{suffix}"
        model.save(path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.layers[0].moving_mean.value, moving_mean)
        np.testing.assert_array_equal(loaded.layers[0].moving_variance.value,
                                      bn.moving_variance.value)
        assert [v.name for v in loaded.layers[0].non_trainable_weights] == [
            "moving_mean", "moving_variance"]
    weights = tmp_path / "bn.weights.h5"
    model.save_weights(weights)
    fresh = Sequential([BatchNormalization(input_shape=(3,)), Dense(1)])
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.layers[0].moving_mean.value, moving_mean)


def test_lambda_model_with_a_lambda_function_cannot_be_saved(tmp_path):
    model = Sequential([Lambda(lambda t: t * 2, input_shape=(3,)), Dense(1)])
    with pytest.raises(ValueError, match="only a function importable"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_masks_flow_through_the_new_layers_in_a_model():
    # Embedding(mask_zero) -> SpatialDropout1D / BatchNormalization / LayerNormalization /
    # TimeDistributed pass the mask on to the LSTM, which then skips the padded steps
    x = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    set_random_seed(3)
    layers = [Embedding(8, 4, mask_zero=True, input_length=5), SpatialDropout1D(0.2),
              BatchNormalization(), LayerNormalization(), TimeDistributed(Dense(4)), LSTM(3)]
    model = Sequential(layers)
    model.build((None, 5))
    short = np.array([[3, 4, 5]])
    y_full = model.predict(x, verbose=0)
    # the same model on the unpadded sequence gives the same output (masked steps skipped);
    # BatchNormalization in inference normalizes each step alone, so this holds exactly
    ops_model = Sequential([Embedding(8, 4, mask_zero=True), SpatialDropout1D(0.2),
                            BatchNormalization(), LayerNormalization(),
                            TimeDistributed(Dense(4)), LSTM(3)])
    ops_model.build((None, 3))
    ops_model.set_weights(model.get_weights())
    np.testing.assert_allclose(y_full[0], ops_model.predict(short, verbose=0)[0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*does not support masking")  # Permute after Masking
def test_the_new_layers_in_a_functional_model(tmp_path):
    from fastseq.layers import Concatenate
    from fastseq.models import Model

    rng = _rng(30)
    x = rng.standard_normal((8, 6, 4)).astype(np.float32)
    x[:3, 4:] = 0.0
    y = rng.random((8, 1)).astype(np.float32)
    set_random_seed(5)
    inputs = fastseq.Input(shape=(6, 4))
    h = Masking()(inputs)
    h = BatchNormalization()(h)
    h = TimeDistributed(Dense(3))(h)
    h = LayerNormalization()(h)
    h = SpatialDropout1D(0.2)(h)
    recurrent = LSTM(2)(h)
    pooled = Reshape((-1,))(AveragePooling1D(2)(Permute((1, 2))(h)))
    both = Concatenate()([recurrent, Dense(2)(pooled)])
    model = Model(inputs, Dense(1)(both))
    assert model.output_shape == (None, 1)
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    path = tmp_path / "functional.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- every backend
def _cuda_usable():
    from fastseq._device import cuda_status

    try:
        return cuda_status()[0]
    except Exception:
        return False


BACKENDS = ["reference", "cpu",
            pytest.param("cuda", marks=pytest.mark.skipif(not _cuda_usable(),
                                                          reason="numba.cuda unusable"))]


def _all_layers_model():
    return Sequential([
        Masking(input_shape=(6, 4)), SpatialDropout1D(0.25), BatchNormalization(),
        TimeDistributed(Dense(3)), LayerNormalization(), AveragePooling1D(2, padding="same"),
        Permute((2, 1)), Reshape((-1,)), Dense(2), RepeatVector(2), Flatten(),
        Dropout(0.1), Dense(1),
    ])


@pytest.mark.filterwarnings("ignore:.*does not support masking")  # Masking .. AveragePooling1D
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_new_layers_train_alike_on_every_backend(backend):
    rng = _rng(25)
    x = rng.standard_normal((8, 6, 4)).astype(np.float32)
    x[:2, 4:] = 0.0
    y = rng.random((8, 1)).astype(np.float32)
    set_random_seed(0)
    cpu = _all_layers_model()
    if backend == "cuda":
        with fastseq.device("cuda"):
            other = _all_layers_model()
    else:
        other = _all_layers_model()
        if backend == "reference":
            other._use_ops(get_ops("reference"))
    other.set_weights(cpu.get_weights())
    results = []
    for model in (cpu, other):
        model.compile("adam", "mse")
        set_random_seed(4)  # the same shuffles and dropout draws
        results.append(model.fit(x, y, epochs=2, batch_size=4, verbose=0).history["loss"])
    np.testing.assert_allclose(results[1], results[0], rtol=2e-5, atol=2e-6)
    for a, b in zip(cpu.get_weights(), other.get_weights()):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(other.predict(x, verbose=0), cpu.predict(x, verbose=0),
                               rtol=2e-5, atol=2e-6)


def test_float64_layers_compute_in_float64():
    x = _rng(26).standard_normal((2, 3, 4))
    for layer in (BatchNormalization(dtype="float64"), LayerNormalization(dtype="float64"),
                  AveragePooling1D(dtype="float64"), TimeDistributed(Dense(2, dtype="float64")),
                  Masking(dtype="float64"), Permute((2, 1), dtype="float64")):
        assert layer(x).dtype == np.float64, type(layer).__name__


def test_new_layers_are_layers_and_exported():
    import fastseq.layers as layers

    for name in ("SpatialDropout1D", "AveragePooling1D", "AvgPool1D", "TimeDistributed",
                 "Masking", "BatchNormalization", "LayerNormalization", "Reshape", "Permute",
                 "RepeatVector", "Lambda"):
        assert name in layers.__all__
        assert issubclass(getattr(layers, name), Layer)


# ---------------------------------------------------------------- against Keras itself
def test_against_keras_when_installed():
    keras = pytest.importorskip("keras", reason="keras is not installed (optional extra)")
    rng = _rng(27)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    cases = [
        (AveragePooling1D(3, strides=2, padding="same"),
         keras.layers.AveragePooling1D(3, strides=2, padding="same")),
        (Masking(0.0), keras.layers.Masking(0.0)),
        (LayerNormalization(), keras.layers.LayerNormalization()),
        (BatchNormalization(), keras.layers.BatchNormalization()),
        (Reshape((-1, 2)), keras.layers.Reshape((-1, 2))),
        (Permute((2, 1)), keras.layers.Permute((2, 1))),
        (TimeDistributed(Dense(3)), keras.layers.TimeDistributed(keras.layers.Dense(3))),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ours, theirs in cases:
            ours(x)
            theirs(x)
            weights = [rng.random(w.shape).astype(np.float32) + 0.5 for w in ours.get_weights()]
            ours.set_weights(weights)
            theirs.set_weights(weights)
            for training in (False, True):
                np.testing.assert_allclose(ours(x, training=training),
                                           keras.ops.convert_to_numpy(theirs(x, training=training)),
                                           rtol=1e-5, atol=1e-5,
                                           err_msg=f"{type(ours).__name__} {training}")
            for a, b in zip(ours.get_weights(), theirs.get_weights()):
                np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)
