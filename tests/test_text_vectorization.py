"""TextVectorization against Keras 3: every expected value below was produced by
``keras.layers.TextVectorization`` (Keras 3.15.1, TensorFlow 2.21) on the same inputs and
written here by hand."""
import hashlib
import os

import numpy as np
import pytest

from fastseq import Input, Model, Sequential
from fastseq.layers import Dense, Embedding, GlobalAveragePooling1D, TextVectorization
from fastseq.layers.base import deserialize, serialize

# ASCII-only lower-casing, the apostrophe stripped, U+001C / U+00A0 / U+2003 not whitespace,
# \x0b whitespace; ties by descending token
TRICKY = ["The cat sat.", "the DOG sat, the end!", "Ünïcode ÉCOLE don't a-b",
          "x\x1cy z\xa0w t\u2003u v\x0bq"]
TRICKY_VOCAB = ["", "[UNK]", "the", "sat", "Ünïcode", "École", "z\xa0w", "x\x1cy", "v",
                "t\u2003u", "q", "end", "dont", "dog", "cat", "ab"]
COUNTS_TEXTS = ["a b b", "b c", "c c c d"]


def adapted(texts, **kwargs):
    layer = TextVectorization(**kwargs)
    layer.adapt(texts)
    return layer


def test_vocabulary_order_and_int_output_as_keras():
    layer = adapted(TRICKY)
    assert layer.get_vocabulary() == TRICKY_VOCAB
    assert layer.get_vocabulary(include_special_tokens=False) == TRICKY_VOCAB[2:]
    assert layer.vocabulary_size() == 16
    out = layer(TRICKY)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 14, 3, 0, 0], [2, 13, 3, 2, 11], [4, 5, 12, 15, 0],
                                        [7, 6, 9, 8, 10]])
    # a (N, 1) array is squeezed, a single string gives one row
    np.testing.assert_array_equal(layer(np.array(TRICKY)[:, None]), out)
    np.testing.assert_array_equal(layer([[t] for t in TRICKY]), out)
    np.testing.assert_array_equal(layer("the cat"), [2, 14])
    np.testing.assert_array_equal(layer(np.array([t.encode() for t in TRICKY])), out)


def test_output_sequence_length_pads_and_truncates_at_the_end():
    layer = TextVectorization(output_sequence_length=3, vocabulary=["the", "sat", "cat"])
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "sat", "cat"]
    np.testing.assert_array_equal(layer(["the cat sat the", "cat"]), [[2, 4, 3], [4, 0, 0]])
    np.testing.assert_array_equal(layer([]), np.zeros((0, 3)))


def test_ngrams():
    layer = adapted(["a b c", "b c d"], ngrams=2)
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b c", "b", "d", "c d", "a b", "a"]
    np.testing.assert_array_equal(layer(["a b c"]), [[8, 4, 2, 7, 3]])
    layer = adapted(["a b c", "b c d"], ngrams=(1, 3))
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b", "d", "b c d", "a b c", "a"]


def test_character_split_and_no_split():
    layer = adapted(["ab a", "ba"], split="character", standardize=None)
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b", " "]
    np.testing.assert_array_equal(layer(["ab a"]), [[2, 3, 4, 2]])
    layer = adapted(["a b", "a b", "c", ""], split=None)
    assert layer.get_vocabulary() == ["", "[UNK]", "a b", "c"]
    np.testing.assert_array_equal(layer(["a b", "c", "zz", ""]), [2, 3, 1, 0])


