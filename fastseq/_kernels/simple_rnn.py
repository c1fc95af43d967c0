"""Numba kernels: the SimpleRNN forward and backward through time, one fused pass per step.

Keras's cell ``h = activation(x_t @ kernel + bias + (h_prev * recurrent_mask) @
recurrent_kernel)``, its dropout masks (one per sequence, for every step) and the RNN's
masking semantics, see :mod:`fastseq._kernels.reference.simple_rnn`. The public wrappers
with the input checks are in :mod:`fastseq._api.simple_rnn`; the functions here trust their
inputs (C-contiguous, one float dtype, consistent shapes). No fastseq imports above
``_kernels``, no global state.

The shape of the work is the LSTM's (:mod:`fastseq._kernels.lstm`, whose activations and
helpers this module reuses), with one gate instead of four:

* Steps masked for the whole batch are dropped up front; the Ta active steps run in
  processing order.
* The batch runs in independent blocks of R rows, one thread each, every block with its own
  single-threaded BLAS calls. The blocking depends only on the shapes and the caller's
  ``row_blocks``; the blocks' weight gradients are added in block order: results are
  bitwise the same for any number of threads.
* Feature-major blocks: a step's state is (H, R), its GEMM ``recurrent_kernel.T (H, H) @
  h (H, R)``, and the element-wise loops run over whole (H, R) blocks.
* Forward: per block of steps one GEMM for the input projection (sized to stay in cache),
  then per step the small GEMM and one fused pass (bias, activation, mask, outputs). The
  activation's derivative is a function of its output, so the cache holds the inputs and
  the states only: (D + H) * B * Ta + B * H values.
* Backward: per step one fused pass (dz = dh * activation'(h), dbias) and one GEMM
  ``recurrent_kernel (H, H) @ dz (H, R)``; per block of steps dkernel, drecurrent_kernel
  and dx as three larger GEMMs while the block's dz is in cache.
* Dropout: the input mask multiplies the inputs once, as they are laid out feature-major
  (the cache keeps the masked inputs, which dkernel needs); the recurrent mask costs one
  multiply of the (H, R) state per step, and one of dh. Without masks neither runs.
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
    _row_bounds,
    _sigmoid,
    _tanh,
)

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "ACTIVATIONS"]

# the activation codes the kernels take
ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2, "linear": 3}
_TANH, _RELU, _SIGMOID, _LINEAR = 0, 1, 2, 3

# Values per block of steps (512 KB in float32, half a core's L2 here): a block's input
# projection (forward), its output gradients and gradients dz (backward) stay in cache
# between the passes that write and read them. (Measured at R = 32, H = 100, T = 500 and
# R = 16, H = 256, T = 100, one thread: 256 KB - 1 MB within 3% of each other, 2 MB up to
# 9% slower, 64 KB up to 13% slower.)
_BLOCK_VALUES = 1 << 17


def _steps_per_block(Ta, R, width):
    # steps whose (width, R) slices together hold about _BLOCK_VALUES values
    return max(1, min(Ta, _BLOCK_VALUES // max(1, R * width)))


# ---------------------------------------------------------------------------------------
# forward

@njit(**_JIT)
def _forward_steps(xw, k_begin, k_end, block_start, bias, recurrent_kernel_t, activation,
                   zero, hs, recurrent_mask_t, has_recurrent_mask, mask_tm, has_mask,
                   step_pos, step_end, outputs, hu, hm):
    # Steps k_begin..k_end-1 of a block of R batch rows, feature-major.
    # xw: (H, Tb*R) input projections of the steps block_start.., step k in columns
    # (k - block_start)*R..; bias: (H,); recurrent_kernel_t: (H, H); activation: code;
    # zero: 0 of the dtype; hs: (S, H, R) the states, h before step k in slot k % S
    # (S = Ta + 1: all of them, the training cache; S = 2: alternating); recurrent_mask_t:
    # (H, R); mask_tm: (T, R) in processing order; step_pos, step_end: (Ta,)
    # -> outputs: (R, T, H). hu, hm: (H, R) scratch.
    # (Each step's state is contiguous: a layout (H, Ta + 1, R) would write and read H rows
    # 4 * (Ta + 1) * R bytes apart every step, in one cache set when that is near a power
    # of two: measured 6.6 of 21 us per step at R = 32, H = 100, T = 500.)
    n_states = hs.shape[0]
    H = hs.shape[1]
    R = hs.shape[2]
    n = H * R
    for k in range(k_begin, k_end):
        h_prev = hs[k % n_states]
        h_new = hs[(k + 1) % n_states]
        if has_recurrent_mask:
            hp = h_prev.reshape(n)
            rm = recurrent_mask_t.reshape(n)
            hmf = hm.reshape(n)
            for e in range(n):
                hmf[e] = hp[e] * rm[e]
            np.dot(recurrent_kernel_t, hm, hu)
        else:
            np.dot(recurrent_kernel_t, h_prev, hu)
        col = (k - block_start) * R
        # bias and activation, one row of R at a time (the branch is outside the loops
        # LLVM vectorizes)
        for j in range(H):
            bj = bias[j]
            xj = xw[j, col:col + R]
            hj = hu[j]
            out = h_new[j]
            if activation == _TANH:
                for b in range(R):
                    out[b] = _tanh(xj[b] + hj[b] + bj)
            elif activation == _RELU:
                for b in range(R):
                    z = xj[b] + hj[b] + bj
                    out[b] = zero if z < zero else z  # NaN passes, as np.maximum
            elif activation == _SIGMOID:
                for b in range(R):
                    out[b] = _sigmoid(xj[b] + hj[b] + bj)
            else:
                for b in range(R):
                    out[b] = xj[b] + hj[b] + bj
        p0 = step_pos[k]
        p1 = step_end[k]
        if has_mask:
            # masked rows keep their state
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


@njit(**_JIT)
def _inputs_feature_major(x, time_index, k0, k1, input_mask, has_input_mask, x_t, slot0):
    # x: (R, T, D), time_index: (Ta,) -> x_t[:, slot0:slot0 + k1 - k0]: (D, k1 - k0, R),
    # the inputs of the active steps k0..k1-1 (times input_mask (R, D) when
    # has_input_mask). Row by row, each row's steps in order: the reads stream through
    # memory and the block of x_t, written just before the projection GEMM reads it, stays
    # in L2.
    D = x_t.shape[0]
    for b in range(x.shape[0]):
        for k in range(k0, k1):
            xb = x[b, time_index[k]]
            s = slot0 + k - k0
            if has_input_mask:
                mb = input_mask[b]
                for d in range(D):
                    x_t[d, s, b] = xb[d] * mb[d]
            else:
                for d in range(D):
                    x_t[d, s, b] = xb[d]


def _forward_block(x, kernel, recurrent_kernel, bias, h0, mask_tm, step_pos, step_end,
                   time_index, training, activation, input_mask, recurrent_mask, outputs):
    # One block of R rows. x: (R, T, D), h0: (R, H), mask_tm: (T, R) or None, input_mask:
    # (R, D) or None, recurrent_mask: (R, H) or None -> outputs: (R, T, H) written;
    # returns (h_last, cache or None)
    R, T, D = x.shape
    H = recurrent_kernel.shape[0]
    Ta = step_pos.size
    dtype = x.dtype
    has_input_mask = input_mask is not None
    input_mask_arg = input_mask if has_input_mask else np.ones((1, 1), dtype=dtype)
    has_mask = mask_tm is not None and not mask_tm[step_pos].all()
    mask_arg = mask_tm if has_mask else np.ones((1, 1), dtype=np.bool_)
    has_recurrent_mask = recurrent_mask is not None
    if has_recurrent_mask:
        recurrent_mask_t = np.ascontiguousarray(recurrent_mask.T)
        hm = np.empty((H, R), dtype=dtype)
    else:
        recurrent_mask_t = hm = np.empty((1, 1), dtype=dtype)
    # the training cache keeps every step's state; inference alternates two
    hs = np.empty((Ta + 1 if training else 2, H, R), dtype=dtype)
    hs[0] = h0.T
    recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    kernel_t = kernel.T
    hu = np.empty((H, R), dtype=dtype)
    zero = dtype.type(0)
    # the input projection, one GEMM per block of steps: the block stays in cache until the
    # steps read it. The training cache keeps all the steps' inputs (dkernel needs them);
    # inference one block of them.
    block = _steps_per_block(Ta, R, H)
    xw_buffer = np.empty(H * block * R, dtype=dtype)
    x_t = np.empty((D, Ta if training else min(Ta, block), R), dtype=dtype)
    for k0 in range(0, Ta, block):
        k1 = min(Ta, k0 + block)
        cols = (k1 - k0) * R
        xw = xw_buffer[:H * cols].reshape(H, cols)
        slot0 = k0 if training else 0
        _inputs_feature_major(x, time_index, k0, k1, input_mask_arg, has_input_mask, x_t,
                              slot0)
        np.matmul(kernel_t, x_t[:, slot0:slot0 + k1 - k0].reshape(D, cols), out=xw)
        _forward_steps(xw, k0, k1, k0, bias, recurrent_kernel_t, activation, zero, hs,
                       recurrent_mask_t, has_recurrent_mask, mask_arg, has_mask, step_pos,
                       step_end, outputs, hu, hm)
    h_last = hs[Ta % hs.shape[0]].T
    if not training:
        return h_last, None
    block_cache = {"x_t": x_t, "hs": hs, "mask_tm": mask_arg, "has_mask": has_mask,
                   "input_mask": input_mask, "recurrent_mask_t": recurrent_mask_t,
                   "has_recurrent_mask": has_recurrent_mask}
    return h_last, block_cache


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0, mask, go_backwards, training,
                       activation, input_mask=None, recurrent_mask=None, row_blocks=1,
                       n_threads=1, serial_blas=contextlib.nullcontext):
    # x: (B, T, D), kernel: (D, H), recurrent_kernel: (H, H), bias: (H,), h0: (B, H),
    # mask: (B, T) bool or None, activation: a code of ACTIVATIONS, input_mask: (B, D) or
    # None, recurrent_mask: (B, H) or None -> outputs: (B, T, H), h_last: (B, H), cache.
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
    bounds = _row_bounds(B, row_blocks)
    n_blocks = bounds.size - 1
    block_caches = [None] * n_blocks

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        block_mask = None if mask_tm is None else np.ascontiguousarray(mask_tm[:, b0:b1])
        h_last[b0:b1], block_caches[c] = _forward_block(
            x[b0:b1], kernel, recurrent_kernel, bias, h0[b0:b1], block_mask, step_pos,
            step_end, time_index, training, activation,
            None if input_mask is None else input_mask[b0:b1],
            None if recurrent_mask is None else recurrent_mask[b0:b1], outputs[b0:b1])

    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(n_blocks)], n_threads)
    if not training:
        return outputs, h_last, None
    # the weights as they were (an optimizer may update them in place before the backward)
    cache = {"blocks": block_caches, "row_bounds": bounds, "step_pos": step_pos,
             "step_end": step_end, "time_index": time_index, "kernel": kernel.copy(),
             "recurrent_kernel": recurrent_kernel.copy(), "shape": (B, T, D, H),
             "dtype": dtype, "activation": activation}
    return outputs, h_last, cache


# ---------------------------------------------------------------------------------------
# backward

@njit(**_JIT)
def _grads_feature_major(grad_outputs, k0, k1, step_pos, step_end, out):
    # grad_outputs: (R, T, H) -> out: (k1 - k0, H, R), slot k - k0: the sum of the output
    # gradients that show the state after step k (its position and the whole-batch-masked
    # steps after it). Row by row, each row's steps in increasing order: the reads stream
    # through memory (out, a block of steps, stays in L2). Read in decreasing k, as the
    # backward's steps run, the R rows (4 * T * H bytes apart) defeat the prefetcher
    # (measured 4.9 vs 1.1 us per step at R = 32, T = 500, H = 100); row by row, this pass
    # took 1.8-1.9 ms of a block's backward against 2.3-2.7 step by step (one thread, in
    # place, R = 32, T = 500, H = 100).
    R = out.shape[2]
    H = out.shape[1]
    for b in range(R):
        for k in range(k0, k1):
            o = out[k - k0]
            p0 = step_pos[k]
            gp = grad_outputs[b, p0]
            for j in range(H):
                o[j, b] = gp[j]
            for p in range(p0 + 1, step_end[k]):
                gp = grad_outputs[b, p]
                for j in range(H):
                    o[j, b] += gp[j]


@njit(**_JIT)
def _backward_steps(k_begin, k_end, block_start, hs, recurrent_kernel, activation, zero,
                    recurrent_mask_t, has_recurrent_mask, mask_tm, has_mask, step_pos,
                    grad_steps, has_grad_outputs, dh, dbias, dz_block, h_block, dz, g_h):
    # Steps k_end-1 down to k_begin of a block of R rows, feature-major as the forward.
    # hs: (Ta + 1, H, R) states; recurrent_kernel: (H, H); recurrent_mask_t: (H, R);
    # grad_steps: (Tb, H, R) the output gradients of step k in slot k - block_start (from
    # _grads_feature_major); dh: (H, R), in: the gradient of the state after step
    # k_end-1, out: before step k_begin; dbias: (H, R) += dz.
    # -> dz_block: (H, (k_end - block_start) * R), dz (the gradient of the pre-activation)
    # of step k in columns (k - block_start)*R..; h_block: (H, k_end - block_start, R),
    # the state before step k (times recurrent_mask_t when has_recurrent_mask: what the
    # recurrent product read) in slot k - block_start, for drecurrent_kernel's GEMM (copied
    # here, where the next step reads that state anyway, rather than in a pass of its own).
    # dz, g_h: (H, R) scratch.
    H = hs.shape[1]
    R = hs.shape[2]
    n = H * R
    dzf = dz.reshape(n)
    ghf = g_h.reshape(n)
    dhf = dh.reshape(n)
    for k in range(k_end - 1, k_begin - 1, -1):
        p0 = step_pos[k]
        # dh of this state: carried back from later steps plus the outputs that show it
        # (kept in g_h for the masked rows, which pass it on)
        if has_grad_outputs:
            gs = grad_steps[k - block_start].reshape(n)
            for e in range(n):
                ghf[e] = dhf[e] + gs[e]
        else:
            g_h[:] = dh
        # dz = dh * activation'(z), from the activation's output y (the state after step k)
        y = hs[k + 1].reshape(n)
        if activation == _TANH:
            for e in range(n):
                dzf[e] = ghf[e] - ghf[e] * y[e] * y[e]
        elif activation == _RELU:
            for e in range(n):
                dzf[e] = ghf[e] if y[e] > zero else zero
        elif activation == _SIGMOID:
            for e in range(n):
                dzf[e] = ghf[e] * y[e] - ghf[e] * y[e] * y[e]
        else:
            for e in range(n):
                dzf[e] = ghf[e]
        if has_mask:
            # masked rows: the state passed through, and so does its gradient
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        dz[j, b] = zero
        np.dot(recurrent_kernel, dz, dh)
        if has_recurrent_mask:
            rm = recurrent_mask_t.reshape(n)
            for e in range(n):
                dhf[e] *= rm[e]
        if has_mask:
            for b in range(R):
                if not mask_tm[p0, b]:
                    for j in range(H):
                        dh[j, b] = g_h[j, b]
        col = (k - block_start) * R
        slot = k - block_start
        h_prev = hs[k]
        for j in range(H):
            dzj = dz[j]
            dbj = dbias[j]
            dst = dz_block[j, col:col + R]
            for b in range(R):
                dst[b] = dzj[b]
                dbj[b] += dzj[b]
            hj = h_prev[j]
            hdst = h_block[j, slot]
            if has_recurrent_mask:
                mj = recurrent_mask_t[j]
                for b in range(R):
                    hdst[b] = hj[b] * mj[b]
            else:
                for b in range(R):
                    hdst[b] = hj[b]


@njit(**_JIT)
def _scatter_steps(dx_steps, time_index, input_mask, has_input_mask, dx):
    # dx_steps: (Tb*R, D), row k*R + b -> dx: (R, T, D) at the steps' time indices, times
    # input_mask (R, D) when has_input_mask
    R = dx.shape[0]
    D = dx.shape[2]
    for k in range(time_index.shape[0]):
        t = time_index[k]
        for b in range(R):
            src = dx_steps[k * R + b]
            dst = dx[b, t]
            if has_input_mask:
                m = input_mask[b]
                for d in range(D):
                    dst[d] = src[d] * m[d]
            else:
                for d in range(D):
                    dst[d] = src[d]


def _backward_block(block, kernel, recurrent_kernel, activation, step_pos, step_end,
                    time_index, grad_outputs, dh, dx):
    # One block of R rows: dh (R, H) in/out; dx (R, T, D) written at the active steps
    # -> (dkernel, drecurrent_kernel, dbias) of this block
    x_t, hs = block["x_t"], block["hs"]
    D, Ta, R = x_t.shape
    H = hs.shape[1]
    dtype = x_t.dtype
    zero = dtype.type(0)
    has_grad_outputs = grad_outputs is not None
    gout = grad_outputs if has_grad_outputs else np.zeros((1, 1, 1), dtype=dtype)
    has_input_mask = block["input_mask"] is not None
    input_mask = block["input_mask"] if has_input_mask else np.ones((1, 1), dtype=dtype)
    has_recurrent_mask = block["has_recurrent_mask"]
    recurrent_mask_t = block["recurrent_mask_t"]
    dh_t = np.ascontiguousarray(dh.T)
    dbias = np.zeros((H, R), dtype=dtype)
    dkernel_t = np.zeros((H, D), dtype=dtype)
    drecurrent_t = np.zeros((H, H), dtype=dtype)
    dkernel_part = np.empty_like(dkernel_t)
    drecurrent_part = np.empty_like(drecurrent_t)
    dz = np.empty((H, R), dtype=dtype)
    g_h = np.empty((H, R), dtype=dtype)
    # blocks of steps, last to first: the steps collect their dz, and the block's share of
    # dkernel, drecurrent_kernel and dx follows as three GEMMs while dz is in cache
    block_steps = _steps_per_block(Ta, R, H)
    dz_buffer = np.empty(H * block_steps * R, dtype=dtype)
    dx_buffer = np.empty(block_steps * R * D, dtype=dtype)
    h_buffer = np.empty(H * block_steps * R, dtype=dtype)
    g_buffer = np.empty(H * block_steps * R if has_grad_outputs else 1, dtype=dtype)
    kernel_t = kernel.T
    for k1 in range(Ta, 0, -block_steps):
        k0 = max(0, k1 - block_steps)
        cols = (k1 - k0) * R
        dz_block = dz_buffer[:H * cols].reshape(H, cols)
        if has_grad_outputs:
            grad_steps = g_buffer[:H * cols].reshape(k1 - k0, H, R)
            _grads_feature_major(gout, k0, k1, step_pos, step_end, grad_steps)
        else:
            grad_steps = g_buffer.reshape(1, 1, 1)
        h_block = h_buffer[:H * cols].reshape(H, k1 - k0, R)
        _backward_steps(k0, k1, k0, hs, recurrent_kernel, activation, zero,
                        recurrent_mask_t, has_recurrent_mask, block["mask_tm"],
                        block["has_mask"], step_pos, grad_steps, has_grad_outputs, dh_t,
                        dbias, dz_block, h_block, dz, g_h)
        np.matmul(dz_block, x_t[:, k0:k1].reshape(D, cols).T, out=dkernel_part)
        dkernel_t += dkernel_part
        np.matmul(dz_block, h_block.reshape(H, cols).T, out=drecurrent_part)
        drecurrent_t += drecurrent_part
        dx_steps = dx_buffer[:cols * D].reshape(cols, D)
        np.matmul(dz_block.T, kernel_t, out=dx_steps)
        _scatter_steps(dx_steps, time_index[k0:k1], input_mask, has_input_mask, dx)
    dh[:] = dh_t.T
    if has_grad_outputs:
        _add_leading_grad_outputs(dh, gout, int(step_pos[0]) if Ta else gout.shape[1])
    return dkernel_t.T, drecurrent_t.T, dbias.sum(axis=1)


def simple_rnn_backward(cache, grad_outputs, grad_h_last, has_bias, n_threads=1,
                        serial_blas=contextlib.nullcontext):
    # grad_outputs: (B, T, H) or None, grad_h_last: (B, H) or None
    # -> dx: (B, T, D), dkernel: (D, H), drecurrent_kernel: (H, H), dbias: (H,) or None,
    #    dh0: (B, H)
    B, T, D, H = cache["shape"]
    dtype = cache["dtype"]
    bounds = cache["row_bounds"]
    blocks = cache["blocks"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    step_pos, step_end, time_index = cache["step_pos"], cache["step_end"], cache["time_index"]
    activation = cache["activation"]
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.copy()
    Ta = step_pos.size
    dx = np.zeros((B, T, D), dtype=dtype) if Ta < T else np.empty((B, T, D), dtype=dtype)
    partials = [None] * len(blocks)

    def work(c):
        b0, b1 = bounds[c], bounds[c + 1]
        gout = None if grad_outputs is None else grad_outputs[b0:b1]
        partials[c] = _backward_block(blocks[c], kernel, recurrent_kernel, activation,
                                      step_pos, step_end, time_index, gout, dh[b0:b1],
                                      dx[b0:b1])

    dkernel = np.zeros((D, H), dtype=dtype)
    drecurrent_kernel = np.zeros((H, H), dtype=dtype)
    dbias = np.zeros(H, dtype=dtype)
    if B:
        with serial_blas():
            run_tasks(work, [(c,) for c in range(len(blocks))], n_threads)
        # the blocks' partial sums, added in block order: the same for any thread count
        for dk, drk, db in partials:
            dkernel += dk
            drecurrent_kernel += drk
            dbias += db
    return dx, dkernel, drecurrent_kernel, (dbias if has_bias else None), dh
