"""The functional API: Input / InputLayer, Model(inputs, outputs) over a graph of layer
calls, the merge layers, several inputs and outputs, masks through the graph, config,
summary and saving; gradients of whole graphs by finite differences."""
import numpy as np
import pytest
from test_layers import _numeric_grad  # central differences, shared

from fastseq import Input, Model
from fastseq.layers import (
    LSTM,
    Add,
    Average,
    Concatenate,
    Dense,
    Dot,
    Embedding,
    GlobalAveragePooling1D,
    InputLayer,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    concatenate,
    reset_name_uids,
)
from fastseq.losses import BinaryCrossentropy, MeanSquaredError
from fastseq.models import Sequential, load_model, model_from_json
from fastseq.variables import SparseGrad

F64 = "float64"


def two_input_model(dtype="float32"):
    """Review text + rating -> sentiment (the issue's example shape)."""
    reset_name_uids()
    text = Input(shape=(6,), dtype="int64", name="text")
    rating = Input(shape=(1,), name="rating")
    h = LSTM(4, dtype=dtype)(Embedding(20, 3, mask_zero=True, dtype=dtype)(text))
    r = Dense(2, activation="tanh", dtype=dtype)(rating)
    out = Dense(1, activation="sigmoid", dtype=dtype)(concatenate([h, r], dtype=dtype))
    return Model([text, rating], out, name="review_model")


def two_input_data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.integers(0, 20, (n, 6))
    text[:, :2] = 0  # padding, masked
    rating = rng.random((n, 1))
    y = (rating[:, 0] > 0.5).astype(np.float32)[:, None]
    return text, rating, y


# ---------------------------------------------------------------------------- symbols
def test_input_is_a_symbolic_tensor_with_keras_shape_and_dtype():
    x = Input(shape=(5, 3), name="seq")
    assert x.shape == (None, 5, 3) and x.dtype == "float32" and x.name == "seq"
    assert Input(shape=(4,), batch_size=8, dtype="int32").shape == (8, 4)
    y = Dense(2)(x)
    assert y.shape == (None, 5, 2)
    layer, node_index, tensor_index = y._keras_history
    assert isinstance(layer, Dense) and node_index == 0 and tensor_index == 0
    with pytest.raises(TypeError, match="symbolic tensor"):
        np.asarray(x)
    with pytest.raises(ValueError, match="shape"):
        Input()


def test_sequential_takes_input_or_input_layer_first():
    for first in (Input(shape=(4,)), InputLayer(shape=(4,))):
        model = Sequential([first, Dense(3), Dense(1)])
        assert model.built and model.input_shape == (None, 4) and model.output_shape == (None, 1)
        assert len(model.layers) == 2  # the InputLayer is not a layer of the stack (Keras 3)
        config = model.get_config()
        assert config["layers"][0]["class_name"] == "InputLayer"
        clone = Sequential.from_config(config)
        assert clone.built and clone.input_shape == (None, 4)
    with pytest.raises(ValueError, match="first item"):
        Sequential([Dense(2, input_shape=(3,)), InputLayer(shape=(3,))])
    with pytest.raises(ValueError, match="functional Model"):
        Sequential([Input(shape=(3,)), Add()])


# ---------------------------------------------------------------------------- graphs
def test_functional_model_equals_its_layers_called_by_hand():
    model = two_input_model()
    text, rating, _ = two_input_data()
    emb, lstm, dense_r, concat, head = (model.get_layer(n) for n in (
        "embedding", "lstm", "dense", "concatenate", "dense_1"))
    mask = text != 0
    h = lstm(emb(text), mask=mask)
    want = head(concat([h, dense_r(rating)]))
    np.testing.assert_allclose(model.predict([text, rating]), want, rtol=1e-6)
    np.testing.assert_allclose(model.predict({"text": text, "rating": rating}), want, rtol=1e-6)
    np.testing.assert_allclose(model([text, rating]), want, rtol=1e-6)
    assert model.input_names == ["text", "rating"] and model.output_names == ["dense_1"]
    assert [l.name for l in model.layers] == [
        "text", "embedding", "rating", "lstm", "dense", "concatenate", "dense_1"]


