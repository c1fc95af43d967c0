"""Bidirectional against its definition (Keras 3): a forward copy and a go_backwards copy of
the wrapped layer, the backward outputs flipped into time order, masked steps zeroed in
sequences, merged by concat / sum / mul / ave / None; finite-difference gradients for every
merge mode; Keras's names, weight order, config round trip and errors."""
import numpy as np
import pytest
from test_layers import F64, _numeric_grad, check_layer_gradients

from fastseq.layers import (
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    deserialize,
    serialize,
)
from fastseq.models import Sequential
from fastseq.utils import set_random_seed

RECURRENT = {"lstm": lambda **kw: LSTM(3, dtype=F64, bias_initializer="uniform", **kw)}
MASK = np.array([[True, True, True, True, True], [False, False, True, True, True],
                 [True, True, True, False, False]])


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((3, 5, 4))


def _manual(layer, x, mask):
    """The merged output from the two sub-layers run by hand."""
    y = layer.forward_layer.forward(x, mask=mask)
    y_rev = layer.backward_layer.forward(x, mask=mask)
    if layer.return_sequences:
        y_rev = y_rev[:, ::-1]
        if mask is not None:
            y, y_rev = y * mask[:, :, None], y_rev * mask[:, :, None]
    return {"concat": lambda: np.concatenate([y, y_rev], axis=-1), "sum": lambda: y + y_rev,
            "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev,
            None: lambda: [y, y_rev]}[layer.merge_mode]()


@pytest.mark.parametrize("kind", sorted(RECURRENT))
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_output_is_the_merged_directions(kind, merge_mode, return_sequences, masked):
    layer = Bidirectional(RECURRENT[kind](return_sequences=return_sequences),
                          merge_mode=merge_mode, dtype=F64)
    x, mask = _x(), (MASK if masked else None)
    got = layer(x, mask=mask)
    want = _manual(layer, x, mask)
    if merge_mode is None:
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got.shape[1:] == layer.compute_output_shape((None,) + x.shape[1:])[1:]
    if masked and return_sequences:  # Keras's zero_output_for_mask
        for part in (got if merge_mode is None else [got]):
            assert not part[1, :2].any()


@pytest.mark.parametrize("kind", sorted(RECURRENT))
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_finite_differences(kind, merge_mode, return_sequences, masked):
    layer = Bidirectional(RECURRENT[kind](return_sequences=return_sequences),
                          merge_mode=merge_mode, dtype=F64)
    check_layer_gradients(layer, _x(1), mask=MASK if masked else None)


def test_names_weights_and_config_follow_keras():
    set_random_seed(0)
    layer = Bidirectional(LSTM(3, name="lstm"))
    layer._build_for((None, 5, 4))
    assert layer.name.startswith("bidirectional")
    assert (layer.forward_layer.name, layer.backward_layer.name) == ("forward_lstm",
                                                                     "backward_lstm")
    assert (layer.forward_layer.go_backwards, layer.backward_layer.go_backwards) == (False,
                                                                                     True)
    weights = layer.get_weights()
    assert [w.shape for w in weights] == [(4, 12), (3, 12), (12,)] * 2
    assert layer.count_params() == 2 * (48 + 36 + 12)
    again = deserialize(serialize(layer))
    again._build_for((None, 5, 4))
    again.set_weights(weights)
    x = _x(2).astype(np.float32)
    np.testing.assert_array_equal(again(x), layer(x))
    assert again.backward_layer.name == "backward_lstm" and again.merge_mode == "concat"


def test_return_state_lists_forward_then_backward_states():
    layer = Bidirectional(LSTM(3, return_state=True, return_sequences=True, dtype=F64))
    out, h_f, c_f, h_b, c_b = layer(_x())
    assert out.shape == (3, 5, 6)
    _, h, c = layer.forward_layer(_x())
    np.testing.assert_allclose(h_f, h)
    np.testing.assert_allclose(c_f, c)
    _, h, _ = layer.backward_layer(_x())
    np.testing.assert_allclose(h_b, h)


def test_a_custom_backward_layer_and_weights_argument():
    backward = LSTM(3, go_backwards=True, name="mine")
    layer = Bidirectional(LSTM(3), backward_layer=backward)
    assert layer.backward_layer is backward
    with pytest.raises(ValueError, match="different `go_backwards`"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3))
    with pytest.raises(ValueError, match="return_sequences"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3, go_backwards=True, return_sequences=True))
    with pytest.raises(ValueError, match="Invalid merge mode"):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="Layer instance"):
        Bidirectional("lstm")
    source = Bidirectional(LSTM(2))
    source._build_for((None, 3, 2))
    values = [np.full(w.shape, i, np.float32) for i, w in enumerate(source.get_weights())]
    made = Bidirectional(LSTM(2), weights=values)
    made._build_for((None, 3, 2))
    for got, want in zip(made.get_weights(), values):  # first half forward, then backward
        np.testing.assert_array_equal(got, want)


