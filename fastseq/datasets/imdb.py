"""The IMDB sentiment dataset, as ``keras.datasets.imdb``: ``load_data`` and ``get_word_index``.

Where the data comes from, in order:

1. ``path=``: a Keras ``imdb.npz`` (integer sequences), or the raw reviews
   ``imdb_reviews.csv.gz`` (columns ``split,label,rating,review_id,text``), or a directory
   holding one of them. A bare file name that does not exist in the working directory is
   looked up in the places below, as Keras looks it up in its cache.
2. the directory in the environment variable ``FASTSEQ_DATA``;
3. the cache directory: ``FASTSEQ_CACHE_DIR``, else ``~/.fastseq/datasets``;
4. Keras's own cache, ``~/.keras/datasets``;
5. a download of Keras's ``imdb.npz`` into the cache directory, checked against the SHA-256
   Keras publishes. ``download=False`` or ``FASTSEQ_OFFLINE=1`` skips it; then, with no
   file anywhere, ``load_data`` fails at once with a FileNotFoundError that lists where it
   looked and how to provide the file.

The raw reviews are turned into Keras-style sequences with the Keras word index
(``imdb_word_index.json``, found next to the reviews or in the places above): lower-case,
the Keras Tokenizer's filters (so ``<br />`` gives the word ``br``), each word replaced by
its frequency rank; words missing from the index are skipped, as Keras's file skips words
it never indexed. This comes close to Keras's ``imdb.npz`` but is not identical (its exact
tokenisation is unpublished). The tokenised reviews are cached as an ``.npz`` in the cache
directory, keyed by the source files' paths, sizes and modification times, so only the
first call pays for tokenising the 50,000 reviews.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .._kernels import sequence as _kernel
from ..preprocessing.text import DEFAULT_FILTERS

__all__ = ["load_data", "load_reviews", "get_word_index", "cache_dir"]

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
NPZ_NAME = "imdb.npz"
NPZ_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_NAME = "imdb_word_index.json"
WORD_INDEX_MD5 = "bfafd718b763782e994055a2d397834f"
RAW_NAME = "imdb_reviews.csv.gz"
RAW_HEADER = ["split", "label", "rating", "review_id", "text"]
# Bump when the tokenisation of the raw reviews changes: old caches are then ignored.
_TOKENS_VERSION = 1
_DOWNLOAD_TIMEOUT_S = 15


def cache_dir():
    """Where fastseq caches datasets: ``$FASTSEQ_CACHE_DIR`` or ``~/.fastseq/datasets``."""
    return Path(os.environ.get("FASTSEQ_CACHE_DIR") or Path.home() / ".fastseq" / "datasets")


def _search_dirs():
    """(description, directory) in lookup order, after an explicit path."""
    dirs = []
    data = os.environ.get("FASTSEQ_DATA")
    if data:
        dirs.append(("$FASTSEQ_DATA", Path(data).expanduser()))
    dirs.append(("the fastseq cache", cache_dir()))
    dirs.append(("the Keras cache", Path.home() / ".keras" / "datasets"))
    return dirs


def _offline(download):
    if download is not None:
        return not download
    return os.environ.get("FASTSEQ_OFFLINE", "") not in ("", "0")


def _not_found(what, looked, how, extra=""):
    places = "\n".join(f"  - {p}" for p in looked)
    return FileNotFoundError(
        f"{what} not found. Looked in:\n{places}\n{extra}To provide it: {how}")


def _find(names, path, looked):
    """The first existing file among ``names`` in ``path`` (file or directory) or the search
    directories; records every place it looked in ``looked``."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        if p.is_dir():
            for name in names:
                looked.append(str(p / name))
                if (p / name).is_file():
                    return p / name
            return None
        looked.append(str(p))
        if p.parent != Path("."):  # a real path that does not exist: look no further
            return None
        names = [p.name]            # a bare file name: look for it where Keras would
    for _, d in _search_dirs():
        for name in names:
            looked.append(str(d / name))
            if (d / name).is_file():
                return d / name
    return None


