"""Keras-compatible metrics: running means over batches, weighted by sample count.

As Keras 3 (keras/src/metrics/reduction_metrics.py, accuracy_metrics.py): a metric function
gives one value per sample; :class:`Mean` keeps ``total`` and ``count`` and reports
``total / count``, so a batch of 64 weighs 64 times a single sample.

``get('accuracy')`` / ``get('acc')`` picks the accuracy the way Keras does, from the loss and
the shapes, at the first update: binary (threshold 0.5) for a one-unit output or
binary cross-entropy, sparse categorical for sparse categorical cross-entropy, categorical
for categorical cross-entropy; with any other loss, Keras 3's shape rule (integer labels of
lower rank, or a last axis of 1 against several classes: sparse; otherwise categorical).
The metric keeps the name the user gave, so history shows ``acc`` when ``'acc'`` was asked.
"""
import numpy as np

from . import losses as _losses

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "MeanSquaredError",
    "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "AutoAccuracy", "accuracy", "binary_accuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "get", "serialize", "deserialize",
]


# ------------------------------------------------------------------ per-sample functions
def accuracy(y_true, y_pred):
    """Per-sample fraction of exactly equal values, as ``keras.metrics.Accuracy``'s fn."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    y_true, y_pred = _losses._squeeze_or_expand(y_true, y_pred)
    return np.mean(y_true == y_pred, axis=-1, dtype=np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample fraction of outputs whose ``y_pred > threshold`` equals the 0/1 label."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _losses._squeeze_or_expand(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"binary_accuracy: labels of shape {y_true.shape} do not fit outputs "
                         f"of shape {y_pred.shape}")
    return np.mean(y_true == (y_pred > threshold), axis=-1, dtype=np.float64)


def categorical_accuracy(y_true, y_pred):
    """Per-sample 1.0 where argmax(y_pred) == argmax(y_true) (one-hot labels)."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"categorical_accuracy: one-hot labels of shape {y_pred.shape} "
                         f"expected, got {y_true.shape}")
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-sample 1.0 where argmax(y_pred) equals the integer label ((B,) or (B, 1))."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_accuracy: integer labels of shape "
                         f"{y_pred.shape[:-1]} expected for outputs of shape {y_pred.shape}, "
                         f"got {y_true.shape}")
    return (y_true == np.argmax(y_pred, axis=-1)).astype(np.float64)


# ------------------------------------------------------------------ metric objects
class Metric:
    """Base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``,
    ``reset_state()``. ``name`` is what history and the progress bar show."""

    _direction = None  # "up" (higher is better), "down", or None (unknown)

    def __init__(self, name=None, dtype=None):
        self.name = name if name is not None else type(self).__name__.lower()
        self.dtype = dtype

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """Weighted running mean, as ``keras.metrics.Mean``: ``total / count``, where each
    update adds the per-sample values (times their weights) to ``total`` and the number of
    samples (or the sum of the weights) to ``count``. A scalar value with
    ``sample_weight=batch_size`` is how fit tracks the loss."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            values, sw = _losses._squeeze_or_expand(values, sw)
            if values.ndim > sw.ndim:  # reduce values to the weights' rank
                values = np.mean(values, axis=tuple(range(sw.ndim, values.ndim)))
            sw = np.broadcast_to(sw, values.shape)
            values = values * sw
            if sw.ndim > 1:
                sw = np.mean(sw, axis=tuple(range(1, sw.ndim)))
        if values.ndim > 1:
            values = np.mean(values, axis=tuple(range(1, values.ndim)))
        self.total += float(np.sum(values))
        if sample_weight is not None:
            self.count += float(np.sum(sw))
        else:
            self.count += values.shape[0] if values.ndim else 1

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred, **kwargs)``'s per-sample values."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name if name is not None else fn.__name__, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs),
                             sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config


class Accuracy(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the 0/1 labels."""

    _direction = "up"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError("Invalid value for argument `threshold`. Expected a value in "
                             f"interval (0, 1). Received: threshold={threshold}")
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) matches argmax of the one-hot labels."""

    _direction = "up"

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often argmax(y_pred) matches the integer labels."""

    _direction = "up"

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(_losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(_losses.mean_absolute_error, name=name, dtype=dtype)


class BinaryCrossentropy(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0.0):
        super().__init__(_losses.binary_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing)


class CategoricalCrossentropy(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0.0):
        super().__init__(_losses.categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing)


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False):
        super().__init__(_losses.sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits)


class AutoAccuracy(Metric):
    """``'accuracy'`` / ``'acc'``: becomes binary, categorical or sparse categorical
    accuracy at the first update (see the module docstring), under the name given."""

    _direction = "up"

    def __init__(self, name="accuracy", loss=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(loss, (str, dict)) or (callable(loss)
                                             and not isinstance(loss, _losses.Loss)):
            loss = _losses.get(loss)
        self.loss = loss
        self.resolved = None  # the concrete metric, after the first update

    def _resolve(self, y_true, y_pred):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        loss = self.loss
        if y_pred.shape[-1:] == (1,) or isinstance(loss, _losses.BinaryCrossentropy):
            cls = BinaryAccuracy
        elif isinstance(loss, _losses.SparseCategoricalCrossentropy):
            cls = SparseCategoricalAccuracy
        elif isinstance(loss, _losses.CategoricalCrossentropy):
            cls = CategoricalAccuracy
        elif y_true.ndim < y_pred.ndim or (y_true.shape[-1:] == (1,) and y_pred.shape[-1] > 1):
            cls = SparseCategoricalAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=self.name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.resolved is None:
            self.resolved = self._resolve(y_true, y_pred)
        self.resolved.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self):
        return self.resolved.result() if self.resolved is not None else 0.0

    def reset_state(self):
        if self.resolved is not None:
            self.resolved.reset_state()

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype}
        if self.loss is not None:
            config["loss"] = _losses.serialize(self.loss)
        return config


_CLASSES = {
    cls.__name__: cls for cls in (
        Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
        MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy, CategoricalCrossentropy,
        SparseCategoricalCrossentropy, Mean, AutoAccuracy)
}
# snake_case names (Keras's metric functions) -> the class computing them
_FUNCTIONS = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"metric config must be a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown metric class {config['class_name']!r}. Known: "
                         f"{', '.join(sorted(_CLASSES))}")
    return cls.from_config(config.get("config") or {})


def get(identifier, loss=None):
    """A Metric from a name, a Metric (returned as is), a Metric class, a config dict or a
    function ``fn(y_true, y_pred) -> per-sample values``.

    A name keeps the exact spelling given as the metric's name (``'acc'`` reports as
    ``acc``, ``'mse'`` as ``mse``), as in Keras. ``'accuracy'``/``'acc'`` resolve by the
    ``loss`` (a name or Loss) and the shapes; see :class:`AutoAccuracy`."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            return AutoAccuracy(name=identifier, loss=loss)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        cls = _FUNCTIONS.get(key)
        if cls is None:
            known = sorted(set(_FUNCTIONS) | {"accuracy", "acc"})
            raise ValueError(f"Unknown metric {identifier!r}. Known metrics: "
                             f"{', '.join(known)}")
        return cls(name=identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    raise TypeError(f"Could not interpret metric identifier: {identifier!r}")
