# cython: language_level=3
"""Embedding kernels in Cython with OpenMP: the row gather and its scatter-add gradient.

Callers (``fastseq.kernels``) check every input once: dtypes, C-contiguity, shapes and the
index range. These kernels trust their inputs; they take NumPy arrays and dispatch on the
dtypes in C, so a call costs well under a microsecond of Python overhead.

Gradients are deterministic: each output row is reduced by one owning thread in ascending
position order, starting from zero. The result is bitwise the same for any thread count,
and bitwise equal to ``np.add.at``.

Fork: GNU OpenMP (libgomp) is not fork-safe. Its worker threads do not exist in a child
made by fork(), yet the child's first parallel region waits for them forever. A
pthread_atfork handler marks every forked child, and a marked process never enters a
parallel region: its loops run on the calling thread. The results are bitwise the same,
since no loop's arithmetic depends on the thread count.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy

import os

import numpy as np

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTSEQ_HAVE_OPENMP 1
    #else
    #define FASTSEQ_HAVE_OPENMP 0
    #endif
    /* Ask for every cache line of a row ahead of its use: random rows of a large table
       are latency-bound, and the hardware prefetcher only starts a few lines into each. */
    static inline void fastseq_prefetch_row(const void* row, size_t nbytes) {
        const char* p = (const char*)row;
        for (size_t off = 0; off < nbytes; off += 64) __builtin_prefetch(p + off, 0, 0);
    }
    static inline void fastseq_prefetch_write(const void* p) { __builtin_prefetch(p, 1, 3); }

    /* Serial gather of rows of at least 32 bytes with AVX moves: 128 bytes a step, then
       32 (the last block of a row that is not a multiple of 32 bytes overlaps the one
       before it: the same bytes, never outside the row). np.take calls libc's memmove per
       row, which costs more than the copy of a short row: this loop measured 1.06-1.2x
       np.take on cache-resident tables (128-, 400- and 1024-byte rows). The 128-byte step
       also keeps the loop's speed from depending on where the linker puts it (a 32-byte
       loop measured 10% apart between two builds of the same source). Compiled for AVX
       only in these functions; fastseq_gather_avx_ok() says whether the CPU and OS have
       it. Each row's index is checked against the table's rows before its copy (one
       compare, where a separate pass over the indices cost ~10% at V=5000 D=32 B=64
       T=500); the first bad position is returned, -1 when all are in range. */
    #if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    #include <immintrin.h>
    #define FASTSEQ_GATHER_AVX(NAME, INDEX_T)                                              \
    __attribute__((target("avx"))) static Py_ssize_t NAME(                                 \
            const char* table, const INDEX_T* idx, char* out, Py_ssize_t n_idx,            \
            size_t row_bytes, Py_ssize_t n_rows) {                                         \
        for (Py_ssize_t n = 0; n < n_idx; n++) {                                           \
            if ((uint64_t)(int64_t)idx[n] >= (uint64_t)n_rows) return n;                   \
            const char* src = table + (Py_ssize_t)idx[n] * (Py_ssize_t)row_bytes;          \
            char* dst = out + n * (Py_ssize_t)row_bytes;                                   \
            size_t off = 0;                                                                \
            for (; off + 128 <= row_bytes; off += 128) {                                   \
                __m256i a0 = _mm256_loadu_si256((const __m256i*)(src + off));              \
                __m256i a1 = _mm256_loadu_si256((const __m256i*)(src + off + 32));         \
                __m256i a2 = _mm256_loadu_si256((const __m256i*)(src + off + 64));         \
                __m256i a3 = _mm256_loadu_si256((const __m256i*)(src + off + 96));         \
                _mm256_storeu_si256((__m256i*)(dst + off), a0);                            \
                _mm256_storeu_si256((__m256i*)(dst + off + 32), a1);                       \
                _mm256_storeu_si256((__m256i*)(dst + off + 64), a2);                       \
                _mm256_storeu_si256((__m256i*)(dst + off + 96), a3);                       \
            }                                                                              \
            for (; off + 32 <= row_bytes; off += 32)                                       \
                _mm256_storeu_si256((__m256i*)(dst + off),                                 \
                                    _mm256_loadu_si256((const __m256i*)(src + off)));      \
            if (off < row_bytes)                                                           \
                _mm256_storeu_si256((__m256i*)(dst + row_bytes - 32),                      \
                                    _mm256_loadu_si256((const __m256i*)(src + row_bytes - 32))); \
        }                                                                                  \
        return -1;                                                                         \
    }
    FASTSEQ_GATHER_AVX(fastseq_gather_avx_i32, int32_t)
    FASTSEQ_GATHER_AVX(fastseq_gather_avx_i64, int64_t)
    static int fastseq_gather_avx_ok(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx");
    }
    #else
    static Py_ssize_t fastseq_gather_avx_i32(const char* table, const int32_t* idx, char* out,
                                             Py_ssize_t n_idx, size_t row_bytes,
                                             Py_ssize_t n_rows) { return -1; }
    static Py_ssize_t fastseq_gather_avx_i64(const char* table, const int64_t* idx, char* out,
                                             Py_ssize_t n_idx, size_t row_bytes,
                                             Py_ssize_t n_rows) { return -1; }
    static int fastseq_gather_avx_ok(void) { return 0; }
    #endif

    /* Set in a child made by fork(): libgomp's thread pool does not survive a fork (the
       child's first parallel region would wait forever for the parent's workers), so the
       child runs every loop serially. pthread_atfork catches every fork of the process,
       os.fork() and multiprocessing's among them. */
    #include <pthread.h>
    static int fastseq_forked_child = 0;
    static void fastseq_mark_forked_child(void) { fastseq_forked_child = 1; }
    static int fastseq_register_atfork(void) {
        return pthread_atfork(NULL, NULL, fastseq_mark_forked_child);
    }
    """
    int FASTSEQ_HAVE_OPENMP
    int fastseq_forked_child
    int fastseq_register_atfork() nogil
    void fastseq_prefetch_row(const void* row, size_t nbytes) noexcept nogil
    void fastseq_prefetch_write(const void* p) noexcept nogil
    Py_ssize_t fastseq_gather_avx_i32(const char* table, const int32_t* idx, char* out,
                                      Py_ssize_t n_idx, size_t row_bytes,
                                      Py_ssize_t n_rows) noexcept nogil
    Py_ssize_t fastseq_gather_avx_i64(const char* table, const int64_t* idx, char* out,
                                      Py_ssize_t n_idx, size_t row_bytes,
                                      Py_ssize_t n_rows) noexcept nogil
    int fastseq_gather_avx_ok() noexcept nogil

