"""Word-vector loading (GloVe, word2vec text and binary) against files written here, the
similarity queries against brute-force NumPy, embedding_matrix against the seed's loop, the
README's checks on the real GloVe file, and malformed files."""
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq.datasets import embeddings
from fastseq.datasets.embeddings import KeyedVectors, load, load_glove, load_word2vec

DATA = os.environ.get("FASTSEQ_DATA")
WORDS = ["the", ",", "#", "king", "josé", "’s", "queen", "1999", "nan-ish"]


def random_vectors(n=len(WORDS), dim=5, seed=0):
    rng = np.random.default_rng(seed)
    # values exactly representable after "%.5g" round trips: decimal text -> float32
    return np.array([[float("%.5g" % v) for v in row] for row in rng.standard_normal((n, dim))],
                    dtype=np.float32)


def glove_text(words, vectors, header=False, trailing="", newline="\n"):
    lines = [f"{len(words)} {vectors.shape[1]}"] if header else []
    lines += [w + " " + " ".join("%.5g" % v for v in row) + trailing
              for w, row in zip(words, vectors)]
    return (newline.join(lines) + newline).encode("utf-8")


def word2vec_binary(words, vectors):
    out = [f"{len(words)} {vectors.shape[1]}\n".encode()]
    for w, row in zip(words, vectors):
        out.append(w.encode("utf-8") + b" " + struct.pack(f"<{len(row)}f", *row) + b"\n")
    return b"".join(out)


def reference_glove(path):
    """The README's loader."""
    words, vecs = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ")
            words.append(parts[0])
            vecs.append(np.asarray(parts[1:], dtype=np.float32))
    return words, np.stack(vecs)


def test_glove_text(tmp_path):
    vectors = random_vectors()
    path = tmp_path / "vectors.txt"
    path.write_bytes(glove_text(WORDS, vectors))
    kv = load_glove(path)
    ref_words, ref_vectors = reference_glove(path)
    assert kv.words == ref_words == WORDS
    assert kv.vectors.dtype == np.float32 and kv.vectors.shape == (len(WORDS), 5)
    np.testing.assert_array_equal(kv.vectors, ref_vectors)
    assert kv.index == {w: i for i, w in enumerate(WORDS)}
    np.testing.assert_array_equal(kv["josé"], vectors[4])
    assert "#" in kv and "missing" not in kv and len(kv) == len(WORDS)
    assert kv.get("missing") is None
    assert load(path).words == WORDS  # auto: no header -> GloVe
    assert load_glove(path, limit=3).words == WORDS[:3]
    assert load_glove(path, dtype=np.float64).vectors.dtype == np.float64


@pytest.mark.parametrize("trailing, newline", [("", "\n"), (" ", "\n"), ("", "\r\n")])
def test_word2vec_text(tmp_path, trailing, newline):
    vectors = random_vectors(seed=1)
    path = tmp_path / "vectors.w2v.txt"
    path.write_bytes(glove_text(WORDS, vectors, header=True, trailing=trailing, newline=newline))
    for kv in (load_word2vec(path), load(path)):
        assert kv.words == WORDS
        np.testing.assert_array_equal(kv.vectors, vectors)
    assert load_word2vec(path, limit=2).words == WORDS[:2]


def test_word2vec_binary(tmp_path):
    vectors = np.random.default_rng(2).standard_normal((len(WORDS), 7)).astype(np.float32)
    path = tmp_path / "vectors.bin"
    path.write_bytes(word2vec_binary(WORDS, vectors))
    for kv in (load_word2vec(path), load(path), load_word2vec(path, binary=True)):
        assert kv.words == WORDS
        np.testing.assert_array_equal(kv.vectors, vectors)  # bit-exact
    assert load_word2vec(path, limit=4).words == WORDS[:4]
    # without the newline after each vector (some writers omit it)
    raw = b"".join([f"{len(WORDS)} 7\n".encode()] + [
        w.encode() + b" " + struct.pack("<7f", *row) for w, row in zip(WORDS, vectors)])
    path.write_bytes(raw)
    np.testing.assert_array_equal(load_word2vec(path).vectors, vectors)


