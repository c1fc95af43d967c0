"""Numba kernels: the GRU forward and backward through time, one fused pass per step.

Keras 3's cell (gates z, r, h; tanh; sigmoid recurrent activation; ``reset_after`` either
way), its implementation-1 dropout (per-gate masks fixed for the sequence) and its masking
semantics, see :mod:`fastseq._kernels.reference.gru`. The public wrappers with the input
checks are in :mod:`fastseq._api.gru`; the functions here trust their inputs (C-contiguous,
one float dtype, consistent shapes). No fastseq imports, no global state.

The work is shaped as the LSTM's (:mod:`fastseq._kernels.lstm`, whose activations and
block helpers this module uses):

* Steps masked for the whole batch are dropped up front; the Ta active steps run in
  processing order.
* The batch runs in independent blocks of R rows, one thread each, every block with its own
  single-threaded BLAS calls; the blocking depends only on the shapes, the blocks' weight
  gradients are added in block order: results are bitwise the same for any thread count.
* Inside a block the layout is feature-major: a step's state is (H, R), its gates (3H, R).
* Forward: per block of steps one GEMM for the input projection (one per gate with input
  dropout masks), then per step the recurrent GEMM ``recurrent_kernel.T (3H, H) @ h (H, R)``
  (reset_after=False: ``(2H, H) @ h`` for z and r, then ``(H, H) @ (r * h)`` for h; with
  recurrent dropout masks one GEMM per gate on its dropped-out h) and one fused pass for
  the nonlinearities and the state update.
* Backward: per step one fused pass for the gate gradients and the recurrent GEMM
  ``(H, 3H) @ da (3H, R)`` (reset_after=False: ``U_h @ da_h`` first, whose result the reset
  gate's gradient needs, then ``(H, 2H) @ (da_z, da_r)``); per block of steps dkernel,
  drecurrent_kernel and dx as large GEMMs while that block's gradients are in cache. dbias
  is summed in the fused pass.

Gradient rows, per step (R columns each): reset_after=True: (du_h, da_z, da_r, da_h), where
du_h = da_h * r is the gradient of h @ U_h + b_rec_h; rows 0:3H feed the recurrent GEMMs
(recurrent_kernel's columns taken in the order h, z, r) and rows H:4H the input-side ones
(kernel's order z, r, h). reset_after=False: (da_z, da_r, da_h) for both sides.
"""
import contextlib

import numpy as np
from numba import njit

from ._forkjoin import run_tasks
from .lstm import (
    _JIT,
    _active_steps,
    _add_leading_grad_outputs,
    _fill_leading_outputs,
    _inputs_feature_major,
    _row_bounds,
    _scatter_steps,
    _sigmoid,
    _steps_per_block,
    _tanh,
)

__all__ = ["gru_forward", "gru_backward"]


# ---------------------------------------------------------------------------------------
# forward

