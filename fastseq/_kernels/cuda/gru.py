"""numba.cuda: GRU forward and backward through time, Keras 3's semantics.

Same functions, signatures and semantics as the NumPy reference
(:mod:`fastseq._kernels.reference.gru`): gates z, r, h; ``reset_after`` either way (bias
(2, 3H) or (3H,)); Keras's implementation-1 dropout masks ``input_masks`` (3, B, D) and
``recurrent_masks`` (3, B, H); masked steps keep the state and repeat the previous output;
go_backwards processes the steps from last to first, outputs in processing order. Arrays
are device arrays (NumPy arrays are copied to the device) and everything, the cache
included, stays on the device.

Forward: the input projection of all T steps as one GEMM per gate (gate-major, so that
every product lands in a contiguous block), then per step the recurrent GEMM(s) and two
fused kernels: z and r (and, with reset_after=False, the h gate's GEMM input r * h), then
the candidate hh, the state update, the mask and the output (the h gate's GEMM between
them with reset_after=False). Backward: per step one fused kernel for the gate gradients
(reset_after=False: U_h's GEMM and a second kernel for the reset gate), one GEMM per gate
for the recurrent gradient and a kernel that adds them up (through the recurrent dropout
masks); the weight gradients and dx are GEMMs after the loop, dbias deterministic column
sums.
"""
import math

import numpy as np
from numba import cuda

from .elementwise import _copy, as_device, column_sum, launch, scalar, sigmoid, zeros
from .gemm import gemm
from .lstm import (
    _dropout_masks,
    _from_time_major_kernel,
    _mask_time_major,
    _optional_grad,
    _optional_state,
    _place_columns_kernel,
    _scale_rows_kernel,
    _scaled,
    _to_time_major_kernel,
)

__all__ = ["gru_forward", "gru_backward"]


# ---------------------------------------------------------------------------- helpers
@cuda.jit(cache=True)
def _add_scaled_rows_kernel(out, src, mask, has_mask):
    # out, src: (N, B, F), mask: (B, F) -> out += src * mask (src without has_mask)
    n_rows, batch, width = src.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_rows * batch * width, step):
        n = i // (batch * width)
        rest = i - n * batch * width
        b = rest // width
        f = rest - b * width
        v = src[n, b, f]
        if has_mask:
            v *= mask[b, f]
        out[n, b, f] += v


# ---------------------------------------------------------------------------- forward
@cuda.jit(cache=True)
def _gru_zr_kernel(xw_z, xw_r, hu_z, hu_r, bias_in, bias_rec, has_bias, reset_after, h_prev,
                   rmask_h, has_rmask, z_s, r_s, inner_s, one):
    # xw_z, xw_r: (B, H) input projections; hu_z, hu_r: (B, H) recurrent products; bias_in,
    # bias_rec: (3H,); h_prev: (B, H); rmask_h: (B, H) the h gate's recurrent dropout mask
    # -> z_s, r_s: (B, H); inner_s: (B, H) = r * h_h, the h gate's GEMM input
    # (reset_after=False only)
    batch, hidden = h_prev.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        pre_z = xw_z[b, u] + hu_z[b, u]
        pre_r = xw_r[b, u] + hu_r[b, u]
        if has_bias:
            pre_z += bias_in[u]
            pre_r += bias_in[hidden + u]
            if reset_after:
                pre_z += bias_rec[u]
                pre_r += bias_rec[hidden + u]
        z = sigmoid(pre_z, one)
        r = sigmoid(pre_r, one)
        z_s[b, u] = z
        r_s[b, u] = r
        if not reset_after:
            h = h_prev[b, u]
            if has_rmask:
                h *= rmask_h[b, u]
            inner_s[b, u] = r * h


