"""GEMM on device arrays: ``c = alpha * a @ b + beta * c``.

Backends, picked once per process (``gemm_backend()`` says which one runs):

- ``"cupy"``: cuBLAS through CuPy (``cupy.matmul`` on zero-copy views of the numba arrays,
  which CuPy reads through ``__cuda_array_interface__``);
- ``"nvmath"``: cuBLASLt through nvmath-python, the operands wrapped as CuPy arrays;
- ``"torch"``: cuBLAS through PyTorch (``torch.as_tensor`` views), when it has CUDA;
- ``"numba"``: our own tiled shared-memory numba.cuda kernel (register-blocked: each thread
  computes a TM x TN tile of c; deterministic split-K when few tiles meet a long K). Always
  there; the only one under the CUDA simulator.

The environment variable ``FASTSEQ_CUDA_GEMM`` (``auto``, ``cupy``, ``nvmath``, ``torch``,
``numba``)
forces a choice. A cuBLAS backend is checked once against the numba kernel on a small
product before it is used; if it fails, fastseq warns and stays on ``numba``.

All are deterministic run to run (cuBLAS on one GPU model and toolkit; the numba
kernel sums over k in order). ``a`` and ``b`` may be strided views, e.g. ``x.T``.
"""
import os
import warnings

import numpy as np
from numba import cuda, float32, float64

from .elementwise import SIMULATOR, as_device, fill, launch_1d, scalar, scale_inplace

__all__ = ["gemm", "gemm_backend", "set_gemm_backend"]

# Tile shapes: (BM, BN, BK, TM, TN). The simulator runs one Python thread per CUDA thread,
# so it gets 2 x 2 = 4 threads a block on the same code.
_TILES = (8, 8, 4, 4, 4) if SIMULATOR else (64, 64, 16, 4, 4)
_KERNELS = {}


def _make_gemm_kernel(dtype, bm, bn, bk, tm, tn):
    nb_type = float32 if dtype == np.dtype(np.float32) else float64
    nty, ntx = bm // tm, bn // tn  # thread grid inside a block
    n_threads = nty * ntx
    # one padding column: the staging writes along k hit distinct shared-memory banks
    # (computed here: shared array shapes must be compile-time constants)
    bm_padded, bn_padded = bm + 1, bn + 1

    @cuda.jit
    def gemm_kernel(a, b, c, alpha, beta, a_rows_contiguous, b_rows_contiguous, k_chunk):
        # a: (M, K), b: (K, N), c: (S, M, N), any strides -> c[z] = alpha * a[:, Kz] @ b[Kz]
        # + beta * c[z] for the K slice Kz = [z*k_chunk, (z+1)*k_chunk) of block layer z
        # (S = 1: the plain product; S > 1: split-K partial products, summed by the caller)
        # Block (bx, by) computes c[by*BM:(by+1)*BM, bx*BN:(bx+1)*BN]; thread (ty, tx) the
        # elements (ty + i*NTY, tx + j*NTX), so neighbouring threads write neighbouring
        # columns (coalesced).
        sa = cuda.shared.array((bk, bm_padded), dtype=nb_type)
        sb = cuda.shared.array((bk, bn_padded), dtype=nb_type)
        acc = cuda.local.array((tm, tn), dtype=nb_type)
        ra = cuda.local.array(tm, dtype=nb_type)
        rb = cuda.local.array(tn, dtype=nb_type)
        m_total = a.shape[0]
        n_total = b.shape[1]
        layer = cuda.blockIdx.z
        k_begin = layer * k_chunk
        k_total = min(a.shape[1], k_begin + k_chunk)
        tid = cuda.threadIdx.x
        ty = tid // ntx
        tx = tid - ty * ntx
        row0 = cuda.blockIdx.y * bm
        col0 = cuda.blockIdx.x * bn
        zero = alpha - alpha
        for i in range(tm):
            for j in range(tn):
                acc[i, j] = zero
        for k0 in range(k_begin, k_total, bk):
            # stage a (BM x BK) and b (BK x BN) tiles; zeros outside the matrices
            # consecutive threads read consecutive addresses of a (its unit-stride axis)
            for e in range(tid, bm * bk, n_threads):
                if a_rows_contiguous:
                    mm = e // bk
                    kk = e - mm * bk
                else:
                    kk = e // bm
                    mm = e - kk * bm
                r = row0 + mm
                k = k0 + kk
                sa[kk, mm] = a[r, k] if (r < m_total and k < k_total) else zero
            for e in range(tid, bk * bn, n_threads):
                if b_rows_contiguous:
                    kk = e // bn
                    nn = e - kk * bn
                else:
                    nn = e // bk
                    kk = e - nn * bk
                k = k0 + kk
                col = col0 + nn
                sb[kk, nn] = b[k, col] if (k < k_total and col < n_total) else zero
            cuda.syncthreads()
            for kk in range(bk):
                for i in range(tm):
                    ra[i] = sa[kk, ty + i * nty]
                for j in range(tn):
                    rb[j] = sb[kk, tx + j * ntx]
                for i in range(tm):
                    for j in range(tn):
                        acc[i, j] += ra[i] * rb[j]
            cuda.syncthreads()
        for i in range(tm):
            r = row0 + ty + i * nty
            if r < m_total:
                for j in range(tn):
                    col = col0 + tx + j * ntx
                    if col < n_total:
                        if beta == zero:  # never read c: it may be uninitialised (NaN)
                            c[layer, r, col] = alpha * acc[i, j]
                        else:
                            c[layer, r, col] = alpha * acc[i, j] + beta * c[layer, r, col]

    return gemm_kernel