def _download(url, dest, sha256=None, md5=None):
    """Fetch ``url`` into ``dest`` (atomically) and check its hash; raises OSError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256() if sha256 else hashlib.md5(usedforsecurity=False)
    expected = sha256 or md5
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected:
            raise OSError(f"the file downloaded from {url} has hash {digest.hexdigest()}, "
                          f"expected {expected}: refusing to use it")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _locate(names, path, download_name, download_hash, what, how, download):
    """Find one of ``names``; failing that, download ``download_name`` unless offline."""
    looked = []
    found = _find(names, path, looked)
    if found is not None:
        return found
    dest = cache_dir() / download_name
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir() or p.parent != Path("."):  # an explicit place: never download
            raise _not_found(what, looked, how)
        dest = cache_dir() / p.name  # a bare file name: Keras's cache name
    if _offline(download):
        raise _not_found(what, looked, how,
                         "Downloading is off (download=False or FASTSEQ_OFFLINE is set).\n")
    url = ORIGIN + download_name
    try:
        return _download(url, dest, **download_hash)
    except (OSError, urllib.error.URLError) as e:
        raise _not_found(what, looked, how,
                         f"Downloading {url} failed: {e}\n") from None


def _how_imdb():
    return ("pass path= (a Keras imdb.npz, or imdb_reviews.csv.gz with imdb_word_index.json "
            "next to it), or set FASTSEQ_DATA to a directory holding one of them, or copy "
            f"Keras's imdb.npz ({ORIGIN}{NPZ_NAME}) into {cache_dir()}.")


def _how_word_index():
    return (f"pass path= to {WORD_INDEX_NAME}, or put it in $FASTSEQ_DATA or {cache_dir()} "
            f"(Keras's copy: {ORIGIN}{WORD_INDEX_NAME}).")


def get_word_index(path=None, download=None):
    """The Keras IMDB word index: word -> frequency rank (1 = "the"), as
    ``keras.datasets.imdb.get_word_index``."""
    found = _locate([WORD_INDEX_NAME], path, WORD_INDEX_NAME, {"md5": WORD_INDEX_MD5},
                    f"The IMDB word index ({WORD_INDEX_NAME})", _how_word_index(), download)
    try:
        with open(found, encoding="utf-8") as f:
            word_index = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{found} is not a valid IMDB word index (JSON word -> rank): {e}") from None
    if not isinstance(word_index, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in word_index.values()):
        raise ValueError(f"{found} is not a valid IMDB word index: expected a JSON object "
                         "mapping words to integer ranks")
    return word_index


# -- sources: each returns the raw ranks as flat arrays -------------------------------------

def _ragged_from_lists(seqs, where):
    """An object array (or list) of int lists -> (flat int64 ids, int64 offsets (N + 1,))."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    try:
        flat = np.fromiter((w for s in seqs for w in s), dtype=np.int64, count=int(offsets[-1]))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: sequences must hold integers: {e}") from None
    return flat, offsets


def _read_npz(path):
    # Keras's file holds pickled object arrays, so it is loaded with allow_pickle; anything
    # that is not a zip archive is refused first (np.load would unpickle a bare pickle).
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a valid Keras imdb.npz: not a zip archive")
    try:
        with np.load(path, allow_pickle=True) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise ValueError(f"missing arrays {missing} (found {f.files})")
            parts = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError,
            pickle.UnpicklingError) as e:
        raise ValueError(f"{path} is not a valid Keras imdb.npz: {e}") from None
    out = {}
    for split in ("train", "test"):
        x, y = parts[f"x_{split}"], parts[f"y_{split}"]
        if len(x) != len(y):
            raise ValueError(f"{path} is corrupted: x_{split} has {len(x)} reviews but "
                             f"y_{split} has {len(y)} labels")
        out[split] = _ragged_from_lists(x, f"{path} x_{split}") + (np.asarray(y),)
    return out


