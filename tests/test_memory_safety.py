"""Memory safety at the kernel boundaries (issue 13): every kernel family at rank 0, rank 1
and NumPy's maximum rank (64 on NumPy 2), and the sizes and offsets the C kernels trust.

Each call must give the right answer (compared with NumPy or the reference kernels) or a
clear ValueError/TypeError naming what was expected -- never a crash. The C and Numba
kernels skip bounds checks, so a missed check is a segfault or silent memory corruption:
each family's cases run in a child process (this file run as a script), so a crash shows up
as a failing test naming the case that crashed, not as a dead pytest.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest


def _numpy_max_ndim():
    for n in (64, 32):
        try:
            np.empty((1,) * n)
            return n
        except ValueError:
            pass
    return 32


MAX_NDIM = _numpy_max_ndim()
FAMILIES = ("embedding", "lstm", "conv1d", "sequence")


# ------------------------------------------------------------------------ in the child


def _shape(rank):
    """A small shape of the given rank with more than one element when rank >= 1."""
    if rank == 0:
        return ()
    if rank == 1:
        return (3,)
    return (2,) + (1,) * (rank - 2) + (3,)


def _raises(fn, types, pattern):
    """fn() must raise one of ``types`` with a message matching ``pattern``."""
    try:
        fn()
    except types as e:
        if not re.search(pattern, str(e)):
            raise AssertionError(f"{type(e).__name__} message {str(e)[:300]!r} does not "
                                 f"match {pattern!r}") from None
        return
    except Exception as e:  # the wrong kind of error
        raise AssertionError(f"expected {types} matching {pattern!r}, got "
                             f"{type(e).__name__}: {str(e)[:300]}") from None
    raise AssertionError(f"expected {types} matching {pattern!r}, got no error")


def _equal(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    np.testing.assert_array_equal(got, want)


def _embedding_cases():
    from fastseq import kernels as K

    rng = np.random.default_rng(0)
    V, D = 7, 3
    too_many = f"indices must have at most {MAX_NDIM - 1} dimensions"
    for dtype in (np.float32, np.float64):
        W = rng.standard_normal((V, D)).astype(dtype)
        for itype in (np.int32, np.int64):
            # 32..36: the old fixed 33-entry shape buffer (36 segfaulted, 34-35 raised a
            # nonsense MemoryError, 33 wrote one element past it)
            for rank in (0, 1, 2, 31, 32, 33, 34, 35, 36, MAX_NDIM - 1, MAX_NDIM):
                name = f"forward rank {rank} {np.dtype(dtype).name}/{np.dtype(itype).name}"
                idx = rng.integers(0, V, _shape(rank)).astype(itype)
                if rank == MAX_NDIM:  # the output would have MAX_NDIM + 1 dimensions
                    yield name, lambda W=W, idx=idx: _raises(
                        lambda: K.embedding_forward(W, idx), ValueError, too_many)
                    yield name + " out=", lambda W=W, idx=idx: _raises(
                        lambda: K.embedding_forward(W, idx, out=np.empty(3, W.dtype)),
                        ValueError, too_many)
                    continue
                yield name, lambda W=W, idx=idx: _equal(K.embedding_forward(W, idx), W[idx])

                def with_out(W=W, idx=idx):
                    out = np.empty(idx.shape + (D,), W.dtype)
                    assert K.embedding_forward(W, idx, out=out) is out
                    _equal(out, W[idx])
                yield name + " out=", with_out
    W = rng.standard_normal((V, D)).astype(np.float32)
    for rank in (0, 1, MAX_NDIM):
        bad = np.ones((1,) * rank, np.float32)
        yield f"forward weights rank {rank}", lambda bad=bad: _raises(
            lambda: K.embedding_forward(bad, np.zeros(2, np.int64)), ValueError,
            r"weights must be 2-D \(num_embeddings, embedding_dim\)")

    def unaligned(a):
        """A C-contiguous copy of ``a`` whose data starts one byte past an aligned address."""
        raw = np.empty(a.nbytes + 1, np.uint8)
        view = raw[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        assert view.flags.c_contiguous and not view.flags.aligned
        return view

    def misaligned():
        W = rng.standard_normal((V, D)).astype(np.float32)
        idx = rng.integers(0, V, (4, 5))
        want = W[idx]
        _equal(K.embedding_forward(unaligned(W), idx), want)
        _equal(K.embedding_forward(W, unaligned(idx)), want)
        g = rng.standard_normal((4, 5, D)).astype(np.float32)
        dense = np.zeros((V, D), np.float32)
        np.add.at(dense, idx.reshape(-1), g.reshape(-1, D))
        _equal(K.embedding_backward(unaligned(idx), unaligned(g), V), dense)
        _raises(lambda: K.embedding_forward(W, idx, out=unaligned(np.empty((4, 5, D), W.dtype))),
                ValueError, r"out must be a writeable, aligned C-contiguous array")
    yield "unaligned weights, indices, gradients and out", misaligned

    for rank in (0, 1, 2, 33, MAX_NDIM - 1, MAX_NDIM):
        idx = rng.integers(0, V, _shape(rank))
        if rank == MAX_NDIM:  # grad_output would need MAX_NDIM + 1 dimensions
            g = np.ones((1,) * MAX_NDIM, np.float32)
            yield f"backward rank {rank}", lambda idx=idx, g=g: _raises(
                lambda: K.embedding_backward(idx, g, V), ValueError, too_many)
            yield f"backward_sparse rank {rank}", lambda idx=idx, g=g: _raises(
                lambda: K.embedding_backward_sparse(idx, g), ValueError, too_many)
            continue
        g = rng.standard_normal(idx.shape + (D,)).astype(np.float32)
        dense = np.zeros((V, D), np.float32)
        # flat: NumPy's own np.add.at segfaults on index arrays of more than 32 dimensions
        np.add.at(dense, idx.reshape(-1), g.reshape(-1, D))
        rows = np.unique(idx).astype(np.int64)
        yield f"backward rank {rank}", lambda idx=idx, g=g, dense=dense: _equal(
            K.embedding_backward(idx, g, V), dense)

        def sparse(idx=idx, g=g, dense=dense, rows=rows):
            got_rows, values = K.embedding_backward_sparse(idx, g, num_embeddings=V)
            _equal(got_rows, rows)
            _equal(values, dense[rows])
        yield f"backward_sparse rank {rank}", sparse
    idx = np.array([1, 2])
    for rank in (0, 1, MAX_NDIM):  # grad_output of the wrong rank for (2,) indices
        g = np.ones((1,) * rank, np.float32)
        pattern = r"grad_output must have shape indices.shape \+ \(embedding_dim,\).*2-D"
        yield f"backward grad rank {rank}", lambda g=g: _raises(
            lambda: K.embedding_backward(idx, g, V), ValueError, pattern)
        yield f"backward_sparse grad rank {rank}", lambda g=g: _raises(
            lambda: K.embedding_backward_sparse(idx, g), ValueError, pattern)


def _lstm_cases():
    from fastseq import kernels as K
    from fastseq._kernels import reference

    rng = np.random.default_rng(1)
    B, T, D, H = 2, 3, 2, 2
    x = rng.standard_normal((B, T, D))
    k = rng.standard_normal((D, 4 * H))
    rk = rng.standard_normal((H, 4 * H))
    b = rng.standard_normal(4 * H)

    def valid():
        out, h, c, cache = K.lstm_forward(x, k, rk, b)
        ref = reference.lstm_forward(x, k, rk, b)
        np.testing.assert_allclose(out, ref[0], rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(out.shape)
        got = K.lstm_backward(cache, g)
        want = reference.lstm_backward(ref[3], g)
        for a, w in zip(got, want):
            np.testing.assert_allclose(a, w, rtol=1e-9, atol=1e-12)
    yield "forward/backward (B, T, D) = (2, 3, 2) against the reference", valid

    def wrong(rank):
        return np.ones((1,) * rank)
    for rank in (0, 1, MAX_NDIM):
        a = wrong(rank)
        yield f"forward x rank {rank}", lambda a=a: _raises(
            lambda: K.lstm_forward(a, k, rk, b), ValueError, r"x must be 3-D")
        yield f"forward kernel rank {rank}", lambda a=a: _raises(
            lambda: K.lstm_forward(x, a, rk, b), ValueError, r"kernel must be 2-D")
        yield f"forward recurrent_kernel rank {rank}", lambda a=a: _raises(
            lambda: K.lstm_forward(x, k, a, b), ValueError, r"recurrent_kernel must be 2-D")
        yield f"forward h0 rank {rank}", lambda a=a: _raises(
            lambda: K.lstm_forward(x, k, rk, b, h0=a), ValueError, r"h0 must be 2-D")
        yield f"forward mask rank {rank}", lambda rank=rank: _raises(
            lambda: K.lstm_forward(x, k, rk, b, mask=np.ones((1,) * rank, bool)), ValueError,
            r"mask must be 2-D")
        cache = K.lstm_forward(x, k, rk, b)[3]
        yield f"backward grad_outputs rank {rank}", lambda a=a, cache=cache: _raises(
            lambda: K.lstm_backward(cache, a), ValueError, r"grad_outputs must be 3-D")
        yield f"backward grad_h_last rank {rank}", lambda a=a, cache=cache: _raises(
            lambda: K.lstm_backward(cache, grad_h_last=a), ValueError,
            r"grad_h_last must be 2-D")
    for rank in (0, MAX_NDIM):
        a = wrong(rank)
        yield f"forward bias rank {rank}", lambda a=a: _raises(
            lambda: K.lstm_forward(x, k, rk, a), ValueError, r"bias must be 1-D")


def _conv1d_cases():
    from fastseq import kernels as K
    from fastseq._kernels import reference

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 3))
    kernel = rng.standard_normal((3, 3, 4))
    bias = rng.standard_normal(4)

    def valid():
        for padding in ("valid", "same"):
            y, cache = K.conv1d_forward(x, kernel, bias, padding=padding)
            y_ref, cache_ref = reference.conv1d_forward(x, kernel, bias, padding=padding)
            np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
            g = rng.standard_normal(y.shape)
            for a, w in zip(K.conv1d_backward(cache, g), reference.conv1d_backward(cache_ref, g)):
                np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-12)
        for name in ("max_pool1d", "global_average_pool1d", "global_max_pool1d"):
            fwd, bwd = getattr(K, name + "_forward"), getattr(K, name + "_backward")
            ref_fwd, ref_bwd = (getattr(reference, name + "_forward"),
                                getattr(reference, name + "_backward"))
            y, cache = fwd(x)
            y_ref, cache_ref = ref_fwd(x)
            np.testing.assert_allclose(y, y_ref, rtol=1e-12)
            g = rng.standard_normal(y.shape)
            np.testing.assert_allclose(bwd(cache, g), ref_bwd(cache_ref, g), rtol=1e-12)
    yield "conv1d and pooling forward/backward against the reference", valid

    caches = {
        "conv1d": (K.conv1d_forward(x, kernel)[1], r"grad_y must have shape \(2, 4, 4\)"),
        "max_pool1d": (K.max_pool1d_forward(x)[1], r"grad_y must have shape \(2, 3, 3\)"),
        "global_average_pool1d": (K.global_average_pool1d_forward(x)[1],
                                  r"grad_y must have shape \(2, 3\)"),
        "global_max_pool1d": (K.global_max_pool1d_forward(x)[1],
                              r"grad_y must have shape \(2, 3\)"),
    }
    for rank in (0, 1, MAX_NDIM):
        a = np.ones((1,) * rank)
        yield f"conv1d x rank {rank}", lambda a=a: _raises(
            lambda: K.conv1d_forward(a, kernel), ValueError, r"x must be 3-D")
        yield f"conv1d kernel rank {rank}", lambda a=a: _raises(
            lambda: K.conv1d_forward(x, a), ValueError, r"kernel must be 3-D")
        for name in ("max_pool1d", "global_average_pool1d", "global_max_pool1d"):
            fwd = getattr(K, name + "_forward")
            yield f"{name} x rank {rank}", lambda a=a, fwd=fwd: _raises(
                lambda: fwd(a), ValueError, r"x must be 3-D")
        for name, (cache, pattern) in caches.items():
            bwd = getattr(K, name + "_backward")
            yield f"{name} backward grad_y rank {rank}", lambda a=a, bwd=bwd, cache=cache, \
                pattern=pattern: _raises(lambda: bwd(cache, a), ValueError, pattern)
        for name in ("global_average_pool1d", "global_max_pool1d"):
            fwd = getattr(K, name + "_forward")
            yield f"{name} mask rank {rank}", lambda rank=rank, fwd=fwd: _raises(
                lambda: fwd(x, mask=np.ones((1,) * rank, bool)), ValueError,
                r"mask must have shape \(batch, steps\)")
    for rank in (0, MAX_NDIM):
        a = np.ones((1,) * rank)
        yield f"conv1d bias rank {rank}", lambda a=a: _raises(
            lambda: K.conv1d_forward(x, kernel, a), ValueError, r"bias must be 1-D")


def _sequence_cases():
    from fastseq._kernels import sequence as S
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import Tokenizer

    # pad_int_lists (behind pad_sequences): out must be 2-D with one row per sequence
    for rank in (0, 1, MAX_NDIM):
        out = np.zeros((1,) * rank, np.int32)
        yield f"pad_int_lists out rank {rank}", lambda out=out: _raises(
            lambda: S.pad_int_lists([[1]], out, False, False), ValueError,
            r"expected 2|out must be 2-D")

    def pad_fewer_rows():  # used to write past the end of out
        out = np.zeros((1, 2), np.int64)
        _raises(lambda: S.pad_int_lists([[1, 2]] * 1000, out, False, False), ValueError,
                r"out must have 1000 rows \(one per sequence\), got 1")
    yield "pad_int_lists out with fewer rows than sequences", pad_fewer_rows

    def pad_valid():
        out = np.full((3, 2), 9, np.int32)
        assert S.pad_int_lists([[1], [2, 3], [4, 5, 6]], out, False, False) == -1
        _equal(out, np.array([[9, 1], [2, 3], [5, 6]], np.int32))
    yield "pad_int_lists", pad_valid

    # split_to_lists (behind texts_to_sequences): offsets must stay inside ids
    for rank in (0, MAX_NDIM):
        a = np.zeros((1,) * rank, np.int64)
        yield f"split_to_lists rank {rank}", lambda a=a: _raises(
            lambda: S.split_to_lists(a, a), ValueError, r"expected 1")
    ids = np.arange(5, dtype=np.int64)
    for offsets, what in (([0, 2, 1 << 40], "past the end"), ([0, 3, 2], "decreasing"),
                          ([-4, 2], "negative")):
        off = np.array(offsets, np.int64)
        yield f"split_to_lists offsets {what}", lambda off=off: _raises(
            lambda: S.split_to_lists(ids, off), ValueError, r"offsets")

    def split_valid():
        got = S.split_to_lists(ids, np.array([0, 2, 2, 5], np.int64))
        assert got == [[0, 1], [], [2, 3, 4]], got
    yield "split_to_lists", split_valid

    # the text kernels take a list: a user's str subclass whose lower() empties that list
    # must not make the kernel read past its end
    for fn in ("count_words", "encode_texts"):
        def shrinking(fn=fn):
            texts = []

            class Shrinking(str):
                def lower(self):
                    texts.clear()
                    return str.lower(self)
            texts.extend([Shrinking("a b")] + ["c d"] * 3)
            args = (texts, "", " ", True) + (({"a": 1}, 0, -1) if fn == "encode_texts" else ())
            _raises(lambda: getattr(S, fn)(*args), RuntimeError, r"texts changed size")
        yield f"{fn} with texts emptied during the call", shrinking
    for rank in (0, 1, MAX_NDIM):
        arr = np.full((1,) * rank, "a b", dtype=object)
        yield f"count_words texts rank {rank}", lambda arr=arr: _raises(
            lambda: S.count_words(arr, "", " ", True), TypeError, r"expected list")

    # the word-vector parsers: a start outside the data
    for start in (-1, 5, 1 << 40):
        yield f"parse_vectors_text start {start}", lambda start=start: _raises(
            lambda: S.parse_vectors_text(b"a 1\n", start, 1, -1, 1), ValueError,
            r"start must be in \[0, 4\]")
        yield f"parse_vectors_binary start {start}", lambda start=start: _raises(
            lambda: S.parse_vectors_binary(b"a 1\n", start, 1, 1), ValueError,
            r"start must be in \[0, 4\]")

    # the public functions above them
    yield "pad_sequences rank 0", lambda: _raises(
        lambda: pad_sequences(np.array(3)), (TypeError, ValueError), r"0-d")
    yield "pad_sequences rank 1", lambda: _raises(
        lambda: pad_sequences(np.array([1, 2])), (TypeError, ValueError),
        r"list of iterables")
    for rank in (2, 3, MAX_NDIM):
        seqs = np.arange(6).reshape(_shape(rank))

        def pad(seqs=seqs):
            want = np.zeros((seqs.shape[0], 5) + seqs.shape[2:], np.int32)
            want[:, 5 - seqs.shape[1]:] = seqs
            _equal(pad_sequences(seqs, maxlen=5), want)
        yield f"pad_sequences rank {rank}", pad

    def tokenizer_rank1():
        a, b = Tokenizer(), Tokenizer()
        a.fit_on_texts(["the cat", "the dog"])
        b.fit_on_texts(np.array(["the cat", "the dog"]))
        assert a.word_index == b.word_index
        assert a.texts_to_sequences(["the dog"]) == b.texts_to_sequences(np.array(["the dog"]))
    yield "Tokenizer rank 1", tokenizer_rank1
    yield "Tokenizer rank 0", lambda: _raises(
        lambda: Tokenizer().fit_on_texts(np.array("the cat")), TypeError, r"0-d")
    yield f"Tokenizer rank {MAX_NDIM}", lambda: _raises(
        lambda: Tokenizer().fit_on_texts(np.full((1,) * MAX_NDIM, "the cat")), TypeError,
        r"texts\[0\] is ndarray, expected str")


_CASES = {"embedding": _embedding_cases, "lstm": _lstm_cases, "conv1d": _conv1d_cases,
          "sequence": _sequence_cases}


def _child(family):
    """Run one family's cases, printing START before each (so a crash names it) and PASS
    or FAIL after."""
    for name, case in _CASES[family]():
        print(f"START {name}", flush=True)
        try:
            case()
        except Exception as e:  # reported to the parent, which fails the test
            print(f"FAIL {name}: {type(e).__name__}: {e}".replace("\n", " | ")[:2000],
                  flush=True)
        else:
            print(f"PASS {name}", flush=True)
    print("DONE", flush=True)


# ------------------------------------------------------------------------ in pytest


@pytest.mark.parametrize("family", FAMILIES)
def test_every_rank_gives_the_right_result_or_a_clear_error(family):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), family],
                          capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    started = [line[6:] for line in lines if line.startswith("START ")]
    if proc.returncode != 0 or "DONE" not in lines:
        pytest.fail(f"the {family} child died (exit code {proc.returncode}) in case "
                    f"{started[-1] if started else '(none)'!r}\nstderr:\n{proc.stderr[-3000:]}")
    failures = [line[5:] for line in lines if line.startswith("FAIL ")]
    passed = sum(line.startswith("PASS ") for line in lines)
    assert passed + len(failures) == len(started) > 0
    assert not failures, f"{len(failures)} of {len(started)} cases failed:\n" + "\n".join(failures)


def test_numpy_max_rank_is_what_the_cases_use():
    np.empty((1,) * MAX_NDIM)
    with pytest.raises(ValueError):
        np.empty((1,) * (MAX_NDIM + 1))


if __name__ == "__main__":
    _child(sys.argv[1])