def test_functional_fit_evaluate_and_the_one_loop_with_sequential():
    """A one-input functional chain trains exactly as the same Sequential model."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, 20, (24, 6))
    y = (x[:, 0] > 10).astype(np.float32)
    inp = Input(shape=(6,), dtype="int64")
    out = Dense(1, activation="sigmoid")(LSTM(4)(Embedding(20, 3)(inp)))
    functional = Model(inp, out)
    sequential = Sequential([Embedding(20, 3, input_length=6), LSTM(4),
                             Dense(1, activation="sigmoid")])
    sequential.set_weights(functional.get_weights())
    for model in (functional, sequential):
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    hf = functional.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    hs = sequential.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert hf.history == hs.history
    for a, b in zip(functional.get_weights(), sequential.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert functional.evaluate(x, y, verbose=0) == sequential.evaluate(x, y, verbose=0)


def test_two_input_model_trains():
    model = two_input_model()
    text, rating, y = two_input_data(64)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    before = model.evaluate([text, rating], y, verbose=0)[0]
    history = model.fit([text, rating], y, epochs=8, batch_size=16, verbose=0,
                        validation_data=([text, rating], y))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < before


def _graph_gradients(model, xs, seed=0):
    """Backward through the graph (every trainable weight) against finite differences
    of sum(output * R)."""
    rng = np.random.default_rng(seed)
    (y,), _ = model._forward(xs, training=True)
    r = rng.standard_normal(y.shape)

    def loss():
        (out,), _ = model._forward(xs, training=False)
        return float(np.sum(out * r))

    model._forward(xs, training=True)
    model._backward([r.copy()], [False])
    grads = [g.to_dense(v.shape) if isinstance(g, SparseGrad) else g
             for v, g in ((v, v.grad) for v in model.trainable_weights)]
    for var, got in zip(model.trainable_weights, grads):
        assert got is not None, var.name
        np.testing.assert_allclose(got, _numeric_grad(loss, var.value), rtol=1e-5, atol=1e-7,
                                   err_msg=var.name)


@pytest.mark.parametrize("merge", [Add, Subtract, Multiply, Average, Maximum, Minimum,
                                   Concatenate])
def test_merge_graph_gradients(merge):
    """Two branches from one input, merged; the Dense before the branches gets the sum of
    both branches' gradients."""
    x_in = Input(shape=(4,), dtype=F64)
    trunk = Dense(3, activation="tanh", dtype=F64)(x_in)
    a = Dense(3, dtype=F64)(trunk)
    b = Dense(3, activation="sigmoid", dtype=F64)(trunk)
    merged = merge(dtype=F64)([a, b])
    model = Model(x_in, Dense(2, dtype=F64)(merged))
    x = np.random.default_rng(2).standard_normal((5, 4))
    _graph_gradients(model, [x])


def test_shared_layer_sums_the_gradients_of_its_calls():
    """One Embedding + LSTM encoder applied to two texts (a siamese model), their dot
    product by Dot."""
    left = Input(shape=(5,), dtype="int64")
    right = Input(shape=(5,), dtype="int64")
    embed = Embedding(12, 3, dtype=F64)
    encode = LSTM(3, dtype=F64)
    similarity = Dot(axes=1, dtype=F64)([encode(embed(left)),
                                                          encode(embed(right))])
    model = Model([left, right], Dense(1, dtype=F64)(similarity))
    rng = np.random.default_rng(3)
    xs = [rng.integers(0, 12, (4, 5)), rng.integers(0, 12, (4, 5))]
    assert len(embed._inbound_nodes) == 2
    _graph_gradients(model, xs)


def test_cosine_similarity_gradients():
    x_in = Input(shape=(4,), dtype=F64)
    a = Dense(3, dtype=F64, bias_initializer="ones")(x_in)
    b = Dense(3, dtype=F64, bias_initializer="ones")(x_in)
    model = Model(x_in, Dense(1, dtype=F64)(Dot(axes=1, normalize=True, dtype=F64)([a, b])))
    _graph_gradients(model, [np.random.default_rng(8).standard_normal((5, 4))])


