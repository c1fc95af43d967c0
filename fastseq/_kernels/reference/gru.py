"""NumPy reference: the GRU forward and backward through time, with Keras 3's semantics.

Gates in Keras's order z, r, h: ``kernel`` (D, 3H), ``recurrent_kernel`` (H, 3H); activation
tanh, recurrent activation sigmoid. With ``reset_after=True`` (Keras's default, cuDNN's
convention) ``bias`` is (2, 3H), the input bias and the recurrent bias::

    x_g = x_t @ W_g + b_in_g                           # g = z, r, h
    z = sigmoid(x_z + h @ U_z + b_rec_z);  r = sigmoid(x_r + h @ U_r + b_rec_r)
    hh = tanh(x_h + r * (h @ U_h + b_rec_h))
    h = z * h + (1 - z) * hh

With ``reset_after=False`` ``bias`` is (3H,), the input bias only, and the reset gate acts
before the product: ``hh = tanh(x_h + (r * h) @ U_h)``.

Dropout as Keras's implementation 1 (the one Keras uses whenever recurrent_dropout > 0):
per-gate masks fixed for the whole sequence, already scaled (0 or 1 / (1 - rate)).
``input_masks`` (3, B, D): ``x_g = (x_t * input_masks[g]) @ W_g``; ``recurrent_masks``
(3, B, H): gate g's recurrent product reads ``h * recurrent_masks[g]`` (for reset_after=False
the h gate's is ``(r * (h * recurrent_masks[2])) @ U_h``), while the update ``z * h + (1 - z)
* hh`` uses the undropped h.

Masks as Keras's RNN: at a masked step (row b, step t) the state keeps its value and the
output repeats the previous output, which is the state h (h0 before any unmasked step). With
``go_backwards`` the sequence is processed from the last step to the first and the outputs
come back in processing order.

This is the tests' oracle and the benchmarks' baseline: plain NumPy done sensibly, one step
at a time: one matmul for the input projection of all steps, one matmul per step for the
recurrence (two with reset_after=False), time-major buffers so that every per-step slice
is contiguous; the weight gradients are matmuls after the loop.
"""
import numpy as np

from .lstm import _sigmoid

__all__ = ["gru_forward", "gru_backward"]


