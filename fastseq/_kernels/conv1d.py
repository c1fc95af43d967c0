"""Conv1D and 1-D pooling kernels (Numba + the BLAS through NumPy), channels-last.

Pure functions on arrays; the public wrappers in :mod:`fastseq._api.conv1d` check inputs,
work out the geometry and pick the path. Kernels here trust their inputs.

Two convolution paths, both deterministic (no atomics; every reduction runs in a fixed
order). The Numba kernels are serial on purpose: the work is GEMM-bound and the BLAS has the
cores, and a Numba (GNU OpenMP) parallel region next to OpenBLAS calls costs milliseconds
per switch on a 2-core machine (GOMP's workers spin-wait while OpenBLAS's need the cores).

* Winograd minimal filtering F(m, k) (stride 1, any dilation): the time axis is cut into
  tiles of m outputs; each tile's n = m + k - 1 inputs are transformed (``tile_transform``),
  multiplied by the transformed kernel with one batched GEMM of n (tiles, Cin) x (Cin, Cout)
  products, and transformed back (``tile_untransform``). The GEMMs do n / (m k) of the
  direct FLOPs (0.4-0.5 for k = 3, 5), and the conv is GEMM-bound, so this is where the
  speed comes from. The backward is the chain rule through the same tiles: grad_y's tiles
  are transformed once (by A, n x m) and feed both n (Cin, tiles) x (tiles, Cout) GEMMs for
  dkernel (reusing the forward's transformed x) and n (tiles, Cout) x (Cout, Cin) GEMMs
  whose products the transposed input transform overlap-adds into dx. Tiles go through in
  chunks that keep the transformed arrays in cache between the transform, GEMM and back.
* im2col (strides > 1, long kernels): ``im2col`` copies the windows into (B * Lout, k * Cin)
  rows, one GEMM; dx by ``col2im``, a gather (each dx element sums its own taps in order).

Both run over ranges of whole sequences, which the caller may hand to several threads (the
kernels release the GIL); each range's GEMMs are its own, and reductions over the batch
(dkernel, dbias) come back per range for the caller to add in range order.
"""
import math

import numpy as np
from numba import njit

# Let LLVM fuse a * b + c into FMAs (still the same bits on every run).
_FASTMATH = {"contract"}


# ----------------------------------------------------------------------------- Winograd
#
# Tiles are numbered r = (b * dilation + phase) * tiles_per_phase + q. With dilation d, the
# steps t = phase + d * u of one phase form an ordinary stride-1 correlation with the taps
# d apart; tile q of it holds u in [q * m, q * m + m) (outputs) and reads n inputs from there.


@njit(cache=True, nogil=True, boundscheck=False, fastmath=_FASTMATH)
def tile_transform(src, pad_left, dilation, tile_step, tiles_per_phase, tile0, count,
                   transform, out, out0):
    """out[p, out0 + r - tile0, :] = sum_i transform[p, i] * src[b, phase + d * (q * m + i)
    - pad_left, :] (zero where that step falls outside src), for the tiles r in
    [tile0, tile0 + count). Whole C-contiguous arrays come in (a slice would compile a
    strided variant that does not vectorise); the offsets pick the chunk.

    # src: (B, Ls, C), transform: (n, w) -> out: (n, tiles, C)"""
    n, width = transform.shape
    length = src.shape[1]
    channels = src.shape[2]
    tiles_per_seq = dilation * tiles_per_phase
    for local in range(count):
        r = tile0 + local
        row = out0 + local
        b = r // tiles_per_seq
        rest = r - b * tiles_per_seq
        phase = rest // tiles_per_phase
        q = rest - phase * tiles_per_phase
        first_step = phase + dilation * q * tile_step - pad_left
        for p in range(n):
            for c in range(channels):
                out[p, row, c] = 0
        for i in range(width):
            t = first_step + dilation * i
            if t >= 0 and t < length:
                for p in range(n):
                    coef = transform[p, i]
                    if coef != 0:
                        for c in range(channels):
                            out[p, row, c] += coef * src[b, t, c]


