"""NumPy reference for Conv1D and 1-D pooling (channels-last, Keras semantics).

The tests' oracle and the benchmarks' baseline, so it is honest, fast NumPy: im2col as a
``sliding_window_view`` materialised once (one copy) and one matmul; col2im by one strided
add per tap (a loop over the k taps, never over positions). Inputs are trusted: the public
wrappers in :mod:`fastseq._api.conv1d` check them.

Geometry (Keras / TensorFlow): with span = dilation * (k - 1) + 1,
  valid:  Lout = (L - span) // strides + 1, no padding;
  causal: Lout = (L - 1) // strides + 1, dilation * (k - 1) zeros on the left;
  same:   Lout = (L - 1) // strides + 1, total = max((Lout - 1) * strides + span - L, 0)
          zeros, total // 2 on the left and the rest (the extra one) on the right.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..geometry import conv1d_output_geometry, max_pool1d_output_geometry

__all__ = [
    "conv1d_output_geometry",
    "conv1d_forward",
    "conv1d_backward",
    "max_pool1d_output_geometry",
    "max_pool1d_forward",
    "max_pool1d_backward",
    "global_average_pool1d_forward",
    "global_average_pool1d_backward",
    "global_max_pool1d_forward",
    "global_max_pool1d_backward",
]


def _pad_time(x, pad_left, pad_right):
    if pad_left == 0 and pad_right == 0:
        return x
    return np.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))


# x: (B, L, Cin), kernel: (k, Cin, Cout), bias: (Cout,) -> y: (B, Lout, Cout)
def conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    batch, length, cin = x.shape
    k, _, cout = kernel.shape
    out_length, pad_left, pad_right = conv1d_output_geometry(
        length, k, strides, padding, dilation_rate
    )
    xp = _pad_time(x, pad_left, pad_right)
    span = dilation_rate * (k - 1) + 1
    # windows: (B, Lp - span + 1, Cin, span) -> taps and strides picked -> (B, Lout, k, Cin)
    windows = sliding_window_view(xp, span, axis=1)[:, ::strides, :, ::dilation_rate]
    windows = windows[:, :out_length].transpose(0, 1, 3, 2)
    cols = windows.reshape(batch * out_length, k * cin)  # the one im2col copy
    y = cols @ kernel.reshape(k * cin, cout)
    if bias is not None:
        y += bias
    cache = (cols, kernel, bias is not None, x.shape, strides, dilation_rate, pad_left, pad_right)
    return y.reshape(batch, out_length, cout), cache


# grad_y: (B, Lout, Cout) -> dx: (B, L, Cin), dkernel: (k, Cin, Cout), dbias: (Cout,) or None
def conv1d_backward(cache, grad_y):
    cols, kernel, has_bias, x_shape, strides, dilation_rate, pad_left, pad_right = cache
    batch, length, cin = x_shape
    k, _, cout = kernel.shape
    out_length = grad_y.shape[1]
    gy = grad_y.reshape(batch * out_length, cout)
    dkernel = (cols.T @ gy).reshape(k, cin, cout)
    dbias = gy.sum(axis=0) if has_bias else None
    dcols = (gy @ kernel.reshape(k * cin, cout).T).reshape(batch, out_length, k, cin)
    # col2im: tap j of output t read padded step t * strides + j * dilation_rate
    dxp = np.zeros((batch, length + pad_left + pad_right, cin), dtype=dcols.dtype)
    last = (out_length - 1) * strides + 1
    for j in range(k):
        start = j * dilation_rate
        dxp[:, start : start + last : strides] += dcols[:, :, j]
    return dxp[:, pad_left : pad_left + length], dkernel, dbias


def _is_max(values, maxima):
    """Where ``values`` hold their (broadcast) maximum: equal to it, or both NaN."""
    return (values == maxima) | (np.isnan(values) & np.isnan(maxima))


def max_pool1d_forward(x, pool_size=2, strides=None, padding="valid"):
    strides = pool_size if strides is None else strides
    batch, length, channels = x.shape
    out_length, pad_left = max_pool1d_output_geometry(length, pool_size, strides, padding)
    pad_right = max((out_length - 1) * strides + pool_size - length - pad_left, 0)
    xp = np.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)), constant_values=-np.inf)
    steps = np.arange(-pad_left, length + pad_right)
    real = (steps >= 0) & (steps < length)  # (Lp,): padded steps never win, even vs -inf
    windows = sliding_window_view(xp, pool_size, axis=1)[:, ::strides][:, :out_length]
    real_windows = sliding_window_view(real, pool_size)[::strides][:out_length]  # (Lout, pool)
    # windows: (B, Lout, C, pool). Each window holds a real step, so the max is a real value
    # (NaN where the window holds a NaN, as NumPy's max); argmax of the first step equal to
    # it sends ties' gradient to the first step, and a NaN max's to the first NaN
    y = windows.max(axis=-1)
    is_max = _is_max(windows, y[..., None]) & real_windows[None, :, None, :]
    offset = is_max.argmax(axis=-1)
    argmax = offset + (np.arange(out_length) * strides - pad_left)[None, :, None]
    return np.ascontiguousarray(y), (argmax, x.shape)


# grad_y: (B, Lout, C) -> dx: (B, L, C)
def max_pool1d_backward(cache, grad_y):
    argmax, x_shape = cache
    batch, length, channels = x_shape
    dx = np.zeros(x_shape, dtype=grad_y.dtype)
    b = np.arange(batch)[:, None, None]
    c = np.arange(channels)[None, None, :]
    np.add.at(dx, (b, argmax, c), grad_y)  # overlapping windows (strides < pool) add up
    return dx


def _mask_weights(x, mask):
    return mask.astype(x.dtype)[:, :, None]  # (B, L, 1)


# x: (B, L, C), mask: (B, L) bool or None -> y: (B, C)
def global_average_pool1d_forward(x, mask=None):
    if mask is None:
        return x.mean(axis=1), (None, None, x.shape)
    weights = _mask_weights(x, mask)
    counts = weights.sum(axis=1)  # (B, 1)
    # a fully masked sequence averages nothing: 0, not 0 / 0
    inv_counts = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0).astype(x.dtype)
    y = (x * weights).sum(axis=1) * inv_counts
    return y, (weights, inv_counts, x.shape)


# grad_y: (B, C) -> dx: (B, L, C)
def global_average_pool1d_backward(cache, grad_y):
    weights, inv_counts, x_shape = cache
    if weights is None:
        return np.broadcast_to(grad_y[:, None, :] / x_shape[1], x_shape).copy()
    return weights * (grad_y * inv_counts)[:, None, :]


# x: (B, L, C), mask: (B, L) bool or None -> y: (B, C); cache holds argmax: (B, C)
def global_max_pool1d_forward(x, mask=None):
    valid = np.ones(x.shape[:2], dtype=bool) if mask is None else mask.astype(bool)
    y = np.where(valid[:, :, None], x, -np.inf).max(axis=1)  # NaN where a NaN is unmasked
    # the first unmasked step equal to the max takes the gradient (ties: the first; a NaN
    # max: the first unmasked NaN)
    argmax = (_is_max(x, y[:, None, :]) & valid[:, :, None]).argmax(axis=1)
    empty = ~valid.any(axis=1)  # fully masked: 0 and no gradient
    y[empty] = 0
    argmax[empty] = -1
    return y, (argmax, x.shape)


# grad_y: (B, C) -> dx: (B, L, C)
def global_max_pool1d_backward(cache, grad_y):
    argmax, x_shape = cache
    dx = np.zeros(x_shape, dtype=grad_y.dtype)
    b, c = np.nonzero(argmax >= 0)
    dx[b, argmax[b, c], c] = grad_y[b, c]
    return dx
