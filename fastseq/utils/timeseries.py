"""``timeseries_dataset_from_array``: sliding windows over an array, as Keras 3's
``keras.utils.timeseries_dataset_from_array``, as a Sequence of NumPy batches.

The windows are cut on demand from ``data`` (a memory-mapped array is read one batch at a
time). Window i starts at ``start_index + i * sequence_stride`` and takes ``sequence_length``
steps ``sampling_rate`` apart; its target is ``targets[start_index + i * sequence_stride]``.
"""
import numbers

import numpy as np

from .sequence_data import Sequence

__all__ = ["TimeseriesDataset", "timeseries_dataset_from_array"]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be an int higher than 0. Received: {name}={value!r}")
    return int(value)


class TimeseriesDataset(Sequence):
    """The Sequence returned by :func:`timeseries_dataset_from_array`: batch k holds the
    windows starting at ``start_positions[k * batch_size:(k + 1) * batch_size]`` (offsets
    from ``start_index``), as ``(windows, targets)``, or ``windows`` alone without targets."""

    def __init__(self, data, targets, sequence_length, sampling_rate, batch_size,
                 start_positions, start_index, end_index, shuffle=False, seed=None):
        super().__init__()
        self.data, self.targets = data, targets
        self.sequence_length, self.sampling_rate = sequence_length, sampling_rate
        self.batch_size = batch_size
        self.start_positions = start_positions
        self.start_index, self.end_index = start_index, end_index
        self.shuffle = shuffle
        self._rng = np.random.RandomState(seed) if shuffle else None
        self._offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate

    def __len__(self):
        if self.batch_size is None:
            return len(self.start_positions)
        return -(-len(self.start_positions) // self.batch_size)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        index %= len(self)
        if self.batch_size is None:
            starts = self.start_positions[index:index + 1]
        else:
            starts = self.start_positions[index * self.batch_size:(index + 1) * self.batch_size]
        starts = starts.astype(np.int64) + self.start_index
        windows = np.asarray(self.data[(starts[:, None] + self._offsets).reshape(-1)])
        windows = windows.reshape((len(starts), self.sequence_length) + windows.shape[1:])
        if self.batch_size is None:
            windows = windows[0]
        if self.targets is None:
            return windows
        target = np.asarray(self.targets[starts])
        if self.batch_size is None:
            target = target[0]
        return windows, target

    def on_epoch_end(self):
        # a new order each epoch, as Keras's reshuffling dataset (the same for one seed)
        if self.shuffle:
            self._rng.shuffle(self.start_positions)


def _as_indexable(values, name):
    if isinstance(values, np.ndarray):  # memmaps stay memmaps
        return values
    if hasattr(values, "__array__") or isinstance(values, (list, tuple)):
        return np.asarray(values)
    raise TypeError(f"`{name}` must be an array (or a list) indexed by time step on axis 0, "
                    f"got {type(values).__name__}")


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Sliding windows over ``data`` (axis 0 is time), as Keras 3.

    Returns a Sequence of ``(windows, targets)`` batches, windows of shape
    ``(batch, sequence_length) + data.shape[1:]`` (or windows alone when ``targets`` is
    None; single samples when ``batch_size`` is None). ``start_index`` / ``end_index``
    restrict the windows to ``data[start_index:end_index]``. With ``shuffle``, the windows'
    order is ``np.random.RandomState(seed).shuffle`` of their starts (Keras's first stage;
    Keras's tf.data shuffle buffer after it is not reproduced) and is redrawn each epoch.

    >>> ds = timeseries_dataset_from_array(np.arange(99), None, sequence_length=10,
    ...                                    sampling_rate=2, sequence_stride=3)
    >>> ds[0][0].tolist(), ds[0][-1].tolist()
    ([0, 2, 4, 6, 8, 10, 12, 14, 16, 18], [78, 80, 82, 84, 86, 88, 90, 92, 94, 96])
    """
    data = _as_indexable(data, "data")
    if data.ndim == 0:
        raise ValueError("`data` must have a time axis (axis 0), got a 0-d array")
    if targets is not None:
        targets = _as_indexable(targets, "targets")
    sequence_length = _positive_int(sequence_length, "sequence_length")
    # Keras's checks, in Keras's order and words (0 / None mean "not given")
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: "
                             f"start_index={start_index}")
        if start_index >= len(data):
            raise ValueError(f"`start_index` must be lower than the length of the data. "
                             f"Received: start_index={start_index}, for data of length "
                             f"{len(data)}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"`end_index` must be higher than `start_index`. Received: "
                             f"start_index={start_index}, and end_index={end_index} ")
        if end_index >= len(data):
            raise ValueError(f"`end_index` must be lower than the length of the data. "
                             f"Received: end_index={end_index}, for data of length {len(data)}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: "
                             f"end_index={end_index}")
    sampling_rate = _positive_int(sampling_rate, "sampling_rate")
    if sampling_rate >= len(data):
        raise ValueError(f"`sampling_rate` must be lower than the length of the data. "
                         f"Received: sampling_rate={sampling_rate}, for data of length "
                         f"{len(data)}")
    sequence_stride = _positive_int(sequence_stride, "sequence_stride")
    if sequence_stride >= len(data):
        raise ValueError(f"`sequence_stride` must be lower than the length of the data. "
                         f"Received: sequence_stride={sequence_stride}, for data of length "
                         f"{len(data)}")
    if batch_size is not None:
        batch_size = _positive_int(batch_size, "batch_size")

    start_index = 0 if start_index is None else int(start_index)
    end_index = len(data) if end_index is None else int(end_index)
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_seqs = min(num_seqs, len(targets))
    index_dtype = "int32" if num_seqs < 2147483647 else "int64"
    start_positions = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=index_dtype)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(start_positions)
        seed = seed + 1  # the next epochs' orders, from a stream of their own
    # the windows' targets are read from targets[start_index:] (Keras slices both arrays)
    return TimeseriesDataset(data, targets, sequence_length, sampling_rate, batch_size,
                             start_positions, start_index, end_index, shuffle=shuffle, seed=seed)