def _split_bias(bias, H, reset_after):
    """(input bias (3H,) or None, recurrent bias (3H,) or None)"""
    if bias is None:
        return None, None
    if reset_after:
        return bias[0], bias[1]
    return bias, None


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None, go_backwards=False,
                training=True, reset_after=True, input_masks=None, recurrent_masks=None):
    # x: (B, T, D), kernel: (D, 3H), recurrent_kernel: (H, 3H), bias: (2, 3H) (reset_after)
    # or (3H,) or None, h0: (B, H), mask: (B, T), input_masks: (3, B, D) or None,
    # recurrent_masks: (3, B, H) or None -> outputs: (B, T, H), h_last: (B, H), cache
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    bias_in, bias_rec = _split_bias(bias, H, reset_after)
    xs = x[:, ::-1] if go_backwards else x
    ms = None
    if mask is not None:
        ms = np.ascontiguousarray((mask[:, ::-1] if go_backwards else mask).T)  # (T, B)
    x_tm = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, B, D)
    # the input projection of every step: one GEMM (T*B, D) @ (D, 3H), or one per gate
    # on the gate's dropped-out inputs
    if input_masks is None:
        xw = (x_tm.reshape(T * B, D) @ kernel).reshape(T, B, 3 * H)
    else:
        xw = np.empty((T, B, 3 * H), dtype=dtype)
        for g in range(3):
            xw[:, :, g * H:(g + 1) * H] = (x_tm * input_masks[g]) @ kernel[:, g * H:(g + 1) * H]
    if bias_in is not None:
        xw += bias_in
    U_z, U_r = recurrent_kernel[:, :H], recurrent_kernel[:, H:2 * H]
    U_zr, U_h = recurrent_kernel[:, :2 * H], recurrent_kernel[:, 2 * H:]
    hs = np.empty((T + 1, B, H), dtype=dtype)  # hs[s + 1]: h after step s; hs[0] = h0
    hs[0] = 0 if h0 is None else h0
    # per step: z, r, hh and the inner term (reset_after: h @ U_h + b_rec_h; otherwise the
    # h gate's GEMM input r * h), the activations the backward needs
    gates = np.empty((T, B, 4 * H), dtype=dtype)
    hu = np.empty((B, 3 * H), dtype=dtype)
    for s in range(T):
        h = hs[s]
        if recurrent_masks is None:
            if reset_after:
                np.matmul(h, recurrent_kernel, out=hu)
            else:
                np.matmul(h, U_zr, out=hu[:, :2 * H])
        else:
            np.matmul(h * recurrent_masks[0], U_z, out=hu[:, :H])
            np.matmul(h * recurrent_masks[1], U_r, out=hu[:, H:2 * H])
            if reset_after:
                np.matmul(h * recurrent_masks[2], U_h, out=hu[:, 2 * H:])
        if bias_rec is not None:
            hu += bias_rec
        z, r = gates[s, :, :H], gates[s, :, H:2 * H]
        hh, inner = gates[s, :, 2 * H:3 * H], gates[s, :, 3 * H:]
        _sigmoid(xw[s, :, :2 * H] + hu[:, :2 * H], gates[s, :, :2 * H])  # z, r
        if reset_after:
            inner[...] = hu[:, 2 * H:]
            np.tanh(xw[s, :, 2 * H:] + r * inner, out=hh)
        else:
            np.multiply(r, h if recurrent_masks is None else h * recurrent_masks[2], out=inner)
            np.tanh(xw[s, :, 2 * H:] + inner @ U_h, out=hh)
        h_new = hs[s + 1]
        np.multiply(z, h, out=h_new)
        h_new += (1 - z) * hh
        if ms is not None:
            keep = ~ms[s]
            h_new[keep] = h[keep]
    # the output at every step is the state h (masked steps repeat it), in processing order
    outputs = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    h_last = hs[T].copy()
    if not training:
        return outputs, h_last, None
    cache = {
        "x_tm": x_tm, "gates": gates, "hs": hs, "mask_tm": ms,
        "kernel": kernel, "recurrent_kernel": recurrent_kernel, "has_bias": bias is not None,
        "go_backwards": go_backwards, "reset_after": reset_after,
        "input_masks": input_masks, "recurrent_masks": recurrent_masks,
    }
    return outputs, h_last, cache


