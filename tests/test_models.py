"""Sequential: building, summary, weights, config, whole-model gradients by finite
differences, input checks; then compile/fit/evaluate/predict and the *_on_batch methods."""
import csv
import gzip
import os
import re
import warnings

import numpy as np
import pytest
from test_layers import _numeric_grad  # central differences, shared

from fastseq.layers import (
    LSTM,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    reset_name_uids,
)
from fastseq.models import Sequential, model_from_json
from fastseq.utils import set_random_seed
from fastseq.variables import SparseGrad

F64 = "float64"


def seed002_model():
    model = Sequential()
    model.add(Embedding(5000, 32, input_length=500))
    model.add(LSTM(100))
    model.add(Dense(1, activation="sigmoid"))
    return model


# ---------------------------------------------------------------------------- structure


def test_builds_from_first_layer_input_shape():
    model = seed002_model()
    assert model.built
    assert model.input_shape == (None, 500)
    assert model.output_shape == (None, 1)
    assert [l.output_shape for l in model.layers] == [(None, 500, 32), (None, 100), (None, 1)]
    assert model.count_params() == 160000 + 53200 + 101 == 213301
    assert [w.name for w in model.weights] == ["embeddings", "kernel", "recurrent_kernel", "bias",
                                               "kernel", "bias"]
    assert model.get_layer(index=1) is model.layers[1]
    assert model.get_layer(model.layers[2].name) is model.layers[2]
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")


def test_constructor_list_equals_add():
    a = Sequential([Dense(3, input_shape=(4,)), Dense(2)])
    assert a.built and a.output_shape == (None, 2) and a.count_params() == 15 + 8


