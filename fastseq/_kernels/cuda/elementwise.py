"""numba.cuda: device-array helpers and the elementwise work of a training step.

- helpers: ``as_device`` / ``as_device_indices`` (NumPy arrays are copied to the device,
  device arrays pass through), ``to_host``, ``zeros``, ``launch_1d``;
- deterministic reductions: ``column_sum`` (dbias), ``sum_all`` (a loss value);
- Dense's bias add, activations forward/backward (gradient from the output alone, as
  :mod:`fastseq.activations`);
- the elementwise parts of the losses (per-element value and gradient);
- optimizer updates (SGD, momentum, Adam, RMSprop, Adagrad), the device twins of
  :mod:`fastseq._kernels.optim`, with the same argument order and formulas.

Every kernel is written for one thread per element (flat index ``i``) with a grid-stride
loop, so no thread reads what another writes: results never depend on the launch shape.
Float constants come in as arguments cast to the array dtype (``one``, ``eps``): a Python
float literal would promote float32 arithmetic to float64 on the device.
"""
import math

import numpy as np
from numba import cuda
from numba.core import config as _numba_config

__all__ = [
    "SIMULATOR", "is_device_array", "as_device", "as_device_indices", "to_host", "zeros",
    "launch_1d", "fill", "scale_inplace", "column_sum", "sum_all",
    "bias_add", "activation_forward", "activation_backward",
    "binary_crossentropy_elementwise", "sigmoid_binary_crossentropy_grad",
    "softmax_crossentropy_grad", "mean_squared_error_elementwise",
    "sgd_dense", "sgd_rows", "sgd_momentum_dense", "sgd_momentum_rows", "sgd_nesterov_dense",
    "sgd_nesterov_rows", "adam_dense", "adam_rows", "adam_amsgrad_dense", "adam_amsgrad_rows",
    "rmsprop_dense", "rmsprop_rows", "rmsprop_momentum_dense", "rmsprop_momentum_rows",
    "rmsprop_centered_dense", "rmsprop_centered_rows", "rmsprop_centered_momentum_dense",
    "rmsprop_centered_momentum_rows", "adagrad_dense", "adagrad_rows",
]

SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)
# The simulator runs every CUDA thread as a Python thread: small blocks keep it quick.
MAX_THREADS = 8 if SIMULATOR else 256
MAX_BLOCKS = 4 if SIMULATOR else 65535
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


# ---------------------------------------------------------------------------- helpers
def is_device_array(x):
    """True for numba device arrays (and, on a real GPU, any __cuda_array_interface__)."""
    if cuda.devicearray.is_cuda_ndarray(x):
        return True
    return not SIMULATOR and hasattr(x, "__cuda_array_interface__")


def _to_device_array(x):
    if cuda.devicearray.is_cuda_ndarray(x):
        return x
    return cuda.as_cuda_array(x)  # CuPy / PyTorch tensors: zero-copy view


def _check(x, name, kinds, ndim, dtype):
    if x.dtype not in kinds:
        what = "float32 or float64" if kinds is FLOAT_DTYPES else "int32 or int64"
        raise TypeError(f"{name} must be a {what} array, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and len(x.shape) != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")


def as_device(x, name, ndim=None, dtype=None):
    """``x`` as a float32/float64 device array: device arrays pass through (no copy), NumPy
    arrays (lists: float32) are copied to the device. Wrong dtype: TypeError; rank:
    ValueError."""
    if is_device_array(x):
        x = _to_device_array(x)
    else:
        if not isinstance(x, np.ndarray):
            x = np.asarray(x, dtype=dtype if dtype is not None else np.float32)
        _check(x, name, FLOAT_DTYPES, ndim, dtype)
        return cuda.to_device(np.ascontiguousarray(x))
    _check(x, name, FLOAT_DTYPES, ndim, dtype)
    return x


def as_device_indices(x, name):
    """``x`` as an int32/int64 device array (other host integer dtypes widen to int64)."""
    if is_device_array(x):
        x = _to_device_array(x)
        _check(x, name, INDEX_DTYPES, None, None)
        return x
    x = np.asarray(x)
    if x.size == 0 and x.dtype.kind == "f":  # np.asarray([]) is float64
        x = x.astype(np.int64)
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an int32 or int64 array, got dtype {x.dtype}")
    if x.dtype not in INDEX_DTYPES:
        if x.dtype == np.dtype(np.uint64) and x.size and x.max() > np.iinfo(np.int64).max:
            raise IndexError(f"{name} holds {x.max()}, which does not fit in int64")
        x = x.astype(np.int64)
    return cuda.to_device(np.ascontiguousarray(x))


