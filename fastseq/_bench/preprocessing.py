"""Text preprocessing benchmarks: Tokenizer (fit_on_texts, texts_to_sequences) and
pad_sequences on the IMDB reviews, against a plain-Python implementation of the same rules.

The baseline below is the legacy Keras code (keras_preprocessing / Keras 3's
``keras.src.legacy.preprocessing.text`` and ``keras.utils.pad_sequences``), trimmed to the
default path: it is what a Keras user runs, and the tests' oracle for fastseq's versions.

The data: all 50,000 reviews of ``imdb_reviews.csv.gz`` when ``$FASTSEQ_DATA`` holds it
(66 MB of text, 11.8 M words), else synthetic Zipf-distributed text of the same size. The
quick cases use 2,000 reviews.

Floors: the work is one pass over the text (66 MB) plus a hash lookup per word (11.8 M);
the text cases are bound by that lookup, not by bandwidth, so they set no ``bytes_moved``.
"""
from __future__ import annotations

import collections
import csv
import gzip
import itertools
import os

import numpy as np

from .core import Case

FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


# -- the plain-Python baseline: the Keras code ----------------------------------------------

def keras_text_to_word_sequence(text, filters=FILTERS, lower=True, split=" "):
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [i for i in text.split(split) if i]


class KerasTokenizer:
    """The legacy Keras Tokenizer's fit_on_texts / texts_to_sequences, verbatim in logic."""

    def __init__(self, num_words=None, filters=FILTERS, lower=True, split=" ", char_level=False,
                 oov_token=None):
        self.word_counts = collections.OrderedDict()
        self.word_docs = collections.defaultdict(int)
        self.filters, self.split, self.lower = filters, split, lower
        self.num_words, self.document_count = num_words, 0
        self.char_level, self.oov_token = char_level, oov_token
        self.index_docs = collections.defaultdict(int)
        self.word_index, self.index_word = {}, {}

    def _seq(self, text):
        if self.char_level or isinstance(text, list):
            if self.lower:
                text = [t.lower() for t in text] if isinstance(text, list) else text.lower()
            return text
        return keras_text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts):
        for text in texts:
            self.document_count += 1
            seq = self._seq(text)
            for w in seq:
                if w in self.word_counts:
                    self.word_counts[w] += 1
                else:
                    self.word_counts[w] = 1
            for w in set(seq):
                self.word_docs[w] += 1
        wcounts = list(self.word_counts.items())
        wcounts.sort(key=lambda x: x[1], reverse=True)
        sorted_voc = [] if self.oov_token is None else [self.oov_token]
        sorted_voc.extend(wc[0] for wc in wcounts)
        self.word_index = dict(zip(sorted_voc, list(range(1, len(sorted_voc) + 1))))
        self.index_word = {c: w for w, c in self.word_index.items()}
        for w, c in list(self.word_docs.items()):
            self.index_docs[self.word_index[w]] = c

    def texts_to_sequences(self, texts):
        num_words = self.num_words
        oov_token_index = self.word_index.get(self.oov_token)
        out = []
        for text in texts:
            vect = []
            for w in self._seq(text):
                i = self.word_index.get(w)
                if i is not None:
                    if num_words and i >= num_words:
                        if oov_token_index is not None:
                            vect.append(oov_token_index)
                    else:
                        vect.append(i)
                elif self.oov_token is not None:
                    vect.append(oov_token_index)
            out.append(vect)
        return out


def keras_pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                        value=0.0):
    """keras.utils.pad_sequences."""
    num_samples = len(sequences)
    lengths = []
    sample_shape = ()
    flag = True
    for x in sequences:
        lengths.append(len(x))
        if flag and len(x):
            sample_shape = np.asarray(x).shape[1:]
            flag = False
    if maxlen is None:
        maxlen = np.max(lengths)
    x = np.full((num_samples, maxlen) + sample_shape, value, dtype=dtype)
    for idx, s in enumerate(sequences):
        if not len(s):
            continue
        if truncating == "pre":
            trunc = s[-maxlen:]
        elif truncating == "post":
            trunc = s[:maxlen]
        else:
            raise ValueError(f'Truncating type "{truncating}" not understood')
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} "
                             f"is different from expected shape {sample_shape}")
        if padding == "post":
            x[idx, : len(trunc)] = trunc
        elif padding == "pre":
            x[idx, -len(trunc):] = trunc
        else:
            raise ValueError(f'Padding type "{padding}" not understood')
    return x


# -- data -------------------------------------------------------------------------------------

def read_reviews(path, limit=None):
    """The review texts of imdb_reviews.csv.gz (the first ``limit``, or all)."""
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        return [row[4] for row in itertools.islice(reader, limit)]


