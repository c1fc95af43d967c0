"""Sequential models built under fastseq.device("cuda") against the same models on the CPU:
fit (history, final weights, predict), evaluate, *_on_batch, weights I/O, options with no
device kernel (run through the host), a new layer written once against the backend, and
which models are cuda. Tiny shapes: under the simulator every
CUDA thread is Python."""
import numpy as np
import pytest

pytest.importorskip("numba.cuda")

import fastseq  # noqa: E402
from fastseq import (
    _device,  # noqa: E402
    optimizers,  # noqa: E402
)
from fastseq.layers import (  # noqa: E402
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
from fastseq.models import Sequential  # noqa: E402
from fastseq.utils import set_random_seed  # noqa: E402

VOCAB, STEPS, BATCH = 20, 4, 4
RTOL, ATOL = 2e-5, 2e-6  # float32 rounding: different summation orders, same formulas


@pytest.fixture(autouse=True)
def _cpu_by_default():
    saved = _device._global_device
    _device._global_device = "cpu"
    yield
    _device._global_device = saved


def _data(n=8, classes=None, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (n, STEPS))
    x[0, :2] = 0  # padding (masked with mask_zero)
    x[1, 2:] = 0
    y = (rng.integers(0, classes, n) if classes else rng.integers(0, 2, n).astype(np.float32))
    return x, y


def _pair(build, compile_args):
    """(cpu model, cuda model) with the same initial weights."""
    set_random_seed(0)
    cpu = build()
    cpu.compile(**compile_args())
    with fastseq.device("cuda"):
        gpu = build()
    gpu.compile(**compile_args())
    gpu.set_weights(cpu.get_weights())
    return cpu, gpu


def _fit_both(cpu, gpu, x, y, **kwargs):
    histories = []
    for model in (cpu, gpu):
        set_random_seed(7)  # the same shuffles and dropout masks
        histories.append(model.fit(x, y, batch_size=BATCH, verbose=0, **kwargs).history)
    return histories


def _assert_same(cpu, gpu, histories, x):
    h_cpu, h_gpu = histories
    assert h_cpu.keys() == h_gpu.keys()
    for key in h_cpu:
        np.testing.assert_allclose(h_gpu[key], h_cpu[key], rtol=RTOL, atol=ATOL, err_msg=key)
    for w_cpu, w_gpu in zip(cpu.get_weights(), gpu.get_weights()):
        assert isinstance(w_gpu, np.ndarray) and w_gpu.dtype == w_cpu.dtype
        np.testing.assert_allclose(w_gpu, w_cpu, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0),
                               rtol=RTOL, atol=ATOL)


def _lstm_model(go_backwards=False):
    return lambda: Sequential([
        Embedding(VOCAB, 4, mask_zero=True, input_length=STEPS),
        LSTM(3, dropout=0.25, go_backwards=go_backwards),
        Dense(1, activation="sigmoid"),
    ])


def test_fit_embedding_lstm_dense_mask_zero_adam_matches_cpu():
    cpu, gpu = _pair(_lstm_model(), lambda: dict(optimizer="adam", loss="binary_crossentropy",
                                                 metrics=["accuracy"]))
    x, y = _data(n=BATCH)
    before = gpu.get_weights()
    histories = _fit_both(cpu, gpu, x, y, epochs=2)
    assert gpu.device == "cuda" and cpu.device == "cpu"
    assert not np.allclose(before[1], gpu.get_weights()[1])  # it trained
    _assert_same(cpu, gpu, histories, x)
    assert gpu.optimizer.iterations == cpu.optimizer.iterations == 2


def test_fit_sequence_output_with_mask_and_go_backwards_matches_cpu():
    # return_sequences: the loss and accuracy count the unmasked steps only
    build = lambda: Sequential([  # noqa: E731
        Embedding(VOCAB, 3, mask_zero=True, input_length=STEPS),
        LSTM(3, return_sequences=True, go_backwards=True),
        Dense(1, activation="sigmoid"),
    ])
    cpu, gpu = _pair(build, lambda: dict(optimizer=optimizers.Adam(0.05, lazy=True),
                                         loss="binary_crossentropy", metrics=["accuracy"]))
    x, _ = _data(n=2 * BATCH)  # two steps on different rows: lazy differs from dense there
    y = (np.random.default_rng(3).random((len(x), STEPS, 1)) > 0.5).astype(np.float32)
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=1), x)


