"""Files exchanged with Keras 3 itself, both ways: ``.weights.h5`` weight files and whole
``.keras`` models (architecture, weights, compile settings, optimizer state).

The two models' predictions on the same tokens must agree, which checks the layers'
semantics (Keras's GRU cell, Bidirectional's zeroed masked steps, pooling, masks) as well
as the files' layout; one training step on each side after loading checks that the
optimizer state (iteration, slots) came across.

Runs where Keras 3 and PyTorch (its backend here) are installed: the ``keras`` extra
(``pip install -e ".[keras]"``, KERAS_BACKEND=torch); skipped otherwise."""
import json
import os
import zipfile

import numpy as np
import pytest

pytest.importorskip("torch", reason="the Keras interop tests need PyTorch (Keras's backend "
                    "here): pip install -e '.[keras]'")
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="the Keras interop tests need Keras 3: pip "
                            "install -e '.[keras]'")
if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover
    pytest.skip(f"Keras 3 is needed, found {keras.__version__}", allow_module_level=True)

import fastseq.layers as F  # noqa: E402
from fastseq import optimizers as fastseq_optimizers  # noqa: E402
from fastseq import saving  # noqa: E402
from fastseq.models import Sequential, load_model  # noqa: E402

K = keras.layers
STEPS = 7
MODELS = {
    "bidirectional_gru_simple_rnn": (
        lambda: [K.Embedding(50, 6, mask_zero=True),
                 K.Bidirectional(K.GRU(5, return_sequences=True)),
                 K.Bidirectional(K.SimpleRNN(4)), K.Dense(1)],
        lambda: [F.Embedding(50, 6, mask_zero=True, input_length=STEPS),
                 F.Bidirectional(F.GRU(5, return_sequences=True)),
                 F.Bidirectional(F.SimpleRNN(4)), F.Dense(1)]),
    "gru_reset_before": (
        lambda: [K.Embedding(50, 6), K.GRU(5, reset_after=False), K.Dense(1)],
        lambda: [F.Embedding(50, 6, input_length=STEPS), F.GRU(5, reset_after=False),
                 F.Dense(1)]),
    "bidirectional_lstm_sum": (
        lambda: [K.Embedding(50, 6, mask_zero=True),
                 K.Bidirectional(K.LSTM(3), merge_mode="sum"), K.Dense(1)],
        lambda: [F.Embedding(50, 6, mask_zero=True, input_length=STEPS),
                 F.Bidirectional(F.LSTM(3), merge_mode="sum"), F.Dense(1)]),
}


