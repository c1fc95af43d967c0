"""``pad_sequences`` with the Keras semantics (``keras.utils.pad_sequences``), plus a Cython
fast path for the common input: a list of lists of Python ints with an int32/int64 output.
Also keras-preprocessing 1.1.2's ``skipgrams``, ``make_sampling_table``,
``TimeseriesGenerator`` (+ ``timeseries_generator_from_json``) and ``_remove_long_seq``, with
the same random draws for the same seeds (Python's ``random`` for skipgrams, NumPy's global
generator for a shuffling TimeseriesGenerator).

Differences from Keras, all on input Keras mishandles: an unknown ``padding``/``truncating``
raises even when every sequence is empty; with an integer ``dtype``, a negative or
non-integer token, or one that does not fit the dtype, raises (Keras casts it silently);
``maxlen=0`` gives an empty (N, 0) array for either truncation.
"""
from __future__ import annotations

import json
import numbers
import random

import numpy as np

from .._kernels import sequence as _kernel
from ..utils.sequence_data import Sequence

__all__ = ["pad_sequences", "make_sampling_table", "skipgrams", "TimeseriesGenerator",
           "timeseries_generator_from_json"]


def _check_mode(name, mode):
    if mode not in ("pre", "post"):
        raise ValueError(
            f'{name.capitalize()} type "{mode}" not understood; expected "pre" or "post"')


def _integer_rows(trunc, dtype, where, offset=0):
    """``trunc`` as ``dtype`` (an integer dtype), refusing floats, negatives and overflow.
    ``where`` names the sequence, ``offset`` is the position of trunc[0] in it."""
    arr = np.asarray(trunc)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "O":  # mixed: find the first element that is not an int
            for j, t in enumerate(arr.reshape(-1).tolist()):
                if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                    raise TypeError(f"{where}[{offset + j}] = {t!r} is {type(t).__name__}; with "
                                    f"an integer dtype ({dtype}) every token must be an int")
            try:
                arr = arr.astype(np.int64)
            except OverflowError:
                raise ValueError(f"{where} holds an int that does not fit in {dtype}") from None
        else:
            raise TypeError(f"{where} holds {arr.dtype} values; with an integer dtype "
                            f"({dtype}) every token must be an int (pass dtype='float32' to "
                            "pad float features)")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0:
            j = np.unravel_index(np.argmin(arr), arr.shape)
            pos = f"[{offset + j[0]}]" if arr.ndim == 1 else f"[:, {offset + j[1]}]"
            raise ValueError(f"{where}{pos} = {lo} is negative; token ids must be >= 0")
        if hi > np.iinfo(dtype).max:
            raise ValueError(f"{where} holds {hi}, which does not fit in {dtype}")
    return arr.astype(dtype, copy=False)