def test_fit_conv1d_pooling_rmsprop_matches_cpu():
    build = lambda: Sequential([  # noqa: E731
        Embedding(VOCAB, 3, input_length=8),
        Conv1D(4, 3, activation="relu", padding="same"),
        MaxPooling1D(2),
        Conv1D(3, 2, activation="tanh"),
        GlobalAveragePooling1D(),
        Dense(1, activation="sigmoid"),
    ])
    cpu, gpu = _pair(build, lambda: dict(optimizer="rmsprop", loss="binary_crossentropy",
                                         metrics=["accuracy"]))
    rng = np.random.default_rng(2)
    x = rng.integers(0, VOCAB, (BATCH, 8))
    y = rng.integers(0, 2, BATCH).astype(np.float32)
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=2), x)


def test_fit_flatten_softmax_sparse_ce_sgd_momentum_matches_cpu():
    build = lambda: Sequential([  # noqa: E731
        Embedding(VOCAB, 3, input_length=STEPS),
        Flatten(),
        Dropout(0.3),
        Dense(6, activation="relu"),
        Dense(4, activation="softmax"),
    ])
    cpu, gpu = _pair(build, lambda: dict(
        optimizer=optimizers.SGD(0.1, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"]))
    x, y = _data(n=6, classes=4)
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=2), x)


@pytest.mark.parametrize("loss,optimizer", [
    ("categorical_crossentropy", optimizers.Adagrad(0.1, lazy=True)),
    ("mse", optimizers.RMSprop(0.01, momentum=0.5, centered=True)),
])
def test_fit_other_losses_and_optimizers_match_cpu(loss, optimizer):
    build = lambda: Sequential([  # noqa: E731
        Embedding(VOCAB, 3, mask_zero=True, input_length=STEPS),
        GlobalMaxPooling1D(),
        Dense(3),
        Activation("softmax"),
    ])
    config = optimizer.get_config()
    cpu, gpu = _pair(build, lambda: dict(optimizer=type(optimizer).from_config(config),
                                         loss=loss, metrics=["accuracy"]))
    x, labels = _data(classes=3)
    y = np.eye(3, dtype=np.float32)[labels]
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=1, validation_split=0.25), x)


def _pooling_model():
    return Sequential([
        Embedding(VOCAB, 3, mask_zero=True, input_length=STEPS),
        GlobalAveragePooling1D(),
        Dropout(0.5),
        Dense(1, activation="sigmoid"),
    ])


def test_evaluate_and_on_batch_methods_match_cpu():
    cpu, gpu = _pair(_pooling_model, lambda: dict(
        optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"]))
    x, y = _data()
    for model in (cpu, gpu):
        set_random_seed(3)
        model.train_on_batch(x[:4], y[:4])
    np.testing.assert_allclose(gpu.evaluate(x, y, batch_size=3, verbose=0),
                               cpu.evaluate(x, y, batch_size=3, verbose=0), rtol=RTOL)
    np.testing.assert_allclose(gpu.test_on_batch(x, y), cpu.test_on_batch(x, y), rtol=RTOL)
    np.testing.assert_allclose(gpu.predict_on_batch(x[:2]), cpu.predict_on_batch(x[:2]),
                               rtol=RTOL, atol=ATOL)


def test_weights_round_trip_through_the_device(tmp_path):
    cpu, gpu = _pair(_pooling_model, lambda: dict(optimizer="adam",
                                                  loss="binary_crossentropy"))
    x, y = _data()
    gpu.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # the device copy is the truth now
    trained = gpu.get_weights()
    assert all(isinstance(w, np.ndarray) for w in trained)
    new = [np.full_like(w, 0.01 * (i + 1)) for i, w in enumerate(trained)]
    gpu.set_weights(new)  # must reach the device before the next predict
    cpu.set_weights(new)
    for got, want in zip(gpu.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0),
                               rtol=RTOL, atol=ATOL)
    path = tmp_path / "w.npz"
    gpu.save_weights(str(path))
    cpu.load_weights(str(path))
    for got, want in zip(cpu.get_weights(), new):
        np.testing.assert_array_equal(got, want)


def test_options_without_a_device_kernel_run_through_the_host_and_match_cpu():
    # no device kernel for: a broadcast dropout mask, mean absolute error, gradient
    # clipping, the mse metric, a channels_first Flatten: exact through the host
    build = lambda: Sequential([  # noqa: E731
        Embedding(VOCAB, 3, input_length=STEPS),
        Dropout(0.5, noise_shape=(None, 1, 3)),
        Flatten(data_format="channels_first"),
        Dense(2),
    ])
    cpu, gpu = _pair(build, lambda: dict(optimizer=optimizers.Adam(clipnorm=0.01),
                                         loss="mae", metrics=["mse"]))
    x, _ = _data()
    y = np.random.default_rng(5).standard_normal((len(x), 2)).astype(np.float32)
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=2), x)


