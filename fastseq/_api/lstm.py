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
from ._checks import index_array
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
from .embedding import _check_indices_in_range


def lstm_forward(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
                 bias: ArrayLike | None, h0: ArrayLike | None = None,
                 c0: ArrayLike | None = None, mask: ArrayLike | None = None,
                 go_backwards: bool = False, training: bool = True,
                 input_masks: ArrayLike | None = None, recurrent_masks: ArrayLike | None = None,
                 x_proj: ArrayLike | None = None, return_sequences: bool = True
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, dict | None]:
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

    Precomputed input projections (inference): with ``x_proj`` (V, 4H), ``x`` is (B, T)
    integer indices in [0, V) and step t of row b reads ``x_proj[x[b, t]]`` in place of
    ``x[b, t] @ kernel``: an Embedding folded into the LSTM, ``x_proj = embeddings @
    kernel`` (the bias is still added by the kernel). ``kernel`` must then be None, and
    ``training`` False without dropout masks. The outputs are bitwise those of the plain
    call on inputs whose products with ``kernel`` are exactly ``x_proj``'s rows.

    ``return_sequences=False``: ``outputs`` is None and is never written (B*T*H values of
    memory traffic saved where only the last state is read); the rest is unchanged, the
    backward included (give it ``grad_h_last`` / ``grad_c_last``).

    The mask may also be an integer array (nonzero = keep). Inputs that are not
    C-contiguous are copied once.
    """
    if x_proj is None:
        x, kernel, recurrent_kernel, (B, T, D, H) = sequence_and_weights(
            x, kernel, recurrent_kernel, 4)
    else:
        x, x_proj, recurrent_kernel, (B, T, H) = _indices_and_projections(
            x, kernel, x_proj, recurrent_kernel, training, input_masks, recurrent_masks)
    dtype = recurrent_kernel.dtype
    has_bias = bias is not None
    if has_bias:
        bias = float_input(bias, "bias", "(4 * units,)", dtype)
        check_shape(bias, "bias", (4 * H,), "(4 * units,)")
    else:
        bias = np.zeros(4 * H, dtype=dtype)
    h0 = initial_state(h0, "h0", B, H, dtype)
    c0 = initial_state(c0, "c0", B, H, dtype)
    if mask is not None:
        mask = mask_input(mask, B, T)
    masks = {}
    if input_masks is not None:
        masks["input_masks"] = dropout_masks(input_masks, "input_masks", 4, B, D, "features",
                                             dtype)
    if recurrent_masks is not None:
        masks["recurrent_masks"] = dropout_masks(recurrent_masks, "recurrent_masks", 4, B, H,
                                                 "units", dtype)
    go_backwards = check_flag(go_backwards, "go_backwards")
    training = check_flag(training, "training")
    return_sequences = check_flag(return_sequences, "return_sequences")
    outputs, h_last, c_last, cache = _lstm.lstm_forward(
        x, kernel, recurrent_kernel, bias, h0, c0, mask, go_backwards, training,
        row_blocks=row_blocks(B, gathered=x_proj is not None), n_threads=get_num_threads(),
        serial_blas=serial_blas, x_proj=x_proj, store_outputs=return_sequences, **masks)
    if cache is not None:
        cache["has_bias"] = has_bias
    return outputs, h_last, c_last, cache


def _indices_and_projections(x, kernel, x_proj, recurrent_kernel, training, input_masks,
                             recurrent_masks):
    """The checks of lstm_forward's x_proj call -> (indices (B, T), x_proj (V, 4H),
    recurrent_kernel (H, 4H), (B, T, H)), C-contiguous, in x_proj's dtype."""
    if kernel is not None:
        raise ValueError("kernel must be None when x_proj is given: x_proj replaces the input "
                         "projection x @ kernel")
    if check_flag(training, "training") or input_masks is not None \
            or recurrent_masks is not None:
        raise ValueError("x_proj is for inference: pass training=False and no dropout masks "
                         "(the backward needs the inputs themselves)")
    x_proj = float_input(x_proj, "x_proj", "(vocabulary, 4 * units)")
    dtype = x_proj.dtype
    recurrent_kernel = float_input(recurrent_kernel, "recurrent_kernel", "(units, 4 * units)",
                                   dtype)
    H = recurrent_kernel.shape[0]
    if H < 1 or recurrent_kernel.shape[1] != 4 * H:
        raise ValueError("recurrent_kernel must have shape (units, 4 * units) with units >= 1, "
                         f"got {recurrent_kernel.shape}")
    V = x_proj.shape[0]
    check_shape(x_proj, "x_proj", (V, 4 * H), "(vocabulary, 4 * units)")
    x = index_array(x, "x (indices into x_proj)")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (batch, time) indices into x_proj when x_proj is "
                         f"given, got shape {x.shape}")
    _check_indices_in_range(x, 0, V, "indices")
    B, T = x.shape
    return x, x_proj, recurrent_kernel, (B, T, H)


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
        grad_outputs = float_input(grad_outputs, "grad_outputs", "(batch, time, units)", dtype)
        check_shape(grad_outputs, "grad_outputs", (B, T, H), "(batch, time, units)")
    if grad_h_last is not None:
        grad_h_last = float_input(grad_h_last, "grad_h_last", "(batch, units)", dtype)
        check_shape(grad_h_last, "grad_h_last", (B, H), "(batch, units)")
    if grad_c_last is not None:
        grad_c_last = float_input(grad_c_last, "grad_c_last", "(batch, units)", dtype)
        check_shape(grad_c_last, "grad_c_last", (B, H), "(batch, units)")
    return _lstm.lstm_backward(cache, grad_outputs, grad_h_last, grad_c_last, cache["has_bias"],
                               n_threads=get_num_threads(), serial_blas=serial_blas)


__all__ = ["lstm_forward", "lstm_backward"]
