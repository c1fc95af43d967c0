"""SimpleRNN kernels: the forward pass through time and its backward (BPTT), Keras's
semantics.

Keras's layout: ``kernel`` (D, H), ``recurrent_kernel`` (H, H), ``bias`` (H,)::

    h = activation(x_t @ kernel + bias + (h_prev * recurrent_mask) @ recurrent_kernel)

with ``x_t * input_mask`` in place of ``x_t`` when an input dropout mask is given.
Activations: "tanh" (Keras's default), "relu", "sigmoid", "linear" (None means "linear",
as in Keras).

All arrays are plain NumPy, float32 or float64 (one dtype for all of them).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._kernels import simple_rnn as _simple_rnn
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

ACTIVATIONS = tuple(_simple_rnn.ACTIVATIONS)


def _activation_code(activation):
    if activation is None:
        activation = "linear"
    if not isinstance(activation, str) or activation not in _simple_rnn.ACTIVATIONS:
        names = ", ".join(repr(a) for a in ACTIVATIONS)
        raise ValueError(f"activation must be one of {names} (or None for 'linear'), "
                         f"got {activation!r}")
    return _simple_rnn.ACTIVATIONS[activation]


def simple_rnn_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                       bias: ArrayLike | None, h0: ArrayLike | None = None,
                       mask: ArrayLike | None = None, go_backwards: bool = False,
                       training: bool = True, activation: str = "tanh",
                       input_mask: ArrayLike | None = None,
                       recurrent_mask: ArrayLike | None = None
                       ) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """The SimpleRNN over a batch of sequences, as Keras's
    ``SimpleRNN(return_sequences=True)``.

    x: (B, T, D) inputs; kernel: (D, H); recurrent_kernel: (H, H); bias: (H,) or None;
    h0: (B, H) initial state, or None for zeros; mask: (B, T) bool, or None; activation:
    "tanh", "relu", "sigmoid" or "linear" (or None); input_mask: (B, D) or None, the input
    dropout mask; recurrent_mask: (B, H) or None, the recurrent dropout mask.

    Dropout as Keras's SimpleRNNCell: one mask of each kind per sequence, the same at every
    step, already holding the inverted scaling (0 or 1 / (1 - rate)); the layer draws
    them. The input projection reads ``x_t * input_mask``, the recurrent product
    ``(h_prev * recurrent_mask) @ recurrent_kernel``; the state is never masked. Without
    masks (None) nothing of this runs.

    Masks follow Keras: at a masked step (row b, step t) the state keeps its value and the
    output repeats the previous output, which is the state h (h0 before the first unmasked
    step; a fully masked sequence outputs h0 at every step). Steps masked for the whole
    batch (pre-padding) cost nothing. With ``go_backwards`` the sequence is processed from
    its last step to its first and ``outputs`` come back in processing order, as Keras
    returns them: ``outputs[:, 0]`` is the output after reading ``x[:, T - 1]``.

    Returns ``(outputs (B, T, H), h_last (B, H), cache)``; ``h_last`` is the state after the
    last step. ``cache`` is None unless ``training``; otherwise it is what
    :func:`simple_rnn_backward` needs (it only reads it), an opaque dict holding the
    (masked) inputs (Ta*B*D values) and the states before and after every step
    ((Ta+1)*B*H), where Ta <= T is the number of steps not masked for the whole batch;
    for (B, T, D, H) = (64, 500, 32, 100) about 17 MB in float32. Inference
    (``training=False``) keeps O(B*H) state plus, per block of rows, a block of steps'
    inputs and projections (512 KB).

    The mask may also be an integer array (nonzero = keep). Inputs that are not
    C-contiguous are copied once.
    """
    x, kernel, recurrent_kernel, (B, T, D, H) = sequence_and_weights(
        x, kernel, recurrent_kernel, 1)
    dtype = x.dtype
    has_bias = bias is not None
    if has_bias:
        bias = float_input(bias, "bias", "(units,)", dtype)
        check_shape(bias, "bias", (H,), "(units,)")
    else:
        bias = np.zeros(H, dtype=dtype)
    h0 = initial_state(h0, "h0", B, H, dtype)
    if mask is not None:
        mask = mask_input(mask, B, T)
    input_mask = dropout_masks(input_mask, "input_mask", 1, B, D, "features", dtype)
    recurrent_mask = dropout_masks(recurrent_mask, "recurrent_mask", 1, B, H, "units", dtype)
    go_backwards = check_flag(go_backwards, "go_backwards")
    training = check_flag(training, "training")
    code = _activation_code(activation)
    outputs, h_last, cache = _simple_rnn.simple_rnn_forward(
        x, kernel, recurrent_kernel, bias, h0, mask, go_backwards, training, code,
        input_mask, recurrent_mask, row_blocks=row_blocks(B),
        n_threads=get_num_threads(), serial_blas=serial_blas)
    if cache is not None:
        cache["has_bias"] = has_bias
    return outputs, h_last, cache


def simple_rnn_backward(cache: dict, grad_outputs: ArrayLike | None = None,
                        grad_h_last: ArrayLike | None = None) -> tuple[np.ndarray | None, ...]:
    """The gradients of :func:`simple_rnn_forward` (backpropagation through time).

    cache: from ``simple_rnn_forward(..., training=True)``; grad_outputs: (B, T, H), the
    gradient of ``outputs`` (in the order ``outputs`` came in, so also for
    ``go_backwards``); grad_h_last: (B, H), the gradient of ``h_last``. Either may be None
    (zero), not both. The dtype is the forward's.

    Returns ``(dx (B, T, D), dkernel (D, H), drecurrent_kernel (H, H), dbias (H,) or None
    when the forward had no bias, dh0 (B, H))``. With dropout masks, dx is the gradient of
    the unmasked ``x`` (it carries ``input_mask``), and the weight gradients are those of
    the masked products. The cache is left as it was: several backward passes (with
    different gradients) may use it.
    """
    if cache is None:
        raise ValueError("cache is None: run simple_rnn_forward with training=True for a "
                         "backward")
    if not isinstance(cache, dict) or "blocks" not in cache or "activation" not in cache:
        raise TypeError("cache must be the dict simple_rnn_forward returns, got "
                        f"{type(cache).__name__}")
    if grad_outputs is None and grad_h_last is None:
        raise ValueError("simple_rnn_backward needs at least one of grad_outputs, "
                         "grad_h_last")
    B, T, _, H = cache["shape"]
    dtype = cache["dtype"]
    if grad_outputs is not None:
        grad_outputs = float_input(grad_outputs, "grad_outputs", "(batch, time, units)", dtype)
        check_shape(grad_outputs, "grad_outputs", (B, T, H), "(batch, time, units)")
    if grad_h_last is not None:
        grad_h_last = float_input(grad_h_last, "grad_h_last", "(batch, units)", dtype)
        check_shape(grad_h_last, "grad_h_last", (B, H), "(batch, units)")
    return _simple_rnn.simple_rnn_backward(cache, grad_outputs, grad_h_last, cache["has_bias"],
                                           n_threads=get_num_threads(),
                                           serial_blas=serial_blas)


__all__ = ["simple_rnn_forward", "simple_rnn_backward", "ACTIVATIONS"]