def to_host(x):
    """A NumPy array with the values of ``x`` (a device array is copied back)."""
    if is_device_array(x):
        return _to_device_array(x).copy_to_host()
    return np.asarray(x)


def launch_1d(n):
    """(blocks, threads) for ``n`` flat work items; kernels loop grid-stride over the rest."""
    threads = max(1, min(MAX_THREADS, n))
    if not SIMULATOR:
        threads = max(32, min(MAX_THREADS, (n + 31) // 32 * 32))
    blocks = max(1, min(MAX_BLOCKS, (n + threads - 1) // threads))
    return blocks, threads


def launch(kernel, n, *args):
    """Launch a grid-stride ``kernel`` over ``n`` flat work items (nothing when n = 0)."""
    if n:
        blocks, threads = launch_1d(n)
        kernel[blocks, threads](*args)


def scalar(value, dtype):
    """A Python number as a NumPy scalar of ``dtype``, so kernels keep its precision."""
    return np.dtype(dtype).type(value)


def device_mask(mask, shape):
    """A (B, L) mask as a device array (host masks: uint8, 1 = kept; device masks pass
    through, any dtype, nonzero = kept), or None."""
    if mask is None:
        return None
    if not cuda.devicearray.is_cuda_ndarray(mask):
        host = np.asarray(mask)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"mask must be a boolean (or 0/1) array, got dtype {host.dtype}")
        mask = cuda.to_device(np.ascontiguousarray(host.astype(bool).astype(np.uint8)))
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape (batch, steps) = {shape}, got {tuple(mask.shape)}")
    return mask


@cuda.jit(cache=True)
def _fill_kernel(out, value):
    # out: (N,) -> out[:] = value
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = value


def fill(out, value):
    """Fill a contiguous device array in place."""
    flat = out.reshape(out.size)
    if out.size:
        blocks, threads = launch_1d(out.size)
        _fill_kernel[blocks, threads](flat, scalar(value, out.dtype))
    return out


@cuda.jit(cache=True)
def _scale_kernel(x, factor):
    # x: (N,) -> x *= factor
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        x[i] *= factor


def scale_inplace(x, factor):
    """x *= factor for a contiguous device array; returns x."""
    if x.size:
        blocks, threads = launch_1d(x.size)
        _scale_kernel[blocks, threads](x.reshape(x.size), scalar(factor, x.dtype))
    return x


def zeros(shape, dtype):
    """A zero-filled device array (cuda.device_array leaves memory uninitialised)."""
    return fill(cuda.device_array(shape, dtype=dtype), 0)


# ---------------------------------------------------------------------------- reductions
# Fixed chunking (never the launch shape) decides the summation order: deterministic.
_COLUMN_SUM_CHUNK = 4 if SIMULATOR else 256


@cuda.jit(cache=True)
def _column_partial_sum_kernel(x, partial, chunk):
    # x: (R, C), partial: (ceil(R / chunk), C) -> partial[p, c] = sum of x[p*chunk:(p+1)*chunk, c]
    n_parts, n_cols = partial.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n_parts * n_cols, step):
        p = i // n_cols
        c = i - p * n_cols
        r0 = p * chunk
        r1 = min(r0 + chunk, x.shape[0])
        acc = x[r0, c]
        for r in range(r0 + 1, r1):
            acc += x[r, c]
        partial[p, c] = acc


def column_sum(x, out=None):
    """Deterministic sum over the rows of a 2-D device array: (R, C) -> (C,).

    Rows are summed in fixed chunks, then the chunk sums in order (repeated while more than
    one chunk is left), so the result is bitwise the same on every run."""
    rows, cols = x.shape
    if out is None:
        out = cuda.device_array(cols, dtype=x.dtype)
    if rows == 0:
        return fill(out, 0)
    while rows > 1:
        parts = (rows + _COLUMN_SUM_CHUNK - 1) // _COLUMN_SUM_CHUNK
        partial = cuda.device_array((parts, cols), dtype=x.dtype)
        blocks, threads = launch_1d(parts * cols)
        _column_partial_sum_kernel[blocks, threads](x, partial, _COLUMN_SUM_CHUNK)
        x, rows = partial, parts
    out.copy_to_device(x.reshape(cols))
    return out


def sum_all(x):
    """Deterministic sum of every element of a contiguous device array, as a (1,) device
    array (no transfer: the caller decides when the value comes back)."""
    return column_sum(x.reshape(x.size, 1))


# ---------------------------------------------------------------------------- Dense bias
@cuda.jit(cache=True)
def _bias_add_kernel(y, bias):
    # y: (N, C), bias: (C,) -> y[n, c] += bias[c]
    n_cols = y.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        r = i // n_cols
        c = i - r * n_cols
        y[r, c] += bias[c]


def bias_add(y, bias):
    """In place: y (..., C) += bias (C,). Returns y."""
    flat = y.reshape(y.size // tuple(y.shape)[-1], tuple(y.shape)[-1])
    if y.size:
        blocks, threads = launch_1d(y.size)
        _bias_add_kernel[blocks, threads](flat, bias)
    return y


# ---------------------------------------------------------------------------- activations
_LINEAR, _RELU, _SIGMOID, _TANH, _SOFTMAX = 0, 1, 2, 3, 4
_ACTIVATION_CODES = {"linear": _LINEAR, "relu": _RELU, "sigmoid": _SIGMOID, "tanh": _TANH,
                     "softmax": _SOFTMAX}


@cuda.jit(device=True, inline=True)
def sigmoid(z, one):
    # numerically stable: exp of a non-positive number only
    if z >= 0:
        return one / (one + math.exp(-z))
    e = math.exp(z)
    return e / (one + e)


@cuda.jit(cache=True)
def _activation_forward_kernel(z, y, code, one):
    # z, y: (N,) -> y = act(z) for relu, sigmoid, tanh, linear
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, z.size, step):
        v = z[i]
        if code == 1:
            y[i] = max(v, one - one)
        elif code == 2:
            y[i] = sigmoid(v, one)
        elif code == 3:
            y[i] = math.tanh(v)
        else:
            y[i] = v


# activation forward z -> y and backward (grad_y, y) -> dz, side by side
@cuda.jit(cache=True)
def _activation_backward_kernel(grad_y, y, dz, code, one):
    # grad_y, y, dz: (N,) -> dz = grad_y * act'(from y)
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        g = grad_y[i]
        v = y[i]
        if code == 1:
            dz[i] = g if v > zero else zero
        elif code == 2:
            dz[i] = g * (v * (one - v))
        elif code == 3:
            dz[i] = g * (one - v * v)
        else:
            dz[i] = g


@cuda.jit(cache=True)
def _softmax_forward_kernel(z, y):
    # z, y: (R, C) -> y[r] = softmax(z[r]); one thread per row, in order
    start, step = cuda.grid(1), cuda.gridsize(1)
    n_cols = z.shape[1]
    for r in range(start, z.shape[0], step):
        top = z[r, 0]
        for c in range(1, n_cols):
            top = max(top, z[r, c])
        total = z[r, 0] - z[r, 0]
        for c in range(n_cols):
            e = math.exp(z[r, c] - top)
            y[r, c] = e
            total += e
        for c in range(n_cols):
            y[r, c] /= total


@cuda.jit(cache=True)
def _softmax_backward_kernel(grad_y, y, dz):
    # grad_y, y, dz: (R, C) -> dz = y * (grad_y - sum(grad_y * y)) per row
    start, step = cuda.grid(1), cuda.gridsize(1)
    n_cols = y.shape[1]
    for r in range(start, y.shape[0], step):
        dot = y[r, 0] - y[r, 0]
        for c in range(n_cols):
            dot += grad_y[r, c] * y[r, c]
        for c in range(n_cols):
            dz[r, c] = y[r, c] * (grad_y[r, c] - dot)


def _activation_code(name):
    try:
        return _ACTIVATION_CODES[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {sorted(_ACTIVATION_CODES)}"
        ) from None


def activation_forward(name, z, out=None):
    """y = activation(z) for a Keras activation name; softmax over the last axis."""
    code = _activation_code(name)
    z = as_device(z, "z")
    out = cuda.device_array(z.shape, dtype=z.dtype) if out is None else out
    if z.size == 0:
        return out
    if code == _SOFTMAX:
        rows = z.size // tuple(z.shape)[-1]
        blocks, threads = launch_1d(rows)
        _softmax_forward_kernel[blocks, threads](
            z.reshape(rows, tuple(z.shape)[-1]), out.reshape(rows, tuple(z.shape)[-1]))
        return out
    blocks, threads = launch_1d(z.size)
    _activation_forward_kernel[blocks, threads](
        z.reshape(z.size), out.reshape(z.size), code, scalar(1, z.dtype))
    return out


def activation_backward(name, grad_y, y, out=None):
    """dz from grad_y and the activation's output y (out may be grad_y: in place)."""
    code = _activation_code(name)
    grad_y = as_device(grad_y, "grad_y")
    y = as_device(y, "y", dtype=grad_y.dtype)
    if tuple(grad_y.shape) != tuple(y.shape):
        raise ValueError(f"grad_y and y must have one shape, got {grad_y.shape} and {y.shape}")
    out = cuda.device_array(y.shape, dtype=y.dtype) if out is None else out
    if y.size == 0:
        return out
    if code == _SOFTMAX:
        rows = y.size // tuple(y.shape)[-1]
        shape2 = (rows, tuple(y.shape)[-1])
        blocks, threads = launch_1d(rows)
        if out is grad_y:  # the row's dot product must be read before it is overwritten
            grad_y = _copy(grad_y)
        _softmax_backward_kernel[blocks, threads](
            grad_y.reshape(shape2), y.reshape(shape2), out.reshape(shape2))
        return out
    blocks, threads = launch_1d(y.size)
    _activation_backward_kernel[blocks, threads](
        grad_y.reshape(y.size), y.reshape(y.size), out.reshape(y.size), code,
        scalar(1, y.dtype))
    return out


def _copy(x):
    out = cuda.device_array(x.shape, dtype=x.dtype)
    out.copy_to_device(x)
    return out


# ---------------------------------------------------------------------------- losses
# Per-element loss values and their gradients; the model reduces (sum_all) and scales.
@cuda.jit(cache=True)
def _bce_kernel(y_true, y_pred, loss, grad, one, eps):
    # y_true, y_pred, loss, grad: (N,) -> Keras 3 binary_crossentropy on probabilities (as
    # fastseq.losses): p = clip(y_pred, eps, 1 - eps); loss = -(t log p + (1 - t) log(1 - p));
    # grad = d loss / d y_pred, 0 where the clip is active
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y_pred.size, step):
        t = y_true[i]
        q = y_pred[i]
        p = min(max(q, eps), one - eps)
        loss[i] = -(t * math.log(p) + (one - t) * math.log(one - p))
        if q < eps or q > one - eps:
            grad[i] = one - one
        else:
            grad[i] = (one - t) / (one - p) - t / p


def binary_crossentropy_elementwise(y_true, y_pred):
    """(loss, grad): per-element binary cross-entropy on probabilities and d loss / d y_pred,
    with Keras's clipping to [1e-7, 1 - 1e-7] (the model takes the mean over the last axis
    and the batch)."""
    y_pred = as_device(y_pred, "y_pred")
    y_true = as_device(y_true, "y_true", dtype=y_pred.dtype)
    _same_shape(y_true, y_pred)
    loss = cuda.device_array(y_pred.shape, dtype=y_pred.dtype)
    grad = cuda.device_array(y_pred.shape, dtype=y_pred.dtype)
    if y_pred.size:
        n = y_pred.size
        blocks, threads = launch_1d(n)
        _bce_kernel[blocks, threads](y_true.reshape(n), y_pred.reshape(n), loss.reshape(n),
                                     grad.reshape(n), scalar(1, y_pred.dtype),
                                     scalar(1e-7, y_pred.dtype))
    return loss, grad


@cuda.jit(cache=True)
def _sigmoid_bce_grad_kernel(y_true, y_prob, grad, scale):
    # y_true, y_prob, grad: (N,) -> grad = (sigmoid(z) - t) * scale: d loss / d logits
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y_prob.size, step):
        grad[i] = (y_prob[i] - y_true[i]) * scale