@cuda.jit(cache=True)
def _gru_h_kernel(xw_h, hu_h, bias_in, bias_rec, has_bias, reset_after, z_s, r_s, hh_s,
                  inner_s, h_prev, h_new, mask_tm, has_mask, s, outputs):
    # xw_h: (B, H); hu_h: (B, H) the h gate's recurrent product (reset_after: h_h @ U_h;
    # otherwise (r * h_h) @ U_h); z_s, r_s: (B, H); h_prev: (B, H)
    # -> hh_s: (B, H); inner_s (reset_after): u = h_h @ U_h + b_rec_h; h_new: (B, H);
    #    outputs[:, s]: (B, H)
    batch, hidden = h_prev.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        pre = xw_h[b, u]
        if has_bias:
            pre += bias_in[2 * hidden + u]
        if reset_after:
            inner = hu_h[b, u]
            if has_bias:
                inner += bias_rec[2 * hidden + u]
            inner_s[b, u] = inner
            pre += r_s[b, u] * inner
        else:
            pre += hu_h[b, u]
        hh = math.tanh(pre)
        hh_s[b, u] = hh
        h = h_prev[b, u]
        if not (has_mask and mask_tm[s, b] == 0):  # masked: the state passes through
            h = hh + z_s[b, u] * (h - hh)
        h_new[b, u] = h
        outputs[b, s, u] = h


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None, go_backwards=False,
                training=True, reset_after=True, input_masks=None, recurrent_masks=None):
    """GRU over a batch of sequences, on the device.

    # x: (B, T, D), kernel: (D, 3H), recurrent_kernel: (H, 3H), bias: (2, 3H) (reset_after)
    # or (3H,) or None, h0: (B, H), mask: (B, T), input_masks: (3, B, D),
    # recurrent_masks: (3, B, H) -> outputs: (B, T, H), h_last: (B, H)

    Returns ``(outputs, h_last, cache)``; cache is None unless ``training``."""
    x = as_device(x, "x", ndim=3)
    dtype = x.dtype
    kernel = as_device(kernel, "kernel", ndim=2, dtype=dtype)
    recurrent_kernel = as_device(recurrent_kernel, "recurrent_kernel", ndim=2, dtype=dtype)
    batch, n_time, dim = x.shape
    hidden = recurrent_kernel.shape[0]
    if hidden < 1 or tuple(recurrent_kernel.shape) != (hidden, 3 * hidden):
        raise ValueError("recurrent_kernel must have shape (H, 3H) with H >= 1, "
                         f"got {tuple(recurrent_kernel.shape)}")
    if tuple(kernel.shape) != (dim, 3 * hidden):
        raise ValueError(f"kernel must have shape (D, 3H) = {(dim, 3 * hidden)}, "
                         f"got {tuple(kernel.shape)}")
    reset_after = bool(reset_after)
    has_bias = bias is not None
    if has_bias:
        shape = (2, 3 * hidden) if reset_after else (3 * hidden,)
        bias = as_device(bias, "bias", ndim=len(shape), dtype=dtype)
        if tuple(bias.shape) != shape:
            raise ValueError(f"bias must have shape {'(2, 3H)' if reset_after else '(3H,)'} "
                             f"= {shape} with reset_after={reset_after}, "
                             f"got {tuple(bias.shape)}")
        bias_in, bias_rec = (bias[0], bias[1]) if reset_after else (bias, bias)
    else:
        bias_in = bias_rec = cuda.device_array((1,), dtype=dtype)  # placeholders, never read
    h0 = _optional_state(h0, "h0", (batch, hidden), dtype)
    mask_tm = _mask_time_major(mask, batch, n_time, go_backwards)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((1, 1), dtype=np.uint8)  # placeholder, never read
    input_masks = _dropout_masks(input_masks, "input_masks", (3, batch, dim), dtype)
    recurrent_masks = _dropout_masks(recurrent_masks, "recurrent_masks", (3, batch, hidden),
                                     dtype)
    has_rmask = recurrent_masks is not None
    rmask_h = recurrent_masks[2] if has_rmask else cuda.device_array((1, 1), dtype=dtype)

    x_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    launch(_to_time_major_kernel, x_tm.size, x, x_tm, bool(go_backwards))
    rows = n_time * batch
    # the input projection of every step, gate-major: xw[g] = (x * input_masks[g]) @ W_g
    xw = cuda.device_array((3, n_time, batch, hidden), dtype=dtype)
    for g in range(3):
        if rows == 0:
            break
        src = _scaled(x_tm, None if input_masks is None else input_masks[g])
        gemm(src.reshape(rows, dim), kernel[:, g * hidden:(g + 1) * hidden],
             out=xw[g].reshape(rows, hidden))
    hs = cuda.device_array((n_time + 1, batch, hidden), dtype=dtype)
    hs[0].copy_to_device(h0)
    # per step: z, r, hh and the inner term (reset_after: h_h @ U_h + b_rec_h; otherwise
    # r * h_h), what the backward needs
    gates = cuda.device_array((4, n_time, batch, hidden), dtype=dtype)
    outputs = cuda.device_array((batch, n_time, hidden), dtype=dtype)
    hu = cuda.device_array((3, batch, hidden), dtype=dtype)
    hm = cuda.device_array((1, batch, hidden), dtype=dtype)
    one = scalar(1, dtype)
    n = batch * hidden
    for s in range(n_time):
        if n == 0:
            break
        h_prev = hs[s]
        # the recurrent products of the gates that read h (dropped out per gate)
        for g in range(3 if reset_after else 2):
            src = h_prev
            if has_rmask:
                launch(_scale_rows_kernel, n, h_prev.reshape(1, batch, hidden),
                       recurrent_masks[g], hm)
                src = hm[0]
            gemm(src, recurrent_kernel[:, g * hidden:(g + 1) * hidden], out=hu[g])
        launch(_gru_zr_kernel, n, xw[0, s], xw[1, s], hu[0], hu[1], bias_in, bias_rec,
               has_bias, reset_after, h_prev, rmask_h, has_rmask, gates[0, s], gates[1, s],
               gates[3, s], one)
        if not reset_after:
            gemm(gates[3, s], recurrent_kernel[:, 2 * hidden:], out=hu[2])
        launch(_gru_h_kernel, n, xw[2, s], hu[2], bias_in, bias_rec, has_bias, reset_after,
               gates[0, s], gates[1, s], gates[2, s], gates[3, s], h_prev, hs[s + 1],
               mask_tm, has_mask, s, outputs)
    h_last = _copy(hs[n_time])
    if not training:
        return outputs, h_last, None
    cache = {
        "x_tm": x_tm, "gates": gates, "hs": hs, "mask_tm": mask_tm if has_mask else None,
        "kernel": kernel, "recurrent_kernel": recurrent_kernel, "has_bias": has_bias,
        "go_backwards": bool(go_backwards), "reset_after": reset_after,
        "input_masks": input_masks, "recurrent_masks": recurrent_masks,
    }
    return outputs, h_last, cache


