"""numba.cuda: LSTM forward and backward through time, Keras's semantics.

Same functions, signatures and cache keys as the NumPy reference
(:mod:`fastseq._kernels.reference.lstm`); arrays are device arrays (NumPy arrays are
copied to the device) and everything, the cache included, stays on the device.

    z = x_t @ kernel + h @ recurrent_kernel + bias          # (B, 4H), gates i, f, c, o
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_c), sigmoid(z_o)
    c = f * c + i * g;  h = o * tanh(c)

Forward: one GEMM for the input projection of all T steps, then per step one GEMM
(h @ recurrent_kernel) and one fused kernel (bias, nonlinearities, cell update, mask,
output). Backward: per step one fused kernel (the four gate gradients and dc) and one GEMM
(dz @ recurrent_kernel.T); the weight gradients and dx are three GEMMs after the loop and
dbias a deterministic column sum. Masked steps keep the state and repeat the previous
output; go_backwards processes the steps from last to first, outputs in processing order.

Dropout as Keras's implementation 1 (``input_masks`` (4, B, D), ``recurrent_masks``
(4, B, H): per gate, fixed over the sequence, already scaled): where a mask sits between
the operands the GEMM runs per gate, on masked copies: the input projection and dkernel on
``x * input_masks[g]``, the per-step recurrent product on ``h * recurrent_masks[g]`` (one
kernel masks h for the four gates), drecurrent_kernel on the masked states; backward per
step ``dz_g @ U_g.T`` per gate, summed through the masks by one kernel, and dx the sum of
the gates' ``dz_g @ W_g.T`` through the input masks. The cell update reads the undropped
states. Without masks none of this runs.
"""
import math

import numpy as np
from numba import cuda

from .elementwise import (
    _copy,
    as_device,
    column_sum,
    device_mask,
    fill,
    launch,
    scalar,
    sigmoid,
    zeros,
)
from .gemm import gemm

__all__ = ["lstm_forward", "lstm_backward"]


# ---------------------------------------------------------------------------- layout
@cuda.jit(cache=True)
def _to_time_major_kernel(x, x_tm, reverse):
    # x: (B, T, D) -> x_tm: (T, B, D), step s of processing order (T-1-s when reverse)
    n_time, batch, dim = x_tm.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x_tm.size, step):
        s = i // (batch * dim)
        rest = i - s * batch * dim
        b = rest // dim
        d = rest - b * dim
        t = n_time - 1 - s if reverse else s
        x_tm[s, b, d] = x[b, t, d]


@cuda.jit(cache=True)
def _from_time_major_kernel(x_tm, x, reverse):
    # x_tm: (T, B, D) -> x: (B, T, D), the inverse of _to_time_major_kernel
    batch, n_time, dim = x.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        b = i // (n_time * dim)
        rest = i - b * n_time * dim
        t = rest // dim
        d = rest - t * dim
        s = n_time - 1 - t if reverse else t
        x[b, t, d] = x_tm[s, b, d]


@cuda.jit(cache=True)
def _mask_to_time_major_kernel(mask, mask_tm, reverse):
    # mask: (B, T) any dtype -> mask_tm: (T, B) uint8, 1 where the step is kept
    n_time, batch = mask_tm.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, mask_tm.size, step):
        s = i // batch
        b = i - s * batch
        t = n_time - 1 - s if reverse else s
        mask_tm[s, b] = 1 if mask[b, t] != 0 else 0


# ---------------------------------------------------------------------------- dropout
@cuda.jit(cache=True)
def _scale_rows_kernel(src, mask, out):
    # src, out: (N, B, F), mask: (B, F) -> out = src * mask (each of N slices)
    n_rows, batch, width = src.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_rows * batch * width, step):
        n = i // (batch * width)
        rest = i - n * batch * width
        b = rest // width
        f = rest - b * width
        out[n, b, f] = src[n, b, f] * mask[b, f]


@cuda.jit(cache=True)
def _add_scaled_rows_kernel(out, src, mask):
    # out, src: (N, B, F), mask: (B, F) -> out += src * mask
    n_rows, batch, width = src.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_rows * batch * width, step):
        n = i // (batch * width)
        rest = i - n * batch * width
        b = rest // width
        f = rest - b * width
        out[n, b, f] += src[n, b, f] * mask[b, f]


@cuda.jit(cache=True)
def _place_columns_kernel(src, dst, offset):
    # src: (R, W), dst: (R, C) -> dst[:, offset:offset + W] = src
    rows, width = src.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, rows * width, step):
        r = i // width
        c = i - r * width
        dst[r, offset + c] = src[r, c]