def test_dot_of_sequences_is_batch_dot():
    a = Input(shape=(3, 4), dtype=F64)
    b = Input(shape=(5, 4), dtype=F64)
    scores = Dot(axes=2, dtype=F64)([a, b])
    assert scores.shape == (None, 3, 5)
    model = Model([a, b], Dense(1, dtype=F64)(GlobalAveragePooling1D(dtype=F64)(scores)))
    rng = np.random.default_rng(4)
    xa, xb = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    dot = Dot(axes=2, dtype=F64)
    np.testing.assert_allclose(dot([xa, xb]), np.einsum("bik,bjk->bij", xa, xb), rtol=1e-12)
    _graph_gradients(model, [xa, xb])


def test_merge_layers_compute_keras_values_and_shapes():
    rng = np.random.default_rng(5)
    a, b, c = (rng.standard_normal((2, 3)) for _ in range(3))
    assert np.allclose(Add()([a, b, c]), a + b + c)
    assert np.allclose(Subtract()([a, b]), a - b)
    assert np.allclose(Multiply()([a, b, c]), a * b * c)
    assert np.allclose(Average()([a, b]), (a + b) / 2)
    assert np.allclose(Maximum()([a, b, c]), np.maximum(np.maximum(a, b), c))
    assert np.allclose(Minimum()([a, b]), np.minimum(a, b))
    assert np.allclose(Concatenate(axis=1)([a, b]), np.concatenate([a, b], axis=1))
    assert np.allclose(Dot(axes=1)([a, b]), np.sum(a * b, axis=1, keepdims=True))
    cos = Dot(axes=1, normalize=True)([a, b])
    want = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(cos[:, 0], want, rtol=1e-5)
    # broadcasting of a size-1 axis, as Keras's element-wise merges
    assert np.allclose(Add()([a, a[:, :1]]), a + a[:, :1])
    assert Add()([Input(shape=(3,)), Input(shape=(1,))]).shape == (None, 3)


def test_merge_errors_name_the_shapes():
    with pytest.raises(ValueError, match="cannot be merged"):
        Add()([Input(shape=(3,)), Input(shape=(4,))])
    with pytest.raises(ValueError, match="matching shapes except for the concatenation axis"):
        Concatenate(axis=-1)([Input(shape=(2, 3)), Input(shape=(4, 3))])
    with pytest.raises(ValueError, match="exactly 2"):
        Subtract()([Input(shape=(3,))] * 3)
    with pytest.raises(ValueError, match="at least 2"):
        Add()([Input(shape=(3,))])
    with pytest.raises(ValueError, match="list of inputs"):
        Add()(Input(shape=(3,)))
    with pytest.raises(ValueError, match="axis values 3"):
        Dot(axes=1)([Input(shape=(3,)), Input(shape=(4,))])


def test_masks_flow_through_the_graph():
    """Keras: Embedding(mask_zero) masks its branch; Concatenate on the feature axis ANDs
    the two masks; an LSTM after it skips the steps either branch masks."""
    a = Input(shape=(4,), dtype="int64")
    b = Input(shape=(4,), dtype="int64")
    ea = Embedding(10, 2, mask_zero=True)
    eb = Embedding(10, 2, mask_zero=True)
    merged = Concatenate()([ea(a), eb(b)])
    lstm = LSTM(3)
    model = Model([a, b], lstm(merged))
    xa = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    xb = np.array([[1, 1, 0, 3], [4, 5, 6, 0]])
    mask = (xa != 0) & (xb != 0)
    joined = np.concatenate([ea(xa), eb(xb)], axis=-1)
    np.testing.assert_allclose(model.predict([xa, xb]), lstm(joined, mask=mask), rtol=1e-6)
    # on the time axis, the masks are joined along time
    concat_time = Concatenate(axis=1)
    got = concat_time.compute_mask([ea(xa), eb(xb)], [xa != 0, None])
    np.testing.assert_array_equal(got, np.concatenate([xa != 0, np.ones((2, 4), bool)], 1))


