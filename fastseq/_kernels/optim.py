"""Numba kernels for the optimizer updates: one fused pass over a weight and its slots.

Each optimizer's update is written once, as a span function (``_adam_span``, ...) that
updates equal-length views of the weight and its slots with a gradient read from ``g`` or,
where ``has_grad`` is False, with a zero gradient. (Views, not offsets: indices that are
provably non-negative let Numba drop its wraparound checks, so the loops vectorize.)
Three kinds of kernel use it:

- ``*_dense``: flat arrays and a dense gradient.
- ``*_rows`` with ``lazy=False``: a row-sparse gradient (rows, values) applied exactly as
  Keras applies the densified gradient: touched rows get their gradient, all other rows the
  zero-gradient update (momentum and velocity decay). The untouched rows between two touched
  ones are one contiguous span, so this is a single streaming pass with no V x D gradient.
  Bitwise the same as ``*_dense`` on the densified gradient (same expression, same order).
- ``*_rows`` with ``lazy=True``: only the touched rows (their slots and values) change, as
  TensorFlow's LazyAdam and PyTorch's SparseAdam.

Each flag combination (amsgrad, centered, momentum, nesterov) is its own small kernel that
passes the flags as literals, so each inner loop is branch-free and LLVM vectorizes it, and
only the combinations a user runs are ever compiled. (Where a slot is unused, the weight
array is passed in its place; it is never read through that name.) ``error_model="numpy"``
drops Python's division-by-zero check, which would otherwise block vectorization (and a
zero denominator gives inf/nan, as in Keras). Updates are elementwise: the result does not
depend on the thread count.

The caller (fastseq.optimizers) checks shapes, dtypes, contiguity and the rows (ascending,
unique, in range); these kernels trust their inputs. Scalars arrive cast to the weight dtype,
so float32 weights are updated in float32 arithmetic, as Keras does.
"""
import numpy as np
from numba import njit

_OPTS = dict(error_model="numpy")


# ---------------------------------------------------------------------------- SGD
@njit(inline="always", **_OPTS)
def _sgd_span(w, g, lr):
    # w, g: (n,) views -> w -= g * lr
    for i in range(w.size):
        w[i] -= g[i] * lr


@njit(inline="always", **_OPTS)
def _sgd_momentum_span(w, m, g, has_grad, lr, momentum, nesterov):
    # w, m, g: (n,) views (g unused without has_grad: zero gradient)
    # Keras: m = m * momentum - g * lr; w += m  (nesterov: w += m * momentum - g * lr)
    zero = w.dtype.type(0)
    for i in range(w.size):
        gi = g[i] if has_grad else zero
        mi = m[i] * momentum - gi * lr
        m[i] = mi
        if nesterov:
            w[i] += mi * momentum - gi * lr
        else:
            w[i] += mi


@njit(cache=True, **_OPTS)
def sgd_dense(w, g, lr):
    # w, g: (N,) -> w updated in place
    _sgd_span(w, g, lr)


@njit(cache=True, **_OPTS)
def sgd_rows(w, rows, values, width, lr):
    # w: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> touched rows updated in
    # place. Exactly the dense result: rows with gradient 0 do not move.
    for k in range(rows.size):
        start = rows[k] * width
        _sgd_span(w[start:start + width], values[k * width:(k + 1) * width], lr)


@njit(cache=True, **_OPTS)
def sgd_momentum_dense(w, m, g, lr, momentum):
    # w, m, g: (N,) -> w, m updated in place
    _sgd_momentum_span(w, m, g, True, lr, momentum, False)


@njit(cache=True, **_OPTS)
def sgd_nesterov_dense(w, m, g, lr, momentum):
    # w, m, g: (N,) -> w, m updated in place (Nesterov momentum)
    _sgd_momentum_span(w, m, g, True, lr, momentum, True)


@njit(inline="always", **_OPTS)
def _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, nesterov, lazy):
    done = 0  # flat index up to which every element has been updated
    for k in range(rows.size):
        start = rows[k] * width
        if not lazy:
            _sgd_momentum_span(w[done:start], m[done:start], values, False, lr, momentum,
                               nesterov)
        stop = start + width
        _sgd_momentum_span(w[start:stop], m[start:stop], values[k * width:(k + 1) * width],
                           True, lr, momentum, nesterov)
        done = start + width
    if not lazy:
        _sgd_momentum_span(w[done:], m[done:], values, False, lr, momentum, nesterov)


@njit(cache=True, **_OPTS)
def sgd_momentum_rows(w, m, rows, values, width, lr, momentum, lazy):
    # w, m: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> w, m in place
    _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, False, lazy)


