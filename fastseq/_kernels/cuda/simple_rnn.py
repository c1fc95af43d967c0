"""numba.cuda: SimpleRNN forward and backward through time, Keras's semantics.

Same functions, signatures and results as the NumPy reference
(:mod:`fastseq._kernels.reference.simple_rnn`); arrays are device arrays (NumPy arrays are
copied to the device) and everything, the cache included, stays on the device.

    h = activation(x_t @ kernel + bias + (h_prev * recurrent_mask) @ recurrent_kernel)

with ``x_t * input_mask`` for ``x_t`` when an input dropout mask is given (one mask of
each kind per sequence, for every step, holding the inverted scaling already); activation
"tanh", "relu", "sigmoid" or "linear" (None: "linear").

Forward: one GEMM for the input projection of all T steps, then per step one GEMM
accumulating ``h_prev @ recurrent_kernel`` onto that projection and one fused kernel
(bias, activation, mask, output). Backward: per step one fused kernel (dz from the
activation's output) and one GEMM (dz @ recurrent_kernel.T); the weight gradients and dx
are three GEMMs after the loop and dbias a deterministic column sum. Masked steps keep the
state and repeat the previous output; go_backwards processes the steps from last to first,
outputs in processing order.
"""
import math

import numpy as np
from numba import cuda

from .elementwise import _copy, as_device, column_sum, launch, scalar, sigmoid, zeros
from .gemm import gemm
from .lstm import _mask_time_major

__all__ = ["simple_rnn_forward", "simple_rnn_backward"]

_ACTIVATIONS = {"tanh": 0, "relu": 1, "sigmoid": 2, "linear": 3}


def _activation_code(activation):
    if activation is None:
        activation = "linear"
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        names = ", ".join(repr(a) for a in _ACTIVATIONS)
        raise ValueError(f"activation must be one of {names} (or None for 'linear'), "
                         f"got {activation!r}")
    return _ACTIVATIONS[activation]


# ---------------------------------------------------------------------------- layout
@cuda.jit(cache=True)
def _to_time_major_kernel(x, x_tm, reverse, input_mask, has_input_mask):
    # x: (B, T, D) -> x_tm: (T, B, D), step s of processing order (T-1-s when reverse),
    # times input_mask (B, D) when has_input_mask
    n_time, batch, dim = x_tm.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x_tm.size, step):
        s = i // (batch * dim)
        rest = i - s * batch * dim
        b = rest // dim
        d = rest - b * dim
        t = n_time - 1 - s if reverse else s
        v = x[b, t, d]
        if has_input_mask:
            v *= input_mask[b, d]
        x_tm[s, b, d] = v


@cuda.jit(cache=True)
def _from_time_major_kernel(x_tm, x, reverse, input_mask, has_input_mask):
    # x_tm: (T, B, D) -> x: (B, T, D), the inverse of _to_time_major_kernel (times the
    # input mask again: the chain rule of x * input_mask)
    batch, n_time, dim = x.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        b = i // (n_time * dim)
        rest = i - b * n_time * dim
        t = rest // dim
        d = rest - t * dim
        s = n_time - 1 - t if reverse else t
        v = x_tm[s, b, d]
        if has_input_mask:
            v *= input_mask[b, d]
        x[b, t, d] = v


@cuda.jit(cache=True)
def _multiply_kernel(a, b, out):
    # a, b, out: (B, H) -> out = a * b
    width = out.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        r = i // width
        c = i - r * width
        out[r, c] = a[r, c] * b[r, c]


# ---------------------------------------------------------------------------- forward
@cuda.jit(cache=True)
def _step_forward_kernel(z, bias, has_bias, activation, h_prev, h_new, mask_tm, has_mask, s,
                         outputs, one):
    # z: (B, H) = x_s @ kernel + h_prev' @ recurrent_kernel; bias: (H,); h_prev: (B, H)
    # -> h_new: (B, H), outputs[:, s]: (B, H)
    batch, hidden = h_new.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        if has_mask and mask_tm[s, b] == 0:
            h = h_prev[b, u]  # masked: the state passes through, the output repeats h
        else:
            v = z[b, u]
            if has_bias:
                v += bias[u]
            if activation == 0:
                h = math.tanh(v)
            elif activation == 1:
                h = zero if v < zero else v  # NaN passes, as np.maximum
            elif activation == 2:
                h = sigmoid(v, one)
            else:
                h = v
        h_new[b, u] = h
        outputs[b, s, u] = h