ctypedef fused index_t:
    int32_t
    int64_t

ctypedef fused real_t:
    float
    double

# Below this many bytes of work a parallel region costs more than it saves.
cdef Py_ssize_t PARALLEL_MIN_BYTES = 1 << 16
# Gather from a table of at most this many bytes (4x a core's 1 MiB L2, an eighth of the
# shared L3 on the development machine): its rows are in cache, the copy runs at one
# core's store rate, and the gather stays on the calling thread. A parallel region saves little there when the machine is
# quiet (0.091 against 0.101 ms of np.take at V=5000 D=32 B=64 T=500) and costs ~10x when
# it is busy: a worker the scheduler holds back holds the region's end (1.1 ms against
# 0.11, load 4 on 2 cores, measured). Larger tables are latency-bound (random rows from
# L3 or memory): those gathers go parallel and prefetch.
cdef Py_ssize_t GATHER_PARALLEL_MIN_TABLE_BYTES = 4 << 20
# Gather from a large table: rows of at least this many bytes are prefetched this many
# rows ahead.
cdef size_t PREFETCH_MIN_ROW_BYTES = 128
cdef Py_ssize_t PREFETCH_ROWS_AHEAD = 4
# Backward: rows shorter than this are reduced by one thread (see _scatter_threads_for).
cdef Py_ssize_t SCATTER_PARALLEL_MIN_ROW_BYTES = 512
# Gather: rows shorter than this are copied by an inlined loop rather than memcpy (rows of
# 32 bytes or more from a cache-resident table take the AVX loop where the CPU has AVX).
cdef size_t SHORT_ROW_BYTES = 64
# Dense backward: destination rows are prefetched this many positions ahead.
cdef Py_ssize_t DST_PREFETCH_AHEAD = 8

