"""numba.cuda: the pieces a whole training step needs beyond the op kernels.

Used by the CUDA backend (:mod:`fastseq.backend.cuda`) for a model's training step:

- ``to_device``: one host-to-device copy of a batch array;
- ``multiply`` / ``scale_steps``: dropout's elementwise and per-sequence masks;
- ``loss_rows``: per-row loss values and the loss gradient for binary / categorical /
  sparse categorical cross-entropy (from logits, or on probabilities for the binary one) and
  mean squared error, with a 0/1 weight per row (masked sequence steps), as
  :mod:`fastseq.losses`' formulas;
- ``accuracy_rows``: per-row binary, categorical or sparse categorical accuracy.

The per-row values go into an (R, 2) ``stats`` array (loss, accuracy) that the backend
reduces with the deterministic ``column_sum`` and copies back once per batch. Row kernels
run one thread per row and loop over its classes in order, so results never depend on the
launch shape.
"""
import math

import numpy as np
from numba import cuda

from .elementwise import launch, scalar, sigmoid, zeros

__all__ = ["to_device", "multiply", "scale_steps", "loss_rows", "accuracy_rows"]


def to_device(host):
    """A C-contiguous device copy of a NumPy array."""
    return cuda.to_device(np.ascontiguousarray(host))


# ---------------------------------------------------------------------------- dropout
@cuda.jit(cache=True)
def _multiply_kernel(x, m, out):
    # x, m, out: (N,) -> out = x * m
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        out[i] = x[i] * m[i]


def multiply(x, m, out=None):
    """Elementwise ``x * m`` (same shapes); ``out`` may be ``x``."""
    if tuple(x.shape) != tuple(m.shape):
        raise ValueError(f"multiply: shapes {tuple(x.shape)} and {tuple(m.shape)} differ")
    if out is None:
        out = cuda.device_array(x.shape, dtype=x.dtype)
    n = x.size
    launch(_multiply_kernel, n, x.reshape(n), m.reshape(n), out.reshape(n))
    return out


@cuda.jit(cache=True)
def _scale_steps_kernel(x, m, out):
    # x, out: (B, T, D), m: (B, D) -> out[b, t, d] = x[b, t, d] * m[b, d]
    batch, steps, dim = x.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.size, step):
        b = i // (steps * dim)
        d = i - (i // dim) * dim
        t = (i - b * steps * dim) // dim
        out[b, t, d] = x[b, t, d] * m[b, d]


def scale_steps(x, m, out=None):
    """One mask per sequence for every step (LSTM input dropout): x (B, T, D) * m (B, D)."""
    if out is None:
        out = cuda.device_array(x.shape, dtype=x.dtype)
    launch(_scale_steps_kernel, x.size, x, m, out)
    return out


# ---------------------------------------------------------------------------- losses
@cuda.jit(cache=True)
def _bce_rows_kernel(t, z, weight, has_weight, from_logits, stats, grad, need_grad, width,
                     scale, one, eps):
    # t, z, grad: (R, C), weight: (R,), stats: (R, 2) -> stats[r, 0] = w_r * mean_c(loss),
    # grad = w_r * dloss/dz / C * scale. from_logits: z are logits (Keras's stable form);
    # else probabilities clipped to [eps, 1 - eps] (gradient 0 where the clip is active)
    n_rows, n_cols = z.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, n_rows, step):
        w = weight[r] if has_weight else one
        acc = zero
        for c in range(n_cols):
            x = z[r, c]
            y = t[r, c]
            if from_logits:
                acc += max(x, zero) - x * y + math.log1p(math.exp(-abs(x)))
                g = sigmoid(x, one) - y
            else:
                p = min(max(x, eps), one - eps)
                acc += -(y * math.log(p) + (one - y) * math.log(one - p))
                g = zero
                if x >= eps and x <= one - eps:
                    g = -(y / p) + (one - y) / (one - p)
            if need_grad:
                grad[r, c] = (g / width) * scale * w
        stats[r, 0] = w * (acc / width)


@cuda.jit(cache=True)
def _softmax_ce_rows_kernel(t, labels, sparse, z, weight, has_weight, stats, grad, need_grad,
                            scale, one):
    # z, grad: (R, C) logits; t: (R, C) one-hot (dense) or labels: (R,) (sparse); weight: (R,)
    # -> stats[r, 0] = w_r * -sum_c t log softmax(z), grad = w_r * (softmax * sum(t) - t) * scale
    n_rows, n_cols = z.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, n_rows, step):
        w = weight[r] if has_weight else one
        top = z[r, 0]
        for c in range(1, n_cols):
            top = max(top, z[r, c])
        total = zero
        for c in range(n_cols):
            total += math.exp(z[r, c] - top)
        lse = math.log(total)
        acc = zero
        t_sum = zero
        if sparse:
            acc = -((z[r, labels[r]] - top) - lse)
            t_sum = one
        else:
            for c in range(n_cols):
                acc -= t[r, c] * ((z[r, c] - top) - lse)
                t_sum += t[r, c]
        if need_grad:
            for c in range(n_cols):
                p = math.exp((z[r, c] - top) - lse)
                if sparse:
                    g = p - one if labels[r] == c else p
                else:
                    g = p * t_sum - t[r, c]
                grad[r, c] = g * scale * w
        stats[r, 0] = w * acc