def _optional(value, name, shape, dtype):
    if value is None:
        return None
    value = as_device(value, name, ndim=len(shape), dtype=dtype)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None,
                       go_backwards=False, training=True, activation="tanh", input_mask=None,
                       recurrent_mask=None):
    """SimpleRNN over a batch of sequences, on the device.

    # x: (B, T, D), kernel: (D, H), recurrent_kernel: (H, H), bias: (H,) or None,
    # h0: (B, H), mask: (B, T), input_mask: (B, D), recurrent_mask: (B, H)
    # -> outputs: (B, T, H), h_last: (B, H)

    Returns ``(outputs, h_last, cache)``; cache is None unless ``training``."""
    code = _activation_code(activation)
    x = as_device(x, "x", ndim=3)
    dtype = x.dtype
    kernel = as_device(kernel, "kernel", ndim=2, dtype=dtype)
    recurrent_kernel = as_device(recurrent_kernel, "recurrent_kernel", ndim=2, dtype=dtype)
    batch, n_time, dim = x.shape
    hidden = recurrent_kernel.shape[0]
    if hidden < 1 or tuple(recurrent_kernel.shape) != (hidden, hidden):
        raise ValueError("recurrent_kernel must have shape (H, H) with H >= 1, "
                         f"got {tuple(recurrent_kernel.shape)}")
    if tuple(kernel.shape) != (dim, hidden):
        raise ValueError(f"kernel must have shape (D, H) = {(dim, hidden)}, "
                         f"got {tuple(kernel.shape)}")
    has_bias = bias is not None
    if has_bias:
        bias = as_device(bias, "bias", ndim=1, dtype=dtype)
        if tuple(bias.shape) != (hidden,):
            raise ValueError(f"bias must have shape (H,) = {(hidden,)}, "
                             f"got {tuple(bias.shape)}")
    else:
        bias = zeros((1,), dtype)  # placeholder, never read
    state_shape = (batch, hidden)
    h0 = _optional(h0, "h0", state_shape, dtype)
    if h0 is None:
        h0 = zeros(state_shape, dtype)
    input_mask = _optional(input_mask, "input_mask", (batch, dim), dtype)
    recurrent_mask = _optional(recurrent_mask, "recurrent_mask", state_shape, dtype)
    has_input_mask = input_mask is not None
    has_recurrent_mask = recurrent_mask is not None
    placeholder = cuda.device_array((1, 1), dtype=dtype)  # never read
    mask_tm = _mask_time_major(mask, batch, n_time, go_backwards)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((1, 1), dtype=np.uint8)  # placeholder, never read

    x_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    launch(_to_time_major_kernel, x_tm.size, x, x_tm, bool(go_backwards),
           input_mask if has_input_mask else placeholder, has_input_mask)
    # the input projection of every step: one (T*B, D) @ (D, H) GEMM; each step's GEMM
    # then accumulates h_prev @ recurrent_kernel onto its slice
    z = cuda.device_array((n_time, batch, hidden), dtype=dtype)
    if z.size:
        gemm(x_tm.reshape(n_time * batch, dim), kernel, out=z.reshape(n_time * batch, hidden))
    hs = cuda.device_array((n_time + 1, batch, hidden), dtype=dtype)
    hs[0].copy_to_device(h0)
    # the states the recurrent products read: h_prev * recurrent_mask (kept for the backward)
    h_read = cuda.device_array((n_time, batch, hidden), dtype=dtype) if has_recurrent_mask \
        else hs
    outputs = cuda.device_array((batch, n_time, hidden), dtype=dtype)
    one = scalar(1, dtype)
    for s in range(n_time):
        if batch == 0:
            break
        if has_recurrent_mask:
            launch(_multiply_kernel, batch * hidden, hs[s], recurrent_mask, h_read[s])
        gemm(h_read[s], recurrent_kernel, out=z[s], beta=1.0)
        launch(_step_forward_kernel, batch * hidden, z[s], bias, has_bias, code, hs[s],
               hs[s + 1], mask_tm, has_mask, s, outputs, one)
    h_last = _copy(hs[n_time])
    if not training:
        return outputs, h_last, None
    cache = {
        "x_tm": x_tm, "hs": hs, "h_read": h_read[:n_time],
        "mask_tm": mask_tm if has_mask else None,
        # the weights as they were (an optimizer may update them in place before the backward)
        "kernel": _copy(kernel), "recurrent_kernel": _copy(recurrent_kernel),
        "has_bias": has_bias,
        "go_backwards": bool(go_backwards), "activation": code,
        "input_mask": input_mask, "recurrent_mask": recurrent_mask,
    }
    return outputs, h_last, cache


# ---------------------------------------------------------------------------- backward
@cuda.jit(cache=True)
def _step_backward_kernel(h_cur, activation, dh_rec, dh_total, grad_outputs, has_grad_outputs,
                          recurrent_mask, has_recurrent_mask, mask_tm, has_mask, s, dz_s, one):
    # h_cur: (B, H) the state after step s (the activation's output); dh_rec: (B, H) =
    # dz[s+1] @ recurrent_kernel.T (or grad_h_last when s = T-1); dh_total: (B, H) the dh of
    # step s+1 (kept for rows masked there); grad_outputs: (B, T, H);
    # recurrent_mask: (B, H) -> dz_s: (B, H), dh_total <- dh of step s
    batch, hidden = h_cur.shape
    n_time = mask_tm.shape[0]
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        dh = dh_rec[b, u]
        if s + 1 < n_time:
            if has_mask and mask_tm[s + 1, b] == 0:
                dh = dh_total[b, u]  # step s+1 was masked: its dh passed straight through
            elif has_recurrent_mask:
                dh *= recurrent_mask[b, u]  # the product read h_prev * recurrent_mask
        if has_grad_outputs:
            dh += grad_outputs[b, s, u]
        dh_total[b, u] = dh
        if has_mask and mask_tm[s, b] == 0:
            dz_s[b, u] = zero  # masked: the state passed through unchanged
            continue
        y = h_cur[b, u]
        if activation == 0:
            dz_s[b, u] = dh * (one - y * y)
        elif activation == 1:
            dz_s[b, u] = dh if y > zero else zero
        elif activation == 2:
            dz_s[b, u] = dh * (y * (one - y))
        else:
            dz_s[b, u] = dh


