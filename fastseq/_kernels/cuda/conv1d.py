"""numba.cuda: Conv1D (im2col + one GEMM) and 1-D pooling, channels-last, Keras semantics.

Same functions and signatures as the NumPy reference (:mod:`fastseq._kernels.reference.conv1d`;
the geometry is :mod:`fastseq._kernels.geometry`'s, shared by every floor); arrays are device
arrays (NumPy arrays are copied to the device) and results and caches stay there.

Every backward is a gather (one thread per input element sums what reaches it, in a fixed
order), never a scatter with atomics: col2im for conv1d, the window owners for max pooling.
"""
import numpy as np
from numba import cuda

from ..geometry import (
    CONV_PADDINGS,
    POOL_PADDINGS,
    conv1d_output_geometry,
    max_pool1d_output_geometry,
    padding_mode,
    positive_int,
)
from .elementwise import as_device, bias_add, column_sum, device_mask, launch, scalar
from .gemm import gemm

__all__ = [
    "conv1d_output_geometry", "conv1d_forward", "conv1d_backward",
    "max_pool1d_output_geometry", "max_pool1d_forward", "max_pool1d_backward",
    "global_average_pool1d_forward", "global_average_pool1d_backward",
    "global_max_pool1d_forward", "global_max_pool1d_backward",
]


# ---------------------------------------------------------------------------- conv1d
@cuda.jit(cache=True)
def _im2col_kernel(x, cols, out_length, taps, strides, dilation, pad_left):
    # x: (B, L, Cin) -> cols: (B*Lout, k*Cin); cols[b*Lout + t, j*Cin + c] =
    # x[b, t*strides + j*dilation - pad_left, c], 0 in the padding
    batch, length, cin = x.shape
    width = taps * cin
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, cols.size, step):
        row = i // width
        col = i - row * width
        b = row // out_length
        t = row - b * out_length
        j = col // cin
        c = col - j * cin
        p = t * strides + j * dilation - pad_left
        if 0 <= p < length:
            cols[row, col] = x[b, p, c]
        else:
            cols[row, col] = 0


@cuda.jit(cache=True)
def _col2im_kernel(dcols, dx, out_length, taps, strides, dilation, pad_left, zero):
    # dcols: (B*Lout, k*Cin) -> dx: (B, L, Cin), the sum over taps j (ascending) of the
    # column entries that read x[b, p, c]
    batch, length, cin = dx.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        b = i // (length * cin)
        rest = i - b * length * cin
        p = rest // cin
        c = rest - p * cin
        acc = zero
        for j in range(taps):
            q = p + pad_left - j * dilation  # = t * strides for the output t reading p
            if q >= 0 and q % strides == 0:
                t = q // strides
                if t < out_length:
                    acc += dcols[b * out_length + t, j * cin + c]
        dx[b, p, c] = acc