def _pad_array(sequences, maxlen, dtype, padding, truncating, value):
    """The vectorised path for an (N, T, ...) array: every row is a length-T sequence."""
    n, t = sequences.shape[:2]
    if maxlen is None:
        maxlen = t
    out = np.full((n, maxlen) + sequences.shape[2:], value, dtype=dtype)
    take = min(t, maxlen)
    if take == 0:
        return out
    first = t - take if truncating == "pre" else 0
    src = sequences[:, first:first + take]
    if dtype.kind in "iu":
        src = _integer_rows(src, dtype, "sequences", first)
    if padding == "post":
        out[:, :take] = src
    else:
        out[:, maxlen - take:] = src
    return out


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or truncate) sequences to one length, as ``keras.utils.pad_sequences``.

    sequences: N sequences (lists of ints, or arrays) -> (N, maxlen) array of ``dtype``
    (``maxlen`` defaults to the longest sequence). ``padding`` puts the ``value``s before
    ("pre") or after ("post") each sequence; ``truncating`` cuts longer sequences at the
    beginning ("pre") or the end ("post").

    >>> pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2)
    array([[0, 1],
           [2, 3],
           [5, 6]], dtype=int32)
    """
    _check_mode("padding", padding)
    _check_mode("truncating", truncating)
    if maxlen is not None and (isinstance(maxlen, bool)
                               or not isinstance(maxlen, numbers.Integral)):
        raise TypeError(f"maxlen must be None or an int, got {type(maxlen).__name__}")
    if maxlen is not None and maxlen < 0:
        raise ValueError(f"maxlen must be >= 0, got {maxlen}")
    if isinstance(sequences, np.ndarray) and sequences.ndim == 0:
        raise ValueError("`sequences` must be a list of sequences or an array of rank >= 2, got "
                         "a 0-d array")
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be a list of sequences (something with a length), "
                         f"got {type(sequences).__name__}")
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
            "You should set `dtype=object` for variable length strings.")
    dtype = np.dtype(dtype)
    if maxlen is not None:
        maxlen = int(maxlen)

    if isinstance(sequences, np.ndarray) and sequences.ndim >= 2 and sequences.dtype != object:
        return _pad_array(sequences, maxlen, dtype, padding, truncating, value)
    if not isinstance(sequences, list):
        sequences = list(sequences)

    lengths = []
    for d, s in enumerate(sequences):
        if isinstance(s, (str, bytes)) and dtype.kind in "iub":
            raise TypeError(f"sequences[{d}] is a {type(s).__name__}, expected a sequence of ints")
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError("`sequences` must be a list of iterables. "
                             f"Found non-iterable: {s!r} at position {d}") from None
    if maxlen is None:
        maxlen = max(lengths, default=0)

    if dtype in (np.dtype(np.int32), np.dtype(np.int64)):
        out = np.full((len(sequences), maxlen), value, dtype=dtype)
        if _kernel.pad_int_lists(sequences, out, padding == "post", truncating == "post") < 0:
            return out
        # some sequence is not a list of Python ints (an array, NumPy ints, vectors...)
    return _pad_generic(sequences, lengths, maxlen, dtype, padding, truncating, value)


def _pad_generic(sequences, lengths, maxlen, dtype, padding, truncating, value):
    """The Keras algorithm, with the integer checks."""
    sample_shape = ()
    for s, length in zip(sequences, lengths):
        if length:  # the sample shape of the first non-empty sequence
            sample_shape = np.asarray(s).shape[1:]
            break
    x = np.full((len(sequences), maxlen) + sample_shape, value, dtype=dtype)
    if maxlen == 0:
        return x
    for idx, s in enumerate(sequences):
        if not lengths[idx]:
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if dtype.kind in "iu":
            offset = lengths[idx] - len(trunc) if truncating == "pre" else 0
            trunc = _integer_rows(trunc, dtype, f"sequences[{idx}]", offset)
        else:
            trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(
                f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} is "
                f"different from expected shape {sample_shape}")
        if padding == "post":
            x[idx, : len(trunc)] = trunc
        else:
            x[idx, -len(trunc):] = trunc
    return x


def make_sampling_table(size, sampling_factor=1e-5):
    """``sampling_table[i]``: the probability of keeping the i-th most common word, word2vec's
    ``min(1, sqrt(f / sampling_factor) / (f / sampling_factor))`` with Zipf's law for the
    frequency f of rank i (``rank * (log(rank) + gamma) + 1/2 - 1/(12 rank)`` its inverse),
    as keras-preprocessing. -> a (size,) float array, for ``skipgrams(sampling_table=...)``."""
    gamma = 0.577
    rank = np.arange(size)
    rank[0] = 1  # the non-word 0 gets rank 1's probability
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, f / np.sqrt(f))


def skipgrams(sequence, vocabulary_size, window_size=4, negative_samples=1.0, shuffle=True,
              categorical=False, sampling_table=None, seed=None):
    """Skip-gram pairs of a sequence of word ids, as keras-preprocessing 1.1.2.

    Positive pairs ``[w_i, w_j]`` (label 1) for every j != i within ``window_size`` of i
    (index 0 is a non-word: skipped); then ``int(len(positives) * negative_samples)``
    negative pairs ``[w, random id in [1, vocabulary_size)]`` (label 0), their first words
    the positives' first words shuffled. ``sampling_table[w]`` is the probability of keeping
    w as a pair's first word. Labels are ``[0, 1]`` / ``[1, 0]`` when ``categorical``.
    ``shuffle`` shuffles the pairs and labels alike, reseeding Python's ``random`` with
    ``seed`` (as Keras). -> (couples, labels), two lists.
    """
    couples = []
    labels = []
    for i, wi in enumerate(sequence):
        if not wi:
            continue
        if sampling_table is not None and sampling_table[wi] < random.random():
            continue
        window_start = max(0, i - window_size)
        window_end = min(len(sequence), i + window_size + 1)
        for j in range(window_start, window_end):
            if j != i:
                wj = sequence[j]
                if not wj:
                    continue
                couples.append([wi, wj])
                labels.append([0, 1] if categorical else 1)

    if negative_samples > 0:
        num_negative_samples = int(len(labels) * negative_samples)
        words = [c[0] for c in couples]
        random.shuffle(words)
        couples += [[words[i % len(words)], random.randint(1, vocabulary_size - 1)]
                    for i in range(num_negative_samples)]
        labels += [[1, 0] if categorical else 0] * num_negative_samples

    if shuffle:
        if seed is None:
            seed = random.randint(0, int(10e6))  # Keras's 10e6, as an int for Python 3.12
        random.seed(seed)
        random.shuffle(couples)
        random.seed(seed)
        random.shuffle(labels)
    return couples, labels


def _remove_long_seq(maxlen, seq, label):
    """The sequences shorter than ``maxlen`` and their labels (Keras's dataset loaders)."""
    new_seq, new_label = [], []
    for x, y in zip(seq, label):
        if len(x) < maxlen:
            new_seq.append(x)
            new_label.append(y)
    return new_seq, new_label


class TimeseriesGenerator(Sequence):
    """Batches of windows over a time series, as keras-preprocessing 1.1.2 (a Sequence, so
    ``fit`` takes it). The sample ending at step ``row`` is
    ``data[row - length:row:sampling_rate]`` and its target ``targets[row]``; rows run from
    ``start_index + length`` to ``end_index`` (inclusive) every ``stride`` steps, or are drawn
    at random (``np.random.randint``, batch_size of them per batch) when ``shuffle``.
    ``reverse`` gives each window in reverse time order."""

    def __init__(self, data, targets, length, sampling_rate=1, stride=1, start_index=0,
                 end_index=None, shuffle=False, reverse=False, batch_size=128):
        super().__init__()
        if len(data) != len(targets):
            raise ValueError("Data and targets have to be of same length. Data length is "
                             f"{len(data)} while target length is {len(targets)}")
        self.data = data
        self.targets = targets
        self.length = length
        self.sampling_rate = sampling_rate
        self.stride = stride
        self.start_index = start_index + length
        if end_index is None:
            end_index = len(data) - 1
        self.end_index = end_index
        self.shuffle = shuffle
        self.reverse = reverse
        self.batch_size = batch_size
        if self.start_index > self.end_index:
            raise ValueError(f"`start_index+length={self.start_index} > "
                             f"end_index={self.end_index}` is disallowed, as no part of the "
                             "sequence would be left to be used as current step.")

    def __len__(self):
        return ((self.end_index - self.start_index + self.batch_size * self.stride)
                // (self.batch_size * self.stride))

    def __getitem__(self, index):
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            i = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(i, min(i + self.batch_size * self.stride, self.end_index + 1),
                             self.stride)
        samples = np.array([self.data[row - self.length:row:self.sampling_rate]
                            for row in rows])
        targets = np.array([self.targets[row] for row in rows])
        if self.reverse:
            return samples[:, ::-1, ...], targets
        return samples, targets

    def get_config(self):
        """The generator's arguments as a dict (data and targets as JSON strings)."""
        def to_json(values, name):
            if type(values).__module__ == np.__name__:
                values = values.tolist()
            try:
                return json.dumps(values)
            except TypeError:
                raise TypeError(f"{name} not JSON serializable: {type(values).__name__}") from None

        return {
            "data": to_json(self.data, "Data"),
            "targets": to_json(self.targets, "Targets"),
            "length": self.length,
            "sampling_rate": self.sampling_rate,
            "stride": self.stride,
            # the argument, so that the round trip gives the same windows (keras-preprocessing
            # stored start_index + length here, shifting a reloaded generator by length)
            "start_index": self.start_index - self.length,
            "end_index": self.end_index,
            "shuffle": self.shuffle,
            "reverse": self.reverse,
            "batch_size": self.batch_size,
        }

    def to_json(self, **kwargs):
        """``{"class_name": ..., "config": get_config()}`` as JSON (``kwargs`` to json.dumps);
        ``timeseries_generator_from_json`` reads it back."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()},
                          **kwargs)


def timeseries_generator_from_json(json_string):
    """A TimeseriesGenerator from ``TimeseriesGenerator.to_json()``'s string, as Keras."""
    config = dict(json.loads(json_string).get("config"))
    config["data"] = json.loads(config.pop("data"))
    config["targets"] = json.loads(config.pop("targets"))
    return TimeseriesGenerator(**config)