def _tokens(seed=0, rows=4):
    x = np.random.default_rng(seed).integers(1, 50, (rows, STEPS))
    x[0, :3] = 0  # padding, masked where the Embedding has mask_zero
    return x


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_h5_both_ways(tmp_path, name):
    keras_layers, fastseq_layers = MODELS[name]
    x = _tokens()
    theirs = keras.Sequential([keras.Input((STEPS,), dtype="int32")] + keras_layers())
    want = theirs.predict(x, verbose=0)
    theirs.save_weights(str(tmp_path / "keras.weights.h5"))
    ours = Sequential(fastseq_layers())
    ours.build((None, STEPS))
    ours.load_weights(str(tmp_path / "keras.weights.h5"))
    got = ours.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ours.save_weights(str(tmp_path / "fastseq.weights.h5"))
    back = keras.Sequential([keras.Input((STEPS,), dtype="int32")] + keras_layers())
    back.load_weights(str(tmp_path / "fastseq.weights.h5"))
    np.testing.assert_allclose(back.predict(x, verbose=0), got, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- whole .keras models
# The same architecture written with each library's layers: (Keras layers, fastseq
# layers, whether a training step is deterministic, i.e. no dropout).
SEQUENTIAL = {
    "lstm": (lambda L: [L.Embedding(50, 6), L.LSTM(5), L.Dense(1, activation="sigmoid")],
             True),
    "gru_masked": (lambda L: [L.Embedding(50, 6, mask_zero=True), L.GRU(4),
                              L.Dense(1, activation="sigmoid")], True),
    "bidirectional_lstm": (lambda L: [L.Embedding(50, 6, mask_zero=True),
                                      L.Bidirectional(L.LSTM(3)),
                                      L.Dense(1, activation="sigmoid")], True),
    "conv1d_global_max": (lambda L: [L.Embedding(50, 6), L.Conv1D(4, 3, activation="relu"),
                                     L.MaxPooling1D(2), L.Conv1D(4, 2, activation="relu"),
                                     L.GlobalMaxPooling1D(), L.Dropout(0.5),
                                     L.Dense(1, activation="sigmoid")], False),
    "conv1d_flatten": (lambda L: [L.Embedding(50, 6),
                                  L.Conv1D(4, 3, padding="same", activation="relu"),
                                  L.MaxPooling1D(2), L.Flatten(), L.Dropout(0.2),
                                  L.Dense(1, activation="sigmoid")], False),
}
OPTIMIZERS = {
    "adam": (lambda O: O.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)),
    "rmsprop": (lambda O: O.RMSprop(learning_rate=0.005, rho=0.8, momentum=0.5,
                                    centered=True)),
    "sgd": (lambda O: O.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
}


def _keras_model(name):
    build, _ = SEQUENTIAL[name]
    return keras.Sequential([keras.Input((STEPS,), dtype="int32")] + build(K))


def _fastseq_model(name):
    build, _ = SEQUENTIAL[name]
    layers = build(F)
    layers[0] = F.Embedding(50, 6, mask_zero=layers[0].mask_zero, input_length=STEPS)
    return Sequential(layers)


def _data():
    x = _tokens(1, rows=16)
    y = (x[:, 3] > 25).astype("float32")
    return x, y


def _keras_optimizer_values(model):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def _assert_same_optimizer(a, b):
    assert type(a.optimizer).__name__ == type(b.optimizer).__name__
    config_a, config_b = a.optimizer.get_config(), b.optimizer.get_config()
    for key in set(config_a) & set(config_b) - {"name"}:
        if isinstance(config_a[key], float):
            assert config_a[key] == pytest.approx(config_b[key], rel=1e-6), key
        else:
            assert config_a[key] == config_b[key], key


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(SEQUENTIAL))
def test_a_keras_file_from_keras_loads_in_fastseq(tmp_path, name, optimizer):
    x, y = _data()
    theirs = _keras_model(name)
    theirs.compile(optimizer=OPTIMIZERS[optimizer](keras.optimizers),
                   loss="binary_crossentropy", metrics=["acc"])
    theirs.fit(x, y, epochs=2, batch_size=8, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    _assert_same_optimizer(ours, theirs)
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations) == 4
    assert ours.metrics_names == ["loss", "acc"]
    if SEQUENTIAL[name][1]:  # the same next step: the slots came across
        theirs.train_on_batch(x, y)
        ours.train_on_batch(x, y)
        np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                                   rtol=1e-4, atol=1e-5)
    # and back: Keras reads fastseq's file of the model it wrote, optimizer state included
    ours.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for a, b in zip(_keras_optimizer_values(back), _keras_optimizer_values(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(SEQUENTIAL))
def test_a_keras_file_from_fastseq_loads_in_keras(tmp_path, name, optimizer):
    x, y = _data()
    ours = _fastseq_model(name)
    ours.compile(optimizer=OPTIMIZERS[optimizer](fastseq_optimizers),
                 loss="binary_crossentropy", metrics=["acc"])
    ours.fit(x, y, epochs=2, batch_size=8, verbose=0)
    ours.save(tmp_path / "fastseq.keras")
    with zipfile.ZipFile(tmp_path / "fastseq.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
    assert config["class_name"] == "Sequential" and config["module"] == "keras"
    theirs = keras.models.load_model(tmp_path / "fastseq.keras")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    _assert_same_optimizer(theirs, ours)
    assert int(theirs.optimizer.iterations) == ours.optimizer.iterations == 4
    assert theirs.loss == "binary_crossentropy"
    if SEQUENTIAL[name][1]:
        ours.train_on_batch(x, y)
        theirs.train_on_batch(x, y)
        np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SEQUENTIAL))
