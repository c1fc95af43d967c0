"""skipgrams, make_sampling_table, TimeseriesGenerator and _remove_long_seq, against the
rules and examples of keras-preprocessing 1.1.2's docs."""
import json
import random

import numpy as np
import pytest

from fastseq.preprocessing import sequence
from fastseq.preprocessing.sequence import (
    TimeseriesGenerator,
    _remove_long_seq,
    make_sampling_table,
    skipgrams,
    timeseries_generator_from_json,
)
from fastseq.utils import BatchSource, Sequence


def test_make_sampling_table_is_the_word2vec_formula_with_zipf():
    size, factor = 6, 1e-5
    rank = np.array([1, 1, 2, 3, 4, 5], dtype=float)
    f = factor * (rank * (np.log(rank) + 0.577) + 0.5 - 1 / (12 * rank))
    expected = np.minimum(1, np.sqrt(1 / f) * f)  # sqrt(f)/f written the other way
    np.testing.assert_allclose(make_sampling_table(size, factor), expected, rtol=1e-12)
    np.testing.assert_allclose(make_sampling_table(3), [0.00315225, 0.00315225, 0.00547597],
                               rtol=1e-4)
    assert make_sampling_table(10, sampling_factor=1.0).max() == 1.0  # capped


def test_skipgrams_positive_pairs_by_hand():
    couples, labels = skipgrams([1, 2, 0, 3], vocabulary_size=4, window_size=1,
                                negative_samples=0, shuffle=False)
    # 0 is a non-word: never a first word, never a context word
    assert couples == [[1, 2], [2, 1]]
    assert labels == [1, 1]
    couples, labels = skipgrams([1, 2, 3], vocabulary_size=4, window_size=2,
                                negative_samples=0, shuffle=False, categorical=True)
    assert couples == [[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]
    assert labels == [[0, 1]] * 6


def test_skipgrams_negatives_and_seeded_shuffle():
    seq = [1, 2, 3, 4, 5]
    random.seed(0)
    couples, labels = skipgrams(seq, vocabulary_size=10, window_size=1, negative_samples=2.0,
                                seed=7)
    assert labels.count(1) == 8 and labels.count(0) == 16
    positives = {(a, b) for (a, b), lab in zip(couples, labels) if lab == 1}
    assert positives == {(1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3), (4, 5), (5, 4)}
    for (a, b), lab in zip(couples, labels):
        assert 1 <= b <= 9
    random.seed(0)
    again = skipgrams(seq, vocabulary_size=10, window_size=1, negative_samples=2.0, seed=7)
    assert again == (couples, labels)  # the same draws for the same seeds


def test_skipgrams_sampling_table_drops_words():
    table = np.zeros(5)
    table[2] = 1.0  # only word 2 is ever kept as a first word
    couples, _ = skipgrams([1, 2, 3, 4], 5, window_size=1, negative_samples=0,
                           shuffle=False, sampling_table=table)
    assert couples == [[2, 1], [2, 3]]


def test_remove_long_seq():
    seqs, labels = _remove_long_seq(3, [[1, 2], [1, 2, 3], [1]], ["a", "b", "c"])
    assert seqs == [[1, 2], [1]] and labels == ["a", "c"]


def test_timeseries_generator_docstring_example():
    data = np.array([[i] for i in range(50)])
    gen = TimeseriesGenerator(data, data, length=10, sampling_rate=2, batch_size=2)
    assert isinstance(gen, Sequence) and len(gen) == 20
    x, y = gen[0]
    np.testing.assert_array_equal(x, [[[0], [2], [4], [6], [8]], [[1], [3], [5], [7], [9]]])
    np.testing.assert_array_equal(y, [[10], [11]])
    x, y = gen[len(gen) - 1]
    np.testing.assert_array_equal(y, [[48], [49]])


def test_timeseries_generator_stride_bounds_reverse():
    data = np.arange(20)
    gen = TimeseriesGenerator(data, data * 10, length=3, stride=4, start_index=2, end_index=15,
                              batch_size=2, reverse=True)
    # rows 5, 9, 13 (start_index + length .. end_index inclusive, every 4)
    assert len(gen) == 2
    x, y = gen[0]
    np.testing.assert_array_equal(x, [[4, 3, 2], [8, 7, 6]])
    np.testing.assert_array_equal(y, [50, 90])
    np.testing.assert_array_equal(gen[1][1], [130])
    with pytest.raises(ValueError, match="`start_index\\+length=50 > end_index=49`"):
        TimeseriesGenerator(np.zeros(50), np.zeros(50), length=50)
    with pytest.raises(ValueError, match="same length"):
        TimeseriesGenerator(np.zeros(5), np.zeros(4), length=2)


def test_timeseries_generator_shuffle_uses_numpy_global_rng():
    data = np.arange(30)
    gen = TimeseriesGenerator(data, data, length=4, shuffle=True, batch_size=3)
    np.random.seed(5)
    x, y = gen[0]
    np.random.seed(5)
    rows = np.random.randint(4, 30, size=3)
    np.testing.assert_array_equal(y, rows)
    np.testing.assert_array_equal(x, [data[r - 4:r] for r in rows])


def test_timeseries_generator_json_round_trip_gives_the_same_batches():
    data = np.arange(40).reshape(20, 2)
    targets = np.arange(20)
    gen = TimeseriesGenerator(data, targets, length=3, sampling_rate=2, stride=2,
                              start_index=1, end_index=17, batch_size=3, reverse=True)
    text = gen.to_json(indent=1)
    assert json.loads(text)["class_name"] == "TimeseriesGenerator"
    back = timeseries_generator_from_json(text)
    assert back.get_config() == gen.get_config()
    assert len(back) == len(gen)
    for i in range(len(gen)):
        for a, b in zip(back[i], gen[i]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="Data not JSON serializable"):
        TimeseriesGenerator([object()] * 5, list(range(5)), length=2).get_config()


def test_timeseries_generator_feeds_a_batch_source():
    data = np.arange(12, dtype="float32").reshape(-1, 1)
    gen = TimeseriesGenerator(data, data, length=2, batch_size=4)
    got = [y.ravel().tolist() for _, _, y, _ in BatchSource(gen, workers=1).epoch()]
    assert got == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]


def test_exports():
    for name in ("skipgrams", "make_sampling_table", "TimeseriesGenerator",
                 "timeseries_generator_from_json", "pad_sequences"):
        assert name in sequence.__all__
