"""LSTM kernels: the forward pass through time and its backward (BPTT), Keras's semantics.

Gates in Keras's order and layout: ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H) and
``bias`` (4H,) hold the gates i, f, c, o side by side; activation tanh, recurrent
activation sigmoid::

    z = x_t @ kernel + h @ recurrent_kernel + bias
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_c), sigmoid(z_o)
    c = f * c + i * g;  h = o * tanh(c)

All arrays are plain NumPy, float32 or float64 (one dtype for all of them).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._kernels import lstm as _lstm
from .._threads import get_num_threads
from ._blas import serial_blas
from ._checks import FLOAT_DTYPES

# The batch runs in blocks of rows, each block with its own small GEMMs, the blocks on up
# to get_num_threads() threads (fastseq.set_num_threads sets it; the thread count only
# decides which thread runs which block). The blocking depends on the batch size alone,
# never on the thread count, Numba's pool or the machine's cores, and the blocks' weight
# gradients are added in block order: results are bitwise the same for any thread count on
# any machine. Rows per block: enough for the per-step GEMM (4H x H by H x R) to run well
# (measured on one thread: at H = 256, R = 8 costs ~25% more per row than R = 16; at
# H = 100, R = 16 costs the same as R = 32), and blocks enough for a few cores: B < 32 in
# blocks of >= 8 rows (B = 16: 2 blocks), B < 128 of >= 16 (B = 32: 2, B = 64: 4), larger
# B of >= 32 (B = 256: 8).
_ROWS_PER_BLOCK = ((32, 8), (128, 16))  # (batch below, rows per block); beyond: 32


def _row_blocks(B):
    """The number of row blocks (of near-equal sizes) for a batch of B: a function of B."""
    rows = next((r for below, r in _ROWS_PER_BLOCK if B < below), 32)
    return max(1, B // rows)


def _float_input(a, name, expected, dtype=None):
    """``a`` as a C-contiguous float array of the expected rank; ``expected`` names the
    shape in the error messages, e.g. "(batch, time, features)"."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a, dtype=dtype if dtype is not None else np.float32)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the dtype of x), got {a.dtype}")
    ndim = len([part for part in expected.strip("()").split(",") if part.strip()])
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {expected}, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _check_shape(a, name, shape, expected):
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {expected} = {shape}, got {a.shape}")


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _mask_input(mask, B, T):
    if not isinstance(mask, np.ndarray):
        mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iu":
            raise TypeError(f"mask must be a bool (or integer 0/1) array, got dtype {mask.dtype}")
        mask = mask != 0
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (batch, time) = {(B, T)}, got shape {mask.shape}")
    _check_shape(mask, "mask", (B, T), "(batch, time)")
    return np.ascontiguousarray(mask)


def _dropout_masks(masks, name, shape, expected, dtype):
    """Per-gate dropout masks as a C-contiguous (4, B, F) array of the dtype of x."""
    masks = _float_input(masks, name, expected, dtype)
    _check_shape(masks, name, shape, expected)
    return masks