@njit(**_JIT)
def _forward_steps(xw, k_begin, k_end, block_start, bias_x, bias_u, recurrent_kernel_t,
                   reset_after, rmask, has_rmask, hs, gates, h_cols, rh_cols, store,
                   mask_tm, has_mask, step_pos, step_end, outputs, hu, hm):
    # Steps k_begin..k_end-1 of a block of R batch rows, feature-major.
    # xw: (3H, Tb*R) input projections of the steps block_start.., step k in columns
    # (k - block_start)*R..; bias_x: (3H,) added to them (z, r: input + recurrent bias;
    # h: input bias); bias_u: (H,) the h gate's recurrent bias (reset_after);
    # recurrent_kernel_t: (3H, H); rmask: (3, H, R) recurrent dropout masks (has_rmask);
    # hs: (2, H, R) alternating; gates: (G, 3H or 4H, R) z, r, hh (and u = h @ U_h + b_rec_h
    # when reset_after) of step k in slot k % G (G = Ta: the cache, 1: scratch);
    # h_cols: (H, Ta + 1, R) h before each step, rh_cols: (H, Ta, R) the h gate's GEMM input
    # r * h (reset_after=False), both written when store; mask_tm: (T, R) in processing
    # order; step_pos, step_end: (Ta,) -> outputs: (R, T, H).
    # hu: (3H, R), hm: (3, H, R) scratch.
    H = hs.shape[1]
    R = hs.shape[2]
    n = H * R
    n_gates = gates.shape[0]
    n_rec = 3 if reset_after else 2  # the gates whose recurrent GEMM reads h itself
    for k in range(k_begin, k_end):
        h_prev = hs[k % 2]
        h_new = hs[(k + 1) % 2]
        gk = gates[k % n_gates]
        col = (k - block_start) * R
        hp = h_prev.reshape(n)
        if has_rmask:
            for g in range(n_rec):
                hmg = hm[g].reshape(n)
                rmg = rmask[g].reshape(n)
                for e in range(n):
                    hmg[e] = hp[e] * rmg[e]
                np.dot(recurrent_kernel_t[g * H:(g + 1) * H], hm[g], hu[g * H:(g + 1) * H])
        else:
            np.dot(recurrent_kernel_t[:n_rec * H], h_prev, hu[:n_rec * H])
        # z and r
        for g in range(2 * H):
            bg = bias_x[g]
            xg = xw[g, col:col + R]
            hg = hu[g]
            out = gk[g]
            for b in range(R):
                out[b] = _sigmoid(xg[b] + hg[b] + bg)
        gr = gk[H:2 * H].reshape(n)
        if reset_after:
            # hh = tanh(x_h + r * u), u = h @ U_h + b_rec_h kept for the backward
            for j in range(H):
                bx = bias_x[2 * H + j]
                bu = bias_u[j]
                xg = xw[2 * H + j, col:col + R]
                ug = hu[2 * H + j]
                rg = gk[H + j]
                uo = gk[3 * H + j]
                for b in range(R):
                    uo[b] = ug[b] + bu
                cg = gk[2 * H + j]
                for b in range(R):
                    cg[b] = _tanh(xg[b] + bx + rg[b] * uo[b])
        else:
            # hh = tanh(x_h + (r * h_h) @ U_h), h_h = h (dropped out with masks)
            rh = hm[2]
            rhf = rh.reshape(n)
            if has_rmask:
                rmh = rmask[2].reshape(n)
                for e in range(n):
                    rhf[e] = gr[e] * (hp[e] * rmh[e])
            else:
                for e in range(n):
                    rhf[e] = gr[e] * hp[e]
            np.dot(recurrent_kernel_t[2 * H:], rh, hu[2 * H:])
            for j in range(H):
                bx = bias_x[2 * H + j]
                xg = xw[2 * H + j, col:col + R]
                ug = hu[2 * H + j]
                cg = gk[2 * H + j]
                for b in range(R):
                    cg[b] = _tanh(xg[b] + bx + ug[b])
            if store:
                for j in range(H):
                    rh_cols[j, k] = rh[j]
        # h = z * h + (1 - z) * hh over the whole (H, R) block
        gz = gk[:H].reshape(n)
        gc = gk[2 * H:3 * H].reshape(n)
        hn = h_new.reshape(n)
        for e in range(n):
            c = gc[e]
            hn[e] = c + gz[e] * (hp[e] - c)
        p0 = step_pos[k]
        p1 = step_end[k]
        if has_mask:
            # masked rows keep their state (their gates are never read back)
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        h_new[j, b] = h_prev[j, b]
        # the output at p0, and at the whole-batch-masked steps after it, is this state
        for b in range(R):
            for p in range(p0, p1):
                ob = outputs[b, p]
                for j in range(H):
                    ob[j] = h_new[j, b]
        if store:
            for j in range(H):
                h_cols[j, k + 1] = h_new[j]


@njit(**_JIT)
def _masked_columns(src, k0, k1, mask, out):
    # src: (F, S, R), mask: (F, R) -> out: (F, (k1 - k0) * R) = src[:, k0:k1] * mask,
    # a gate's dropped-out inputs (or h) over a block of steps
    for f in range(src.shape[0]):
        m = mask[f]
        for k in range(k0, k1):
            s = src[f, k]
            o = out[f, (k - k0) * src.shape[2]:(k - k0 + 1) * src.shape[2]]
            for b in range(src.shape[2]):
                o[b] = s[b] * m[b]


