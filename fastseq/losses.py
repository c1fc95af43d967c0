"""Keras-compatible losses, with their exact gradients.

Each loss follows Keras 3 (keras/src/losses/losses.py and backend/numpy/nn.py):

- ``binary_crossentropy``: probabilities clipped to [1e-7, 1 - 1e-7], mean over the last
  axis; ``from_logits=True`` uses the stable ``max(x, 0) - x y + log(1 + exp(-|x|))``.
- ``categorical_crossentropy``: probabilities renormalized to sum to 1 over the last axis,
  clipped, ``-sum(y log p)``; ``from_logits=True`` uses log-softmax.
- ``sparse_categorical_crossentropy``: the same with integer labels (shape ``(B,)`` or
  ``(B, 1)`` for an output ``(B, C)``).
- ``mean_squared_error`` / ``mean_absolute_error``: mean over the last axis.

Labels and predictions are aligned as Keras's ``squeeze_or_expand_to_same_rank`` does, so
``(B,)`` labels fit a ``(B, 1)`` output. The per-sample losses are reduced as Keras's
default ``"sum_over_batch_size"``: their (weighted) sum divided by their count.

The module-level functions (``binary_crossentropy(y_true, y_pred)``, ...) return the
per-sample losses, as Keras's. The classes (``BinaryCrossentropy()``, ...) return the
reduced loss as a float, and :meth:`Loss.forward_backward` also returns the gradient of that
float with respect to ``y_pred``. Gradients are exact, including where the clipping cuts
the gradient off.
"""
import numpy as np

__all__ = [
    "Loss", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "mean_squared_error", "mean_absolute_error", "mse",
    "mae", "MSE", "MAE", "get", "serialize", "deserialize", "EPSILON",
]

EPSILON = 1e-7  # keras.backend.epsilon()
_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)


def _float_array(x, name, dtype=None):
    x = np.asarray(x)
    if x.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got an object array")
    if dtype is not None:
        return x.astype(dtype, copy=False)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return x


