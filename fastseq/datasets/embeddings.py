"""Pretrained word vectors: GloVe text files and word2vec text/binary files, loaded into a
small ``KeyedVectors`` (gensim-like): ``.vectors``, ``.index``, ``most_similar``,
``similarity`` and ``embedding_matrix`` for a Keras ``Embedding`` layer.

    from fastseq.datasets.embeddings import load_glove
    kv = load_glove("glove.6B.50d.txt")
    kv.similarity("king", "queen")                      # cosine, 0.784 for glove.6B.50d
    matrix, found = kv.embedding_matrix(tokenizer.word_index, num_words=10000)
    model.add(Embedding(10000, kv.dim, weights=[matrix], trainable=False))

The files are parsed in C (``fastseq._kernels.sequence``): the 40,000-line, 50-d GloVe file
loads in a fraction of a second. A malformed line (a missing or extra number, a value that
is not a number) raises ValueError naming its line number.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .._kernels import sequence as _kernel

__all__ = ["KeyedVectors", "load", "load_glove", "load_word2vec"]


class KeyedVectors:
    """Words and their vectors.

    Attributes:
        vectors: float32 (N, dim), one row per word.
        words: the N words, in file order (``index_to_key`` in gensim).
        index: word -> row (``key_to_index`` in gensim). A word listed twice in the file
            maps to its first row.
    """

    def __init__(self, words, vectors):
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D (words, dim), got shape {vectors.shape}")
        if vectors.dtype.kind != "f":
            raise TypeError(f"vectors must be floating point, got {vectors.dtype}")
        words = list(words)
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
        self.vectors = vectors
        self.words = words
        self.index = {}
        for i, w in enumerate(words):
            self.index.setdefault(w, i)
        self._unit = None

    # gensim names
    @property
    def index_to_key(self):
        return self.words

    @property
    def key_to_index(self):
        return self.index

    @property
    def dim(self):
        return self.vectors.shape[1]

    vector_size = dim

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __getitem__(self, word):
        try:
            return self.vectors[self.index[word]]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    def get(self, word, default=None):
        i = self.index.get(word)
        return default if i is None else self.vectors[i]

    def __repr__(self):
        return f"KeyedVectors({len(self)} words, dim={self.dim}, dtype={self.vectors.dtype})"

    # -- similarity ---------------------------------------------------------------------------

    def unit_vectors(self):
        """The vectors scaled to unit length (zero vectors stay zero); computed once."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.where(norms == 0, 1, norms)
        return self._unit

    def _vector(self, word_or_vector, name):
        if isinstance(word_or_vector, str):
            return self[word_or_vector]
        v = np.asarray(word_or_vector)
        if v.shape != (self.dim,) or v.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a word or a vector of shape ({self.dim},), "
                             f"got {type(word_or_vector).__name__} with shape {v.shape}")
        return v

    def similarity(self, a, b):
        """Cosine similarity of two words (or vectors)."""
        va = self._vector(a, "a").astype(np.float64)
        vb = self._vector(b, "b").astype(np.float64)
        denom = np.linalg.norm(va) * np.linalg.norm(vb)
        return float(va @ vb / denom) if denom else 0.0

    def most_similar(self, positive=None, negative=None, topn=10):
        """The ``topn`` words nearest by cosine similarity, as [(word, similarity)].

        ``positive`` and ``negative`` are a word, a vector, or a list of them. With one
        vector, its nearest words. Otherwise, as gensim: the mean of the unit-length
        positives minus the negatives (``positive=["king", "woman"], negative=["man"]``
        gives queen first); the words given are left out of the result."""
        if positive is None:
            positive = []
        if negative is None:
            negative = []
        if isinstance(positive, str) or (isinstance(positive, np.ndarray) and positive.ndim == 1):
            positive = [positive]
        if isinstance(negative, str) or (isinstance(negative, np.ndarray) and negative.ndim == 1):
            negative = [negative]
        if not positive and not negative:
            raise ValueError("most_similar needs at least one word or vector")
        if isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 1:
            raise ValueError(f"topn must be an int >= 1, got {topn!r}")
        exclude = set()
        terms = [(p, 1.0) for p in positive] + [(n, -1.0) for n in negative]
        if len(terms) == 1 and not isinstance(terms[0][0], str):
            query = self._vector(terms[0][0], "positive").astype(np.float64) * terms[0][1]
        else:
            parts = []
            for term, weight in terms:
                v = self._vector(term, "positive" if weight > 0 else "negative").astype(np.float64)
                norm = np.linalg.norm(v)
                parts.append(weight * (v / norm if norm else v))
                if isinstance(term, str):
                    exclude.add(self.index[term])
            query = np.mean(parts, axis=0)
        norm = np.linalg.norm(query)
        if norm == 0:
            raise ValueError("the query vector is zero; cosine similarity is undefined")
        sims = self.unit_vectors() @ (query / norm).astype(self.vectors.dtype)
        k = min(len(sims), topn + len(exclude))
        best = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        best = best[np.lexsort((best, -sims[best]))]  # by similarity, ties by row
        return [(self.words[i], float(sims[i])) for i in best if i not in exclude][:topn]

    # -- Keras -------------------------------------------------------------------------------

    def embedding_matrix(self, word_index, num_words=None, dtype=np.float32, lower=False):
        """The weights of an ``Embedding(num_words, dim)`` layer for a tokenizer's words.

        word_index: word -> index (``Tokenizer.word_index``, or the IMDB word index shifted
        by ``index_from``). Row i holds the vector of the word with index i, for every
        index < ``num_words`` (default: the largest index + 1); rows of words without a
        vector, and row 0, are zero. ``lower``: look words up lower-cased as a fallback.

        Returns (matrix (num_words, dim), found): ``found`` counts the words (index <
        num_words) that got a vector."""
        if not isinstance(word_index, dict):
            raise TypeError("word_index must be a dict word -> index, got "
                            f"{type(word_index).__name__}")
        if num_words is None:
            num_words = max(word_index.values(), default=0) + 1
        if (isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer))
                or num_words < 1):
            raise ValueError(f"num_words must be an int >= 1, got {num_words!r}")
        matrix = np.zeros((int(num_words), self.dim), dtype=dtype)
        rows, sources = [], []
        for word, i in word_index.items():
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
                raise ValueError(f"word_index[{word!r}] = {i!r}; indices must be ints >= 0")
            if i < num_words:
                j = self.index.get(word)
                if j is None and lower and isinstance(word, str):
                    j = self.index.get(word.lower())
                if j is not None:
                    rows.append(i)
                    sources.append(j)
        if rows:
            matrix[np.array(rows)] = self.vectors[np.array(sources)]
        return matrix, len(rows)


