"""The GRU and SimpleRNN layers (and LSTM with recurrent_dropout) over their kernels:
finite-difference gradients through the layer (masks, go_backwards, return_sequences, both
GRU bias layouts, each SimpleRNN activation, dropout and recurrent_dropout), Keras's weight
shapes, return_state and initial_state, dropout masks drawn per gate and fixed over the
steps, nothing dropped at inference, config round trips and clear errors."""
import numpy as np
import pytest
from test_layers import F64, check_layer_gradients

from fastseq import kernels
from fastseq.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    SimpleRNN,
    deserialize,
    serialize,
)
from fastseq.models import Sequential
from fastseq.utils import set_random_seed

MASK = np.array([[True, True, False, True, True], [False, False, True, True, True],
                 [True, True, True, False, False]])


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((3, 5, 4))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gru_gradients(reset_after, return_sequences, go_backwards, masked):
    layer = GRU(3, reset_after=reset_after, return_sequences=return_sequences,
                go_backwards=go_backwards, dtype=F64, bias_initializer="uniform")
    check_layer_gradients(layer, _x(), mask=MASK if masked else None)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_simple_rnn_gradients(activation, return_sequences, masked):
    layer = SimpleRNN(3, activation=activation, return_sequences=return_sequences,
                      go_backwards=masked, dtype=F64, bias_initializer="uniform")
    check_layer_gradients(layer, _x(1), mask=MASK if masked else None)


LAYERS = {
    "lstm": lambda **kw: LSTM(3, dtype=F64, **kw),
    "gru": lambda **kw: GRU(3, dtype=F64, **kw),
    "gru_before": lambda **kw: GRU(3, dtype=F64, reset_after=False, **kw),
    "simple_rnn": lambda **kw: SimpleRNN(3, dtype=F64, **kw),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_recurrent_dropout_gradients(kind, dropout):
    layer = LAYERS[kind](dropout=dropout, recurrent_dropout=0.4, return_sequences=True)
    check_layer_gradients(layer, _x(2), mask=MASK)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_recurrent_dropout_masks_are_per_gate_fixed_and_off_at_inference(kind, monkeypatch):
    layer = LAYERS[kind](dropout=0.25, recurrent_dropout=0.5, return_sequences=True)
    x = _x(3)
    seen = {}
    name = {"lstm": "lstm", "gru": "gru", "gru_before": "gru", "simple_rnn": "simple_rnn"}[kind]
    kernel = getattr(layer.ops, f"{name}_forward")

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(layer.ops, f"{name}_forward", spy)
    set_random_seed(0)
    layer(x, training=True)
    gates = layer._gates
    if kind == "simple_rnn":
        inputs, recurrent = seen["input_mask"][None], seen["recurrent_mask"][None]
    else:
        inputs, recurrent = seen["input_masks"], seen["recurrent_masks"]
    assert inputs.shape == (gates, 3, 4) and recurrent.shape == (gates, 3, 3)
    assert set(np.unique(inputs)) <= {0.0, 1 / 0.75}
    assert set(np.unique(recurrent)) <= {0.0, 2.0}
    if gates > 1:  # one mask per gate, as Keras's implementation 1
        assert any(not np.array_equal(recurrent[0], recurrent[g]) for g in range(1, gates))
    seen.clear()
    layer(x)  # inference: nothing dropped
    for key in ("input_masks", "recurrent_masks", "input_mask", "recurrent_mask"):
        assert seen.get(key) is None
    np.testing.assert_array_equal(layer(x), layer(x))


def test_weights_follow_keras_shapes_and_names():
    gru = GRU(4)
    gru._build_for((None, 7, 5))
    assert [(w.name, w.shape) for w in gru.weights] == [
        ("kernel", (5, 12)), ("recurrent_kernel", (4, 12)), ("bias", (2, 12))]
    gru = GRU(4, reset_after=False)
    gru._build_for((None, 7, 5))
    assert gru.bias.shape == (12,)
    rnn = SimpleRNN(4, use_bias=False)
    rnn._build_for((None, 7, 5))
    assert [(w.name, w.shape) for w in rnn.weights] == [("kernel", (5, 4)),
                                                       ("recurrent_kernel", (4, 4))]


def test_gru_layer_equals_its_kernel():
    layer = GRU(3, return_sequences=True, go_backwards=True, dtype=F64,
                bias_initializer="uniform")
    x = _x(4)
    y = layer(x, mask=MASK)
    outputs, _, _ = kernels.gru_forward(x, *[w.value for w in layer.weights], mask=MASK,
                                        go_backwards=True, training=False)
    np.testing.assert_array_equal(y, outputs)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_return_state_and_initial_state(kind):
    layer = LAYERS[kind](return_state=True, return_sequences=True)
    x = _x(5)
    out, *states = layer(x)
    assert len(states) == (2 if kind == "lstm" else 1)
    np.testing.assert_array_equal(out[:, -1], states[0])
    start = [np.full((3, 3), 0.5) for _ in states]
    out2, *states2 = layer(x, initial_state=start)
    assert not np.allclose(out2, out)
    step_by_step = layer(x[:, :2], initial_state=start)[1:]
    resumed = layer(x[:, 2:], initial_state=step_by_step)
    np.testing.assert_allclose(resumed[0], out2[:, 2:], rtol=1e-12)
    with pytest.raises(ValueError, match="initial state"):
        layer(x, initial_state=[np.zeros((3, 3))] * 3)
    with pytest.raises(ValueError, match=r"\(batch, units\)"):
        layer(x, initial_state=[np.zeros((2, 3))] * len(states))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_config_round_trip(kind):
    layer = LAYERS[kind](dropout=0.1, recurrent_dropout=0.2, go_backwards=True)
    again = deserialize(serialize(layer))
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()


def test_unsupported_options_are_clear():
    with pytest.raises(NotImplementedError, match="activation"):
        GRU(3, activation="relu")
    with pytest.raises(NotImplementedError, match="activation"):
        SimpleRNN(3, activation="softmax")
    with pytest.raises(ValueError, match="recurrent_dropout must be in"):
        GRU(3, recurrent_dropout=1.0)
    with pytest.raises(NotImplementedError, match="stateful"):
        SimpleRNN(3, stateful=True)


@pytest.mark.parametrize("kind", ["gru", "simple_rnn"])
def test_models_with_the_new_layers_fit(kind):
    layer = {"gru": lambda: Bidirectional(GRU(4, recurrent_dropout=0.2)),
             "simple_rnn": lambda: SimpleRNN(4, dropout=0.2)}[kind]
    model = Sequential([Embedding(20, 3, mask_zero=True, input_length=6), layer(),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, (16, 6))
    y = (x.sum(axis=1) % 2).astype(np.float32)
    before = model.get_weights()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
