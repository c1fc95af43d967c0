"""Text preprocessing with the legacy Keras semantics (``keras.preprocessing.text``, removed
in Keras 3): :class:`Tokenizer`, :func:`text_to_word_sequence`, :func:`one_hot`,
:func:`hashing_trick` and :func:`tokenizer_from_json`.

The rules are Keras's, to the index: lower-case, every ``filters`` character replaced by
``split``, split on ``split``, empty tokens dropped; words ranked by count with ties in
first-seen order, index 0 never assigned, the OOV token forced to index 1, ``word_index``
holding every word while ``num_words`` filters only when texts become sequences or
matrices (a word is kept when its index < num_words).

The common case (``split`` one character, no ``analyzer``, not ``char_level``, every text a
str) runs in Cython (``fastseq._kernels.sequence``): one scan per text, no intermediate
strings. Everything else runs the Keras code path. Both give the same results.

Differences from Keras, all on input Keras mishandles silently: a single str passed as
``texts`` (Keras iterates its characters), a text that is neither a str nor a list of str,
and a negative or non-integer token in a sequence raise a clear error.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import json
import numbers
import warnings

import numpy as np

from .._kernels import sequence as _kernel

__all__ = [
    "DEFAULT_FILTERS",
    "Tokenizer",
    "hashing_trick",
    "one_hot",
    "text_to_word_sequence",
    "tokenizer_from_json",
]

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

# Texts read from an iterator are processed this many at a time by the kernels.
_CHUNK = 8192
# Copying word_index into the kernel's own table pays off above this many characters of text
# per word in word_index (measured: break-even near 10 on the IMDB reviews).
_TABLE_CHARS_PER_WORD = 10


def _check_text(text, name):
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")


def text_to_word_sequence(input_text, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """Split a text into a list of words, as ``keras.preprocessing.text.text_to_word_sequence``.

    >>> text_to_word_sequence("This is a text, isn't it?")
    ['this', 'is', 'a', 'text', "isn't", 'it']
    """
    _check_text(input_text, "input_text")
    _check_split(split)
    if lower:
        input_text = input_text.lower()
    translate_map = str.maketrans({c: split for c in filters})
    input_text = input_text.translate(translate_map)
    return [i for i in input_text.split(split) if i]


def _check_split(split):
    if not isinstance(split, str) or not split:
        raise TypeError(f"split must be a non-empty str, got {split!r} (pass analyzer= for a "
                        "custom split function)")


def hashing_trick(text, n, hash_function=None, filters=DEFAULT_FILTERS, lower=True, split=" ",
                  analyzer=None):
    """Words -> indices in [1, n) by hashing, as ``keras.preprocessing.text.hashing_trick``.

    ``hash_function``: None (Python's ``hash``: not stable across processes), ``"md5"``
    (stable) or any callable str -> int. Different words may share an index."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be an int >= 2 (the size of the hashing space), got {n!r}")
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":
        def hash_function(w):
            return int(hashlib.md5(w.encode(), usedforsecurity=False).hexdigest(), 16)
    if analyzer is None:
        seq = text_to_word_sequence(text, filters=filters, lower=lower, split=split)
    else:
        _check_text(text, "text")
        seq = analyzer(text)
    return [(hash_function(w) % (n - 1) + 1) for w in seq]


def one_hot(input_text, n, filters=DEFAULT_FILTERS, lower=True, split=" ", analyzer=None):
    """``hashing_trick`` with Python's ``hash``, as ``keras.preprocessing.text.one_hot``."""
    return hashing_trick(input_text, n, hash_function=hash, filters=filters, lower=lower,
                         split=split, analyzer=analyzer)


def _check_texts_container(texts):
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "texts must be a list of texts, got a single "
            f"{type(texts).__name__}; wrap it in a list: [text]")
    if texts is None or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")


def _chunks(texts):
    """Lists of texts: the list itself, or successive chunks of any other iterable."""
    if isinstance(texts, list):
        yield texts
        return
    if isinstance(texts, (tuple, np.ndarray)):
        yield list(texts)
        return
    it = iter(texts)
    while True:
        chunk = list(itertools.islice(it, _CHUNK))
        if not chunk:
            return
        yield chunk


def _check_token(token, where):
    """A token id: a non-negative int (Python or NumPy integer)."""
    if isinstance(token, (bool, np.bool_)) or not isinstance(token, (int, np.integer)):
        raise TypeError(f"{where} = {token!r} is {type(token).__name__}; token ids must be ints")
    if token < 0:
        raise ValueError(f"{where} = {token} is negative; token ids must be >= 0")
    return int(token)