# The output of a gather has one dimension more than its indices: room for NumPy's most
# (64 on NumPy 2; cnp.NPY_MAXDIMS is the runtime's) plus that one.
cdef enum:
    SHAPE_CAPACITY = 65

cdef int _gather_avx = fastseq_gather_avx_ok()

cdef int _num_threads = 1
try:
    _num_threads = max(1, len(os.sched_getaffinity(0)))
except AttributeError:
    _num_threads = max(1, os.cpu_count() or 1)

if fastseq_register_atfork() != 0:
    raise ImportError("fastseq._kernels.embedding: pthread_atfork failed; a child made by "
                      "fork() could hang in its first parallel loop")


def openmp_enabled():
    """True when this module was compiled with OpenMP."""
    return bool(FASTSEQ_HAVE_OPENMP)


def in_forked_child():
    """True in a process made by fork() from one that had imported this module: its loops
    run serially there (libgomp cannot start parallel regions in a forked child), with
    bitwise the same results."""
    return bool(fastseq_forked_child)


def set_num_threads(int n):
    """Threads for the parallel loops of this module (called by fastseq.set_num_threads)."""
    global _num_threads
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _num_threads = n


def get_num_threads():
    return _num_threads


cdef inline int _scatter_threads_for(Py_ssize_t n_idx, Py_ssize_t row_bytes) noexcept nogil:
    # Owner-computes threads each stream the whole gradient through their caches (the
    # hardware prefetcher pulls the rows other threads own too), so only rows of many cache
    # lines gain from a second thread (measured: 1 thread faster up to 512-byte rows).
    if row_bytes < SCATTER_PARALLEL_MIN_ROW_BYTES:
        return 1
    return _threads_for(n_idx * row_bytes)


cdef inline int _threads_for(Py_ssize_t work_bytes) noexcept nogil:
    # 1 means no parallel region at all (the callers run their loop on this thread)
    if FASTSEQ_HAVE_OPENMP and work_bytes >= PARALLEL_MIN_BYTES and not fastseq_forked_child:
        return _num_threads
    return 1


# ---------------------------------------------------------------------------------------
# index check
# ---------------------------------------------------------------------------------------

cdef Py_ssize_t _first_out_of_range(const index_t* idx, Py_ssize_t n_idx,
                                    int64_t low, int64_t high) noexcept nogil:
    # idx: (N,) -> position of the first index outside [low, high), or -1
    cdef Py_ssize_t n
    if n_idx == 0:
        return -1
    # A min/max reduction first (vectorizes: ~4x faster than testing each index against
    # both bounds); the position search runs only on failure.
    cdef index_t v, smallest = idx[0], largest = idx[0]
    for n in range(n_idx):
        v = idx[n]
        smallest = v if v < smallest else smallest
        largest = v if v > largest else largest
    if smallest >= low and largest < high:
        return -1
    for n in range(n_idx):
        if idx[n] < low or idx[n] >= high:
            return n
    return -1


def first_out_of_range(cnp.ndarray indices, int64_t low, int64_t high):
    """Position (in C order) of the first index of the C-contiguous int32/int64 array
    ``indices`` outside [low, high), or -1 when all are inside."""
    cdef Py_ssize_t n_idx = cnp.PyArray_SIZE(indices)
    cdef Py_ssize_t pos
    cdef void* p = cnp.PyArray_DATA(indices)
    with nogil:
        if cnp.PyArray_TYPE(indices) == cnp.NPY_INT32:
            pos = _first_out_of_range(<const int32_t*>p, n_idx, low, high)
        else:
            pos = _first_out_of_range(<const int64_t*>p, n_idx, low, high)
    return pos


# ---------------------------------------------------------------------------------------
# forward: gather
# ---------------------------------------------------------------------------------------

cdef inline void _copy_row(real_t* dst, const real_t* src, Py_ssize_t dim,
                           size_t row_bytes) noexcept nogil:
    # Short rows: an inlined loop the compiler vectorizes beats a call into libc's memcpy.
    cdef Py_ssize_t d
    if row_bytes < SHORT_ROW_BYTES:
        for d in range(dim):
            dst[d] = src[d]
    else:
        memcpy(dst, src, row_bytes)