def synthetic_reviews(n, seed=0):
    """Zipf-distributed words with IMDB-like lengths and punctuation."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(50000)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    lengths = np.clip(rng.lognormal(5.2, 0.7, n).astype(int), 4, 2500)
    ids = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    punct = np.array(["", "", "", "", ",", ".", "!", " <br />"])[rng.integers(0, 8, ids.size)]
    words = [vocab[i] + s for i, s in zip(ids.tolist(), punct.tolist())]
    out, start = [], 0
    for length in lengths.tolist():
        out.append(" ".join(words[start:start + length]).capitalize())
        start += length
    return out


def _texts(n):
    data = os.environ.get("FASTSEQ_DATA")
    path = os.path.join(data, "imdb_reviews.csv.gz") if data else None
    if path and os.path.isfile(path):
        return read_reviews(path, n), "IMDB reviews"
    return synthetic_reviews(n or 50000), "synthetic Zipf text"


# -- cases ------------------------------------------------------------------------------------

def _fit_fast(inp):
    from fastseq.preprocessing.text import Tokenizer

    t = Tokenizer(num_words=inp["num_words"])
    t.fit_on_texts(inp["texts"])
    return t


def _fit_base(inp):
    t = KerasTokenizer(num_words=inp["num_words"])
    t.fit_on_texts(inp["texts"])
    return t


def _make(n, num_words, maxlen, fitted=False, sequences=False):
    """Inputs for one case: the texts, plus (when asked) tokenizers fitted on them and the
    texts as sequences. Built with fastseq (fast); identical to the baseline's (tested)."""
    def make():
        from fastseq.preprocessing.text import Tokenizer

        texts, _ = _texts(n)
        inp = {"texts": texts, "num_words": num_words, "maxlen": maxlen}
        if fitted or sequences:
            tokenizer = Tokenizer(num_words=num_words)
            tokenizer.fit_on_texts(texts)
            base = KerasTokenizer(num_words=num_words)
            base.word_index = tokenizer.word_index
            inp["fast_tokenizer"], inp["base_tokenizer"] = tokenizer, base
            if sequences:
                inp["sequences"] = tokenizer.texts_to_sequences(texts)
                del inp["texts"]
        return inp
    return make


def _pipeline_fast(inp):
    from fastseq.preprocessing.sequence import pad_sequences

    t = _fit_fast(inp)
    return pad_sequences(t.texts_to_sequences(inp["texts"]), maxlen=inp["maxlen"])


def _pipeline_base(inp):
    t = _fit_base(inp)
    return keras_pad_sequences(t.texts_to_sequences(inp["texts"]), maxlen=inp["maxlen"])


def _text_vectorization(inp):
    """Keras 3's way: TextVectorization adapted on the texts, then called on them."""
    from fastseq.layers import TextVectorization

    vectorizer = TextVectorization(max_tokens=inp["num_words"],
                                   output_sequence_length=inp["maxlen"])
    vectorizer.adapt(inp["texts"])
    return vectorizer(inp["texts"])


def _tokenizer_post_padded(inp):
    """The same work on the Tokenizer path (its rules, padded and truncated at the end as
    TextVectorization does)."""
    from fastseq.preprocessing.sequence import pad_sequences

    t = _fit_fast(inp)
    return pad_sequences(t.texts_to_sequences(inp["texts"]), maxlen=inp["maxlen"],
                         padding="post", truncating="post")


def cases(quick=False):
    from fastseq.preprocessing.sequence import pad_sequences

    n = 2000 if quick else None
    texts, source = _texts(n)
    count = len(texts)
    chars = sum(map(len, texts))
    del texts
    shape = f"N={count} reviews ({source}), {chars / 1e6:.1f} M chars"
    num_words, maxlen = 5000, 500
    note = "baseline: the Keras code in plain Python"
    return [
        Case("preprocessing", "Tokenizer.fit_on_texts", shape, _make(n, num_words, maxlen),
             baseline=_fit_base, fast=_fit_fast, note=note),
        Case("preprocessing", "Tokenizer.texts_to_sequences", f"{shape}, num_words={num_words}",
             _make(n, num_words, maxlen, fitted=True),
             baseline=lambda inp: inp["base_tokenizer"].texts_to_sequences(inp["texts"]),
             fast=lambda inp: inp["fast_tokenizer"].texts_to_sequences(inp["texts"]),
             note=note),
        Case("preprocessing", "pad_sequences", f"N={count}, maxlen={maxlen}",
             _make(n, num_words, maxlen, sequences=True),
             baseline=lambda inp: keras_pad_sequences(inp["sequences"], maxlen=inp["maxlen"]),
             fast=lambda inp: pad_sequences(inp["sequences"], maxlen=inp["maxlen"]),
             bytes_moved=count * maxlen * 4, note=note),
        Case("preprocessing", "fit + texts_to_sequences + pad", f"{shape}, maxlen={maxlen}",
             _make(n, num_words, maxlen),
             baseline=_pipeline_base, fast=_pipeline_fast, note=note),
        Case("preprocessing", "TextVectorization adapt + call", f"{shape}, max_tokens="
             f"{num_words}, output_sequence_length={maxlen}", _make(n, num_words, maxlen),
             baseline=_tokenizer_post_padded, fast=_text_vectorization,
             note="baseline: fastseq's Tokenizer path (fit + texts_to_sequences + "
                  "pad_sequences post), the same kernels with the legacy rules"),
    ]