@njit(cache=True, nogil=True, boundscheck=False, fastmath=_FASTMATH)
def tile_untransform(products, transform, dilation, tiles_per_phase, tile0, count, bias, y):
    """y[b, phase + d * (q * m + i), :] = bias + sum_p transform[i, p] * products[p, r - tile0, :]
    for the tiles r in [tile0, tile0 + count), the steps inside y (bias: length 0 for none).

    # products: (n, chunk_tiles, C), transform: (m, n), bias: (C,) or (0,) -> y: (B, Lout, C)"""
    n = products.shape[0]
    channels = products.shape[2]
    m = transform.shape[0]
    out_length = y.shape[1]
    tiles_per_seq = dilation * tiles_per_phase
    has_bias = bias.shape[0] > 0
    for local in range(count):
        r = tile0 + local
        b = r // tiles_per_seq
        rest = r - b * tiles_per_seq
        phase = rest // tiles_per_phase
        q = rest - phase * tiles_per_phase
        for i in range(m):
            t = phase + dilation * (q * m + i)
            if t < out_length:
                if has_bias:
                    for c in range(channels):
                        y[b, t, c] = bias[c]
                else:
                    for c in range(channels):
                        y[b, t, c] = 0
                for p in range(n):
                    coef = transform[i, p]
                    if coef != 0:
                        for c in range(channels):
                            y[b, t, c] += coef * products[p, local, c]


@njit(cache=True, nogil=True, boundscheck=False, fastmath=_FASTMATH)
def tile_untransform_add(products, transform, pad_left, dilation, tile_step, tiles_per_phase,
                         tile0, count, dx):
    """The transpose of ``tile_transform``: dx[b, phase + d * (q * m + i) - pad_left, :] +=
    sum_p transform[p, i] * products[p, r - tile0, :] for the steps inside dx. Neighbouring
    tiles overlap by n - m steps; they add in tile order (serial: the same bits every run).

    # products: (n, chunk_tiles, C), transform: (n, n) -> dx: (B, L, C) (accumulated)"""
    n = products.shape[0]
    channels = products.shape[2]
    width = transform.shape[1]
    length = dx.shape[1]
    tiles_per_seq = dilation * tiles_per_phase
    for local in range(count):
        r = tile0 + local
        b = r // tiles_per_seq
        rest = r - b * tiles_per_seq
        phase = rest // tiles_per_phase
        q = rest - phase * tiles_per_phase
        first_step = phase + dilation * q * tile_step - pad_left
        for i in range(width):
            t = first_step + dilation * i
            if t >= 0 and t < length:
                for p in range(n):
                    coef = transform[p, i]
                    if coef != 0:
                        for c in range(channels):
                            dx[b, t, c] += coef * products[p, local, c]