def sigmoid_binary_crossentropy_grad(y_true, y_prob, scale=1.0):
    """d loss / d logits of binary cross-entropy after a sigmoid: (y_prob - y_true) * scale
    (the model's fused path, scale = 1 / batch elements)."""
    y_prob = as_device(y_prob, "y_prob")
    y_true = as_device(y_true, "y_true", dtype=y_prob.dtype)
    _same_shape(y_true, y_prob)
    grad = cuda.device_array(y_prob.shape, dtype=y_prob.dtype)
    if y_prob.size:
        n = y_prob.size
        blocks, threads = launch_1d(n)
        _sigmoid_bce_grad_kernel[blocks, threads](y_true.reshape(n), y_prob.reshape(n),
                                                  grad.reshape(n), scalar(scale, y_prob.dtype))
    return grad


@cuda.jit(cache=True)
def _softmax_ce_grad_kernel(labels, y_prob, grad, one, scale):
    # labels: (R,) int class ids, y_prob, grad: (R, C) -> grad = (p - onehot) * scale
    n_cols = y_prob.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y_prob.size, step):
        r = i // n_cols
        c = i - r * n_cols
        g = y_prob[r, c]
        if labels[r] == c:
            g -= one
        grad[r, c] = g * scale


def softmax_crossentropy_grad(labels, y_prob, scale=1.0):
    """d loss / d logits of sparse categorical cross-entropy after a softmax:
    (y_prob - onehot(labels)) * scale; labels (R,), y_prob (R, C)."""
    y_prob = as_device(y_prob, "y_prob", ndim=2)
    labels = as_device_indices(labels, "labels")
    if tuple(labels.shape) != (y_prob.shape[0],):
        raise ValueError(f"labels must have shape ({y_prob.shape[0]},), got {labels.shape}")
    grad = cuda.device_array(y_prob.shape, dtype=y_prob.dtype)
    if y_prob.size:
        blocks, threads = launch_1d(y_prob.size)
        _softmax_ce_grad_kernel[blocks, threads](labels, y_prob, grad, scalar(1, y_prob.dtype),
                                                 scalar(scale, y_prob.dtype))
    return grad