def _check_sequence(seq, d):
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise TypeError(
            f"sequences[{d}] is {type(seq).__name__}, expected a list of int token ids")
    if isinstance(seq, np.ndarray) and seq.dtype.kind in "iu" and seq.ndim == 1:
        if seq.size and seq.min() < 0:
            j = int(np.argmax(seq < 0))
            raise ValueError(
                f"sequences[{d}][{j}] = {seq[j]} is negative; token ids must be >= 0")
        return seq.tolist()
    return [_check_token(t, f"sequences[{d}][{j}]") for j, t in enumerate(seq)]


class Tokenizer:
    """Text tokenization utility, as the legacy ``keras.preprocessing.text.Tokenizer``.

    Args:
        num_words: keep only the ``num_words - 1`` most frequent words when turning texts
            into sequences or matrices (``word_index`` still holds every word).
        filters: characters replaced by ``split`` before splitting (default: punctuation,
            tab and newline, but not the apostrophe).
        lower: lower-case the texts first.
        split: the separator (a str).
        char_level: every character is a token (filters are not applied).
        oov_token: if given, added to ``word_index`` at index 1 and used for words outside
            the vocabulary (or beyond ``num_words``) in ``texts_to_sequences``.
        analyzer: a callable str -> list of tokens, used instead of the filters and split.

    >>> t = Tokenizer(10)
    >>> t.fit_on_texts(["This is a text", "This is not a text"])
    >>> t.texts_to_sequences(["This is a text", "This is not a text"])
    [[1, 2, 3, 4], [1, 2, 5, 3, 4]]
    """

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ",
                 char_level=False, oov_token=None, analyzer=None, **kwargs):
        if "nb_words" in kwargs:  # Keras 1 name
            warnings.warn("The `nb_words` argument in `Tokenizer` has been renamed `num_words`.")
            num_words = kwargs.pop("nb_words")
        document_count = kwargs.pop("document_count", 0)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        if num_words is not None and (isinstance(num_words, bool)
                                      or not isinstance(num_words, numbers.Integral)
                                      or num_words < 0):
            raise ValueError(f"num_words must be None or an int >= 0, got {num_words!r}")
        _check_split(split)
        if analyzer is not None and not callable(analyzer):
            raise TypeError(f"analyzer must be None or a callable, got {type(analyzer).__name__}")
        self.word_counts = collections.OrderedDict()
        self.word_docs = collections.defaultdict(int)
        self.filters = filters
        self.split = split
        self.lower = lower
        self.num_words = num_words
        self.document_count = document_count
        self.char_level = char_level
        self.oov_token = oov_token
        self.index_docs = collections.defaultdict(int)
        self.word_index = {}
        self.index_word = {}
        self.analyzer = analyzer

    # -- texts -> tokens -------------------------------------------------------------------

    def _kernel_args(self):
        """(filters, split) for the Cython kernels, or None when the Keras path must run."""
        if self.char_level or self.analyzer is not None:
            return None
        if len(self.split) != 1:
            return None
        try:
            filters = "".join(self.filters)
        except TypeError:
            return None
        if len(filters) != len(self.filters):  # multi-character "filters": Keras path
            return None
        return filters, self.split

    def _tokens(self, text, d):
        """The Keras rules for one text (str or list of str tokens)."""
        if self.char_level or isinstance(text, list):
            if isinstance(text, list):
                for j, t in enumerate(text):
                    if not isinstance(t, str):
                        raise TypeError(
                            f"texts[{d}][{j}] is {type(t).__name__}, expected a str token")
                return [t.lower() for t in text] if self.lower else text
            if not isinstance(text, str):
                raise TypeError(f"texts[{d}] is {type(text).__name__}, expected str")
            return text.lower() if self.lower else text
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{d}] is {type(text).__name__}, expected str (or a list of str tokens)")
        if self.analyzer is None:
            return text_to_word_sequence(text, filters=self.filters, lower=self.lower,
                                         split=self.split)
        return self.analyzer(text)

    def fit_on_texts(self, texts):
        """Update the vocabulary from a list (or any iterable) of texts; each text a str or
        a list of str tokens."""
        _check_texts_container(texts)
        args = self._kernel_args()
        first = 0
        for chunk in _chunks(texts):
            if args is not None and all(isinstance(t, str) for t in chunk):
                words, counts, doc_counts = _kernel.count_words(chunk, args[0], args[1],
                                                                bool(self.lower))
                self.document_count += len(chunk)
                self._merge_counts(words, counts.tolist(), doc_counts.tolist())
            else:
                for d, text in enumerate(chunk, first):
                    seq = self._tokens(text, d)
                    self.document_count += 1
                    for w in seq:
                        if w in self.word_counts:
                            self.word_counts[w] += 1
                        else:
                            self.word_counts[w] = 1
                    for w in set(seq):
                        self.word_docs[w] += 1
            first += len(chunk)
        self._build_index()

    def _merge_counts(self, words, counts, doc_counts):
        word_counts, word_docs = self.word_counts, self.word_docs
        if not word_counts:
            word_counts.update(zip(words, counts))
        else:
            for w, c in zip(words, counts):
                word_counts[w] = word_counts.get(w, 0) + c
        for w, c in zip(words, doc_counts):
            word_docs[w] += c

    def _build_index(self):
        wcounts = list(self.word_counts.items())
        wcounts.sort(key=lambda x: x[1], reverse=True)  # stable: ties keep first-seen order
        # forcing the oov_token to index 1 if it exists
        sorted_voc = [] if self.oov_token is None else [self.oov_token]
        sorted_voc.extend(wc[0] for wc in wcounts)
        # index 0 is reserved, never assigned to an existing word
        self.word_index = dict(zip(sorted_voc, range(1, len(sorted_voc) + 1)))
        self.index_word = {c: w for w, c in self.word_index.items()}
        for w, c in list(self.word_docs.items()):
            self.index_docs[self.word_index[w]] = c

    def fit_on_sequences(self, sequences):
        """Update the document frequencies (for tfidf) from sequences of token ids."""
        _check_texts_container(sequences)
        sequences = list(sequences)
        checked = [_check_sequence(seq, d) for d, seq in enumerate(sequences)]
        self.document_count += len(checked)
        for seq in checked:
            for i in set(seq):
                self.index_docs[i] += 1

    def _oov_index(self):
        """word_index[oov_token] as an int, -1 without an OOV token."""
        if self.oov_token is None:
            return -1
        index = self.word_index.get(self.oov_token)
        if index is None:
            raise ValueError(
                f"oov_token {self.oov_token!r} is not in word_index: fit the tokenizer "
                "(fit_on_texts) before converting texts")
        return index

    def texts_to_sequences(self, texts):
        """Each text -> a list of word indices. Words not in ``word_index``, and words with
        an index >= ``num_words``, are dropped (or become the OOV token's index)."""
        _check_texts_container(texts)
        args = self._kernel_args()
        oov_index = self._oov_index()
        num_words = self.num_words or 0
        out = []
        first = 0
        for chunk in _chunks(texts):
            if args is not None and all(isinstance(t, str) for t in chunk):
                chars = sum(map(len, chunk))
                use_table = chars > _TABLE_CHARS_PER_WORD * len(self.word_index)
                ids, offsets = _kernel.encode_texts(
                    chunk, args[0], args[1], bool(self.lower), self.word_index,
                    num_words, oov_index, use_table)
                out.extend(_kernel.split_to_lists(ids, offsets))
            else:
                out.extend(self._sequences_python(chunk, first, oov_index))
            first += len(chunk)
        return out

    def _sequences_python(self, texts, first, oov_index):
        num_words = self.num_words
        word_index = self.word_index
        for d, text in enumerate(texts, first):
            vect = []
            for w in self._tokens(text, d):
                i = word_index.get(w)
                if i is not None:
                    if num_words and i >= num_words:
                        if oov_index >= 0:
                            vect.append(oov_index)
                    else:
                        vect.append(i)
                elif oov_index >= 0:
                    vect.append(oov_index)
            yield vect

    def texts_to_sequences_generator(self, texts):
        """As ``texts_to_sequences``, one sequence at a time."""
        _check_texts_container(texts)
        yield from self._sequences_python(texts, 0, self._oov_index())

    def sequences_to_texts(self, sequences):
        """Each sequence of word indices -> the words joined by spaces (unknown indices and
        indices >= ``num_words`` dropped, or the OOV token)."""
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences):
        _check_texts_container(sequences)
        num_words = self.num_words
        oov_token_index = self.word_index.get(self.oov_token)
        for d, seq in enumerate(sequences):
            vect = []
            for num in _check_sequence(seq, d):
                word = self.index_word.get(num)
                if word is not None:
                    if num_words and num >= num_words:
                        if oov_token_index is not None:
                            vect.append(self.index_word[oov_token_index])
                    else:
                        vect.append(word)
                elif self.oov_token is not None and oov_token_index is not None:
                    vect.append(self.index_word[oov_token_index])
            yield " ".join(vect)

    # -- matrices ---------------------------------------------------------------------------

    def texts_to_matrix(self, texts, mode="binary"):
        """(len(texts), num_words) float64 matrix; ``mode``: binary, count, tfidf or freq."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences, mode="binary"):
        """(len(sequences), num_words) float64 matrix of the sequences' words.

        mode: "binary" (1 where the word occurs), "count", "freq" (count / sequence length)
        or "tfidf" (``(1 + log(count)) * log(1 + document_count / (1 + docs(word)))``)."""
        if mode not in ("binary", "count", "tfidf", "freq"):
            raise ValueError(
                f"Unknown vectorization mode: {mode!r}; expected binary, count, tfidf or freq")
        if not self.num_words:
            if self.word_index:
                num_words = len(self.word_index) + 1
            else:
                raise ValueError("Specify a dimension (`num_words` argument), "
                                 "or fit on some text data first.")
        else:
            num_words = self.num_words
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        _check_texts_container(sequences)
        checked = [_check_sequence(seq, d) for d, seq in enumerate(sequences)]
        lengths = np.fromiter(map(len, checked), dtype=np.int64, count=len(checked))
        ids = np.fromiter(itertools.chain.from_iterable(checked), dtype=np.int64,
                          count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(checked), dtype=np.int64), lengths)
        keep = ids < num_words
        flat = rows[keep] * num_words + ids[keep]
        counts = np.bincount(flat, minlength=len(checked) * num_words).astype(np.float64)
        x = counts.reshape(len(checked), num_words)
        if mode == "count":
            return x
        if mode == "binary":
            return (x > 0).astype(np.float64)
        if mode == "freq":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(x > 0, x / np.maximum(lengths, 1)[:, None], 0.0)
        docs = np.zeros(num_words, dtype=np.float64)
        for j, c in self.index_docs.items():
            if 0 <= j < num_words:
                docs[j] = c
        idf = np.log(1 + self.document_count / (1 + docs))
        present = x > 0
        out = np.zeros_like(x)
        out[present] = (1 + np.log(x[present])) * np.broadcast_to(idf, x.shape)[present]
        return out

    # -- serialisation ------------------------------------------------------------------------

    def get_config(self):
        """The Keras config dict (the vocabulary as JSON strings)."""
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs):
        """The tokenizer as a JSON string, readable by :func:`tokenizer_from_json` (and by
        Keras's own ``tokenizer_from_json``). ``kwargs`` go to ``json.dumps``."""
        if self.analyzer is not None:
            raise ValueError("a Tokenizer with an analyzer cannot be saved as JSON")
        return json.dumps({"class_name": self.__class__.__name__, "config": self.get_config()},
                          **kwargs)


def tokenizer_from_json(json_string):
    """A :class:`Tokenizer` from ``Tokenizer.to_json()`` (fastseq's or Keras's)."""
    try:
        tokenizer_config = json.loads(json_string)
        config = dict(tokenizer_config["config"])
        word_counts = json.loads(config.pop("word_counts"))
        word_docs = json.loads(config.pop("word_docs"))
        # Integer keys became strings in json.dumps()
        index_docs = {int(k): v for k, v in json.loads(config.pop("index_docs")).items()}
        index_word = {int(k): v for k, v in json.loads(config.pop("index_word")).items()}
        word_index = json.loads(config.pop("word_index"))
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise ValueError(f"not a Tokenizer JSON string (from Tokenizer.to_json()): {e}") from None
    tokenizer = Tokenizer(**config)
    # The same containers as a fitted Tokenizer's, so that fitting on more texts works
    # (Keras leaves plain dicts here, and a later fit_on_texts fails with a KeyError).
    tokenizer.word_counts = collections.OrderedDict(word_counts)
    tokenizer.word_docs = collections.defaultdict(int, word_docs)
    tokenizer.index_docs = collections.defaultdict(int, index_docs)
    tokenizer.word_index = word_index
    tokenizer.index_word = index_word
    return tokenizer

