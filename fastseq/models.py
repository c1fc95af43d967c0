"""Sequential: Keras's model API (build, compile, fit, evaluate, predict, the *_on_batch
methods, summary, weights, config) over fastseq's layers.

Training step: a forward pass that keeps each layer's cache, the loss and its gradient, a
backward pass in reverse order that sets every trainable Variable's ``grad`` (stopping at
the first layer that has trainable weights), and ``optimizer.apply_gradients``. When the
last layer ends in a sigmoid (softmax) and the loss is binary (categorical) cross-entropy,
the loss works on the logits and the activation's derivative is skipped: exact and stable,
as Keras does.
"""
import json
import math
import warnings

import numpy as np

from fastseq._kernels.geometry import positive_int
from fastseq.layers import base as _base
from fastseq.layers.base import Layer, assign_checked
from fastseq.layers.embedding import as_indices

__all__ = ["Sequential", "load_model", "model_from_json", "model_from_config"]

_FUSABLE = {
    "sigmoid": ("binary_crossentropy",),
    "softmax": ("categorical_crossentropy", "sparse_categorical_crossentropy"),
}
_LOSS_CLASS_NAMES = {
    "BinaryCrossentropy": "binary_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
}


def _loss_kind(loss):
    kind = _LOSS_CLASS_NAMES.get(type(loss).__name__)
    if kind is None:
        name = str(getattr(loss, "name", "")).lower()
        kind = name if name in _LOSS_CLASS_NAMES.values() else None
    return kind


def _nan_error(array, name):
    where = np.argwhere(np.isnan(array))[0]
    return ValueError(
        f"{name} contains NaN (first at index {tuple(int(i) for i in where)}); fastseq does "
        "not train on missing values: fill or drop them first"
    )


def _check_finite_input(array, name):
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise _nan_error(array, name)


class _Tracker:
    """Batch-size-weighted running mean of the loss, as Keras's loss tracker."""

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def update(self, value, n):
        self.total += float(value) * n
        self.count += n

    def result(self):
        return self.total / self.count if self.count else 0.0


