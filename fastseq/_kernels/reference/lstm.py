"""NumPy reference: the LSTM forward and backward through time, with Keras's semantics.

Gates in Keras's order i, f, c, o; activation tanh, recurrent activation sigmoid:

    z = x_t @ kernel + h @ recurrent_kernel + bias          # (B, 4H)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_c), sigmoid(z_o)
    c = f * c + i * g;  h = o * tanh(c)

Dropout as Keras's implementation 1 (the one Keras uses whenever recurrent_dropout > 0):
per-gate masks fixed for the whole sequence, already scaled (0 or 1 / (1 - rate)).
``input_masks`` (4, B, D): ``x_g = (x_t * input_masks[g]) @ W_g``; ``recurrent_masks``
(4, B, H): gate g's recurrent product reads ``h * recurrent_masks[g]``, while the cell
update ``c = f * c + i * g; h = o * tanh(c)`` uses the undropped states.

Masks as Keras's RNN: at a masked step (row b, step t) the state (h, c) keeps its value and
the output repeats the previous output, which is the state h (h0 before any unmasked step).
With ``go_backwards`` the sequence is processed from the last step to the first and the
outputs come back in processing order.

This is the tests' oracle and the benchmarks' baseline, so it is plain NumPy done sensibly:
one matmul for the input projection of all steps, one matmul per step for the recurrence,
arrays preallocated, time-major buffers so that every per-step slice is contiguous.
"""
import numpy as np

__all__ = ["lstm_forward", "lstm_backward"]


def _sigmoid(z, out):
    # 1 / (1 + exp(-z)); exp overflows to inf for z << 0, which gives the right limit 0.
    # (-z, not np.negative(z, out=out): NumPy 2.4's float32 negative reads an (N, 1) strided
    # input as if contiguous when given a strided out, H = 1 here.)
    with np.errstate(over="ignore"):
        np.exp(-z, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, mask=None,
                 go_backwards=False, training=True, input_masks=None, recurrent_masks=None,
                 x_proj=None, return_sequences=True):
    # x: (B, T, D), kernel: (D, 4H), recurrent_kernel: (H, 4H), bias: (4H,) or None,
    # h0, c0: (B, H), mask: (B, T), input_masks: (4, B, D) or None, recurrent_masks:
    # (4, B, H) or None -> outputs: (B, T, H), h_last: (B, H), c_last: (B, H)
    # x_proj: (V, 4H) or None: then x is (B, T) indices, the input projection of step t of
    # row b is x_proj[x[b, t]] (an Embedding folded into the kernel: embeddings @ kernel)
    # and kernel is not read; inference only. return_sequences=False: outputs is None
    if x_proj is not None and (training or input_masks is not None):
        raise ValueError("x_proj: inference only (training=False, no input_masks)")
    B, T = x.shape[:2]
    H = recurrent_kernel.shape[0]
    dtype = x.dtype if x_proj is None else x_proj.dtype
    # processing order: step s reads time step T-1-s when going backwards
    xs = x[:, ::-1] if go_backwards else x
    ms = None
    if mask is not None:
        ms = np.ascontiguousarray((mask[:, ::-1] if go_backwards else mask).T)  # (T, B)
    x_tm = np.ascontiguousarray(xs.swapaxes(0, 1))  # (T, B, D), or (T, B) indices
    # one GEMM for the input projection of every step: (T*B, D) @ (D, 4H), or one per gate
    # on the gate's dropped-out inputs, or a gather from the precomputed projections
    if x_proj is not None:
        gates = x_proj[x_tm].astype(dtype, copy=True)  # (T, B, 4H)
    elif input_masks is None:
        D = x.shape[2]
        gates = (x_tm.reshape(T * B, D) @ kernel).reshape(T, B, 4 * H)
    else:
        gates = np.empty((T, B, 4 * H), dtype=dtype)
        for g in range(4):
            sl = slice(g * H, (g + 1) * H)
            gates[:, :, sl] = (x_tm * input_masks[g]) @ kernel[:, sl]
    if bias is not None:
        gates += bias
    hs = np.empty((T + 1, B, H), dtype=dtype)  # hs[s + 1]: h after step s; hs[0] = h0
    cs = np.empty((T + 1, B, H), dtype=dtype)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    z = np.empty((B, 4 * H), dtype=dtype)
    tanh_c = np.empty((B, H), dtype=dtype)
    for s in range(T):
        if recurrent_masks is None:
            np.matmul(hs[s], recurrent_kernel, out=z)
        else:
            for g in range(4):  # each gate reads its own dropped-out h
                sl = slice(g * H, (g + 1) * H)
                np.matmul(hs[s] * recurrent_masks[g], recurrent_kernel[:, sl], out=z[:, sl])
        z += gates[s]
        _sigmoid(z[:, :2 * H], gates[s, :, :2 * H])          # i, f
        np.tanh(z[:, 2 * H:3 * H], out=gates[s, :, 2 * H:3 * H])  # g
        _sigmoid(z[:, 3 * H:], gates[s, :, 3 * H:])          # o
        i, f = gates[s, :, :H], gates[s, :, H:2 * H]
        g, o = gates[s, :, 2 * H:3 * H], gates[s, :, 3 * H:]
        c_new, h_new = cs[s + 1], hs[s + 1]
        np.multiply(f, cs[s], out=c_new)
        c_new += i * g
        np.tanh(c_new, out=tanh_c)
        np.multiply(o, tanh_c, out=h_new)
        if ms is not None:
            keep = ~ms[s]
            c_new[keep] = cs[s][keep]
            h_new[keep] = hs[s][keep]
    # the output at every step is the state h (masked steps repeat it), in processing order
    outputs = np.ascontiguousarray(hs[1:].transpose(1, 0, 2)) if return_sequences else None
    h_last, c_last = hs[T].copy(), cs[T].copy()
    if not training:
        return outputs, h_last, c_last, None
    cache = {
        "x_tm": x_tm, "gates": gates, "hs": hs, "cs": cs, "mask_tm": ms,
        "kernel": kernel, "recurrent_kernel": recurrent_kernel, "has_bias": bias is not None,
        "go_backwards": go_backwards,
        "input_masks": input_masks, "recurrent_masks": recurrent_masks,
    }
    return outputs, h_last, c_last, cache