def _forward_block(x, kernel_t, recurrent_kernel_t, bias_x, bias_u, reset_after, h0, mask_tm,
                   step_pos, step_end, time_index, training, outputs, imask, rmask):
    # One block of R rows. x: (R, T, D), h0: (R, H), mask_tm: (T, R) or None, imask:
    # (3, D, R) or None, rmask: (3, H, R) or None -> outputs: (R, T, H) written; returns
    # (h_last, cache or None)
    R, T, D = x.shape
    H = recurrent_kernel_t.shape[1]
    Ta = step_pos.size
    dtype = x.dtype
    x_t = np.empty((D, Ta, R), dtype=dtype)
    _inputs_feature_major(x, time_index, x_t)
    has_mask = mask_tm is not None and not mask_tm[step_pos].all()
    mask_arg = mask_tm if has_mask else np.ones((1, 1), dtype=np.bool_)
    has_rmask = rmask is not None
    rmask_arg = rmask if has_rmask else np.empty((1, 1, 1), dtype=dtype)
    hs = np.empty((2, H, R), dtype=dtype)
    hs[0] = h0.T
    if training:
        h_cols = np.empty((H, Ta + 1, R), dtype=dtype)
        h_cols[:, 0] = h0.T
    else:
        h_cols = np.empty((1, 1, 1), dtype=dtype)
    store_rh = training and not reset_after
    rh_cols = np.empty((H, Ta, R) if store_rh else (1, 1, 1), dtype=dtype)
    # the training cache keeps every step's activations; inference needs one step's
    gates = np.empty((Ta if training else 1, (4 if reset_after else 3) * H, R), dtype=dtype)
    hu = np.empty((3 * H, R), dtype=dtype)
    hm = np.empty((3, H, R), dtype=dtype)
    # the input projection, one GEMM per block of steps (one per gate with input dropout):
    # the block stays in cache until the steps read it
    block = _steps_per_block(Ta, R, 3 * H)
    xw_buffer = np.empty(3 * H * block * R, dtype=dtype)
    xm_buffer = np.empty(D * block * R if imask is not None else 0, dtype=dtype)
    for k0 in range(0, Ta, block):
        k1 = min(Ta, k0 + block)
        cols = (k1 - k0) * R
        xw = xw_buffer[:3 * H * cols].reshape(3 * H, cols)
        if imask is None:
            np.matmul(kernel_t, x_t[:, k0:k1].reshape(D, cols), out=xw)
        else:
            xm = xm_buffer[:D * cols].reshape(D, cols)
            for g in range(3):
                _masked_columns(x_t, k0, k1, imask[g], xm)
                np.matmul(kernel_t[g * H:(g + 1) * H], xm, out=xw[g * H:(g + 1) * H])
        _forward_steps(xw, k0, k1, k0, bias_x, bias_u, recurrent_kernel_t, reset_after,
                       rmask_arg, has_rmask, hs, gates, h_cols, rh_cols, training, mask_arg,
                       has_mask, step_pos, step_end, outputs, hu, hm)
    h_last = hs[Ta % 2].T
    if not training:
        return h_last, None
    block_cache = {"x_t": x_t, "gates": gates, "h_cols": h_cols, "rh_cols": rh_cols,
                   "mask_tm": mask_arg, "has_mask": has_mask, "imask": imask, "rmask": rmask}
    return h_last, block_cache


def _biases(bias, H, reset_after, dtype):
    """(bias_x (3H,): added to the input projections, with the recurrent bias of z and r
    folded in; bias_u (H,): the h gate's recurrent bias, inside r * (...))"""
    bias_u = np.zeros(H, dtype=dtype)
    if bias is None:
        return np.zeros(3 * H, dtype=dtype), bias_u
    if not reset_after:
        return np.ascontiguousarray(bias), bias_u
    bias_x = bias[0].copy()
    bias_x[:2 * H] += bias[1, :2 * H]
    bias_u[:] = bias[1, 2 * H:]
    return bias_x, bias_u


