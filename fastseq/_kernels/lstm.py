"""Numba kernels: the LSTM forward and backward through time, one fused kernel per step.

Keras's cell (gates i, f, c, o; tanh; sigmoid recurrent activation) and masking semantics,
see :mod:`fastseq._kernels.reference.lstm`. The public wrappers with the input checks are in
:mod:`fastseq._api.lstm`; the functions here trust their inputs (C-contiguous, one float
dtype, consistent shapes). No fastseq imports, no global state.

The shape of the work, for B sequences of T steps, D inputs and H units:

* Steps masked for the whole batch (padding in a pre-padded batch) are dropped up front:
  they change no state, their outputs repeat the previous one and their gradients add to
  it. The Ta remaining ("active") steps run in processing order.
* The batch runs in independent blocks of R rows (LSTM rows never interact), one thread
  each, every block with its own single-threaded BLAS calls: no synchronization per step.
  The blocking depends only on the shapes and the caller's ``row_blocks`` (which the
  boundary works out from the batch size alone), never on the thread count, and each
  block's arithmetic is the same whichever thread runs it; the blocks' weight gradients
  are added in block order. So results are bitwise the same for any number of threads on
  any machine.
* Inside a block the layout is feature-major: a step's state is (H, R), gates (4H, R).
  The per-step GEMM is then ``recurrent_kernel.T (4H, H) @ h (H, R)``, which OpenBLAS runs
  1.5-2x faster for small R than ``h (R, H) @ recurrent_kernel`` (measured: 33 vs 50 us at
  R=32, H=100), and the element-wise loops run over whole (H, R) blocks.
* Forward: per block of steps one GEMM for the input projection (sized to stay in cache
  until the steps read it), then per step the small GEMM and one fused pass for the gate
  nonlinearities and the cell update, written straight into the cache and the outputs. The
  time loop runs inside Numba (``np.dot`` on contiguous 2-D arrays calls the BLAS), so a
  step costs no Python.
* Backward: per step one fused pass for the gate gradients and one GEMM
  ``recurrent_kernel (H, 4H) @ dz (4H, R)``; per block of steps dkernel, drecurrent_kernel
  and dx as three larger GEMMs while that block's dz is in cache. dbias is summed in the
  fused pass.
* Inference from precomputed input projections (``x_proj`` (V, 4H), an Embedding folded
  into the kernel): x holds (B, T) indices and each step gathers its rows into a (4H, R)
  block in place of the input-projection GEMM (per step: a block of steps gathered at once
  writes xw with a large stride, 2-16x slower). Without ``store_outputs`` the (B, T, H)
  outputs are not written (a layer without return_sequences reads the last state only).
* Dropout as Keras's implementation 1 (``input_masks`` (4, B, D), ``recurrent_masks``
  (4, B, H), per gate, fixed over the sequence): the same FLOPs in smaller GEMMs, one per
  gate where a mask sits between the operands: the input projection per gate on its
  masked inputs; per step the recurrent GEMM per gate ``U_g.T (H, H) @ (h * m_g)`` and,
  backward, ``U_g @ dz_g`` summed through the masks; dkernel, drecurrent_kernel and dx per
  gate on masked copies of a block of steps. Those copies are made in the backward (one
  gate at a time, in cache) from the inputs and the states kept row-major, (Ta, R, D) and
  (Ta, R, H), so that the per-gate weight-gradient GEMMs read them unstrided; without
  masks nothing of this runs and the results are bitwise those of the plain kernels.
"""
import contextlib
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from ._forkjoin import run_tasks

# error_model="numpy": a float division never raises (and so vectorizes); "contract" lets
# LLVM fuse multiply-adds (deterministic: the same machine code for every thread count).
_FLAGS = dict(error_model="numpy", fastmath={"contract"})
_JIT = dict(cache=True, nogil=True, **_FLAGS)

# Values per block of steps (2 MB in float32): a block's input projection (forward) or
# gate gradients (backward) stay in cache between the GEMM and the steps that use them.
_BLOCK_VALUES = 1 << 19


# ---------------------------------------------------------------------------------------
# float32 tanh and sigmoid that LLVM vectorizes (no libm call per element): tanh as a
# rational function, x * P(x^2) / Q(x^2) on |x| <= 8 (beyond it tanh rounds to +-1 in
# float32), with the minimax coefficients Eigen (and so TensorFlow) uses for float32 tanh;
# sigmoid(x) = (1 + tanh(x / 2)) / 2. Errors: tanh within 5 float32 ulps (denormal inputs
# flush to 0); sigmoid within 2e-7 absolute.

_F32_TANH_CLAMP = np.float32(7.99881172180175781)  # where the rational reaches 1.0
_F32_TANH_P = (np.float32(-2.76076847742355e-16), np.float32(2.00018790482477e-13),
               np.float32(-8.60467152213735e-11), np.float32(5.12229709037114e-08),
               np.float32(1.48572235717979e-05), np.float32(6.37261928875436e-04),
               np.float32(4.89352455891786e-03))
_F32_TANH_Q = (np.float32(1.19825839466702e-06), np.float32(1.18534705686654e-04),
               np.float32(2.26843463243900e-03), np.float32(4.89352518554385e-03))