# Split-K: with few output tiles and a long K (the LSTM's weight gradients: (D, T*B) @
# (T*B, 4H)) the blocks cannot fill the GPU, so K is cut into S slices, each block layer z
# writes its partial product, and a second kernel sums the S partials in order (fixed by the
# shapes alone: deterministic).
_SPLIT_TARGET_BLOCKS = 4 if SIMULATOR else 264  # about two blocks per SM on an H100
_SPLIT_MIN_K = 8 if SIMULATOR else 256
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y (and z)


@cuda.jit(cache=True)
def _sum_partials_kernel(partial, c, alpha, beta):
    # partial: (S, M, N) -> c: (M, N) = alpha * sum_s partial[s] + beta * c
    n_layers, m_total, n_total = partial.shape
    zero = alpha - alpha
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, m_total * n_total, step):
        r = i // n_total
        col = i - r * n_total
        acc = partial[0, r, col]
        for layer in range(1, n_layers):
            acc += partial[layer, r, col]
        if beta == zero:
            c[r, col] = alpha * acc
        else:
            c[r, col] = alpha * acc + beta * c[r, col]


def _split_count(tiles, k_total):
    if tiles >= _SPLIT_TARGET_BLOCKS or k_total < 2 * _SPLIT_MIN_K:
        return 1
    return int(min(k_total // _SPLIT_MIN_K, -(-_SPLIT_TARGET_BLOCKS // tiles)))


def _gemm_numba(a, b, c, alpha, beta):
    dtype = np.dtype(c.dtype)
    key = (dtype,) + _TILES
    if key not in _KERNELS:
        _KERNELS[key] = _make_gemm_kernel(dtype, *_TILES)
    bm, bn, bk, tm, tn = _TILES
    m_total, n_total = c.shape
    k_total = a.shape[1]
    tiles = ((n_total + bn - 1) // bn) * ((m_total + bm - 1) // bm)
    layers = _split_count(tiles, k_total)
    k_chunk = -(-k_total // layers)
    k_chunk = -(-k_chunk // bk) * bk  # whole k tiles per layer
    layers = -(-k_total // k_chunk)
    grid = ((n_total + bn - 1) // bn, (m_total + bm - 1) // bm, layers)
    item = dtype.itemsize
    a_rows_contiguous = a.shape[1] <= 1 or a.strides[1] == item
    b_rows_contiguous = b.shape[1] <= 1 or b.strides[1] == item
    one, zero = scalar(1, dtype), scalar(0, dtype)
    threads = (bm // tm) * (bn // tn)
    if grid[1] > _MAX_GRID_Y:  # more row tiles than one launch may have: row bands
        band = _MAX_GRID_Y * bm
        for r0 in range(0, m_total, band):
            _gemm_numba(a[r0:r0 + band], b, c[r0:r0 + band], alpha, beta)
        return
    if layers == 1:
        _KERNELS[key][grid, threads](a, b, c.reshape(1, m_total, n_total),
                                     scalar(alpha, dtype), scalar(beta, dtype),
                                     a_rows_contiguous, b_rows_contiguous, k_chunk)
        return
    partial = cuda.device_array((layers, m_total, n_total), dtype=dtype)
    _KERNELS[key][grid, threads](a, b, partial, one, zero, a_rows_contiguous,
                                 b_rows_contiguous, k_chunk)
    blocks, threads = launch_1d(m_total * n_total)
    _sum_partials_kernel[blocks, threads](partial, c, scalar(alpha, dtype), scalar(beta, dtype))


def _gemm_cupy(a, b, c, alpha, beta):
    import cupy

    ca, cb, cc = cupy.asarray(a), cupy.asarray(b), cupy.asarray(c)
    if alpha == 1 and beta == 0:
        cupy.matmul(ca, cb, out=cc)
        return
    product = cupy.matmul(ca, cb)
    if beta == 0:
        cupy.multiply(product, alpha, out=cc)
    else:
        cc *= beta
        cc += alpha * product


def _gemm_nvmath(a, b, c, alpha, beta):
    import cupy
    from nvmath.linalg.advanced import matmul

    ca, cb, cc = cupy.asarray(a), cupy.asarray(b), cupy.asarray(c)
    if beta == 0:
        result = matmul(ca, cb, alpha=alpha)
    else:
        result = matmul(ca, cb, c=cc, alpha=alpha, beta=beta)
    cc[...] = result


def _gemm_torch(a, b, c, alpha, beta):
    import torch

    ta, tb, tc = (torch.as_tensor(x, device="cuda") for x in (a, b, c))  # zero-copy views
    if beta == 0:
        torch.matmul(ta, tb, out=tc)
        if alpha != 1:
            tc.mul_(alpha)
    else:
        tc.addmm_(ta, tb, beta=beta, alpha=alpha)


_BACKENDS = {"numba": _gemm_numba, "cupy": _gemm_cupy, "nvmath": _gemm_nvmath,
             "torch": _gemm_torch}
_state = {"name": None}


def _self_check(name):
    """Run backend ``name`` on a small product and compare it with the numba kernel."""
    rng = np.random.default_rng(0)
    a = cuda.to_device(rng.standard_normal((5, 7)).astype(np.float32))
    b = cuda.to_device(rng.standard_normal((7, 3)).astype(np.float32))
    c = cuda.device_array((5, 3), dtype=np.float32)
    ref = cuda.device_array((5, 3), dtype=np.float32)
    _BACKENDS[name](a, b, c, 1.0, 0.0)
    _gemm_numba(a, b, ref, 1.0, 0.0)
    return np.allclose(c.copy_to_host(), ref.copy_to_host(), rtol=1e-4, atol=1e-5)


def _importable(name):
    try:
        if name == "cupy":
            import cupy  # noqa: F401
        elif name == "nvmath":
            import cupy  # noqa: F401
            import nvmath.linalg.advanced  # noqa: F401
        elif name == "torch":
            import torch

            return torch.cuda.is_available()
        return True
    except Exception:  # ImportError, or a CUDA library missing at import
        return False


def set_gemm_backend(name="auto"):
    """Pick the GEMM backend: "auto" (cupy, nvmath, torch, then numba), or one by name.
    Returns the name in use. Under the simulator only "numba" exists."""
    if name not in ("auto",) + tuple(_BACKENDS):
        raise ValueError("GEMM backend must be 'auto', 'cupy', 'nvmath', 'torch' or 'numba', "
                         f"got {name!r}")
    candidates = ["cupy", "nvmath", "torch"] if name == "auto" else [name]
    chosen = "numba"
    for candidate in candidates:
        if candidate == "numba" or SIMULATOR:
            break
        if not _importable(candidate):
            if name != "auto":
                warnings.warn(f"GEMM backend {candidate!r} is not installed; using numba",
                              RuntimeWarning, stacklevel=2)
            continue
        try:
            ok = _self_check(candidate)
        except Exception as exc:  # a broken install must not break training
            ok = False
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "its result differs from the numba kernel's"
        if ok:
            chosen = candidate
            break
        warnings.warn(f"GEMM backend {candidate!r} failed its check ({reason}); using numba",
                      RuntimeWarning, stacklevel=2)
    _state["name"] = chosen
    return chosen


def gemm_backend():
    """The name of the GEMM backend in use: "cupy", "nvmath", "torch" or "numba"."""
    if _state["name"] is None:
        set_gemm_backend(os.environ.get("FASTSEQ_CUDA_GEMM", "auto"))
    return _state["name"]


def gemm(a, b, out=None, alpha=1.0, beta=0.0):
    """``out = alpha * a @ b + beta * out`` on the device.

    # a: (M, K), b: (K, N), out: (M, N) -> out

    a, b: float32/float64 device arrays (NumPy arrays are copied over), any strides (pass
    ``x.T`` for a transposed operand); out: a C-contiguous device array of the same dtype,
    allocated when None (then beta must be 0)."""
    a = as_device(a, "a", ndim=2)
    b = as_device(b, "b", ndim=2, dtype=a.dtype)
    m_total, k_total = a.shape
    if b.shape[0] != k_total:
        raise ValueError(f"gemm: a is {tuple(a.shape)} and b is {tuple(b.shape)}; "
                         "a.shape[1] must equal b.shape[0]")
    n_total = b.shape[1]
    if out is None:
        if beta != 0:
            raise ValueError("gemm: beta != 0 needs an out array to accumulate into")
        out = cuda.device_array((m_total, n_total), dtype=a.dtype)
    elif tuple(out.shape) != (m_total, n_total) or out.dtype != a.dtype:
        raise ValueError(f"gemm: out must be {(m_total, n_total)} {a.dtype}, "
                         f"got {tuple(out.shape)} {out.dtype}")
    if m_total == 0 or n_total == 0:
        return out
    if k_total == 0:  # an empty sum: alpha * 0 + beta * out
        return fill(out, 0) if beta == 0 else scale_inplace(out, beta)
    _BACKENDS[gemm_backend()](a, b, out, alpha, beta)
    return out