def test_gzipped(tmp_path):
    import gzip
    vectors = random_vectors()
    with gzip.open(tmp_path / "v.txt.gz", "wb") as f:
        f.write(glove_text(WORDS, vectors))
    np.testing.assert_array_equal(load(tmp_path / "v.txt.gz").vectors, vectors)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 40), dim=st.integers(1, 8),
       topn=st.integers(1, 5))
def test_similarity_queries_match_numpy(seed, n, dim, topn):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    words = [f"w{i}" for i in range(n)]
    kv = KeyedVectors(words, vectors)
    v64 = vectors.astype(np.float64)
    unit = v64 / np.linalg.norm(v64, axis=1, keepdims=True)
    assert kv.similarity("w0", "w1") == pytest.approx(unit[0] @ unit[1], abs=1e-6)
    # one vector: its nearest words, itself included
    sims = unit @ (v64[0] / np.linalg.norm(v64[0]))
    want = np.argsort(-sims, kind="stable")[:topn]
    got = kv.most_similar(vectors[0], topn=topn)
    np.testing.assert_allclose([s for _, s in got], sims[want], atol=1e-5)
    np.testing.assert_allclose([s for _, s in got], [sims[int(w[1:])] for w, _ in got], atol=1e-5)
    # words: gensim's mean of unit vectors, the words themselves left out
    if n >= 3:
        query = (unit[0] + unit[1] - unit[2]) / 3
        sims = unit @ (query / np.linalg.norm(query))
        order = [i for i in np.argsort(-sims, kind="stable") if i not in (0, 1, 2)][:topn]
        got = kv.most_similar(positive=["w0", "w1"], negative=["w2"], topn=topn)
        np.testing.assert_allclose([s for _, s in got], sims[order], atol=1e-5)
        np.testing.assert_allclose([s for _, s in got], [sims[int(w[1:])] for w, _ in got],
                                   atol=1e-5)
        assert not {"w0", "w1", "w2"} & {w for w, _ in got}


def seed_embedding_matrix(word_index, embeddings_index, max_words, embedding_dim):
    """Seed 003's loop."""
    embedding_matrix = np.zeros((max_words, embedding_dim))
    for word, i in word_index.items():
        if i < max_words:
            embedding_vector = embeddings_index.get(word)
            if embedding_vector is not None:
                embedding_matrix[i] = embedding_vector
    return embedding_matrix


def test_embedding_matrix_matches_the_seed():
    vectors = random_vectors()
    kv = KeyedVectors(WORDS, vectors)
    word_index = {"the": 1, "king": 2, "unknown": 3, "queen": 4, "josé": 9, "#": 5}
    matrix, found = kv.embedding_matrix(word_index, num_words=6)
    want = seed_embedding_matrix(word_index, dict(zip(WORDS, vectors)), 6, 5)
    assert matrix.dtype == np.float32 and matrix.shape == (6, 5)
    np.testing.assert_array_equal(matrix, want)
    assert found == 4  # the, king, queen, # (josé's index 9 is beyond num_words)
    matrix, found = kv.embedding_matrix(word_index)
    assert matrix.shape == (10, 5) and found == 5
    assert not matrix[0].any()
    matrix, found = kv.embedding_matrix({"KING": 1}, num_words=2, lower=True)
    assert found == 1 and (matrix[1] == vectors[3]).all()


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("lines, match", [
    (["a 1 2 3", "b 1 2", "c 1 2 3"], r"line 2: expected 3 numbers after the word, got 2"),
    (["a 1 2 3", "b 1 2 3", "c 1 2 3 4"], r"line 3: expected 3 numbers after the word, got more"),
    (["a 1 2 3", "b 1 x 3"], r"line 2: value 2 \('x'\) is not a number"),
    (["a 1 2 3", "b 1 2e 3"], r"line 2: value 2 \('2e'\) is not a number"),
    (["a 1 2 3", "b  1 2 3"], r"line 2: value 1 \(''\) is not a number"),
    (["a 1 2 3", "lonely"], r"line 2: expected a word and 3 numbers"),
])
def test_malformed_glove_lines(tmp_path, lines, match):
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_glove(path)