_F32_HALF = np.float32(0.5)


@njit(**_JIT)
def _tanh_f32(x):
    # the comparisons are written so that NaN passes through the clamp
    x = _F32_TANH_CLAMP if x > _F32_TANH_CLAMP else x
    x = -_F32_TANH_CLAMP if x < -_F32_TANH_CLAMP else x
    z = x * x
    p13, p11, p9, p7, p5, p3, p1 = _F32_TANH_P
    q6, q4, q2, q0 = _F32_TANH_Q
    p = ((((((p13 * z + p11) * z + p9) * z + p7) * z + p5) * z + p3) * z + p1) * x
    q = ((q6 * z + q4) * z + q2) * z + q0
    return p / q


@njit(**_JIT)
def _sigmoid_f32(x):
    return _F32_HALF + _F32_HALF * _tanh_f32(_F32_HALF * x)


# float64, vectorized as well: Cephes's exp (a Pade approximant after Cody-Waite range
# reduction, 2**n assembled from its exponent bits) and tanh (a rational function below
# 0.625, 1 - 2 / (exp(2|x|) + 1) above); within 2 ulps of libm.

@intrinsic
def _pow2_f64(typingctx, n):
    """2.0**n for an integral-valued float64 n in [-1022, 1023]."""
    sig = types.float64(types.float64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        # n + 1.5 * 2**52 holds n in its low bits (AVX2 has no vector float64 -> int64)
        shifted = builder.fadd(args[0], ir.Constant(ir.DoubleType(), 6755399441055744.0))
        bits = builder.add(builder.bitcast(shifted, i64), ir.Constant(i64, 1023))
        return builder.bitcast(builder.shl(bits, ir.Constant(i64, 52)), ir.DoubleType())

    return sig, codegen


_F64_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_F64_EXP_Q = (3.00198505138664455042e-6, 2.52448340349684104192e-3,
              2.27265548208155028766e-1, 2.00000000000000000009e0)
_F64_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1,
               -1.61468768441708447952e3)
_F64_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


@njit(**_JIT)
def _exp_f64(x):
    # the comparisons are written so that NaN passes through the clamps
    x = 709.0 if x > 709.0 else x
    x = -708.0 if x < -708.0 else x
    n = np.floor((x if x == x else 0.0) * 1.4426950408889634 + 0.5)
    r = x - n * 6.93145751953125e-1
    r = r - n * 1.42860682030941723212e-6
    rr = r * r
    p0, p1, p2 = _F64_EXP_P
    q0, q1, q2, q3 = _F64_EXP_Q
    pr = r * ((p0 * rr + p1) * rr + p2)
    e = pr / ((((q0 * rr + q1) * rr + q2) * rr + q3) - pr)
    return (1.0 + 2.0 * e) * _pow2_f64(n)


@njit(**_JIT)
def _tanh_f64(x):
    a = abs(x)
    a = 20.0 if a > 20.0 else a  # tanh(20) rounds to 1
    large = 1.0 - 2.0 / (_exp_f64(a + a) + 1.0)
    z = a * a
    p0, p1, p2 = _F64_TANH_P
    q0, q1, q2 = _F64_TANH_Q
    small = a + a * z * (((p0 * z + p1) * z + p2) / (((z + q0) * z + q1) * z + q2))
    # both branches computed and a select (and copysign, not a branch): LLVM vectorizes
    return math.copysign(small if a < 0.625 else large, x)


@njit(**_JIT)
def _sigmoid_f64(x):
    return 1.0 / (1.0 + _exp_f64(-x))


def _sigmoid(x):
    """Logistic function of a float scalar (Numba only)."""
    raise NotImplementedError


def _tanh(x):
    """tanh of a float scalar (Numba only)."""
    raise NotImplementedError


@overload(_sigmoid, jit_options=_FLAGS)
def _sigmoid_impl(x):
    if x == types.float32:
        return lambda x: _sigmoid_f32(x)
    if x == types.float64:
        return lambda x: _sigmoid_f64(x)
    return None


@overload(_tanh, jit_options=_FLAGS)
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh_f32(x)
    if x == types.float64:
        return lambda x: _tanh_f64(x)
    return None


@njit(**_JIT)
def tanh_sigmoid(x, out_tanh, out_sigmoid):
    # x: (N,) -> out_tanh, out_sigmoid: (N,); the kernels' activations, for the tests
    for j in range(x.shape[0]):
        out_tanh[j] = _tanh(x[j])
        out_sigmoid[j] = _sigmoid(x[j])


# ---------------------------------------------------------------------------------------
# forward