def _read_reviews_csv(path, stride=1):
    """(splits, labels, texts) from the raw reviews file (.csv or .csv.gz); with
    ``stride`` > 1 only every stride-th review (each review is one line in this file)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    splits, labels, texts = [], [], []
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            if stride > 1:  # parse only the lines kept: the file holds one review per line
                header = f.readline()
                lines = f.read().split("\n")[::stride]
                reader = csv.reader([header] + [ln for ln in lines if ln])
            else:
                reader = csv.reader(f)
            header = next(reader, None)
            if header != RAW_HEADER:
                raise ValueError(f"header is {header}, expected {RAW_HEADER}")
            for row in reader:
                if len(row) != 5 or row[0] not in ("train", "test") or row[1] not in ("0", "1"):
                    raise ValueError(f"record {reader.line_num} is malformed: {row[:4]}")
                splits.append(row[0])
                labels.append(int(row[1]))
                texts.append(row[4])
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, ValueError) as e:
        raise ValueError(f"{path} is not a valid IMDB reviews file: {e}") from None
    return np.array(splits), np.array(labels, dtype=np.int64), texts


def _file_key(path):
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def _tokens_cache_path(raw_path, word_index_path):
    key = f"v{_TOKENS_VERSION}|{_file_key(raw_path)}|{_file_key(word_index_path)}"
    return cache_dir() / f"imdb_reviews.tokens.{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _load_tokens_cache(cache_path):
    try:
        with np.load(cache_path) as f:
            return {split: (f[f"{split}_ids"].astype(np.int64), f[f"{split}_offsets"],
                            f[f"{split}_labels"]) for split in ("train", "test")}
    except Exception:  # a stale or broken cache is rebuilt, never trusted
        return None


def _save_tokens_cache(cache_path, parts):
    arrays = {}
    for split, (ids, offsets, labels) in parts.items():
        arrays[f"{split}_ids"] = ids.astype(np.int32)
        arrays[f"{split}_offsets"] = offsets
        arrays[f"{split}_labels"] = labels
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, cache_path)
    except OSError as e:
        warnings.warn(f"could not cache the tokenised IMDB reviews in {cache_path.parent}: {e}",
                      RuntimeWarning, stacklevel=3)


def _word_index_beside(raw_path, download):
    beside = Path(raw_path).parent / WORD_INDEX_NAME
    return beside if beside.is_file() else _locate(
        [WORD_INDEX_NAME], None, WORD_INDEX_NAME, {"md5": WORD_INDEX_MD5},
        f"The IMDB word index ({WORD_INDEX_NAME}, needed to tokenise {raw_path})",
        _how_word_index(), download)


def tokenize_reviews(texts, word_index):
    """Reviews -> their words' ranks in ``word_index`` (unknown words skipped), with the
    Keras Tokenizer's default rules. texts: list of str (N,) -> (ids int64, offsets (N + 1,))."""
    return _kernel.encode_texts(list(texts), DEFAULT_FILTERS, " ", True, word_index, 0, -1,
                                True)


def _read_reviews(raw_path, download, stride=1):
    wi_path = _word_index_beside(raw_path, download)
    cache_path = _tokens_cache_path(raw_path, wi_path) if stride == 1 else None
    if cache_path is not None and cache_path.is_file():
        parts = _load_tokens_cache(cache_path)
        if parts is not None:
            return parts
    word_index = get_word_index(wi_path)
    splits, labels, texts = _read_reviews_csv(raw_path, stride)
    ids, offsets = tokenize_reviews(texts, word_index)
    parts = {}
    for split in ("train", "test"):
        rows = np.flatnonzero(splits == split)
        parts[split] = _take_rows(ids, offsets, rows) + (labels[rows],)
    if cache_path is not None:
        _save_tokens_cache(cache_path, parts)
    return parts


