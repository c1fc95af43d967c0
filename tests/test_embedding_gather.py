"""The embedding forward's gather paths (issue 16): the serial AVX copy of cache-resident
tables (32-byte blocks, an overlapping last block for rows that are not a multiple of 32
bytes), the short-row loop and the parallel prefetching gather of large tables. Each must
equal np.take bitwise, for any thread count, and touch no byte outside the table's rows it
reads and the output it writes."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastseq import kernels
from fastseq._kernels import embedding as _emb

# row widths around the 32-byte blocks, for 4- and 8-byte floats
WIDTHS = list(range(1, 20)) + [23, 24, 25, 31, 32, 33, 40, 63, 64, 65, 100, 256, 300]
# tables below and above the 4 MiB cache-resident limit (at D = 300, float32: 1.2 and 6 MB)
VOCABS = [1, 7, 1000, 5000]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_equals_np_take_at_every_row_width(dtype, index_dtype):
    rng = np.random.default_rng(0)
    for vocab in VOCABS:
        for dim in WIDTHS:
            weights = rng.standard_normal((vocab, dim)).astype(dtype)
            indices = rng.integers(0, vocab, size=(3, 41)).astype(index_dtype)
            indices[0, :3] = (0, vocab - 1, vocab - 1)  # the first and last rows
            got = kernels.embedding_forward(weights, indices)
            assert got.tobytes() == np.take(weights, indices, axis=0).tobytes(), (vocab, dim)


@pytest.mark.parametrize("vocab,dim", [(5000, 32), (1024, 256), (20000, 300), (3, 9)])
def test_gather_bitwise_the_same_for_any_thread_count(vocab, dim):
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((vocab, dim)).astype(np.float32)
    indices = rng.integers(0, vocab, size=(16, 64)).astype(np.int32)
    before = _emb.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            _emb.set_num_threads(threads)
            results.append(kernels.embedding_forward(weights, indices).tobytes())
    finally:
        _emb.set_num_threads(before)
    assert results[0] == results[1] == results[2]
    assert results[0] == np.take(weights, indices, axis=0).tobytes()


@pytest.mark.parametrize("dim", [8, 9, 32, 33, 100])
def test_gather_writes_only_its_output(dim):
    rng = np.random.default_rng(2)
    weights = rng.standard_normal((50, dim)).astype(np.float32)
    indices = rng.integers(0, 50, size=37).astype(np.int64)
    buffer = np.full((37 + 2, dim), 77.0, np.float32)
    out = buffer[1:-1]
    kernels.embedding_forward(weights, indices, out=out)
    np.testing.assert_array_equal(out, weights[indices])
    assert (buffer[0] == 77).all() and (buffer[-1] == 77).all()


# Run in a child: an over-read or over-write would be a segfault there, a failed test here.
_GUARD_PAGE_CHILD = textwrap.dedent("""
    import ctypes, mmap, sys
    import numpy as np
    from fastseq import kernels

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    keep = []

    def before_guard_page(shape, dtype):
        # an array whose last byte is the last byte before a PROT_NONE page
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        size = -(-nbytes // PAGE) * PAGE + PAGE
        region = mmap.mmap(-1, size)
        address = ctypes.addressof(ctypes.c_char.from_buffer(region))
        assert libc.mprotect(address + size - PAGE, PAGE, 0) == 0
        keep.append(region)
        return np.frombuffer(region, dtype, count=int(np.prod(shape)),
                             offset=size - PAGE - nbytes).reshape(shape)

    for dtype in (np.float32, np.float64):
        for dim in (1, 3, 8, 9, 31, 33, 100, 300):
            for vocab in (5, 4000):  # the cache-resident and the large-table paths
                weights = before_guard_page((vocab, dim), dtype)
                weights[...] = np.arange(vocab * dim).reshape(vocab, dim)
                indices = np.array([vocab - 1, 0, vocab - 1] * 30, np.int32)
                out = before_guard_page((indices.size, dim), dtype)
                kernels.embedding_forward(weights, indices, out=out)
                assert (out == weights[indices]).all()
                assert (kernels.embedding_forward(weights, indices) == weights[indices]).all()
    print("ok")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through libc")
def test_gather_reads_and_writes_nothing_past_the_arrays():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", _GUARD_PAGE_CHILD], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")


@pytest.mark.parametrize("dim", [8, 32, 33, 300])  # the short-row loop and the AVX loop
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("bad", [50, -1, 2**31 - 1])
def test_a_bad_index_is_a_clear_error_on_every_path(dim, index_dtype, bad):
    # gather_new checks each index as it copies the rows (its output is dropped on failure)
    weights = np.ones((50, dim), np.float32)
    indices = np.array([[1, 2, 3], [4, bad, 5]], index_dtype)
    assert _emb.gather_new(weights, indices) is None
    with pytest.raises(IndexError, match=rf"index {bad} at position \(1, 1\) is out of range"):
        kernels.embedding_forward(weights, indices)
    out = np.full((2, 3, dim), 7.0, np.float32)
    with pytest.raises(IndexError):
        kernels.embedding_forward(weights, indices, out=out)
    assert (out == 7).all()  # the out= path checks every index before any copy
