"""pad_sequences against the Keras code (fastseq._bench.preprocessing.keras_pad_sequences):
the Cython path (lists of ints), the generic path (arrays, NumPy ints, vectors), the 2-D
array path, and bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq._bench.preprocessing import keras_pad_sequences
from fastseq.preprocessing import sequence as sequence_module
from fastseq.preprocessing.sequence import pad_sequences

ragged = st.lists(st.lists(st.integers(0, 2**31 - 1), max_size=9), max_size=8)
modes = st.sampled_from(["pre", "post"])


def test_keras_docstring_examples():
    seqs = [[1], [2, 3], [4, 5, 6]]
    assert pad_sequences(seqs).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
    assert pad_sequences(seqs, value=-1).tolist() == [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    assert pad_sequences(seqs, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert pad_sequences(seqs, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]
    assert pad_sequences(seqs, maxlen=2, truncating="post").tolist() == [[0, 1], [2, 3], [4, 5]]
    assert pad_sequences(seqs).dtype == np.int32


@settings(max_examples=30, deadline=None)
@given(seqs=ragged, maxlen=st.one_of(st.none(), st.integers(1, 12)), padding=modes,
       truncating=modes, dtype=st.sampled_from(["int32", "int64", "float32", "float64"]),
       value=st.sampled_from([0.0, -1, 7]))
def test_lists_match_keras(seqs, maxlen, padding, truncating, dtype, value):
    if not seqs and maxlen is None:
        return  # Keras fails on np.max([]); fastseq gives (0, 0) (below)
    want = keras_pad_sequences(seqs, maxlen, dtype, padding, truncating, value)
    got = pad_sequences(seqs, maxlen, dtype, padding, truncating, value)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(seqs=st.lists(st.lists(st.integers(0, 1000), max_size=9), min_size=1, max_size=8),
       maxlen=st.one_of(st.none(), st.integers(1, 12)), padding=modes, truncating=modes,
       kind=st.sampled_from(["arrays", "numpy ints", "tuples", "object array", "mixed"]))
def test_other_containers_match_keras(seqs, maxlen, padding, truncating, kind):
    want = keras_pad_sequences(seqs, maxlen, "int32", padding, truncating)
    if kind == "arrays":
        inputs = [np.array(s, dtype=np.int64) for s in seqs]
    elif kind == "numpy ints":
        inputs = [[np.int16(v) for v in s] for s in seqs]
    elif kind == "tuples":
        inputs = tuple(tuple(s) for s in seqs)
    elif kind == "object array":
        inputs = np.empty(len(seqs), dtype=object)
        inputs[:] = seqs
    else:  # lists, then arrays from some point on: the fast path hands over midway
        inputs = [s if i % 2 == 0 else np.array(s, dtype=np.int32) for i, s in enumerate(seqs)]
    np.testing.assert_array_equal(pad_sequences(inputs, maxlen, padding=padding,
                                                truncating=truncating), want)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 5), t=st.integers(0, 7), maxlen=st.one_of(st.none(), st.integers(1, 9)),
       padding=modes, truncating=modes, features=st.sampled_from([(), (3,)]))
def test_arrays_match_keras(n, t, maxlen, padding, truncating, features):
    rng = np.random.default_rng(n * 100 + t)
    if features:
        x = rng.standard_normal((n, t) + features).astype(np.float32)
        dtype = "float32"
    else:
        x = rng.integers(0, 100, (n, t))
        dtype = "int32"
    if n == 0 or t == 0:
        # Keras has no sample to take the feature shape from (and np.max([]) fails for n=0);
        # the array's own shape tells it
        got = pad_sequences(x, maxlen, dtype, padding, truncating, value=-1)
        assert got.shape == (n, t if maxlen is None else maxlen) + features
        assert (got == -1).all()
        return
    want = keras_pad_sequences(list(x), maxlen, dtype, padding, truncating)
    got = pad_sequences(x, maxlen, dtype, padding, truncating)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_vectors_per_step_follow_keras():
    seqs = [[[1.0, 2.0]], [], [[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]]
    want = keras_pad_sequences(seqs, 2, "float32", "post", "pre", -1.0)
    got = pad_sequences(seqs, 2, "float32", "post", "pre", -1.0)
    assert got.shape == (3, 2, 2)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="Shape of sample"):
        pad_sequences([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]], dtype="float32")


def test_edge_cases():
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[], []]).tolist() == [[], []]
    assert pad_sequences([[1, 2], []], maxlen=0).shape == (2, 0)
    assert pad_sequences([[1, 2]], maxlen=0, truncating="post").shape == (1, 0)
    big = pad_sequences([[2**40]], dtype="int64")
    assert big[0, 0] == 2**40
    strings = pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert strings.tolist() == [["a", "b"], ["<pad>", "c"]]
    # bools are ints, as in Keras
    assert pad_sequences([[True, False]]).tolist() == [[1, 0]]


def test_fast_path_is_used_for_int_lists(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the generic path ran")
    monkeypatch.setattr(sequence_module, "_pad_generic", fail)
    assert pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist() == [[2, 3], [0, 4]]


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("seqs", [[[1, 2], [3, -4]], [[1], np.array([5, -4])],
                                  [[1], [np.int64(3), np.int64(-4)]]])
def test_negative_token(seqs):
    with pytest.raises(ValueError, match=r"sequences\[1\]\[1\] = -4 is negative"):
        pad_sequences(seqs)
    with pytest.raises(ValueError, match=r"sequences\[1\]\[1\] = -4 is negative"):
        pad_sequences(seqs, maxlen=1)  # the position in the sequence, not in its kept part
    with pytest.raises(ValueError, match=r"sequences\[:, 1\] = -4 is negative"):
        pad_sequences(np.array([[1, 2], [3, -4]]))


@pytest.mark.parametrize("seqs", [[[1, 2.5]], [np.array([1.0, 2.0])], [[1, "a"]]])
def test_float_or_other_token_with_int_dtype(seqs):
    with pytest.raises(TypeError, match=r"sequences\[0\].*integer dtype"):
        pad_sequences(seqs)


def test_float_tokens_are_fine_with_a_float_dtype():
    assert pad_sequences([[1.5, 2.5]], maxlen=3, dtype="float32").tolist() == [[0.0, 1.5, 2.5]]


def test_overflow():
    with pytest.raises(ValueError, match=r"sequences\[0\]\[1\] = 2147483648 does not fit"):
        pad_sequences([[1, 2**31]])
    with pytest.raises(ValueError, match="does not fit in int8"):
        pad_sequences([np.array([300])], dtype="int8")
    with pytest.raises(ValueError, match="does not fit"):
        pad_sequences([[2**70]], dtype="int64")


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": "middle"}, 'Padding type "middle" not understood'),
    ({"truncating": "both"}, 'Truncating type "both" not understood'),
    ({"maxlen": -1}, "maxlen must be >= 0"),
    ({"maxlen": 2.0}, "maxlen must be None or an int"),
    ({"value": "x"}, "not compatible with `value`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pad_sequences([[1, 2]], **kwargs)


def test_unknown_padding_fails_even_without_data():
    with pytest.raises(ValueError, match="not understood"):
        pad_sequences([[], []], padding="mid")  # Keras would return zeros silently


def test_bad_containers():
    with pytest.raises(ValueError, match="must be a list of sequences"):
        pad_sequences(x for x in [[1]])
    with pytest.raises(ValueError, match="rank >= 2, got a 0-d array"):
        pad_sequences(np.array(3))
    with pytest.raises(ValueError, match="must be a list of iterables.*position 1"):
        pad_sequences([[1], 5])
    with pytest.raises(TypeError, match=r"sequences\[0\] is a str"):
        pad_sequences(["abc"])