@njit(**_JIT)
def _forward_steps(xw, k_begin, k_end, block_start, bias, recurrent_kernel_t, hs, cs, gates,
                   h_cols, store_h, mask_tm, has_mask, step_pos, step_end, outputs, hu,
                   rmask, has_rmask, hm, h_rows, store_h_rows, x_proj, indices, time_index,
                   has_proj):
    # Steps k_begin..k_end-1 of a block of R batch rows (rows never interact), feature-major:
    # a step's state is (H, R), so its small GEMM is recurrent_kernel.T (4H, H) @ h (H, R),
    # the orientation the BLAS runs fastest for small R, and the element-wise loops run
    # over whole (H, R) blocks.
    # xw: (4H, Tb*R) input projections of the steps block_start.., step k in columns
    # (k - block_start)*R..; bias: (4H,); recurrent_kernel_t: (4H, H); hs: (2, H, R)
    # alternating; cs: (S, H, R) cell states (S = Ta + 1 keeps all for the backward, S = 2
    # alternates); gates: (G, 4H, R) activations i, f, g, o of step k in slot k % G
    # (G = Ta: the cache, 1: scratch); h_cols: (H, Ta + 1, R) h before each step (written
    # when store_h); mask_tm: (T, R) in processing order; step_pos, step_end: (Ta,)
    # -> outputs: (R, T, H). hu: (4H, R) scratch. rmask: (4, H, R) the recurrent dropout
    # masks (has_rmask): gate g's GEMM reads h * rmask[g]; hm: (H, R) scratch; h_rows:
    # (Ta, R, H) h before each step, row-major (written when store_h_rows, in place of
    # h_cols: the backward's per-gate drecurrent_kernel GEMMs read it masked).
    # With has_proj the input projections come from x_proj (V, 4H) rows, indices (R, T),
    # time_index (Ta,): each step gathers its (4H, R) block into xw's first R columns, one
    # table row per batch row (a whole block of steps gathered at once writes xw with a
    # stride of thousands of values: measured 1-16 ns per value, against ~0.5 per step;
    # reading the table in the gate loop, a gather per value, measured 2.5-3x slower)
    H = hs.shape[1]
    R = hs.shape[2]
    n_cells = cs.shape[0]
    n_gates = gates.shape[0]
    for k in range(k_begin, k_end):
        h_prev = hs[k % 2]
        h_new = hs[(k + 1) % 2]
        c_prev = cs[k % n_cells]
        c_new = cs[(k + 1) % n_cells]
        if has_rmask:
            # one (H, H) @ (H, R) GEMM per gate on its dropped-out h
            hp = h_prev.reshape(H * R)
            hmf = hm.reshape(H * R)
            for g in range(4):
                rmg = rmask[g].reshape(H * R)
                for e in range(H * R):
                    hmf[e] = hp[e] * rmg[e]
                np.dot(recurrent_kernel_t[g * H:(g + 1) * H], hm, hu[g * H:(g + 1) * H])
            if store_h_rows:
                hr = h_rows[k]
                for j in range(H):
                    for b in range(R):
                        hr[b, j] = h_prev[j, b]
        else:
            np.dot(recurrent_kernel_t, h_prev, hu)
        gk = gates[k % n_gates]
        col = (k - block_start) * R
        if has_proj:
            t = time_index[k]
            for b in range(R):
                row = x_proj[indices[b, t]]
                for g in range(4 * H):
                    xw[g, b] = row[g]
            col = 0
        # the gate nonlinearities: sigmoid for i, f, o; tanh for g (rows 2H..3H)
        for g in range(4 * H):
            bg = bias[g]
            xg = xw[g, col:col + R]
            hg = hu[g]
            out = gk[g]
            if 2 * H <= g < 3 * H:
                for b in range(R):
                    out[b] = _tanh(xg[b] + hg[b] + bg)
            else:
                for b in range(R):
                    out[b] = _sigmoid(xg[b] + hg[b] + bg)
        # the cell update over the whole (H, R) block
        n = H * R
        gi = gk[:H].reshape(n)
        gf = gk[H:2 * H].reshape(n)
        gg = gk[2 * H:3 * H].reshape(n)
        go = gk[3 * H:].reshape(n)
        cp = c_prev.reshape(n)
        cn = c_new.reshape(n)
        hn = h_new.reshape(n)
        for e in range(n):
            c = gf[e] * cp[e] + gi[e] * gg[e]
            cn[e] = c
            hn[e] = go[e] * _tanh(c)
        p0 = step_pos[k]
        p1 = step_end[k]
        if has_mask:
            # masked rows keep their state (their gates are never read back)
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        c_new[j, b] = c_prev[j, b]
                        h_new[j, b] = h_prev[j, b]
        # the output at p0, and at the whole-batch-masked steps after it, is this state
        for b in range(R):
            for p in range(p0, p1):
                ob = outputs[b, p]
                for j in range(H):
                    ob[j] = h_new[j, b]
        if store_h:
            for j in range(H):
                h_cols[j, k + 1] = h_new[j]


@njit(**_JIT)
def _fill_leading_outputs(outputs, h0, n_leading):
    # outputs: (B, T, H), h0: (B, H): the steps before the first active one output h0
    for b in range(outputs.shape[0]):
        for p in range(n_leading):
            outputs[b, p] = h0[b]


@njit(**_JIT)
def _inputs_feature_major(x, time_index, x_t):
    # x: (R, T, D), time_index: (Ta,) -> x_t: (D, Ta, R), the active steps in processing
    # order
    for d in range(x_t.shape[0]):
        for k in range(time_index.shape[0]):
            t = time_index[k]
            for b in range(x.shape[0]):
                x_t[d, k, b] = x[b, t, d]