# ---------------------------------------------------------------------------- backward
@cuda.jit(cache=True)
def _gru_step_backward_kernel(z_s, r_s, hh_s, inner_s, h_prev, dh_state, grad_outputs,
                              has_grad_outputs, mask_tm, has_mask, s, reset_after, da_z,
                              da_r, da_h, du_s, direct, one):
    # z_s, r_s, hh_s, inner_s: (B, H) step s's activations; h_prev: (B, H) h before step s;
    # dh_state: (B, H) the gradient of h after step s carried back from later steps
    # -> da_z, da_r, da_h: (B, H) the gates' pre-activation gradients (da_r: reset_after
    #    only), du_s: (B, H) the gradient of u = h_h @ U_h + b_rec_h (reset_after),
    #    direct: (B, H) the gradient of h before step s through the update z * h
    batch, hidden = h_prev.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        g = dh_state[b, u]
        if has_grad_outputs:
            g += grad_outputs[b, s, u]
        if has_mask and mask_tm[s, b] == 0:
            # masked: the state passed through unchanged, and so does its gradient
            da_z[b, u] = zero
            da_r[b, u] = zero
            da_h[b, u] = zero
            if reset_after:
                du_s[b, u] = zero
            direct[b, u] = g
            continue
        z = z_s[b, u]
        hh = hh_s[b, u]
        d = g * (h_prev[b, u] - hh)
        da_z[b, u] = d * z - d * z * z
        t = g - g * z
        a_h = t - t * hh * hh
        da_h[b, u] = a_h
        direct[b, u] = g * z
        if reset_after:
            r = r_s[b, u]
            du_s[b, u] = a_h * r
            q = a_h * inner_s[b, u]
            da_r[b, u] = q * r - q * r * r


