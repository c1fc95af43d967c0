"""BatchNormalization and LayerNormalization (Keras 3's keras/src/layers/normalization),
with exact backward passes.

BatchNormalization (Keras 3): in training (and when the layer is trainable) it normalizes
with the batch's mean and biased variance over every axis but ``axis``, and moves
``moving = moving * momentum + batch * (1 - momentum)``; otherwise (inference, or
``trainable=False``) it normalizes with the moving statistics. With a mask (one dimension
fewer than the input) the batch statistics weigh each step by its mask, Keras's formula:
``mean = sum(w x) / (sum(w) + 1e-7)``, ``var = sum(w (w x - mean)^2) / (sum(w) + 1e-7)``,
``w`` the mask on a trailing axis of size 1. Weights: gamma, beta (trainable, when
``scale`` / ``center``), moving_mean, moving_variance (non-trainable), in that order.
"""
import numpy as np

from fastseq import initializers as _initializers

from .base import Layer

__all__ = ["BatchNormalization", "LayerNormalization"]

_MASK_EPSILON = 1e-7  # keras.config.epsilon(), added to a masked batch's step count


def _check_float(value, what, low=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a float, got {value!r}")
    if low is not None and not value > low:
        raise ValueError(f"{what} must be > {low}, got {value}")
    return float(value)


def _normalized_axis(axis, rank, layer):
    if not -rank <= axis < rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis {axis} is out of "
                         f"bounds for inputs of {rank} dimensions")
    return axis % rank


def _broadcast_shape(rank, axes, sizes):
    shape = [1] * rank
    for axis, size in zip(axes, sizes):
        shape[axis] = size
    return tuple(shape)


# ---------------------------------------------------------------- batch normalization math
# Shapes: x (..., C, ...) with C on the normalized axis; statistics and weights broadcast as
# (1, ..., C, ..., 1); ``reduce`` the other axes; ``weights`` the mask as a float array
# broadcastable to x (or None: every element counts, and the count has no epsilon).

def _batch_moments(x, reduce, weights):
    if weights is None:
        mean = x.mean(axis=reduce, keepdims=True)
        var = np.square(x - mean).mean(axis=reduce, keepdims=True)
        count = np.full((1,) * x.ndim, np.prod([x.shape[a] for a in reduce]), dtype=x.dtype)
        return mean, var, count
    count = weights.sum(axis=reduce, keepdims=True, dtype=x.dtype) + x.dtype.type(_MASK_EPSILON)
    weighted = weights * x
    mean = weighted.sum(axis=reduce, keepdims=True) / count
    var = (weights * np.square(weighted - mean)).sum(axis=reduce, keepdims=True) / count
    return mean, var, count


def _batch_norm_train_forward(x, gamma, beta, reduce, weights, epsilon):
    mean, var, count = _batch_moments(x, reduce, weights)
    inv = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    x_hat = (x - mean) * inv
    y = x_hat * gamma if gamma is not None else x_hat.copy()
    if beta is not None:
        y += beta
    return [y, mean, var, x_hat, inv, count]


# d loss / d x of the batch-statistics forward (both statistics depend on x)
def _batch_norm_train_backward(grad_y, x, x_hat, mean, inv, count, gamma, reduce, weights):
    grad_hat = grad_y * gamma if gamma is not None else grad_y
    centred = x - mean
    grad_var = (-0.5 * inv ** 3 * (grad_hat * centred).sum(axis=reduce, keepdims=True))
    if weights is None:
        spread = centred  # d var / d x = 2 (x - mean) / N
        grad_mean = -(grad_hat * inv).sum(axis=reduce, keepdims=True) \
            - 2.0 * grad_var * centred.sum(axis=reduce, keepdims=True) / count
        return grad_hat * inv + (2.0 * grad_var * spread + grad_mean) / count
    # Keras's masked moments: var = sum(w (w x - mean)^2) / count, mean = sum(w x) / count
    spread = weights * (weights * x - mean)
    grad_mean = -(grad_hat * inv).sum(axis=reduce, keepdims=True) \
        - 2.0 * grad_var * spread.sum(axis=reduce, keepdims=True) / count
    return grad_hat * inv + (2.0 * grad_var * spread * weights + grad_mean * weights) / count


def _batch_norm_infer_forward(x, gamma, beta, mean, var, epsilon):
    inv = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    if gamma is not None:
        inv = inv * gamma
    y = (x - mean) * inv
    if beta is not None:
        y += beta
    return [y, inv]


# grad_y, x_hat: x's shape -> [d gamma, d beta] (those the layer has), gamma's shape each
def _param_grads(grad_y, x_hat, reduce, param_shape, scale, center):
    grads = []
    if scale:
        grads.append((grad_y * x_hat).sum(axis=reduce).reshape(param_shape))
    if center:
        grads.append(grad_y.sum(axis=reduce).reshape(param_shape))
    return grads