@cuda.jit(cache=True)
def _mask_state_kernel(h, masks, out):
    # h: (B, H), masks: (G, B, H) -> out: (G, B, H) = h * masks[g], the gates' dropped-out h
    n_gates, batch, hidden = masks.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_gates * batch * hidden, step):
        g = i // (batch * hidden)
        rest = i - g * batch * hidden
        b = rest // hidden
        u = rest - b * hidden
        out[g, b, u] = h[b, u] * masks[g, b, u]


@cuda.jit(cache=True)
def _masked_gate_sum_kernel(parts, masks, out):
    # parts, masks: (G, B, H) -> out: (B, H) = the sum over g of parts[g] * masks[g], in
    # gate order
    n_gates, batch, hidden = masks.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, batch * hidden, step):
        b = i // hidden
        u = i - b * hidden
        acc = parts[0, b, u] * masks[0, b, u]
        for g in range(1, n_gates):
            acc += parts[g, b, u] * masks[g, b, u]
        out[b, u] = acc


def _scaled(src, mask):
    """src (N, B, F) * mask (B, F) as a new device array (src itself when mask is None)."""
    if mask is None:
        return src
    out = cuda.device_array(src.shape, dtype=src.dtype)
    launch(_scale_rows_kernel, out.size, src, mask, out)
    return out


def _dropout_masks(masks, name, shape, dtype):
    if masks is None:
        return None
    masks = as_device(masks, name, ndim=3, dtype=dtype)
    if tuple(masks.shape) != shape:
        width = "D" if name[0] == "i" else "H"
        raise ValueError(f"{name} must have shape ({shape[0]}, B, {width}) = {shape}, "
                         f"got {tuple(masks.shape)}")
    return masks


# ---------------------------------------------------------------------------- forward
@cuda.jit(cache=True)
def _lstm_step_forward_kernel(z, gates_s, bias, has_bias, c_prev, h_prev, c_new, h_new,
                              mask_tm, has_mask, s, outputs, one, zg, per_gate):
    # z: (B, 4H) = h_prev @ recurrent_kernel, or with per_gate zg: (4, B, H) the gates'
    # recurrent products (recurrent dropout); gates_s: (B, 4H) = x_s @ kernel (overwritten
    # with the activated gates i, f, g, o), bias: (4H,), c_prev, h_prev: (B, H)
    # -> c_new, h_new: (B, H), outputs[:, s]: (B, H)
    batch, hidden = h_new.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        pre_i = gates_s[b, u]
        pre_f = gates_s[b, hidden + u]
        pre_g = gates_s[b, 2 * hidden + u]
        pre_o = gates_s[b, 3 * hidden + u]
        if has_bias:
            pre_i += bias[u]
            pre_f += bias[hidden + u]
            pre_g += bias[2 * hidden + u]
            pre_o += bias[3 * hidden + u]
        if per_gate:
            z_i, z_f, z_g, z_o = zg[0, b, u], zg[1, b, u], zg[2, b, u], zg[3, b, u]
        else:
            z_i, z_f = z[b, u], z[b, hidden + u]
            z_g, z_o = z[b, 2 * hidden + u], z[b, 3 * hidden + u]
        gi = sigmoid(z_i + pre_i, one)
        gf = sigmoid(z_f + pre_f, one)
        gg = math.tanh(z_g + pre_g)
        go = sigmoid(z_o + pre_o, one)
        gates_s[b, u] = gi
        gates_s[b, hidden + u] = gf
        gates_s[b, 2 * hidden + u] = gg
        gates_s[b, 3 * hidden + u] = go
        if has_mask and mask_tm[s, b] == 0:
            c = c_prev[b, u]  # masked: the state passes through, the output repeats h
            h = h_prev[b, u]
        else:
            c = gf * c_prev[b, u] + gi * gg
            h = go * math.tanh(c)
        c_new[b, u] = c
        h_new[b, u] = h
        outputs[b, s, u] = h


