"""TextVectorization: raw strings -> token ids (or multi-hot / count / TF-IDF rows), as Keras
3's ``keras.layers.TextVectorization`` (keras/src/layers/preprocessing/text_vectorization.py
over index_lookup.py), without TensorFlow.

Keras's rules, to the index (checked against Keras 3.15 on TensorFlow 2.21):
- standardize "lower" lower-cases ASCII letters only (``tf.strings.lower`` without an
  encoding: "ÉCOLE" -> "École"); "strip_punctuation" deletes the characters of
  ``DEFAULT_STRIP_REGEX`` (ASCII punctuation, the apostrophe included: "don't" -> "dont").
- split "whitespace" splits on runs of the six ASCII whitespace characters (not on
  U+00A0 or other Unicode spaces); "character" makes each code point a token.
- ngrams: every ngram of each width in turn, words joined by " ".
- the vocabulary: by descending count, ties by descending token (code point order); in
  "int" mode the mask token "" and the OOV token "[UNK]" come first (ids 0 and 1), in the
  other modes only "[UNK]" (id 0); ``max_tokens`` counts them.
- "int" output: int64, padded with 0 / truncated at the end to ``output_sequence_length``
  (else to the longest text of the call); "multi_hot" / "count" (int64) and "tf_idf"
  (float32): rows of ``max_tokens`` (``pad_to_max_tokens``) or the vocabulary size; TF-IDF's idf is
  ``log(1 + num_documents / (1 + document_count))``, the OOV's the mean of the others.

Callables: ``standardize`` receives a NumPy array of str (as Keras 3 on its non-TensorFlow
backends) and returns one of the same shape; ``split`` receives a 1-D NumPy array of str and
returns one sequence of tokens per text (a list of lists or a 2-D array).

The default path (whitespace split, no ngrams) runs in the Cython kernels of the Tokenizer
(``fastseq._kernels.sequence``): one scan per text, one hash lookup per token.

It is a layer for inference: it has no weights and no backward pass (a model refuses to
train through it). Vectorize once (``x = vectorizer(texts)``) and fit on ``x``; an
end-to-end model (``Sequential([vectorizer, Embedding(...), ...])``) predicts from strings.
"""
import collections
import itertools
import numbers
import os
import re

import numpy as np

from .._kernels import sequence as _kernel
from ..preprocessing.text import _TABLE_CHARS_PER_WORD
from .base import Layer
from .lambda_layer import _deserialize_function, _serialize_function

__all__ = ["TextVectorization", "DEFAULT_STRIP_REGEX"]

# Keras's punctuation pattern, verbatim; it names only ASCII characters
DEFAULT_STRIP_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
_PUNCTUATION = "".join(c for c in map(chr, range(128)) if re.fullmatch(DEFAULT_STRIP_REGEX, c))
# bytes.translate (table, deleted bytes) on the UTF-8 text: ASCII-only lower-casing, as
# tf.strings.lower, and 5x faster than str.translate on the IMDB reviews (whose non-ASCII
# texts leave str.translate's fast path); the deleted bytes are ASCII, never part of a
# multi-byte character
_NO_CHANGE = bytes(range(256))
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_STANDARDIZE_TABLES = {
    "lower": (_LOWER, b""),
    "strip_punctuation": (_NO_CHANGE, _PUNCTUATION.encode()),
    "lower_and_strip_punctuation": (_LOWER, _PUNCTUATION.encode()),
}
# tf.strings.split's separators; the kernels split on `split` and on every `filters` char
_WHITESPACE_FILTERS = "\t\n\x0b\x0c\r"
_WHITESPACE_SPLIT = re.compile("[ \t\n\x0b\x0c\r]+")

MASK_TOKEN = ""
OOV_TOKEN = "[UNK]"
_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")


def _check_choice(value, allowed, what):
    if value is None or callable(value) or value in allowed:
        return value
    raise ValueError(f"TextVectorization: {what} must be None, a callable or one of "
                     f"{list(allowed)}, got {value!r}")


def _positive_int_or_none(value, what, minimum=1):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"TextVectorization: {what} must be None or an int >= {minimum}, "
                         f"got {value!r}")
    return int(value)