@njit(**_JIT)
def _inputs_rows(x, time_index, x_rows):
    # x: (R, T, D), time_index: (Ta,) -> x_rows: (Ta, R, D), the active steps in processing
    # order, row-major (the layout of the per-gate GEMMs with input dropout)
    for k in range(time_index.shape[0]):
        t = time_index[k]
        for b in range(x.shape[0]):
            x_rows[k, b] = x[b, t]


@njit(**_JIT)
def _masked_rows(src, k0, k1, mask, out):
    # src: (S, R, F), mask: (R, F) -> out: ((k1 - k0) * R, F) = src[k0:k1] * mask, a gate's
    # dropped-out inputs (or h) over a block of steps, one row per step and batch row
    # (a slice per step, indexed by the loop variable: indexing by base + e costs a
    # negative-index check per element, and the loop does not vectorize: 4x slower)
    n = mask.shape[0] * mask.shape[1]
    m = mask.reshape(n)
    o = out.reshape(out.size)
    for k in range(k0, k1):
        s = src[k].reshape(n)
        ob = o[(k - k0) * n:(k - k0 + 1) * n]
        for e in range(n):
            ob[e] = s[e] * m[e]


def _active_steps(mask, T, go_backwards):
    """The steps not masked for the whole batch, in processing order.

    Returns (mask_tm (T, B) bool in processing order, or None without a mask; step_pos
    (Ta,) int64: the processing position of each active step; step_end (Ta,): the
    position of the next active step, T after the last; time_index (Ta,): its step in x)."""
    if mask is None:
        step_pos = np.arange(T, dtype=np.int64)
        mask_tm = None
    else:
        mask_tm = np.ascontiguousarray((mask[:, ::-1] if go_backwards else mask).T)
        step_pos = np.flatnonzero(mask_tm.any(axis=1)).astype(np.int64)
    step_end = np.empty_like(step_pos)
    step_end[:-1] = step_pos[1:]
    if step_pos.size:
        step_end[-1] = T
    time_index = (T - 1 - step_pos) if go_backwards else step_pos
    return mask_tm, step_pos, step_end, time_index