def test_weights_h5_of_whole_models_both_ways(tmp_path, name):
    x = _tokens()
    theirs = _keras_model(name)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    ours = _fastseq_model(name)
    ours.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    other = _fastseq_model(name)
    other.save_weights(tmp_path / "fastseq.weights.h5")
    theirs.load_weights(tmp_path / "fastseq.weights.h5")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), other.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_an_uncompiled_model_both_ways(tmp_path):
    x = _tokens()
    ours = _fastseq_model("lstm")
    ours.save(tmp_path / "plain.keras")
    theirs = keras.models.load_model(tmp_path / "plain.keras")
    assert getattr(theirs, "optimizer", None) is None
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    theirs.save(tmp_path / "keras.keras")
    back = load_model(tmp_path / "keras.keras")
    assert back.optimizer is None
    np.testing.assert_allclose(back.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def _rewrite_config(path, change):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def test_a_keras_setting_fastseq_lacks_is_an_error_naming_it(tmp_path):
    theirs = keras.Sequential([keras.Input((STEPS,), dtype="int32"), K.Embedding(50, 6),
                               K.LSTM(3), K.Dense(1)])
    path = tmp_path / "keras.keras"
    theirs.save(path)

    def lstm(config):
        return next(l for l in config["config"]["layers"] if l["class_name"] == "LSTM")

    # Keras's zero_output_for_mask on a plain LSTM changes its masked outputs
    _rewrite_config(path, lambda c: lstm(c)["config"].update(zero_output_for_mask=True))
    with pytest.raises(ValueError, match=r"'lstm.*zero_output_for_mask=True.*does not support"):
        load_model(path)
    _rewrite_config(path, lambda c: lstm(c)["config"].update(zero_output_for_mask=False,
                                                             frobnicate=3))
    with pytest.raises(ValueError, match=r"frobnicate=3"):
        load_model(path)


def test_a_layer_keras_lacks_writes_fastseq_s_own_archive_with_a_warning(tmp_path):
    class Doubling(F.Dense):  # a layer of the user's own: Keras 3 has no such class
        pass

    ours = Sequential([F.Embedding(50, 6, input_length=STEPS), F.Flatten(), Doubling(1)])
    with pytest.warns(UserWarning, match=r"Doubling.*Keras cannot load it"):
        ours.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert "model.weights.h5" not in zf.namelist()
    loaded = load_model(tmp_path / "m.keras", custom_objects={"Doubling": Doubling})
    np.testing.assert_array_equal(loaded.predict(_tokens(), verbose=0),
                                  ours.predict(_tokens(), verbose=0))


def test_an_optimizer_state_that_does_not_fit_warns_and_starts_fresh(tmp_path):
    x, y = _data()
    theirs = _keras_model("lstm")
    theirs.compile(optimizer=keras.optimizers.Adam(amsgrad=True), loss="binary_crossentropy")
    theirs.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "keras.keras"
    theirs.save(path)
    # the file says plain Adam; its variables carry the AMSGrad maxima too
    _rewrite_config(path, lambda c: c["compile_config"]["optimizer"]["config"].update(
        amsgrad=False))
    with pytest.warns(UserWarning, match="freshly initialized optimizer"):
        ours = load_model(path)
    assert ours.optimizer.iterations == 0
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_a_damaged_weight_in_a_keras_file_is_a_clear_error(tmp_path):
    ours = _fastseq_model("lstm")
    path = tmp_path / "m.keras"
    ours.save(path)
    data = bytearray(path.read_bytes())
    raw = np.ascontiguousarray(ours.layers[2].weights[0].value).tobytes()
    at = data.find(raw)
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupted.*checksum"):
        saving.load_model(path)


def test_loss_and_metric_objects_and_adagrad_both_ways(tmp_path):
    x, y = _data()
    theirs = _keras_model("lstm")
    theirs.compile(optimizer=keras.optimizers.Adagrad(learning_rate=0.05,
                                                      initial_accumulator_value=0.2),
                   loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1),
                   metrics=[keras.metrics.BinaryAccuracy(threshold=0.4)])
    theirs.fit(x, y, epochs=1, batch_size=8, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    assert type(ours.loss).__name__ == "BinaryCrossentropy"
    assert ours.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert [type(m).__name__ for m in ours.compiled_metrics] == ["BinaryAccuracy"]
    assert ours.compiled_metrics[0].get_config()["threshold"] == pytest.approx(0.4)
    _assert_same_optimizer(ours, theirs)
    # the same loss, metric and step on both sides
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
    ours.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    assert back.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    np.testing.assert_allclose(back.evaluate(x, y, verbose=0), ours.evaluate(x, y, verbose=0),
                               rtol=1e-5)


def test_adam_amsgrad_state_both_ways(tmp_path):
    x, y = _data()
    ours = _fastseq_model("lstm")
    ours.compile(optimizer=fastseq_optimizers.Adam(learning_rate=0.02, amsgrad=True),
                 loss="binary_crossentropy")
    ours.fit(x, y, epochs=2, batch_size=8, verbose=0)
    ours.save(tmp_path / "fastseq.keras")
    theirs = keras.models.load_model(tmp_path / "fastseq.keras")
    assert theirs.optimizer.amsgrad
    ours.train_on_batch(x, y)
    theirs.train_on_batch(x, y)
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)