def _ngram_widths(ngrams):
    if ngrams is None:
        return None
    if isinstance(ngrams, numbers.Integral) and not isinstance(ngrams, bool):
        widths = tuple(range(1, int(ngrams) + 1))
    elif isinstance(ngrams, (tuple, list)) and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in ngrams):
        widths = tuple(int(n) for n in ngrams)
    else:
        raise ValueError("TextVectorization: ngrams must be None, an integer, or a tuple of "
                         f"integers, got {ngrams!r}")
    if not widths or any(n < 1 for n in widths):
        raise ValueError(f"TextVectorization: ngrams must name widths >= 1, got {ngrams!r}")
    return widths


def _ngrams(tokens, widths):
    """tf.strings.ngrams(tokens, widths, separator=" "): each width in turn."""
    return [" ".join(tokens[i:i + w]) for w in widths for i in range(len(tokens) - w + 1)]


def _ragged_to_padded(ids, offsets, length):
    """ids: int64 (total,), offsets: (N + 1,) -> (N, length) int64: each row's first
    ``length`` ids, then zeros (Keras pads and truncates at the end)."""
    n = offsets.size - 1
    if length is None:
        length = int(np.diff(offsets).max()) if n > 0 else 0
    out = np.zeros((n, length), dtype=np.int64)
    # one slice copy per row: 10x faster than a scatter of every id on the IMDB reviews
    bounds = offsets.tolist()
    for d in range(n):
        start = bounds[d]
        stop = min(bounds[d + 1], start + length)
        out[d, :stop - start] = ids[start:stop]
    return out


