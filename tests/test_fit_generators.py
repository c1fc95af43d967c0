"""fit / evaluate / predict on generators, iterators and Sequences (Keras's PyDataset):
the same numbers as on the same batches given as arrays, validation from a generator,
steps_per_epoch, and errors that name the batch."""
import numpy as np
import pytest

from fastseq import Input, Model
from fastseq.layers import Concatenate, Dense
from fastseq.models import Sequential
from fastseq.utils import Sequence

BATCH = 8


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)


def model(seed=0):
    m = Sequential([Dense(5, activation="tanh", input_shape=(4,)),
                    Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(seed)
    m.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5
                   for w in m.get_weights()])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return m


def endless(x, y, weights=None):
    while True:
        for i in range(0, len(x), BATCH):
            part = (x[i:i + BATCH], y[i:i + BATCH])
            yield part if weights is None else part + (weights[i:i + BATCH],)


class Batches(Sequence):
    def __init__(self, x, y, length=None):
        super().__init__()
        self.x, self.y, self.length = x, y, length
        self.epochs_ended = 0

    def __len__(self):
        return self.length or -(-len(self.x) // BATCH)

    def __getitem__(self, i):
        return self.x[i * BATCH:(i + 1) * BATCH], self.y[i * BATCH:(i + 1) * BATCH]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_fit_on_a_generator_equals_fit_on_the_arrays():
    x, y = data()
    w = np.linspace(0.5, 1.5, len(x))
    a, b = model(), model()
    ha = a.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, sample_weight=w,
               validation_data=(x, y))
    hb = b.fit(endless(x, y, w), steps_per_epoch=len(x) // BATCH, epochs=3, verbose=0,
               validation_data=endless(x, y), validation_steps=len(x) // BATCH)
    assert ha.history.keys() == hb.history.keys()
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-6, err_msg=key)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_sequence_epochs_shuffle_and_on_epoch_end():
    x, y = data()
    a, b = model(), model()
    seq = Batches(x, y)
    b.fit(seq, epochs=2, shuffle=False, verbose=0)
    a.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert seq.epochs_ended == 2
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # shuffled: another order of the same batches, so other weights, same data seen
    c = model()
    c.fit(Batches(x, y), epochs=2, shuffle=True, verbose=0)
    assert any(not np.array_equal(wc, wa) for wc, wa in zip(c.get_weights(), a.get_weights()))


def test_evaluate_and_predict_on_batch_sources_equal_the_arrays():
    x, y = data()
    m = model()
    np.testing.assert_allclose(m.evaluate(Batches(x, y), verbose=0),
                               m.evaluate(x, y, batch_size=BATCH, verbose=0), rtol=1e-7)
    np.testing.assert_array_equal(m.predict(Batches(x, y)), m.predict(x, batch_size=BATCH))
    only_x = (x[i:i + BATCH] for i in range(0, len(x), BATCH))
    np.testing.assert_array_equal(m.predict(only_x), m.predict(x, batch_size=BATCH))
    np.testing.assert_array_equal(m.predict(endless(x, y), steps=2), m.predict(x[:16]))


def test_functional_model_on_a_generator_of_input_lists():
    a_in, b_in = Input(shape=(2,)), Input(shape=(2,))
    out = Dense(1, activation="sigmoid")(Concatenate()([Dense(3)(a_in), Dense(3)(b_in)]))
    m = Model([a_in, b_in], out)
    m.compile("sgd", "binary_crossentropy")
    x, y = data()

    def batches():
        for i in range(0, len(x), BATCH):
            yield [x[i:i + BATCH, :2], x[i:i + BATCH, 2:]], y[i:i + BATCH]

    history = m.fit(batches(), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    np.testing.assert_allclose(m.predict(batches()), m.predict([x[:, :2], x[:, 2:]]),
                               rtol=1e-6)


def test_steps_per_epoch_bounds_array_epochs_too():
    x, y = data()
    m = model()
    seen = []

    from fastseq.callbacks import LambdaCallback

    m.fit(x, y, batch_size=BATCH, steps_per_epoch=2, epochs=2, verbose=0,
          callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))])
    assert seen == [0, 1, 0, 1]


def test_errors_name_the_batch_and_stop_the_workers():
    import threading

    x, y = data()
    m = model()
    before = [w.copy() for w in m.get_weights()]

    def raises():
        yield x[:BATCH], y[:BATCH]
        raise KeyError("missing file")

    with pytest.raises(KeyError, match="batch 1"):
        m.fit(raises(), steps_per_epoch=3, verbose=0)

    def wrong_shape():
        yield x[:BATCH, :3], y[:BATCH]

    with pytest.raises(ValueError, match="batch 0.*shape"):
        m.fit(wrong_shape(), verbose=0)
    with pytest.raises(Exception, match="batch 4"):
        m.fit(Batches(x, y, length=5), shuffle=False, verbose=0)  # 5 said, 4 there
    with pytest.raises(ValueError, match="y and sample_weight come in its batches"):
        m.fit(endless(x, y), y, steps_per_epoch=1, verbose=0)
    for t in threading.enumerate():  # the batch threads are stopped (the kernels' stay)
        if t.name.startswith("fastseq-batches"):
            t.join(timeout=5)
            assert not t.is_alive(), t.name
    m2 = model()
    m2.fit(raises(), steps_per_epoch=1, verbose=0)  # the first batch alone trains
    assert any(not np.array_equal(a, b) for a, b in zip(before, m2.get_weights()))


