"""Tokenizer and friends against the legacy Keras code (the plain-Python baseline in
fastseq._bench.preprocessing is that code): random texts, the seeds' example, a slice of the
real IMDB reviews, and bad input."""
import collections
import gzip
import itertools
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq._bench.preprocessing import KerasTokenizer, keras_text_to_word_sequence
from fastseq.preprocessing import text as text_module
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import (
    Tokenizer,
    hashing_trick,
    one_hot,
    text_to_word_sequence,
    tokenizer_from_json,
)

# Letters (with case and non-ASCII ones whose lower() differs or grows: 'İ' lowers to two
# code points), filter characters, the default split, other whitespace Keras does not split on.
ALPHABET = "abcAB'İßé—\u00a0 !,.<>/-\t\n\r"
texts_strategy = st.lists(st.text(alphabet=ALPHABET, max_size=30), max_size=12)


def assert_same_state(fast, ref):
    assert list(fast.word_counts.items()) == list(ref.word_counts.items())
    assert dict(fast.word_docs) == dict(ref.word_docs)
    assert list(fast.word_index.items()) == list(ref.word_index.items())
    assert fast.index_word == ref.index_word
    assert dict(fast.index_docs) == dict(ref.index_docs)
    assert fast.document_count == ref.document_count


def test_seed_example_exact():
    # seeds 000 / 002: Tokenizer(10), pad_sequences(..., 6)
    texts = ["This is a text", "This is not a text"]
    tokenizer = Tokenizer(10)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    assert len(tokenizer.word_index) == 5
    data = pad_sequences(sequences, 6)
    assert data.dtype == np.int32
    assert data.tolist() == [[0, 0, 1, 2, 3, 4], [0, 1, 2, 5, 3, 4]]
    assert str(data) == "[[0 0 1 2 3 4]\n [0 1 2 5 3 4]]"


@settings(max_examples=30, deadline=None)
@given(texts=texts_strategy, more=texts_strategy, num_words=st.sampled_from([None, 0, 1, 3, 6]),
       oov=st.sampled_from([None, "<OOV>", "a"]), lower=st.booleans())
def test_tokenizer_matches_keras(texts, more, num_words, oov, lower):
    fast = Tokenizer(num_words=num_words, oov_token=oov, lower=lower)
    ref = KerasTokenizer(num_words=num_words, oov_token=oov, lower=lower)
    for batch in (texts, more):  # fitting twice accumulates
        fast.fit_on_texts(batch)
        ref.fit_on_texts(batch)
        assert_same_state(fast, ref)
    if oov is not None and oov not in fast.word_index:
        return  # never fitted on anything: nothing to convert (see test_oov_token_needs_fit)
    probe = texts + more + ["a b c", "unseen words here"]
    assert fast.texts_to_sequences(probe) == ref.texts_to_sequences(probe)
    assert list(fast.texts_to_sequences_generator(probe)) == ref.texts_to_sequences(probe)


@settings(max_examples=25, deadline=None)
@given(texts=texts_strategy,
       filters=st.sampled_from(["", "!,", "é—", text_module.DEFAULT_FILTERS]),
       split=st.sampled_from([" ", ",", "\u00a0", "ab"]))
def test_tokenizer_filters_and_split_match_keras(texts, filters, split):
    fast = Tokenizer(filters=filters, split=split)
    ref = KerasTokenizer(filters=filters, split=split)
    fast.fit_on_texts(texts)
    ref.fit_on_texts(texts)
    assert_same_state(fast, ref)
    assert fast.texts_to_sequences(texts) == ref.texts_to_sequences(texts)
    for t in texts:
        assert text_to_word_sequence(t, filters, split=split) == keras_text_to_word_sequence(
            t, filters, split=split)


@settings(max_examples=20, deadline=None)
@given(texts=texts_strategy, chunk=st.integers(1, 4))
def test_generators_are_read_in_chunks(texts, chunk):
    old = text_module._CHUNK
    text_module._CHUNK = chunk
    try:
        fast = Tokenizer(oov_token="?")
        fast.fit_on_texts(t for t in texts)
        ref = KerasTokenizer(oov_token="?")
        ref.fit_on_texts(texts)
        assert_same_state(fast, ref)
        assert fast.texts_to_sequences(iter(texts)) == ref.texts_to_sequences(texts)
        assert fast.texts_to_sequences(tuple(texts)) == ref.texts_to_sequences(texts)
    finally:
        text_module._CHUNK = old