def test_multi_output_losses_weights_and_metric_names():
    inp = Input(shape=(3,), dtype=F64)
    trunk = Dense(4, activation="tanh", dtype=F64)(inp)
    cls = Dense(1, activation="sigmoid", name="cls", dtype=F64)(trunk)
    reg = Dense(2, name="reg", dtype=F64)(trunk)
    model = Model(inp, [cls, reg])
    model.compile("sgd", loss={"cls": "binary_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 3))
    y_cls = rng.integers(0, 2, (8, 1)).astype(float)
    y_reg = rng.standard_normal((8, 2))
    p_cls, p_reg = model.predict(x)
    want_cls = BinaryCrossentropy()(y_cls, p_cls)
    want_reg = MeanSquaredError()(y_reg, p_reg)
    logs = model.test_on_batch(x, [y_cls, y_reg], return_dict=True)
    assert list(logs) == ["loss", "cls_loss", "reg_loss", "cls_accuracy"]
    np.testing.assert_allclose(logs["cls_loss"], want_cls, rtol=1e-6)
    np.testing.assert_allclose(logs["reg_loss"], want_reg, rtol=1e-6)
    np.testing.assert_allclose(logs["loss"], want_cls + 0.5 * want_reg, rtol=1e-6)
    assert model.metrics_names == ["loss", "cls_loss", "reg_loss", "cls_accuracy"]
    # the gradient of the weighted sum, by finite differences
    model.compile("sgd", loss=["binary_crossentropy", "mse"], loss_weights=[1.0, 0.5])

    def total():
        return model.test_on_batch(x, [y_cls, y_reg])[0]

    for var in model.trainable_weights:
        var.grad = None
    preds, masks = model._forward([x], training=True)
    _, _, grads, fused = model._losses_of([y_cls, y_reg], preds, masks, [None, None], True)
    model._backward(grads, fused)
    for var in model.trainable_weights:
        np.testing.assert_allclose(var.grad, _numeric_grad(total, var.value), rtol=1e-5,
                                   atol=1e-8, err_msg=var.name)
    history = model.fit(x, {"cls": y_cls, "reg": y_reg}, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "cls_loss", "reg_loss"}


def test_multi_output_compile_errors():
    inp = Input(shape=(3,))
    model = Model(inp, [Dense(1, name="a")(inp), Dense(1, name="b")(inp)])
    with pytest.raises(ValueError, match="not output names"):
        model.compile("sgd", loss={"c": "mse"})
    with pytest.raises(ValueError, match="list of 1 entries"):
        model.compile("sgd", loss=["mse"])
    with pytest.raises(ValueError, match="one list per output|list of 2 lists"):
        model.compile("sgd", loss="mse", metrics=["mae"])
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0)


# ---------------------------------------------------------------------------- errors
def test_disconnected_graph_is_refused():
    a = Input(shape=(3,), name="a")
    b = Input(shape=(3,), name="b")
    out = Add()([Dense(2)(a), Dense(2)(b)])
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(a, out)
    with pytest.raises(ValueError, match="must come from fastseq.Input"):
        Model(Dense(2)(a), out)
    with pytest.raises(TypeError, match="Model\\(inputs, outputs\\)"):
        Model()


def test_bad_inputs_name_the_input():
    model = two_input_model()
    text, rating, y = two_input_data()
    model.compile("adam", "binary_crossentropy")
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="has 2 inputs"):
        model.fit(text, y, verbose=0)
    with pytest.raises(ValueError, match=r"missing \['rating'\]"):
        model.predict({"text": text})
    with pytest.raises(ValueError, match="rating.*incompatible|incompatible.*rating"):
        model.fit([text, np.zeros((16, 2))], y, verbose=0)
    with pytest.raises(ValueError, match="cardinality"):
        model.fit([text, rating[:5]], y, verbose=0)
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- config
def test_config_round_trip_and_keras3_layout(tmp_path):
    model = two_input_model()
    text, rating, y = two_input_data()
    config = model.get_config()
    concat = next(l for l in config["layers"] if l["name"] == "concatenate")
    (node,) = concat["inbound_nodes"]
    histories = [t["config"]["keras_history"] for t in node["args"][0]]
    assert histories == [["lstm", 0, 0], ["dense", 0, 0]]
    assert config["input_layers"] == [["text", 0, 0], ["rating", 0, 0]]
    assert config["output_layers"] == [["dense_1", 0, 0]]
    clone = Model.from_config(config)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict([text, rating]), model.predict([text, rating]))
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(again.predict([text, rating]), model.predict([text, rating]))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit([text, rating], y, epochs=1, verbose=0)
    path = tmp_path / "two_inputs.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict([text, rating]), model.predict([text, rating]))
    loaded.fit([text, rating], y, epochs=1, verbose=0)


