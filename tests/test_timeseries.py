"""timeseries_dataset_from_array: Keras 3's documented windows, worked by hand."""
import numpy as np
import pytest

from fastseq.utils import BatchSource, Sequence, timeseries_dataset_from_array


def all_batches(ds):
    return [ds[i] for i in range(len(ds))]


def test_keras_example_1_windows_strides_sampling_rate():
    # indices 0..98, length 10, rate 2, stride 3: starts 0, 3, ..., 78 (the last 2 points
    # are dropped: a window starting at 81 would end past 98)
    ds = timeseries_dataset_from_array(np.arange(99), None, sequence_length=10,
                                       sampling_rate=2, sequence_stride=3, batch_size=128)
    assert isinstance(ds, Sequence) and len(ds) == 1
    x = ds[0]
    assert x.shape == (27, 10)
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(x[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(x[-1], np.arange(78, 98, 2))


def test_keras_example_2_temporal_regression():
    data = np.arange(100, dtype="float32") * 0.5
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10,
                                       batch_size=16)
    inputs, targets = ds[0]
    np.testing.assert_array_equal(inputs[0], data[:10])
    assert targets[0] == data[10]
    xs = np.concatenate([b[0] for b in all_batches(ds)])
    ys = np.concatenate([b[1] for b in all_batches(ds)])
    assert len(xs) == 81 and [len(b[0]) for b in all_batches(ds)] == [16] * 5 + [1]
    np.testing.assert_array_equal(xs[:, -1] + 0.5, ys)  # each target is the next step


def test_keras_example_3_non_overlapping():
    x = np.arange(100)
    inputs = timeseries_dataset_from_array(x, None, sequence_length=20, sequence_stride=20)
    targets = timeseries_dataset_from_array(x * 2, None, sequence_length=20,
                                            sequence_stride=20)
    np.testing.assert_array_equal(inputs[0][0], x[:20])
    np.testing.assert_array_equal(targets[0][1], x[20:40] * 2)
    assert len(inputs[0]) == 5


def test_start_and_end_index_are_a_half_open_range_and_targets_follow_start():
    data = np.arange(30)
    ds = timeseries_dataset_from_array(data, data * 10, sequence_length=4, start_index=5,
                                       end_index=15, batch_size=3)
    xs = np.concatenate([b[0] for b in all_batches(ds)])
    ys = np.concatenate([b[1] for b in all_batches(ds)])
    # windows inside data[5:15]: starts 5..11
    np.testing.assert_array_equal(xs[:, 0], np.arange(5, 12))
    assert xs.max() == 14
    np.testing.assert_array_equal(ys, np.arange(5, 12) * 10)


def test_targets_shorter_than_the_windows_limit_their_number():
    ds = timeseries_dataset_from_array(np.arange(20), np.arange(3), sequence_length=2)
    assert len(ds[0][0]) == 3


def test_multifeature_data_and_unbatched_samples():
    data = np.arange(24, dtype="float32").reshape(12, 2)
    ds = timeseries_dataset_from_array(data, np.arange(12), sequence_length=3,
                                       sampling_rate=2, batch_size=None)
    assert len(ds) == 12 - 4
    x, y = ds[1]
    np.testing.assert_array_equal(x, data[[1, 3, 5]])
    assert y == 1
    batched = timeseries_dataset_from_array(data, None, sequence_length=3, batch_size=4)
    assert batched[0].shape == (4, 3, 2) and batched[0].dtype == np.float32


def test_shuffle_is_randomstate_of_the_seed_and_reshuffles_each_epoch():
    data = np.arange(50)
    ds = timeseries_dataset_from_array(data, data, sequence_length=5, batch_size=8,
                                       shuffle=True, seed=42)
    starts = np.arange(46, dtype="int32")
    np.random.RandomState(42).shuffle(starts)
    first = np.concatenate([b[1] for b in all_batches(ds)])
    np.testing.assert_array_equal(first, starts)
    np.testing.assert_array_equal(ds[0][0][:, 0], starts[:8])
    again = timeseries_dataset_from_array(data, data, sequence_length=5, batch_size=8,
                                          shuffle=True, seed=42)
    np.testing.assert_array_equal(again[0][1], ds[0][1])  # same seed, same order
    ds.on_epoch_end()
    second = np.concatenate([b[1] for b in all_batches(ds)])
    assert sorted(second) == list(range(46)) and not np.array_equal(second, first)
    plain = timeseries_dataset_from_array(data, data, sequence_length=5, batch_size=8)
    np.testing.assert_array_equal(plain[0][1], np.arange(8))


def test_memmap_is_read_one_batch_at_a_time(tmp_path):
    path = tmp_path / "series.npy"
    np.save(path, np.arange(1000, dtype="float32").reshape(500, 2))
    data = np.load(path, mmap_mode="r")
    ds = timeseries_dataset_from_array(data, None, sequence_length=7, batch_size=32)
    assert ds.data is data  # not copied whole
    np.testing.assert_array_equal(ds[3][0], np.asarray(data[96:103]))


def test_feeds_a_batch_source():
    ds = timeseries_dataset_from_array(np.arange(10.0), np.arange(10.0), sequence_length=3,
                                       batch_size=4)
    got = [y.tolist() for _, _, y, _ in BatchSource(ds).epoch()]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(start_index=-1), "`start_index` must be 0 or greater"),
    (dict(start_index=10), "`start_index` must be lower than the length"),
    (dict(start_index=5, end_index=5), "`end_index` must be higher than `start_index`"),
    (dict(end_index=10), "`end_index` must be lower than the length"),
    (dict(end_index=-2), "`end_index` must be higher than 0"),
    (dict(sampling_rate=0), "`sampling_rate` must be an int higher than 0"),
    (dict(sampling_rate=10), "`sampling_rate` must be lower than the length"),
    (dict(sequence_stride=0), "`sequence_stride` must be an int higher than 0"),
    (dict(sequence_stride=10), "`sequence_stride` must be lower than the length"),
    (dict(sequence_length=0), "`sequence_length` must be an int higher than 0"),
    (dict(batch_size=0), "`batch_size` must be an int higher than 0"),
])
def test_bad_arguments_give_kerass_errors(kwargs, match):
    args = dict(sequence_length=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        timeseries_dataset_from_array(np.arange(10), None, **args)


def test_out_of_range_batch_and_bad_data():
    ds = timeseries_dataset_from_array(np.arange(10), None, sequence_length=3, batch_size=4)
    with pytest.raises(IndexError, match="batch index 2 out of range for 2 batches"):
        ds[2]
    with pytest.raises(TypeError, match="`data` must be an array"):
        timeseries_dataset_from_array(object(), None, sequence_length=2)


def test_the_sunspot_forecast_example_beats_the_naive_forecast(capsys):
    """examples/timeseries_lstm_forecast.py (needs statsmodels, the `timeseries` extra)."""
    import importlib.util
    import re
    from pathlib import Path

    pytest.importorskip("statsmodels")
    path = Path(__file__).resolve().parent.parent / "examples" / "timeseries_lstm_forecast.py"
    spec = importlib.util.spec_from_file_location("timeseries_lstm_forecast", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--epochs", "40"]) == 0
    out = capsys.readouterr().out
    assert "238 training windows of 12 years, 59 test windows (1950-2008)" in out
    ratio = float(re.search(r"LSTM MAE / naive MAE: ([0-9.]+)", out).group(1))
    assert ratio < 0.8, out
