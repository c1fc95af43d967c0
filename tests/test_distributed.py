"""fastseq.distributed (issue 18) and the pickling of models, layers, optimizers and
tokenizers. The gradient reduction and the pickling run everywhere; the tests marked
``ray`` start a local Ray instance (2 CPUs) and skip without Ray."""
import glob
import os
import pickle
import signal
import sys
import time

import numpy as np
import pytest

import fastseq
from fastseq.backend import get_ops
from fastseq.callbacks import Callback, ModelCheckpoint
from fastseq.distributed import (
    DataParallel,
    TuneReportCallback,
    WorkerLostError,
    average_gradients,
    pack_gradients,
    unpack_gradients,
)
from fastseq.layers import (
    LSTM,
    Conv1D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    MaxPooling1D,
    TextVectorization,
)
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import Tokenizer
from fastseq.utils import set_random_seed
from fastseq.variables import SparseGrad, Variable

try:
    import ray
except ImportError:  # the tests below that need it skip
    ray = None

VOCAB, STEPS = 60, 10


# ------------------------------------------------------------------ models and data
def lstm_model(seed=1):
    """The IMDB LSTM seed (Embedding -> LSTM -> Dense sigmoid, adam), tiny."""
    set_random_seed(seed)
    model = Sequential([Embedding(VOCAB, 8, input_length=STEPS), LSTM(6),
                        Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.build((None, STEPS))
    return model


def conv_model(seed=2):
    """The Conv1D seed (Embedding -> Conv1D x2 -> max pool -> Conv1D -> global average ->
    Dense sigmoid, rmsprop), tiny and without its Dropout (drawn per worker)."""
    set_random_seed(seed)
    model = Sequential([Embedding(VOCAB, 8, input_length=STEPS),
                        Conv1D(6, 3, activation="relu"), Conv1D(6, 3, activation="relu"),
                        MaxPooling1D(2), Conv1D(5, 2, activation="relu"),
                        GlobalAveragePooling1D(), Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    model.build((None, STEPS))
    return model


def imdb_like(n=22, seed=0):
    """Pre-padded token ids (zeros in front) and binary labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (n, STEPS)).astype(np.int32)
    for i, length in enumerate(rng.integers(3, STEPS + 1, n)):
        x[i, :STEPS - length] = 0
    y = rng.integers(0, 2, (n, 1)).astype(np.float32)
    return x, y


def assert_weights(a, b, exact=False, rtol=2e-5, atol=2e-6):
    for wa, wb in zip(a, b):
        if exact:
            np.testing.assert_array_equal(wa, wb)
        else:
            np.testing.assert_allclose(wa, wb, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ gradients (no Ray)
def test_average_weights_each_worker_by_its_shard_in_rank_order():
    rng = np.random.default_rng(3)
    variables = [Variable(np.zeros((4, 3), np.float32), "kernel"),
                 Variable(np.zeros(3, np.float32), "bias"),
                 Variable(np.zeros((9, 2), np.float32), "embeddings"),
                 Variable(np.zeros(2, np.float32), "frozen")]
    ops = get_ops("cpu")
    sizes, parts, dense_grads, embedding = [5, 2, 1], [], [], np.zeros((9, 2), np.float32)
    for rows in ([1, 4, 7], [4], [0, 7]):
        kernel = rng.normal(size=(4, 3)).astype(np.float32)
        bias = rng.normal(size=3).astype(np.float32)
        values = rng.normal(size=(len(rows), 2)).astype(np.float32)
        for var, grad in zip(variables, (kernel, bias, SparseGrad(np.array(rows), values),
                                         None)):
            var.grad = grad
        parts.append(pack_gradients(variables, ops))
        dense_grads.append((kernel, bias))
        embedding[rows] += values * np.float32(sizes[len(parts) - 1] / 8)
    assert parts[0].flat.shape == (15,) and set(parts[0].sparse) == {2}
    averaged = average_gradients(parts, sizes)
    unpack_gradients(averaged, variables, ops)
    kernel = sum(np.float32(n / 8) * k for n, (k, _) in zip(sizes, dense_grads))
    np.testing.assert_allclose(variables[0].grad, kernel, rtol=1e-6)
    np.testing.assert_allclose(variables[1].grad,
                               sum(np.float32(n / 8) * b for n, (_, b) in zip(sizes, dense_grads)),
                               rtol=1e-6)
    sparse = variables[2].grad
    assert isinstance(sparse, SparseGrad) and sparse.rows.tolist() == [0, 1, 4, 7]
    np.testing.assert_allclose(sparse.to_dense((9, 2)), embedding, rtol=1e-6)
    assert variables[3].grad is None
    # fixed order: the same inputs give the same bits; one worker is its own gradient
    again = average_gradients(parts, sizes)
    np.testing.assert_array_equal(again.flat, averaged.flat)
    np.testing.assert_array_equal(average_gradients(parts[:1], [5]).flat, parts[0].flat)


def test_average_refuses_mismatched_workers():
    a = pack_gradients([Variable(np.zeros(2, np.float32), "b")], get_ops("cpu"))
    v = Variable(np.zeros(2, np.float32), "b")
    v.grad = np.ones(2, np.float32)
    b = pack_gradients([v], get_ops("cpu"))
    with pytest.raises(ValueError, match="worker 1's gradients have another layout"):
        average_gradients([a, b], [1, 1])
    with pytest.raises(ValueError, match="2 gradient sets for 1 shard sizes"):
        average_gradients([b, b], [1])


def test_an_embedding_gradient_travels_as_rows_and_values():
    model = lstm_model()
    x, y = imdb_like(6)
    xs, ys, sws = model._prepare_xy(x, y, None)
    model._gradient_step(xs, ys, sws)
    packed = pack_gradients(model.trainable_weights, model.ops)
    assert list(packed.sparse) == [0]  # the embedding; everything else in one flat buffer
    rows, _ = packed.sparse[0]
    assert rows.tolist() == np.unique(x).tolist()
    assert packed.flat.size == sum(v.value.size for v in model.trainable_weights[1:])


def test_missing_ray_is_an_import_error_naming_the_extra(monkeypatch):
    from fastseq.distributed._ray import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install fastseq\[ray\]"):
        require_ray()


def test_tune_callback_reports_each_epoch_with_chosen_names():
    reports = []
    model = lstm_model()
    x, y = imdb_like(8)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_data=(x, y),
              callbacks=[TuneReportCallback({"score": "val_accuracy", "loss": "loss"},
                                            report=reports.append)])
    assert [r["epoch"] for r in reports] == [1, 2]
    assert set(reports[0]) == {"score", "loss", "epoch"}
    assert reports[1]["loss"] == pytest.approx(model.history.history["loss"][1])
    with pytest.raises(KeyError, match="'nope'.*not in this epoch's logs"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[TuneReportCallback(
            ["nope"], report=reports.append)])


# ------------------------------------------------------------------ pickling (no Ray)
@pytest.mark.parametrize("make", [lstm_model, conv_model])
def test_pickled_model_carries_config_weights_and_optimizer_state(make):
    from fastseq._pickling import reduce_model

    model = make()
    x, y = imdb_like(12)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    rebuild, args = reduce_model(model)
    copy = rebuild(*pickle.loads(pickle.dumps(args)))
    assert copy is not model and copy.get_config() == model.get_config()
    assert_weights(copy.get_weights(), model.get_weights(), exact=True)
    assert_weights(copy.optimizer.get_state(), model.optimizer.get_state(), exact=True)
    assert all(layer._cache is None for layer in copy.layers)
    # no forward caches in the bytes: about the weights and optimizer slots, not more
    size = sum(w.nbytes for w in model.get_weights()) * (1 + 2)
    assert len(pickle.dumps(args)) < size + 20_000
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    copy.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert_weights(copy.get_weights(), model.get_weights(), exact=True)


@pytest.mark.skipif("__reduce__" not in vars(fastseq.models.Model),
                    reason="Model.__reduce__ (models.py) does not call fastseq._pickling yet")
def test_pickle_dumps_a_model_through_the_hook():
    model = lstm_model()
    x, y = imdb_like(8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    copy = pickle.loads(pickle.dumps(model))
    assert_weights(copy.get_weights(), model.get_weights(), exact=True)
    assert all(layer._cache is None for layer in copy.layers)


def test_pickled_layers_optimizers_and_tokenizers():
    model = lstm_model()
    x, y = imdb_like(8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    lstm = pickle.loads(pickle.dumps(model.layers[1]))
    assert type(lstm) is LSTM and lstm.get_config() == model.layers[1].get_config()
    assert_weights(lstm.get_weights(), model.layers[1].get_weights(), exact=True)
    assert lstm._cache is None and lstm._inbound_nodes == []
    features = np.random.default_rng(0).normal(size=(2, STEPS, 8)).astype(np.float32)
    np.testing.assert_array_equal(lstm(features), model.layers[1](features))
    unbuilt = pickle.loads(pickle.dumps(Dense(3, activation="relu", name="d")))
    assert not unbuilt.built and unbuilt.get_config()["units"] == 3

    optimizer = pickle.loads(pickle.dumps(model.optimizer))
    assert type(optimizer) is type(model.optimizer)
    assert optimizer.get_config() == model.optimizer.get_config()
    assert optimizer.iterations == model.optimizer.iterations == 2

    texts = ["the cat sat", "the dog sat down", "a cat, a dog!"]
    tokenizer = Tokenizer(num_words=5, oov_token="<unk>")
    tokenizer.fit_on_texts(texts)
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy.texts_to_sequences(texts + ["new words"]) == tokenizer.texts_to_sequences(
        texts + ["new words"])
    assert copy.word_counts == tokenizer.word_counts

    vectorize = TextVectorization(max_tokens=8, output_sequence_length=4)
    vectorize.adapt(texts)
    copy = pickle.loads(pickle.dumps(vectorize))
    np.testing.assert_array_equal(copy(np.array(texts, dtype=object)),
                                  vectorize(np.array(texts, dtype=object)))


# ------------------------------------------------------------------ with Ray
@pytest.fixture(scope="module")
def ray_session():
    if ray is None:
        pytest.skip("Ray is not installed: pip install fastseq[ray]")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the model functions below live in this test module, which workers cannot import
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.parametrize("make", [lstm_model, conv_model], ids=["lstm", "conv1d"])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.ray
def test_data_parallel_equals_one_process(ray_session, make, workers):
    x, y = imdb_like(22)  # batches of 8, 8, 6: shards of unequal sizes
    single = make()
    single.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    parallel = DataParallel(make, num_workers=workers, cpus_per_worker=2 / workers,
                            step_timeout=120)
    with parallel:
        history = parallel.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        digests = parallel.replica_digests()
    # every replica holds bitwise the driver's weights and optimizer state
    assert digests == [parallel.driver_digest()] * workers
    # one worker computes exactly what one process does; more differ by float32 rounding
    # of the summation order only
    assert_weights(parallel.model.get_weights(), single.get_weights(), exact=workers == 1)
    assert_weights(parallel.model.optimizer.get_state(), single.optimizer.get_state(),
                   exact=workers == 1, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(history.history["loss"], single.history.history["loss"],
                               rtol=1e-5)
    assert history.history["accuracy"] == single.history.history["accuracy"]
    assert len(parallel.step_timings) == 6
    assert all(t["grad_bytes"] > 0 and t["step_s"] >= t["compute_s"]
               for t in parallel.step_timings)


@pytest.mark.ray
def test_data_parallel_is_deterministic_across_runs_and_fits(ray_session):
    x, y = imdb_like(16)
    runs = []
    for _ in range(2):
        with DataParallel(lstm_model, num_workers=2, step_timeout=120) as parallel:
            parallel.fit(x, y, batch_size=6, epochs=1, verbose=0)  # shuffled (seeded)
            # a change made on the driver between fits (weights, learning rate) reaches
            # every replica
            parallel.model.optimizer.learning_rate = 0.01
            parallel.model.layers[2].set_weights([w * 0 for w in
                                                  parallel.model.layers[2].get_weights()])
            parallel.fit(x, y, batch_size=6, epochs=1, verbose=0)
            assert parallel.replica_digests() == [parallel.driver_digest()] * 2
            runs.append(parallel.model.get_weights())
    assert_weights(runs[0], runs[1], exact=True)


@pytest.mark.ray
def test_fit_function_runs_callbacks_on_the_driver(ray_session, tmp_path):
    x, y = imdb_like(16)
    seen = []

    class Record(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((os.getpid(), batch, logs["loss"]))

    history = fastseq.distributed.fit(
        lstm_model, x, y, num_workers=2, batch_size=8, epochs=2, verbose=0,
        validation_split=0.25, step_timeout=120,
        callbacks=[Record(), ModelCheckpoint(str(tmp_path / "best.npz"),
                                             save_weights_only=True)])
    assert {pid for pid, _, _ in seen} == {os.getpid()} and len(seen) == 4
    assert len(history.history["val_loss"]) == 2
    check = lstm_model()
    check.load_weights(str(tmp_path / "best.npz"))
    assert_weights(check.get_weights(), history.model.get_weights(), exact=True)


class KillWorker(Callback):
    """SIGKILL one worker's process once, mid-epoch."""

    def __init__(self, parallel, rank, epoch, batch):
        super().__init__()
        self.parallel, self.rank, self.epoch, self.batch = parallel, rank, epoch, batch
        self.current, self.done = 0, False

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not self.done and (self.current, batch) == (self.epoch, self.batch):
            self.done = True
            os.kill(self.parallel.worker_info[self.rank]["pid"], signal.SIGKILL)


@pytest.mark.ray
def test_a_killed_worker_stops_the_run_naming_it(ray_session, tmp_path):
    x, y = imdb_like(24)
    parallel = DataParallel(lstm_model, num_workers=2, step_timeout=60)
    checkpoint = tmp_path / "model.fastseq"
    start = time.monotonic()
    with pytest.raises(WorkerLostError, match=r"worker 1 of 2 \(pid \d+.*died.*at epoch 2, "
                                              r"step 2") as caught:
        parallel.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                     callbacks=[ModelCheckpoint(str(checkpoint), save_weights_only=False),
                                KillWorker(parallel, 1, 1, 1)])
    assert time.monotonic() - start < 60
    assert caught.value.rank == 1 and not parallel.workers
    # the checkpoint of epoch 1 is whole (the driver writes it, atomically); no temporary
    saved = fastseq.models.load_model(str(checkpoint))
    assert saved.optimizer.iterations == 3
    assert glob.glob(str(tmp_path / ".*tmp")) == []
    # the driver's model holds the last complete step (epoch 2, step 2 of 3)
    assert parallel.model.optimizer.iterations == 5


@pytest.mark.ray
def test_a_killed_worker_restarts_from_the_last_checkpoint(ray_session, tmp_path):
    x, y = imdb_like(24)
    single = lstm_model()
    single.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    parallel = DataParallel(lstm_model, num_workers=2, step_timeout=60,
                            on_worker_failure="restart")
    with parallel, pytest.warns(RuntimeWarning, match="worker 1 of 2.*checkpoint of epoch 1"):
        history = parallel.fit(
            x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
            callbacks=[ModelCheckpoint(str(tmp_path / "model.fastseq")),
                       KillWorker(parallel, 1, 1, 1)])
        assert parallel.replica_digests() == [parallel.driver_digest()] * 2
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3
    # epoch 2 ran again from the checkpoint: the run ends where an unbroken one does
    assert parallel.model.optimizer.iterations == 9
    assert_weights(parallel.model.get_weights(), single.get_weights())


@pytest.mark.ray
def test_without_a_checkpoint_restart_says_so(ray_session):
    x, y = imdb_like(16)
    parallel = DataParallel(lstm_model, num_workers=2, step_timeout=60,
                            on_worker_failure="restart")
    with pytest.raises(WorkerLostError, match="No checkpoint was written"):
        parallel.fit(x, y, batch_size=8, epochs=2, verbose=0,
                     callbacks=[KillWorker(parallel, 0, 0, 0)])


@pytest.mark.ray
def test_corpus_predict_keeps_the_order_with_a_tokenizer(ray_session):
    words = [f"w{i}" for i in range(40)]
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(words, rng.integers(2, 12))) for _ in range(37)]
    tokenizer = Tokenizer(num_words=VOCAB)
    tokenizer.fit_on_texts(texts)
    model = lstm_model()
    expected = model.predict(pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=STEPS),
                             batch_size=4, verbose=0)
    got = fastseq.distributed.predict(model, texts, batch_size=4, num_workers=2,
                                      tokenizer=tokenizer, maxlen=STEPS, chunk_size=8)
    assert got.shape == expected.shape == (37, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # any iterable (here a generator of arrays' rows), and raw arrays
    x = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=STEPS)
    from_generator = fastseq.distributed.predict(model, (row for row in x), batch_size=4,
                                                 num_workers=2, chunk_size=8)
    np.testing.assert_allclose(from_generator, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.ray
def test_corpus_predict_over_a_ray_dataset_keeps_the_order(ray_session):
    model = lstm_model()
    x, _ = imdb_like(37)
    expected = model.predict(x, batch_size=4, verbose=0)
    # a Dataset runs with the DataContext current when it was made: one made while the
    # process's context does not preserve the order must still come back in order
    context = ray_session.data.DataContext.get_current()
    preserve_order = context.execution_options.preserve_order
    context.execution_options.preserve_order = False
    try:
        dataset = ray_session.data.from_items([{"x": row} for row in x])
    finally:
        context.execution_options.preserve_order = preserve_order
    predicted = fastseq.distributed.predict(model, dataset, batch_size=4, num_workers=2,
                                            chunk_size=8, cpus_per_worker=0.5)
    assert predicted.context.execution_options.preserve_order
    rows = predicted.take_all()
    got = np.array([row["prediction"] for row in rows]).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.ray
def test_tune_sweep_reports_every_epoch(ray_session, tmp_path):
    from ray import tune

    x, y = imdb_like(16)

    def train(config, x, y):
        fastseq.set_num_threads(1)
        set_random_seed(0)
        model = Sequential([Embedding(VOCAB, 4, input_length=STEPS), LSTM(config["units"]),
                            Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy",
                      optimizer=fastseq.optimizers.Adam(config["lr"]), metrics=["accuracy"])
        model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0,
                  callbacks=[TuneReportCallback(["loss", "val_loss"])])

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train, x=x, y=y), {"cpu": 1}),
        param_space={"units": tune.grid_search([2, 4]), "lr": 0.01},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="sweep", verbose=0))
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    for result in results:
        frame = result.metrics_dataframe
        assert frame["epoch"].tolist() == [1, 2]
        assert np.isfinite(frame["val_loss"]).all()
    assert results.get_best_result().config["units"] in (2, 4)
