"""NumPy reference: the SimpleRNN forward and backward through time, with Keras's semantics.

Keras 3's ``SimpleRNNCell`` (keras/src/layers/rnn/simple_rnn.py)::

    h = activation(x_t @ kernel + bias + h_prev @ recurrent_kernel)     # (B, H)

with activation "tanh" (Keras's default), "relu", "sigmoid" or "linear" (Keras's None).

Dropout as the cell's: one input mask (B, D) and one recurrent mask (B, H) per sequence,
the same for every step (``DropoutRNNCell`` caches a single mask of each kind; SimpleRNNCell
sets no ``dropout_mask_count``). The masks hold the inverted scaling already (0 or
1 / (1 - rate)): the input projection reads ``x_t * input_mask`` and the recurrent product
``(h_prev * recurrent_mask) @ recurrent_kernel``. The state itself is never masked.

Masks as Keras's RNN (and our LSTM): at a masked step (row b, step t) the state keeps its
value and the output repeats the previous output, which is the state h (h0 before any
unmasked step). With ``go_backwards`` the sequence is processed from the last step to the
first and the outputs come back in processing order.

This is the tests' oracle and the benchmarks' baseline: plain NumPy done sensibly, one
matmul for the input projection of all steps, one matmul per step for the recurrence,
time-major buffers so that every per-step slice is contiguous.
"""
import numpy as np

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "ACTIVATIONS"]

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _activate(name, z, out):
    # out = activation(z); out may be z
    if name == "tanh":
        np.tanh(z, out=out)
    elif name == "relu":
        np.maximum(z, 0, out=out)
    elif name == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-z) = inf for z << 0 gives the limit 0
            np.exp(-z, out=out)
        out += 1.0
        np.reciprocal(out, out=out)
    elif name == "linear":
        out[...] = z
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return out


def _derivative(name, y):
    # d activation / dz at the z whose activation is y
    if name == "tanh":
        return 1.0 - y * y
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "sigmoid":
        return y * (1.0 - y)
    return np.ones_like(y)


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, mask=None,
                       go_backwards=False, training=True, activation="tanh", input_mask=None,
                       recurrent_mask=None):
    # x: (B, T, D), kernel: (D, H), recurrent_kernel: (H, H), bias: (H,) or None,
    # h0: (B, H), mask: (B, T), input_mask: (B, D), recurrent_mask: (B, H)
    # -> outputs: (B, T, H), h_last: (B, H)
    B, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    if activation is None:
        activation = "linear"
    # processing order: step s reads time step T-1-s when going backwards
    xs = x[:, ::-1] if go_backwards else x
    ms = None
    if mask is not None:
        ms = np.ascontiguousarray((mask[:, ::-1] if go_backwards else mask).T)  # (T, B)
    x_tm = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, B, D)
    if input_mask is not None:
        x_tm = x_tm * input_mask  # the same (B, D) mask at every step (x_tm may view x)
    # one GEMM for the input projection of every step: (T*B, D) @ (D, H)
    zs = (x_tm.reshape(T * B, D) @ kernel).reshape(T, B, H)
    if bias is not None:
        zs += bias
    hs = np.empty((T + 1, B, H), dtype=dtype)  # hs[s + 1]: h after step s; hs[0] = h0
    hs[0] = 0 if h0 is None else h0
    for s in range(T):
        h_prev = hs[s] if recurrent_mask is None else hs[s] * recurrent_mask
        z = zs[s] + h_prev @ recurrent_kernel
        h_new = _activate(activation, z, hs[s + 1])
        if ms is not None:
            keep = ~ms[s]
            h_new[keep] = hs[s][keep]
    # the output at every step is the state h (masked steps repeat it), in processing order
    outputs = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))
    h_last = hs[T].copy()
    if not training:
        return outputs, h_last, None
    cache = {
        "x_tm": x_tm, "hs": hs, "mask_tm": ms, "kernel": kernel,
        "recurrent_kernel": recurrent_kernel, "has_bias": bias is not None,
        "go_backwards": go_backwards, "activation": activation, "input_mask": input_mask,
        "recurrent_mask": recurrent_mask,
    }
    return outputs, h_last, cache


def simple_rnn_backward(cache, grad_outputs=None, grad_h_last=None):
    # grad_outputs: (B, T, H), grad_h_last: (B, H)
    # -> dx: (B, T, D), dkernel: (D, H), drecurrent_kernel: (H, H), dbias: (H,) or None,
    #    dh0: (B, H)
    x_tm, hs, ms = cache["x_tm"], cache["hs"], cache["mask_tm"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    input_mask, recurrent_mask = cache["input_mask"], cache["recurrent_mask"]
    activation = cache["activation"]
    T, B, D = x_tm.shape
    H = hs.shape[2]
    dtype = x_tm.dtype
    dh = np.zeros((B, H), dtype=dtype) if grad_h_last is None else grad_h_last.astype(dtype)
    dz = np.empty((T, B, H), dtype=dtype)
    for s in range(T - 1, -1, -1):
        if grad_outputs is not None:
            dh = dh + grad_outputs[:, s]
        np.multiply(dh, _derivative(activation, hs[s + 1]), out=dz[s])
        dh_prev = dz[s] @ recurrent_kernel.T
        if recurrent_mask is not None:
            dh_prev *= recurrent_mask
        if ms is not None:
            # masked rows: the state passed through unchanged, so does its gradient
            keep = ~ms[s]
            dz[s][keep] = 0
            dh_prev[keep] = dh[keep]
        dh = dh_prev
    dz2 = dz.reshape(T * B, H)
    dkernel = x_tm.reshape(T * B, D).T @ dz2  # x_tm holds the inputs times input_mask
    h_prev = hs[:-1] if recurrent_mask is None else hs[:-1] * recurrent_mask
    drecurrent_kernel = h_prev.reshape(T * B, H).T @ dz2
    dbias = dz2.sum(axis=0) if cache["has_bias"] else None
    dx_tm = (dz2 @ kernel.T).reshape(T, B, D)
    if input_mask is not None:
        dx_tm *= input_mask
    dx = dx_tm.transpose(1, 0, 2)
    if cache["go_backwards"]:
        dx = dx[:, ::-1]
    return np.ascontiguousarray(dx), dkernel, drecurrent_kernel, dbias, dh