def _pred_array(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        if y_pred.dtype.kind in "iub":
            y_pred = y_pred.astype(np.float32)
        else:
            raise TypeError(f"y_pred must be a float array, got dtype {y_pred.dtype}")
    if y_pred.ndim == 0:
        raise ValueError("y_pred must have at least one dimension (the batch), got a scalar")
    return y_pred


def _squeeze_or_expand(y_true, y_pred):
    """Keras's squeeze_or_expand_to_same_rank(y_true, y_pred): fix a rank difference of one
    caused by a trailing axis of size 1."""
    rt, rp = y_true.ndim, y_pred.ndim
    if rt == rp + 1 and y_true.shape[-1] == 1:
        if rp == 1:
            y_pred = y_pred[..., None]
        else:
            y_true = y_true[..., 0]
    elif rp == rt + 1 and y_pred.shape[-1] == 1:
        if rt == 1:
            y_true = y_true[..., None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def _stable_sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _check_finite(y, what):
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = np.argwhere(~np.isfinite(y))[0]
        raise ValueError(f"{what} contain a non-finite value ({y[tuple(bad)]}) at index "
                         f"{tuple(int(i) for i in bad)}")


class Loss:
    """Base class. Subclasses implement :meth:`_forward`: the per-sample losses and, on
    request, their elementwise gradient with respect to the (aligned) prediction."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction == "auto":  # Keras 2's default, the same reduction
            reduction = "sum_over_batch_size"
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                             f"{_REDUCTIONS}. Received: reduction={reduction!r}")
        self.name = name
        self.reduction = reduction
        self.dtype = dtype

    # -------------------------------------------------------------- subclass interface
    def _forward(self, y_true, y_pred, from_logits, need_grad):
        """(per_sample, d per_sample / d y_pred or None). ``y_pred``: aligned prediction;
        ``y_true``: labels from :meth:`_prepare`. per_sample has shape y_pred.shape[:-1]."""
        raise NotImplementedError

    def _prepare(self, y_true, y_pred):
        """Align and convert the labels; raise ValueError if they do not fit y_pred.
        Returns (y_true, y_pred), both with the aligned shapes."""
        y_true = _float_array(y_true, "y_true", y_pred.dtype)
        y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(self._shape_message(y_true.shape, y_pred.shape))
        return y_true, y_pred

    def _shape_message(self, true_shape, pred_shape):
        return (f"{self.name}: labels of shape {tuple(true_shape)} do not fit the model output "
                f"of shape {tuple(pred_shape)}; expected labels of shape {tuple(pred_shape)}")

    # -------------------------------------------------------------- public API
    @property
    def _from_logits_default(self):
        return getattr(self, "from_logits", False)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss, reduced as ``self.reduction`` (a float; per-sample array for 'none')."""
        y_pred = _pred_array(y_pred)
        yt, yp = self._prepare(y_true, y_pred)
        per_sample, _ = self._forward(yt, yp, self._from_logits_default, False)
        if self.reduction in ("none", None):
            if sample_weight is not None:
                per_sample = per_sample * self._sample_weights(sample_weight, per_sample)
            return per_sample
        value, _ = self._reduce(per_sample, None, sample_weight)
        return value

    def forward_backward(self, y_true, y_pred, from_logits=None, sample_weight=None):
        """``(loss, dloss/dy_pred)``: the reduced loss as a float and its gradient, an array
        of y_pred's shape and dtype. ``from_logits`` overrides the constructor's setting:
        True means y_pred are logits (sigmoid / softmax not applied yet)."""
        if self.reduction in ("none", None):
            raise ValueError(f"{self.name}: forward_backward needs a reduced loss, got "
                             f"reduction={self.reduction!r}")
        y_pred = _pred_array(y_pred)
        yt, yp = self._prepare(y_true, y_pred)
        if from_logits is None:
            from_logits = self._from_logits_default
        per_sample, dper = self._forward(yt, yp, bool(from_logits), True)
        value, grad = self._reduce(per_sample, dper, sample_weight)
        return value, grad.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)

    def _sample_weights(self, sample_weight, per_sample):
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.ndim and sw.shape[0] != (per_sample.shape[0] if per_sample.ndim else 1):
            raise ValueError(f"{self.name}: sample_weight of shape {sw.shape} does not fit "
                             f"{per_sample.shape[0] if per_sample.ndim else 1} samples")
        while sw.ndim > per_sample.ndim and sw.shape[-1] == 1:
            sw = sw[..., 0]
        return sw.reshape(sw.shape + (1,) * (per_sample.ndim - sw.ndim))

    def _reduce(self, per_sample, dper, sample_weight):
        # Keras "sum_over_batch_size": sum(per_sample * w) / per_sample.size
        if sample_weight is not None:
            sw = self._sample_weights(sample_weight, per_sample)
            weighted = per_sample * sw
        else:
            sw = None
            weighted = per_sample
        denom = max(per_sample.size, 1) if self.reduction == "sum_over_batch_size" else 1
        value = float(np.sum(weighted, dtype=np.float64) / denom)
        grad = None
        if dper is not None:
            scale = 1.0 / denom
            if sw is None:
                grad = dper * dper.dtype.type(scale)
            else:
                grad = dper * (sw * scale).astype(dper.dtype)[..., None]
        return value, grad

    def check_targets(self, y_true, y_pred_shape):
        """Check that labels ``y_true`` fit an output of shape ``y_pred_shape`` (its batch
        dimension may be None) and hold no NaN/inf (nor, for sparse labels, values outside
        [0, C)). Returns ``y_true`` as an ndarray; raises ValueError naming the expected
        label shape when they do not fit."""
        y_true = np.asarray(y_true)
        if y_true.dtype == object or y_true.dtype.kind not in "fiub":
            raise TypeError(f"{self.name}: labels must be numeric, got dtype {y_true.dtype}")
        pred_shape = tuple(y_pred_shape)
        if not pred_shape:
            raise ValueError(f"{self.name}: y_pred_shape must include the batch dimension, "
                             f"got {pred_shape}")
        if y_true.ndim == 0:
            raise ValueError(f"{self.name}: labels must have a batch dimension, got a scalar")
        n = y_true.shape[0]
        if pred_shape[0] is not None and pred_shape[0] != n:
            raise ValueError(f"{self.name}: {n} labels for {pred_shape[0]} samples")
        # Unknown (None) inner dimensions take the labels' size there, if they have one.
        inner = tuple(
            (y_true.shape[i] if i < y_true.ndim else 1) if s is None else int(s)
            for i, s in enumerate(pred_shape) if i > 0)
        # Shapes are checked on an empty batch, so no output-sized array is allocated.
        try:
            self._prepare(y_true[:0], np.zeros((0,) + inner, dtype=np.float32))
        except ValueError:
            raise ValueError(self._shape_message(y_true.shape, (n,) + inner)) from None
        self._check_values(y_true, inner[-1] if inner else n)
        return y_true

    def _check_values(self, y_true, n_classes):
        _check_finite(y_true, f"{self.name}: the labels")

    # -------------------------------------------------------------- config
    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("fn", None)
        config.pop("dtype", None)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, as ``keras.losses.BinaryCrossentropy``: labels of the output's
    shape (``(B,)`` is accepted for a ``(B, 1)`` output)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if axis != -1:
            raise ValueError(f"{name}: only axis=-1 is supported, got {axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def _shape_message(self, true_shape, pred_shape):
        alt = f" or {pred_shape[:-1]}" if pred_shape and pred_shape[-1] == 1 else ""
        return (f"{self.name}: labels of shape {tuple(true_shape)} do not fit the model output "
                f"of shape {tuple(pred_shape)}; expected labels of shape "
                f"{tuple(pred_shape)}{alt} (0/1 per output unit)")

    def _forward(self, y_true, y_pred, from_logits, need_grad):
        y = y_true
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        width = y_pred.shape[-1]
        if from_logits:
            x = y_pred
            elem = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
            dper = (_stable_sigmoid(x) - y) / width if need_grad else None
        else:
            p = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
            elem = -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
            dper = None
            if need_grad:
                inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)
                dper = np.where(inside, (-(y / p) + (1.0 - y) / (1.0 - p)) / width, 0)
        return np.mean(elem, axis=-1), dper

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits,
                       "label_smoothing": self.label_smoothing, "axis": self.axis})
        return config