def _optional_state(value, name, shape, dtype):
    if value is None:
        return zeros(shape, dtype)
    value = as_device(value, name, ndim=2, dtype=dtype)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def _mask_time_major(mask, batch, n_time, go_backwards):
    mask = device_mask(mask, (batch, n_time))
    if mask is None:
        return None
    mask_tm = cuda.device_array((n_time, batch), dtype=np.uint8)
    launch(_mask_to_time_major_kernel, n_time * batch, mask, mask_tm, bool(go_backwards))
    return mask_tm


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, mask=None,
                 go_backwards=False, training=True, input_masks=None, recurrent_masks=None):
    """LSTM over a batch of sequences, on the device.

    # x: (B, T, D), kernel: (D, 4H), recurrent_kernel: (H, 4H), bias: (4H,) or None,
    # h0, c0: (B, H), mask: (B, T), input_masks: (4, B, D) or None, recurrent_masks:
    # (4, B, H) or None -> outputs: (B, T, H), h_last: (B, H), c_last: (B, H)

    Returns ``(outputs, h_last, c_last, cache)``; cache is None unless ``training``."""
    x = as_device(x, "x", ndim=3)
    dtype = x.dtype
    kernel = as_device(kernel, "kernel", ndim=2, dtype=dtype)
    recurrent_kernel = as_device(recurrent_kernel, "recurrent_kernel", ndim=2, dtype=dtype)
    batch, n_time, dim = x.shape
    hidden = recurrent_kernel.shape[0]
    if tuple(recurrent_kernel.shape) != (hidden, 4 * hidden):
        raise ValueError("recurrent_kernel must have shape (H, 4H), "
                         f"got {tuple(recurrent_kernel.shape)}")
    if tuple(kernel.shape) != (dim, 4 * hidden):
        raise ValueError(f"kernel must have shape (D, 4H) = {(dim, 4 * hidden)}, "
                         f"got {tuple(kernel.shape)}")
    has_bias = bias is not None
    if has_bias:
        bias = as_device(bias, "bias", ndim=1, dtype=dtype)
        if tuple(bias.shape) != (4 * hidden,):
            raise ValueError(f"bias must have shape (4H,) = {(4 * hidden,)}, "
                             f"got {tuple(bias.shape)}")
    else:
        bias = zeros((1,), dtype)  # placeholder, never read
    state_shape = (batch, hidden)
    h0 = _optional_state(h0, "h0", state_shape, dtype)
    c0 = _optional_state(c0, "c0", state_shape, dtype)
    mask_tm = _mask_time_major(mask, batch, n_time, go_backwards)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((1, 1), dtype=np.uint8)  # placeholder, never read
    input_masks = _dropout_masks(input_masks, "input_masks", (4, batch, dim), dtype)
    recurrent_masks = _dropout_masks(recurrent_masks, "recurrent_masks", (4, batch, hidden),
                                     dtype)
    per_gate = recurrent_masks is not None

    x_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    launch(_to_time_major_kernel, x_tm.size, x, x_tm, bool(go_backwards))
    rows = n_time * batch
    # the input projection of every step: one (T*B, D) @ (D, 4H) GEMM, or one per gate on
    # its dropped-out inputs
    gates = cuda.device_array((n_time, batch, 4 * hidden), dtype=dtype)
    if gates.size and input_masks is None:
        gemm(x_tm.reshape(rows, dim), kernel, out=gates.reshape(rows, 4 * hidden))
    elif gates.size:
        part = cuda.device_array((rows, hidden), dtype=dtype)
        for g in range(4):
            gemm(_scaled(x_tm, input_masks[g]).reshape(rows, dim),
                 kernel[:, g * hidden:(g + 1) * hidden], out=part)
            launch(_place_columns_kernel, part.size, part, gates.reshape(rows, 4 * hidden),
                   g * hidden)
    hs = cuda.device_array((n_time + 1, batch, hidden), dtype=dtype)
    cs = cuda.device_array((n_time + 1, batch, hidden), dtype=dtype)
    hs[0].copy_to_device(h0)
    cs[0].copy_to_device(c0)
    outputs = cuda.device_array((batch, n_time, hidden), dtype=dtype)
    z = cuda.device_array((batch, 4 * hidden), dtype=dtype)
    # with recurrent dropout: the gates' dropped-out h and their recurrent products
    hm = cuda.device_array((4, batch, hidden) if per_gate else (1, 1, 1), dtype=dtype)
    zg = cuda.device_array((4, batch, hidden) if per_gate else (1, 1, 1), dtype=dtype)
    one = scalar(1, dtype)
    for s in range(n_time):
        if batch == 0 or hidden == 0:
            break
        if per_gate:
            launch(_mask_state_kernel, hm.size, hs[s], recurrent_masks, hm)
            for g in range(4):
                gemm(hm[g], recurrent_kernel[:, g * hidden:(g + 1) * hidden], out=zg[g])
        else:
            gemm(hs[s], recurrent_kernel, out=z)
        launch(_lstm_step_forward_kernel, batch * hidden, z, gates[s], bias, has_bias,
               cs[s], hs[s], cs[s + 1], hs[s + 1], mask_tm, has_mask, s, outputs, one, zg,
               per_gate)
    h_last, c_last = _copy(hs[n_time]), _copy(cs[n_time])
    if not training:
        return outputs, h_last, c_last, None
    cache = {
        "x_tm": x_tm, "gates": gates, "hs": hs, "cs": cs,
        "mask_tm": mask_tm if has_mask else None,
        "kernel": kernel, "recurrent_kernel": recurrent_kernel, "has_bias": has_bias,
        "go_backwards": bool(go_backwards),
        "input_masks": input_masks, "recurrent_masks": recurrent_masks,
    }
    return outputs, h_last, c_last, cache