@pytest.mark.parametrize("mode,expected,dtype", [
    ("multi_hot", [[1, 0, 1, 0, 1], [0, 0, 0, 1, 0]], np.int64),
    ("count", [[1, 0, 2, 0, 1], [0, 0, 0, 1, 0]], np.int64),
    ("tf_idf", [[0.8047189712524414, 0.0, 1.3862943649291992, 0.0, 0.9162907600402832],
                [0.0, 0.0, 0.0, 0.9162907600402832, 0.0]], np.float32),
])
def test_multi_hot_count_tf_idf(mode, expected, dtype):
    layer = adapted(COUNTS_TEXTS, output_mode=mode)
    assert layer.get_vocabulary() == ["[UNK]", "c", "b", "d", "a"]
    out = layer(["a b b e", "d"])
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    padded = adapted(COUNTS_TEXTS, output_mode=mode, max_tokens=6, pad_to_max_tokens=True)
    np.testing.assert_allclose(padded(["a b b e", "d"]), np.pad(expected, [(0, 0), (0, 1)]),
                               rtol=1e-6)
    # idf = log(1 + num_documents / (1 + document_count)); the OOV weight is their mean
    if mode == "tf_idf":
        idf = np.log(1 + 3 / (1 + np.array([2, 2, 1, 1])))
        np.testing.assert_allclose(out[0], [idf.mean(), 0, 2 * idf[1], 0, idf[3]], rtol=1e-6)


def test_max_tokens_counts_the_special_tokens():
    layer = adapted(COUNTS_TEXTS, max_tokens=4)
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b"]
    assert layer.vocabulary_size() == 4
    layer = adapted(COUNTS_TEXTS, max_tokens=3, output_mode="multi_hot")
    assert layer.get_vocabulary() == ["[UNK]", "c", "b"]


def test_tf_idf_vocabulary_without_special_tokens_gets_the_mean_oov_weight():
    layer = TextVectorization(output_mode="tf_idf", vocabulary=["a", "b"], idf_weights=[0.5, 0.25])
    assert layer.get_vocabulary() == ["[UNK]", "a", "b"]
    np.testing.assert_allclose(layer(["a b b z"]), [[0.375, 0.5, 0.5]])


def test_set_vocabulary_with_special_tokens_and_from_a_file(tmp_path):
    layer = TextVectorization(vocabulary=["", "[UNK]", "a"])
    assert layer.get_vocabulary() == ["", "[UNK]", "a"]
    path = tmp_path / "vocab.txt"
    path.write_text("x\ny\n", encoding="utf-8")
    layer.set_vocabulary(str(path))
    assert layer.get_vocabulary() == ["", "[UNK]", "x", "y"]
    np.testing.assert_array_equal(layer(["y x q"]), [[3, 2, 1]])


def test_imdb_reviews_as_keras():
    """The first 1,000 IMDB reviews: vocabulary (hash of all 2,000 tokens) and ids as Keras."""
    data = os.environ.get("FASTSEQ_DATA")
    path = os.path.join(data, "imdb_reviews.csv.gz") if data else None
    if not path or not os.path.isfile(path):
        pytest.skip("FASTSEQ_DATA does not hold imdb_reviews.csv.gz")
    from fastseq._bench.preprocessing import read_reviews

    texts = read_reviews(path, 1000)
    layer = adapted(texts, max_tokens=2000, output_sequence_length=12)
    vocabulary = layer.get_vocabulary()
    assert vocabulary[:16] == ["", "[UNK]", "the", "a", "and", "to", "of", "is", "in", "this",
                               "i", "it", "that", "br", "was", "for"]
    assert hashlib.sha256("\n".join(vocabulary).encode()).hexdigest() == (
        "fb78aae33f11d89d28d958c1101d15cd8636c4862c2c1ca639e3254a8bb8b776")
    np.testing.assert_array_equal(layer(texts[:3]), [
        [65, 6, 3, 135, 40, 47, 1, 1, 15, 3, 1, 546],
        [749, 1, 400, 2, 94, 1, 1317, 1, 6, 33, 66, 9],
        [10, 219, 2, 1, 894, 264, 136, 97, 8, 69, 1065, 140]])
    assert int(layer(texts).sum()) == 2462765
    tfidf = adapted(texts, output_mode="tf_idf", max_tokens=50)
    np.testing.assert_allclose(tfidf(texts[:2])[:, :8], [
        [71.55033111572266, 2.782625913619995, 4.974147796630859, 0.7095410227775574,
         0.7196630239486694, 2.1589889526367188, 1.520632028579712, 0.0],
        [67.46173858642578, 3.478282928466797, 4.263554096221924, 2.1286230087280273,
         0.7196630239486694, 4.3179779052734375, 8.363476753234863, 3.0388400554656982]],
        rtol=1e-5)