@cuda.jit(cache=True)
def _mse_kernel(y_true, y_pred, loss, grad, two):
    # y_true, y_pred, loss, grad: (N,) -> loss = (p - t)^2, grad = 2 (p - t)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y_pred.size, step):
        d = y_pred[i] - y_true[i]
        loss[i] = d * d
        grad[i] = two * d


def mean_squared_error_elementwise(y_true, y_pred):
    """(loss, grad): per-element squared error and its derivative in y_pred."""
    y_pred = as_device(y_pred, "y_pred")
    y_true = as_device(y_true, "y_true", dtype=y_pred.dtype)
    _same_shape(y_true, y_pred)
    loss = cuda.device_array(y_pred.shape, dtype=y_pred.dtype)
    grad = cuda.device_array(y_pred.shape, dtype=y_pred.dtype)
    if y_pred.size:
        n = y_pred.size
        blocks, threads = launch_1d(n)
        _mse_kernel[blocks, threads](y_true.reshape(n), y_pred.reshape(n), loss.reshape(n),
                                     grad.reshape(n), scalar(2, y_pred.dtype))
    return loss, grad


def _same_shape(a, b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"y_true and y_pred must have one shape, got {a.shape} and {b.shape}")


# ---------------------------------------------------------------------------- optimizers
# The formulas, names and signatures of fastseq._kernels.optim (Keras's), one thread per
# element.
# *_dense take flat (N,) arrays; *_rows take flat (V*D,) weights and slots, a row-sparse
# gradient (rows ascending and unique, values (U*D,) flat) and width = D: lazy=False
# updates every row (untouched rows with gradient 0, as Keras on the densified gradient),
# lazy=True only the touched rows. Scalars arrive cast to the weight dtype by the caller,
# as for the CPU kernels. Arrays are device arrays, updated in place.
@cuda.jit(device=True, inline=True)
def _row_gradient(r, j, values, row_slot, dense, zero):
    # gradient of element (r, j): dense: values[r, j]; else values[row_slot[r], j], or 0
    # when row r is untouched
    if dense:
        return values[r, j]
    k = row_slot[r]
    if k < 0:
        return zero
    return values[k, j]