class _Normalization(Layer):
    """What BatchNormalization and LayerNormalization share: gamma / beta (with their
    regularizers and constraints) and their gradients."""

    def _add_gamma(self, shape):
        return self.add_weight("gamma", shape, self.gamma_initializer,
                               regularizer=self.gamma_regularizer,
                               constraint=self.gamma_constraint)

    def _add_beta(self, shape):
        return self.add_weight("beta", shape, self.beta_initializer,
                               regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _param(self, var, shape):
        return None if var is None else var.data.reshape(shape)

    def _set_param_grads(self, grad_y, x_hat, reduce):
        params = [v for v in (self.gamma, self.beta) if v is not None]
        if not any(v.trainable for v in params):
            return
        grads = self.ops.apply(_param_grads, grad_y, x_hat, reduce, params[0].shape,
                               self.scale, self.center)
        for var, grad in zip(params, grads):
            if var.trainable:
                var.grad = grad


class BatchNormalization(_Normalization):
    """Keras 3's BatchNormalization (see the module docstring). Passes a mask on."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self._set_weight_options(beta_regularizer=beta_regularizer,
                                 gamma_regularizer=gamma_regularizer,
                                 beta_constraint=beta_constraint,
                                 gamma_constraint=gamma_constraint)
        if synchronized:
            raise ValueError("Argument synchronized=True is only supported with the "
                             "TensorFlow backend.")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"BatchNormalization: axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self.momentum = _check_float(momentum, "BatchNormalization: momentum")
        self.epsilon = _check_float(epsilon, "BatchNormalization: epsilon", low=0.0)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        self.synchronized = False
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        rank = len(input_shape)
        axis = _normalized_axis(self.axis, rank, self)
        size = input_shape[axis]
        if size is None:
            raise ValueError(f"BatchNormalization {self.name!r}: axis {self.axis} of the input "
                             f"shape {tuple(input_shape)} must be defined, found None")
        if self.scale:
            self.gamma = self._add_gamma((size,))
        if self.center:
            self.beta = self._add_beta((size,))
        self.moving_mean = self.add_weight("moving_mean", (size,),
                                           self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (size,),
                                               self.moving_variance_initializer,
                                               trainable=False)

    def _geometry(self, x):
        """(the normalized axis, the reduced axes, the statistics' broadcast shape)."""
        expected = self._input_shape
        axis = _normalized_axis(self.axis, len(expected), self)
        if x.ndim != len(expected) or x.shape[axis] != expected[axis]:
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: expected axis "
                f"{self.axis} of size {expected[axis]} in inputs of shape {expected}, got an "
                f"input of shape {tuple(x.shape)}")
        reduce = tuple(a for a in range(x.ndim) if a != axis)
        return axis, reduce, _broadcast_shape(x.ndim, (axis,), (x.shape[axis],))

    def _training_changes_forward(self):
        return self.trainable  # batch statistics, and moving statistics updated

    # x: (..., C, ...) -> the same shape
    def forward(self, x, mask=None, training=False):
        axis, reduce, shape = self._geometry(x)
        ops = self.ops
        gamma, beta = self._param(self.gamma, shape), self._param(self.beta, shape)
        if not (training and self.trainable):
            mean = self.moving_mean.data.reshape(shape)
            var = self.moving_variance.data.reshape(shape)
            y, scale = ops.apply(_batch_norm_infer_forward, x, gamma, beta, mean, var,
                                 self.epsilon)
            self._cache = ("moving", scale, shape) if training else None
            return y
        weights = None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim != x.ndim - 1:
                raise ValueError("The mask provided should be one dimension less than the "
                                 f"inputs. Received: mask.shape={mask.shape}, "
                                 f"inputs.shape={tuple(x.shape)}")
            weights = mask.astype(x.dtype)[..., None]
        y, mean, var, x_hat, inv, count = ops.apply(
            _batch_norm_train_forward, x, gamma, beta, reduce, weights, self.epsilon)
        self._update_moving(self.moving_mean, mean)
        self._update_moving(self.moving_variance, var)
        self._cache = ("batch", x, x_hat, mean, inv, count, weights, reduce, shape)
        return y

    def _update_moving(self, variable, batch_value):
        # Keras 3: moving * momentum + batch * (1 - momentum), in the weight's dtype
        dtype = variable.dtype.type
        batch_value = np.asarray(self.ops.to_numpy(batch_value)).reshape(variable.shape)
        variable.assign(variable.value * dtype(self.momentum)
                        + batch_value.astype(variable.dtype) * dtype(1.0 - self.momentum))

    def backward(self, grad_y, need_input_grad=True):
        cache, self._cache = self._cache, None
        ops = self.ops
        if cache[0] == "moving":  # the statistics are constants: y = x * scale + shift
            _, scale, shape = cache
            return ops.multiply(grad_y, scale) if need_input_grad else None
        _, x, x_hat, mean, inv, count, weights, reduce, shape = cache
        self._set_param_grads(grad_y, x_hat, reduce)
        if not need_input_grad:
            return None
        gamma = self._param(self.gamma, shape)
        return ops.apply(_batch_norm_train_backward, grad_y, x, x_hat, mean, inv, count,
                         gamma, reduce, weights)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": _initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": _initializers.serialize(
                self.moving_variance_initializer),
            "synchronized": False,
        })
        return config


