"""GRU kernels: the forward pass through time and its backward (BPTT), Keras 3's semantics.

Gates in Keras's order and layout: ``kernel`` (D, 3H) and ``recurrent_kernel`` (H, 3H) hold
the gates z (update), r (reset) and h (candidate) side by side; activation tanh, recurrent
activation sigmoid. With ``reset_after=True`` (Keras's default) ``bias`` is (2, 3H), the
input bias and the recurrent bias::

    z = sigmoid(x_t @ W_z + b_in_z + h @ U_z + b_rec_z)
    r = sigmoid(x_t @ W_r + b_in_r + h @ U_r + b_rec_r)
    hh = tanh(x_t @ W_h + b_in_h + r * (h @ U_h + b_rec_h))
    h = z * h + (1 - z) * hh

With ``reset_after=False`` ``bias`` is (3H,) (input side only) and
``hh = tanh(x_t @ W_h + b_h + (r * h) @ U_h)``.

All arrays are plain NumPy, float32 or float64 (one dtype for all of them).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._kernels import gru as _gru
from .._threads import get_num_threads
from ._blas import serial_blas
from ._recurrent import (
    check_flag,
    check_shape,
    dropout_masks,
    float_input,
    initial_state,
    mask_input,
    row_blocks,
    sequence_and_weights,
)


def _bias_input(bias, H, reset_after, dtype):
    """Keras's GRU bias: (2, 3H) (input and recurrent bias) with reset_after, else (3H,)."""
    if reset_after:
        expected, shape, other = "(2, 3 * units)", (2, 3 * H), "(3 * units,)"
    else:
        expected, shape, other = "(3 * units,)", (3 * H,), "(2, 3 * units)"
    flag = f"reset_after={reset_after}"
    if isinstance(bias, np.ndarray) and bias.ndim != len(shape):
        raise ValueError(f"bias must be {len(shape)}-D {expected} with {flag}, got shape "
                         f"{bias.shape} (a {other} bias goes with reset_after={not reset_after})")
    bias = float_input(bias, "bias", expected, dtype)
    check_shape(bias, "bias", shape, f"{expected} with {flag}")
    return bias


def gru_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                bias: ArrayLike | None, h0: ArrayLike | None = None,
                mask: ArrayLike | None = None, go_backwards: bool = False,
                training: bool = True, reset_after: bool = True,
                input_masks: ArrayLike | None = None, recurrent_masks: ArrayLike | None = None
                ) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """The GRU over a batch of sequences, as Keras's ``GRU(return_sequences=True)``.

    x: (B, T, D) inputs; kernel: (D, 3H); recurrent_kernel: (H, 3H); bias: (2, 3H) with
    ``reset_after=True`` (rows: input bias, recurrent bias), (3H,) with
    ``reset_after=False``, or None; h0: (B, H) initial state, or None for zeros; mask:
    (B, T) bool, or None.

    Dropout as Keras's GRU with ``recurrent_dropout > 0`` (its implementation 1): masks
    fixed for the whole sequence, one per gate, already scaled (0 or 1 / (1 - rate));
    the caller draws them. ``input_masks`` (3, B, D): gate g reads ``x_t * input_masks[g]``;
    ``recurrent_masks`` (3, B, H): gate g's recurrent product reads ``h * recurrent_masks[g]``
    (with ``reset_after=False`` the h gate's is ``(r * (h * recurrent_masks[2])) @ U_h``),
    while the update ``z * h + (1 - z) * hh`` uses h itself. None (the default) costs
    nothing.

    Masks follow Keras: at a masked step (row b, step t) the state keeps its value and the
    output repeats the previous output, which is the state h (h0 before the first unmasked
    step; a fully masked sequence outputs h0 at every step). Steps masked for the whole
    batch (pre-padding) cost nothing. With ``go_backwards`` the sequence is processed from
    its last step to its first and ``outputs`` come back in processing order, as Keras
    returns them: ``outputs[:, 0]`` is the output after reading ``x[:, T - 1]``.

    Returns ``(outputs (B, T, H), h_last (B, H), cache)``; ``h_last`` is the state after the
    last step. ``cache`` is None unless ``training``; otherwise it is what
    :func:`gru_backward` needs (it only reads it), an opaque dict holding the inputs
    (Ta*B*D values), the gate activations (4*Ta*B*H; reset_after=False: 3*Ta*B*H plus the
    h gate's GEMM inputs Ta*B*H) and the state before every step ((Ta+1)*B*H), where
    Ta <= T is the number of steps not masked for the whole batch: about (5H + D) * B * Ta
    values; for (B, T, D, H) = (64, 500, 32, 100) about 70 MB in float32. Inference
    (``training=False``) keeps O(B*H) state plus a 2 MB block of projections.

    The mask may also be an integer array (nonzero = keep). Inputs that are not
    C-contiguous are copied once.
    """
    x, kernel, recurrent_kernel, (B, T, D, H) = sequence_and_weights(
        x, kernel, recurrent_kernel, 3)
    dtype = x.dtype
    reset_after = check_flag(reset_after, "reset_after")
    has_bias = bias is not None
    if has_bias:
        bias = _bias_input(bias, H, reset_after, dtype)
    h0 = initial_state(h0, "h0", B, H, dtype)
    if mask is not None:
        mask = mask_input(mask, B, T)
    input_masks = dropout_masks(input_masks, "input_masks", 3, B, D, "features", dtype)
    recurrent_masks = dropout_masks(recurrent_masks, "recurrent_masks", 3, B, H, "units", dtype)
    go_backwards = check_flag(go_backwards, "go_backwards")
    training = check_flag(training, "training")
    outputs, h_last, cache = _gru.gru_forward(
        x, kernel, recurrent_kernel, bias, h0, mask, go_backwards, training,
        reset_after=reset_after, input_masks=input_masks, recurrent_masks=recurrent_masks,
        row_blocks=row_blocks(B), n_threads=get_num_threads(), serial_blas=serial_blas)
    if cache is not None:
        cache["has_bias"] = has_bias
    return outputs, h_last, cache