def test_builds_lazily_on_first_data():
    model = Sequential([Conv1D(4, 3, activation="relu"), GlobalMaxPooling1D(), Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    with pytest.raises(ValueError, match="isn't built"):
        model.count_params()
    out = model.predict(np.random.rand(5, 10, 3))
    assert out.shape == (5, 2) and out.dtype == np.float32
    assert model.built and model.input_shape == (None, 10, 3)
    # an Embedding without input_length knows its input rank (Keras 2): built at once
    model = Sequential([Embedding(50, 8), LSTM(4)])
    assert model.built and model.output_shape == (None, 4)
    assert model.layers[0].output_shape == (None, None, 8)


def test_add_errors():
    model = Sequential([Dense(2, input_shape=(3,), name="d")])
    with pytest.raises(TypeError, match="Layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="unique names"):
        model.add(Dense(2, name="d"))
    model = Sequential([Embedding(10, 2, input_length=3), LSTM(2, return_state=True)])
    with pytest.raises(ValueError, match="single output"):
        model.add(Dense(1))
    out, h, c = model.predict(np.array([[1, 2, 3]]))
    np.testing.assert_array_equal(out, h)
    assert c.shape == (1, 2)
    with pytest.raises(ValueError, match="should be defined"):
        Sequential([Embedding(10, 2), Flatten(), Dense(1)])


def test_summary_matches_keras_table():
    reset_name_uids()
    lines = []
    seed002_model().summary(print_fn=lines.append)
    assert lines == [
        'Model: "sequential"',
        "_" * 65,
        "Layer (type)                 Output Shape              Param #   ",
        "=" * 65,
        "embedding (Embedding)        (None, 500, 32)           160000    ",
        "_" * 65,
        "lstm (LSTM)                  (None, 100)               53200     ",
        "_" * 65,
        "dense (Dense)                (None, 1)                 101       ",
        "=" * 65,
        "Total params: 213,301",
        "Trainable params: 213,301",
        "Non-trainable params: 0",
        "_" * 65,
    ]


def test_summary_counts_frozen_weights():
    model = Sequential([Embedding(10000, 100, input_length=100), Flatten(),
                        Dense(32, activation="relu"), Dense(1, activation="sigmoid")])
    model.layers[0].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert "Total params: 1,320,065" in lines
    assert "Trainable params: 320,065" in lines
    assert "Non-trainable params: 1,000,000" in lines
    assert any(re.match(r"flatten(_\d+)? \(Flatten\) +\(None, 10000\) +0 +$", l) for l in lines)


def test_model_set_weights_validates_before_changing():
    model = Sequential([Dense(3, input_shape=(2,)), Dense(1)])
    before = model.get_weights()
    bad = [w.copy() for w in before]
    bad[3] = np.zeros((2,))
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        model.set_weights([w + 1 for w in bad])
    with pytest.raises(ValueError, match="expecting 4 weights"):
        model.set_weights(before[:3])
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    model.set_weights([w + 1 for w in before])
    np.testing.assert_array_equal(model.get_weights()[0], before[0] + 1)


def test_config_and_json_round_trip():
    set_random_seed(0)
    model = Sequential([Embedding(30, 4, mask_zero=True, input_length=6),
                        LSTM(5, return_sequences=True), GlobalAveragePooling1D(),
                        Dense(3, activation="softmax")])
    clone = Sequential.from_config(model.get_config())
    assert [type(l) for l in clone.layers] == [type(l) for l in model.layers]
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).integers(0, 30, (4, 6))
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    again = model_from_json(model.to_json())
    assert again.get_config() == model.get_config() or again.to_json() == model.to_json()
    lazy = Sequential([Dense(2)])
    lazy.predict(np.zeros((1, 3)))
    assert Sequential.from_config(lazy.get_config()).input_shape == (None, 3)


def test_use_ops_switches_every_layer_and_the_optimizer():
    from fastseq.backend import get_ops

    set_random_seed(1)
    model = Sequential([Embedding(20, 4, input_length=5), LSTM(3, return_sequences=True),
                        Conv1D(2, 2), GlobalMaxPooling1D(), Dense(1)])
    model.compile("adam", "mse")
    x = np.random.default_rng(1).integers(0, 20, (3, 5))
    fast = model.predict(x)
    assert model.ops is get_ops("cpu")
    model._use_ops(get_ops("reference"))
    assert all(l.ops is get_ops("reference") for l in model.layers)
    assert model.optimizer.ops is get_ops("reference")
    np.testing.assert_allclose(model.predict(x), fast, rtol=1e-5, atol=1e-6)
    model._use_ops(get_ops("cpu"))
    assert all(l.ops is get_ops("cpu") for l in model.layers)


# ---------------------------------------------------------------------------- gradients


def _check_model_gradients(model, x, seed=0):
    """Model backward (every trainable weight) against finite differences of
    sum(output * R) for a random R."""
    rng = np.random.default_rng(seed)
    (y,), _ = model._forward([x], training=True)
    r = rng.standard_normal(y.shape)

    def loss():
        set_random_seed(seed)
        (out,), _ = model._forward([x], training=True)
        for layer in model.layers:
            layer._cache = None
        return float(np.sum(out * r))

    set_random_seed(seed)
    model._forward([x], training=True)
    model._backward([r.copy()], [False])
    grads = []
    for var in model.trainable_weights:
        g = var.grad
        grads.append(g.to_dense(var.shape) if isinstance(g, SparseGrad) else g)
    for var, got in zip(model.trainable_weights, grads):
        want = _numeric_grad(loss, var.value)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=var.name)


def test_whole_model_gradients_masked_lstm():
    model = Sequential([
        Embedding(9, 3, mask_zero=True, input_length=5, dtype=F64),
        LSTM(3, return_sequences=True, dtype=F64),
        LSTM(2, return_sequences=True, go_backwards=True, dtype=F64),
        GlobalAveragePooling1D(dtype=F64),
        Dense(2, activation="tanh", dtype=F64),
    ])
    x = np.array([[0, 0, 3, 4, 8], [5, 1, 2, 6, 7], [0, 0, 0, 0, 2]])
    _check_model_gradients(model, x)


def test_whole_model_gradients_conv_and_dropout():
    model = Sequential([
        Conv1D(3, 3, activation="relu", padding="same", input_shape=(8, 2), dtype=F64),
        MaxPooling1D(2, dtype=F64),
        Conv1D(2, 2, activation="tanh", dtype=F64),
        GlobalAveragePooling1D(dtype=F64),
        Dropout(0.5, dtype=F64),
        Dense(1, activation="sigmoid", dtype=F64),
    ])
    _check_model_gradients(model, np.random.default_rng(2).standard_normal((3, 8, 2)))


def test_frozen_first_layer_is_skipped_by_backward():
    model = Sequential([Embedding(10, 3, input_length=4, dtype=F64), Flatten(dtype=F64),
                        Dense(2, activation="relu", dtype=F64), Dense(1, dtype=F64)])
    model.layers[0].trainable = False
    x = np.array([[1, 2, 3, 0], [4, 4, 9, 1]])
    _check_model_gradients(model, x)
    assert model.layers[0].embeddings.grad is None
    assert model._grad_plan()[0] == [False, False, True, True]  # backward starts at Dense


@pytest.mark.parametrize("pooling", [GlobalAveragePooling1D, GlobalMaxPooling1D])
def test_padding_is_invisible_through_the_mask(pooling):
    """Embedding(mask_zero) -> LSTM(return_sequences) -> pooling -> Dense: padded and
    unpadded sequences give the same output, pre- or post-padded. (Not with go_backwards:
    Keras passes the mask on unreversed while the outputs come in processing order.)"""
    set_random_seed(0)
    model = Sequential([Embedding(20, 4, mask_zero=True), LSTM(3, return_sequences=True),
                        pooling(), Dense(2)])
    core = np.array([[5, 3, 9, 1]])
    want = model.predict(core)
    pre = np.array([[0, 0, 0, 5, 3, 9, 1]])
    post = np.array([[5, 3, 9, 1, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other lengths than the first call
        np.testing.assert_allclose(model.predict(pre), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.predict(post), want, rtol=1e-5, atol=1e-6)
    last = Sequential([Embedding(20, 4, mask_zero=True), LSTM(3)])
    np.testing.assert_allclose(last.predict(pre), last.predict(core), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last.predict(post[:, :5]), last.predict(core), rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------------------- inputs


def test_bad_inputs_name_what_was_expected():
    model = Sequential([Conv1D(2, 3, input_shape=(10, 4)), GlobalMaxPooling1D(), Dense(1)])
    with pytest.raises(ValueError, match=r"expected shape=\(None, 10, 4\)"):
        model.predict(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="axis 2 should be 4"):
        model.predict(np.zeros((2, 10, 5)))
    bad = np.zeros((2, 10, 4))
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN \(first at index \(1, 3, 2\)\)"):
        model.predict(bad)
    emb = Sequential([Embedding(5, 2, input_length=3), Flatten(), Dense(1)])
    with pytest.raises(IndexError, match="5"):
        emb.predict(np.array([[1, 2, 5]]))
    with pytest.raises(ValueError, match="built for shape"):
        emb.predict(np.array([[1, 2, 3, 4]]))  # Flatten -> Dense needs the built length


def test_other_sequence_length_warns_once_and_runs():
    model = Sequential([Embedding(5, 2, input_length=4), LSTM(2)])
    with pytest.warns(UserWarning, match="was built for input shape"):
        assert model.predict(np.array([[1, 2, 3]])).shape == (1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(np.array([[1, 2, 3]]))


def test_predict_keeps_no_training_cache_and_batches_agree():
    set_random_seed(3)
    model = Sequential([Embedding(50, 4, input_length=7), LSTM(3), Dropout(0.5), Dense(2)])
    x = np.random.default_rng(0).integers(0, 50, (37, 7))
    out = model.predict(x, batch_size=5)
    assert all(l._cache is None for l in model.layers)
    np.testing.assert_allclose(out, model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, model.predict(x, batch_size=5))  # no dropout


# ---------------------------------------------------------------------------- training


def planted_data(n=384, length=12, vocab=30, seed=0):
    """Label 1 when token 7 appears in the sequence; pre-padded with zeros."""
    rng = np.random.default_rng(seed)
    x = rng.integers(8, vocab, (n, length))
    y = rng.integers(0, 2, n)
    for i in range(n):
        pad = rng.integers(0, length // 2)
        x[i, :pad] = 0
        if y[i]:
            x[i, rng.integers(pad, length)] = 7
    return x, y.astype(np.float32)


def test_fit_learns_planted_signal_and_reports_history():
    set_random_seed(0)
    x, y = planted_data()
    model = Sequential([Embedding(30, 8, input_length=12, mask_zero=True), LSTM(8),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    from fastseq.optimizers import Adam

    model.optimizer = Adam(learning_rate=0.02)
    history = model.fit(x, y, epochs=8, batch_size=32, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert len(history.history["loss"]) == 8
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_acc"][-1] >= 0.9
    # validation is the last quarter, taken before shuffling (Keras)
    val_loss, val_acc = model.evaluate(x[288:], y[288:], verbose=0)
    assert val_loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert val_acc == pytest.approx(history.history["val_acc"][-1])


def test_fit_is_reproducible_with_a_seed():
    x, y = planted_data(n=64)

    def run():
        set_random_seed(42)
        model = Sequential([Embedding(30, 4, input_length=12), LSTM(3), Dropout(0.3),
                            Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_nb_epoch_alias_and_validation_data():
    x, y = planted_data(n=48)
    model = Sequential([Embedding(30, 4, input_length=12), GlobalAveragePooling1D(),
                        Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    with pytest.warns(DeprecationWarning, match="nb_epoch"):
        history = model.fit(x, y, nb_epoch=3, batch_size=16, verbose=0,
                            validation_data=(x[:10], y[:10]))
    assert len(history.history["loss"]) == 3
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert model.history is history


def test_evaluate_is_batch_size_weighted():
    set_random_seed(0)
    x, y = planted_data(n=50)
    model = Sequential([Embedding(30, 4, input_length=12), LSTM(3),
                        Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["acc"])
    whole = model.evaluate(x, y, batch_size=50, verbose=0)
    pieces = model.evaluate(x, y, batch_size=7, verbose=0)
    np.testing.assert_allclose(pieces, whole, rtol=1e-5)
    assert model.metrics_names == ["loss", "acc"]
    lone = Sequential([Dense(1, input_shape=(3,))])
    lone.compile("sgd", "mse")
    assert isinstance(lone.evaluate(np.ones((4, 3)), np.ones(4), verbose=0), float)


def test_train_and_test_on_batch():
    set_random_seed(0)
    x, y = planted_data(n=32)
    model = Sequential([Embedding(30, 4, input_length=12), LSTM(3),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["acc"])
    before = model.test_on_batch(x, y)
    for _ in range(5):
        loss, acc = model.train_on_batch(x, y)
        assert 0 <= acc <= 1
    after = model.test_on_batch(x, y)
    assert after[0] < before[0]
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation,loss,labels", [
    ("sigmoid", "binary_crossentropy", "binary"),
    ("softmax", "categorical_crossentropy", "onehot"),
    ("softmax", "sparse_categorical_crossentropy", "sparse"),
])
def test_fused_logits_gradient_equals_plain_chain_rule(activation, loss, labels):
    """The loss on the logits (activation derivative skipped) gives the gradient of the
    loss on the probabilities through the activation."""
    from fastseq import losses

    rng = np.random.default_rng(0)
    units = 1 if labels == "binary" else 3
    model = Sequential([Dense(4, activation="tanh", input_shape=(5,), dtype=F64),
                        Dense(units, activation=activation, dtype=F64)])
    model.compile("sgd", loss)
    x = rng.standard_normal((6, 5))
    y = {"binary": rng.integers(0, 2, (6, 1)).astype(float),
         "onehot": np.eye(3)[rng.integers(0, 3, 6)],
         "sparse": rng.integers(0, 3, 6)}[labels]
    assert model._fusion()
    (y_pred,), _ = model._forward([x], training=True)
    _, grad = model.loss.forward_backward(y, model.layers[-1]._last_logits, from_logits=True)
    model._backward([grad], [True])
    fused = [v.grad.copy() for v in model.trainable_weights]
    plain_loss = losses.get(loss)

    def value():
        (out,), _ = model._forward([x], training=False)
        return plain_loss(y, out)

    for var, got in zip(model.trainable_weights, fused):
        np.testing.assert_allclose(got, _numeric_grad(value, var.value), rtol=1e-5, atol=1e-8)


def test_masked_sequence_output_loss_ignores_masked_steps():
    from fastseq import losses

    set_random_seed(0)
    model = Sequential([Embedding(10, 4, input_length=5, mask_zero=True),
                        LSTM(3, return_sequences=True), Dense(4, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.array([[0, 0, 3, 4, 5], [0, 1, 2, 3, 4]])
    y = np.array([[1, 1, 2, 3, 0], [2, 2, 1, 0, 3]])
    pred = model.predict(x)
    mask = x != 0
    want = losses.get("sparse_categorical_crossentropy")(y[mask], pred[mask])
    assert model.test_on_batch(x, y) == pytest.approx(want, rel=1e-5)


def test_training_errors():
    model = Sequential([Dense(1, activation="sigmoid", input_shape=(3,))])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4), verbose=0)
    model.compile("adam", "binary_crossentropy")
    with pytest.raises(ValueError, match="labels of shape"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)
    y = np.zeros(4)
    y[2] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        model.fit(np.zeros((4, 3)), y, verbose=0)
    with pytest.raises(ValueError, match="cardinality"):
        model.fit(np.zeros((4, 3)), np.zeros(5), verbose=0)
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile("adam", "hinge_loss_nope")
    with pytest.raises(ValueError, match="optimizer"):
        model.compile("adamax_nope", "mse")
    with pytest.raises(ValueError, match="metric"):
        model.compile("adam", "mse", metrics=["accuracy_nope"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.fit(np.zeros((4, 3)), np.zeros(4), epoch=2)


def test_nan_loss_warns_or_stops_with_terminate_on_nan():
    from fastseq.callbacks import TerminateOnNaN

    model = Sequential([Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    model.set_weights([np.full((2, 1), np.nan), np.zeros(1)])
    x, y = np.ones((8, 2)), np.ones(8)
    with pytest.warns(RuntimeWarning, match="loss is nan"):
        history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert len(history.history["loss"]) == 2
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and model.stop_training


def test_fit_verbose_prints_keras_progress(capsys):
    x, y = planted_data(n=40)
    model = Sequential([Embedding(30, 4, input_length=12), GlobalAveragePooling1D(),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "loss:" in out and "acc:" in out


# ---------------------------------------------------------------------------- real data


def _imdb_slice(per_class=600):
    data = os.environ.get("FASTSEQ_DATA")
    if not data:
        pytest.skip("FASTSEQ_DATA is not set")
    texts, labels = [], []
    counts = {0: 0, 1: 0}
    with gzip.open(os.path.join(data, "imdb_reviews.csv.gz"), "rt", newline="",
                   encoding="utf-8") as f:
        for row in csv.DictReader(f):
            label = int(row["label"])
            if row["split"] != "train" or counts[label] >= per_class:
                if min(counts.values()) >= per_class:
                    break
                continue
            counts[label] += 1
            texts.append(row["text"])
            labels.append(label)
    return texts, np.array(labels, dtype=np.float32)


def test_learns_real_imdb_reviews():
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import Tokenizer

    texts, labels = _imdb_slice()
    order = np.random.default_rng(0).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = labels[order]
    tokenizer = Tokenizer(num_words=3000)
    tokenizer.fit_on_texts(texts)
    x = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=200)
    set_random_seed(0)
    model = Sequential([Embedding(3000, 16, input_length=200), GlobalAveragePooling1D(),
                        Dense(1, activation="sigmoid")])
    from fastseq.optimizers import Adam

    model.compile(Adam(learning_rate=0.01), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=6, batch_size=32, validation_split=0.2, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert history.history["val_accuracy"][-1] > 0.75


# ---------------------------------------------------------------------------- saving


def test_save_and_load_model_round_trip(tmp_path):
    from fastseq.models import load_model

    set_random_seed(0)
    x, y = planted_data(n=64)
    model = Sequential([Embedding(30, 4, input_length=12, mask_zero=True),
                        LSTM(3, return_sequences=True), GlobalMaxPooling1D(),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    clone = load_model(path)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    assert clone.metrics_names == ["loss", "acc"]
    assert clone.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # the optimizer state came along: one more identical step gives identical weights
    model.train_on_batch(x[:16], y[:16])
    clone.train_on_batch(x[:16], y[:16])
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    weights = tmp_path / "w.npz"
    model.save_weights(weights)
    other = Sequential([Embedding(30, 4, input_length=12), LSTM(3, return_sequences=True),
                        GlobalMaxPooling1D(), Dense(1, activation="sigmoid")])
    other.load_weights(weights)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = Sequential([Embedding(30, 5, input_length=12), LSTM(3), Dense(1)])
    before = wrong.get_weights()
    with pytest.raises(ValueError):
        wrong.load_weights(weights)
    for a, b in zip(before, wrong.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_clear_session_restarts_layer_names():
    from fastseq.backend import clear_session

    Dense(1)
    clear_session()
    assert Dense(1).name == "dense"
    assert Dense(1).name == "dense_1"