class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy, as ``keras.losses.CategoricalCrossentropy``: one-hot (or
    probability) labels of the output's shape ``(..., C)``."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if axis != -1:
            raise ValueError(f"{name}: only axis=-1 is supported, got {axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def _prepare(self, y_true, y_pred):
        y_true = _float_array(y_true, "y_true", y_pred.dtype)
        if y_true.shape != y_pred.shape:
            raise ValueError(self._shape_message(y_true.shape, y_pred.shape))
        return y_true, y_pred

    def _shape_message(self, true_shape, pred_shape):
        msg = (f"{self.name}: labels of shape {tuple(true_shape)} do not fit the model output "
               f"of shape {tuple(pred_shape)}; expected one-hot labels of shape "
               f"{tuple(pred_shape)}")
        if len(true_shape) < len(pred_shape) or (true_shape and true_shape[-1] == 1):
            msg += (". For integer class labels use loss='sparse_categorical_crossentropy' "
                    "or one-hot encode them with fastseq.utils.to_categorical")
        return msg

    def _forward(self, y_true, y_pred, from_logits, need_grad):
        y = y_true
        n_classes = y_pred.shape[-1]
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + self.label_smoothing / n_classes
        if from_logits:
            logp = _log_softmax(y_pred)
            per = -np.sum(y * logp, axis=-1)
            dper = None
            if need_grad:
                dper = np.exp(logp) * np.sum(y, axis=-1, keepdims=True) - y
            return per, dper
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q = y_pred / total
        qc = np.clip(q, EPSILON, 1.0 - EPSILON)
        per = -np.sum(y * np.log(qc), axis=-1)
        dper = None
        if need_grad:
            # d/dp_k of -sum_c y_c log clip(p_c / S): (sum_c y_c m_c - y_k m_k / q_k) / S,
            # m_c = 1 where the clip passes the gradient
            live = ((q >= EPSILON) & (q <= 1.0 - EPSILON)).astype(y_pred.dtype)
            ym = y * live
            dper = (np.sum(ym, axis=-1, keepdims=True) - ym / qc) / total
        return per, dper

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits,
                       "label_smoothing": self.label_smoothing, "axis": self.axis})
        return config


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer labels, as
    ``keras.losses.SparseCategoricalCrossentropy``: labels ``(B,)`` or ``(B, 1)`` in [0, C)
    for an output ``(B, C)`` (``(B, T)`` or ``(B, T, 1)`` for ``(B, T, C)``)."""

    def __init__(self, from_logits=False, ignore_class=None, axis=-1,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if axis != -1:
            raise ValueError(f"{name}: only axis=-1 is supported, got {axis}")
        if ignore_class is not None:
            raise ValueError(f"{name}: ignore_class is not supported by fastseq")
        self.from_logits = bool(from_logits)
        self.ignore_class = None
        self.axis = axis

    def _prepare(self, y_true, y_pred):
        y_true = np.asarray(y_true)
        expected = y_pred.shape[:-1]
        shape = y_true.shape
        if y_true.ndim == y_pred.ndim and y_true.ndim and shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != expected:
            raise ValueError(self._shape_message(shape, y_pred.shape))
        y_true = self._check_values(y_true, y_pred.shape[-1])
        return y_true, y_pred

    def _shape_message(self, true_shape, pred_shape):
        expected = tuple(pred_shape[:-1])
        msg = (f"{self.name}: labels of shape {tuple(true_shape)} do not fit the model output "
               f"of shape {tuple(pred_shape)}; expected integer class labels of shape "
               f"{expected} or {expected + (1,)} with values in [0, {pred_shape[-1]})")
        if tuple(true_shape) == tuple(pred_shape):
            msg += ". For one-hot labels use loss='categorical_crossentropy'"
        return msg

    def _check_values(self, y_true, n_classes):
        # -> the labels as int64, checked: integer-valued and in [0, n_classes)
        if y_true.dtype.kind == "f":
            _check_finite(y_true, f"{self.name}: the labels")
            as_int = y_true.astype(np.int64)
            if not np.array_equal(as_int, y_true):
                raise ValueError(f"{self.name}: labels must be integer class indices, got "
                                 "non-integer values")
            y_true = as_int
        elif y_true.dtype.kind in "iub":
            y_true = y_true.astype(np.int64, copy=False)
        else:
            raise TypeError(f"{self.name}: labels must be integer class indices, got dtype "
                            f"{y_true.dtype}")
        if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
            bad = y_true[(y_true < 0) | (y_true >= n_classes)].flat[0]
            raise ValueError(f"{self.name}: label {bad} is outside [0, {n_classes}) for an "
                             f"output with {n_classes} classes")
        return y_true

    def _forward(self, y_true, y_pred, from_logits, need_grad):
        labels = y_true[..., None]
        if from_logits:
            logp = _log_softmax(y_pred)
            per = -np.take_along_axis(logp, labels, axis=-1)[..., 0]
            dper = None
            if need_grad:
                dper = np.exp(logp)
                np.put_along_axis(dper, labels,
                                  np.take_along_axis(dper, labels, axis=-1) - 1, axis=-1)
            return per, dper
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q_label = np.take_along_axis(y_pred, labels, axis=-1) / total
        qc = np.clip(q_label, EPSILON, 1.0 - EPSILON)
        per = -np.log(qc)[..., 0]
        dper = None
        if need_grad:
            # d/dp_k of -log clip(p_label / S) = m (1 - [k == label] / q_label) / S
            live = ((q_label >= EPSILON) & (q_label <= 1.0 - EPSILON)).astype(y_pred.dtype)
            dper = np.broadcast_to(live / total, y_pred.shape).copy()
            np.put_along_axis(dper, labels, live * (1 - 1 / qc) / total, axis=-1)
        return per, dper

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "ignore_class": None,
                       "axis": self.axis})
        return config


class MeanSquaredError(Loss):
    """Mean squared error over the last axis, as ``keras.losses.MeanSquaredError``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _forward(self, y_true, y_pred, from_logits, need_grad):
        diff = y_pred - y_true
        width = y_pred.shape[-1]
        return np.mean(diff * diff, axis=-1), (diff * (2.0 / width) if need_grad else None)


