"""BatchSource, is_batch_source, unpack_batch, Sequence / PyDataset and bucket_by_length."""
import gc
import threading
import time
import warnings

import numpy as np
import pytest

from fastseq.utils import (
    BatchSource,
    PyDataset,
    Sequence,
    bucket_by_length,
    is_batch_source,
    set_random_seed,
    unpack_batch,
)
from fastseq.utils.bucketing import BucketedSequence


class Batches(Sequence):
    """Batch i is (full((2, 1), i), full(2, i)); records the calls."""

    def __init__(self, n=4, fail_at=None, length=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.fail_at, self.length = n, fail_at, length
        self.epochs_ended = 0
        self.seen = []

    def __len__(self):
        return self.n if self.length is None else self.length

    def __getitem__(self, index):
        if index >= self.n:
            raise IndexError(f"no batch {index}")
        if index == self.fail_at:
            raise ValueError("bad row in the file")
        self.seen.append(index)
        return np.full((2, 1), index, dtype="float32"), np.full(2, index, dtype="float32")

    def on_epoch_end(self):
        self.epochs_ended += 1


def counting(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise KeyError("missing token")
        yield np.full((2, 1), i), np.full(2, i)


def firsts(items):
    return [int(x[0, 0]) for _, x, _, _ in items]


def worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastseq-batches")]


@pytest.fixture(autouse=True)
def no_leaked_threads():
    yield
    gc.collect()
    deadline = time.time() + 5
    while worker_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert worker_threads() == []


# ------------------------------------------------------------------ is_batch_source
def test_is_batch_source_tells_batches_from_data():
    x = np.zeros((3, 2))
    assert is_batch_source(counting(2))
    assert is_batch_source(iter([(x, x)]))
    assert is_batch_source(Batches())
    assert is_batch_source(range(3))  # a plain iterable
    for data in (x, [x, x], (x, x), {"a": x}, None, "text", 3):
        assert not is_batch_source(data)


def test_a_subclass_of_keras_pydataset_is_recognised_by_name_without_keras():
    base = type("PyDataset", (), {"__module__": "keras.src.trainers.data_adapters"})

    class Theirs(base):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return np.ones((1, 1)), np.ones(1)

    other = type("PyDataset", (), {"__module__": "mylib"})
    assert is_batch_source(Theirs())
    assert BatchSource(Theirs()).is_sequence
    assert not is_batch_source(type("Mine", (other,), {"__getitem__": lambda s, i: 0,
                                                        "__len__": lambda s: 1})())


def test_pydataset_is_sequence_and_keeps_its_settings():
    assert PyDataset is Sequence
    data = Batches(workers=3, use_multiprocessing=False, max_queue_size=4)
    assert (data.workers, data.use_multiprocessing, data.max_queue_size) == (3, False, 4)
    source = BatchSource(data)
    assert (source.workers, source.max_queue_size) == (3, 4)
    assert [int(x[0, 0]) for x, _ in data] == [0, 1, 2, 3]  # __iter__
    assert data.num_batches == 4


def test_a_sequence_without_super_init_warns_as_keras():
    class Bare(Sequence):
        def __init__(self):
            pass

    with pytest.warns(UserWarning, match="super\\(\\).__init__"):
        assert Bare().workers == 1


# ------------------------------------------------------------------ unpack_batch
def test_unpack_batch_forms():
    x, y, w = np.ones((2, 1)), np.zeros(2), np.ones(2)
    assert unpack_batch(x, 0) == (x, None, None)
    assert unpack_batch((x,), 0) == (x, None, None)
    assert unpack_batch([x, y], 0) == (x, y, None)
    assert unpack_batch((x, y, w), 0) == (x, y, w)
    d = {"a": x}
    assert unpack_batch(d, 0) == (d, None, None)


@pytest.mark.parametrize("batch, error, match", [
    ((), ValueError, "batch 7: .* tuple of length 0"),
    ((1, 2, 3, 4), ValueError, "batch 7: .* tuple of length 4"),
    ((None, 1), ValueError, "batch 7: .*x is None"),
    (None, TypeError, "batch 7: .* got NoneType"),
    ("text", TypeError, "batch 7: .* got str"),
])
def test_unpack_batch_names_the_batch_and_what_it_got(batch, error, match):
    with pytest.raises(error, match=match):
        unpack_batch(batch, 7)


# ------------------------------------------------------------------ Sequences
@pytest.mark.parametrize("workers", [0, 1, 3])
def test_sequence_in_order_with_on_epoch_end(workers):
    data = Batches()
    with BatchSource(data, workers=workers) as source:
        assert source.num_batches == 4
        for epoch in range(2):
            items = list(source.epoch())
            assert [s for s, *_ in items] == [0, 1, 2, 3]
            assert firsts(items) == [0, 1, 2, 3]
            assert data.epochs_ended == epoch + 1
        np.testing.assert_array_equal(items[2][2], [2, 2])
        assert items[0][3] is None


def test_sequence_shuffle_uses_fastseq_rng():
    set_random_seed(3)
    orders = [firsts(BatchSource(Batches(n=8), shuffle=True, workers=2).epoch())
              for _ in range(2)]
    set_random_seed(3)
    rng = __import__("fastseq").utils.get_rng()
    assert orders[0] == rng.permutation(8).tolist()
    assert orders[1] == rng.permutation(8).tolist()
    assert sorted(orders[0]) == list(range(8))


def test_sequence_with_steps_goes_on_across_epochs_as_keras():
    data = Batches(n=5)
    source = BatchSource(data, steps=2, workers=0)
    got = [firsts(source.epoch()) for _ in range(2)]
    with pytest.warns(UserWarning, match="ran out of data"):
        got.append(firsts(source.epoch()))
    assert got == [[0, 1], [2, 3], [4]]  # a pass spans epochs; its end is an early stop
    assert source.ran_out
    assert firsts(source.epoch()) == [0, 1]  # a new pass


def test_sequence_with_more_steps_than_batches_warns_keras_message():
    source = BatchSource(Batches(n=2), steps=3, workers=1)
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        assert firsts(source.epoch()) == [0, 1]
    source.close()


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_sequence_error_names_the_batch_chains_the_original_and_stops_threads(workers):
    source = BatchSource(Batches(n=6, fail_at=3), workers=workers)
    got = []
    with pytest.raises(ValueError, match=r"x: batch 3 of the Batches \(len\(\) = 6\): "
                                         "ValueError: bad row in the file") as info:
        for _, x, _, _ in source.epoch():
            got.append(int(x[0, 0]))
    assert got == [0, 1, 2]
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.__cause__.__traceback__ is not None  # the user's frames
    assert worker_threads() == [] or workers == 0


def test_a_sequence_whose_len_is_wrong_names_the_batch_and_the_len():
    source = BatchSource(Batches(n=3, length=5), workers=1)
    with pytest.raises(IndexError, match=r"batch 3 of the Batches \(len\(\) = 5\)"):
        list(source.epoch())


def test_a_sequence_of_length_zero_is_refused():
    with pytest.raises(ValueError, match="has length 0"):
        list(BatchSource(Batches(n=0)).epoch())


def test_a_batch_of_the_wrong_form_names_its_index():
    class Bad(Batches):
        def __getitem__(self, index):
            return None if index == 2 else super().__getitem__(index)

    with pytest.raises(TypeError, match="batch 2: .* got NoneType"):
        list(BatchSource(Bad(), workers=2).epoch())


def test_processes_prepare_a_sequence_when_asked():
    data = Batches(n=3, workers=2, use_multiprocessing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process
        with BatchSource(data) as source:
            assert firsts(source.epoch()) == [0, 1, 2]
            assert firsts(source.epoch()) == [0, 1, 2]
    assert data.seen == []  # the parent's copy was not the one indexed
    assert data.epochs_ended == 2


# ------------------------------------------------------------------ generators
@pytest.mark.parametrize("workers", [0, 1])
def test_generator_with_steps_goes_on_where_the_last_epoch_stopped(workers):
    source = BatchSource(counting(5), steps=2, workers=workers)
    assert source.num_batches == 2
    assert firsts(source.epoch()) == [0, 1]
    assert firsts(source.epoch()) == [2, 3]
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        assert firsts(source.epoch()) == [4]
    assert source.ran_out
    with pytest.raises(ValueError, match="yielded no batch this epoch"):
        list(source.epoch())
    source.close()


def test_generator_without_steps_is_one_epoch_and_then_refused():
    source = BatchSource(counting(3))
    assert source.num_batches is None
    assert firsts(source.epoch()) == [0, 1, 2]
    assert not source.ran_out
    with pytest.raises(ValueError, match="exhausted after 3 batches"):
        list(source.epoch())


def test_an_iterable_is_iterated_afresh_each_epoch():
    class Reiterable:
        def __iter__(self):
            return counting(2)

    source = BatchSource(Reiterable(), workers=1)
    assert [firsts(source.epoch()) for _ in range(2)] == [[0, 1], [0, 1]]


def test_an_endless_generator_with_steps_is_stopped_by_close():
    def endless():
        i = 0
        while True:
            yield np.full((1, 1), i), np.zeros(1)
            i += 1

    source = BatchSource(endless(), steps=3, max_queue_size=2)
    assert firsts(source.epoch()) == [0, 1, 2]
    assert firsts(source.epoch()) == [3, 4, 5]
    assert len(worker_threads()) == 1
    source.close()
    assert worker_threads() == []


def test_garbage_collection_stops_the_worker():
    def endless():
        while True:
            yield np.zeros((1, 1)), np.zeros(1)

    source = BatchSource(endless(), steps=1)
    list(source.epoch())
    assert len(worker_threads()) == 1
    del source
    gc.collect()
    deadline = time.time() + 5
    while worker_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert worker_threads() == []


@pytest.mark.parametrize("workers", [0, 1])
def test_generator_error_is_reraised_with_batch_index_and_cause(workers):
    source = BatchSource(counting(5, fail_at=2), workers=workers, what="validation_data")
    got = []
    with pytest.raises(KeyError, match="validation_data: batch 2 of the generator") as info:
        for _, x, _, _ in source.epoch():
            got.append(int(x[0, 0]))
    assert got == [0, 1]
    assert isinstance(info.value.__cause__, KeyError)
    assert "counting" in "".join(
        __import__("traceback").format_exception(info.value.__cause__))
    assert worker_threads() == []


def test_generator_yielding_wrong_form_names_the_batch():
    def gen():
        yield np.ones((1, 1)), np.ones(1)
        yield np.ones((1, 1)), np.ones(1), np.ones(1), np.ones(1)

    with pytest.raises(ValueError, match="batch 1: .* tuple of length 4"):
        list(BatchSource(gen()).epoch())


def test_prefetch_overlaps_the_callers_work():
    """Batches are made while the caller works: the worker runs ahead of the caller."""
    made = []

    def slow():
        for i in range(4):
            made.append(i)
            yield np.zeros((1, 1)), np.zeros(1)

    source = BatchSource(slow(), max_queue_size=3)
    it = source.epoch()
    next(it)
    deadline = time.time() + 5
    while len(made) < 4 and time.time() < deadline:
        time.sleep(0.01)
    assert made == [0, 1, 2, 3]  # drawn before the caller asked for them
    assert len(list(it)) == 3


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="x: expected a generator"):
        BatchSource(np.zeros(3))
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        BatchSource(counting(1), steps=0)
    with pytest.raises(ValueError, match="workers must be an int >= 0"):
        BatchSource(counting(1), workers=-1)
    with pytest.warns(UserWarning, match="use_multiprocessing needs a Sequence"):
        BatchSource(counting(1), use_multiprocessing=True).close()


# ------------------------------------------------------------------ bucket_by_length
def test_bucket_by_length_pads_each_batch_to_its_own_longest():
    seqs = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10], [11]]
    y = np.arange(5)
    batches = bucket_by_length(seqs, y, batch_size=2)
    assert isinstance(batches, BucketedSequence) and len(batches) == 3
    np.testing.assert_array_equal(batches.permutation, [1, 4, 2, 0, 3])
    x0, y0 = batches[0]
    np.testing.assert_array_equal(x0, [[4], [11]])
    np.testing.assert_array_equal(y0, [1, 4])
    x1, _ = batches[1]
    np.testing.assert_array_equal(x1, [[5, 6, 0], [1, 2, 3]])  # post padding
    x2, y2 = batches[2]
    np.testing.assert_array_equal(x2, [[7, 8, 9, 10]])
    np.testing.assert_array_equal(batches.restore_order(np.arange(5) * 10),
                                  [30, 0, 20, 40, 10])
    cut = bucket_by_length(seqs, batch_size=5, maxlen=2)
    np.testing.assert_array_equal(cut[0][0][-1], [9, 10])  # truncating "pre"
    with pytest.raises(ValueError, match="one entry per sequence \\(5\\), got 4"):
        bucket_by_length(seqs, y[:4])
    with pytest.raises(IndexError, match="out of range for 3 batches"):
        batches[3]


def test_bucketed_masked_lstm_equals_the_padded_run():
    """mask_zero + LSTM: buckets padded "post" to their own longest give every sample the
    prediction of the whole set padded to one length (pre or post)."""
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential
    from fastseq.preprocessing.sequence import pad_sequences

    set_random_seed(0)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 20, size=n).tolist() for n in rng.integers(1, 12, size=13)]
    model = Sequential([Embedding(20, 4, mask_zero=True), LSTM(5), Dense(1)])
    padded_pre = pad_sequences(seqs, maxlen=15)
    ref = model.predict(padded_pre, verbose=0)
    post = model.predict(pad_sequences(seqs, maxlen=15, padding="post"), verbose=0)
    np.testing.assert_allclose(post, ref, rtol=1e-5, atol=1e-6)
    batches = bucket_by_length(seqs, batch_size=4)
    in_batch_order = np.concatenate([model.predict(batches[i][0], verbose=0)
                                     for i in range(len(batches))])
    np.testing.assert_allclose(batches.restore_order(in_batch_order), ref, rtol=1e-5,
                               atol=1e-6)