cdef inline void _gather_position(const real_t* weights, const index_t* idx, real_t* out,
                                  Py_ssize_t n, Py_ssize_t n_idx, Py_ssize_t dim,
                                  size_t row_bytes, Py_ssize_t ahead) noexcept nogil:
    # out[n] = weights[idx[n]], asking for the row ``ahead`` positions on (0: none)
    if ahead and n + ahead < n_idx:
        fastseq_prefetch_row(weights + idx[n + ahead] * dim, row_bytes)
    _copy_row(out + n * dim, weights + idx[n] * dim, dim, row_bytes)


cdef Py_ssize_t _gather(const real_t* weights, const index_t* idx, real_t* out,
                        Py_ssize_t n_idx, Py_ssize_t dim, Py_ssize_t n_rows,
                        bint checked) noexcept nogil:
    # weights: (V, D), idx: (N,) -> out: (N, D);  out[n] = weights[idx[n]]. Returns the
    # position of the first index outside [0, V), or -1; out is partly written then (the
    # AVX path checks each row as it goes): callers that promise an unwritten out check
    # first and pass checked.
    cdef Py_ssize_t n, bad
    cdef size_t row_bytes = dim * sizeof(real_t)
    cdef bint cached = n_rows * <Py_ssize_t>row_bytes <= GATHER_PARALLEL_MIN_TABLE_BYTES
    if cached and _gather_avx and row_bytes >= 32:
        if index_t is int32_t:
            return fastseq_gather_avx_i32(<const char*>weights, idx, <char*>out, n_idx,
                                          row_bytes, n_rows)
        else:
            return fastseq_gather_avx_i64(<const char*>weights, idx, <char*>out, n_idx,
                                          row_bytes, n_rows)
    if not checked:
        bad = _first_out_of_range(idx, n_idx, 0, n_rows)
        if bad >= 0:
            return bad
    cdef int nthreads = 1 if cached else _threads_for(n_idx * <Py_ssize_t>row_bytes)
    cdef Py_ssize_t ahead = (PREFETCH_ROWS_AHEAD
                             if not cached and row_bytes >= PREFETCH_MIN_ROW_BYTES else 0)
    if nthreads == 1:  # no parallel region: small gathers are dominated by its start-up
        for n in range(n_idx):
            _gather_position(weights, idx, out, n, n_idx, dim, row_bytes, ahead)
    else:
        for n in prange(n_idx, num_threads=nthreads, schedule="static"):
            _gather_position(weights, idx, out, n, n_idx, dim, row_bytes, ahead)
    return -1


cdef Py_ssize_t _gather_arrays(cnp.ndarray weights, cnp.ndarray indices, cnp.ndarray out,
                               bint out_unwritten_on_error):
    # gather() below; with out_unwritten_on_error every index is checked before any copy
    cdef Py_ssize_t n_idx = cnp.PyArray_SIZE(indices)
    cdef int64_t num_rows = cnp.PyArray_DIM(weights, 0)
    cdef Py_ssize_t dim = cnp.PyArray_DIM(weights, 1)
    cdef void* w = cnp.PyArray_DATA(weights)
    cdef void* i = cnp.PyArray_DATA(indices)
    cdef void* o = cnp.PyArray_DATA(out)
    cdef int is_f32 = cnp.PyArray_TYPE(weights) == cnp.NPY_FLOAT32
    cdef int is_i32 = cnp.PyArray_TYPE(indices) == cnp.NPY_INT32
    cdef Py_ssize_t bad = -1
    with nogil:
        if out_unwritten_on_error:
            if is_i32:
                bad = _first_out_of_range(<const int32_t*>i, n_idx, 0, num_rows)
            else:
                bad = _first_out_of_range(<const int64_t*>i, n_idx, 0, num_rows)
        if bad < 0:
            if is_f32 and is_i32:
                bad = _gather(<const float*>w, <const int32_t*>i, <float*>o, n_idx, dim,
                              num_rows, out_unwritten_on_error)
            elif is_f32:
                bad = _gather(<const float*>w, <const int64_t*>i, <float*>o, n_idx, dim,
                              num_rows, out_unwritten_on_error)
            elif is_i32:
                bad = _gather(<const double*>w, <const int32_t*>i, <double*>o, n_idx, dim,
                              num_rows, out_unwritten_on_error)
            else:
                bad = _gather(<const double*>w, <const int64_t*>i, <double*>o, n_idx, dim,
                              num_rows, out_unwritten_on_error)
    return bad