def test_categorical_crossentropy_on_probabilities_matches_cpu():
    build = lambda: Sequential([Dense(3, input_shape=(4,), activation="relu")])  # noqa: E731
    cpu, gpu = _pair(build, lambda: dict(optimizer="sgd", loss="categorical_crossentropy"))
    x = np.random.default_rng(6).random((4, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=2), x)


def test_a_new_layer_written_against_the_backend_runs_on_every_device():
    from fastseq.layers.base import Layer

    class Scale(Layer):
        """y = x * factor: forward and backward written once, against self.ops."""

        def forward(self, x, mask=None, training=False):
            factor = self.ops.asarray(np.full(tuple(x.shape), 2.0, dtype=x.dtype))
            self._cache = factor if training else None
            return self.ops.multiply(x, factor)

        def backward(self, grad_y, need_input_grad=True):
            factor, self._cache = self._cache, None
            return self.ops.multiply(grad_y, factor) if need_input_grad else None

    build = lambda: Sequential([Dense(3, input_shape=(4,)), Scale(),  # noqa: E731
                                Dense(1, activation="sigmoid")])
    cpu, gpu = _pair(build, lambda: dict(optimizer="adam", loss="binary_crossentropy",
                                         metrics=["accuracy"]))
    x = np.random.default_rng(7).random((8, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 2).astype(np.float32)
    _assert_same(cpu, gpu, _fit_both(cpu, gpu, x, y, epochs=2), x)


def test_return_state_predict_on_the_device_matches_cpu():
    build = lambda: Sequential([Embedding(VOCAB, 3, input_length=STEPS),  # noqa: E731
                                LSTM(2, return_state=True)])
    set_random_seed(0)
    cpu = build()
    with fastseq.device("cuda"):
        gpu = build()
    gpu.set_weights(cpu.get_weights())
    x, _ = _data()
    for got, want in zip(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_models_built_inside_the_device_block_are_cuda_and_after_it_cpu():
    from fastseq.backend import get_ops

    before = Sequential([Dense(1, input_shape=(2,))])
    with fastseq.device("cuda"):
        inside = Sequential([Dense(1, input_shape=(2,))])
    after = Sequential([Dense(1, input_shape=(2,))])
    assert (before.device, inside.device, after.device) == ("cpu", "cuda", "cpu")
    assert (inside.ops, after.ops) == (get_ops("cuda"), get_ops("cpu"))
    fastseq.set_device("cuda")
    assert Sequential().device == "cuda"
    x = np.ones((2, 2), np.float32)
    inside.predict(x, verbose=0)
    after.predict(x, verbose=0)
    assert get_ops("cuda").owns(inside.weights[0].data)
    assert isinstance(inside.weights[0].value, np.ndarray)
    assert after.weights[0].data is after.weights[0].value


def test_save_and_load_model_keeps_the_device_optimizer_state(tmp_path):
    from fastseq.models import load_model

    with fastseq.device("cuda"):
        model = _pooling_model()
    model.compile("adam", "binary_crossentropy")
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    path = str(tmp_path / "model.zip")
    model.save(path)  # the optimizer's slots come back from the device first
    assert np.abs(model.optimizer._slots["velocity"][0]).max() > 0
    with fastseq.device("cuda"):
        loaded = load_model(path)
    assert loaded.device == "cuda" and loaded.optimizer.iterations == 2
    set_random_seed(4)
    want = model.train_on_batch(x, y)
    set_random_seed(4)
    got = loaded.train_on_batch(x, y)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