# ---------------------------------------------------------------------------- backward
@cuda.jit(cache=True)
def _lstm_step_backward_kernel(gates_s, c_prev, c_cur, dh_rec, dh_total, dc, grad_outputs,
                               has_grad_outputs, mask_tm, has_mask, s, dz_s, one):
    # gates_s: (B, 4H) activated i, f, g, o; c_prev, c_cur: (B, H) cell before/after step s;
    # dh_rec: (B, H) = dz[s+1] @ recurrent_kernel.T (or grad_h_last); dh_total: (B, H) the
    # dh of step s+1 (kept for rows masked there); dc: (B, H) in/out; grad_outputs: (B, T, H)
    # -> dz_s: (B, 4H), dc <- dc of step s-1, dh_total <- dh of step s
    batch, hidden = dc.shape
    n_time = mask_tm.shape[0]
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        dh = dh_rec[b, u]
        if has_mask and s + 1 < n_time and mask_tm[s + 1, b] == 0:
            dh = dh_total[b, u]  # step s+1 was masked: its dh passed straight through
        if has_grad_outputs:
            dh += grad_outputs[b, s, u]
        dh_total[b, u] = dh
        if has_mask and mask_tm[s, b] == 0:
            # masked: the state passed through unchanged, and so do its gradients
            dz_s[b, u] = zero
            dz_s[b, hidden + u] = zero
            dz_s[b, 2 * hidden + u] = zero
            dz_s[b, 3 * hidden + u] = zero
            continue
        gi = gates_s[b, u]
        gf = gates_s[b, hidden + u]
        gg = gates_s[b, 2 * hidden + u]
        go = gates_s[b, 3 * hidden + u]
        tanh_c = math.tanh(c_cur[b, u])
        # dc at step s: the carried dc plus the path through h = o * tanh(c)
        dc_s = dc[b, u] + dh * go * (one - tanh_c * tanh_c)
        dz_s[b, 3 * hidden + u] = (dh * tanh_c) * (go * (one - go))
        dz_s[b, u] = (dc_s * gg) * (gi * (one - gi))
        dz_s[b, hidden + u] = (dc_s * c_prev[b, u]) * (gf * (one - gf))
        dz_s[b, 2 * hidden + u] = (dc_s * gi) * (one - gg * gg)
        dc[b, u] = dc_s * gf


@cuda.jit(cache=True)
def _lstm_first_dh_kernel(dh_rec, dh_total, mask_tm, dh0):
    # dh_rec, dh_total: (B, H), mask_tm: (T, B) -> dh0: (B, H); rows masked at step 0 pass
    # their dh through
    batch, hidden = dh0.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        dh0[b, u] = dh_total[b, u] if mask_tm[0, b] == 0 else dh_rec[b, u]