def test_memory_mapped_inputs_are_read_batch_by_batch(tmp_path):
    """A memmapped x stays on disk (fit does not copy it whole) and trains exactly as the
    same array in memory, shuffled alike."""
    from fastseq.layers import LSTM, Embedding
    from fastseq.utils import set_random_seed

    rng = np.random.default_rng(5)
    x = rng.integers(1, 50, (40, 7)).astype(np.int32)
    y = (x[:, :1] > 25).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    on_disk = np.load(tmp_path / "x.npy", mmap_mode="r")

    def make():
        set_random_seed(3)
        m = Sequential([Embedding(50, 4, input_length=7), LSTM(3),
                        Dense(1, activation="sigmoid")])
        m.compile("adam", "binary_crossentropy")
        return m

    a, b = make(), make()
    assert b._prepare_inputs(on_disk, lazy=True)[0] is on_disk  # nothing read yet
    set_random_seed(9)
    a.fit(x, y, batch_size=8, epochs=2, verbose=0)
    set_random_seed(9)
    b.fit(on_disk, y, batch_size=8, epochs=2, verbose=0, validation_data=(on_disk, y))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(x), b.predict(on_disk))
    bad = np.load(tmp_path / "x.npy", mmap_mode="r+")
    bad[3, 2] = 99  # out of the Embedding's range: found when its batch is read
    with pytest.raises(IndexError, match="99"):
        b.predict(bad, batch_size=8)


def test_bucket_by_length_gives_the_padded_results_per_sample():
    """Ragged sequences in length-sorted batches, each padded to its own longest: with
    mask_zero the predictions equal the run padded to one length, in the input's order;
    fit takes them too."""
    from fastseq.layers import LSTM, Embedding
    from fastseq.preprocessing.sequence import pad_sequences

    rng = np.random.default_rng(11)
    ragged = [list(rng.integers(1, 30, rng.integers(1, 12))) for _ in range(37)]
    y = rng.integers(0, 2, (37, 1)).astype(np.float32)
    m = Sequential([Embedding(30, 4, mask_zero=True), LSTM(3), Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy")
    padded = pad_sequences(ragged, maxlen=12, padding="post")
    want = m.predict(padded, batch_size=8)
    got = m.predict(ragged, batch_size=8, bucket_by_length=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.evaluate(ragged, y, bucket_by_length=True, verbose=0),
                               m.evaluate(padded, y, verbose=0), rtol=1e-5)
    history = m.fit(ragged, y, batch_size=8, epochs=2, bucket_by_length=True, verbose=0,
                    validation_data=(ragged, y))
    assert len(history.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="ragged"):
        m.predict(padded, bucket_by_length=True)


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_predict_trims_masked_padding_with_the_same_results(padding):
    """Issue 16: a model whose padding is masked predicts length-sorted batches cut to
    their own real steps; per-sample results equal the untrimmed run."""
    from fastseq.layers import GRU, LSTM, Bidirectional, Embedding, GlobalAveragePooling1D
    from fastseq.preprocessing.sequence import pad_sequences

    rng = np.random.default_rng(12)
    ragged = [list(rng.integers(1, 30, rng.integers(0, 15))) for _ in range(45)]
    x = pad_sequences(ragged, maxlen=15, padding=padding)
    models = [
        Sequential([Embedding(30, 4, mask_zero=True, input_length=15), LSTM(3),
                    Dense(1, activation="sigmoid")]),
        Sequential([Embedding(30, 4, mask_zero=True), Bidirectional(GRU(3, return_sequences=True)),
                    GlobalAveragePooling1D(), Dense(2, activation="softmax")]),
    ]
    for m in models:
        assert m._padding_is_masked() and m._length_order([x]) is not None
        whole = m(x)  # one batch, nothing trimmed
        np.testing.assert_allclose(m.predict(x, batch_size=8), whole, rtol=1e-5, atol=1e-6)
        y = rng.integers(0, 2, (45, m.output_shape[-1])).astype(np.float32)
        m.compile("sgd", "mse", metrics=["mae"])
        got = m.evaluate(x, y, batch_size=8, verbose=0)
        m._length_order = lambda xs: None  # the untrimmed, unsorted evaluation
        np.testing.assert_allclose(got, m.evaluate(x, y, batch_size=8, verbose=0), rtol=1e-6)
    unmasked = Sequential([Embedding(30, 4, input_length=15), LSTM(3), Dense(1)])
    assert not unmasked._padding_is_masked()
    sequences_out = Sequential([Embedding(30, 4, mask_zero=True), LSTM(3, return_sequences=True)])
    assert not sequences_out._padding_is_masked()


def test_a_generator_that_runs_out_stops_training_with_keras_warning():
    x, y = data()
    m = model()
    finite = ((x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH))
    with pytest.warns(UserWarning, match="ran out of data"):
        history = m.fit(finite, steps_per_epoch=3, epochs=5, verbose=0)
    assert len(history.history["loss"]) == 2  # 3 + 1 batches: the second epoch runs out