# ---------------------------------------------------------------- sequence-to-sequence models
def _seq2seq_model(L, Input, Model):
    """Keras's lstm_seq2seq.py graph, small: the encoder's states start the decoder."""
    encoder_in = Input(shape=(None, 6))
    _, h, c = L.LSTM(5, return_state=True)(encoder_in)
    decoder_in = Input(shape=(None, 6))
    decoded = L.LSTM(5, return_sequences=True)(decoder_in, initial_state=[h, c])
    return Model([encoder_in, decoder_in], L.Dense(6, activation="softmax")(decoded))


def _bidirectional_seq2seq_model(L, Input, Model):
    """A Bidirectional(LSTM(return_state)) started from states a Dense makes of a context
    input; its four returned states (joined per kind) start the decoder; its merged output
    joins the decoder's."""
    source, context = Input(shape=(None, 6)), Input(shape=(3,))
    init = [L.Dense(5, activation="tanh")(context) for _ in range(4)]
    out, fh, fc, bh, bc = L.Bidirectional(L.LSTM(5, return_state=True))(
        source, initial_state=init)
    target = Input(shape=(None, 6))
    decoded = L.LSTM(10, return_sequences=True)(
        target, initial_state=[L.Concatenate()([fh, bh]), L.Concatenate()([fc, bc])])
    joined = L.Concatenate()([decoded, L.RepeatVector(3)(out)])
    return Model([source, context, target], L.Dense(6, activation="softmax")(joined))


# model builder, the shapes of its inputs (after the batch)
SEQ2SEQ = {"lstm": (_seq2seq_model, [(5, 6), (3, 6)]),
           "bidirectional": (_bidirectional_seq2seq_model, [(5, 6), (3,), (3, 6)])}


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_a_seq2seq_model_trains_as_in_keras_both_ways(tmp_path, name):
    """Training through an encoder's states (return_state -> initial_state): after a Keras
    fit, one more SGD step on each side lands on the same weights; and a model fastseq
    trained loads in Keras with the same predictions."""
    Input, Model = _functional_api()
    build, shapes = SEQ2SEQ[name]
    rng = np.random.default_rng(4)
    x = [rng.standard_normal((8,) + shape).astype("float32") for shape in shapes]
    y = np.eye(6, dtype="float32")[rng.integers(0, 6, (8, 3))]
    theirs = build(K, keras.Input, keras.Model)
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    theirs.fit(x, y, epochs=2, batch_size=4, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-4, atol=1e-6)

    mine = build(F, Input, Model)
    mine.compile(optimizer=fastseq_optimizers.SGD(0.5), loss="categorical_crossentropy")
    mine.fit(x, y, epochs=2, batch_size=4, verbose=0)
    mine.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- a functional model
def _two_input_model(L, Input, Model):
    """Review tokens (masked padding) and a rating, as in the README's example; two Dense
    layers of one shape on two branches check that weights go to the right one."""
    text = Input(shape=(STEPS,), dtype="int32", name="text")
    rating = Input(shape=(3,), name="rating")
    h = L.Dense(4, activation="tanh")(L.LSTM(4)(L.Embedding(50, 6, mask_zero=True)(text)))
    r = L.Dense(4, activation="relu")(rating)
    return Model([text, rating], L.Dense(1, activation="sigmoid")(L.Concatenate()([h, r])))


def _functional_api():
    import fastseq
    import fastseq.models

    if not hasattr(fastseq.models, "Model") or not hasattr(fastseq, "Input"):
        pytest.skip("fastseq.models.Model (the functional API) is not in this fastseq")
    return fastseq.Input, fastseq.models.Model


def _two_inputs():
    rng = np.random.default_rng(2)
    tokens = rng.integers(1, 50, (16, STEPS))
    tokens[:, :2] = 0
    rating = rng.standard_normal((16, 3)).astype("float32")
    return [tokens, rating], (rating[:, 0] > 0).astype("float32")