@cuda.jit(cache=True)
def _first_dh_kernel(dh_rec, dh_total, mask_tm, has_mask, recurrent_mask, has_recurrent_mask,
                     dh0):
    # dh_rec = dz[0] @ recurrent_kernel.T, dh_total: (B, H) the dh of step 0 -> dh0: (B, H)
    batch, hidden = dh0.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, batch * hidden, step):
        b = idx // hidden
        u = idx - b * hidden
        if has_mask and mask_tm[0, b] == 0:
            dh0[b, u] = dh_total[b, u]
        elif has_recurrent_mask:
            dh0[b, u] = dh_rec[b, u] * recurrent_mask[b, u]
        else:
            dh0[b, u] = dh_rec[b, u]


def simple_rnn_backward(cache, grad_outputs=None, grad_h_last=None):
    """Gradients of :func:`simple_rnn_forward` from its cache, on the device.

    # grad_outputs: (B, T, H), grad_h_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, H), drecurrent_kernel: (H, H), dbias: (H,) or None,
    #    dh0: (B, H)

    grad_outputs is in the forward's output order (processing order)."""
    if cache is None:
        raise ValueError("simple_rnn_backward needs the cache of "
                         "simple_rnn_forward(..., training=True)")
    x_tm, hs, h_read = cache["x_tm"], cache["hs"], cache["h_read"]
    mask_tm = cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    input_mask, recurrent_mask = cache["input_mask"], cache["recurrent_mask"]
    n_time, batch, dim = x_tm.shape
    hidden = hs.shape[2]
    dtype = x_tm.dtype
    state_shape = (batch, hidden)
    grad_outputs = _optional(grad_outputs, "grad_outputs", (batch, n_time, hidden), dtype)
    grad_h_last = _optional(grad_h_last, "grad_h_last", state_shape, dtype)
    has_mask = mask_tm is not None
    if not has_mask:
        mask_tm = cuda.device_array((max(n_time, 1), 1), dtype=np.uint8)  # shape only
    has_grad_outputs = grad_outputs is not None
    if not has_grad_outputs:
        grad_outputs = cuda.device_array((1, 1, 1), dtype=dtype)  # placeholder, never read
    has_input_mask = input_mask is not None
    has_recurrent_mask = recurrent_mask is not None
    placeholder = cuda.device_array((1, 1), dtype=dtype)  # never read

    dh_rec = zeros(state_shape, dtype) if grad_h_last is None else _copy(grad_h_last)
    dh_total = cuda.device_array(state_shape, dtype=dtype)
    dz = cuda.device_array((n_time, batch, hidden), dtype=dtype)
    recurrent_kernel_t = recurrent_kernel.T  # a strided view: the GEMM reads it in place
    one = scalar(1, dtype)
    for s in range(n_time - 1, -1, -1):
        if batch == 0:
            break
        launch(_step_backward_kernel, batch * hidden, hs[s + 1], cache["activation"], dh_rec,
               dh_total, grad_outputs, has_grad_outputs,
               recurrent_mask if has_recurrent_mask else placeholder, has_recurrent_mask,
               mask_tm, has_mask, s, dz[s], one)
        gemm(dz[s], recurrent_kernel_t, out=dh_rec)
    if n_time and batch and (has_mask or has_recurrent_mask):
        dh0 = cuda.device_array(state_shape, dtype=dtype)
        launch(_first_dh_kernel, batch * hidden, dh_rec, dh_total, mask_tm, has_mask,
               recurrent_mask if has_recurrent_mask else placeholder, has_recurrent_mask,
               dh0)
    else:
        dh0 = dh_rec
    rows = n_time * batch
    dz2 = dz.reshape(rows, hidden)
    dkernel = cuda.device_array((dim, hidden), dtype=dtype)
    drecurrent_kernel = cuda.device_array((hidden, hidden), dtype=dtype)
    gemm(x_tm.reshape(rows, dim).T, dz2, out=dkernel)  # x_tm holds x * input_mask
    gemm(h_read.reshape(rows, hidden).T, dz2, out=drecurrent_kernel)
    dbias = None
    if cache["has_bias"]:
        dbias = column_sum(dz2)
    dx_tm = cuda.device_array((n_time, batch, dim), dtype=dtype)
    gemm(dz2, kernel.T, out=dx_tm.reshape(rows, dim))
    dx = cuda.device_array((batch, n_time, dim), dtype=dtype)
    launch(_from_time_major_kernel, dx.size, dx_tm, dx, cache["go_backwards"],
           input_mask if has_input_mask else placeholder, has_input_mask)
    return dx, dkernel, drecurrent_kernel, dbias, dh0