def gather(cnp.ndarray weights, cnp.ndarray indices, cnp.ndarray out):
    """out[n, :] = weights[indices[n], :], after checking every index is in [0, V).

    weights: (V, D) float32/float64 C-contiguous; indices: C-contiguous int32/int64 with N
    elements; out: (N, D) C-contiguous, the dtype of weights. Returns -1 when done, or the
    position (in C order) of the first index outside [0, V), with ``out`` left unwritten
    (one call for the check and the copy: small gathers are dominated by call overhead)."""
    return _gather_arrays(weights, indices, out, True)


cdef inline bint _is_c_array(object a) noexcept:
    # C-contiguous, aligned and in native byte order ('>i4' also reports NPY_INT32)
    return (cnp.PyArray_Check(a) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and cnp.PyArray_ISALIGNED(<cnp.ndarray>a)
            and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>a))


def gather_new(object weights, object indices):
    """The common case of the public forward in one C call: returns a new
    ``indices.shape + (D,)`` array, or None when the inputs need the checked Python path
    (conversion, a bad index or a bad argument, which that path reports).

    Taken only when weights is a 2-D C-contiguous float32/float64 ndarray and indices a
    C-contiguous int32/int64 ndarray: a cache-resident gather of a few hundred rows costs
    about as much as the Python checks around it."""
    if not (_is_c_array(weights) and _is_c_array(indices)):
        return None
    cdef cnp.ndarray w = <cnp.ndarray>weights
    cdef cnp.ndarray idx = <cnp.ndarray>indices
    cdef int wtype = cnp.PyArray_TYPE(w)
    cdef int itype = cnp.PyArray_TYPE(idx)
    if (cnp.PyArray_NDIM(w) != 2 or (wtype != cnp.NPY_FLOAT32 and wtype != cnp.NPY_FLOAT64)
            or (itype != cnp.NPY_INT32 and itype != cnp.NPY_INT64)):
        return None
    cdef int ndim = cnp.PyArray_NDIM(idx)
    if ndim + 1 > SHAPE_CAPACITY or ndim + 1 > cnp.NPY_MAXDIMS:
        return None  # the output cannot exist: the checked path says so
    cdef cnp.npy_intp shape[SHAPE_CAPACITY]
    cdef int k
    for k in range(ndim):
        shape[k] = cnp.PyArray_DIM(idx, k)
    shape[ndim] = cnp.PyArray_DIM(w, 1)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(ndim + 1, shape, wtype, 0)
    # a new array, dropped on a bad index: the indices are checked as the rows are copied
    if _gather_arrays(w, idx, out, False) >= 0:
        return None
    return out


# ---------------------------------------------------------------------------------------
# backward: each row is summed by one owning thread, in ascending position order
# ---------------------------------------------------------------------------------------
#
# Every thread scans all N indices (cheap: 4-8 bytes each) and accumulates only the
# positions whose output row it owns. A row is therefore reduced by exactly one thread,
# in position order, starting from zero: ((0 + g[p0]) + g[p1]) + ... -- the same order as
# np.add.at, so the result is bitwise equal to it and to itself for any thread count, with
# no atomics, no sort and no extra pass over the gradient. Rows are dealt to threads in
# interleaved blocks of 8, which keeps text-like (Zipf) row frequencies balanced.

cdef inline int64_t _owner_mask(int nthreads) noexcept nogil:
    # nthreads - 1 when nthreads is a power of two (the ownership test is then a mask, not
    # an integer division: ~25 cycles per position and thread, half the kernel's time), else -1
    return nthreads - 1 if (nthreads & (nthreads - 1)) == 0 else -1


cdef inline bint _owns(Py_ssize_t t, int64_t slot, int nthreads, int64_t owner_mask) noexcept nogil:
    # slots are dealt to threads in interleaved blocks of 8
    if owner_mask >= 0:
        return ((slot >> 3) & owner_mask) == t
    return (slot >> 3) % nthreads == t