def _row_slots(n_rows, rows):
    """(V,) int64 device array: the position of row r in ``rows``, or -1 when untouched."""
    slots = cuda.device_array(n_rows, dtype=np.int64)
    fill(slots, -1)
    if rows.size:
        blocks, threads = launch_1d(rows.size)
        _row_slots_kernel[blocks, threads](rows, slots)
    return slots


@cuda.jit(cache=True)
def _row_slots_kernel(rows, slots):
    # rows: (U,) unique -> slots[rows[k]] = k (each row written by one thread)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, rows.size, step):
        slots[rows[k]] = k


@cuda.jit(cache=True)
def _sgd_dense_kernel(w, g, lr):
    # w, g: (N,) -> w -= g * lr
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, step):
        w[i] -= g[i] * lr


@cuda.jit(cache=True)
def _sgd_rows_kernel(w, rows, values, lr):
    # w: (V, D), rows: (U,), values: (U, D) -> touched rows: w[rows[k]] -= values[k] * lr
    n_cols = w.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, values.size, step):
        k = i // n_cols
        j = i - k * n_cols
        w[rows[k], j] -= values[k, j] * lr


@cuda.jit(device=True, inline=True)
def _sgd_momentum_elem(w, m, r, j, g, lr, momentum, nesterov):
    mi = m[r, j] * momentum - g * lr
    m[r, j] = mi
    if nesterov:
        w[r, j] += mi * momentum - g * lr
    else:
        w[r, j] += mi