def random_texts(n, seed):
    rng = np.random.default_rng(seed)
    alphabet = list("abcAB  \t\n\x0b.,'-é\xa0Ü")
    return ["".join(rng.choice(alphabet, size=rng.integers(0, 30))) for _ in range(n)]


@pytest.mark.parametrize("standardize", ["lower_and_strip_punctuation", "lower",
                                         "strip_punctuation", None])
def test_kernel_path_equals_the_python_path(standardize):
    """The Cython path (whitespace split) against the Python one (ngrams=(1,): the same
    tokens), and against the rules written out with Python's re."""
    import re

    texts = random_texts(200, 1)
    fast = adapted(texts, standardize=standardize, max_tokens=30)
    slow = adapted(texts, standardize=standardize, max_tokens=30, ngrams=(1,))
    assert fast.get_vocabulary() == slow.get_vocabulary()
    np.testing.assert_array_equal(fast(texts), slow(texts))

    def tokens(text):
        if standardize in ("lower", "lower_and_strip_punctuation"):
            text = re.sub("[A-Z]", lambda m: m.group().lower(), text)
        if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = re.sub(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']', "", text)
        return [w for w in re.split("[ \t\n\x0b\x0c\r]+", text) if w]

    counts = {}
    for text in texts:
        for w in tokens(text):
            counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts, key=lambda w: (counts[w], w), reverse=True)[:28]
    assert fast.get_vocabulary() == ["", "[UNK]"] + ranked


def test_adapt_on_batches_equals_adapt_on_all():
    texts = random_texts(90, 2)
    whole = adapted(texts, output_mode="tf_idf")
    batches = adapted((texts[i:i + 25] for i in range(0, 90, 25)), output_mode="tf_idf")
    assert whole.get_vocabulary() == batches.get_vocabulary()
    np.testing.assert_allclose(whole(texts), batches(texts), rtol=1e-6)
    first = TextVectorization()
    first.adapt(iter([texts[:30], texts[30:]]), steps=1)
    assert first.get_vocabulary() == adapted(texts[:30]).get_vocabulary()


def test_callables_standardize_gets_a_numpy_array_and_split_its_texts():
    seen = {}

    def standardize(x):
        seen["type"] = type(x)
        return np.char.upper(x)

    layer = adapted(["a-b c", "c"], standardize=standardize, split=lambda x: [t.split("-")
                                                                            for t in x])
    assert seen["type"] is np.ndarray
    assert layer.get_vocabulary() == ["", "[UNK]", "C", "B C", "A"]
    np.testing.assert_array_equal(layer(["a-b c", "a"]), [[4, 3], [4, 0]])


def test_ragged_int_output():
    layer = TextVectorization(vocabulary=["a", "b"], ragged=True, output_sequence_length=2)
    rows = layer(["a b a", "b"])
    assert [r.tolist() for r in rows] == [[2, 3], [3]]


def test_config_round_trip():
    for kwargs in ({"max_tokens": 10, "output_sequence_length": 4},
                   {"output_mode": "tf_idf", "ngrams": 2, "max_tokens": 8,
                    "pad_to_max_tokens": True},
                   {"output_mode": "count", "split": "character"}):
        layer = adapted(COUNTS_TEXTS, **kwargs)
        config = layer.get_config()
        assert config["vocabulary"] == layer.get_vocabulary()
        assert config["vocabulary_size"] == layer.vocabulary_size()
        copy = deserialize(serialize(layer))
        assert copy.get_vocabulary() == layer.get_vocabulary()
        np.testing.assert_array_equal(copy(["a b c e", "d d"]), layer(["a b c e", "d d"]))
        copy.adapt(["z z"])  # adapted once, so it may adapt again (as Keras)
        assert copy.get_vocabulary(include_special_tokens=False)[0] == "z"
    given = TextVectorization(vocabulary=["a"])
    with pytest.raises(ValueError, match="static vocabulary"):
        TextVectorization.from_config(given.get_config()).adapt(["a"])