@cuda.jit(cache=True)
def _mse_rows_kernel(t, p, weight, has_weight, stats, grad, need_grad, two_over_width, width,
                     scale, one):
    # t, p, grad: (R, C), weight: (R,) -> stats[r, 0] = w_r * mean_c (p - t)^2,
    # grad = w_r * 2 (p - t) / C * scale
    n_rows, n_cols = p.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, n_rows, step):
        w = weight[r] if has_weight else one
        acc = zero
        for c in range(n_cols):
            d = p[r, c] - t[r, c]
            acc += d * d
            if need_grad:
                grad[r, c] = (d * two_over_width) * scale * w
        stats[r, 0] = w * (acc / width)


def _placeholders(dtype):
    return (cuda.device_array((1, 1), dtype=dtype), cuda.device_array(1, dtype=np.int64),
            cuda.device_array(1, dtype=dtype))


# y: (R, C) float targets or (R,) int64 labels, pred: (R, C), weight: (R,) or None
#   -> stats: (R, 2) with stats[:, 0] the weighted per-row losses, grad: (R, C) or None
def loss_rows(kind, from_logits, y, pred, weight, scale, need_grad):
    """Per-row losses and d(loss)/d(pred) scaled by ``scale`` (1 / rows kept): ``kind`` is
    binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy or mse;
    ``from_logits``: pred holds logits (categorical kinds need it)."""
    n_rows, n_cols = pred.shape
    dtype = pred.dtype
    stats = zeros((n_rows, 2), dtype)
    grad = cuda.device_array((n_rows, n_cols), dtype=dtype) if need_grad else \
        cuda.device_array((1, 1), dtype=dtype)
    dense_ph, labels_ph, weight_ph = _placeholders(dtype)
    has_weight = weight is not None
    weight = weight if has_weight else weight_ph
    one = scalar(1, dtype)
    if kind == "binary_crossentropy":
        launch(_bce_rows_kernel, n_rows, y, pred, weight, has_weight, bool(from_logits), stats,
                grad, need_grad, scalar(n_cols, dtype), scalar(scale, dtype), one,
                scalar(1e-7, dtype))
    elif kind in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        if not from_logits:
            raise NotImplementedError(f"{kind} on probabilities has no CUDA kernel; the model "
                                      "needs a softmax last layer or from_logits=True")
        sparse = kind == "sparse_categorical_crossentropy"
        launch(_softmax_ce_rows_kernel, n_rows, dense_ph if sparse else y,
                y if sparse else labels_ph, sparse, pred, weight, has_weight, stats, grad,
                need_grad, scalar(scale, dtype), one)
    elif kind == "mse":
        launch(_mse_rows_kernel, n_rows, y, pred, weight, has_weight, stats, grad, need_grad,
                scalar(2.0 / n_cols, dtype), scalar(n_cols, dtype), scalar(scale, dtype), one)
    else:
        raise ValueError(f"loss_rows: unknown loss kind {kind!r}")
    return stats, (grad if need_grad else None)


# ---------------------------------------------------------------------------- accuracy
@cuda.jit(cache=True)
def _accuracy_rows_kernel(kind, threshold, t, labels, p, weight, has_weight, stats, width,
                          one):
    # p: (R, C) model outputs; t: (R, C) targets or labels: (R,); weight: (R,)
    # -> stats[r, 1] = w_r * accuracy of row r. kind 1: binary (mean_c of t == (p > threshold)),
    # 2: argmax t == argmax p, 3: labels[r] == argmax p (first maximum, as np.argmax)
    n_rows, n_cols = p.shape
    zero = one - one
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, n_rows, step):
        w = weight[r] if has_weight else one
        if kind == 1:
            hits = zero
            for c in range(n_cols):
                positive = p[r, c] > threshold
                if (positive and t[r, c] == one) or (not positive and t[r, c] == zero):
                    hits += one
            value = hits / width
        else:
            best = 0
            for c in range(1, n_cols):
                if p[r, c] > p[r, best]:
                    best = c
            if kind == 2:
                target = 0
                for c in range(1, n_cols):
                    if t[r, c] > t[r, target]:
                        target = c
            else:
                target = labels[r]
            value = one if best == target else zero
        stats[r, 1] = w * value


# kind: 1 binary, 2 categorical, 3 sparse categorical; y: (R, C) or (R,) int64 labels,
# prob: (R, C), weight: (R,) or None, stats: (R, 2) -> stats[:, 1] written
def accuracy_rows(kind, threshold, y, prob, weight, stats):
    """Per-row accuracy of the model outputs ``prob`` into ``stats[:, 1]``."""
    n_rows = prob.shape[0]
    dtype = prob.dtype
    dense_ph, labels_ph, weight_ph = _placeholders(dtype)
    sparse_labels = len(y.shape) == 1
    if sparse_labels != (kind == 3):
        raise NotImplementedError(
            "accuracy on device 'cuda': integer labels go with sparse categorical accuracy, "
            "one-hot or 0/1 targets with binary / categorical accuracy")
    has_weight = weight is not None
    launch(_accuracy_rows_kernel, n_rows, kind, scalar(threshold, dtype),
            dense_ph if sparse_labels else y, y if sparse_labels else labels_ph, prob,
            weight if has_weight else weight_ph, has_weight, stats, scalar(prob.shape[1], dtype),
            scalar(1, dtype))
    return stats