@cuda.jit(cache=True)
def _sgd_momentum_kernel(w, m, row_slot, values, dense, lr, momentum, nesterov, lazy):
    # w, m: (V, D), row_slot: (V,), values: (U, D), or (V, D) when dense -> w, m in place
    n_cols = w.shape[1]
    zero = lr - lr
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, step):
        r = i // n_cols
        j = i - r * n_cols
        if lazy and not dense and row_slot[r] < 0:
            continue
        g = _row_gradient(r, j, values, row_slot, dense, zero)
        _sgd_momentum_elem(w, m, r, j, g, lr, momentum, nesterov)


@cuda.jit(device=True, inline=True)
def _adam_elem(w, m, v, vhat, r, j, g, alpha, one_minus_b1, one_minus_b2, eps, amsgrad):
    mi = m[r, j] + (g - m[r, j]) * one_minus_b1
    vi = v[r, j] + (g * g - v[r, j]) * one_minus_b2
    m[r, j] = mi
    v[r, j] = vi
    if amsgrad:
        vi = max(vhat[r, j], vi)
        vhat[r, j] = vi
    w[r, j] -= (mi * alpha) / (math.sqrt(vi) + eps)


@cuda.jit(cache=True)
def _adam_kernel(w, m, v, vhat, row_slot, values, dense, alpha, one_minus_b1, one_minus_b2, eps,
                 amsgrad, lazy):
    # w, m, v: (V, D), vhat: (V, D) with amsgrad, row_slot: (V,), values: (U, D) -> in place
    n_cols = w.shape[1]
    zero = eps - eps
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, step):
        r = i // n_cols
        j = i - r * n_cols
        if lazy and not dense and row_slot[r] < 0:
            continue
        g = _row_gradient(r, j, values, row_slot, dense, zero)
        _adam_elem(w, m, v, vhat, r, j, g, alpha, one_minus_b1, one_minus_b2, eps, amsgrad)


@cuda.jit(device=True, inline=True)
def _rmsprop_elem(w, vel, mom, avg, r, j, g, lr, rho, one_minus_rho, momentum, eps,
                  use_momentum, centered):
    veli = rho * vel[r, j] + one_minus_rho * (g * g)
    vel[r, j] = veli
    if centered:
        avgi = rho * avg[r, j] + one_minus_rho * g
        avg[r, j] = avgi
        denom = veli - avgi * avgi + eps
    else:
        denom = veli + eps
    inc = (lr * g) / math.sqrt(denom)
    if use_momentum:
        momi = momentum * mom[r, j] + inc
        mom[r, j] = momi
        w[r, j] -= momi
    else:
        w[r, j] -= inc


@cuda.jit(cache=True)
def _rmsprop_kernel(w, vel, mom, avg, row_slot, values, dense, lr, rho, one_minus_rho, momentum,
                    eps, use_momentum, centered, lazy):
    # w, vel: (V, D); mom, avg: (V, D) when used; row_slot: (V,), values: (U, D) -> in place
    n_cols = w.shape[1]
    zero = eps - eps
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, step):
        r = i // n_cols
        j = i - r * n_cols
        if lazy and not dense and row_slot[r] < 0:
            continue
        g = _row_gradient(r, j, values, row_slot, dense, zero)
        _rmsprop_elem(w, vel, mom, avg, r, j, g, lr, rho, one_minus_rho, momentum, eps,
                      use_momentum, centered)


