"""NumPy baselines of the optimizer updates: Keras 3's formulas, written out plainly.

Same names and signatures as the Numba kernels in :mod:`fastseq._kernels.optim` (and the
CUDA ones): flat weight and slot arrays updated in place, scalars already cast to the
weight's dtype. A ``*_rows`` update takes a row-sparse gradient (``rows`` ascending and
unique, ``values`` flat, ``width`` elements a row): with ``lazy=False`` it is the dense
update of the densified gradient (untouched rows get the zero-gradient update: momentum and
velocity decay), with ``lazy=True`` only the touched rows change (LazyAdam / SparseAdam).
"""
import numpy as np

__all__ = [
    "sgd_dense", "sgd_rows", "sgd_momentum_dense", "sgd_nesterov_dense", "sgd_momentum_rows",
    "sgd_nesterov_rows", "adam_dense", "adam_amsgrad_dense", "adam_rows", "adam_amsgrad_rows",
    "rmsprop_dense", "rmsprop_rows", "rmsprop_momentum_dense", "rmsprop_momentum_rows",
    "rmsprop_centered_dense", "rmsprop_centered_rows", "rmsprop_centered_momentum_dense",
    "rmsprop_centered_momentum_rows", "adagrad_dense", "adagrad_rows",
]


def _densified(w, rows, values, width):
    # rows: (U,), values: (U * width,) -> g: (n,) with zeros outside the rows
    g = np.zeros_like(w)
    g.reshape(-1, width)[rows] = values.reshape(-1, width)
    return g


def _rows_update(dense_update, w, slots, rows, values, width, lazy):
    """Apply ``dense_update(w, *slots, g)`` to the whole weight (densified gradient) or,
    lazily, to the touched rows only (gathered, updated, written back)."""
    if not lazy:
        dense_update(w, *slots, _densified(w, rows, values, width))
        return
    if width == 0 or rows.size == 0:
        return
    views = [a.reshape(-1, width) for a in (w, *slots)]
    picked = [np.ascontiguousarray(v[rows]).reshape(-1) for v in views]
    dense_update(*picked, values.reshape(-1))
    for view, new in zip(views, picked):
        view[rows] = new.reshape(-1, width)


# ---------------------------------------------------------------------------- SGD
# w, g: (n,) -> w -= g * lr
def sgd_dense(w, g, lr):
    w -= g * lr


def sgd_rows(w, rows, values, width, lr):
    # only the touched rows change, whatever `lazy` (a zero gradient moves nothing)
    _rows_update(lambda w_, g_: sgd_dense(w_, g_, lr), w, (), rows, values, width, True)


def _sgd_momentum(w, m, g, lr, momentum, nesterov):
    # Keras: m = m * momentum - g * lr; w += m  (nesterov: w += m * momentum - g * lr)
    m *= momentum
    m -= g * lr
    if nesterov:
        w += m * momentum - g * lr
    else:
        w += m


def sgd_momentum_dense(w, m, g, lr, momentum):
    _sgd_momentum(w, m, g, lr, momentum, False)


def sgd_nesterov_dense(w, m, g, lr, momentum):
    _sgd_momentum(w, m, g, lr, momentum, True)


def sgd_momentum_rows(w, m, rows, values, width, lr, momentum, lazy):
    _rows_update(lambda w_, m_, g_: _sgd_momentum(w_, m_, g_, lr, momentum, False),
                 w, (m,), rows, values, width, lazy)


def sgd_nesterov_rows(w, m, rows, values, width, lr, momentum, lazy):
    _rows_update(lambda w_, m_, g_: _sgd_momentum(w_, m_, g_, lr, momentum, True),
                 w, (m,), rows, values, width, lazy)


# ---------------------------------------------------------------------------- Adam
def _adam(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps):
    # Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= alpha m / (sqrt(v) + eps)
    m += (g - m) * one_minus_b1
    v += (g * g - v) * one_minus_b2
    if vhat is not None:
        np.maximum(vhat, v, out=vhat)
        v = vhat
    w -= m * alpha / (np.sqrt(v) + eps)


def adam_dense(w, m, v, g, alpha, one_minus_b1, one_minus_b2, eps):
    _adam(w, m, v, None, g, alpha, one_minus_b1, one_minus_b2, eps)