def gru_forward(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards, training,
                reset_after=True, input_masks=None, recurrent_masks=None, row_blocks=1,
                n_threads=1, serial_blas=contextlib.nullcontext):
    # x: (B, T, D), kernel: (D, 3H), recurrent_kernel: (H, 3H), bias: (2, 3H) (reset_after)
    # or (3H,) or None, h0: (B, H), mask: (B, T) bool or None, input_masks: (3, B, D) or
    # None, recurrent_masks: (3, B, H) or None -> outputs: (B, T, H), h_last: (B, H), cache.
    # The batch runs as row_blocks independent blocks of rows on n_threads threads;
    # serial_blas() is a context in which the BLAS keeps to the calling thread.
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    mask_tm, step_pos, step_end, time_index = _active_steps(mask, T, go_backwards)
    Ta = step_pos.size
    outputs = np.empty((B, T, H), dtype=dtype)
    _fill_leading_outputs(outputs, h0, int(step_pos[0]) if Ta else T)
    h_last = np.empty((B, H), dtype=dtype)
    bias_x, bias_u = _biases(bias, H, reset_after, dtype)
    kernel_t = kernel.T
    recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    bounds = _row_bounds(B, row_blocks)
    n_blocks = bounds.size - 1
    block_caches = [None] * n_blocks

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        block_mask = None if mask_tm is None else np.ascontiguousarray(mask_tm[:, b0:b1])
        # the blocks' dropout masks, feature-major: (3, D, R) and (3, H, R)
        imask = None if input_masks is None else \
            np.ascontiguousarray(input_masks[:, b0:b1].transpose(0, 2, 1))
        rmask = None if recurrent_masks is None else \
            np.ascontiguousarray(recurrent_masks[:, b0:b1].transpose(0, 2, 1))
        h_last[b0:b1], block_caches[c] = _forward_block(
            x[b0:b1], kernel_t, recurrent_kernel_t, bias_x, bias_u, reset_after, h0[b0:b1],
            block_mask, step_pos, step_end, time_index, training, outputs[b0:b1], imask,
            rmask)

    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(n_blocks)], n_threads)
    if not training:
        return outputs, h_last, None
    # the weights as they were (an optimizer may update them in place before the backward)
    cache = {"blocks": block_caches, "row_bounds": bounds, "step_pos": step_pos,
             "step_end": step_end, "time_index": time_index, "kernel": kernel.copy(),
             "recurrent_kernel": recurrent_kernel.copy(), "reset_after": reset_after,
             "shape": (B, T, D, H), "dtype": dtype}
    return outputs, h_last, cache


# ---------------------------------------------------------------------------------------
# backward