def test_kernel_table_and_dict_lookups_agree(monkeypatch):
    texts = ["The cat sat; the DOG sat!", "a cat, a dog.", "çà et là", ""] * 3
    tokenizer = Tokenizer(num_words=4, oov_token="<unk>")
    tokenizer.fit_on_texts(texts[:2])
    monkeypatch.setattr(text_module, "_TABLE_CHARS_PER_WORD", 0)
    with_table = tokenizer.texts_to_sequences(texts)
    monkeypatch.setattr(text_module, "_TABLE_CHARS_PER_WORD", 10**9)
    with_dict = tokenizer.texts_to_sequences(texts)
    ref = KerasTokenizer(num_words=4, oov_token="<unk>")
    ref.word_index = tokenizer.word_index
    assert with_table == with_dict == ref.texts_to_sequences(texts)


def test_kernel_path_runs_for_lists_of_str(monkeypatch):
    def fail(self, text, d):
        raise AssertionError("the Keras path ran")
    monkeypatch.setattr(Tokenizer, "_tokens", fail)
    t = Tokenizer(oov_token="?")
    t.fit_on_texts(["a b", "b c"])
    assert t.texts_to_sequences(["c b x"]) == [[4, 2, 1]]


def test_numpy_string_arrays():
    texts = np.array(["Good film", "bad FILM!", "good"])
    for lower in (True, False):
        fast, ref = Tokenizer(lower=lower), KerasTokenizer(lower=lower)
        fast.fit_on_texts(texts)
        ref.fit_on_texts(list(texts))
        assert_same_state(fast, ref)
        assert fast.texts_to_sequences(texts) == ref.texts_to_sequences(list(texts))


def test_ties_keep_first_seen_order_and_index_zero_is_free():
    t = Tokenizer()
    t.fit_on_texts(["b a", "a b c c"])
    # counts: b 2, a 2, c 2 -> all tied, first-seen order b, a, c
    assert t.word_index == {"b": 1, "a": 2, "c": 3}
    assert 0 not in t.index_word


def test_num_words_keeps_indices_below_it():
    t = Tokenizer(num_words=3, oov_token="<oov>")
    t.fit_on_texts(["x x x y y z"])
    assert t.word_index == {"<oov>": 1, "x": 2, "y": 3, "z": 4}  # every word indexed
    assert t.texts_to_sequences(["x y z w"]) == [[2, 1, 1, 1]]
    t2 = Tokenizer(num_words=3)
    t2.fit_on_texts(["x x x y y z"])
    assert t2.texts_to_sequences(["x y z w"]) == [[1, 2]]


def test_token_lists_and_char_level_follow_keras():
    token_lists = [["Hello", "World"], ["hello", "there", "World"]]
    fast, ref = Tokenizer(oov_token="?"), KerasTokenizer(oov_token="?")
    fast.fit_on_texts(token_lists)
    ref.fit_on_texts(token_lists)
    assert_same_state(fast, ref)
    assert fast.texts_to_sequences(token_lists) == ref.texts_to_sequences(token_lists)
    fast, ref = Tokenizer(char_level=True), KerasTokenizer(char_level=True)
    fast.fit_on_texts(["Ab, a!", "b a"])
    ref.fit_on_texts(["Ab, a!", "b a"])
    assert_same_state(fast, ref)
    assert fast.texts_to_sequences(["ab!"]) == ref.texts_to_sequences(["ab!"])


def test_analyzer_and_callable_split():
    t = Tokenizer(analyzer=lambda s: s.split("-"))
    t.fit_on_texts(["a-b-a", "c"])
    assert t.word_index == {"a": 1, "b": 2, "c": 3}
    assert t.texts_to_sequences(["b-a-x"]) == [[2, 1]]
    with pytest.raises(TypeError, match="split must be a non-empty str"):
        Tokenizer(split=lambda s: s.split("|"))
    with pytest.raises(TypeError, match="split must be a non-empty str"):
        text_to_word_sequence("a b", split="")