def test_stacked_bidirectional_model_gradients_and_fit():
    model = Sequential([
        Embedding(9, 3, mask_zero=True, input_length=5, dtype=F64),
        Bidirectional(LSTM(3, return_sequences=True, dtype=F64), dtype=F64),
        Bidirectional(LSTM(2, dtype=F64), merge_mode="sum", dtype=F64),
        Dense(1, dtype=F64),
    ])
    x = np.array([[0, 0, 3, 4, 8], [5, 1, 2, 6, 7], [0, 0, 0, 0, 2]])
    model.build((None, 5))
    r = np.random.default_rng(4).standard_normal((3, 1))

    def loss():
        (out,), _ = model._forward([x], training=True)
        return float(np.sum(out * r))

    model._forward([x], training=True)
    model._backward([r.copy()], [False])
    for var in model.trainable_weights[1:]:
        got = var.grad
        np.testing.assert_allclose(got, _numeric_grad(loss, var.value), rtol=1e-5, atol=1e-7,
                                   err_msg=var.name)
    names = [layer.name for layer in model.layers]
    assert names[1].startswith("bidirectional") and names[2].startswith("bidirectional")
    model.compile("adam", "mse")
    history = model.fit(x, np.ones((3, 1)), epochs=2, verbose=0).history
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


def test_global_pooling_after_bidirectional_sequences_sees_the_mask():
    model = Sequential([Embedding(9, 3, mask_zero=True, input_length=5),
                        Bidirectional(LSTM(2, return_sequences=True)),
                        GlobalAveragePooling1D()])
    x = np.array([[0, 0, 3, 4, 8]])
    want = model.layers[1](model.layers[0](x), mask=x != 0)[0, 2:].mean(axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0)[0], want, rtol=1e-6)


def _bidirectional_model():
    return Sequential([Embedding(50, 4, input_length=6),
                       Bidirectional(LSTM(3, return_sequences=True)),
                       Bidirectional(LSTM(2), merge_mode="ave"), Dense(1, activation="sigmoid")])


@pytest.mark.parametrize("name", ["w.npz", "w.h5", "w.weights.h5"])
def test_weights_files_round_trip(tmp_path, name):
    pytest.importorskip("h5py")
    set_random_seed(0)
    model, other = _bidirectional_model(), _bidirectional_model()
    model.save_weights(str(tmp_path / name))
    other.load_weights(str(tmp_path / name))
    for got, want in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_keras_layouts_of_the_weights(tmp_path):
    h5py = pytest.importorskip("h5py")
    from fastseq.backend import clear_session

    clear_session()  # Keras's automatic names: bidirectional, bidirectional_1, lstm...
    model = _bidirectional_model()
    model.save_weights(str(tmp_path / "k2.h5"))
    model.save_weights(str(tmp_path / "k3.weights.h5"))
    with h5py.File(tmp_path / "k2.h5") as f:  # Keras 2: names under the wrapper's
        names = [n.decode() for n in f["bidirectional"].attrs["weight_names"]]
    assert names[0] == "bidirectional/forward_lstm/lstm_cell/kernel:0"
    assert names[3] == "bidirectional/backward_lstm/lstm_cell/kernel:0"
    with h5py.File(tmp_path / "k3.weights.h5") as f:  # Keras 3: attribute paths
        fwd = f["layers/bidirectional/forward_layer/cell/vars/0"][()]
        bwd = f["layers/bidirectional/backward_layer/cell/vars/0"][()]
    np.testing.assert_array_equal(fwd, model.layers[1].forward_layer.kernel.value)
    np.testing.assert_array_equal(bwd, model.layers[1].backward_layer.kernel.value)


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_whole_model_files_keep_the_wrapper_and_optimizer_state(tmp_path, name):
    pytest.importorskip("h5py")
    from fastseq.models import load_model

    model = _bidirectional_model()
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).integers(0, 50, (8, 6))
    y = np.random.default_rng(1).integers(0, 2, 8)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(str(tmp_path / name))
    loaded = load_model(str(tmp_path / name))
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Embedding", "Bidirectional", "Bidirectional", "Dense"]
    assert loaded.layers[2].merge_mode == "ave" and loaded.optimizer.iterations == 1
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