class MeanAbsoluteError(Loss):
    """Mean absolute error over the last axis, as ``keras.losses.MeanAbsoluteError``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def _forward(self, y_true, y_pred, from_logits, need_grad):
        diff = y_pred - y_true
        width = y_pred.shape[-1]
        return np.mean(np.abs(diff), axis=-1), (np.sign(diff) / width if need_grad else None)


# ------------------------------------------------------------------ functions (per sample)
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary cross-entropy (mean over the last axis), as
    ``keras.losses.binary_crossentropy``."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction="none")(
        y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample categorical cross-entropy, as ``keras.losses.categorical_crossentropy``."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction="none")(
        y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Per-sample sparse categorical cross-entropy, as
    ``keras.losses.sparse_categorical_crossentropy``."""
    return SparseCategoricalCrossentropy(from_logits, ignore_class, axis, reduction="none")(
        y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error, as ``keras.losses.mean_squared_error``."""
    return MeanSquaredError(reduction="none")(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error, as ``keras.losses.mean_absolute_error``."""
    return MeanAbsoluteError(reduction="none")(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error

_CLASSES = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}
_BY_FUNCTION = {
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
}


def _lookup(name):
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    for canonical, cls in _CLASSES.items():
        if key in (canonical, cls.__name__.lower()):
            return cls
    known = sorted(set(_CLASSES) | set(_ALIASES))
    raise ValueError(f"Unknown loss {name!r}. Known losses: {', '.join(known)}")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"loss config must be a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    return _lookup(config["class_name"]).from_config(config.get("config") or {})


def get(identifier):
    """A Loss from a name (``'binary_crossentropy'``, ``'mse'``, ``'BinaryCrossentropy'``,
    any case), a Loss instance (returned as is), one of this module's loss functions, or a
    config dict ``{'class_name', 'config'}``."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        cls = _BY_FUNCTION.get(identifier)
        if cls is not None:
            return cls()
        raise TypeError(
            f"custom loss function {getattr(identifier, '__name__', identifier)!r} is not "
            "supported: fastseq needs the loss's gradient. Subclass fastseq.losses.Loss and "
            "implement _forward (per-sample losses and their gradient)")
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}")