def tile_counts(batch, out_length, m, dilation):
    """(tiles per phase, tiles in all): each of the d phases has ceil(out_length / d) steps."""
    steps_per_phase = -(-out_length // dilation)
    tiles_per_phase = -(-steps_per_phase // m)
    return tiles_per_phase, batch * dilation * tiles_per_phase


# x: (B, L, Cin), u: (n, Cin, Cout) = G @ kernel -> y: (B, Lout, Cout), v: (n, tiles, Cin)
def winograd_forward_tiles(x, u, a_t, b_t, pad_left, dilation, tiles_per_phase, tile_lo,
                           tile_hi, bias, v, y, x_limit):
    """y[b, t] = bias + sum_j x[b, t - pad_left + j * dilation] @ kernel[j] (zero outside x)
    for the steps of tiles [tile_lo, tile_hi), with ``u`` the kernel transformed by G (n, k);
    a_t: (m, n), b_t: (n, n). Also fills v[:, tile_lo:tile_hi], the tiles' transformed
    input, which the backward reuses. Ranges of whole sequences may run in parallel.

    Returns max |x| over the range's sequences (see :func:`max_abs`) and computes nothing
    when it is above ``x_limit`` (the caller then takes the exact path: see
    :func:`winograd_bounds`). The check reads the rows the transform reads next, on the
    task's own thread."""
    m, n = a_t.shape
    count = tile_hi - tile_lo
    tiles_per_seq = dilation * tiles_per_phase
    x_max = max_abs(x, tile_lo // tiles_per_seq, tile_hi // tiles_per_seq)
    if not x_max <= x_limit:
        return x_max
    products = np.empty((n, count, u.shape[2]), dtype=x.dtype)
    tile_transform(x, pad_left, dilation, m, tiles_per_phase, tile_lo, count, b_t, v, tile_lo)
    np.matmul(v[:, tile_lo:tile_hi], u, out=products)
    tile_untransform(products, a_t, dilation, tiles_per_phase, tile_lo, count, bias, y)
    return x_max


# v: (n, tiles, Cin), grad_y: (B, Lout, Cout), u: (n, Cin, Cout), g_t: (k, n)
#   -> dx: (B, L, Cin) (its sequences' rows), dkernel: (k, Cin, Cout), dbias: (Cout,)
def winograd_backward_tiles(v, grad_y, u, a, b_t, g_t, pad_left, dilation, tiles_per_phase,
                            tile_lo, tile_hi, dx, grad_limit=math.inf):
    """The backward of :func:`winograd_forward_tiles` for tiles [tile_lo, tile_hi) of whole
    sequences (so ranges never share a dx row), by the chain rule through the transforms.
    Per tile, with g = A @ grad_y_tile (a: (n, m), the forward's A):
      z[p] += v[p]^T g[p]   (this range's dkernel = G^T z),
      dx_tile += (B^T)^T (g[p] @ u[p]^T)   (overlap-added by ``tile_untransform_add``).
    grad_y is transformed once for both gradients. Writes this range's sequences' rows of dx
    (whole) and returns its (dkernel, dbias), which the caller sums over ranges in order;
    dbias is read off g's row 1 (the point 1: A's row of ones sums a tile).

    An overflow inside the transforms shows as an inf or NaN in the results (inf only ever
    turns into inf or NaN). So when the range's dx rows, dkernel or dbias hold one (a check
    over arrays in cache, smaller than grad_y where Cout > Cin), and max |grad_y| over the
    range is above ``grad_limit`` (and finite), the range runs again on grad_y * 2**-s, s
    the least power that brings it under, folded into A (exact), and its results are
    multiplied by 2**s: the same bits as without the scaling, except where a value falls
    below the smallest normal number times 2**s, where it overflowed otherwise (see
    :func:`winograd_bounds`)."""
    tiles_per_seq = dilation * tiles_per_phase
    seq_lo, seq_hi = tile_lo // tiles_per_seq, tile_hi // tiles_per_seq
    args = (v, grad_y, u, b_t, g_t, pad_left, dilation, tiles_per_phase, tile_lo, tile_hi, dx)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is handled below
        dkernel, dbias = _backward_range(a, *args)
    if (grad_limit < math.inf
            and not (max_abs(dx, seq_lo, seq_hi) < math.inf
                     and max_abs(dkernel, 0, dkernel.shape[0]) < math.inf
                     and max_abs(dbias, 0, dbias.shape[0]) < math.inf)):
        grad_max = max_abs(grad_y, seq_lo, seq_hi)
        if grad_limit < grad_max < math.inf:  # grad_y's range, not an inf or NaN in it
            shift = min(math.ceil(math.log2(grad_max / grad_limit)),
                        np.finfo(grad_y.dtype).maxexp - 2)
            # a power of two: exact
            dkernel, dbias = _backward_range(a * grad_y.dtype.type(2.0 ** -shift), *args)
            scale = grad_y.dtype.type(2.0 ** shift)
            dx[seq_lo:seq_hi] *= scale
            dkernel *= scale
            dbias *= scale
    return dkernel, dbias


def _backward_range(a, v, grad_y, u, b_t, g_t, pad_left, dilation, tiles_per_phase, tile_lo,
                    tile_hi, dx):
    # the arithmetic of winograd_backward_tiles, with grad_y's transform A = a
    n, m = a.shape
    count = tile_hi - tile_lo
    cin, cout = v.shape[2], grad_y.shape[2]
    tiles_per_seq = dilation * tiles_per_phase
    dx[tile_lo // tiles_per_seq:tile_hi // tiles_per_seq] = 0
    g = np.empty((n, count, cout), dtype=grad_y.dtype)
    products = np.empty((n, count, cin), dtype=grad_y.dtype)
    tile_transform(grad_y, 0, dilation, m, tiles_per_phase, tile_lo, count, a, g, 0)
    z = np.matmul(v[:, tile_lo:tile_hi].transpose(0, 2, 1), g)
    dkernel = (g_t @ z.reshape(n, cin * cout)).reshape(g_t.shape[0], cin, cout)
    dbias = g[1].sum(axis=0)
    np.matmul(g, u.transpose(0, 2, 1), out=products)
    tile_untransform_add(products, b_t, pad_left, dilation, m, tiles_per_phase, tile_lo, count, dx)
    return dkernel, dbias


@njit(inline="always")
def _max_bits(bits, sign_off):
    # bits: (N,) unsigned -> the largest of bits & sign_off. For the bit patterns of floats
    # with the sign cleared, integer order is the order of the magnitudes, NaN's above inf's;
    # and an integer max vectorizes (a float max with NaN does not).
    best = sign_off - sign_off  # 0 of the bits' type (no mixed signed/unsigned arithmetic)
    for i in range(bits.size):
        value = bits[i] & sign_off
        best = value if value > best else best
    return best


@njit(cache=True, nogil=True, boundscheck=False)
def _max_abs_f32(a, lo, hi):
    # a: (B, ...) float32 C-contiguous -> max |a[lo:hi]|
    per_row = a.size // a.shape[0] if a.shape[0] else 0
    bits = a.reshape(a.size).view(np.uint32)[lo * per_row:hi * per_row]
    out = np.empty(1, dtype=np.uint32)
    out[0] = _max_bits(bits, np.uint32(0x7FFFFFFF))
    return out.view(np.float32)[0]


@njit(cache=True, nogil=True, boundscheck=False)
def _max_abs_f64(a, lo, hi):
    # a: (B, ...) float64 C-contiguous -> max |a[lo:hi]|
    per_row = a.size // a.shape[0] if a.shape[0] else 0
    bits = a.reshape(a.size).view(np.uint64)[lo * per_row:hi * per_row]
    out = np.empty(1, dtype=np.uint64)
    out[0] = _max_bits(bits, np.uint64(0x7FFFFFFFFFFFFFFF))
    return out.view(np.float64)[0]


def max_abs(a, lo, hi):
    """max |a[lo:hi]| over the rows lo..hi-1 of a C-contiguous float array: inf where one
    is infinite, NaN where one is NaN; 0 for no values. One pass at memory speed."""
    return (_max_abs_f32 if a.dtype.itemsize == 4 else _max_abs_f64)(a, lo, hi)


def winograd_bounds(m, k):
    """Constants that bound every intermediate of Winograd F(m, k), forward and backward,
    from the ranges of its inputs (``X = max |x|``, ``W = max |kernel|``, ``GY = max
    |grad_y|``, over the tiles of a range of ``count`` tiles). With the transforms
    A^T (m, n), G (n, k), B^T (n, n) and the row sums of absolute values beta_p = |B^T_p|,
    gamma_p = |G_p|, alpha_p = |A_p| (A = (A^T)^T):

      v = B^T d <= beta X,  u = G g <= gamma W,  products_p <= Cin beta_p gamma_p X W,
      y <= forward * Cin X W   (every partial sum too; plus |bias|);
      g = A e <= alpha GY,  dx <= dx * Cout GY W (tiles overlapping a step included),
      z, dkernel <= count * dkernel * X GY,  dbias <= count * alpha GY.

    Returns a dict of floats: beta, gamma, alpha (the largest row sums), forward, dx,
    dkernel. Where these bounds stay below the float maximum nothing overflows; the exact
    result may be finite beyond them (the bounds are worst cases), so the caller takes the
    exact path there. F(4, 3): beta 10, gamma 1, alpha 15, forward 48; k = 2..7: forward
    48-115 (against k for the direct sum)."""
    a_t, g, b_t = winograd_matrices(m, k)
    n = m + k - 1
    beta = np.abs(b_t).sum(axis=1)
    gamma = np.abs(g).sum(axis=1)
    alpha = np.abs(a_t).sum(axis=0)
    overlap = -(-n // m)  # tiles whose inputs hold one step
    forward = max((np.abs(a_t) * (beta * gamma)).sum(axis=1).max(), (beta * gamma).max())
    dx = overlap * max((np.abs(b_t).T * (alpha * gamma)).sum(axis=1).max(),
                       (alpha * gamma).max())
    dkernel = max((np.abs(g).T * (beta * alpha)).sum(axis=1).max(), (beta * alpha).max())
    return {"beta": float(beta.max()), "gamma": float(gamma.max()),
            "alpha": float(alpha.max()), "forward": float(forward), "dx": float(dx),
            "dkernel": float(dkernel)}


def _eval_matrix(points, size):
    """Rows: the polynomial of ``size`` coefficients evaluated at each point, then at
    infinity (its leading coefficient)."""
    from fractions import Fraction

    rows = [[p**i for i in range(size)] for p in points]
    rows.append([Fraction(0)] * (size - 1) + [Fraction(1)])
    return rows


def _inverse(matrix):
    """Exact inverse of a small Fraction matrix (Gauss-Jordan)."""
    from fractions import Fraction

    size = len(matrix)
    rows = [list(r) + [Fraction(int(i == j)) for j in range(size)] for i, r in enumerate(matrix)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        pv = rows[col][col]
        rows[col] = [v / pv for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[col])]
    return [r[size:] for r in rows]


def winograd_matrices(m, k):
    """(A^T (m, n), G (n, k), B^T (n, n)) of Winograd F(m, k) for the correlation
    y_i = sum_j g_j d_(i+j): y = A^T [(G g) * (B^T d)], n = m + k - 1, float64.

    Toom-Cook on the points 0, 1, -1, 2, -2, 1/2, -1/2, ... and infinity: A and G evaluate
    the m- and k-coefficient polynomials there, B^T = V^-T for V the n-coefficient
    evaluation matrix (the correlation is the transpose of the linear convolution
    c = V^-1 [(G g) * (A e)]). Computed exactly in fractions; n <= 9 here."""
    from fractions import Fraction as F

    n = m + k - 1
    points = [F(0), F(1), F(-1), F(2), F(-2), F(1, 2), F(-1, 2), F(3), F(-3)][: n - 1]
    if len(points) < n - 1:
        raise ValueError(f"Winograd F({m}, {k}) needs {n - 1} points, have {len(points)}")
    a = _eval_matrix(points, m)
    g = _eval_matrix(points, k)
    v_inv = _inverse(_eval_matrix(points, n))
    b_t = [list(col) for col in zip(*v_inv)]
    # Row p of B^T and row p of G may trade a factor (the product is unchanged): make B^T's
    # rows integers with no common factor and move the fractions into G, which is applied
    # once to the kernel in float64. The input transforms then round less (A is integer or
    # dyadic already).
    for p in range(n):
        den = 1
        for val in b_t[p]:
            den = den * val.denominator // math.gcd(den, val.denominator)
        num = 0
        for val in b_t[p]:
            num = math.gcd(num, (val * den).numerator)
        scale = F(den, num)
        b_t[p] = [val * scale for val in b_t[p]]
        g[p] = [val / scale for val in g[p]]

    def as_array(rows):
        return np.array([[float(x) for x in r] for r in rows], dtype=np.float64)

    return as_array(a).T.copy(), as_array(g), as_array(b_t)


# ----------------------------------------------------------------------------- im2col


@njit(cache=True, nogil=True, boundscheck=False)
def im2col(x, kernel_size, strides, dilation, pad_left, out_length, b_lo, b_hi, cols):
    """cols[b * Lout + t, j * Cin + c] = x[b, t * strides + j * dilation - pad_left, c], zero
    where that step is padding, for the sequences b in [b_lo, b_hi).

    # x: (B, L, Cin) -> cols: (B * Lout, k * Cin)"""
    length, cin = x.shape[1], x.shape[2]
    for row in range(b_lo * out_length, b_hi * out_length):
        b = row // out_length
        t = row - b * out_length
        for j in range(kernel_size):
            s = t * strides + j * dilation - pad_left
            if s >= 0 and s < length:
                for c in range(cin):
                    cols[row, j * cin + c] = x[b, s, c]
            else:
                for c in range(cin):
                    cols[row, j * cin + c] = 0


@njit(cache=True, nogil=True, boundscheck=False)
def col2im(dcols, kernel_size, strides, dilation, pad_left, out_length, b_lo, b_hi, dx):
    """dx[b, s, c] = sum over the taps j with s + pad_left - j * dilation = t * strides,
    0 <= t < Lout, of dcols[b * Lout + t, j * Cin + c], in tap order (a gather), for the
    sequences b in [b_lo, b_hi).

    # dcols: (B * Lout, k * Cin) -> dx: (B, L, Cin)"""
    length, cin = dx.shape[1], dx.shape[2]
    for row in range(b_lo * length, b_hi * length):
        b = row // length
        s = row - b * length
        for c in range(cin):
            dx[b, s, c] = 0
        for j in range(kernel_size):
            num = s + pad_left - j * dilation
            if num >= 0 and num % strides == 0:
                t = num // strides
                if t < out_length:
                    src = b * out_length + t
                    for c in range(cin):
                        dx[b, s, c] += dcols[src, j * cin + c]


# ----------------------------------------------------------------------------- pooling
#
# Every pooling kernel works on the sequences b in [b_lo, b_hi) and releases the GIL, so the
# caller can hand ranges to several threads (fastseq/_kernels/_forkjoin.py). No result mixes
# two sequences, so each element is computed the same way whatever the split: the same bits
# for any thread count. A call writes only its own sequences' rows of y, argmax and dx.


# NaN, as NumPy's max: a window (or sequence) holding a NaN has the max NaN, and its gradient
# goes to the first NaN. As a select: v wins over the running max m when m is not NaN and
# v > m or v is NaN (not v <= m: one unordered compare); once m is NaN nothing wins over it.


# x: (B, L, C) -> y: (B, Lout, C), argmax: (B, Lout, C) int32 (int64 past 2**31 steps)
@njit(cache=True, nogil=True, boundscheck=False)
def max_pool1d_forward(x, pool_size, strides, pad_left, y, argmax, b_lo, b_hi):
    """Max over each window of real steps (padding never wins); ties: the first step; a NaN
    in the window: NaN, at the first NaN."""
    length, channels = x.shape[1], x.shape[2]
    out_length = y.shape[1]
    for b in range(b_lo, b_hi):
        for t in range(out_length):
            start = t * strides - pad_left
            first = max(start, 0)
            last = min(start + pool_size, length)
            for c in range(channels):
                y[b, t, c] = x[b, first, c]
                argmax[b, t, c] = first
            for s in range(first + 1, last):
                for c in range(channels):
                    # branch-free selects, so the loop over channels vectorises
                    v = x[b, s, c]
                    m = y[b, t, c]
                    better = (not v <= m) & (m == m)
                    y[b, t, c] = v if better else m
                    argmax[b, t, c] = s if better else argmax[b, t, c]


# grad_y: (B, Lout, C), argmax: (B, Lout, C) -> dx: (B, L, C)
@njit(cache=True, nogil=True, boundscheck=False)
def max_pool1d_backward(grad_y, argmax, pool_size, strides, pad_left, dx, b_lo, b_hi):
    """dx[b, s, c] = sum of grad_y over the windows whose max was step s (a gather over the
    windows that contain s, in order: overlapping windows add up without races)."""
    length, channels = dx.shape[1], dx.shape[2]
    out_length = grad_y.shape[1]
    for b in range(b_lo, b_hi):
        for s in range(length):
            for c in range(channels):
                dx[b, s, c] = 0
            # windows t with t * strides - pad_left <= s < t * strides - pad_left + pool_size
            num = s + pad_left - pool_size + 1
            t_first = 0 if num <= 0 else -(-num // strides)
            t_last = min((s + pad_left) // strides, out_length - 1)
            for t in range(t_first, t_last + 1):
                for c in range(channels):
                    dx[b, s, c] += grad_y[b, t, c] if argmax[b, t, c] == s else 0


# x: (B, L, C), mask: (B, L) bool -> y: (B, C), inv_counts: (B,)
@njit(cache=True, nogil=True, boundscheck=False)
def global_average_pool1d_forward(x, mask, use_mask, y, inv_counts, b_lo, b_hi):
    """Mean over the unmasked steps (all when not use_mask); none unmasked: 0."""
    length, channels = x.shape[1], x.shape[2]
    # the sums in a local row: LLVM cannot tell y from x, so sums kept in y are stored back
    # at every step (10% slower at (64, 500, 128), measured); the same adds, the same order
    sums = np.empty(channels, dtype=y.dtype)
    for b in range(b_lo, b_hi):
        sums[:] = 0
        count = 0
        xb = x[b]
        for s in range(length):
            if use_mask and not mask[b, s]:
                continue
            count += 1
            xs = xb[s]
            for c in range(channels):
                sums[c] += xs[c]
        inv = 1.0 / count if count > 0 else 0.0
        inv_counts[b] = inv
        for c in range(channels):
            y[b, c] = sums[c] * inv_counts[b]


# grad_y: (B, C), inv_counts: (B,), mask: (B, L) -> dx: (B, L, C)
@njit(cache=True, nogil=True, boundscheck=False)
def global_average_pool1d_backward(grad_y, inv_counts, mask, use_mask, dx, b_lo, b_hi):
    length, channels = dx.shape[1], dx.shape[2]
    for b in range(b_lo, b_hi):
        for s in range(length):
            if use_mask and not mask[b, s]:
                for c in range(channels):
                    dx[b, s, c] = 0
            else:
                for c in range(channels):
                    dx[b, s, c] = grad_y[b, c] * inv_counts[b]


# x: (B, L, C), mask: (B, L) bool -> y: (B, C), argmax: (B, C) int64 (-1: none unmasked)
@njit(cache=True, nogil=True, boundscheck=False)
def global_max_pool1d_forward(x, mask, use_mask, y, argmax, b_lo, b_hi):
    """Max over the unmasked steps; ties: the first; a NaN among them: NaN, at the first
    NaN; none unmasked: 0 and argmax -1."""
    length, channels = x.shape[1], x.shape[2]
    # the running max and its step in local rows (as the average's sums: 20% faster)
    best = np.empty(channels, dtype=y.dtype)
    best_step = np.empty(channels, dtype=argmax.dtype)
    for b in range(b_lo, b_hi):
        first = 0
        if use_mask:
            while first < length and not mask[b, first]:
                first += 1
        if first == length:
            for c in range(channels):
                y[b, c] = 0
                argmax[b, c] = -1
            continue
        xb = x[b]
        for c in range(channels):
            best[c] = xb[first, c]
            best_step[c] = first
        for s in range(first + 1, length):
            if use_mask and not mask[b, s]:
                continue
            xs = xb[s]
            for c in range(channels):
                # branch-free selects, so the loop over channels vectorises
                v = xs[c]
                m = best[c]
                better = (not v <= m) & (m == m)
                best[c] = v if better else m
                best_step[c] = s if better else best_step[c]
        for c in range(channels):
            y[b, c] = best[c]
            argmax[b, c] = best_step[c]


# grad_y: (B, C), argmax: (B, C) -> dx: (B, L, C)
@njit(cache=True, nogil=True, boundscheck=False)
def global_max_pool1d_backward(grad_y, argmax, dx, b_lo, b_hi):
    length, channels = dx.shape[1], dx.shape[2]
    for b in range(b_lo, b_hi):
        for s in range(length):
            for c in range(channels):
                dx[b, s, c] = 0
        for c in range(channels):
            s = argmax[b, c]
            if s >= 0:
                dx[b, s, c] = grad_y[b, c]
