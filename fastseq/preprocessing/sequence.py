"""``pad_sequences`` with the Keras semantics (``keras.utils.pad_sequences``), plus a Cython
fast path for the common input: a list of lists of Python ints with an int32/int64 output.

Differences from Keras, all on input Keras mishandles: an unknown ``padding``/``truncating``
raises even when every sequence is empty; with an integer ``dtype``, a negative or
non-integer token, or one that does not fit the dtype, raises (Keras casts it silently);
``maxlen=0`` gives an empty (N, 0) array for either truncation.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._kernels import sequence as _kernel

__all__ = ["pad_sequences"]


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