class Sequential:
    """A linear stack of layers: ``Sequential([Embedding(...), LSTM(...), Dense(...)])`` or
    ``model.add(layer)``. Built from the first layer's ``input_shape`` / ``input_length``,
    or on the first data it sees."""

    def __init__(self, layers=None, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name if name is not None else _base.unique_name("sequential")
        self._layers = []
        self.built = False
        self._build_input_shape = None  # (None, ...) the model was built for
        self._built_from_data = False
        self._warned_shapes = set()
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self._compile_config = None
        self._fused = None
        self.stop_training = False
        self.history = None
        # the backend of every array operation: the device in force now, for good
        from fastseq._device import get_device
        from fastseq.backend import get_ops

        self._device = get_device()
        self._ops = get_ops(self._device)
        if layers is not None:
            if isinstance(layers, Layer):
                layers = [layers]
            for layer in layers:
                self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def layers(self):
        return list(self._layers)

    @property
    def device(self):
        """Where this model keeps its weights and runs: "cpu" or "cuda" (the device in force
        when it was built, see fastseq.set_device)."""
        return self._device

    @property
    def ops(self):
        """The backend (:class:`fastseq.backend.Ops`) this model computes with."""
        return self._ops

    def add(self, layer):
        """Append a layer (built at once when the model's input shape is known)."""
        if not isinstance(layer, Layer):
            raise TypeError(
                "The added layer must be an instance of fastseq.layers.Layer, got "
                f"{type(layer).__name__}: {layer!r}"
            )
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Layer {layer.name!r} is already in this model")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"{layer.name!r} is already the name of a layer in this model"
            )
        if self._layers and getattr(self._layers[-1], "return_state", False):
            raise ValueError(
                "All layers in a Sequential model should have a single output: layer "
                f"{self._layers[-1].name!r} returns its states (return_state=True), so it must "
                "be the last layer"
            )
        layer._set_ops(self._ops)
        if self.built:
            layer._build_for(self._layers[-1].output_shape if self._layers
                             else self._build_input_shape)
        elif not self._layers and layer._batch_input_shape is not None:
            self._layers.append(layer)
            try:
                self.build(layer._batch_input_shape)
            except Exception:
                self._layers.pop()
                raise
            self._fused = None
            return
        self._layers.append(layer)
        self._fused = None

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self._fused = None
        if not self._layers:
            self.built = False
            self._build_input_shape = None
        return layer

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch dimension first)."""
        if input_shape is None:
            input_shape = self._build_input_shape
            if input_shape is None and self._layers:
                input_shape = self._layers[0]._batch_input_shape
            if input_shape is None:
                raise ValueError(
                    "You must provide an input_shape to build the model (or give the first "
                    "layer an input_shape, or fit / predict on data)"
                )
        input_shape = _base._shape_tuple(input_shape, "input_shape")
        if not self._layers:
            raise ValueError("The model has no layers: add layers before building it")
        shape = input_shape
        for layer in self._layers:
            if isinstance(shape, list):
                raise ValueError(
                    f"Layer {layer.name!r} follows a layer with several outputs; a Sequential "
                    "model needs a single output per layer"
                )
            shape = layer._build_for(shape)
        self._build_input_shape = input_shape
        self.built = True

    def _build_from_data(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
            self._built_from_data = True

    def _use_ops(self, ops):
        """Compute with another backend of the same device from now on (layers, weights,
        optimizer): e.g. ``get_ops("reference")``, the benchmarks' NumPy baseline."""
        self._ops = ops
        for layer in self._layers:
            layer._set_ops(ops)
        if self.optimizer is not None:
            self.optimizer._set_ops(ops)
        return self

    @property
    def input_shape(self):
        if not self.built:
            raise AttributeError(
                f"The model {self.name!r} has not been built yet and thus has no input shape"
            )
        return self._build_input_shape

    @property
    def output_shape(self):
        if not self.built:
            raise AttributeError(
                f"The model {self.name!r} has not been built yet and thus has no output shape"
            )
        return self._layers[-1].output_shape

    def get_layer(self, name=None, index=None):
        """A layer by name or by index (as Keras)."""
        if index is not None and name is not None:
            raise ValueError("Provide only a layer name or a layer index, not both")
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(self._layers)} layers"
                )
            return self._layers[index]
        if name is not None:
            for layer in self._layers:
                if layer.name == name:
                    return layer
            raise ValueError(
                f"No such layer: {name}. Existing layers are: {[l.name for l in self._layers]}"
            )
        raise ValueError("Provide either a layer name or a layer index")

    # ------------------------------------------------------------------ weights
    @property
    def weights(self):
        return [v for layer in self._layers for v in layer.weights]

    @property
    def variables(self):
        return self.weights

    @property
    def trainable_weights(self):
        return [v for layer in self._layers for v in layer.trainable_weights]

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_weights(self):
        return [v for layer in self._layers for v in layer.non_trainable_weights]

    @property
    def trainable(self):
        return all(layer.trainable for layer in self._layers)

    @trainable.setter
    def trainable(self, value):
        for layer in self._layers:
            layer.trainable = value

    def get_weights(self):
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set every layer's weights from one flat list (Keras's order). Every count and
        shape is checked before anything changes."""
        assign_checked(self.weights, weights, "model", self.name, self.built)

    def count_params(self):
        if not self.built:
            raise ValueError(
                "You tried to call count_params on this model, but it isn't built. You can "
                "build it manually via: model.build(batch_input_shape)."
            )
        return int(sum(layer.count_params() for layer in self._layers))

    def save_weights(self, filepath, overwrite=True, save_format=None, **kwargs):
        from fastseq import saving

        return saving.save_weights(self, filepath)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
        if by_name or skip_mismatch:
            raise NotImplementedError("load_weights: by_name / skip_mismatch are not supported")
        from fastseq import saving

        return saving.load_weights(self, filepath)

    def save(self, filepath, overwrite=True, include_optimizer=True, **kwargs):
        from fastseq import saving

        return saving.save_model(self, filepath, include_optimizer=include_optimizer)

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = {"name": self.name,
                  "layers": [_base.serialize(layer) for layer in self._layers]}
        if self.built and self._built_from_data:
            config["build_input_shape"] = self._build_input_shape
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if isinstance(config, list):  # very old Keras: a bare list of layer configs
            config = {"layers": config}
        model = cls(name=config.get("name"))
        build_shape = config.get("build_input_shape")
        for layer_config in config.get("layers", []):
            if layer_config.get("class_name") == "InputLayer":
                inner = layer_config.get("config", {})
                build_shape = inner.get("batch_input_shape") or inner.get("batch_shape")
                continue
            model.add(_base.deserialize(layer_config, custom_objects=custom_objects))
        if not model.built and build_shape is not None and model._layers:
            model.build(tuple(build_shape))
            model._built_from_data = config.get("build_input_shape") is not None
        return model

    def to_json(self, **kwargs):
        from fastseq.saving import _json_default  # one JSON encoding for configs

        return json.dumps({"class_name": "Sequential", "config": self.get_config()},
                          default=_json_default, **kwargs)

    # ------------------------------------------------------------------ summary
    def summary(self, line_length=None, positions=None, print_fn=None):
        """Print Keras's table: Layer (type), Output Shape, Param #; then the totals."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` "
                "or by calling `fit()`/`predict()` with some data, or specify an "
                "`input_shape` argument in the first layer(s) for automatic build."
            )
        print_fn = print if print_fn is None else print_fn
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        if positions[-1] <= 1:
            positions = [int(line_length * p) for p in positions]

        def row(fields):
            line = ""
            for i, field in enumerate(fields):
                if i > 0:
                    line = line[:-1] + " "
                line += str(field)
                line = line[: positions[i]]
                line += " " * (positions[i] - len(line))
            print_fn(line)

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        row(["Layer (type)", "Output Shape", "Param #"])
        print_fn("=" * line_length)
        for i, layer in enumerate(self._layers):
            row([f"{layer.name} ({type(layer).__name__})", layer.output_shape,
                 layer.count_params()])
            print_fn("=" * line_length if i == len(self._layers) - 1 else "_" * line_length)
        trainable = sum(v.value.size for v in self.trainable_weights)
        non_trainable = sum(v.value.size for v in self.non_trainable_weights)
        print_fn(f"Total params: {trainable + non_trainable:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {non_trainable:,}")
        print_fn("_" * line_length)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=None, **kwargs):
        """Set the optimizer, loss and metrics (names or objects, as Keras)."""
        from fastseq import losses as _losses
        from fastseq import metrics as _metrics
        from fastseq import optimizers as _optimizers

        kwargs.pop("jit_compile", None)
        kwargs.pop("sample_weight_mode", None)
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
        if loss_weights is not None or weighted_metrics is not None:
            raise NotImplementedError("compile: loss_weights / weighted_metrics are not supported")
        if isinstance(loss, (list, tuple, dict)):
            raise NotImplementedError("compile: a Sequential model has one output; give one loss")
        optimizer_obj = _optimizers.get(optimizer)
        loss_obj = _losses.get(loss) if loss is not None else None
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, dict)) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        if any(isinstance(m, (list, tuple, dict)) for m in metrics):
            raise NotImplementedError("compile: give metrics as a flat list for a Sequential model")
        metric_objs = [_metrics.get(m, loss=loss_obj) for m in metrics]
        optimizer_obj._set_ops(self._ops)
        self.optimizer, self.loss, self.compiled_metrics = optimizer_obj, loss_obj, metric_objs
        if self.loss is None:
            loss_config = None
        elif isinstance(loss, str):
            loss_config = loss
        elif hasattr(_losses, "serialize"):
            loss_config = _losses.serialize(self.loss)
        else:
            loss_config = self.loss.name
        self._compile_config = {
            "optimizer": _optimizers.serialize(self.optimizer),
            "loss": loss_config,
            "metrics": [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in metrics],
        }
        self._fused = None

    @property
    def metrics(self):
        return list(self.compiled_metrics)

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in self.compiled_metrics]

    def reset_metrics(self):
        for metric in self.compiled_metrics:
            metric.reset_state()

    def _check_compiled(self):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                "You must compile your model before training/testing. Use "
                "`model.compile(optimizer, loss)`."
            )

    def _fusion(self):
        """True when the loss takes the last layer's logits (sigmoid + binary cross-entropy,
        softmax + categorical cross-entropy) and that activation's derivative is skipped."""
        if self._fused is None:
            for layer in self._layers:
                layer._keep_logits = False
            last = self._layers[-1] if self._layers else None
            act = getattr(last, "activation", None)
            act_name = getattr(act, "name", None)
            fused = (
                last is not None and hasattr(last, "backward_from_logits")
                and act_name in _FUSABLE
                and _loss_kind(self.loss) in _FUSABLE[act_name]
                and not getattr(self.loss, "from_logits", False)
            )
            if fused:
                last._keep_logits = True
            self._fused = bool(fused)
        return self._fused

    # ------------------------------------------------------------------ data
    def _first_layer_takes_indices(self):
        return bool(self._layers) and self._layers[0]._takes_indices

    def _prepare_x(self, x, name="x"):
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            x = x[0]
        if isinstance(x, dict):
            raise TypeError(f"{name}: a Sequential model takes one array, got a dict")
        if x is None:
            raise ValueError(f"{name} is None: give the input data")
        if not self._layers:
            raise ValueError("The model has no layers")
        if self._first_layer_takes_indices():
            x = as_indices(x, self._layers[0].name)
        else:
            x = np.asarray(x)
            if x.dtype.kind not in "fiub":
                raise TypeError(f"{name} must hold numbers, got an array of dtype {x.dtype}")
            dtype = self._layers[0].dtype
            if x.dtype.kind == "f":
                _check_finite_input(x, name)
            x = np.ascontiguousarray(x, dtype=dtype)
        if x.ndim == 0:
            raise ValueError(f"{name} must have a batch axis, got a scalar")
        self._check_input_shape(x, name)
        return x

    def _check_input_shape(self, x, name):
        if not self.built:
            return
        expected = self._build_input_shape
        if x.ndim != len(expected):
            raise ValueError(
                f"Input 0 of model {self.name!r} is incompatible: expected shape={expected} "
                f"(ndim={len(expected)}), found {name} of shape {x.shape} (ndim={x.ndim})"
            )
        feature_axis = None if self._first_layer_takes_indices() else x.ndim - 1
        differs = False
        for axis in range(1, x.ndim):
            want = expected[axis]
            if want is None or x.shape[axis] == want:
                continue
            if axis == feature_axis:
                raise ValueError(
                    f"Input 0 of model {self.name!r} is incompatible: expected shape={expected}, "
                    f"found {name} of shape {x.shape} (axis {axis} should be {want})"
                )
            differs = True
        if differs:
            # a different length: fine for layers that take any length, an error where a
            # layer's weights depend on it (Flatten -> Dense)
            shape = (None,) + x.shape[1:]
            for layer in self._layers:
                built_for = layer._input_shape
                if isinstance(shape, list):
                    break
                if not layer._accepts_shape(shape):
                    raise ValueError(
                        f"Input 0 of model {self.name!r} is incompatible: the model was built "
                        f"for shape={expected} and layer {layer.name!r} cannot take {name} of "
                        f"shape {x.shape} (it expects inputs of shape {built_for}, it would "
                        f"get {shape})"
                    )
                shape = layer.compute_output_shape(shape)
            if x.shape not in self._warned_shapes:
                self._warned_shapes.add(x.shape)
                warnings.warn(
                    f"Model {self.name!r} was built for input shape {expected}, but it was "
                    f"called on {name} of shape {x.shape}",
                    UserWarning,
                    stacklevel=4,
                )

    @staticmethod
    def _prepare_y(y, n, name="y"):
        if y is None:
            raise ValueError(f"{name} is None: give the target data")
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold numbers, got an array of dtype {y.dtype}")
        if y.ndim == 0:
            raise ValueError(f"{name} must have a batch axis, got a scalar")
        if y.dtype.kind == "f":
            _check_finite_input(y, name)
        if len(y) != n:
            raise ValueError(
                f"Data cardinality is ambiguous: x sizes: {n}, {name} sizes: {len(y)}. Make "
                "sure all arrays contain the same number of samples."
            )
        return y

    def _output_shape_for(self, x_shape):
        """The model's output shape for an input of shape ``x_shape``."""
        shape = tuple(x_shape)
        for layer in self._layers:
            if isinstance(shape, list):
                break
            shape = layer.compute_output_shape(shape)
        return shape

    def _check_targets(self, y, x_shape):
        check = getattr(self.loss, "check_targets", None)
        if check is None or not self.built:
            return
        out_shape = self._output_shape_for(x_shape)
        if isinstance(out_shape, list):
            raise NotImplementedError(
                f"Training model {self.name!r} is not supported: its last layer returns several "
                "outputs (return_state=True)"
            )
        check(y, out_shape)

    # ------------------------------------------------------------------ passes
    def _forward(self, x, training):
        """Run every layer on the model's backend; returns (output as a backend array,
        output mask). ``x`` is the host batch: integer indices stay on the host (the
        Embedding's kernels and mask read them there), float inputs go to the backend."""
        ops = self._ops
        if not self._first_layer_takes_indices():
            x = ops.asarray(x)
        mask = None
        stop = self._backward_start() if training else 0
        for i, layer in enumerate(self._layers):
            # frozen layers before the first trainable one keep no cache (no backward there)
            layer_training = training and (i >= stop or layer._training_changes_forward())
            if x.dtype != layer.dtype and x.dtype.kind == "f" and not layer._takes_indices:
                x = ops.cast(x, layer.dtype)  # Keras: a layer computes in its own dtype
            y = layer.forward(x, mask=mask, training=layer_training)
            if training and i < stop:
                layer._cache = None
            mask = layer.compute_mask(x, mask)
            x = y
        return x, mask

    def _backward_start(self):
        """Index of the first layer with a trainable weight: no backward before it."""
        for i, layer in enumerate(self._layers):
            if layer.trainable_weights:
                return i
        return len(self._layers)

    def _backward(self, grad, from_logits=False):
        stop = self._backward_start()
        last = len(self._layers) - 1
        for i in range(last, stop - 1, -1):
            layer = self._layers[i]
            need = i > stop
            if i == last and from_logits:
                grad = layer.backward_from_logits(grad, need_input_grad=need)
            else:
                grad = layer.backward(grad, need_input_grad=need)
            below = self._layers[i - 1].dtype if i > 0 else None
            if need and below is not None and grad.dtype != below:
                grad = self._ops.cast(grad, below)  # back to the dtype the layer below gave

    def _train_step(self, x, y):
        fused = self._fusion()
        for var in self.trainable_weights:
            var.grad = None
        y_pred, mask = self._forward(x, training=True)
        if isinstance(y_pred, list):
            raise NotImplementedError(
                f"Training model {self.name!r} is not supported: its last layer returns several "
                "outputs (return_state=True)"
            )
        logits = self._layers[-1]._last_logits if fused else None
        if logits is None:  # the last layer kept no logits (a linear activation)
            fused = False
        loss_value, grad = self._ops.loss_forward_backward(
            self.loss, y, logits if fused else y_pred, mask, from_logits=fused)
        self._backward(grad, from_logits=fused)
        self.optimizer.apply_gradients(self.trainable_weights)
        return loss_value, y_pred, mask

    def _eval_step(self, x, y):
        """(loss, output, output mask) of one batch without training."""
        y_pred, mask = self._forward(x, training=False)
        return self._inference_loss(y, y_pred, mask), y_pred, mask

    def _inference_loss(self, y, y_pred, mask):
        """The loss of a forward pass without training; on the logits when the training
        loss is (so evaluate and fit report the same quantity)."""
        logits = self._layers[-1]._last_logits if self._fusion() else None
        fused = logits is not None
        self._layers[-1]._last_logits = None  # the batch is done with it
        return self._ops.loss_forward_backward(self.loss, y, logits if fused else y_pred, mask,
                                               from_logits=fused, need_grad=False)[0]

    def _update_metrics(self, y, y_pred, mask):
        self._ops.update_metrics(self.compiled_metrics, y, y_pred, mask)

    def _logs(self, tracker):
        logs = {"loss": tracker.result()}
        for metric in self.compiled_metrics:
            logs[metric.name] = float(metric.result())
        return logs

    def _predict_arrays(self, x, batch_size, callbacks=None):
        n = len(x)
        outputs = None
        for step, start in enumerate(range(0, n, batch_size)):
            if callbacks is not None:
                callbacks.on_predict_batch_begin(step)
            y = self._forward_numpy(x[start:start + batch_size])
            parts = y if isinstance(y, list) else [y]
            if outputs is None:
                outputs = [np.empty((n,) + p.shape[1:], dtype=p.dtype) for p in parts]
            for out, p in zip(outputs, parts):
                out[start:start + len(p)] = p
            if callbacks is not None:
                callbacks.on_predict_batch_end(step, {"outputs": y})
        if outputs is None:  # no samples
            y = self._forward_numpy(x[:0])
            outputs = y if isinstance(y, list) else [y]
        return outputs if isinstance(self.output_shape, list) else outputs[0]

    def _evaluate_arrays(self, x, y, batch_size, callbacks=None):
        """Loss (batch-size-weighted mean) and metrics over (x, y), no training caches."""
        tracker = _Tracker()
        self.reset_metrics()
        self._fusion()
        for step, start in enumerate(range(0, len(x), batch_size)):
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            loss_value, y_pred, mask = self._eval_step(xb, yb)
            tracker.update(loss_value, len(xb))
            self._update_metrics(yb, y_pred, mask)
            logs = self._logs(tracker)
            if callbacks is not None:
                callbacks.on_test_batch_end(step, logs)
        return self._logs(tracker)

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        """Train for ``epochs`` epochs; returns the History (``.history`` holds ``loss``,
        the metrics and their ``val_`` versions)."""
        from fastseq import callbacks as _callbacks

        if "nb_epoch" in kwargs:
            warnings.warn("The `nb_epoch` argument in `fit` has been renamed `epochs`.",
                          DeprecationWarning, stacklevel=2)
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: unexpected keyword argument(s) {sorted(kwargs)}")
        for what, value in (("class_weight", class_weight), ("sample_weight", sample_weight),
                            ("steps_per_epoch", steps_per_epoch),
                            ("validation_steps", validation_steps)):
            if value is not None:
                raise NotImplementedError(f"fit: {what} is not supported by fastseq")
        self._check_compiled()
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        epochs = int(epochs)
        verbose = 1 if verbose == "auto" else int(verbose)
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")

        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        if len(x) == 0:
            raise ValueError("fit: x is empty (0 samples)")
        self._build_from_data(x)
        self._check_targets(y, x.shape)

        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val), got "
                    f"{type(validation_data).__name__}"
                )
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise NotImplementedError("fit: validation sample weights are not supported")
            x_val = self._prepare_x(validation_data[0], "x_val")
            y_val = self._prepare_y(validation_data[1], len(x_val), "y_val")
            self._check_targets(y_val, x_val.shape)
            val = (x_val, y_val)
        elif validation_split:
            # the last fraction, taken before any shuffling (Keras)
            split_at = int(math.floor(len(x) * (1.0 - validation_split)))
            if split_at == 0 or split_at == len(x):
                raise ValueError(
                    f"validation_split={validation_split} leaves no training or no validation "
                    f"samples out of {len(x)}"
                )
            val = (x[split_at:], y[split_at:])
            x, y = x[:split_at], y[:split_at]
        val_batch_size = validation_batch_size or batch_size

        n = len(x)
        steps = -(-n // batch_size)
        callback_list = _callbacks.CallbackList(
            callbacks, model=self, add_history=True, add_progbar=verbose != 0,
            verbose=verbose, epochs=epochs, steps=steps,
        )
        nan_warned = False
        has_nan_callback = any(type(c).__name__ == "TerminateOnNaN" for c in (callbacks or []))
        from fastseq.utils import get_rng

        self.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            tracker = _Tracker()
            callback_list.on_epoch_begin(epoch)
            order = None
            if shuffle == "batch":
                blocks = get_rng().permutation(steps)
                order = np.concatenate([np.arange(b * batch_size, min((b + 1) * batch_size, n))
                                        for b in blocks])
            elif shuffle:
                order = get_rng().permutation(n)
            for step in range(steps):
                start = step * batch_size
                if order is None:
                    xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                else:
                    idx = order[start:start + batch_size]
                    xb, yb = x[idx], y[idx]
                callback_list.on_train_batch_begin(step)
                loss_value, y_pred, mask = self._train_step(xb, yb)
                tracker.update(loss_value, len(xb))
                self._update_metrics(yb, y_pred, mask)
                logs = self._logs(tracker)
                if not math.isfinite(loss_value) and not has_nan_callback and not nan_warned:
                    nan_warned = True
                    warnings.warn(
                        f"fit: the loss is {loss_value} at epoch {epoch + 1}, batch {step}; "
                        "training goes on (pass callbacks=[TerminateOnNaN()] to stop it)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                callback_list.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None and (epoch + 1) % validation_freq == 0 and not self.stop_training:
                # as Keras: the validation pass calls the test hooks (the progress bar
                # stays silent inside fit)
                callback_list.on_test_begin()
                val_logs = self._evaluate_arrays(val[0], val[1], val_batch_size,
                                                 callbacks=callback_list)
                callback_list.on_test_end(val_logs)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            callback_list.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.stop_training:
                break
        callback_list.on_train_end(logs)
        history = getattr(callback_list, "history", None)
        if history is not None:
            self.history = history
        return self.history

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Loss, or [loss, *metrics], over (x, y); batch-size-weighted as Keras."""
        from fastseq import callbacks as _callbacks

        if kwargs:
            raise TypeError(f"evaluate: unexpected keyword argument(s) {sorted(kwargs)}")
        if sample_weight is not None or steps is not None:
            raise NotImplementedError("evaluate: sample_weight / steps are not supported")
        self._check_compiled()
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        verbose = 1 if verbose == "auto" else int(verbose)
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        self._build_from_data(x)
        self._check_targets(y, x.shape)
        callback_list = _callbacks.CallbackList(
            callbacks, model=self, add_history=False, add_progbar=verbose != 0,
            verbose=verbose, epochs=1, steps=-(-len(x) // batch_size),
        )
        callback_list.on_test_begin()
        logs = self._evaluate_arrays(x, y, batch_size, callbacks=callback_list)
        callback_list.on_test_end(logs)
        if return_dict:
            return dict(logs)
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self.compiled_metrics]

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None, **kwargs):
        """The model's output for ``x`` (inference: no dropout, no training caches)."""
        if kwargs:
            raise TypeError(f"predict: unexpected keyword argument(s) {sorted(kwargs)}")
        if steps is not None:
            raise NotImplementedError("predict: steps is not supported")
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        x = self._prepare_x(x)
        self._build_from_data(x)
        callback_list = None
        verbose = 1 if verbose == "auto" else int(verbose)
        if callbacks or verbose:
            from fastseq import callbacks as _callbacks

            callback_list = _callbacks.CallbackList(
                callbacks, model=self, add_history=False, add_progbar=verbose != 0,
                verbose=verbose, epochs=1, steps=-(-len(x) // batch_size),
            )
            callback_list.on_predict_begin()
        out = self._predict_arrays(x, batch_size, callbacks=callback_list)
        if callback_list is not None:
            callback_list.on_predict_end()
        return out

    def __call__(self, x, training=False):
        x = self._prepare_x(x)
        self._build_from_data(x)
        y = self._forward_numpy(x, training=bool(training))
        for layer in self._layers:  # nothing follows to take the caches
            layer._cache = None
        return y

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       reset_metrics=True, return_dict=False):
        """One gradient step on one batch; returns the loss, or [loss, *metrics]."""
        if sample_weight is not None or class_weight is not None:
            raise NotImplementedError(
                "train_on_batch: sample_weight / class_weight are not supported")
        self._check_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        self._build_from_data(x)
        self._check_targets(y, x.shape)
        loss_value, y_pred, mask = self._train_step(x, y)
        self._update_metrics(y, y_pred, mask)
        return self._batch_result(loss_value, reset_metrics, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True,
                      return_dict=False):
        """Loss (and metrics) on one batch, without training."""
        if sample_weight is not None:
            raise NotImplementedError("test_on_batch: sample_weight is not supported")
        self._check_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        self._build_from_data(x)
        self._check_targets(y, x.shape)
        self._fusion()
        loss_value, y_pred, mask = self._eval_step(x, y)
        self._update_metrics(y, y_pred, mask)
        return self._batch_result(loss_value, reset_metrics, return_dict)

    def _batch_result(self, loss_value, reset_metrics, return_dict):
        tracker = _Tracker()
        tracker.update(loss_value, 1)
        logs = self._logs(tracker)
        if reset_metrics:
            self.reset_metrics()
        if return_dict:
            return logs
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self.compiled_metrics]

    def predict_on_batch(self, x):
        x = self._prepare_x(x)
        self._build_from_data(x)
        return self._forward_numpy(x)

    def _forward_numpy(self, x, training=False):
        """The model's output for host batch ``x`` as NumPy array(s)."""
        y, _ = self._forward(x, training=training)
        for layer in self._layers:  # a kept logit would pin a device array
            layer._last_logits = None
        if isinstance(y, list):
            return [self._ops.to_numpy(t) for t in y]
        return self._ops.to_numpy(y)

    def __repr__(self):
        return f"<Sequential name={self.name!r}, {len(self._layers)} layers>"


def model_from_config(config, custom_objects=None):
    """A model from ``{'class_name': 'Sequential', 'config': {...}}``."""
    if config.get("class_name") != "Sequential":
        raise ValueError(
            f"fastseq builds Sequential models only, got class_name={config.get('class_name')!r}"
        )
    return Sequential.from_config(config["config"], custom_objects=custom_objects)


def model_from_json(json_string, custom_objects=None):
    return model_from_config(json.loads(json_string), custom_objects=custom_objects)


def load_model(filepath, custom_objects=None, compile=True, **kwargs):
    """Load a model saved by ``model.save`` (architecture, weights, optimizer state)."""
    from fastseq import saving

    if custom_objects is not None or not compile or kwargs:
        return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                                 **kwargs)
    return saving.load_model(filepath)