def test_keras2_functional_config_loads():
    """Keras 2 wrote inbound_nodes as [[[name, node_index, tensor_index, kwargs], ...]]."""
    config = {
        "name": "model",
        "layers": [
            {"class_name": "InputLayer", "name": "in",
             "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "in"},
             "inbound_nodes": []},
            {"class_name": "Dense", "name": "d1",
             "config": {"name": "d1", "units": 2}, "inbound_nodes": [[["in", 0, 0, {}]]]},
            {"class_name": "Dense", "name": "d2",
             "config": {"name": "d2", "units": 2}, "inbound_nodes": [[["in", 0, 0, {}]]]},
            {"class_name": "Add", "name": "sum", "config": {"name": "sum"},
             "inbound_nodes": [[["d1", 0, 0, {}], ["d2", 0, 0, {}]]]},
        ],
        "input_layers": [["in", 0, 0]],
        "output_layers": [["sum", 0, 0]],
    }
    model = model_from_json('{"class_name": "Functional", "config": %s}'
                            % __import__("json").dumps(config))
    assert model.output_shape == (None, 2)
    x = np.ones((2, 3), np.float32)
    d1, d2 = model.get_layer("d1"), model.get_layer("d2")
    np.testing.assert_allclose(model.predict(x), d1(x) + d2(x), rtol=1e-6)


def test_summary_has_the_connected_to_column():
    lines = []
    two_input_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text
    assert "lstm[0][0]" in text and "dense[0][0]" in text and "text[0][0]" in text
    assert "Total params: 199" in text


def test_a_model_is_a_layer_of_another_model():
    """Keras: a functional model called on tensors (a shared encoder) or added to a
    Sequential is a layer of the outer model; gradients reach its weights from both calls."""
    reset_name_uids()
    enc_in = Input(shape=(5,), dtype="int64")
    encoder = Model(enc_in, LSTM(3, dtype=F64)(Embedding(12, 3, dtype=F64)(enc_in)),
                    name="encoder")
    left, right = Input(shape=(5,), dtype="int64"), Input(shape=(5,), dtype="int64")
    joined = Concatenate(dtype=F64)([encoder(left), encoder(right)])
    model = Model([left, right], Dense(1, dtype=F64)(joined))
    rng = np.random.default_rng(9)
    xs = [rng.integers(0, 12, (4, 5)), rng.integers(0, 12, (4, 5))]
    assert [l.name for l in model.layers][2] == "encoder"
    assert model.count_params() == encoder.count_params() + 7
    _graph_gradients(model, xs)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("encoder (Functional)" in line for line in lines)
    clone = model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(xs), model.predict(xs))
    stacked = Sequential([encoder, Dense(1, dtype=F64)])
    stacked.compile("sgd", "mse")
    stacked.fit(xs[0], np.ones((4, 1)), epochs=1, verbose=0)
    assert stacked.output_shape == (None, 1)


def test_sequential_config_with_an_input_layer_builds_flatten_dense():
    """The InputLayer's shape is known before Flatten -> Dense is added (Keras 2 and 3
    configs)."""
    from fastseq.layers import Flatten

    for key in ("batch_shape", "batch_input_shape"):
        config = {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {key: [None, 4, 3], "dtype": "float32",
                                                    "name": "inp"}},
            {"class_name": "Flatten", "config": {"name": "f"}},
            {"class_name": "Dense", "config": {"name": "d", "units": 2}}]}
        model = Sequential.from_config(config)
        assert model.built and model.output_shape == (None, 2)
        assert model.get_config()["layers"][0]["class_name"] == "InputLayer"
        assert isinstance(model.layers[0], Flatten)


def test_the_models_training_flag_overrides_a_recorded_one():
    """Keras 3: Dropout(...)(x, training=True) recorded in the graph still follows the
    model's mode (predict is inference)."""
    from fastseq.layers import Dropout

    inp = Input(shape=(50,))
    model = Model(inp, Dropout(0.5)(inp, training=True))
    x = np.ones((2, 50), np.float32)
    np.testing.assert_array_equal(model.predict(x), x)
    assert model.get_config()["layers"][1]["inbound_nodes"][0]["kwargs"] == {"training": True}