@njit(cache=True, **_OPTS)
def sgd_nesterov_rows(w, m, rows, values, width, lr, momentum, lazy):
    # as sgd_momentum_rows, with Nesterov momentum
    _sgd_momentum_rows(w, m, rows, values, width, lr, momentum, True, lazy)


# ---------------------------------------------------------------------------- Adam
@njit(inline="always", **_OPTS)
def _adam_span(w, m, v, vhat, g, has_grad, alpha, one_minus_b1, one_minus_b2, eps, amsgrad):
    # w, m, v, g, vhat: (n,) views (vhat used with amsgrad; g unused without has_grad)
    # Keras: m += (g - m) * (1 - b1); v += (g^2 - v) * (1 - b2);
    #        w -= m * alpha / (sqrt(v) + eps), alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)
    zero = w.dtype.type(0)
    for i in range(w.size):
        gi = g[i] if has_grad else zero
        mi = m[i] + (gi - m[i]) * one_minus_b1
        vi = v[i] + (gi * gi - v[i]) * one_minus_b2
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vhat[i], vi)
            vhat[i] = vi
        w[i] -= (mi * alpha) / (np.sqrt(vi) + eps)


@njit(cache=True, **_OPTS)
def adam_dense(w, m, v, g, alpha, one_minus_b1, one_minus_b2, eps):
    # w, m, v, g: (N,) -> w, m, v updated in place
    _adam_span(w, m, v, w, g, True, alpha, one_minus_b1, one_minus_b2, eps, False)


@njit(cache=True, **_OPTS)
def adam_amsgrad_dense(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps):
    # w, m, v, vhat, g: (N,) -> w, m, v, vhat updated in place (AMSGrad)
    _adam_span(w, m, v, vhat, g, True, alpha, one_minus_b1, one_minus_b2, eps, True)


@njit(inline="always", **_OPTS)
def _adam_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps,
               amsgrad, lazy):
    done = 0
    for k in range(rows.size):
        start = rows[k] * width
        if not lazy:
            _adam_span(w[done:start], m[done:start], v[done:start],
                       vhat[done:start] if amsgrad else vhat, values, False, alpha,
                       one_minus_b1, one_minus_b2, eps, amsgrad)
        stop = start + width
        _adam_span(w[start:stop], m[start:stop], v[start:stop],
                   vhat[start:stop] if amsgrad else vhat, values[k * width:(k + 1) * width],
                   True, alpha, one_minus_b1, one_minus_b2, eps, amsgrad)
        done = start + width
    if not lazy:
        _adam_span(w[done:], m[done:], v[done:], vhat[done:] if amsgrad else vhat, values,
                   False, alpha, one_minus_b1, one_minus_b2, eps, amsgrad)


@njit(cache=True, **_OPTS)
def adam_rows(w, m, v, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps, lazy):
    # w, m, v: (V*D,) flat; rows: (U,); values: (U*D,) flat; width = D -> w, m, v in place
    _adam_rows(w, m, v, w, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps, False,
               lazy)


@njit(cache=True, **_OPTS)
def adam_amsgrad_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2,
                      eps, lazy):
    # as adam_rows, with AMSGrad's vhat: (V*D,) flat
    _adam_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps, True,
               lazy)


# ---------------------------------------------------------------------------- RMSprop
@njit(inline="always", **_OPTS)
def _rmsprop_span(w, vel, mom, avg, g, has_grad, lr, rho, one_minus_rho, momentum, eps,
                  use_momentum, centered):
    # w, vel, g, mom, avg: (n,) views (mom/avg used when enabled; g unused without has_grad)
    # Keras: vel = rho * vel + (1 - rho) * g^2; centered: avg = rho * avg + (1 - rho) * g,
    # denom = vel - avg^2 + eps (else vel + eps); inc = lr * g / sqrt(denom);
    # momentum: mom = momentum * mom + inc, w -= mom; else w -= inc
    zero = w.dtype.type(0)
    for i in range(w.size):
        gi = g[i] if has_grad else zero
        veli = rho * vel[i] + one_minus_rho * (gi * gi)
        vel[i] = veli
        if centered:
            avgi = rho * avg[i] + one_minus_rho * gi
            avg[i] = avgi
            denom = veli - avgi * avgi + eps
        else:
            denom = veli + eps
        inc = (lr * gi) / np.sqrt(denom)
        if use_momentum:
            momi = momentum * mom[i] + inc
            mom[i] = momi
            w[i] -= momi
        else:
            w[i] -= inc