def test_a_functional_two_input_model_both_ways(tmp_path):
    Input, Model = _functional_api()
    x, y = _two_inputs()
    theirs = _two_input_model(K, keras.Input, keras.Model)
    theirs.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                   metrics=["acc"])
    theirs.fit(x, y, epochs=2, batch_size=8, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert ours.optimizer.iterations == 4
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)

    mine = _two_input_model(F, Input, Model)
    mine.compile(optimizer=fastseq_optimizers.Adam(0.01), loss="binary_crossentropy",
                 metrics=["acc"])
    mine.fit(x, y, epochs=2, batch_size=8, verbose=0)
    mine.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    assert [l.name for l in back.layers] == [l.name for l in mine.layers]
    np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    mine.train_on_batch(x, y)
    back.train_on_batch(x, y)
    np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
    # weights files of the functional model, both ways
    mine.save_weights(tmp_path / "fastseq.weights.h5")
    other = _two_input_model(K, keras.Input, keras.Model)
    other.load_weights(tmp_path / "fastseq.weights.h5")
    np.testing.assert_allclose(other.predict(x, verbose=0), mine.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    mine.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_allclose(mine.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- more layers, both ways
MORE_LAYERS = {
    "time_distributed": lambda L: [L.Embedding(50, 6), L.TimeDistributed(L.Dense(3)),
                                   L.SimpleRNN(2), L.Dense(1, activation="sigmoid")],
    "batch_normalization": lambda L: [L.Embedding(50, 6), L.Conv1D(4, 3),
                                      L.BatchNormalization(momentum=0.5),
                                      L.Activation("relu"), L.GlobalAveragePooling1D(),
                                      L.Dense(1, activation="sigmoid")],
    "layer_normalization": lambda L: [L.Embedding(50, 6), L.LayerNormalization(),
                                      L.SpatialDropout1D(0.1), L.AveragePooling1D(2),
                                      L.Flatten(), L.Dense(1, activation="sigmoid")],
    "masking_reshaping": lambda L: [L.Embedding(50, 6), L.Masking(0.0),
                                    L.LSTM(3, return_sequences=True), L.GlobalMaxPooling1D(),
                                    L.RepeatVector(2), L.Permute((2, 1)), L.Reshape((6,)),
                                    L.Dense(1, activation="sigmoid")],
}


@pytest.mark.parametrize("name", sorted(MORE_LAYERS))
def test_more_layers_both_ways(tmp_path, name):
    x, y = _data()
    # trained a little on each side first, so that no weight (BatchNormalization's moving
    # statistics included) still holds its initial value
    theirs = keras.Sequential([keras.Input((STEPS,), dtype="int32")] + MORE_LAYERS[name](K))
    theirs.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    theirs.fit(x, y, epochs=2, batch_size=8, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    layers = MORE_LAYERS[name](F)
    layers[0] = F.Embedding(50, 6, input_length=STEPS)
    mine = Sequential(layers)
    mine.compile(optimizer=fastseq_optimizers.Adam(0.05), loss="binary_crossentropy")
    mine.fit(x, y, epochs=2, batch_size=8, verbose=0)
    mine.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_regularizers_and_a_loss_function_both_ways(tmp_path):
    x, y = _data()

    def build(L, R):
        return [L.Embedding(50, 6, embeddings_regularizer=R.L2(0.01)),
                L.LSTM(3, kernel_regularizer=R.L1L2(l1=0.001, l2=0.01)),
                L.Dense(1, activation="sigmoid", bias_regularizer=R.L1(0.02))]

    theirs = keras.Sequential([keras.Input((STEPS,), dtype="int32")]
                              + build(K, keras.regularizers))
    theirs.compile(optimizer="sgd", loss=keras.losses.binary_crossentropy)
    theirs.fit(x, y, epochs=1, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    ours = load_model(tmp_path / "keras.keras")
    assert ours.layers[1].kernel_regularizer.get_config() == pytest.approx(
        {"l1": 0.001, "l2": 0.01})
    # the loss each side reports includes the same penalties
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0),
                                                           rel=1e-5)
    from fastseq import regularizers

    layers = build(F, regularizers)
    layers[0] = F.Embedding(50, 6, input_length=STEPS,
                            embeddings_regularizer=regularizers.L2(0.01))
    mine = Sequential(layers)
    mine.compile(optimizer="sgd", loss="binary_crossentropy")
    mine.save(tmp_path / "fastseq.keras")
    back = keras.models.load_model(tmp_path / "fastseq.keras")
    assert back.layers[2].bias_regularizer.get_config() == pytest.approx({"l1": 0.02})
    assert back.evaluate(x, y, verbose=0) == pytest.approx(mine.evaluate(x, y, verbose=0),
                                                           rel=1e-5)


def test_an_optimizer_fastseq_lacks_is_an_error_naming_the_file(tmp_path):
    theirs = _keras_model("lstm")
    theirs.compile(optimizer="nadam", loss="binary_crossentropy")
    path = tmp_path / "keras.keras"
    theirs.save(path)
    with pytest.raises(ValueError, match=r"keras\.keras.*Nadam.*compile=False"):
        load_model(path)
    ours = load_model(path, compile=False)
    assert ours.optimizer is None