# ---------------------------------------------------------------- layer normalization math
# x: (B, ...); ``axes`` the normalized axes, ``reduce`` the others; gamma / beta reshaped to
# broadcast over x (Keras reshapes them, it does not transpose them).

def _layer_norm_forward(x, gamma, beta, axes, epsilon):
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    x_hat = (x - mean) * inv
    y = x_hat * gamma if gamma is not None else x_hat.copy()
    if beta is not None:
        y += beta
    return [y, x_hat, inv]


# per sample: dx = inv * (g - mean(g) - x_hat * mean(g * x_hat)), g = d loss / d x_hat
def _layer_norm_backward(grad_y, x_hat, inv, gamma, axes):
    grad_hat = grad_y * gamma if gamma is not None else grad_y
    return inv * (grad_hat - grad_hat.mean(axis=axes, keepdims=True)
                  - x_hat * (grad_hat * x_hat).mean(axis=axes, keepdims=True))


class LayerNormalization(_Normalization):
    """Normalizes each sample over ``axis`` (an int or a list of ints):
    ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta``, the biased variance; gamma and
    beta span the normalized axes (Keras 3; weights gamma then beta). Passes a mask on."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self._set_weight_options(beta_regularizer=beta_regularizer,
                                 gamma_regularizer=gamma_regularizer,
                                 beta_constraint=beta_constraint,
                                 gamma_constraint=gamma_constraint)
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling=True is not supported "
                                      "by fastseq")
        if isinstance(axis, (list, tuple)):
            axis = list(axis)
            if not axis or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                   for a in axis):
                raise TypeError("Expected an int or a list/tuple of ints for the argument "
                                f"'axis', but received: {axis!r}")
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', "
                            f"but received: {axis!r}")
        self.epsilon = _check_float(epsilon, "LayerNormalization: epsilon", low=0.0)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = False
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.gamma = self.beta = None

    def _axes(self, rank):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        axes = [_normalized_axis(a, rank, self) for a in axes]
        if 0 in axes:
            raise ValueError(f"LayerNormalization {self.name!r}: axis {self.axis} includes the "
                             "batch axis; normalize over the feature axes")
        if len(set(axes)) != len(axes):
            raise ValueError(f"LayerNormalization {self.name!r}: repeated axis in {self.axis}")
        return axes

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"LayerNormalization {self.name!r}: the normalized axes "
                             f"{self.axis} of the input shape {tuple(input_shape)} must be "
                             "defined")
        if self.scale:
            self.gamma = self._add_gamma(shape)
        if self.center:
            self.beta = self._add_beta(shape)
        if not isinstance(self.axis, list):
            self.axis = [self.axis]  # Keras: a list once built (get_config shows it)

    def _geometry(self, x):
        expected = self._input_shape
        axes = self._axes(len(expected))
        if x.ndim != len(expected) or any(x.shape[a] != expected[a] for a in axes):
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: expected inputs "
                f"of shape {expected} (axes {self.axis} fixed), got an input of shape "
                f"{tuple(x.shape)}")
        reduce = tuple(a for a in range(x.ndim) if a not in axes)
        shape = _broadcast_shape(x.ndim, axes, [x.shape[a] for a in axes])
        return tuple(sorted(axes)), reduce, shape

    # x: (B, ...) -> the same shape
    def forward(self, x, mask=None, training=False):
        axes, reduce, shape = self._geometry(x)
        gamma, beta = self._param(self.gamma, shape), self._param(self.beta, shape)
        y, x_hat, inv = self.ops.apply(_layer_norm_forward, x, gamma, beta, axes,
                                       self.epsilon)
        self._cache = (x_hat, inv, axes, reduce, shape) if training else None
        return y

    def backward(self, grad_y, need_input_grad=True):
        (x_hat, inv, axes, reduce, shape), self._cache = self._cache, None
        self._set_param_grads(grad_y, x_hat, reduce)
        if not need_input_grad:
            return None
        gamma = self._param(self.gamma, shape)
        return self.ops.apply(_layer_norm_backward, grad_y, x_hat, inv, gamma, axes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
        })
        return config