def keras_sequences_to_texts(tokenizer, sequences):
    """keras Tokenizer.sequences_to_texts_generator."""
    num_words = tokenizer.num_words
    oov_token_index = tokenizer.word_index.get(tokenizer.oov_token)
    out = []
    for seq in sequences:
        vect = []
        for num in seq:
            word = tokenizer.index_word.get(num)
            if word is not None:
                if num_words and num >= num_words:
                    if oov_token_index is not None:
                        vect.append(tokenizer.index_word[oov_token_index])
                else:
                    vect.append(word)
            elif tokenizer.oov_token is not None:
                vect.append(tokenizer.index_word[oov_token_index])
        out.append(" ".join(vect))
    return out


def keras_sequences_to_matrix(tokenizer, sequences, mode):
    """keras Tokenizer.sequences_to_matrix."""
    num_words = tokenizer.num_words or len(tokenizer.word_index) + 1
    x = np.zeros((len(sequences), num_words))
    for i, seq in enumerate(sequences):
        if not seq:
            continue
        counts = collections.defaultdict(int)
        for j in seq:
            if j >= num_words:
                continue
            counts[j] += 1
        for j, c in list(counts.items()):
            if mode == "count":
                x[i][j] = c
            elif mode == "freq":
                x[i][j] = c / len(seq)
            elif mode == "binary":
                x[i][j] = 1
            elif mode == "tfidf":
                tf = 1 + np.log(c)
                idf = np.log(1 + tokenizer.document_count / (1 + tokenizer.index_docs.get(j, 0)))
                x[i][j] = tf * idf
    return x


@settings(max_examples=25, deadline=None)
@given(texts=texts_strategy, num_words=st.sampled_from([None, 2, 5]),
       oov=st.sampled_from([None, "<OOV>"]),
       seqs=st.lists(st.lists(st.integers(0, 12), max_size=8), max_size=6))
def test_sequences_to_texts_and_matrix_match_keras(texts, num_words, oov, seqs):
    t = Tokenizer(num_words=num_words, oov_token=oov)
    t.fit_on_texts(texts + ["x y z x"])
    assert t.sequences_to_texts(seqs) == keras_sequences_to_texts(t, seqs)
    sequences = t.texts_to_sequences(texts) + seqs
    for mode in ("binary", "count", "freq", "tfidf"):
        got = t.sequences_to_matrix(sequences, mode=mode)
        want = keras_sequences_to_matrix(t, sequences, mode)
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(
        t.texts_to_matrix(texts, mode="count"),
        keras_sequences_to_matrix(t, t.texts_to_sequences(texts), "count"))


def test_fit_on_sequences_counts_documents():
    t = Tokenizer(num_words=5)
    t.fit_on_sequences([[1, 1, 2], [2, 3], np.array([4])])
    assert t.document_count == 3
    assert dict(t.index_docs) == {1: 1, 2: 2, 3: 1, 4: 1}
    m = t.sequences_to_matrix([[1, 2]], mode="tfidf")
    np.testing.assert_allclose(m[0, 1], (1 + np.log(1)) * np.log(1 + 3 / 2))


def test_json_round_trip_and_keep_fitting():
    t = Tokenizer(num_words=7, oov_token="<unk>")
    t.fit_on_texts(["The cat sat on the mat.", "The dog ate my homework!"])
    restored = tokenizer_from_json(t.to_json())
    assert restored.word_index == t.word_index
    assert restored.index_word == t.index_word
    assert dict(restored.word_counts) == dict(t.word_counts)
    assert dict(restored.index_docs) == dict(t.index_docs)
    assert restored.document_count == t.document_count
    assert restored.num_words == 7 and restored.oov_token == "<unk>"
    probe = ["the cat ate the mat", "new words"]
    assert restored.texts_to_sequences(probe) == t.texts_to_sequences(probe)
    # Keras's restored tokenizer fails to fit further (plain dicts); fastseq's works
    restored.fit_on_texts(["the end"])
    t.fit_on_texts(["the end"])
    assert restored.word_index == t.word_index
    # Keras's JSON layout: {"class_name": "Tokenizer", "config": {... JSON strings ...}}
    config = json.loads(t.to_json())
    assert config["class_name"] == "Tokenizer"
    assert json.loads(config["config"]["word_index"]) == t.word_index