def _read_bytes(path):
    """The file's bytes (gunzipped for a .gz name)."""
    try:
        if str(path).endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"cannot read word vectors from {path}: {e.strerror}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"cannot read word vectors from {path}: {e}") from None


def _first_line(data):
    end = data.find(b"\n")
    return data[: end if end >= 0 else len(data)], (end + 1 if end >= 0 else len(data))


def _parse_header(line, path):
    fields = line.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        raise ValueError(f"{path}: line 1 should be the word2vec header '<count> <dim>', "
                         f"got {line[:80]!r}")
    count, dim = int(fields[0]), int(fields[1])
    if dim < 1:
        raise ValueError(f"{path}: the header says dim={dim}; expected >= 1")
    return count, dim


def _check_limit(limit):
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    return -1 if limit is None else int(limit)


def load_glove(path, dtype=np.float32, limit=None, unicode_errors="strict"):
    """Load a GloVe text file (per line: word, then the numbers, single spaces; no header).

    The dimension comes from the first line. ``limit``: read only the first rows."""
    data = _read_bytes(path)
    first, _ = _first_line(data)
    fields = first.rstrip(b" \r\t").split(b" ")
    if len(fields) < 2:
        raise ValueError(f"{path}: line 1 should be a word followed by its vector, got "
                         f"{first[:80]!r}")
    looks_like_header = len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit()
    if looks_like_header and len(data) > len(first) + 1:
        second, _ = _first_line(data[len(first) + 1:])
        if len(second.rstrip(b" \r\t").split(b" ")) != 2:
            raise ValueError(f"{path}: line 1 ({first.decode('ascii', 'replace')!r}) looks like a "
                             "word2vec header: use load_word2vec(path) (or load(path))")
    dim = len(fields) - 1
    words, vectors = _kernel.parse_vectors_text(data, 0, dim, _check_limit(limit), 1,
                                                unicode_errors)
    return KeyedVectors(words, vectors.astype(dtype, copy=False))


def load_word2vec(path, binary=None, dtype=np.float32, limit=None, unicode_errors="strict",
                  no_header=False):
    """Load a word2vec file: header ``<count> <dim>``, then per word the word and its vector,
    as text (``binary=False``) or little-endian float32 (``binary=True``). ``binary=None``
    guesses from the name (``.bin`` is binary). ``no_header=True`` reads a header-less text
    file (GloVe). ``limit``: read only the first rows."""
    if binary is None:
        binary = str(path).endswith((".bin", ".bin.gz"))
    if no_header:
        if binary:
            raise ValueError("no_header=True is only for text files")
        return load_glove(path, dtype=dtype, limit=limit, unicode_errors=unicode_errors)
    max_rows = _check_limit(limit)
    data = _read_bytes(path)
    header, start = _first_line(data)
    count, dim = _parse_header(header.decode("ascii", "replace"), path)
    if max_rows >= 0:
        count = min(count, max_rows)
    if binary:
        words, vectors, _ = _kernel.parse_vectors_binary(data, start, count, dim, unicode_errors)
    else:
        words, vectors = _kernel.parse_vectors_text(data, start, dim, count, 2, unicode_errors)
        if len(words) != count:
            raise ValueError(f"{path}: the header says {count} vectors, the file holds "
                             f"{len(words)}")
    return KeyedVectors(words, vectors.astype(dtype, copy=False))


def load(path, format="auto", **kwargs):
    """Load word vectors; ``format``: "glove", "word2vec" (text), "word2vec-binary" or
    "auto" (a ``.bin`` name is word2vec binary, a first line '<count> <dim>' word2vec
    text, anything else GloVe)."""
    path = os.fspath(path)
    if format == "auto":
        if path.endswith((".bin", ".bin.gz")):
            format = "word2vec-binary"
        else:
            with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                first = f.readline()
            fields = first.split()
            is_header = len(fields) == 2 and all(f.isdigit() for f in fields)
            format = "word2vec" if is_header else "glove"
    if format == "glove":
        return load_glove(path, **kwargs)
    if format == "word2vec":
        return load_word2vec(path, binary=False, **kwargs)
    if format == "word2vec-binary":
        return load_word2vec(path, binary=True, **kwargs)
    raise ValueError(f"unknown format {format!r}; expected auto, glove, word2vec or "
                     "word2vec-binary")


def find_glove(name="glove.6B.50d.40k.txt", path=None):
    """The path of a GloVe file: ``path`` itself, or ``name`` in ``$FASTSEQ_DATA``."""
    if path is not None:
        return Path(path).expanduser()
    data = os.environ.get("FASTSEQ_DATA")
    if data and (Path(data).expanduser() / name).is_file():
        return Path(data).expanduser() / name
    raise FileNotFoundError(f"{name} not found: pass its path, or set FASTSEQ_DATA to the "
                            "directory that holds it")