def _steps_per_block(Ta, R, width):
    # steps whose (width, R) slices together hold about _BLOCK_VALUES values
    return max(1, min(Ta, _BLOCK_VALUES // max(1, R * width)))


def _row_bounds(B, n_blocks):
    # (n + 1,) int64: n = min(n_blocks, B) blocks of near-equal size covering [0, B)
    n_blocks = max(1, min(n_blocks, B))
    return np.array([(B * c) // n_blocks for c in range(n_blocks + 1)], dtype=np.int64)


def _gather_block(rows, R, dtype):
    """A (rows, >= R) array whose rows lie an odd number of cache lines apart (its first R
    columns are used): the gather writes a column of it at a time, and rows a power-of-two
    number of lines apart share a few L1 sets (R = 32, H = 100: inference 1.2x slower than
    in blocks of R = 16). The whole array, not a view of R columns: Numba compiles a
    non-contiguous array's loops without vectorizing them (2x slower)."""
    itemsize = np.dtype(dtype).itemsize
    lines = -(-R * itemsize // 64)
    lines += 1 - lines % 2
    return np.empty((rows, max(R, lines * 64 // itemsize)), dtype=dtype)


def _forward_block(x, kernel, recurrent_kernel, bias, h0, c0, mask_tm, step_pos, step_end,
                   time_index, training, outputs, imask=None, rmask=None, x_proj=None):
    # One block of R rows. x: (R, T, D), h0, c0: (R, H), mask_tm: (T, R) or None, imask:
    # (4, R, D) or None, rmask: (4, H, R) or None -> outputs: (R, T, H) written; returns
    # (h_last, c_last, cache or None). With x_proj (V, 4H), x is (R, T) indices into it and
    # the input projections are gathered from it (kernel unused; inference only)
    R, T = x.shape[:2]
    D = kernel.shape[0] if x_proj is None else 0
    H = recurrent_kernel.shape[0]
    Ta = step_pos.size
    dtype = recurrent_kernel.dtype
    # the inputs of the active steps: feature-major for the one input-projection GEMM; with
    # input dropout row-major, each gate's GEMM reading them through its mask
    if x_proj is not None:
        x_t = x_rows = None
    elif imask is None:
        x_t = np.empty((D, Ta, R), dtype=dtype)
        _inputs_feature_major(x, time_index, x_t)
        x_rows = None
    else:
        x_t = None
        x_rows = np.empty((Ta, R, D), dtype=dtype)
        _inputs_rows(x, time_index, x_rows)
    has_mask = mask_tm is not None and not mask_tm[step_pos].all()
    mask_arg = mask_tm if has_mask else np.ones((1, 1), dtype=np.bool_)
    hs = np.empty((2, H, R), dtype=dtype)
    hs[0] = h0.T
    cs = np.empty((Ta + 1 if training else 2, H, R), dtype=dtype)
    cs[0] = c0.T
    has_rmask = rmask is not None
    # the backward's drecurrent_kernel reads h before each step: feature-major for one GEMM;
    # with recurrent dropout row-major, each gate's GEMM reading it through its mask
    store_h_cols = training and not has_rmask
    store_h_rows = training and has_rmask
    if store_h_cols:
        h_cols = np.empty((H, Ta + 1, R), dtype=dtype)
        h_cols[:, 0] = h0.T
    else:
        h_cols = np.empty((1, 1, 1), dtype=dtype)
    h_rows = np.empty((Ta, R, H) if store_h_rows else (1, 1, 1), dtype=dtype)
    # the training cache keeps every step's gate activations; inference needs one step's
    gates = np.empty((Ta if training else 1, 4 * H, R), dtype=dtype)
    recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    kernel_t = kernel.T if x_proj is None else None
    hu = np.empty((4 * H, R), dtype=dtype)
    rmask_arg = rmask if has_rmask else np.empty((1, 1, 1), dtype=dtype)
    hm = np.empty((H, R) if has_rmask else (1, 1), dtype=dtype)
    if x_proj is not None:
        # the steps gather their input projections into a (4H, R) block, one step at a time
        _forward_steps(_gather_block(4 * H, R, dtype), 0, Ta, 0, bias, recurrent_kernel_t,
                       hs, cs, gates, h_cols, store_h_cols, mask_arg, has_mask, step_pos,
                       step_end, outputs, hu, rmask_arg, has_rmask, hm, h_rows, store_h_rows,
                       x_proj, x, time_index, True)
    # the input projection, one GEMM per block of steps (one per gate with input dropout):
    # the block stays in cache until the steps read it
    block = _steps_per_block(Ta, R, 4 * H)
    n_projected = 0 if x_proj is not None else Ta
    xw_buffer = np.empty(4 * H * block * R if n_projected else 0, dtype=dtype)
    xm_buffer = np.empty(D * block * R if imask is not None else 0, dtype=dtype)
    no_proj, no_indices = np.empty((1, 1), dtype=dtype), np.empty((1, 1), dtype=np.int64)
    for k0 in range(0, n_projected, block):
        k1 = min(Ta, k0 + block)
        cols = (k1 - k0) * R
        xw = xw_buffer[:4 * H * cols].reshape(4 * H, cols)
        if imask is None:
            np.matmul(kernel_t, x_t[:, k0:k1].reshape(D, cols), out=xw)
        else:
            xm = xm_buffer[:cols * D].reshape(cols, D)
            for g in range(4):
                _masked_rows(x_rows, k0, k1, imask[g], xm)
                np.matmul(kernel_t[g * H:(g + 1) * H], xm.T, out=xw[g * H:(g + 1) * H])
        _forward_steps(xw, k0, k1, k0, bias, recurrent_kernel_t, hs, cs, gates, h_cols,
                       store_h_cols, mask_arg, has_mask, step_pos, step_end, outputs, hu,
                       rmask_arg, has_rmask, hm, h_rows, store_h_rows, no_proj, no_indices,
                       time_index, False)
    h_last = hs[Ta % 2].T
    c_last = cs[Ta % cs.shape[0]].T
    if not training:
        return h_last, c_last, None
    block_cache = {"x_t": x_t, "gates": gates, "h_cols": h_cols, "cs": cs,
                   "mask_tm": mask_arg, "has_mask": has_mask, "imask": imask, "rmask": rmask,
                   "x_rows": x_rows, "h_rows": h_rows}
    return h_last, c_last, block_cache


def lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, training,
                 row_blocks=1, n_threads=1, serial_blas=contextlib.nullcontext,
                 input_masks=None, recurrent_masks=None, x_proj=None, store_outputs=True):
    # x: (B, T, D), kernel: (D, 4H), recurrent_kernel: (H, 4H), bias: (4H,), h0, c0: (B, H),
    # mask: (B, T) bool or None, input_masks: (4, B, D) or None, recurrent_masks: (4, B, H)
    # or None -> outputs: (B, T, H), h_last, c_last: (B, H), cache.
    # x_proj: (V, 4H) or None: then x is (B, T) int indices and step t of row b reads the
    # input projection x_proj[x[b, t]] in place of x[b, t] @ kernel (kernel unused;
    # inference only: no cache, no dropout masks). store_outputs=False: outputs is None (the
    # B*T*H values are not written: a layer without return_sequences reads h_last only).
    # The batch runs as row_blocks independent blocks of rows on n_threads threads;
    # serial_blas() is a context in which the BLAS keeps to the calling thread.
    B, T = x.shape[:2]
    H = recurrent_kernel.shape[0]
    dtype = x.dtype if x_proj is None else x_proj.dtype
    mask_tm, step_pos, step_end, time_index = _active_steps(mask, T, go_backwards)
    Ta = step_pos.size
    if store_outputs:
        outputs = np.empty((B, T, H), dtype=dtype)
        _fill_leading_outputs(outputs, h0, int(step_pos[0]) if Ta else T)
        output_end = step_end
    else:
        # the steps write the outputs at positions step_pos[k]..output_end[k]-1: none
        outputs = np.empty((B, 1, H), dtype=dtype)
        output_end = step_pos
    h_last = np.empty((B, H), dtype=dtype)
    c_last = np.empty((B, H), dtype=dtype)
    bounds = _row_bounds(B, row_blocks)
    n_blocks = bounds.size - 1
    block_caches = [None] * n_blocks

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        block_mask = None if mask_tm is None else np.ascontiguousarray(mask_tm[:, b0:b1])
        # the blocks' dropout masks: (4, R, D) for the row-major inputs, (4, H, R) for the
        # feature-major state
        # (copies: the cache must not change with the caller's arrays)
        imask = None if input_masks is None else np.array(input_masks[:, b0:b1])
        rmask = None if recurrent_masks is None else \
            np.ascontiguousarray(recurrent_masks[:, b0:b1].transpose(0, 2, 1))
        h, cc, block_caches[c] = _forward_block(
            x[b0:b1], kernel, recurrent_kernel, bias, h0[b0:b1], c0[b0:b1], block_mask,
            step_pos, output_end, time_index, training, outputs[b0:b1], imask, rmask, x_proj)
        h_last[b0:b1] = h
        c_last[b0:b1] = cc

    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(n_blocks)], n_threads)
    if not store_outputs:
        outputs = None
    if not training:
        return outputs, h_last, c_last, None
    # the weights as they were (an optimizer may update them in place before the backward)
    cache = {"blocks": block_caches, "row_bounds": bounds, "step_pos": step_pos,
             "step_end": step_end, "time_index": time_index, "kernel": kernel.copy(),
             "recurrent_kernel": recurrent_kernel.copy(), "shape": (B, T, x.shape[2], H),
             "dtype": dtype}
    return outputs, h_last, c_last, cache


# ---------------------------------------------------------------------------------------
# backward

@njit(**_JIT)
def _backward_steps(k_begin, k_end, block_start, gates, cs, recurrent_kernel, mask_tm,
                    has_mask, step_pos, step_end, grad_outputs, has_grad_outputs, dh, dc,
                    dbias, dz_block, dz, g_h, g_c, dc_other, u_parts, rmask, has_rmask, dhg):
    # Steps k_end-1 down to k_begin of a block of R rows, feature-major as the forward.
    # gates: (Ta, 4H, R) activations i, f, g, o; cs: (Ta + 1, H, R); recurrent_kernel:
    # (H, 4H); grad_outputs: (R, T, H); dh, dc: (H, R), in: the gradients of the state
    # after step k_end-1, out: before step k_begin; dbias: (4H, R) += dz.
    # -> dz_block: (4H, (k_end - block_start) * R), dz (the gradient of the gates'
    # pre-activations) of step k in columns (k - block_start)*R...
    # dz: (4H, R), g_h, g_c, dc_other: (H, R) scratch.
    # With recurrent dropout (has_rmask): u_parts: (4, H, H) recurrent_kernel's gate blocks,
    # rmask: (4, H, R) the masks, dh = sum over g of (u_parts[g] @ dz_g) * rmask[g];
    # dhg: (H, R) scratch.
    H = cs.shape[1]
    R = cs.shape[2]
    n = H * R
    for k in range(k_end - 1, k_begin - 1, -1):
        p0 = step_pos[k]
        p1 = step_end[k]
        # dh of this state: carried back from later steps plus the outputs that show it
        g_h[:] = dh
        if has_grad_outputs:
            for b in range(R):
                for p in range(p0, p1):
                    gp = grad_outputs[b, p]
                    for j in range(H):
                        g_h[j, b] += gp[j]
        gk = gates[k]
        gi = gk[:H].reshape(n)
        gf = gk[H:2 * H].reshape(n)
        gg = gk[2 * H:3 * H].reshape(n)
        go = gk[3 * H:].reshape(n)
        dz_i = dz[:H].reshape(n)
        dz_f = dz[H:2 * H].reshape(n)
        dz_g = dz[2 * H:3 * H].reshape(n)
        dz_o = dz[3 * H:].reshape(n)
        cc = cs[k + 1].reshape(n)
        cp = cs[k].reshape(n)
        gh = g_h.reshape(n)
        gc = g_c.reshape(n)
        dcf = dc.reshape(n)
        dc_new = dc_other.reshape(n)
        # (few arrays per loop: with more, LLVM's runtime overlap checks exceed their budget
        # and it does not vectorize)
        for e in range(n):
            tc = _tanh(cc[e])
            o = go[e]
            gho = gh[e] * o
            gc[e] = dcf[e] + (gho - gho * tc * tc)
            d_o = gh[e] * tc
            dz_o[e] = d_o * o - d_o * o * o
        for e in range(n):
            i = gi[e]
            g = gg[e]
            d_i = gc[e] * g
            d_g = gc[e] * i
            dz_i[e] = d_i * i - d_i * i * i
            dz_g[e] = d_g - d_g * g * g
        for e in range(n):
            f = gf[e]
            d_f = gc[e] * cp[e]
            dz_f[e] = d_f * f - d_f * f * f
            dc_new[e] = gc[e] * f
        if has_mask:
            # masked rows: the state passed through, and so do its gradients
            for b in range(R):
                if not mask_tm[p0, b]:
                    for g in range(4 * H):
                        dz[g, b] = 0
                    for j in range(H):
                        dc_other[j, b] = dc[j, b]
        dc[:] = dc_other
        if has_rmask:
            # gate g's recurrent GEMM read h * rmask[g]: one (H, H) @ (H, R) GEMM per gate
            dhf = dh.reshape(n)
            dgf = dhg.reshape(n)
            np.dot(u_parts[0], dz[:H], dhg)
            m0 = rmask[0].reshape(n)
            for e in range(n):
                dhf[e] = dgf[e] * m0[e]
            for g in range(1, 4):
                np.dot(u_parts[g], dz[g * H:(g + 1) * H], dhg)
                mg = rmask[g].reshape(n)
                for e in range(n):
                    dhf[e] += dgf[e] * mg[e]
        else:
            np.dot(recurrent_kernel, dz, dh)
        if has_mask:
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        dh[j, b] = g_h[j, b]
        col = (k - block_start) * R
        for g in range(4 * H):
            dzg = dz[g]
            dbg = dbias[g]
            dst = dz_block[g, col:col + R]
            for b in range(R):
                dst[b] = dzg[b]
                dbg[b] += dzg[b]


@njit(**_JIT)
def _add_leading_grad_outputs(dh, grad_outputs, n_leading):
    # dh: (B, H) += grad_outputs[:, :n_leading].sum(1), in step order
    for b in range(dh.shape[0]):
        for p in range(n_leading):
            for j in range(dh.shape[1]):
                dh[b, j] += grad_outputs[b, p, j]


@njit(**_JIT)
def _scatter_steps(dx_steps, time_index, dx):
    # dx_steps: (Tb*R, D), row k*R + b -> dx: (R, T, D) at the steps' time indices
    R = dx.shape[0]
    for k in range(time_index.shape[0]):
        t = time_index[k]
        for b in range(R):
            dx[b, t] = dx_steps[k * R + b]


@njit(**_JIT)
def _scatter_masked_steps(dxg, time_index, mask_rd, dx):
    # dxg: (G, Tb*R, D) gate g's share of dx, step k's row b at k*R + b; mask_rd: (G, R, D)
    # the input dropout masks -> dx: (R, T, D) at the steps' time indices = the sum over g
    # of dxg[g] * mask_rd[g], in gate order
    G = dxg.shape[0]
    R = dx.shape[0]
    D = dx.shape[2]
    for k in range(time_index.shape[0]):
        t = time_index[k]
        for b in range(R):
            o = dx[b, t]
            row = k * R + b
            s0 = dxg[0, row]
            m0 = mask_rd[0, b]
            for d in range(D):
                o[d] = s0[d] * m0[d]
            for g in range(1, G):
                sg = dxg[g, row]
                mg = mask_rd[g, b]
                for d in range(D):
                    o[d] += sg[d] * mg[d]


def _backward_block(block, kernel, recurrent_kernel, step_pos, step_end, time_index,
                    grad_outputs, dh, dc, dx, u_parts=None):
    # One block of R rows: dh, dc (R, H) in/out; dx (R, T, D) written at the active steps
    # -> (dkernel, drecurrent_kernel, dbias) of this block. u_parts: (4, H, H) the
    # recurrent kernel's gate blocks (needed with recurrent dropout masks)
    x_t, gates, h_cols, cs = block["x_t"], block["gates"], block["h_cols"], block["cs"]
    imask, rmask = block.get("imask"), block.get("rmask")
    Ta, _, R = gates.shape
    D = kernel.shape[0]
    H = cs.shape[1]
    dtype = gates.dtype
    has_grad_outputs = grad_outputs is not None
    gout = grad_outputs if has_grad_outputs else np.zeros((1, 1, 1), dtype=dtype)
    dh_t = np.ascontiguousarray(dh.T)
    dc_t = np.ascontiguousarray(dc.T)
    dbias = np.zeros((4 * H, R), dtype=dtype)
    dkernel_t = np.zeros((4 * H, D), dtype=dtype)
    drecurrent_t = np.zeros((4 * H, H), dtype=dtype)
    dkernel_part = np.empty_like(dkernel_t)
    drecurrent_part = np.empty_like(drecurrent_t)
    scratch = [np.empty((H, R), dtype=dtype) for _ in range(3)]
    dz = np.empty((4 * H, R), dtype=dtype)
    has_rmask = rmask is not None
    if has_rmask:
        rmask_arg, u_arg, dhg = rmask, u_parts, np.empty((H, R), dtype=dtype)
    else:
        rmask_arg = np.empty((1, 1, 1), dtype=dtype)
        u_arg = np.empty((1, 1, 1), dtype=dtype)
        dhg = np.empty((1, 1), dtype=dtype)
    # blocks of steps, last to first: the steps collect their dz, and the block's share of
    # dkernel, drecurrent_kernel and dx follows as three GEMMs while dz is in cache
    # (with dropout masks half the steps: a gate's masked h and the gates' dx shares come
    # on top of dz; measured on one thread at R=16, H=100, T=500: 0.95x the backward's time
    # with the full block; the same at H=256)
    masked = imask is not None or rmask is not None
    block_steps = _steps_per_block(Ta, R, (8 if masked else 4) * H)
    dz_buffer = np.empty(4 * H * block_steps * R, dtype=dtype)
    dx_buffer = np.empty((4 if imask is not None else 1) * block_steps * R * D, dtype=dtype)
    masked_buffer = np.empty(max(D, H) * block_steps * R if masked else 0, dtype=dtype)
    x_rows, h_rows = block["x_rows"], block["h_rows"]
    # the recurrent masks row-major (4, R, H), as h_rows
    rmask_rows = np.ascontiguousarray(rmask.transpose(0, 2, 1)) if has_rmask else None
    kernel_t = kernel.T
    for k1 in range(Ta, 0, -block_steps):
        k0 = max(0, k1 - block_steps)
        cols = (k1 - k0) * R
        dz_block = dz_buffer[:4 * H * cols].reshape(4 * H, cols)
        _backward_steps(k0, k1, k0, gates, cs, recurrent_kernel, block["mask_tm"],
                        block["has_mask"], step_pos, step_end, gout, has_grad_outputs, dh_t,
                        dc_t, dbias, dz_block, dz, *scratch, u_arg, rmask_arg, has_rmask, dhg)
        if imask is None:
            dx_steps = dx_buffer[:cols * D].reshape(cols, D)
            np.matmul(dz_block, x_t[:, k0:k1].reshape(D, cols).T, out=dkernel_part)
            np.matmul(dz_block.T, kernel_t, out=dx_steps)
        else:
            # every gate read its own dropped-out inputs; dx sums the gates' shares through
            # their masks
            dxg = dx_buffer[:4 * cols * D].reshape(4, cols, D)
            xm = masked_buffer[:cols * D].reshape(cols, D)
            for g in range(4):
                rows = slice(g * H, (g + 1) * H)
                _masked_rows(x_rows, k0, k1, imask[g], xm)
                np.matmul(dz_block[rows], xm, out=dkernel_part[rows])
                np.matmul(dz_block[rows].T, kernel_t[rows], out=dxg[g])
        dkernel_t += dkernel_part
        if has_rmask:
            # gate g's recurrent GEMM read h * rmask[g]
            hm = masked_buffer[:cols * H].reshape(cols, H)
            for g in range(4):
                rows = slice(g * H, (g + 1) * H)
                _masked_rows(h_rows, k0, k1, rmask_rows[g], hm)
                np.matmul(dz_block[rows], hm, out=drecurrent_part[rows])
        else:
            np.matmul(dz_block, h_cols[:, k0:k1].reshape(H, cols).T, out=drecurrent_part)
        drecurrent_t += drecurrent_part
        if imask is None:
            _scatter_steps(dx_steps, time_index[k0:k1], dx)
        else:
            _scatter_masked_steps(dxg, time_index[k0:k1], imask, dx)
    dh[:] = dh_t.T
    dc[:] = dc_t.T
    if has_grad_outputs:
        _add_leading_grad_outputs(dh, gout, int(step_pos[0]) if Ta else gout.shape[1])
    return dkernel_t.T, drecurrent_t.T, dbias.sum(axis=1)


def lstm_backward(cache, grad_outputs, grad_h_last, grad_c_last, has_bias, n_threads=1,
                  serial_blas=contextlib.nullcontext):
    # grad_outputs: (B, T, H) or None, grad_h_last, grad_c_last: (B, H) or None
    # -> dx: (B, T, D), dkernel: (D, 4H), drecurrent_kernel: (H, 4H), dbias: (4H,) or None,
    #    dh0, dc0: (B, H)
    B, T, D, H = cache["shape"]
    dtype = cache["dtype"]
    bounds = cache["row_bounds"]
    blocks = cache["blocks"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    step_pos, step_end, time_index = cache["step_pos"], cache["step_end"], cache["time_index"]
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.copy()
    dc = np.zeros((B, H), dtype=dtype) if grad_c_last is None else grad_c_last.copy()
    Ta = step_pos.size
    dx = np.zeros((B, T, D), dtype=dtype) if Ta < T else np.empty((B, T, D), dtype=dtype)
    partials = [None] * len(blocks)
    # with recurrent dropout: the recurrent kernel's gate blocks, each contiguous (H, H)
    u_parts = None
    if any(block is not None and block.get("rmask") is not None for block in blocks):
        u_parts = np.ascontiguousarray(recurrent_kernel.reshape(H, 4, H).transpose(1, 0, 2))

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        gout = None if grad_outputs is None else grad_outputs[b0:b1]
        partials[c] = _backward_block(blocks[c], kernel, recurrent_kernel, step_pos, step_end,
                                      time_index, gout, dh[b0:b1], dc[b0:b1], dx[b0:b1],
                                      u_parts)

    dkernel = np.zeros((D, 4 * H), dtype=dtype)
    drecurrent_kernel = np.zeros((H, 4 * H), dtype=dtype)
    dbias = np.zeros(4 * H, dtype=dtype)
    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(len(blocks))], n_threads)
        # the blocks' partial sums, added in block order: the same for any thread count
        for dk, drk, db in partials:
            dkernel += dk
            drecurrent_kernel += drk
            dbias += db
    return dx, dkernel, drecurrent_kernel, (dbias if has_bias else None), dh, dc