@cuda.jit(cache=True)
def _adagrad_kernel(w, acc, row_slot, values, dense, lr, eps):
    # w, acc: (V, D), row_slot: (V,), values: (U, D), or (V, D) when dense -> in place (a
    # zero gradient changes neither acc nor w, so untouched rows are skipped)
    n_cols = w.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.size, step):
        r = i // n_cols
        j = i - r * n_cols
        if dense:
            g = values[r, j]
        else:
            k = row_slot[r]
            if k < 0:
                continue
            g = values[k, j]
        acci = acc[r, j] + g * g
        acc[r, j] = acci
        w[r, j] -= (lr * g) / math.sqrt(acci + eps)


def _as_2d(x):
    return x.reshape(x.size, 1) if len(x.shape) == 1 else x


_NO_SLOTS = {}


def _dense_slots():
    """A (1,) placeholder for the dense kernels' unused row_slot (one per process)."""
    if "slots" not in _NO_SLOTS:
        _NO_SLOTS["slots"] = cuda.to_device(np.full(1, -1, dtype=np.int64))
    return _NO_SLOTS["slots"]


def _rows_2d(width, *arrays):
    """Flat (V*D,) device arrays as (V, D) views (None and placeholders pass through)."""
    return [a if a is None else a.reshape(a.size // width, width) for a in arrays]


def sgd_dense(w, g, lr):
    # w, g: (N,) -> w updated in place: w -= g * lr
    if w.size:
        blocks, threads = launch_1d(w.size)
        _sgd_dense_kernel[blocks, threads](w, g, lr)


def sgd_rows(w, rows, values, width, lr):
    # w: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> touched rows in place
    w, values = _rows_2d(width, w, values)
    if values.size:
        blocks, threads = launch_1d(values.size)
        _sgd_rows_kernel[blocks, threads](w, rows, values, lr)


# The flags are plain kernel arguments: a branch every thread takes the same way costs
# nothing on a GPU, so one kernel serves every combination; the public names below are the
# CPU kernels' (one per combination).
def _sgd_momentum_dense(w, m, g, lr, momentum, nesterov):
    w2, m2, g2 = _as_2d(w), _as_2d(m), _as_2d(g)
    launch(_sgd_momentum_kernel, w2.size, w2, m2, _dense_slots(), g2, True, lr, momentum,
                 bool(nesterov), False)


def _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, nesterov, lazy):
    w, m, values = _rows_2d(width, w, m, values)
    launch(_sgd_momentum_kernel, w.size, w, m, _row_slots(w.shape[0], rows), values, False,
                 lr, momentum, bool(nesterov), bool(lazy))


def sgd_momentum_dense(w, m, g, lr, momentum):
    # w, m, g: (N,) -> w, m updated in place
    _sgd_momentum_dense(w, m, g, lr, momentum, False)


def sgd_nesterov_dense(w, m, g, lr, momentum):
    # w, m, g: (N,) -> w, m updated in place (Nesterov momentum)
    _sgd_momentum_dense(w, m, g, lr, momentum, True)


def sgd_momentum_rows(w, m, rows, values, width, lr, momentum, lazy):
    # w, m: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> w, m in place
    _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, False, lazy)


def sgd_nesterov_rows(w, m, rows, values, width, lr, momentum, lazy):
    # as sgd_momentum_rows, with Nesterov momentum
    _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, True, lazy)


def _adam_dense(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps, amsgrad):
    w2, m2, v2, g2 = _as_2d(w), _as_2d(m), _as_2d(v), _as_2d(g)
    h2 = _as_2d(vhat) if amsgrad else w2
    launch(_adam_kernel, w2.size, w2, m2, v2, h2, _dense_slots(), g2, True, alpha,
                 one_minus_b1, one_minus_b2, eps, bool(amsgrad), False)


def _adam_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps,
               amsgrad, lazy):
    w, m, v, values = _rows_2d(width, w, m, v, values)
    h = _rows_2d(width, vhat)[0] if amsgrad else w
    launch(_adam_kernel, w.size, w, m, v, h, _row_slots(w.shape[0], rows), values, False,
                 alpha, one_minus_b1, one_minus_b2, eps, bool(amsgrad), bool(lazy))


