"""Layers whose dtype differs from their neighbours': as Keras, each layer computes in its own
dtype (its inputs are cast to it) and its input gradient goes back in the dtype of the layer
below. Every layer with float32 and float64 neighbours in both orders fits and predicts, and
matches the same model computed all in float64 within float32 rounding."""
import numpy as np
import pytest

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
    MaxPooling1D,
)
from fastseq.models import Sequential
from fastseq.utils import set_random_seed

VOCAB, STEPS = 12, 6

# (name, factory(dtype)): each middle layer takes (B, STEPS', features) and keeps 3-D
MIDDLE = [
    ("lstm", lambda dt: LSTM(3, return_sequences=True, dtype=dt)),
    ("conv1d", lambda dt: Conv1D(3, 2, padding="same", activation="relu", dtype=dt)),
    ("max_pooling1d", lambda dt: MaxPooling1D(2, padding="same", dtype=dt)),
    ("dense", lambda dt: Dense(3, activation="tanh", dtype=dt)),
    ("dropout", lambda dt: Dropout(0.2, dtype=dt)),  # draws its mask in its own dtype
    ("activation", lambda dt: Activation("sigmoid", dtype=dt)),
]
HEADS = [
    ("global_average", lambda dt: [GlobalAveragePooling1D(dtype=dt), Dense(1, dtype=dt)]),
    ("global_max", lambda dt: [GlobalMaxPooling1D(dtype=dt), Dense(1, dtype=dt)]),
    ("flatten", lambda dt: [Flatten(dtype=dt), Dense(1, dtype=dt)]),
    ("lstm", lambda dt: [LSTM(2, dtype=dt), Dense(1, dtype=dt)]),
]
ORDERS = [("float32", "float64"), ("float64", "float32")]


def _model(middle, head, dtypes):
    low, high = dtypes
    return Sequential([Embedding(VOCAB, 4, input_length=STEPS, dtype=low), middle(high)]
                      + head(low))


def _data():
    rng = np.random.default_rng(0)
    return rng.integers(0, VOCAB, (6, STEPS)), rng.standard_normal((6, 1)).astype(np.float32)


@pytest.mark.parametrize("dtypes", ORDERS, ids=["32-64-32", "64-32-64"])
@pytest.mark.parametrize("middle", [m for _, m in MIDDLE], ids=[n for n, _ in MIDDLE])
@pytest.mark.parametrize("head", [h for _, h in HEADS], ids=[n for n, _ in HEADS])
def test_mixed_neighbours_fit_and_match_float64(middle, head, dtypes):
    x, y = _data()
    set_random_seed(0)
    mixed = _model(middle, head, dtypes)
    wide = _model(middle, head, ("float64", "float64"))
    wide.set_weights(mixed.get_weights())
    for model in (mixed, wide):
        model.compile("sgd", "mse")
    assert mixed.predict(x, verbose=0).dtype == np.dtype(dtypes[0])  # the last layer's
    np.testing.assert_allclose(mixed.predict(x, verbose=0), wide.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
    before = mixed.get_weights()
    histories = []
    for model in (mixed, wide):
        set_random_seed(1)
        histories.append(model.fit(x, y, batch_size=3, epochs=2, verbose=0).history["loss"])
    assert np.isfinite(histories[0]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, mixed.get_weights()))
    if isinstance(mixed.layers[1], Dropout):
        return  # a float32 and a float64 Dropout draw different masks from one seed
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4)
    for got, want in zip(mixed.get_weights(), wide.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_a_lone_layer_casts_its_input_to_its_dtype():
    layer = Dense(2, dtype="float64")
    y = layer(np.ones((3, 4), np.float32))
    assert y.dtype == np.float64
    lstm = LSTM(2)
    assert lstm(np.ones((1, 3, 2), np.float64)).dtype == np.float32