@cuda.jit(cache=True)
def _gru_reset_backward_kernel(d_rh, r_s, h_prev, rmask_h, has_rmask, mask_tm, has_mask, s,
                               da_r, direct):
    # reset_after=False: d_rh: (B, H) = da_h @ U_h.T, the gradient of r * h_h
    # -> da_r: (B, H); direct += d_rh * r (* the h gate's recurrent dropout mask)
    batch, hidden = h_prev.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        if has_mask and mask_tm[s, b] == 0:
            continue  # da_r is 0 and direct the carried gradient
        d = d_rh[b, u]
        if has_rmask:
            d *= rmask_h[b, u]
        r = r_s[b, u]
        q = d * h_prev[b, u]
        da_r[b, u] = q * r - q * r * r
        direct[b, u] += d * r


@cuda.jit(cache=True)
def _gru_state_gradient_kernel(direct, dhg, n_rec, rmask, has_rmask, dh_state):
    # direct: (B, H); dhg: (3, B, H) gate g's recurrent product's gradient w.r.t. its input;
    # rmask: (3, B, H) -> dh_state = direct + sum over the first n_rec gates of dhg[g]
    # (times the gate's recurrent dropout mask)
    batch, hidden = direct.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        acc = direct[b, u]
        for g in range(n_rec):
            v = dhg[g, b, u]
            if has_rmask:
                v *= rmask[g, b, u]
            acc += v
        dh_state[b, u] = acc