# x: (B, L, Cin), kernel: (k, Cin, Cout), bias: (Cout,) -> y: (B, Lout, Cout)
def conv1d_forward(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """Keras Conv1D forward on the device; returns ``(y, cache)``."""
    x = as_device(x, "x", ndim=3)
    dtype = x.dtype
    kernel = as_device(kernel, "kernel", ndim=3, dtype=dtype)
    batch, length, cin = x.shape
    taps, kernel_cin, cout = kernel.shape
    if kernel_cin != cin:
        raise ValueError(f"kernel must have shape (k, Cin, Cout) with Cin = {cin} (x's "
                         f"channels), got {tuple(kernel.shape)}")
    strides = positive_int(strides, "strides")
    dilation_rate = positive_int(dilation_rate, "dilation_rate")
    padding = padding_mode(padding, CONV_PADDINGS)
    if bias is not None:
        bias = as_device(bias, "bias", ndim=1, dtype=dtype)
        if tuple(bias.shape) != (cout,):
            raise ValueError(f"bias must have shape ({cout},), got {tuple(bias.shape)}")
    out_length, pad_left, pad_right = conv1d_output_geometry(length, taps, strides, padding,
                                                             dilation_rate)
    if out_length < 1:
        raise ValueError(f"input of length {length} is shorter than the kernel's span "
                         f"{dilation_rate * (taps - 1) + 1} with padding='valid'")
    cols = cuda.device_array((batch * out_length, taps * cin), dtype=dtype)
    launch(_im2col_kernel, cols.size, x, cols, out_length, taps, strides, dilation_rate,
            pad_left)
    y = cuda.device_array((batch, out_length, cout), dtype=dtype)
    y2 = y.reshape(batch * out_length, cout)
    gemm(cols, kernel.reshape(taps * cin, cout), out=y2)
    if bias is not None:
        bias_add(y2, bias)
    cache = (cols, kernel, bias is not None, (batch, length, cin), strides, dilation_rate,
             pad_left, pad_right)
    return y, cache


# grad_y: (B, Lout, Cout) -> dx: (B, L, Cin), dkernel: (k, Cin, Cout), dbias: (Cout,) or None
def conv1d_backward(cache, grad_y):
    """Gradients of :func:`conv1d_forward` from its cache: ``(dx, dkernel, dbias)``."""
    cols, kernel, has_bias, x_shape, strides, dilation_rate, pad_left, _ = cache
    batch, length, cin = x_shape
    taps, _, cout = kernel.shape
    dtype = cols.dtype
    out_length = cols.shape[0] // batch if batch else 0
    grad_y = as_device(grad_y, "grad_y", ndim=3, dtype=dtype)
    if tuple(grad_y.shape) != (batch, out_length, cout):
        raise ValueError(f"grad_y must have shape {(batch, out_length, cout)}, "
                         f"got {tuple(grad_y.shape)}")
    rows = batch * out_length
    gy = grad_y.reshape(rows, cout)
    dkernel = cuda.device_array((taps, cin, cout), dtype=dtype)
    gemm(cols.T, gy, out=dkernel.reshape(taps * cin, cout))
    dbias = column_sum(gy) if has_bias else None
    dcols = cuda.device_array((rows, taps * cin), dtype=dtype)
    gemm(gy, kernel.reshape(taps * cin, cout).T, out=dcols)
    dx = cuda.device_array(x_shape, dtype=dtype)
    launch(_col2im_kernel, dx.size, dcols, dx, out_length, taps, strides, dilation_rate,
            pad_left, scalar(0, dtype))
    return dx, dkernel, dbias


# ---------------------------------------------------------------------------- max pooling
@cuda.jit(cache=True)
def _max_pool_forward_kernel(x, y, argmax, pool_size, strides, pad_left):
    # x: (B, L, C) -> y: (B, Lout, C), argmax: (B, Lout, C) the first step of x holding the
    # window's max (padded steps never win); a NaN in the window: NaN, at the first NaN (as
    # NumPy's max and the reference)
    batch, length, channels = x.shape
    out_length = y.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        b = i // (out_length * channels)
        rest = i - b * out_length * channels
        o = rest // channels
        c = rest - o * channels
        first = max(o * strides - pad_left, 0)
        last = min(o * strides - pad_left + pool_size, length)
        best = x[b, first, c]
        arg = first
        for p in range(first + 1, last):
            v = x[b, p, c]
            if v > best or (v != v and best == best):
                best = v
                arg = p
        y[b, o, c] = best
        argmax[b, o, c] = arg


@cuda.jit(cache=True)
def _max_pool_backward_kernel(grad_y, argmax, dx, pool_size, strides, pad_left, zero):
    # grad_y, argmax: (B, Lout, C) -> dx: (B, L, C), the sum over the windows o (ascending)
    # whose max sits at step p
    batch, length, channels = dx.shape
    out_length = grad_y.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        b = i // (length * channels)
        rest = i - b * length * channels
        p = rest // channels
        c = rest - p * channels
        q = p + pad_left  # window o covers p when o*strides <= q < o*strides + pool_size
        o_first = max(0, (q - pool_size) // strides + 1)
        o_last = min(out_length - 1, q // strides)
        acc = zero
        for o in range(o_first, o_last + 1):
            if argmax[b, o, c] == p:
                acc += grad_y[b, o, c]
        dx[b, p, c] = acc


# x: (B, L, C) -> y: (B, Lout, C); cache holds argmax: (B, Lout, C) int64 steps of x
def max_pool1d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Keras MaxPooling1D forward on the device; returns ``(y, cache)``."""
    x = as_device(x, "x", ndim=3)
    pool_size = positive_int(pool_size, "pool_size")
    strides = pool_size if strides is None else positive_int(strides, "strides")
    padding = padding_mode(padding, POOL_PADDINGS)
    batch, length, channels = x.shape
    out_length, pad_left = max_pool1d_output_geometry(length, pool_size, strides, padding)
    if out_length < 1:
        raise ValueError(f"input of length {length} is shorter than pool_size {pool_size} "
                         "with padding='valid'")
    y = cuda.device_array((batch, out_length, channels), dtype=x.dtype)
    argmax = cuda.device_array((batch, out_length, channels), dtype=np.int64)
    launch(_max_pool_forward_kernel, y.size, x, y, argmax, pool_size, strides, pad_left)
    return y, (argmax, (batch, length, channels), pool_size, strides, pad_left)


# grad_y: (B, Lout, C) -> dx: (B, L, C)
def max_pool1d_backward(cache, grad_y):
    """Gradient of :func:`max_pool1d_forward`: each window's gradient goes to its max."""
    argmax, x_shape, pool_size, strides, pad_left = cache
    grad_y = as_device(grad_y, "grad_y", ndim=3)
    if tuple(grad_y.shape) != tuple(argmax.shape):
        raise ValueError(f"grad_y must have shape {tuple(argmax.shape)}, "
                         f"got {tuple(grad_y.shape)}")
    dx = cuda.device_array(x_shape, dtype=grad_y.dtype)
    launch(_max_pool_backward_kernel, dx.size, grad_y, argmax, dx, pool_size, strides,
            pad_left, scalar(0, grad_y.dtype))
    return dx


# ---------------------------------------------------------------------------- global pooling
@cuda.jit(cache=True)
def _global_average_forward_kernel(x, mask, has_mask, y, inv_counts, one):
    # x: (B, L, C), mask: (B, L) -> y: (B, C) mean over the kept steps (0 when none),
    # inv_counts: (B,) 1 / kept steps (0 when none)
    batch, length, channels = x.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, batch * channels, step):
        b = i // channels
        c = i - b * channels
        acc = zero
        count = zero
        for t in range(length):
            if not has_mask or mask[b, t] != 0:
                acc += x[b, t, c]
                count += one
        if has_mask:
            inv = one / count if count > zero else zero
            y[b, c] = acc * inv
            if c == 0:
                inv_counts[b] = inv
        else:
            y[b, c] = acc / count


@cuda.jit(cache=True)
def _global_average_backward_kernel(grad_y, mask, has_mask, inv_counts, dx, length_scalar,
                                    zero):
    # grad_y: (B, C) -> dx: (B, L, C) = grad_y / L, or mask * grad_y * inv_count
    batch, length, channels = dx.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        b = i // (length * channels)
        rest = i - b * length * channels
        t = rest // channels
        c = rest - t * channels
        if has_mask:
            dx[b, t, c] = grad_y[b, c] * inv_counts[b] if mask[b, t] != 0 else zero
        else:
            dx[b, t, c] = grad_y[b, c] / length_scalar


# x: (B, L, C), mask: (B, L) bool or None -> y: (B, C)
def global_average_pool1d_forward(x, mask=None):
    """Mean over the steps (the kept steps with a mask; 0 for a fully masked row)."""
    x = as_device(x, "x", ndim=3)
    batch, length, channels = x.shape
    dmask = device_mask(mask, (batch, length))
    has_mask = dmask is not None
    y = cuda.device_array((batch, channels), dtype=x.dtype)
    inv_counts = cuda.device_array(max(batch, 1), dtype=x.dtype)
    placeholder = dmask if has_mask else cuda.device_array((1, 1), dtype=np.uint8)
    launch(_global_average_forward_kernel, batch * channels, x, placeholder, has_mask, y,
            inv_counts, scalar(1, x.dtype))
    return y, (dmask, inv_counts if has_mask else None, (batch, length, channels))


# grad_y: (B, C) -> dx: (B, L, C)
def global_average_pool1d_backward(cache, grad_y):
    dmask, inv_counts, x_shape = cache
    batch, length, channels = x_shape
    grad_y = as_device(grad_y, "grad_y", ndim=2)
    if tuple(grad_y.shape) != (batch, channels):
        raise ValueError(f"grad_y must have shape {(batch, channels)}, got {tuple(grad_y.shape)}")
    has_mask = dmask is not None
    dx = cuda.device_array(x_shape, dtype=grad_y.dtype)
    if not has_mask:
        dmask = cuda.device_array((1, 1), dtype=np.uint8)
        inv_counts = cuda.device_array(1, dtype=grad_y.dtype)
    launch(_global_average_backward_kernel, dx.size, grad_y, dmask, has_mask, inv_counts, dx,
            scalar(length, grad_y.dtype), scalar(0, grad_y.dtype))
    return dx


@cuda.jit(cache=True)
def _global_max_forward_kernel(x, mask, has_mask, y, argmax, zero):
    # x: (B, L, C), mask: (B, L) -> y: (B, C) max over kept steps, argmax: (B, C) its first
    # step (a NaN among them: NaN, at the first NaN); a fully masked row: y = 0, argmax = -1
    batch, length, channels = x.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, batch * channels, step):
        b = i // channels
        c = i - b * channels
        arg = -1
        best = zero
        for t in range(length):
            if has_mask and mask[b, t] == 0:
                continue
            v = x[b, t, c]
            if arg < 0 or v > best or (v != v and best == best):
                best = v
                arg = t
        y[b, c] = best
        argmax[b, c] = arg


@cuda.jit(cache=True)
def _global_max_backward_kernel(grad_y, argmax, dx, zero):
    # grad_y, argmax: (B, C) -> dx: (B, L, C), grad_y at the argmax step, 0 elsewhere
    batch, length, channels = dx.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        b = i // (length * channels)
        rest = i - b * length * channels
        t = rest // channels
        c = rest - t * channels
        dx[b, t, c] = grad_y[b, c] if argmax[b, c] == t else zero


# x: (B, L, C), mask: (B, L) bool or None -> y: (B, C); cache holds argmax: (B, C)
def global_max_pool1d_forward(x, mask=None):
    """Max over the (kept) steps; ties and the gradient go to the first such step."""
    x = as_device(x, "x", ndim=3)
    batch, length, channels = x.shape
    if length == 0:
        raise ValueError("global_max_pool1d_forward needs at least one step, got L = 0")
    dmask = device_mask(mask, (batch, length))
    has_mask = dmask is not None
    y = cuda.device_array((batch, channels), dtype=x.dtype)
    argmax = cuda.device_array((batch, channels), dtype=np.int64)
    placeholder = dmask if has_mask else cuda.device_array((1, 1), dtype=np.uint8)
    launch(_global_max_forward_kernel, batch * channels, x, placeholder, has_mask, y, argmax,
            scalar(0, x.dtype))
    return y, (argmax, (batch, length, channels))


# grad_y: (B, C) -> dx: (B, L, C)
def global_max_pool1d_backward(cache, grad_y):
    argmax, x_shape = cache
    grad_y = as_device(grad_y, "grad_y", ndim=2)
    if tuple(grad_y.shape) != tuple(argmax.shape):
        raise ValueError(f"grad_y must have shape {tuple(argmax.shape)}, "
                         f"got {tuple(grad_y.shape)}")
    dx = cuda.device_array(x_shape, dtype=grad_y.dtype)
    launch(_global_max_backward_kernel, dx.size, grad_y, argmax, dx, scalar(0, grad_y.dtype))
    return dx