@njit(**_JIT)
def _backward_steps(k_begin, k_end, block_start, gates, h_cols, reset_after, u_main, u_parts,
                    rmask, has_rmask, mask_tm, has_mask, step_pos, step_end, grad_outputs,
                    has_grad_outputs, dh, dbias, dz_block, dz, g_h, direct, dhg):
    # Steps k_end-1 down to k_begin of a block of R rows, feature-major as the forward.
    # gates: (Ta, 4H or 3H, R) z, r, hh (, u); h_cols: (H, Ta + 1, R);
    # u_main: (H, W) the recurrent GEMM's matrix, recurrent_kernel's columns in the order of
    # the gradient rows (reset_after: h, z, r with W = 3H; otherwise z, r with W = 2H);
    # u_parts: (3, H, H) recurrent_kernel's gate blocks in the order of the gradient rows
    # (reset_after: h, z, r; otherwise z, r, h); rmask: (3, H, R) the recurrent dropout
    # masks in the same order; grad_outputs: (R, T, H); dh: (H, R), in: the gradient of the
    # state after step k_end-1, out: before step k_begin; dbias: (4H or 3H, R) += dz.
    # -> dz_block: (4H or 3H, (k_end - block_start) * R), the gradient rows of step k in
    # columns (k - block_start)*R...
    # dz: (4H or 3H, R), g_h, direct: (H, R), dhg: (3, H, R) scratch.
    H = g_h.shape[0]
    R = g_h.shape[1]
    n = H * R
    width = dz.shape[0]
    # the gradient rows: reset_after (du_h, da_z, da_r, da_h), otherwise (da_z, da_r, da_h)
    oz = H if reset_after else 0
    o_r = oz + H
    oh = o_r + H
    n_rec = 3 if reset_after else 2
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
        # (few arrays per loop: with more, LLVM's runtime overlap checks exceed their budget
        # and it does not vectorize)
        # da_z = g * (h - hh) * z * (1 - z); h before the step is a column of h_cols
        for j in range(H):
            hp = h_cols[j, k]
            gj = g_h[j]
            zj = gk[j]
            cj = gk[2 * H + j]
            out = dz[oz + j]
            for b in range(R):
                d = gj[b] * (hp[b] - cj[b])
                zb = zj[b]
                out[b] = d * zb - d * zb * zb
        gz = gk[:H].reshape(n)
        gr = gk[H:2 * H].reshape(n)
        gc = gk[2 * H:3 * H].reshape(n)
        gh = g_h.reshape(n)
        dr_ = direct.reshape(n)
        da_h = dz[oh:oh + H].reshape(n)
        da_r = dz[o_r:o_r + H].reshape(n)
        # da_h = g * (1 - z) * (1 - hh^2); the update's own path to h: g * z
        for e in range(n):
            t = gh[e] - gh[e] * gz[e]
            c = gc[e]
            da_h[e] = t - t * c * c
            dr_[e] = gh[e] * gz[e]
        if reset_after:
            # du_h = da_h * r, da_r = da_h * u * r * (1 - r)
            du = dz[:H].reshape(n)
            gu = gk[3 * H:].reshape(n)
            for e in range(n):
                du[e] = da_h[e] * gr[e]
            for e in range(n):
                q = da_h[e] * gu[e]
                r = gr[e]
                da_r[e] = q * r - q * r * r
            if has_mask:
                for b in range(R):
                    if not mask_tm[p0, b]:
                        for g in range(width):
                            dz[g, b] = 0
        else:
            if has_mask:
                # masked rows: no gradient into the gates (da_r follows from da_h)
                for b in range(R):
                    if not mask_tm[p0, b]:
                        for g in range(width):
                            dz[g, b] = 0
            # d(r * h_h) = U_h @ da_h, needed before the reset gate's gradient
            d_rh = dhg[2]
            np.dot(u_parts[2], dz[oh:oh + H], d_rh)
            drh = d_rh.reshape(n)
            if has_rmask:
                # h_h = h * m_h: da_r = d_rh * h_h * r * (1 - r), direct += d_rh * r * m_h
                rmh = rmask[2].reshape(n)
                for e in range(n):
                    drh[e] = drh[e] * rmh[e]
            for j in range(H):
                hp = h_cols[j, k]
                dj = d_rh[j]
                rj = gk[H + j]
                out = dz[o_r + j]
                for b in range(R):
                    q = dj[b] * hp[b]
                    r = rj[b]
                    out[b] = q * r - q * r * r
            for e in range(n):
                dr_[e] += drh[e] * gr[e]
        # the recurrent GEMM(s): dh = direct + U @ (gradient rows of the gates reading h)
        if has_rmask:
            for g in range(n_rec):
                np.dot(u_parts[g], dz[g * H:(g + 1) * H], dhg[g])
            for g in range(n_rec):
                dg = dhg[g].reshape(n)
                mg = rmask[g].reshape(n)
                for e in range(n):
                    dr_[e] += dg[e] * mg[e]
            dh[:] = direct
        else:
            np.dot(u_main, dz[:n_rec * H], dh)
            dhf = dh.reshape(n)
            for e in range(n):
                dhf[e] += dr_[e]
        if has_mask:
            # masked rows: the state passed through, and so does its gradient
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        dh[j, b] = g_h[j, b]
        col = (k - block_start) * R
        for g in range(width):
            dzg = dz[g]
            dbg = dbias[g]
            dst = dz_block[g, col:col + R]
            for b in range(R):
                dst[b] = dzg[b]
                dbg[b] += dzg[b]