def _optional_grad(value, name, shape, dtype):
    if value is None:
        return None
    value = as_device(value, name, dtype=dtype)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def lstm_backward(cache, grad_outputs=None, grad_h_last=None, grad_c_last=None):
    """Gradients of :func:`lstm_forward` from its cache, on the device.

    # grad_outputs: (B, T, H), grad_h_last, grad_c_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, 4H), drecurrent_kernel: (H, 4H), dbias: (4H,) or None,
    #    dh0: (B, H), dc0: (B, H)

    grad_outputs is in the forward's output order (processing order)."""
    if cache is None:
        raise ValueError("lstm_backward needs the cache of lstm_forward(..., training=True)")
    x_tm, gates, hs, cs = cache["x_tm"], cache["gates"], cache["hs"], cache["cs"]
    mask_tm = cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    input_masks, recurrent_masks = cache.get("input_masks"), cache.get("recurrent_masks")
    per_gate = recurrent_masks is not None
    n_time, batch, dim = x_tm.shape
    hidden = hs.shape[2]
    dtype = x_tm.dtype
    state_shape = (batch, hidden)
    grad_outputs = _optional_grad(grad_outputs, "grad_outputs", (batch, n_time, hidden), dtype)
    grad_h_last = _optional_grad(grad_h_last, "grad_h_last", state_shape, dtype)
    grad_c_last = _optional_grad(grad_c_last, "grad_c_last", state_shape, dtype)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((max(n_time, 1), 1), dtype=np.uint8)  # shape only
    has_grad_outputs = grad_outputs is not None
    if not has_grad_outputs:
        grad_outputs = cuda.device_array((1, 1, 1), dtype=dtype)  # placeholder, never read

    dh_rec = zeros(state_shape, dtype) if grad_h_last is None else _copy(grad_h_last)
    dc = zeros(state_shape, dtype) if grad_c_last is None else _copy(grad_c_last)
    dh_total = cuda.device_array(state_shape, dtype=dtype)
    dz = cuda.device_array((n_time, batch, 4 * hidden), dtype=dtype)
    recurrent_kernel_t = recurrent_kernel.T  # a strided view: the GEMM reads it in place
    # with recurrent dropout: gate g's share of the gradient of h, before its mask
    dhg = cuda.device_array((4, batch, hidden) if per_gate else (1, 1, 1), dtype=dtype)
    one = scalar(1, dtype)
    for s in range(n_time - 1, -1, -1):
        if batch == 0 or hidden == 0:
            break
        launch(_lstm_step_backward_kernel, batch * hidden, gates[s], cs[s], cs[s + 1],
               dh_rec, dh_total, dc, grad_outputs, has_grad_outputs, mask_tm, has_mask, s,
               dz[s], one)
        if per_gate:
            for g in range(4):
                cols = slice(g * hidden, (g + 1) * hidden)
                gemm(dz[s][:, cols], recurrent_kernel[:, cols].T, out=dhg[g])
            launch(_masked_gate_sum_kernel, batch * hidden, dhg, recurrent_masks, dh_rec)
        else:
            gemm(dz[s], recurrent_kernel_t, out=dh_rec)
    if has_mask and n_time and batch * hidden:
        dh0 = cuda.device_array(state_shape, dtype=dtype)
        launch(_lstm_first_dh_kernel, batch * hidden, dh_rec, dh_total, mask_tm, dh0)
    else:
        dh0 = dh_rec
    rows = n_time * batch
    dz2 = dz.reshape(rows, 4 * hidden)
    dkernel = cuda.device_array((dim, 4 * hidden), dtype=dtype)
    drecurrent_kernel = cuda.device_array((hidden, 4 * hidden), dtype=dtype)
    dx_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    if input_masks is None:
        gemm(x_tm.reshape(rows, dim).T, dz2, out=dkernel)
        gemm(dz2, kernel.T, out=dx_tm.reshape(rows, dim))
    elif rows:
        # every gate read its own dropped-out inputs: dkernel per gate on them, dx the sum
        # of the gates' shares through their masks
        part_k = cuda.device_array((dim, hidden), dtype=dtype)
        part_dx = cuda.device_array((n_time, batch, dim), dtype=dtype)
        for g in range(4):
            cols = slice(g * hidden, (g + 1) * hidden)
            gemm(_scaled(x_tm, input_masks[g]).reshape(rows, dim).T, dz2[:, cols], out=part_k)
            launch(_place_columns_kernel, part_k.size, part_k, dkernel, g * hidden)
            gemm(dz2[:, cols], kernel[:, cols].T, out=part_dx.reshape(rows, dim))
            if g == 0:
                launch(_scale_rows_kernel, dx_tm.size, part_dx, input_masks[0], dx_tm)
            else:
                launch(_add_scaled_rows_kernel, dx_tm.size, dx_tm, part_dx, input_masks[g])
    else:  # no steps or no rows: nothing to sum
        fill(dkernel, 0)
    if recurrent_masks is None:
        gemm(hs[:n_time].reshape(rows, hidden).T, dz2, out=drecurrent_kernel)
    elif rows:
        # gate g's recurrent GEMM read h * recurrent_masks[g]
        part_rk = cuda.device_array((hidden, hidden), dtype=dtype)
        for g in range(4):
            h_g = _scaled(hs[:n_time], recurrent_masks[g])
            gemm(h_g.reshape(rows, hidden).T, dz2[:, g * hidden:(g + 1) * hidden], out=part_rk)
            launch(_place_columns_kernel, part_rk.size, part_rk, drecurrent_kernel, g * hidden)
    else:
        fill(drecurrent_kernel, 0)
    dbias = None
    if cache["has_bias"]:
        dbias = column_sum(dz2)
    dx = cuda.device_array((batch, n_time, dim), dtype=dtype)
    launch(_from_time_major_kernel, dx.size, dx_tm, dx, cache["go_backwards"])
    return dx, dkernel, drecurrent_kernel, dbias, dh0, dc
