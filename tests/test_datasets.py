"""fastseq.datasets.imdb against the Keras algorithm, on small files made here (a Keras-style
imdb.npz, a raw-reviews csv.gz) and on a slice of the real data; the lookup order; the
offline failure; corrupted files. No test touches the network."""
import csv
import gzip
import hashlib
import io
import json
import os
import time
import urllib.error

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq.datasets import imdb

DATA = os.environ.get("FASTSEQ_DATA")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No FASTSEQ_DATA, an empty cache and home, downloads failing loudly."""
    monkeypatch.delenv("FASTSEQ_DATA", raising=False)
    monkeypatch.delenv("FASTSEQ_OFFLINE", raising=False)
    monkeypatch.setenv("FASTSEQ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr(imdb.urllib.request, "urlopen", no_network)


def keras_load_data(x_train, labels_train, x_test, labels_test, num_words=None, skip_top=0,
                    maxlen=None, seed=113, start_char=1, oov_char=2, index_from=3):
    """keras.datasets.imdb.load_data after np.load (Keras 3)."""
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train, labels_train = x_train[indices], labels_train[indices]
    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test, labels_test = x_test[indices], labels_test[indices]
    if start_char is not None:
        x_train = [[start_char] + [w + index_from for w in x] for x in x_train]
        x_test = [[start_char] + [w + index_from for w in x] for x in x_test]
    elif index_from:
        x_train = [[w + index_from for w in x] for x in x_train]
        x_test = [[w + index_from for w in x] for x in x_test]
    else:
        x_train = [list(x) for x in x_train]
        x_test = [list(x) for x in x_test]
    if maxlen:
        def remove_long_seq(maxlen, seq, label):
            new_seq, new_label = [], []
            for x, y in zip(seq, label):
                if len(x) < maxlen:
                    new_seq.append(x)
                    new_label.append(y)
            return new_seq, new_label
        x_train, labels_train = remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError("no sequence was kept. Increase maxlen.")
    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])
    if not num_words:
        # Keras: max(max(x) for x in xs), which fails on an empty sequence (start_char=None)
        num_words = max((max(x) for x in xs if x), default=0)
    if oov_char is not None:
        xs = [[w if (skip_top <= w < num_words) else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    idx = len(x_train)
    return (xs[:idx], labels[:idx]), (xs[idx:], labels[idx:])


def ragged(rng, n, vocab=30, max_len=12):
    out = np.empty(n, dtype=object)
    out[:] = [rng.integers(1, vocab, rng.integers(0, max_len)).tolist() for _ in range(n)]
    return out


def write_npz(path, seed=0, n_train=20, n_test=15):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {"x_train": ragged(rng, n_train), "y_train": rng.integers(0, 2, n_train),
              "x_test": ragged(rng, n_test), "y_test": rng.integers(0, 2, n_test)}
    np.savez(path, **arrays)
    return arrays


@settings(max_examples=30, deadline=None)
@given(num_words=st.sampled_from([None, 0, 5, 20, 40]), skip_top=st.sampled_from([0, 2, 6]),
       maxlen=st.sampled_from([None, 0, 6, 10]), seed=st.integers(0, 2**31 - 1),
       start_char=st.sampled_from([None, 1, 7]), oov_char=st.sampled_from([None, 2]),
       index_from=st.sampled_from([0, 3]))
def test_npz_matches_keras(tmp_path_factory, num_words, skip_top, maxlen, seed, start_char,
                           oov_char, index_from):
    path = tmp_path_factory.getbasetemp() / "imdb_test.npz"
    if not path.exists():
        write_npz(path)
    with np.load(path, allow_pickle=True) as f:
        arrays = {k: f[k] for k in f.files}
    kwargs = dict(num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
                  start_char=start_char, oov_char=oov_char, index_from=index_from)
    try:
        want = keras_load_data(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                               arrays["y_test"], **kwargs)
    except ValueError:
        with pytest.raises(ValueError, match="Increase maxlen"):
            imdb.load_data(path=path, **kwargs)
        return
    (xt, yt), (xs, ys) = imdb.load_data(path=path, **kwargs)
    assert isinstance(xt, np.ndarray) and xt.dtype == object and xt.ndim == 1
    assert [list(x) for x in xt] == want[0][0]
    assert [list(x) for x in xs] == want[1][0]
    np.testing.assert_array_equal(yt, want[0][1])
    np.testing.assert_array_equal(ys, want[1][1])


def test_npz_limit_and_legacy_name(tmp_path):
    write_npz(tmp_path / "imdb.npz", n_train=40, n_test=40)
    (xt, yt), (xs, ys) = imdb.load_data(path=tmp_path / "imdb.npz", limit=10)
    assert len(xt) == len(yt) == 10 and len(xs) == len(ys) == 10
    (xt, _), _ = imdb.load_data(path=tmp_path / "imdb.npz", nb_words=5)
    assert max(max(x) for x in xt) <= 4
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        imdb.load_data(path=tmp_path / "imdb.npz", bogus=1)


# -- the raw reviews --------------------------------------------------------------------------

REVIEWS = [
    ("train", 0, "A bad film.<br /><br />Truly BAD, awful!"),
    ("train", 1, "Great film; a great, great cast."),
    ("train", 1, "Unknownword great"),
    ("test", 0, "bad bad film"),
    ("test", 1, "great film, it's great"),
]
WORD_INDEX = {"the": 1, "a": 2, "film": 3, "great": 4, "bad": 5, "br": 6, "it's": 7,
              "awful": 8, "truly": 9, "cast": 10}


def write_reviews(directory, rows=REVIEWS, word_index=WORD_INDEX):
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["split", "label", "rating", "review_id", "text"])
    for i, (split, label, text) in enumerate(rows):
        writer.writerow([split, label, 8 if label else 2, i, text])
    with gzip.open(directory / "imdb_reviews.csv.gz", "wt", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    (directory / "imdb_word_index.json").write_text(json.dumps(word_index))
    return directory / "imdb_reviews.csv.gz"


def test_raw_reviews_are_tokenised_with_the_word_index(tmp_path):
    path = write_reviews(tmp_path / "data")
    ranks = {"train": [[2, 5, 3, 6, 6, 9, 5, 8], [4, 3, 2, 4, 4, 10], [4]],
             "test": [[5, 5, 3], [4, 3, 7, 4]]}
    labels = {"train": np.array([0, 1, 1]), "test": np.array([0, 1])}
    for kwargs in ({}, {"num_words": 8, "skip_top": 1}, {"start_char": None, "index_from": 0}):
        x_train = np.empty(3, dtype=object)
        x_train[:] = ranks["train"]
        x_test = np.empty(2, dtype=object)
        x_test[:] = ranks["test"]
        want = keras_load_data(x_train, labels["train"], x_test, labels["test"], **kwargs)
        (xt, yt), (xs, ys) = imdb.load_data(path=path, **kwargs)
        assert [list(x) for x in xt] == want[0][0] and [list(x) for x in xs] == want[1][0]
        np.testing.assert_array_equal(yt, want[0][1])
        np.testing.assert_array_equal(ys, want[1][1])


def test_tokenised_reviews_are_cached(tmp_path):
    path = write_reviews(tmp_path / "data")
    first = imdb.load_data(path=path)
    cached = list((tmp_path / "cache").glob("imdb_reviews.tokens.*.npz"))
    assert len(cached) == 1
    # a broken cache is rebuilt, not trusted
    cached[0].write_bytes(b"garbage")
    again = imdb.load_data(path=path)
    assert [list(x) for x in again[0][0]] == [list(x) for x in first[0][0]]
    assert np.load(cached[0])["train_ids"].dtype == np.int32
    # the cache is keyed by the source: a changed file is tokenised again
    write_reviews(tmp_path / "data", rows=REVIEWS + [("test", 1, "truly great")])
    (_, _), (xs, _) = imdb.load_data(path=path)
    assert len(xs) == 3


def test_directory_and_lookup_order(tmp_path, monkeypatch):
    write_reviews(tmp_path / "raw")
    write_npz(tmp_path / "npz" / "imdb.npz", n_train=7, n_test=3)
    # a directory as path: imdb.npz is preferred over the raw reviews
    assert len(imdb.load_data(path=tmp_path / "raw")[0][0]) == 3
    (tmp_path / "raw" / "imdb.npz").write_bytes((tmp_path / "npz" / "imdb.npz").read_bytes())
    assert len(imdb.load_data(path=tmp_path / "raw")[0][0]) == 7
    # FASTSEQ_DATA, then the cache directory
    monkeypatch.setenv("FASTSEQ_DATA", str(tmp_path / "npz"))
    assert len(imdb.load_data()[0][0]) == 7
    monkeypatch.delenv("FASTSEQ_DATA")
    write_npz(tmp_path / "cache" / "imdb.npz", n_train=5, n_test=3)
    assert len(imdb.load_data()[0][0]) == 5
    # a bare file name is looked up like Keras's cache name
    monkeypatch.chdir(tmp_path)
    assert len(imdb.load_data(path="imdb.npz")[0][0]) == 5


def test_get_word_index(tmp_path, monkeypatch):
    write_reviews(tmp_path / "data")
    assert imdb.get_word_index(tmp_path / "data" / "imdb_word_index.json") == WORD_INDEX
    monkeypatch.setenv("FASTSEQ_DATA", str(tmp_path / "data"))
    assert imdb.get_word_index() == WORD_INDEX


# -- offline, downloads, missing and corrupted files --------------------------------------------

def test_offline_without_a_file_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSEQ_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        imdb.load_data()
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert "The IMDB dataset not found" in message
    assert str(tmp_path / "cache" / "imdb.npz") in message
    assert str(tmp_path / "home" / ".keras" / "datasets" / "imdb.npz") in message
    assert "FASTSEQ_DATA" in message and "To provide it" in message
    with pytest.raises(FileNotFoundError, match="imdb_word_index.json"):
        imdb.get_word_index(download=False)


def test_explicit_missing_path_fails_without_download(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        imdb.load_data(path=tmp_path / "nowhere" / "imdb.npz")  # urlopen would assert
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"empty/imdb_reviews\.csv\.gz"):
        imdb.load_data(path="empty")  # a directory in the working directory


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_failure_names_the_url(monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(imdb.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match=r"Downloading https://storage\.googleapis\.com/"
                       r"tensorflow/tf-keras-datasets/imdb\.npz failed.*no route"):
        imdb.load_data()


def test_download_is_checked_against_the_hash(tmp_path, monkeypatch):
    write_npz(tmp_path / "served.npz")
    payload = (tmp_path / "served.npz").read_bytes()
    calls = []

    def serve(url, timeout):
        calls.append(url)
        return FakeResponse(payload)
    monkeypatch.setattr(imdb.urllib.request, "urlopen", serve)
    with pytest.raises(FileNotFoundError, match="refusing to use it"):
        imdb.load_data()  # Keras's hash does not match this file
    assert not list((tmp_path / "cache").glob("*"))  # nothing half-written is left
    monkeypatch.setattr(imdb, "NPZ_SHA256", hashlib.sha256(payload).hexdigest())
    (xt, _), _ = imdb.load_data()
    assert len(xt) == 20 and (tmp_path / "cache" / "imdb.npz").is_file()
    imdb.load_data()  # now from the cache
    assert len(calls) == 2


@pytest.mark.parametrize("content, match", [
    (b"not a zip file", "not a valid Keras imdb.npz"),
    (None, "missing arrays"),
])
def test_corrupted_npz(tmp_path, content, match):
    path = tmp_path / "imdb.npz"
    if content is None:
        np.savez(path, x_train=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        imdb.load_data(path=path)


def test_corrupted_reviews(tmp_path):
    path = write_reviews(tmp_path / "data")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated gzip
    with pytest.raises(ValueError, match="not a valid IMDB reviews file"):
        imdb.load_data(path=path)
    with gzip.open(path, "wt") as f:
        f.write("id,review\n1,hello\n")
    with pytest.raises(ValueError, match="header is"):
        imdb.load_data(path=path)
    (tmp_path / "data" / "imdb_word_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid IMDB word index"):
        imdb.get_word_index(tmp_path / "data" / "imdb_word_index.json")


def test_bad_arguments(tmp_path):
    write_npz(tmp_path / "imdb.npz")
    with pytest.raises(ValueError, match="num_words must be None or an int"):
        imdb.load_data(path=tmp_path / "imdb.npz", num_words=-3)
    with pytest.raises(ValueError, match="maxlen"):
        imdb.load_data(path=tmp_path / "imdb.npz", maxlen=2.5)


# -- the real data ----------------------------------------------------------------------------

@pytest.mark.skipif(not DATA, reason="FASTSEQ_DATA is not set")
def test_real_reviews_slice():
    path = os.path.join(DATA, "imdb_reviews.csv.gz")
    (xt, yt), (xs, ys) = imdb.load_data(path=path, limit=100, num_words=5000)
    assert len(xt) == len(xs) == 100
    assert yt.sum() == ys.sum() == 50  # both labels, evenly
    assert all(x[0] == 1 for x in xt)
    assert max(max(x) for x in xt) == 4999
    word_index = imdb.get_word_index(os.path.join(DATA, "imdb_word_index.json"))
    assert [word_index[w] for w in ("the", "movie", "film", "great")] == [1, 17, 19, 84]
    words = {v: k for k, v in word_index.items()}
    ids, offsets = imdb.tokenize_reviews(["Story of a man who has unnatural feelings"], word_index)
    assert [words[i] for i in ids] == ["story", "of", "a", "man", "who", "has", "unnatural",
                                       "feelings"]