def adam_dense(w, m, v, g, alpha, one_minus_b1, one_minus_b2, eps):
    # w, m, v, g: (N,) -> w, m, v updated in place
    _adam_dense(w, m, v, None, g, alpha, one_minus_b1, one_minus_b2, eps, False)


def adam_amsgrad_dense(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps):
    # w, m, v, vhat, g: (N,) -> w, m, v, vhat updated in place (AMSGrad)
    _adam_dense(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps, True)


def adam_rows(w, m, v, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps, lazy):
    # w, m, v: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> w, m, v in place
    _adam_rows(w, m, v, None, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps,
               False, lazy)


def adam_amsgrad_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2,
                      eps, lazy):
    # as adam_rows, with AMSGrad's vhat: (V*D,) flat
    _adam_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps,
               True, lazy)


def _rmsprop_dense(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum, eps, use_momentum,
                   centered):
    w2, vel2, g2 = _as_2d(w), _as_2d(vel), _as_2d(g)
    mom2 = _as_2d(mom) if use_momentum else w2
    avg2 = _as_2d(avg) if centered else w2
    launch(_rmsprop_kernel, w2.size, w2, vel2, mom2, avg2, _dense_slots(), g2, True, lr, rho,
                 one_minus_rho, momentum, eps, bool(use_momentum), bool(centered), False)


def _rmsprop_rows(w, vel, mom, avg, rows, values, width, lr, rho, one_minus_rho, momentum, eps,
                  use_momentum, centered, lazy):
    w, vel, values = _rows_2d(width, w, vel, values)
    mom = _rows_2d(width, mom)[0] if use_momentum else w
    avg = _rows_2d(width, avg)[0] if centered else w
    launch(_rmsprop_kernel, w.size, w, vel, mom, avg, _row_slots(w.shape[0], rows), values,
                 False, lr, rho, one_minus_rho, momentum, eps, bool(use_momentum),
                 bool(centered), bool(lazy))


def rmsprop_dense(w, vel, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, g: (N,) -> updated in place (plain)
    _rmsprop_dense(w, vel, None, None, g, lr, rho, one_minus_rho, momentum, eps, False, False)


def rmsprop_rows(w, vel, rows, values, width, lr, rho, one_minus_rho, momentum, eps, lazy):
    # w, vel: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> in place (plain)
    _rmsprop_rows(w, vel, None, None, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, False, False, lazy)


def rmsprop_momentum_dense(w, vel, mom, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, mom, g: (N,) -> updated in place (with momentum)
    _rmsprop_dense(w, vel, mom, None, g, lr, rho, one_minus_rho, momentum, eps, True, False)


def rmsprop_momentum_rows(w, vel, mom, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    # w, vel, mom: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> in place
    _rmsprop_rows(w, vel, mom, None, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, True, False, lazy)


def rmsprop_centered_dense(w, vel, avg, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, avg, g: (N,) -> updated in place (centered)
    _rmsprop_dense(w, vel, None, avg, g, lr, rho, one_minus_rho, momentum, eps, False, True)


def rmsprop_centered_rows(w, vel, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    # w, vel, avg: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> in place
    _rmsprop_rows(w, vel, None, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, False, True, lazy)


def rmsprop_centered_momentum_dense(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum,
                                    eps):
    # w, vel, mom, avg, g: (N,) -> updated in place (centered, with momentum)
    _rmsprop_dense(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum, eps, True, True)


def rmsprop_centered_momentum_rows(w, vel, mom, avg, rows, values, width, lr, rho,
                                   one_minus_rho, momentum, eps, lazy):
    # w, vel, mom, avg: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> in place
    _rmsprop_rows(w, vel, mom, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, True, True, lazy)


def adagrad_dense(w, acc, g, lr, eps):
    # w, acc, g: (N,) -> w, acc updated in place
    w2, acc2, g2 = _as_2d(w), _as_2d(acc), _as_2d(g)
    launch(_adagrad_kernel, w2.size, w2, acc2, _dense_slots(), g2, True, lr, eps)


def adagrad_rows(w, acc, rows, values, width, lr, eps):
    # w, acc: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> touched rows in place
    w, acc, values = _rows_2d(width, w, acc, values)
    launch(_adagrad_kernel, w.size, w, acc, _row_slots(w.shape[0], rows), values, False, lr,
                 eps)