def test_config_with_callables_importable_by_name():
    layer = TextVectorization(standardize=np.char.lower, vocabulary=["a"])
    config = layer.get_config()
    assert config["standardize"]["config"] == "lower"
    copy = TextVectorization.from_config(config)
    np.testing.assert_array_equal(copy(["A b"]), [[2, 1]])
    with pytest.raises(ValueError, match="cannot save"):
        TextVectorization(split=lambda x: x).get_config()


def test_in_models_predict_from_strings_and_fit_the_layers_above():
    vectorizer = adapted(["a b c", "b c d e", "c"], max_tokens=20, output_sequence_length=5)
    texts = ["a b", "c d e f", "e"]
    model = Sequential([vectorizer, Embedding(20, 4), GlobalAveragePooling1D(), Dense(1)])
    predicted = model.predict(texts, verbose=0)
    inner = Sequential([Embedding(20, 4), GlobalAveragePooling1D(), Dense(1)])
    inner.build((None, 5))
    inner.set_weights(model.get_weights())
    np.testing.assert_allclose(predicted, inner.predict(vectorizer(texts), verbose=0),
                               rtol=1e-6)
    assert vectorizer.count_params() == 0
    model.compile("sgd", "mse")
    before = model.get_weights()
    model.fit(np.array(texts), np.ones((3, 1)), epochs=1, verbose=0)  # nothing below it
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    raw = Input(shape=(1,), dtype="string")
    end_to_end = Model(raw, inner(vectorizer(raw)))
    np.testing.assert_allclose(end_to_end.predict(np.array(texts)[:, None], verbose=0),
                               inner.predict(vectorizer(texts), verbose=0), rtol=1e-6)
    with pytest.raises(RuntimeError, match="cannot be trained through"):
        vectorizer.backward(np.ones((3, 5)))


@pytest.mark.parametrize("kwargs,match", [
    ({"output_mode": "one_hot_x"}, "output_mode"),
    ({"max_tokens": 1}, "max_tokens"),
    ({"standardize": "upper"}, "standardize"),
    ({"split": "comma"}, "split"),
    ({"ngrams": "2"}, "ngrams"),
    ({"ngrams": 2, "split": None}, "ngrams need a split"),
    ({"output_mode": "count", "output_sequence_length": 3}, "output_sequence_length"),
    ({"pad_to_max_tokens": True}, "pad_to_max_tokens"),
    ({"sparse": True}, "sparse"),
    ({"ragged": True, "output_mode": "count"}, "ragged"),
    ({"idf_weights": [1.0]}, "idf_weights"),
    ({"output_mode": "tf_idf", "vocabulary": ["a"]}, "idf_weights"),
    ({"vocabulary": ["a", "b", "a"]}, "repeated"),
    ({"vocabulary": ["a", ""]}, "mask token"),
    ({"vocabulary": ["a", "b", "c"], "max_tokens": 4}, "larger than the maximum"),
    ({"vocabulary": []}, "empty vocabulary"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TextVectorization(**kwargs)


def test_bad_inputs():
    layer = TextVectorization(vocabulary=["a"])
    with pytest.raises(TypeError, match="dtype float64"):
        layer(np.zeros(3))
    with pytest.raises(TypeError, match=r"inputs\[1\] is int"):
        layer(["a", 3])
    with pytest.raises(ValueError, match="last dimension must be 1"):
        layer(np.array([["a", "b"]]))
    with pytest.raises(RuntimeError, match="call adapt"):
        TextVectorization(output_mode="multi_hot")(["a"])
    with pytest.raises(TypeError, match="adapt: data"):
        TextVectorization().adapt(3)


def test_the_old_keras_experimental_path():
    from fastseq.layers.experimental.preprocessing import TextVectorization as Old

    assert Old is TextVectorization