def _backward_block(block, kernel_t, u_main, u_parts, reset_after, step_pos, step_end,
                    time_index, grad_outputs, dh, dx):
    # One block of R rows: dh (R, H) in/out; dx (R, T, D) written at the active steps
    # -> (dkernel_t (3H, D), drecurrent_t (3H, H) in the gradient rows' gate order, dbias
    # (4H or 3H,) in that order) of this block
    x_t, gates, h_cols, rh_cols = block["x_t"], block["gates"], block["h_cols"], block["rh_cols"]
    imask, rmask = block["imask"], block["rmask"]
    D, Ta, R = x_t.shape
    H = h_cols.shape[0]
    dtype = x_t.dtype
    width = (4 if reset_after else 3) * H
    x_rows = slice(H, 4 * H) if reset_after else slice(0, 3 * H)  # da_z, da_r, da_h
    has_grad_outputs = grad_outputs is not None
    gout = grad_outputs if has_grad_outputs else np.zeros((1, 1, 1), dtype=dtype)
    has_rmask = rmask is not None
    # the recurrent masks in the gradient rows' gate order
    order = (2, 0, 1) if reset_after else (0, 1, 2)
    rmask_rows = rmask[list(order)] if has_rmask else np.empty((1, 1, 1), dtype=dtype)
    dh_t = np.ascontiguousarray(dh.T)
    dbias = np.zeros((width, R), dtype=dtype)
    dkernel_t = np.zeros((3 * H, D), dtype=dtype)
    drecurrent_t = np.zeros((3 * H, H), dtype=dtype)
    dkernel_part = np.empty_like(dkernel_t)
    drecurrent_part = np.empty_like(drecurrent_t)
    g_h = np.empty((H, R), dtype=dtype)
    direct = np.empty((H, R), dtype=dtype)
    dhg = np.empty((3, H, R), dtype=dtype)
    dz = np.empty((width, R), dtype=dtype)
    # blocks of steps, last to first: the steps collect their gradient rows, and the block's
    # share of dkernel, drecurrent_kernel and dx follows as GEMMs while they are in cache
    block_steps = _steps_per_block(Ta, R, width)
    dz_buffer = np.empty(width * block_steps * R, dtype=dtype)
    dx_buffer = np.empty(block_steps * R * D, dtype=dtype)
    masked_buffer = np.empty(max(D, H) * block_steps * R if imask is not None or has_rmask
                             else 0, dtype=dtype)
    dx_gate = np.empty(block_steps * R * D if imask is not None else 0, dtype=dtype)
    for k1 in range(Ta, 0, -block_steps):
        k0 = max(0, k1 - block_steps)
        steps = k1 - k0
        cols = steps * R
        dz_block = dz_buffer[:width * cols].reshape(width, cols)
        _backward_steps(k0, k1, k0, gates, h_cols, reset_after, u_main, u_parts, rmask_rows,
                        has_rmask, block["mask_tm"], block["has_mask"], step_pos, step_end,
                        gout, has_grad_outputs, dh_t, dbias, dz_block, dz, g_h, direct, dhg)
        dz_x = dz_block[x_rows]
        dx_steps = dx_buffer[:cols * D].reshape(cols, D)
        if imask is None:
            np.matmul(dz_x, x_t[:, k0:k1].reshape(D, cols).T, out=dkernel_part)
            np.matmul(dz_x.T, kernel_t, out=dx_steps)
        else:
            # every gate read its own dropped-out inputs
            xm = masked_buffer[:D * cols].reshape(D, cols)
            dxg = dx_gate[:cols * D].reshape(steps, R, D)
            for g in range(3):
                rows = slice(g * H, (g + 1) * H)
                _masked_columns(x_t, k0, k1, imask[g], xm)
                np.matmul(dz_x[rows], xm.T, out=dkernel_part[rows])
                np.matmul(dz_x[rows].T, kernel_t[rows], out=dxg.reshape(cols, D))
                dxg *= imask[g].T
                if g == 0:
                    dx_steps[:] = dxg.reshape(cols, D)
                else:
                    dx_steps += dxg.reshape(cols, D)
        dkernel_t += dkernel_part
        _scatter_steps(dx_steps, time_index[k0:k1], dx)
        # drecurrent_kernel, rows in the gradient rows' order: each gate's GEMM read h (its
        # dropped-out h with masks); reset_after=False's h gate read r * h_h
        h_block = h_cols[:, k0:k1].reshape(H, cols)
        n_rec = 3 if reset_after else 2
        if has_rmask:
            hm = masked_buffer[:H * cols].reshape(H, cols)
            for g in range(n_rec):
                rows = slice(g * H, (g + 1) * H)
                _masked_columns(h_cols, k0, k1, rmask_rows[g], hm)
                np.matmul(dz_block[rows], hm.T, out=drecurrent_part[rows])
        else:
            np.matmul(dz_block[:n_rec * H], h_block.T, out=drecurrent_part[:n_rec * H])
        if not reset_after:
            np.matmul(dz_block[2 * H:], rh_cols[:, k0:k1].reshape(H, cols).T,
                      out=drecurrent_part[2 * H:])
        drecurrent_t += drecurrent_part
    dh[:] = dh_t.T
    if has_grad_outputs:
        _add_leading_grad_outputs(dh, gout, int(step_pos[0]) if Ta else gout.shape[1])
    return dkernel_t, drecurrent_t, dbias.sum(axis=1)