def adam_amsgrad_dense(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps):
    _adam(w, m, v, vhat, g, alpha, one_minus_b1, one_minus_b2, eps)


def adam_rows(w, m, v, rows, values, width, alpha, one_minus_b1, one_minus_b2, eps, lazy):
    _rows_update(lambda w_, m_, v_, g_: _adam(w_, m_, v_, None, g_, alpha, one_minus_b1,
                                              one_minus_b2, eps),
                 w, (m, v), rows, values, width, lazy)


def adam_amsgrad_rows(w, m, v, vhat, rows, values, width, alpha, one_minus_b1, one_minus_b2,
                      eps, lazy):
    _rows_update(lambda w_, m_, v_, h_, g_: _adam(w_, m_, v_, h_, g_, alpha, one_minus_b1,
                                                  one_minus_b2, eps),
                 w, (m, v, vhat), rows, values, width, lazy)


# ---------------------------------------------------------------------------- RMSprop
def _rmsprop(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum, eps):
    # Keras: v = rho v + (1 - rho) g^2; (centered: a = rho a + (1 - rho) g, v - a^2);
    # step = lr g / sqrt(denominator + eps); with momentum: mom = momentum mom + step
    vel *= rho
    vel += one_minus_rho * g * g
    if avg is not None:
        avg *= rho
        avg += one_minus_rho * g
        denom = vel - avg * avg + eps
    else:
        denom = vel + eps
    step = lr * g / np.sqrt(denom)
    if mom is not None:
        mom *= momentum
        mom += step
        w -= mom
    else:
        w -= step


def rmsprop_dense(w, vel, g, lr, rho, one_minus_rho, momentum, eps):
    _rmsprop(w, vel, None, None, g, lr, rho, one_minus_rho, momentum, eps)


def rmsprop_momentum_dense(w, vel, mom, g, lr, rho, one_minus_rho, momentum, eps):
    _rmsprop(w, vel, mom, None, g, lr, rho, one_minus_rho, momentum, eps)


def rmsprop_centered_dense(w, vel, avg, g, lr, rho, one_minus_rho, momentum, eps):
    _rmsprop(w, vel, None, avg, g, lr, rho, one_minus_rho, momentum, eps)


def rmsprop_centered_momentum_dense(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum,
                                    eps):
    _rmsprop(w, vel, mom, avg, g, lr, rho, one_minus_rho, momentum, eps)


def rmsprop_rows(w, vel, rows, values, width, lr, rho, one_minus_rho, momentum, eps, lazy):
    _rows_update(lambda w_, v_, g_: _rmsprop(w_, v_, None, None, g_, lr, rho, one_minus_rho,
                                             momentum, eps),
                 w, (vel,), rows, values, width, lazy)


def rmsprop_momentum_rows(w, vel, mom, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    _rows_update(lambda w_, v_, m_, g_: _rmsprop(w_, v_, m_, None, g_, lr, rho, one_minus_rho,
                                                 momentum, eps),
                 w, (vel, mom), rows, values, width, lazy)


def rmsprop_centered_rows(w, vel, avg, rows, values, width, lr, rho, one_minus_rho, momentum,
                          eps, lazy):
    _rows_update(lambda w_, v_, a_, g_: _rmsprop(w_, v_, None, a_, g_, lr, rho, one_minus_rho,
                                                 momentum, eps),
                 w, (vel, avg), rows, values, width, lazy)


def rmsprop_centered_momentum_rows(w, vel, mom, avg, rows, values, width, lr, rho,
                                   one_minus_rho, momentum, eps, lazy):
    _rows_update(lambda w_, v_, m_, a_, g_: _rmsprop(w_, v_, m_, a_, g_, lr, rho,
                                                     one_minus_rho, momentum, eps),
                 w, (vel, mom, avg), rows, values, width, lazy)


# ---------------------------------------------------------------------------- Adagrad
def adagrad_dense(w, acc, g, lr, eps):
    # Keras: acc += g^2; w -= lr g / sqrt(acc + eps)
    acc += g * g
    w -= lr * g / np.sqrt(acc + eps)


def adagrad_rows(w, acc, rows, values, width, lr, eps):
    # a zero gradient changes neither acc nor w: only the touched rows, lazy or not
    _rows_update(lambda w_, a_, g_: adagrad_dense(w_, a_, g_, lr, eps), w, (acc,), rows,
                 values, width, True)