def _take_rows(ids, offsets, rows):
    """The ragged rows ``rows`` of (ids, offsets), in that order -> (ids, offsets)."""
    lengths = (offsets[1:] - offsets[:-1])[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # position of each output element in ids: its row's start + its place within the row
    within = np.arange(new_offsets[-1], dtype=np.int64) - np.repeat(new_offsets[:-1], lengths)
    return ids[np.repeat(offsets[:-1][rows], lengths) + within], new_offsets


def _as_object_array(lists):
    out = np.empty(len(lists), dtype=object)
    out[:] = lists
    return out


def load_data(path=None, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, download=None, limit=None, **kwargs):
    """The IMDB reviews as Keras-style sequences: ``(x_train, y_train), (x_test, y_test)``.

    The arguments mean what they mean in ``keras.datasets.imdb.load_data``:

    - ``seed``: both splits are shuffled with ``np.random.RandomState(seed)``;
    - ``start_char``: each sequence starts with it (None: no start mark); words are shifted
      by ``index_from`` (word rank r becomes r + index_from);
    - ``maxlen``: sequences with ``len >= maxlen`` (start mark included) are dropped;
    - ``num_words``, ``skip_top``: ids outside [skip_top, num_words) become ``oov_char``
      (or are removed when it is None). Without ``num_words`` the bound is the largest id,
      so, as in Keras, that one id becomes ``oov_char`` too.

    x_train and x_test are 1-D object arrays of lists of int (len, slicing, fancy indexing
    and iteration work as with the lists Keras 3 returns); y_train and y_test int64 arrays.
    ``limit`` (fastseq only, for quick runs): read about ``limit`` reviews per split, evenly
    spaced over the file (so both labels), instead of all 25,000; only the raw-reviews source
    skips the unread reviews' parsing and tokenising. See the module docstring for ``path``
    and ``download``."""
    if "nb_words" in kwargs:  # Keras 1 name
        num_words = kwargs.pop("nb_words")
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    for name, v in (("num_words", num_words), ("maxlen", maxlen), ("limit", limit)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise ValueError(f"{name} must be None or an int >= 0, got {v!r}")
    source = _locate([NPZ_NAME, RAW_NAME], path, NPZ_NAME, {"sha256": NPZ_SHA256},
                     "The IMDB dataset", _how_imdb(), download)
    stride = 1
    if source.suffix == ".npz":
        parts = _read_npz(source)
        if limit:
            stride = max(1, len(parts["train"][2]) // limit)
            parts = {k: _take_rows(ids, offsets, np.arange(0, len(labels), stride)) +
                     (labels[::stride],) for k, (ids, offsets, labels) in parts.items()}
    else:
        if limit:  # the file holds 25,000 reviews per split, sorted by split and label
            stride = max(1, 25000 // limit)
        parts = _read_reviews(source, download, stride)

    rng = np.random.RandomState(seed)
    shuffled = {}
    for split in ("train", "test"):  # the same draws in the same order as Keras
        ids, offsets, labels = parts[split]
        indices = np.arange(len(labels))
        rng.shuffle(indices)
        shuffled[split] = _take_rows(ids, offsets, indices) + (labels[indices],)

    out = {}
    for split in ("train", "test"):
        ids, offsets, labels = shuffled[split]
        lengths = offsets[1:] - offsets[:-1]
        if index_from:
            ids = ids + index_from
        if start_char is not None:
            # one start mark before each sequence: shift every element by its row number + 1
            row = np.repeat(np.arange(len(lengths)), lengths)
            with_start = np.empty(len(ids) + len(lengths), dtype=np.int64)
            starts = offsets[:-1] + np.arange(len(lengths))
            with_start[starts] = start_char
            with_start[np.arange(len(ids)) + row + 1] = ids
            ids, lengths = with_start, lengths + 1
        if maxlen:
            keep = lengths < maxlen
            new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=new_offsets[1:])
            ids, _ = _take_rows(ids, new_offsets, np.flatnonzero(keep))
            lengths, labels = lengths[keep], labels[keep]
        out[split] = [ids, lengths, labels]
    if maxlen and (len(out["train"][2]) == 0 or len(out["test"][2]) == 0):
        raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, "
                         "no sequence was kept. Increase maxlen.")

    if not num_words:
        num_words = max((int(v[0].max()) for v in out.values() if len(v[0])), default=0)
    for split in ("train", "test"):
        ids, lengths, labels = out[split]
        inside = (ids >= skip_top) & (ids < num_words)
        if oov_char is not None:
            ids = np.where(inside, ids, oov_char)
        else:
            row = np.repeat(np.arange(len(lengths)), lengths)
            ids = ids[inside]
            lengths = np.bincount(row[inside], minlength=len(lengths))
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out[split] = (_as_object_array(_kernel.split_to_lists(ids.astype(np.int64, copy=False),
                                                                offsets)),
                      labels)
    return out["train"], out["test"]


def load_reviews(path=None, limit=None):
    """The raw reviews: ``(train_texts, y_train), (test_texts, y_test)``, texts as lists of
    str and labels (0 negative, 1 positive) as int64 arrays, in file order (negatives, then
    positives, by review id: the order of the aclImdb folders that seed 003 reads).

    ``path``: ``imdb_reviews.csv.gz`` or its directory; default: ``$FASTSEQ_DATA``, then the
    cache directories (it is not downloaded). ``limit``: about that many reviews per split,
    evenly spaced over the file."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise ValueError(f"limit must be None or an int >= 1, got {limit!r}")
    source = _locate([RAW_NAME], path, RAW_NAME, {}, "The raw IMDB reviews (imdb_reviews.csv.gz)",
                     "pass path= to imdb_reviews.csv.gz or its directory, or set FASTSEQ_DATA "
                     "to the directory that holds it.", download=False)
    if source.suffix == ".npz":
        raise ValueError(f"{source} holds integer sequences, not review texts; load_reviews "
                         "needs imdb_reviews.csv.gz")
    stride = max(1, 25000 // limit) if limit else 1
    splits, labels, texts = _read_reviews_csv(source, stride)
    out = []
    for split in ("train", "test"):
        rows = np.flatnonzero(splits == split)
        out.append(([texts[i] for i in rows], labels[rows]))
    return out[0], out[1]