def gru_backward(cache, grad_outputs, grad_h_last, has_bias, n_threads=1,
                 serial_blas=contextlib.nullcontext):
    # grad_outputs: (B, T, H) or None, grad_h_last: (B, H) or None
    # -> dx: (B, T, D), dkernel: (D, 3H), drecurrent_kernel: (H, 3H), dbias: (2, 3H)
    #    (reset_after) or (3H,) or None, dh0: (B, H)
    B, T, D, H = cache["shape"]
    dtype = cache["dtype"]
    reset_after = cache["reset_after"]
    bounds = cache["row_bounds"]
    blocks = cache["blocks"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    step_pos, step_end, time_index = cache["step_pos"], cache["step_end"], cache["time_index"]
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.copy()
    Ta = step_pos.size
    dx = np.zeros((B, T, D), dtype=dtype) if Ta < T else np.empty((B, T, D), dtype=dtype)
    # recurrent_kernel's gate blocks in the order of the gradient rows
    order = (2, 0, 1) if reset_after else (0, 1, 2)
    u_parts = np.stack([recurrent_kernel[:, g * H:(g + 1) * H] for g in order])
    n_rec = 3 if reset_after else 2
    u_main = np.ascontiguousarray(np.concatenate(list(u_parts[:n_rec]), axis=1))
    kernel_t = kernel.T
    partials = [None] * len(blocks)

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        gout = None if grad_outputs is None else grad_outputs[b0:b1]
        partials[c] = _backward_block(blocks[c], kernel_t, u_main, u_parts, reset_after,
                                      step_pos, step_end, time_index, gout, dh[b0:b1],
                                      dx[b0:b1])

    dkernel_t = np.zeros((3 * H, D), dtype=dtype)
    drecurrent_rows = np.zeros((3 * H, H), dtype=dtype)
    dbias_rows = np.zeros((4 if reset_after else 3) * H, dtype=dtype)
    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(len(blocks))], n_threads)
        # the blocks' partial sums, added in block order: the same for any thread count
        for dk, drk, db in partials:
            dkernel_t += dk
            drecurrent_rows += drk
            dbias_rows += db
    if reset_after:
        # rows (h, z, r) -> (z, r, h)
        drecurrent_t = np.concatenate([drecurrent_rows[H:], drecurrent_rows[:H]])
    else:
        drecurrent_t = drecurrent_rows
    dbias = None
    if has_bias:
        if reset_after:
            # rows (du_h, da_z, da_r, da_h): input bias (da_z, da_r, da_h), recurrent bias
            # (da_z, da_r, du_h)
            dbias = np.stack([dbias_rows[H:],
                              np.concatenate([dbias_rows[H:3 * H], dbias_rows[:H]])])
        else:
            dbias = dbias_rows
    return (dx, np.ascontiguousarray(dkernel_t.T), np.ascontiguousarray(drecurrent_t.T),
            dbias, dh)