@njit(inline="always", **_OPTS)
def _rmsprop_rows(w, vel, mom, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, use_momentum, centered, lazy):
    done = 0
    for k in range(rows.size):
        start = rows[k] * width
        if not lazy:
            _rmsprop_span(w[done:start], vel[done:start],
                          mom[done:start] if use_momentum else mom,
                          avg[done:start] if centered else avg, values, False, lr, rho,
                          one_minus_rho, momentum, eps, use_momentum, centered)
        stop = start + width
        _rmsprop_span(w[start:stop], vel[start:stop], mom[start:stop] if use_momentum else mom,
                      avg[start:stop] if centered else avg, values[k * width:(k + 1) * width],
                      True, lr, rho, one_minus_rho, momentum, eps, use_momentum, centered)
        done = start + width
    if not lazy:
        _rmsprop_span(w[done:], vel[done:], mom[done:] if use_momentum else mom,
                      avg[done:] if centered else avg, values, False, lr, rho, one_minus_rho,
                      momentum, eps, use_momentum, centered)


@njit(cache=True, **_OPTS)
def rmsprop_dense(w, vel, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, g: (N,) -> updated in place (plain)
    _rmsprop_span(w, vel, w, w, g, True, lr, rho, one_minus_rho, momentum, eps, False,
                  False)


@njit(cache=True, **_OPTS)
def rmsprop_rows(w, vel, rows, values, width, lr, rho, one_minus_rho, momentum, eps, lazy):
    # w, vel: (V*D,) flat; rows: (U,); values: (U*D,) flat;
    # width = D -> updated in place (plain)
    _rmsprop_rows(w, vel, w, w, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, False, False, lazy)


@njit(cache=True, **_OPTS)
def rmsprop_momentum_dense(w, vel, mom, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, mom, g: (N,) -> updated in place (with momentum)
    _rmsprop_span(w, vel, mom, w, g, True, lr, rho, one_minus_rho, momentum, eps, True,
                  False)


@njit(cache=True, **_OPTS)
def rmsprop_momentum_rows(w, vel, mom, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    # w, vel, mom: (V*D,) flat; rows: (U,); values: (U*D,) flat;
    # width = D -> updated in place (with momentum)
    _rmsprop_rows(w, vel, mom, w, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, True, False, lazy)


@njit(cache=True, **_OPTS)
def rmsprop_centered_dense(w, vel, avg, g, lr, rho, one_minus_rho, momentum, eps):
    # w, vel, avg, g: (N,) -> updated in place (centered)
    _rmsprop_span(w, vel, w, avg, g, True, lr, rho, one_minus_rho, momentum, eps, False,
                  True)


@njit(cache=True, **_OPTS)
def rmsprop_centered_rows(w, vel, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    # w, vel, avg: (V*D,) flat; rows: (U,); values: (U*D,) flat;
    # width = D -> updated in place (centered)
    _rmsprop_rows(w, vel, w, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, False, True, lazy)


@njit(cache=True, **_OPTS)
def rmsprop_centered_momentum_dense(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum,
                                    eps):
    # w, vel, mom, avg, g: (N,) -> updated in place (centered, with momentum)
    _rmsprop_span(w, vel, mom, avg, g, True, lr, rho, one_minus_rho, momentum, eps, True,
                  True)


@njit(cache=True, **_OPTS)
def rmsprop_centered_momentum_rows(w, vel, mom, avg, rows, values, width, lr, rho,
                                   one_minus_rho, momentum, eps, lazy):
    # w, vel, mom, avg: (V*D,) flat; rows: (U,); values: (U*D,) flat;
    # width = D -> updated in place (centered, with momentum)
    _rmsprop_rows(w, vel, mom, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                  eps, True, True, lazy)


# ---------------------------------------------------------------------------- Adagrad
@njit(inline="always", **_OPTS)
def _adagrad_span(w, acc, g, lr, eps):
    # w, acc, g: (n,) views. Keras: acc += g^2; w -= lr * g / sqrt(acc + eps)
    for i in range(w.size):
        gi = g[i]
        acci = acc[i] + gi * gi
        acc[i] = acci
        w[i] -= (lr * gi) / np.sqrt(acci + eps)


@njit(cache=True, **_OPTS)
def adagrad_dense(w, acc, g, lr, eps):
    # w, acc, g: (N,) -> w, acc updated in place
    _adagrad_span(w, acc, g, lr, eps)


@njit(cache=True, **_OPTS)
def adagrad_rows(w, acc, rows, values, width, lr, eps):
    # w, acc: (V*D,) flat, rows: (U,), values: (U*D,) flat, width = D -> touched rows in
    # place. A zero gradient changes neither acc nor w, so this is also the dense result.
    for k in range(rows.size):
        start = rows[k] * width
        stop = start + width
        _adagrad_span(w[start:stop], acc[start:stop], values[k * width:(k + 1) * width], lr, eps)