def lstm_backward(cache, grad_outputs=None, grad_h_last=None, grad_c_last=None):
    # grad_outputs: (B, T, H), grad_h_last, grad_c_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, 4H), drecurrent_kernel: (H, 4H), dbias: (4H,) or None,
    #    dh0: (B, H), dc0: (B, H)
    x_tm, gates, hs, cs = cache["x_tm"], cache["gates"], cache["hs"], cache["cs"]
    ms = cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    im, rm = cache.get("input_masks"), cache.get("recurrent_masks")
    T, B, D = x_tm.shape
    H = hs.shape[2]
    dtype = x_tm.dtype
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.astype(dtype)
    dc = np.zeros((B, H), dtype=dtype) if grad_c_last is None else grad_c_last.astype(dtype)
    dz = np.empty((T, B, 4 * H), dtype=dtype)
    tanh_c = np.empty((B, H), dtype=dtype)
    recurrent_kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    U_t = None if rm is None else \
        [np.ascontiguousarray(recurrent_kernel[:, g * H:(g + 1) * H].T) for g in range(4)]
    for s in range(T - 1, -1, -1):
        if grad_outputs is not None:
            dh = dh + grad_outputs[:, s]
        i, f = gates[s, :, :H], gates[s, :, H:2 * H]
        g, o = gates[s, :, 2 * H:3 * H], gates[s, :, 3 * H:]
        np.tanh(cs[s + 1], out=tanh_c)
        dzs = dz[s]
        # dc at step s: the carried dc plus the path through h = o * tanh(c)
        dc_s = dc + dh * o * (1.0 - tanh_c * tanh_c)
        np.multiply(dh * tanh_c, o * (1.0 - o), out=dzs[:, 3 * H:])               # o
        np.multiply(dc_s * g, i * (1.0 - i), out=dzs[:, :H])                      # i
        np.multiply(dc_s * cs[s], f * (1.0 - f), out=dzs[:, H:2 * H])             # f
        np.multiply(dc_s * i, 1.0 - g * g, out=dzs[:, 2 * H:3 * H])               # g
        if rm is None:
            dh_prev = dzs @ recurrent_kernel_t
        else:
            # gate g's recurrent product read h * rm[g]
            dh_prev = np.zeros((B, H), dtype=dtype)
            for g in range(4):
                dh_prev += (dzs[:, g * H:(g + 1) * H] @ U_t[g]) * rm[g]
        dc_prev = dc_s * f
        if ms is not None:
            # masked rows: the state passed through unchanged, so do its gradients
            keep = ~ms[s]
            dzs[keep] = 0
            dh_prev[keep] = dh[keep]
            dc_prev[keep] = dc[keep]
        dh, dc = dh_prev, dc_prev
    rows = T * B
    dz2 = dz.reshape(rows, 4 * H)
    # dkernel and dx: every gate reads its own dropped-out inputs
    if im is None:
        dkernel = x_tm.reshape(rows, D).T @ dz2
        dx_tm = (dz2 @ kernel.T).reshape(T, B, D)
    else:
        dkernel = np.empty((D, 4 * H), dtype=dtype)
        dx_tm = np.zeros((T, B, D), dtype=dtype)
        for g in range(4):
            sl = slice(g * H, (g + 1) * H)
            dkernel[:, sl] = (x_tm * im[g]).reshape(rows, D).T @ dz2[:, sl]
            dx_tm += (dz[:, :, sl] @ kernel[:, sl].T) * im[g]
    # drecurrent_kernel: gate g's recurrent product read h (dropped out with rm[g])
    if rm is None:
        drecurrent_kernel = hs[:-1].reshape(rows, H).T @ dz2
    else:
        drecurrent_kernel = np.empty((H, 4 * H), dtype=dtype)
        for g in range(4):
            sl = slice(g * H, (g + 1) * H)
            drecurrent_kernel[:, sl] = (hs[:-1] * rm[g]).reshape(rows, H).T @ dz2[:, sl]
    dbias = dz2.sum(axis=0) if cache["has_bias"] else None
    dx = dx_tm.transpose(1, 0, 2)
    if cache["go_backwards"]:
        dx = dx[:, ::-1]
    return np.ascontiguousarray(dx), dkernel, drecurrent_kernel, dbias, dh, dc