def gru_backward(cache, grad_outputs=None, grad_h_last=None):
    # grad_outputs: (B, T, H), grad_h_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, 3H), drecurrent_kernel: (H, 3H),
    #    dbias: (2, 3H) (reset_after) or (3H,) or None, dh0: (B, H)
    x_tm, gates, hs, ms = cache["x_tm"], cache["gates"], cache["hs"], cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    reset_after = cache["reset_after"]
    im, rm = cache["input_masks"], cache["recurrent_masks"]
    T, B, D = x_tm.shape
    H = hs.shape[2]
    dtype = x_tm.dtype
    U_t = [np.ascontiguousarray(recurrent_kernel[:, g * H:(g + 1) * H].T) for g in range(3)]
    n_rec = 3 if reset_after else 2  # the gates whose recurrent GEMM reads h itself
    U_rec_t = np.ascontiguousarray(recurrent_kernel[:, :n_rec * H].T)  # (n_rec*H, H)
    rec = np.empty((B, n_rec * H), dtype=dtype)
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.astype(dtype)
    # the gradients of the gates' pre-activations: da[s] = (a_z, a_r, a_h) for the input
    # side (dkernel, dx, the input bias), du[s] for the h gate's recurrent side (reset_after:
    # of h @ U_h + b_rec_h; otherwise of (r * h) @ U_h, which is a_h itself)
    da = np.zeros((T, B, 3 * H), dtype=dtype)
    du = np.zeros((T, B, H), dtype=dtype)
    for s in range(T - 1, -1, -1):
        if grad_outputs is not None:
            dh = dh + grad_outputs[:, s]
        h = hs[s]
        z, r = gates[s, :, :H], gates[s, :, H:2 * H]
        hh, inner = gates[s, :, 2 * H:3 * H], gates[s, :, 3 * H:]
        da_z = dh * (h - hh) * z * (1 - z)
        da_h = dh * (1 - z) * (1 - hh * hh)
        dh_prev = dh * z  # through the update z * h
        if reset_after:
            du_h = da_h * r
            da_r = da_h * inner * r * (1 - r)
            rec[:, 2 * H:] = du_h
        else:
            du_h = da_h
            d_rh = da_h @ U_t[2]  # the gradient of r * h_h, h_h = h * recurrent_masks[2]
            h_h = h if rm is None else h * rm[2]
            da_r = d_rh * h_h * r * (1 - r)
            dh_prev += d_rh * r if rm is None else d_rh * r * rm[2]
        rec[:, :H], rec[:, H:2 * H] = da_z, da_r
        if rm is None:
            dh_prev += rec @ U_rec_t  # one GEMM for the gates that read h
        else:
            for g in range(n_rec):
                dh_prev += (rec[:, g * H:(g + 1) * H] @ U_t[g]) * rm[g]
        if ms is not None:
            # masked rows: the state passed through unchanged, and so does its gradient
            keep = ms[s]
            dh = np.where(keep[:, None], dh_prev, dh)
            da_z, da_r, da_h, du_h = (np.where(keep[:, None], d, 0) for d in
                                      (da_z, da_r, da_h, du_h))
        else:
            dh = dh_prev
        da[s, :, :H], da[s, :, H:2 * H], da[s, :, 2 * H:] = da_z, da_r, da_h
        du[s] = du_h
    rows = T * B
    da2 = da.reshape(rows, 3 * H)
    x2 = x_tm.reshape(rows, D)
    h2 = hs[:-1].reshape(rows, H)  # h before each step
    # dkernel and dx: every gate reads its own dropped-out inputs
    if im is None:
        dkernel = x2.T @ da2
        dx_tm = (da2 @ kernel.T).reshape(T, B, D)
    else:
        dkernel = np.empty((D, 3 * H), dtype=dtype)
        dx_tm = np.zeros((T, B, D), dtype=dtype)
        for g in range(3):
            sl = slice(g * H, (g + 1) * H)
            dkernel[:, sl] = (x_tm * im[g]).reshape(rows, D).T @ da2[:, sl]
            dx_tm += (da[:, :, sl] @ kernel[:, sl].T) * im[g]
    # drecurrent_kernel: gate g's recurrent GEMM read (dropped-out) h; reset_after=False's
    # h gate read r * h
    drecurrent_kernel = np.empty((H, 3 * H), dtype=dtype)
    for g in range(3):
        sl = slice(g * H, (g + 1) * H)
        if g == 2:
            d = du.reshape(rows, H)
            src = h2 if reset_after else gates[:, :, 3 * H:].reshape(rows, H)
            if reset_after and rm is not None:
                src = (hs[:-1] * rm[2]).reshape(rows, H)
        else:
            d = da2[:, sl]
            src = h2 if rm is None else (hs[:-1] * rm[g]).reshape(rows, H)
        drecurrent_kernel[:, sl] = src.T @ d
    dbias = None
    if cache["has_bias"]:
        dbias_in = da2.sum(axis=0)
        if reset_after:
            dbias_rec = np.concatenate([dbias_in[:2 * H], du.reshape(rows, H).sum(axis=0)])
            dbias = np.stack([dbias_in, dbias_rec])
        else:
            dbias = dbias_in
    dx = dx_tm.transpose(1, 0, 2)
    if cache["go_backwards"]:
        dx = dx[:, ::-1]
    return np.ascontiguousarray(dx), dkernel, drecurrent_kernel, dbias, dh