cdef inline void _accumulate_owned_rows(Py_ssize_t t, const real_t* grad, Py_ssize_t dim,
                                       const index_t* idx, Py_ssize_t n_idx,
                                       const int64_t* slot_of_row, int64_t skip_row,
                                       real_t* out, unsigned char* written, int nthreads,
                                       int64_t owner_mask) noexcept nogil:
    # Thread t's share of _accumulate_rows: the positions whose slot it owns, in order.
    cdef Py_ssize_t n, d
    cdef int64_t row, slot, ahead_row
    # g + 0 is not folded into g without -ffast-math (which this module never uses)
    cdef real_t zero = 0
    cdef real_t* dst
    cdef const real_t* src
    for n in range(n_idx):
        row = idx[n]
        if row == skip_row:
            continue
        slot = slot_of_row[row] if slot_of_row != NULL else row
        if not _owns(t, slot, nthreads, owner_mask):
            continue
        dst = out + slot * dim
        src = grad + n * dim
        if slot_of_row == NULL and n + DST_PREFETCH_AHEAD < n_idx:
            # the destination row a few positions on: random rows of an output larger
            # than L2 are latency-bound (20% faster at D=32). Only rows this thread owns:
            # prefetching another's would bounce its cache lines.
            ahead_row = idx[n + DST_PREFETCH_AHEAD]
            if _owns(t, ahead_row, nthreads, owner_mask):
                fastseq_prefetch_write(out + ahead_row * dim)
        if written != NULL and not written[slot]:
            written[slot] = 1
            for d in range(dim):  # 0 + g, as np.add.at computes it (-0.0 becomes +0.0)
                dst[d] = src[d] + zero
        else:
            for d in range(dim):
                dst[d] = dst[d] + src[d]


cdef void _accumulate_rows(const real_t* grad, Py_ssize_t dim, const index_t* idx,
                           Py_ssize_t n_idx, const int64_t* slot_of_row, int64_t skip_row,
                           real_t* out, unsigned char* written, int nthreads) noexcept nogil:
    # grad: (N, D), idx: (N,) -> out: (S, D); position n adds into slot
    # s = slot_of_row[idx[n]] (or s = idx[n] when slot_of_row is NULL). out is zero on
    # entry when written is NULL; otherwise out is uninitialized, written: (S,) zero on
    # entry, and a slot's first position stores 0 + g instead of adding (no memset of out).
    cdef Py_ssize_t t
    cdef int64_t owner_mask = _owner_mask(nthreads)
    if nthreads == 1:  # no parallel region (its start-up, and none in a forked child)
        _accumulate_owned_rows(0, grad, dim, idx, n_idx, slot_of_row, skip_row, out, written,
                               1, owner_mask)
        return
    for t in prange(nthreads, num_threads=nthreads, schedule="static", chunksize=1):
        _accumulate_owned_rows(t, grad, dim, idx, n_idx, slot_of_row, skip_row, out, written,
                               nthreads, owner_mask)


cdef Py_ssize_t _assign_slots(const index_t* idx, Py_ssize_t n_idx, int64_t* slot_of_row,
                              Py_ssize_t n_rows, int64_t skip_row, int64_t* rows) noexcept nogil:
    # idx: (N,) in [0, n_rows) -> slot_of_row: (n_rows,) zero on entry, becomes the rank of
    # each present row among the present rows; rows: (>= U,) the present rows ascending.
    # Returns U. The skip row is left out.
    cdef Py_ssize_t n, r, n_unique = 0
    for n in range(n_idx):
        slot_of_row[idx[n]] = 1
    if 0 <= skip_row < n_rows:
        slot_of_row[skip_row] = 0
    for r in range(n_rows):
        if slot_of_row[r]:
            slot_of_row[r] = n_unique
            rows[n_unique] = r
            n_unique += 1
    return n_unique