def test_one_hot_and_hashing_trick():
    text = "The quick, brown fox!"
    words = ["the", "quick", "brown", "fox"]
    assert one_hot(text, 50) == [hash(w) % 49 + 1 for w in words]
    md5 = hashing_trick(text, 1000, hash_function="md5")
    import hashlib
    assert md5 == [int(hashlib.md5(w.encode()).hexdigest(), 16) % 999 + 1 for w in words]
    assert all(1 <= i < 1000 for i in md5)
    assert hashing_trick(text, 10, hash_function=len) == [len(w) % 9 + 1 for w in words]
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        one_hot(text, 1)


def test_real_reviews_slice_matches_keras():
    data = os.environ.get("FASTSEQ_DATA")
    if not data:
        pytest.skip("FASTSEQ_DATA is not set")
    import csv
    path = os.path.join(data, "imdb_reviews.csv.gz")
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        reviews = [row[4] for row in itertools.islice(reader, 300)]
    fast, ref = Tokenizer(num_words=1000), KerasTokenizer(num_words=1000)
    fast.fit_on_texts(reviews[:200])
    ref.fit_on_texts(reviews[:200])
    assert_same_state(fast, ref)
    assert "br" in fast.word_index  # from "<br />"
    assert fast.texts_to_sequences(reviews) == ref.texts_to_sequences(reviews)


# -- bad input --------------------------------------------------------------------------------

def test_text_that_is_not_a_string():
    t = Tokenizer()
    with pytest.raises(TypeError, match=r"texts\[1\] is float, expected str"):
        t.fit_on_texts(["fine", float("nan")])
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        t.fit_on_texts([None])
    with pytest.raises(TypeError, match=r"texts\[1\]\[0\] is int, expected a str token"):
        t.fit_on_texts([["a"], [3]])
    t.fit_on_texts(["a b"])
    with pytest.raises(TypeError, match=r"texts\[2\] is bytes"):
        t.texts_to_sequences(["a", "b", b"c"])
    with pytest.raises(TypeError, match="single str"):
        t.fit_on_texts("a whole text")  # Keras would count its characters as texts
    with pytest.raises(TypeError, match="single str"):
        t.texts_to_sequences("a b")
    with pytest.raises(TypeError, match="input_text must be a str"):
        text_to_word_sequence(42)


def test_texts_after_a_bad_chunk_are_numbered_globally(monkeypatch):
    monkeypatch.setattr(text_module, "_CHUNK", 2)
    with pytest.raises(TypeError, match=r"texts\[3\] is int"):
        Tokenizer().fit_on_texts(iter(["a", "b", "c", 4]))


def test_bad_tokens_in_sequences():
    t = Tokenizer(num_words=5)
    t.fit_on_texts(["a b c"])
    with pytest.raises(ValueError, match=r"sequences\[1\]\[0\] = -1 is negative"):
        t.sequences_to_matrix([[1], [-1]])
    with pytest.raises(TypeError, match=r"sequences\[0\]\[1\] = 2.5 is float"):
        t.sequences_to_texts([[1, 2.5]])
    with pytest.raises(ValueError, match=r"sequences\[0\]\[2\] = -3 is negative"):
        t.fit_on_sequences([np.array([1, 2, -3])])
    with pytest.raises(TypeError, match=r"sequences\[0\] is str"):
        t.sequences_to_matrix(["abc"])
    with pytest.raises(ValueError, match="Unknown vectorization mode"):
        t.sequences_to_matrix([[1]], mode="onehot")
    with pytest.raises(ValueError, match="Specify a dimension"):
        Tokenizer().sequences_to_matrix([[1]])
    with pytest.raises(ValueError, match="before using tfidf"):
        Tokenizer(num_words=3).sequences_to_matrix([[1]], mode="tfidf")


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_words must be None or an int >= 0"):
        Tokenizer(num_words=-1)
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=2.5)
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        Tokenizer(foo=1)
    with pytest.raises(ValueError, match="not a Tokenizer JSON"):
        tokenizer_from_json('{"config": {}}')


def test_oov_token_needs_fit():
    with pytest.raises(ValueError, match="oov_token '<unk>' is not in word_index"):
        Tokenizer(oov_token="<unk>").texts_to_sequences(["a"])


def test_nb_words_legacy_name():
    with pytest.warns(UserWarning, match="renamed"):
        t = Tokenizer(nb_words=3)
    assert t.num_words == 3