def test_malformed_word2vec(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 2\na 1 2\nb 1 2\n")
    with pytest.raises(ValueError, match="header says 3 vectors, the file holds 2"):
        load_word2vec(path)
    path.write_text("3 2\na 1 2\nb 1\n")
    with pytest.raises(ValueError, match="line 3: expected 2 numbers"):
        load_word2vec(path)
    path.write_text("three two\na 1 2\n")
    with pytest.raises(ValueError, match="line 1 should be the word2vec header"):
        load_word2vec(path, binary=False)
    path.write_text("2 3\na 1 2 3\nb 1 2 3\n")
    with pytest.raises(ValueError, match="looks like a word2vec header"):
        load_glove(path)
    binary = word2vec_binary(["a", "b"], np.ones((2, 4), np.float32))
    (tmp_path / "cut.bin").write_bytes(binary[:-10])
    with pytest.raises(ValueError, match="ends inside entry 2 of 2"):
        load_word2vec(tmp_path / "cut.bin")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 1 2\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 1: the word is not valid UTF-8"):
        load_glove(tmp_path / "latin1.txt")
    assert load_glove(tmp_path / "latin1.txt", unicode_errors="replace").words == ["caf\ufffd"]
    with pytest.raises(FileNotFoundError, match="cannot read word vectors"):
        load_glove(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="unknown format"):
        load(path, format="fasttext")


def test_bad_queries():
    kv = KeyedVectors(["a", "b", "z"], np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32))
    with pytest.raises(KeyError, match="'c' is not in the vocabulary"):
        kv.similarity("a", "c")
    with pytest.raises(ValueError, match=r"vector of shape \(2,\)"):
        kv.most_similar(np.ones(3))
    with pytest.raises(ValueError, match="topn"):
        kv.most_similar("a", topn=0)
    with pytest.raises(ValueError, match="query vector is zero"):
        kv.most_similar("z")
    assert kv.similarity("a", "z") == 0.0
    with pytest.raises(ValueError, match="indices must be ints >= 0"):
        kv.embedding_matrix({"a": -1}, num_words=3)
    with pytest.raises(ValueError, match="2 words but 3 vectors"):
        KeyedVectors(["a", "b"], np.zeros((3, 2)))


# -- the real GloVe file (README checks) ------------------------------------------------------

@pytest.mark.skipif(not DATA, reason="FASTSEQ_DATA is not set")
def test_real_glove_file():
    path = os.path.join(DATA, "glove.6B.50d.40k.txt")
    start = time.perf_counter()
    kv = load(path)
    elapsed = time.perf_counter() - start
    print(f"loaded {path} in {elapsed:.3f} s")
    assert kv.vectors.shape == (40000, 50) and kv.vectors.dtype == np.float32
    assert len(kv.index) == 40000
    assert kv.words[:8] == ["the", ",", ".", "of", "to", "and", "in", "a"]
    assert kv.words[-1] == "midwife" and kv.index["movie"] == 1005  # line 1,006
    np.testing.assert_array_equal(kv["the"][:5], np.array([0.418, 0.24968, -0.41242, 0.1217,
                                                           0.34527], np.float32))
    np.testing.assert_array_equal(kv["king"][:5], np.array(
        [0.50451, 0.68607, -0.59517, -0.022801, 0.60046], np.float32))
    assert round(kv.similarity("king", "queen"), 3) == 0.784
    assert round(kv.similarity("king", "banana"), 3) == 0.221
    nearest = kv.most_similar(kv["king"] - kv["man"] + kv["woman"], topn=5)
    assert [w for w, _ in nearest] == ["king", "queen", "daughter", "prince", "throne"]
    assert kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    from fastseq.datasets import imdb
    word_index = imdb.get_word_index(os.path.join(DATA, "imdb_word_index.json"))
    matrix, found = kv.embedding_matrix(word_index, num_words=10001)
    assert found == 9218  # of the 10,000 most frequent IMDB words
    assert matrix.shape == (10001, 50)
    np.testing.assert_array_equal(matrix[word_index["movie"]], kv["movie"])


def test_find_glove(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTSEQ_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="FASTSEQ_DATA"):
        embeddings.find_glove()
    (tmp_path / "glove.6B.50d.40k.txt").write_text("a 1\n")
    monkeypatch.setenv("FASTSEQ_DATA", str(tmp_path))
    assert embeddings.find_glove() == tmp_path / "glove.6B.50d.40k.txt"