def scatter_add_dense(cnp.ndarray indices, cnp.ndarray grad, Py_ssize_t num_rows,
                      int64_t skip_row=-1):
    """Dense embedding gradient: out[r] = sum of grad[n] over n with indices[n] == r.

    indices: C-contiguous int32/int64 (N,) in [0, num_rows); grad: (N, D) C-contiguous
    float32/float64 -> out: (num_rows, D). Row ``skip_row`` (the padding row) stays zero."""
    cdef Py_ssize_t n_idx = cnp.PyArray_SIZE(indices)
    cdef Py_ssize_t dim = cnp.PyArray_DIM(grad, 1)
    cdef cnp.ndarray out = np.zeros((num_rows, dim), dtype=grad.dtype)
    cdef void* i = cnp.PyArray_DATA(indices)
    cdef void* g = cnp.PyArray_DATA(grad)
    cdef void* o = cnp.PyArray_DATA(out)
    cdef int is_f32 = cnp.PyArray_TYPE(grad) == cnp.NPY_FLOAT32
    cdef int is_i32 = cnp.PyArray_TYPE(indices) == cnp.NPY_INT32
    cdef int nthreads = _scatter_threads_for(n_idx, dim * cnp.PyArray_ITEMSIZE(grad))
    with nogil:
        if is_f32 and is_i32:
            _accumulate_rows(<const float*>g, dim, <const int32_t*>i, n_idx, NULL, skip_row, <float*>o, NULL, nthreads)
        elif is_f32:
            _accumulate_rows(<const float*>g, dim, <const int64_t*>i, n_idx, NULL, skip_row, <float*>o, NULL, nthreads)
        elif is_i32:
            _accumulate_rows(<const double*>g, dim, <const int32_t*>i, n_idx, NULL, skip_row, <double*>o, NULL, nthreads)
        else:
            _accumulate_rows(<const double*>g, dim, <const int64_t*>i, n_idx, NULL, skip_row, <double*>o, NULL, nthreads)
    return out


def scatter_add_sparse(cnp.ndarray indices, cnp.ndarray grad, Py_ssize_t num_rows,
                       int64_t skip_row=-1):
    """Row-sparse embedding gradient: (rows (U,) int64 ascending, values (U, D)).

    Same inputs as scatter_add_dense; ``num_rows`` bounds the indices (max index + 1 is
    enough) and sizes the O(num_rows) row table, so keep it near the vocabulary size."""
    cdef Py_ssize_t n_idx = cnp.PyArray_SIZE(indices)
    cdef Py_ssize_t dim = cnp.PyArray_DIM(grad, 1)
    cdef void* i = cnp.PyArray_DATA(indices)
    cdef void* g = cnp.PyArray_DATA(grad)
    cdef int is_f32 = cnp.PyArray_TYPE(grad) == cnp.NPY_FLOAT32
    cdef int is_i32 = cnp.PyArray_TYPE(indices) == cnp.NPY_INT32
    cdef int nthreads = _scatter_threads_for(n_idx, dim * cnp.PyArray_ITEMSIZE(grad))
    cdef Py_ssize_t n_unique
    cdef cnp.ndarray slot_of_row = np.zeros(num_rows, dtype=np.int64)
    cdef cnp.ndarray rows = np.empty(min(num_rows, n_idx), dtype=np.int64)
    cdef int64_t* slots = <int64_t*>cnp.PyArray_DATA(slot_of_row)
    cdef int64_t* r = <int64_t*>cnp.PyArray_DATA(rows)
    with nogil:
        if is_i32:
            n_unique = _assign_slots(<const int32_t*>i, n_idx, slots, num_rows, skip_row, r)
        else:
            n_unique = _assign_slots(<const int64_t*>i, n_idx, slots, num_rows, skip_row, r)
    # every slot has a position, so every row of values is written: no memset needed
    cdef cnp.ndarray values = np.empty((n_unique, dim), dtype=grad.dtype)
    cdef cnp.ndarray written = np.zeros(n_unique, dtype=np.uint8)
    cdef void* o = cnp.PyArray_DATA(values)
    cdef unsigned char* w = <unsigned char*>cnp.PyArray_DATA(written)
    with nogil:
        if is_f32 and is_i32:
            _accumulate_rows(<const float*>g, dim, <const int32_t*>i, n_idx, slots, skip_row, <float*>o, w, nthreads)
        elif is_f32:
            _accumulate_rows(<const float*>g, dim, <const int64_t*>i, n_idx, slots, skip_row, <float*>o, w, nthreads)
        elif is_i32:
            _accumulate_rows(<const double*>g, dim, <const int32_t*>i, n_idx, slots, skip_row, <double*>o, w, nthreads)
        else:
            _accumulate_rows(<const double*>g, dim, <const int64_t*>i, n_idx, slots, skip_row, <double*>o, w, nthreads)
    return rows[:n_unique].copy(), values