def gru_backward(cache: dict, grad_outputs: ArrayLike | None = None,
                 grad_h_last: ArrayLike | None = None) -> tuple[np.ndarray | None, ...]:
    """The gradients of :func:`gru_forward` (backpropagation through time).

    cache: from ``gru_forward(..., training=True)``; grad_outputs: (B, T, H), the gradient
    of ``outputs`` (in the order ``outputs`` came in, so also for ``go_backwards``);
    grad_h_last: (B, H), the gradient of ``h_last``. Either may be None (zero), not both.
    The dtype is the forward's.

    Returns ``(dx (B, T, D), dkernel (D, 3H), drecurrent_kernel (H, 3H), dbias ((2, 3H)
    with reset_after, else (3H,); None when the forward had no bias), dh0 (B, H))``. The
    gradients are those of the dropped-out computation when the forward had dropout masks
    (dx is zero where every gate's input mask dropped an input). The cache is left as it
    was: several backward passes (with different gradients) may use it.
    """
    if cache is None:
        raise ValueError("cache is None: run gru_forward with training=True for a backward")
    if not isinstance(cache, dict) or "blocks" not in cache or "reset_after" not in cache:
        raise TypeError(f"cache must be the dict gru_forward returns, got {type(cache).__name__}")
    if grad_outputs is None and grad_h_last is None:
        raise ValueError("gru_backward needs at least one of grad_outputs, grad_h_last")
    B, T, _, H = cache["shape"]
    dtype = cache["dtype"]
    if grad_outputs is not None:
        grad_outputs = float_input(grad_outputs, "grad_outputs", "(batch, time, units)", dtype)
        check_shape(grad_outputs, "grad_outputs", (B, T, H), "(batch, time, units)")
    if grad_h_last is not None:
        grad_h_last = float_input(grad_h_last, "grad_h_last", "(batch, units)", dtype)
        check_shape(grad_h_last, "grad_h_last", (B, H), "(batch, units)")
    return _gru.gru_backward(cache, grad_outputs, grad_h_last, cache["has_bias"],
                             n_threads=get_num_threads(), serial_blas=serial_blas)


__all__ = ["gru_forward", "gru_backward"]
