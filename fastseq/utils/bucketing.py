"""Bucketing: batches of ragged sequences of similar length, each padded only to its own
longest, instead of every sequence to the longest of the whole corpus.

    batches = bucket_by_length(x_ragged, y, batch_size=32)
    model.fit(batches, epochs=3, shuffle=True)       # a new batch order each epoch
    probs = batches.restore_order(model.predict(bucket_by_length(x_test_ragged)))

With ``padding="post"`` (the default here) and a model whose Embedding has
``mask_zero=True``, an LSTM gives every sample the same result as the run padded to one
length: the masked steps after the sequence keep its state and repeat its last output.
"""
import numpy as np

from .sequence_data import Sequence

__all__ = ["BucketedSequence", "bucket_by_length"]


def _per_sample(values, n, name):
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim == 0 or len(values) != n:
        got = "a scalar" if values.ndim == 0 else f"{len(values)}"
        raise ValueError(f"bucket_by_length: {name} must have one entry per sequence ({n}), "
                         f"got {got}")
    return values


class BucketedSequence(Sequence):
    """The Sequence made by :func:`bucket_by_length`. ``permutation[k]`` is the position in
    the input of the k-th sample in batch order; ``restore_order`` puts per-sample results
    (e.g. ``predict``'s output, made in batch order) back in the input's order."""

    def __init__(self, sequences, y=None, sample_weight=None, batch_size=32, maxlen=None,
                 padding="post", truncating="pre", dtype="int32", value=0, **kwargs):
        super().__init__(**kwargs)
        from fastseq.preprocessing.sequence import _check_mode

        _check_mode("padding", padding)
        _check_mode("truncating", truncating)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"bucket_by_length: batch_size must be an int >= 1, got "
                             f"{batch_size!r}")
        if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
            raise TypeError("bucket_by_length: sequences must be a list of sequences, got "
                            f"{type(sequences).__name__}")
        self.sequences = sequences
        n = len(sequences)
        lengths = np.empty(n, dtype=np.int64)
        for i, s in enumerate(sequences):
            try:
                lengths[i] = len(s)
            except TypeError:
                raise TypeError(f"bucket_by_length: sequences[{i}] is a "
                                f"{type(s).__name__}, expected a sequence") from None
        if maxlen is not None:
            lengths = np.minimum(lengths, maxlen)
        self.lengths = lengths
        self.y = _per_sample(y, n, "y")
        self.sample_weight = _per_sample(sample_weight, n, "sample_weight")
        self.batch_size = int(batch_size)
        self.maxlen, self.padding, self.truncating = maxlen, padding, truncating
        self.dtype, self.value = dtype, value
        # stable: samples of one length keep their input order
        self.permutation = np.argsort(lengths, kind="stable")

    def __len__(self):
        return -(-len(self.permutation) // self.batch_size)

    def __getitem__(self, index):
        from fastseq.preprocessing.sequence import pad_sequences

        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        index %= len(self)
        rows = self.permutation[index * self.batch_size:(index + 1) * self.batch_size]
        longest = int(self.lengths[rows[-1]])  # sorted: the last is the longest
        x = pad_sequences([self.sequences[i] for i in rows], maxlen=longest,
                          dtype=self.dtype, padding=self.padding, truncating=self.truncating,
                          value=self.value)
        if self.y is None:
            return (x,)
        if self.sample_weight is None:
            return x, self.y[rows]
        return x, self.y[rows], self.sample_weight[rows]

    def restore_order(self, results):
        """Per-sample ``results`` in batch order -> the same rows in the input's order."""
        results = np.asarray(results)
        if len(results) != len(self.permutation):
            raise ValueError(f"restore_order: expected {len(self.permutation)} rows (one per "
                             f"sequence), got {len(results)}")
        out = np.empty_like(results)
        out[self.permutation] = results
        return out


def bucket_by_length(sequences, y=None, batch_size=32, sample_weight=None, maxlen=None,
                     padding="post", truncating="pre", dtype="int32", value=0, **kwargs):
    """A Sequence of batches of similar-length ``sequences`` (sorted by length, stable),
    each padded (``pad_sequences``) only to its own longest, or cut to ``maxlen``.

    Batches are ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``. The returned object's
    ``permutation`` gives the input position of each sample in batch order, and its
    ``restore_order(predictions)`` undoes it. ``kwargs``: the PyDataset settings
    (``workers``, ``use_multiprocessing``, ``max_queue_size``).
    """
    return BucketedSequence(sequences, y=y, sample_weight=sample_weight, batch_size=batch_size,
                            maxlen=maxlen, padding=padding, truncating=truncating, dtype=dtype,
                            value=value, **kwargs)