def lstm_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                 bias: ArrayLike | None, h0: ArrayLike | None = None,
                 c0: ArrayLike | None = None, mask: ArrayLike | None = None,
                 go_backwards: bool = False, training: bool = True,
                 input_masks: ArrayLike | None = None, recurrent_masks: ArrayLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict | None]:
    """The LSTM over a batch of sequences, as Keras's ``LSTM(return_sequences=True)``.

    x: (B, T, D) inputs; kernel: (D, 4H); recurrent_kernel: (H, 4H); bias: (4H,) or None;
    h0, c0: (B, H) initial state, or None for zeros; mask: (B, T) bool, or None.

    Dropout as Keras's LSTM with ``recurrent_dropout > 0`` (its implementation 1): masks
    fixed for the whole sequence, one per gate (i, f, c, o), already scaled (0 or
    1 / (1 - rate)); the caller draws them. ``input_masks`` (4, B, D): gate g reads
    ``x_t * input_masks[g]``; ``recurrent_masks`` (4, B, H): gate g's recurrent product
    reads ``h * recurrent_masks[g]``, while the cell update ``c = f * c + i * g;
    h = o * tanh(c)`` uses the undropped states. None (the default) costs nothing; the
    backward takes the masks from the cache.

    Masks follow Keras: at a masked step (row b, step t) the state (h, c) keeps its value
    and the output repeats the previous output, which is the state h (h0 before the first
    unmasked step; a fully masked sequence outputs h0 at every step). Steps masked for the
    whole batch (pre-padding) cost nothing. With ``go_backwards`` the sequence is processed
    from its last step to its first and ``outputs`` come back in processing order, as
    Keras returns them: ``outputs[:, 0]`` is the output after reading ``x[:, T - 1]``.

    Returns ``(outputs (B, T, H), h_last (B, H), c_last (B, H), cache)``; ``h_last`` and
    ``c_last`` are the state after the last step. ``cache`` is None unless ``training``;
    otherwise it is what :func:`lstm_backward` needs (it only reads it), an opaque dict
    holding the inputs (Ta*B*D values), the gate activations (4*Ta*B*H) and the states h
    and c before and after every step (2*(Ta+1)*B*H), where Ta <= T is the number of steps
    not masked for the whole batch: (6H + D) * B * Ta + 2 * B * H values, O(B*T*H), plus
    the dropout masks (4*B*(D+H)) when given; for the seed's IMDB model (B, T, D, H) =
    (64, 500, 32, 100) about 80 MB in float32.
    Inference (``training=False``) keeps O(B*H) state plus a 2 MB block of projections.

    The mask may also be an integer array (nonzero = keep). Inputs that are not
    C-contiguous are copied once.
    """
    x = _float_input(x, "x", "(batch, time, features)")
    dtype = x.dtype
    B, T, D = x.shape
    recurrent_kernel = _float_input(recurrent_kernel, "recurrent_kernel", "(units, 4 * units)",
                                    dtype)
    H = recurrent_kernel.shape[0]
    if H < 1 or recurrent_kernel.shape[1] != 4 * H:
        raise ValueError(
            f"recurrent_kernel must have shape (units, 4 * units) with units >= 1, "
            f"got {recurrent_kernel.shape}")
    kernel = _float_input(kernel, "kernel", "(features, 4 * units)", dtype)
    _check_shape(kernel, "kernel", (D, 4 * H), "(features, 4 * units)")
    has_bias = bias is not None
    if has_bias:
        bias = _float_input(bias, "bias", "(4 * units,)", dtype)
        _check_shape(bias, "bias", (4 * H,), "(4 * units,)")
    else:
        bias = np.zeros(4 * H, dtype=dtype)
    state = []
    for name, s in (("h0", h0), ("c0", c0)):
        if s is None:
            s = np.zeros((B, H), dtype=dtype)
        else:
            s = _float_input(s, name, "(batch, units)", dtype)
            _check_shape(s, name, (B, H), "(batch, units)")
        state.append(s)
    h0, c0 = state
    if mask is not None:
        mask = _mask_input(mask, B, T)
    masks = {}
    if input_masks is not None:
        masks["input_masks"] = _dropout_masks(input_masks, "input_masks", (4, B, D),
                                              "(4, batch, features)", dtype)
    if recurrent_masks is not None:
        masks["recurrent_masks"] = _dropout_masks(recurrent_masks, "recurrent_masks",
                                                  (4, B, H), "(4, batch, units)", dtype)
    go_backwards = _check_flag(go_backwards, "go_backwards")
    training = _check_flag(training, "training")
    outputs, h_last, c_last, cache = _lstm.lstm_forward(
        x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, training,
        row_blocks=_row_blocks(B), n_threads=get_num_threads(), serial_blas=serial_blas,
        **masks)
    if cache is not None:
        cache["has_bias"] = has_bias
    return outputs, h_last, c_last, cache


def lstm_backward(cache: dict, grad_outputs: ArrayLike | None = None,
                  grad_h_last: ArrayLike | None = None, grad_c_last: ArrayLike | None = None
                  ) -> tuple[np.ndarray | None, ...]:
    """The gradients of :func:`lstm_forward` (backpropagation through time).

    cache: from ``lstm_forward(..., training=True)``; grad_outputs: (B, T, H), the gradient
    of ``outputs`` (in the order ``outputs`` came in, so also for ``go_backwards``);
    grad_h_last, grad_c_last: (B, H), the gradients of ``h_last`` and ``c_last``. Any of the
    three may be None (zero), not all of them. The dtype is the forward's.

    Returns ``(dx (B, T, D), dkernel (D, 4H), drecurrent_kernel (H, 4H), dbias (4H,) or
    None when the forward had no bias, dh0 (B, H), dc0 (B, H))``. The gradients are those
    of the dropped-out computation when the forward had dropout masks (dx is zero where
    every gate's input mask dropped an input). The cache is left as it was: several
    backward passes (with different gradients) may use it.
    """
    if cache is None:
        raise ValueError("cache is None: run lstm_forward with training=True for a backward")
    if not isinstance(cache, dict) or "blocks" not in cache:
        raise TypeError(f"cache must be the dict lstm_forward returns, got {type(cache).__name__}")
    if grad_outputs is None and grad_h_last is None and grad_c_last is None:
        raise ValueError("lstm_backward needs at least one of grad_outputs, grad_h_last, "
                         "grad_c_last")
    B, T, _, H = cache["shape"]
    dtype = cache["dtype"]
    if grad_outputs is not None:
        grad_outputs = _float_input(grad_outputs, "grad_outputs", "(batch, time, units)", dtype)
        _check_shape(grad_outputs, "grad_outputs", (B, T, H), "(batch, time, units)")
    if grad_h_last is not None:
        grad_h_last = _float_input(grad_h_last, "grad_h_last", "(batch, units)", dtype)
        _check_shape(grad_h_last, "grad_h_last", (B, H), "(batch, units)")
    if grad_c_last is not None:
        grad_c_last = _float_input(grad_c_last, "grad_c_last", "(batch, units)", dtype)
        _check_shape(grad_c_last, "grad_c_last", (B, H), "(batch, units)")
    return _lstm.lstm_backward(cache, grad_outputs, grad_h_last, grad_c_last, cache["has_bias"],
                               n_threads=get_num_threads(), serial_blas=serial_blas)


__all__ = ["lstm_forward", "lstm_backward"]