def gru_backward(cache, grad_outputs=None, grad_h_last=None):
    """Gradients of :func:`gru_forward` from its cache, on the device.

    # grad_outputs: (B, T, H), grad_h_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, 3H), drecurrent_kernel: (H, 3H),
    #    dbias: (2, 3H) (reset_after) or (3H,) or None, dh0: (B, H)

    grad_outputs is in the forward's output order (processing order)."""
    if cache is None:
        raise ValueError("gru_backward needs the cache of gru_forward(..., training=True)")
    x_tm, gates, hs = cache["x_tm"], cache["gates"], cache["hs"]
    mask_tm = cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    reset_after = cache["reset_after"]
    input_masks, recurrent_masks = cache["input_masks"], cache["recurrent_masks"]
    n_time, batch, dim = x_tm.shape
    hidden = hs.shape[2]
    dtype = x_tm.dtype
    state_shape = (batch, hidden)
    grad_outputs = _optional_grad(grad_outputs, "grad_outputs", (batch, n_time, hidden), dtype)
    grad_h_last = _optional_grad(grad_h_last, "grad_h_last", state_shape, dtype)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((1, 1), dtype=np.uint8)  # placeholder, never read
    has_grad_outputs = grad_outputs is not None
    if not has_grad_outputs:
        grad_outputs = cuda.device_array((1, 1, 1), dtype=dtype)  # placeholder, never read
    has_rmask = recurrent_masks is not None
    rmask = recurrent_masks if has_rmask else cuda.device_array((3, 1, 1), dtype=dtype)
    rmask_h = rmask[2]

    dh_state = zeros(state_shape, dtype) if grad_h_last is None else _copy(grad_h_last)
    # da[g, s]: the gates' pre-activation gradients (input side); du[s]: the h gate's
    # recurrent side (reset_after; otherwise da[2] is both)
    da = cuda.device_array((3, n_time, batch, hidden), dtype=dtype)
    du = cuda.device_array((n_time if reset_after else 0, batch, hidden), dtype=dtype)
    direct = cuda.device_array(state_shape, dtype=dtype)
    dhg = cuda.device_array((3, batch, hidden), dtype=dtype)
    one = scalar(1, dtype)
    n = batch * hidden
    n_rec = 3 if reset_after else 2
    for s in range(n_time - 1, -1, -1):
        if n == 0:
            break
        du_s = du[s] if reset_after else da[2, s]  # (not written without reset_after)
        launch(_gru_step_backward_kernel, n, gates[0, s], gates[1, s], gates[2, s],
               gates[3, s], hs[s], dh_state, grad_outputs, has_grad_outputs, mask_tm,
               has_mask, s, reset_after, da[0, s], da[1, s], da[2, s], du_s, direct, one)
        if not reset_after:
            # d(r * h_h) = da_h @ U_h.T, which the reset gate's gradient needs
            gemm(da[2, s], recurrent_kernel[:, 2 * hidden:].T, out=dhg[2])
            launch(_gru_reset_backward_kernel, n, dhg[2], gates[1, s], hs[s], rmask_h,
                   has_rmask, mask_tm, has_mask, s, da[1, s], direct)
        rec = (da[0, s], da[1, s], du_s)
        for g in range(n_rec):
            gemm(rec[g], recurrent_kernel[:, g * hidden:(g + 1) * hidden].T, out=dhg[g])
        launch(_gru_state_gradient_kernel, n, direct, dhg, n_rec, rmask, has_rmask, dh_state)
    dh0 = dh_state
    rows = n_time * batch
    dkernel = cuda.device_array((dim, 3 * hidden), dtype=dtype)
    drecurrent_kernel = cuda.device_array((hidden, 3 * hidden), dtype=dtype)
    dx_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    part_k = cuda.device_array((dim, hidden), dtype=dtype)
    part_rk = cuda.device_array((hidden, hidden), dtype=dtype)
    part_dx = cuda.device_array((n_time, batch, dim), dtype=dtype)
    h_before = hs[:n_time]
    for g in range(3):
        da_g = da[g].reshape(rows, hidden)
        # dkernel: each gate read its own dropped-out inputs
        x_g = _scaled(x_tm, None if input_masks is None else input_masks[g])
        gemm(x_g.reshape(rows, dim).T, da_g, out=part_k)
        launch(_place_columns_kernel, part_k.size, part_k, dkernel, g * hidden)
        # drecurrent_kernel: each gate's GEMM read its dropped-out h; reset_after=False's h
        # gate read r * h_h
        if g == 2 and not reset_after:
            src, d = gates[3, :n_time], da_g
        else:
            src = _scaled(h_before, recurrent_masks[g] if has_rmask else None)
            d = du.reshape(rows, hidden) if g == 2 else da_g
        gemm(src.reshape(rows, hidden).T, d, out=part_rk)
        launch(_place_columns_kernel, part_rk.size, part_rk, drecurrent_kernel, g * hidden)
        # dx = sum over the gates of (da_g @ W_g.T) * input_masks[g]
        w_t = kernel[:, g * hidden:(g + 1) * hidden].T
        if input_masks is None:
            gemm(da_g, w_t, out=dx_tm.reshape(rows, dim), beta=0.0 if g == 0 else 1.0)
        else:
            gemm(da_g, w_t, out=part_dx.reshape(rows, dim))
            if g == 0:
                launch(_scale_rows_kernel, dx_tm.size, part_dx, input_masks[0], dx_tm)
            else:
                launch(_add_scaled_rows_kernel, dx_tm.size, dx_tm, part_dx, input_masks[g],
                       True)
    dbias = None
    if cache["has_bias"]:
        dbias_in = cuda.device_array(3 * hidden, dtype=dtype)
        for g in range(3):
            column_sum(da[g].reshape(rows, hidden), out=dbias_in[g * hidden:(g + 1) * hidden])
        if reset_after:
            dbias = cuda.device_array((2, 3 * hidden), dtype=dtype)
            dbias[0].copy_to_device(dbias_in)
            dbias[1, :2 * hidden].copy_to_device(dbias_in[:2 * hidden])
            column_sum(du.reshape(rows, hidden), out=dbias[1, 2 * hidden:])
        else:
            dbias = dbias_in
    dx = cuda.device_array((batch, n_time, dim), dtype=dtype)
    launch(_from_time_major_kernel, dx.size, dx_tm, dx, cache["go_backwards"])
    return dx, dkernel, drecurrent_kernel, dbias, dh0