class TextVectorization(Layer):
    """``TextVectorization(max_tokens=None, standardize="lower_and_strip_punctuation",
    split="whitespace", ngrams=None, output_mode="int", output_sequence_length=None,
    pad_to_max_tokens=False, vocabulary=None, idf_weights=None, ragged=False,
    encoding="utf-8", name=None)``: learn a vocabulary with :meth:`adapt` (or pass one),
    then call it on a list or array of strings (shape (N,) or (N, 1)) to get a NumPy array.

    >>> v = TextVectorization(output_sequence_length=4)
    >>> v.adapt(["The cat sat.", "The dog sat on the mat!"])
    >>> v(["the cat", "a dog"]).tolist()
    [[2, 7, 0, 0], [1, 6, 0, 0]]
    """

    _takes_strings = True
    _differentiable = False

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int",
                 output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None,
                 **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)  # Keras's config records it; it follows the vocab
        super().__init__(name=name, **kwargs)
        if output_mode == "binary":  # Keras's deprecated names
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"TextVectorization: output_mode must be one of "
                             f"{list(_OUTPUT_MODES)}, got {output_mode!r}")
        self.max_tokens = _positive_int_or_none(max_tokens, "max_tokens", minimum=2)
        self.standardize = _check_choice(standardize, _STANDARDIZE_TABLES, "standardize")
        self.split = _check_choice(split, ("whitespace", "character"), "split")
        self._ngrams_arg = ngrams
        self._ngram_widths = _ngram_widths(ngrams)
        if self._ngram_widths is not None and self.split is None:
            raise ValueError("TextVectorization: ngrams need a split (the ngrams of a text's "
                             "tokens); got split=None")
        self.output_sequence_length = _positive_int_or_none(output_sequence_length,
                                                            "output_sequence_length")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("TextVectorization: output_sequence_length must not be set if "
                             f"output_mode is not 'int', got output_mode={output_mode!r}")
        if pad_to_max_tokens and self.max_tokens is None:
            raise ValueError("TextVectorization: pad_to_max_tokens=True needs max_tokens")
        if sparse:
            raise ValueError("TextVectorization: sparse=True is not supported (fastseq returns "
                             "dense NumPy arrays)")
        if ragged and output_mode != "int":
            raise ValueError("TextVectorization: ragged=True needs output_mode='int', got "
                             f"{output_mode!r}")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError("TextVectorization: idf_weights should only be set if "
                             f"output_mode is 'tf_idf', got output_mode={output_mode!r}")
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("TextVectorization: with a vocabulary in output_mode 'tf_idf', "
                             "idf_weights must also be given")
        self.output_mode = output_mode
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.ragged = bool(ragged)
        self.encoding = encoding
        self._has_input_vocabulary = bool(has_input_vocabulary)
        self._tokens = None   # the learned tokens, without the special ones
        self._index = None    # token -> id
        self._idf = None      # float32 (width,) in tf_idf mode
        self.reset_state()
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ the vocabulary
    @property
    def _token_start(self):
        """Ids before the learned tokens: mask and OOV in int mode, OOV otherwise."""
        return 2 if self.output_mode == "int" else 1

    @property
    def _oov_index(self):
        return self._token_start - 1

    def _special_tokens(self):
        return [MASK_TOKEN, OOV_TOKEN] if self.output_mode == "int" else [OOV_TOKEN]

    def vocabulary_size(self):
        """The vocabulary's size, the mask and OOV tokens included."""
        return self._token_start + (len(self._tokens) if self._tokens is not None else 0)

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary as a list of str; with the special tokens, a token's position is
        its id."""
        tokens = list(self._tokens) if self._tokens is not None else []
        return self._special_tokens() + tokens if include_special_tokens else tokens

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (a list / 1-D array of str, or the path of a text file with one
        token a line), and in tf_idf mode its idf weights (one per token)."""
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError("TextVectorization: idf_weights must be set if output_mode "
                                 "is 'tf_idf'")
        elif idf_weights is not None:
            raise ValueError("TextVectorization: idf_weights should only be set if "
                             f"output_mode is 'tf_idf', got output_mode={self.output_mode!r}")
        if isinstance(vocabulary, (str, os.PathLike)):
            if self.output_mode == "tf_idf":
                raise ValueError("TextVectorization: output_mode 'tf_idf' does not support "
                                 "loading a vocabulary from a file")
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"TextVectorization: vocabulary file {path} does not exist")
            with open(path, encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
        if not isinstance(vocabulary, list):
            vocabulary = np.asarray(vocabulary, dtype=object).ravel().tolist()
        vocabulary = [self._decode(t, f"vocabulary[{i}]") for i, t in enumerate(vocabulary)]
        if not vocabulary:
            raise ValueError("TextVectorization: cannot set an empty vocabulary")
        special = self._special_tokens()
        found_special = vocabulary[:len(special)] == special
        tokens = vocabulary[len(special):] if found_special else vocabulary
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError("TextVectorization: the vocabulary has repeated terms "
                             f"{repeated[:10]}; give each term once")
        if MASK_TOKEN in tokens:
            raise ValueError(
                "TextVectorization: found the reserved mask token '' at "
                f"vocabulary index {vocabulary.index(MASK_TOKEN)}; either leave out the mask "
                f"and OOV tokens, or put them first in exactly this order: {special}")
        if self.max_tokens is not None and len(special) + len(tokens) > self.max_tokens:
            raise ValueError(
                "TextVectorization: attempted to set a vocabulary larger than the maximum "
                f"vocab size: {len(special) + len(tokens)} tokens (the special ones included), "
                f"max_tokens is {self.max_tokens}")
        idf = None
        if idf_weights is not None:
            idf = np.asarray(idf_weights, dtype=np.float64)
            if idf.ndim != 1 or idf.size != len(vocabulary):
                raise ValueError(
                    "TextVectorization: idf_weights must be 1-D with one weight per "
                    f"vocabulary term ({len(vocabulary)}), got shape {idf.shape}")
            if not found_special:  # Keras: the OOV token gets the mean weight
                idf = np.concatenate([np.full(len(special), idf.mean()), idf])
        self._set_tokens(tokens, idf)

    def _set_tokens(self, tokens, idf=None):
        self._tokens = list(tokens)
        start = self._token_start
        self._index = dict(zip(self._tokens, range(start, start + len(self._tokens))))
        if idf is not None:
            # int mode has no idf; the other modes' vocabulary starts with the OOV only
            idf = np.asarray(idf, dtype=np.float32)[:self.vocabulary_size()]
            width = self._width()
            self._idf = np.zeros(width, dtype=np.float32)
            self._idf[:idf.size] = idf

    def _width(self):
        """The last axis of multi_hot / count / tf_idf outputs."""
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    # ------------------------------------------------------------------ text -> tokens
    def _decode(self, text, where):
        if isinstance(text, str):
            return text
        if isinstance(text, bytes):
            return text.decode(self.encoding)
        raise TypeError(f"TextVectorization: {where} is {type(text).__name__}, expected a str")

    def _texts(self, inputs, what):
        """inputs -> (texts: list of str, shape of the input). A (N, 1) input is squeezed
        (when splitting), as Keras."""
        if isinstance(inputs, (str, bytes)):
            return [self._decode(inputs, what)], ()
        if isinstance(inputs, np.ndarray):
            if inputs.dtype.kind not in "USO":
                raise TypeError(f"TextVectorization: {what} must hold strings, got an array "
                                f"of dtype {inputs.dtype}")
            shape = inputs.shape
            flat = inputs.ravel().tolist()
        elif isinstance(inputs, (list, tuple)):
            flat = list(inputs)
            shape = (len(flat),)
            if flat and all(isinstance(t, (list, tuple, np.ndarray)) for t in flat):
                widths = {len(t) for t in flat}
                if len(widths) != 1:
                    raise ValueError(f"TextVectorization: {what} rows have different lengths "
                                     f"{sorted(widths)[:5]}; give one text per row")
                shape = (len(flat), widths.pop())
                flat = [t for row in flat for t in row]
        else:
            raise TypeError(f"TextVectorization: {what} must be a str, a list or an array of "
                            f"str, got {type(inputs).__name__}")
        if self.split is not None and len(shape) > 1 and (len(shape) > 2 or shape[-1] != 1):
            raise ValueError(
                "TextVectorization: to tokenize strings the input rank must be 1, or the last "
                f"dimension must be 1; got {what} of shape {shape}")
        if not all(type(t) is str for t in flat):
            flat = [self._decode(t, f"{what}[{i}]") for i, t in enumerate(flat)]
        return flat, shape

    def _standardized(self, texts, shape):
        standardize = self.standardize
        if standardize is None:
            return texts
        if callable(standardize):
            array = np.array(texts, dtype=str).reshape(shape if shape else ())
            result = np.asarray(standardize(array))
            if result.size != len(texts):
                raise ValueError(f"TextVectorization: the standardize callable returned "
                                 f"{result.size} strings for {len(texts)} texts")
            return [self._decode(t, "a standardized text") for t in result.ravel().tolist()]
        table, deleted = _STANDARDIZE_TABLES[standardize]
        return [t.encode("utf-8", "surrogatepass").translate(table, deleted)
                .decode("utf-8", "surrogatepass") for t in texts]

    def _fast_path(self):
        """The Cython kernels apply: whitespace split, no ngrams."""
        return self.split == "whitespace" and self._ngram_widths is None

    def _token_lists(self, texts):
        """The general path: each text's tokens (ngrams included), as lists of str."""
        split = self.split
        if split is None:
            tokens = [[t] for t in texts]
        elif split == "whitespace":
            tokens = [[w for w in _WHITESPACE_SPLIT.split(t) if w] for t in texts]
        elif split == "character":
            tokens = [list(t) for t in texts]
        else:
            result = split(np.array(texts, dtype=str))
            if len(result) != len(texts):
                raise ValueError(f"TextVectorization: the split callable returned "
                                 f"{len(result)} sequences for {len(texts)} texts")
            tokens = [[self._decode(w, "a token of the split callable")
                       for w in np.asarray(row, dtype=object).ravel().tolist()]
                      for row in result]
        widths = self._ngram_widths
        if widths is not None:
            tokens = [_ngrams(t, widths) for t in tokens]
        return tokens

    # ------------------------------------------------------------------ adapt
    def reset_state(self):
        """Forget the counts of earlier :meth:`update_state` calls."""
        self._batch_counts = []  # per batch: (tokens, counts, document counts)
        self._num_documents = 0

    def update_state(self, data):
        """Count the tokens of one batch of texts."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer {self.name!r} after setting a static "
                             "vocabulary via the `vocabulary` argument")
        texts, _ = self._texts(data, "data")
        texts = self._standardized(texts, (len(texts),))
        if self._fast_path():
            self._batch_counts.append(_kernel.count_words(texts, _WHITESPACE_FILTERS, " ",
                                                          False))
        else:
            counts, doc_counts = {}, {}
            for tokens in self._token_lists(texts):
                for w in tokens:
                    counts[w] = counts.get(w, 0) + 1
                for w in set(tokens):
                    doc_counts[w] = doc_counts.get(w, 0) + 1
            self._batch_counts.append((list(counts), np.fromiter(counts.values(), np.int64),
                                       np.array([doc_counts[w] for w in counts], np.int64)))
        self._num_documents += len(texts)

    def _merged_counts(self):
        """(tokens, counts, document counts) over every batch since reset_state."""
        if len(self._batch_counts) == 1:
            return self._batch_counts[0]
        counts, doc_counts = {}, {}
        for words, word_counts, word_docs in self._batch_counts:
            for w, c, d in zip(words, word_counts.tolist(), word_docs.tolist()):
                counts[w] = counts.get(w, 0) + c
                doc_counts[w] = doc_counts.get(w, 0) + d
        return (list(counts), np.fromiter(counts.values(), np.int64),
                np.array([doc_counts[w] for w in counts], np.int64))

    def finalize_state(self):
        """Build the vocabulary from the counts: by descending count, ties by descending
        token (Keras's ``np.lexsort((tokens, counts))[::-1]``), the first ``max_tokens``."""
        if not self._batch_counts or not len(self._merged_counts()[0]):
            self.reset_state()  # Keras keeps the vocabulary it had
            return
        words, counts, doc_counts = self._merged_counts()
        keep = np.ones(len(words), dtype=bool)
        for special in (MASK_TOKEN, OOV_TOKEN):  # Keras never counts them
            if special in words:
                keep[words.index(special)] = False
        wanted = len(words) if self.max_tokens is None else self.max_tokens - self._token_start
        candidates = np.flatnonzero(keep)
        if 0 < wanted < candidates.size:
            # only the tokens counted at least as often as the wanted-th one can make it
            kth = np.partition(counts[candidates], candidates.size - wanted)[-wanted]
            candidates = candidates[counts[candidates] >= kth]
        count_list = counts.tolist()
        ranked = sorted(candidates.tolist(), key=lambda i: (count_list[i], words[i]),
                        reverse=True)[:max(wanted, 0)]
        idf = None
        if self.output_mode == "tf_idf":
            document_counts = doc_counts[ranked].astype(np.float64)
            idf = np.log(1 + self._num_documents / (1 + document_counts)).astype(np.float32)
            oov = idf.mean(dtype=np.float32) if idf.size else np.float32(0)
            idf = np.concatenate([np.full(self._token_start, oov, np.float32), idf])
        self._set_tokens([words[i] for i in ranked], idf)
        self.reset_state()

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and in tf_idf mode the document frequencies) from ``data``:
        a list or array of texts, or an iterable of such batches (at most ``steps`` of
        them). ``batch_size`` is accepted for Keras's signature; it changes nothing."""
        steps = _positive_int_or_none(steps, "steps")
        self.reset_state()
        if isinstance(data, (str, bytes, list, tuple, np.ndarray)):
            self.update_state(data)
        elif hasattr(data, "__iter__"):
            for batch in itertools.islice(data, steps):
                self.update_state(batch)
        else:
            raise TypeError("TextVectorization.adapt: data must be a list or array of str, or "
                            f"an iterable of batches of them, got {type(data).__name__}")
        self.finalize_state()

    # ------------------------------------------------------------------ texts -> arrays
    def _ids(self, texts):
        """Each text's token ids: (ids int64 (total,), offsets int64 (N + 1,)). The mask
        token "" (possible only without a whitespace split) is id 0 in int mode and dropped
        otherwise."""
        index = self._index
        if index is None:
            if self.output_mode != "int":
                raise RuntimeError(
                    f"TextVectorization {self.name!r}: with output_mode={self.output_mode!r} "
                    "the vocabulary must be set before calling the layer: call adapt() or "
                    "pass vocabulary=")
            index = {}
        oov = self._oov_index
        if self._fast_path():
            chars = sum(map(len, texts))
            return _kernel.encode_texts(texts, _WHITESPACE_FILTERS, " ", False, index, 0, oov,
                                        chars > _TABLE_CHARS_PER_WORD * len(index))
        get = index.get
        mask = 0 if self.output_mode == "int" else None
        rows = [[mask if w == MASK_TOKEN else get(w, oov) for w in tokens]
                for tokens in self._token_lists(texts)]
        if mask is None:
            rows = [[i for i in row if i is not None] for row in rows]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                          count=int(offsets[-1]))
        return ids, offsets

    def _vectorize(self, inputs):
        texts, shape = self._texts(inputs, "inputs")
        texts = self._standardized(texts, shape)
        ids, offsets = self._ids(texts)
        if self.output_mode == "int":
            if self.split is None:  # one id per string, in the input's shape
                out = ids.reshape(shape)
                length = self.output_sequence_length
                if length is not None and out.ndim:
                    out = out[..., :length]
                    pad = [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])]
                    out = np.pad(out, pad)
                return out
            if self.ragged:
                rows = np.split(ids, offsets[1:-1]) if len(texts) else []
                return [r[:self.output_sequence_length] for r in rows]
            out = _ragged_to_padded(ids, offsets, self.output_sequence_length)
            return out[0] if shape == () else out
        width = self._width()
        lengths = np.diff(offsets)
        rows = np.repeat(np.arange(lengths.size), lengths)
        # Keras (on TensorFlow) returns int64 multi_hot / count rows, float32 tf_idf ones
        dtype = np.float32 if self.output_mode == "tf_idf" else np.int64
        out = np.zeros((lengths.size, width), dtype=dtype)
        if self.output_mode == "multi_hot":
            out[rows, ids] = 1
        else:
            np.add.at(out, (rows, ids), 1)
            if self.output_mode == "tf_idf":
                out *= self._idf
        return out[0] if shape == () else out

    def __call__(self, x, training=None, mask=None):
        from .input_layer import is_symbolic

        if is_symbolic(x):
            return self._call_symbolic(x, training=training)
        return self._vectorize(x)

    # ------------------------------------------------------------------ the layer protocol
    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.output_mode == "int":
            if self.split is None:
                return input_shape
            return (input_shape[0] if input_shape else None, self.output_sequence_length)
        width = self._width() if (self._tokens is not None or self.pad_to_max_tokens) else None
        return (input_shape[0] if input_shape else None, width)

    def compute_mask(self, x, mask=None):
        return None

    def _accepts_shape(self, shape):
        # no weights tie it to one input shape: (N,) and (N, 1) texts alike
        return self.split is None or len(shape) == 1 or (len(shape) == 2
                                                         and shape[-1] in (1, None))

    def forward(self, x, mask=None, training=False):
        return self._vectorize(self.ops.to_numpy(x) if not isinstance(x, np.ndarray) else x)

    def backward(self, grad_y, need_input_grad=True):
        raise RuntimeError(
            f"TextVectorization layer {self.name!r} cannot be trained through: it maps strings "
            "to integers and has no gradient. Vectorize the texts first (x = vectorizer(texts))"
            " and fit the model on x")

    def get_config(self):
        config = super().get_config()
        config.update({
            "max_tokens": self.max_tokens,
            "standardize": (_serialize_function(self.standardize, "standardize callable")
                            if callable(self.standardize) else self.standardize),
            "split": (_serialize_function(self.split, "split callable")
                      if callable(self.split) else self.split),
            "ngrams": self._ngrams_arg,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "sparse": False,
            "ragged": self.ragged,
            # the vocabulary itself (Keras keeps an adapted one in the file's assets): a
            # config alone rebuilds the layer
            "vocabulary": self.get_vocabulary() if self._tokens is not None else None,
            "idf_weights": (self._idf[:self.vocabulary_size()].tolist()
                            if self._idf is not None else None),
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size(),
            "has_input_vocabulary": self._has_input_vocabulary,
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("standardize", "split"):
            if isinstance(config.get(key), dict):
                config[key] = _deserialize_function(config[key], key, custom_objects)
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return super().from_config(config)
