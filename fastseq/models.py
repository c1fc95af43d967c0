"""Keras's model API over fastseq's layers: ``Model(inputs, outputs)`` (the functional API:
a graph of layer calls on ``fastseq.Input`` tensors) and ``Sequential`` (a linear stack),
with build, compile, fit, evaluate, predict, the *_on_batch methods, summary, weights and
config. Both run on ONE executor and ONE training loop (this module's :class:`Model`).

The executor runs a list of steps: each a layer call reading value slots and writing value
slots (a Sequential is the chain slot i -> layer i -> slot i + 1; a functional model's
steps come from its graph, deepest first, as Keras orders it). Training step: a forward
pass that keeps each call's cache, each output's loss and gradient (weighted by
``loss_weights``, sample weights and the output masks), a backward pass in reverse that
sums the gradients reaching each slot and sets every trainable Variable's ``grad`` (a
layer called twice sums its two gradients), the weight and activity regularization, and
``optimizer.apply_gradients``, then the weight constraints. A call that no gradient needs
keeps no cache. When an output layer ends in a sigmoid (softmax) and its loss is binary
(categorical) cross-entropy, the loss works on the logits and the activation's derivative
is skipped: exact and stable, as Keras does.
"""
import json
import math
import warnings
from typing import NamedTuple

import numpy as np

from fastseq._kernels.geometry import positive_int
from fastseq.layers import base as _base
from fastseq.layers.base import Layer, assign_checked
from fastseq.layers.embedding import as_indices
from fastseq.variables import SparseGrad

__all__ = ["Model", "Sequential", "load_model", "model_from_json", "model_from_config"]

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


def _numeric_array(x, name):
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis, got a scalar")
    return x


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


class _Step(NamedTuple):
    """One layer call of the executor: reads slots ``inputs`` (the first ``n_main`` are the
    call's input, a list when ``main_is_list``; the rest a recurrent layer's initial
    states), writes slots ``outputs``. A ``training=`` recorded in a functional call stays
    in the config only: the model's own mode rules, as in Keras 3."""

    layer: Layer
    inputs: tuple
    n_main: int
    main_is_list: bool
    outputs: tuple


def _sum_grads(ops, a, b):
    """a + b for two gradients of one weight (arrays or :class:`SparseGrad`)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, SparseGrad) and isinstance(b, SparseGrad):
        rows = np.concatenate([np.asarray(a.rows), np.asarray(b.rows)])
        values = np.concatenate([ops.to_numpy(a.values), ops.to_numpy(b.values)])
        unique, inverse = np.unique(rows, return_inverse=True)
        summed = np.zeros((len(unique),) + values.shape[1:], dtype=values.dtype)
        np.add.at(summed, inverse, values)
        return SparseGrad(unique.astype(np.int64), ops.asarray(summed))
    if isinstance(a, SparseGrad) or isinstance(b, SparseGrad):
        sparse, dense = (a, b) if isinstance(a, SparseGrad) else (b, a)
        host = np.array(ops.to_numpy(dense), copy=True)
        np.add.at(host, np.asarray(sparse.rows), ops.to_numpy(sparse.values))
        return ops.asarray(host)
    return ops.add(a, b)


def _metric_config(metrics):
    """Metric names for the saved compile config (names, or each object's name), in the
    structure given (a list, a list per output, or a dict by output name)."""
    def one(m):
        if isinstance(m, (list, tuple)):
            return [one(i) for i in m]
        if isinstance(m, dict) and "class_name" not in m:
            return {k: one(v) for k, v in m.items()}
        return m if isinstance(m, str) else getattr(m, "name", str(m))

    if metrics is None:
        return []
    if not isinstance(metrics, (list, tuple)) and not (
            isinstance(metrics, dict) and "class_name" not in metrics):
        metrics = [metrics]
    return one(metrics)


# layers that act on each time step alone (or skip masked ones), passing the mask on
_MASKED_SEQUENCE_LAYERS = ("Dropout", "SpatialDropout1D", "Dense", "Activation",
                           "LayerNormalization", "BatchNormalization", "TimeDistributed")
_RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _trim_padding(x):
    """x (B, T) token ids without the columns that are padding (0) in every row at its
    start and end."""
    real = (x != 0).any(axis=0)
    if not real.any():
        return x[:, :1]
    steps = np.flatnonzero(real)
    return np.ascontiguousarray(x[:, steps[0]:steps[-1] + 1])


def _bucketed(x, y, sample_weight, batch_size):
    """``bucket_by_length=True``: ragged sequences as a Sequence of length-sorted batches."""
    from fastseq.utils.bucketing import bucket_by_length

    if isinstance(x, np.ndarray) and x.dtype != object:
        raise ValueError("bucket_by_length=True takes x as a list of ragged sequences (token "
                         f"ids), got a padded array of shape {x.shape}")
    return bucket_by_length(x, y, batch_size=positive_int(batch_size, "batch_size"),
                            sample_weight=sample_weight)


def _string_array(x, name):
    """Text input (a list or array of str, e.g. for TextVectorization), as an array."""
    x = np.asarray(x, dtype=object) if isinstance(x, (list, tuple)) else np.asarray(x)
    if x.dtype.kind not in "USO":
        raise TypeError(f"{name}: the first layer takes strings, got an array of dtype "
                        f"{x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis, got a single string")
    return x


def _checked_memmap(x, name):
    """A memory-mapped input left on disk: its dtype and rank checked, nothing read."""
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got a memory-mapped array of dtype "
                        f"{x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis, got a scalar")
    return x


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Model:
    """Keras's ``Model``. ``Model(inputs, outputs)`` is a functional model over the graph of
    layer calls between ``inputs`` (``fastseq.Input`` tensors: one, a list or a dict) and
    ``outputs`` (one tensor, a list or a dict); :class:`Sequential` is the linear case.
    Subclassing Model with a ``call`` method is not supported (fastseq runs its own
    backward pass): build the graph with the functional API instead."""

    _default_name = "functional"

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unexpected keyword argument(s) {sorted(kwargs)}")
        if inputs is None or outputs is None:
            raise TypeError(
                "fastseq builds a Model from its graph: Model(inputs, outputs), with inputs "
                "from fastseq.Input(...) and outputs from calling layers on them; subclassing "
                "Model with a call() method is not supported (use the functional API or "
                "Sequential)")
        self._init_state(name)
        self._init_graph(inputs, outputs)
        if not trainable:
            self.trainable = False

    def _init_state(self, name):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name if name is not None else _base.unique_name(self._default_name)
        self._layers = []
        self._inbound_nodes = []  # this model's calls as a layer of other graphs
        self._input_grads = False
        self._run_state = None
        self._steps = []
        self._input_slots, self._output_slots = [], []
        self._n_slots = 0
        self.built = False
        self._warned_shapes = set()
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self._output_losses = []
        self._loss_weights = []
        self._output_metrics = []  # per output: [(log name, metric, weighted)]
        self._compile_config = None
        self._fused = None
        self.stop_training = False
        self.history = None
        # the backend of every array operation: the device in force now, for good
        from fastseq._device import get_device
        from fastseq.backend import get_ops

        self._device = get_device()
        self._ops = get_ops(self._device)

    # ------------------------------------------------------------------ the graph
    def _init_graph(self, inputs, outputs):
        from fastseq.layers.input_layer import InputLayer, KerasTensor

        def flat(value, what):
            if isinstance(value, dict):
                names, tensors = list(value), list(value.values())
            else:
                names, tensors = None, _as_list(value)
            if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
                raise TypeError(f"Model: {what} must be KerasTensors (from fastseq.Input and "
                                f"layer calls), one, a list or a dict; got {value!r}")
            return names, tensors

        in_names, self._inputs = flat(inputs, "inputs")
        out_names, self._outputs = flat(outputs, "outputs")
        self._nested_inputs = "dict" if in_names else (
            "list" if isinstance(inputs, (list, tuple)) else "single")
        self._nested_outputs = "dict" if out_names else (
            "list" if isinstance(outputs, (list, tuple)) else "single")
        for t in self._inputs:
            if not isinstance(t._node.layer, InputLayer):
                raise ValueError(
                    f"Model inputs must come from fastseq.Input (an InputLayer); {t!r} is the "
                    f"output of layer {t._node.layer.name!r}")
        if len({id(t) for t in self._inputs}) != len(self._inputs):
            raise ValueError("Model: the same input tensor is given twice in inputs")
        self._input_names = in_names or [t._node.layer.name for t in self._inputs]
        nodes, layer_order = _map_graph(self._inputs, self._outputs)
        self._output_names = out_names or _unique_output_names(self._outputs)
        slot_of = {}
        for t in self._inputs:
            slot_of[id(t)] = len(slot_of)
        steps = []
        for node in nodes:
            if node.is_input:
                continue
            in_slots = tuple(slot_of[id(t)] for t in node.inputs)
            out_slots = []
            for t in node.outputs:
                slot_of[id(t)] = len(slot_of)
                out_slots.append(slot_of[id(t)])
            steps.append(_Step(node.layer, in_slots, node.n_main, node.main_is_list,
                               tuple(out_slots)))
        self._nodes = nodes
        self._node_set = set(nodes)
        self._slot_of = slot_of
        self._steps = steps
        self._n_slots = len(slot_of)
        self._input_slots = [slot_of[id(t)] for t in self._inputs]
        self._output_slots = [slot_of[id(t)] for t in self._outputs]
        self._layers = layer_order
        for layer in self._layers:
            layer._set_ops(self._ops)
        self._single_output = self._nested_outputs == "single"
        self.built = True

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input_names(self):
        return list(self._input_names)

    @property
    def output_names(self):
        return list(self._output_names)

    @property
    def input_shape(self):
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._single_output else shapes

    def _compute_layers(self):
        """The layers the executor calls (no InputLayer)."""
        return [layer for layer in self._layers if not _is_input_layer(layer)]

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

    def _use_ops(self, ops):
        """Compute with another backend of the same device from now on (layers, weights,
        optimizer): e.g. ``get_ops("reference")``, the benchmarks' NumPy baseline."""
        self._ops = ops
        for layer in self._layers:
            layer._set_ops(ops)
        if self.optimizer is not None:
            self.optimizer._set_ops(ops)
        return self

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

    @property
    def losses(self):
        """The weight regularization terms (floats), as Keras's ``model.losses``."""
        return [reg(var.value) for var, reg in self._regularized_weights()]

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
        """Keras 3's functional config: every layer with its ``inbound_nodes`` (each call's
        input tensors as ``__keras_tensor__`` records of ``keras_history``), plus
        ``input_layers`` / ``output_layers``."""
        def history(t):  # node indices among this model's calls of the layer
            layer = t._node.layer
            kept = [n for n in layer._inbound_nodes if n in self._node_set]
            return [layer.name, kept.index(t._node), t._index]

        def tensor_record(t):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(t.shape), "dtype": t.dtype,
                               "keras_history": history(t)}}

        layers = []
        for layer in self._layers:
            entry = _serialize(layer)
            entry["name"] = layer.name
            nodes = []
            for node in layer._inbound_nodes:
                if node.is_input or node not in self._node_set:
                    continue
                main = [tensor_record(t) for t in node.inputs[:node.n_main]]
                args = [main] if node.main_is_list else main
                kwargs = dict(node.call_kwargs)
                if len(node.inputs) > node.n_main:
                    kwargs["initial_state"] = [tensor_record(t)
                                               for t in node.inputs[node.n_main:]]
                nodes.append({"args": args, "kwargs": kwargs})
            entry["inbound_nodes"] = nodes
            layers.append(entry)

        def endpoints(tensors, names, nested):
            records = [history(t) for t in tensors]
            if nested == "dict":
                return dict(zip(names, records))
            return records  # one tensor too is a one-item list (Keras 3)

        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": endpoints(self._inputs, self._input_names,
                                          self._nested_inputs),
                "output_layers": endpoints(self._outputs, self._output_names,
                                           self._nested_outputs)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild a functional model from :meth:`get_config` (Keras 3's layout, or Keras
        2's ``inbound_nodes`` lists ``[[name, node_index, tensor_index, kwargs], ...]``)."""
        return _functional_from_config(cls, config, custom_objects)

    def to_json(self, **kwargs):
        from fastseq.saving import _json_default  # one JSON encoding for configs

        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()},
                          default=_json_default, **kwargs)

    # ------------------------------------------------------------------ summary
    def _summary_rows(self):
        """(name (type), output shape, params, connected to) per layer."""
        rows = []
        for layer in self._layers:
            calls = [n for n in layer._inbound_nodes if n in self._node_set]
            connected = []
            for node in calls:
                for t in node.inputs:
                    src = t._node.layer
                    kept = [n for n in src._inbound_nodes if n in self._node_set]
                    connected.append(f"{src.name}[{kept.index(t._node)}][{t._index}]")
            shapes = [t.shape for n in calls for t in n.outputs]
            shape = shapes[0] if len(shapes) == 1 else shapes
            kind = "Functional" if type(layer) is Model else type(layer).__name__
            rows.append((f"{layer.name} ({kind})", shape,
                         layer.count_params() if layer.built else 0, connected))
        return rows

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Print Keras's table: Layer (type), Output Shape, Param #, Connected to (for a
        functional model); then the totals."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` "
                "or by calling `fit()`/`predict()` with some data, or specify an "
                "`input_shape` argument in the first layer(s) for automatic build."
            )
        print_fn = print if print_fn is None else print_fn
        rows = self._summary_rows()
        graph = not isinstance(self, Sequential)
        line_length = line_length or (98 if graph else 65)
        positions = positions or ([0.33, 0.55, 0.67, 1.0] if graph else [0.45, 0.85, 1.0])
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
        row(["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if graph else []))
        print_fn("=" * line_length)
        for i, (name, shape, params, connected) in enumerate(rows):
            if graph:
                row([name, shape, params, connected[0] if connected else ""])
                for extra in connected[1:]:
                    row(["", "", "", extra])
            else:
                row([name, shape, params])
            print_fn("=" * line_length if i == len(rows) - 1 else "_" * line_length)
        trainable = sum(v.value.size for v in self.trainable_weights)
        non_trainable = sum(v.value.size for v in self.non_trainable_weights)
        print_fn(f"Total params: {trainable + non_trainable:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {non_trainable:,}")
        print_fn("_" * line_length)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=None, **kwargs):
        """Set the optimizer, the loss(es) and metrics (names or objects, as Keras). With
        several outputs, ``loss`` / ``loss_weights`` / ``metrics`` may be lists (one entry
        per output) or dicts keyed by output name; one loss is used for every output.
        ``metrics`` are computed unweighted and ``weighted_metrics`` with the sample
        weights, as in Keras 3."""
        from fastseq import losses as _losses
        from fastseq import metrics as _metrics
        from fastseq import optimizers as _optimizers

        kwargs.pop("jit_compile", None)
        kwargs.pop("sample_weight_mode", None)
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {sorted(kwargs)}")
        names = self._output_names_for_compile()
        optimizer_obj = _optimizers.get(optimizer)
        per_output_loss = self._per_output(loss, "loss", names, broadcast=True)
        loss_objs = [None if l is None else _losses.get(l) for l in per_output_loss]
        if loss is not None and all(l is None for l in loss_objs):
            raise ValueError("compile: no output has a loss")
        weights = self._per_output(loss_weights, "loss_weights", names, broadcast=False)
        weights = [1.0 if w is None else float(w) for w in weights]
        metric_sets = []
        for arg, weighted in ((metrics, False), (weighted_metrics, True)):
            per = self._per_output_metrics(arg, "weighted_metrics" if weighted else "metrics",
                                           names)
            metric_sets.append(per)
        output_metrics = []
        for i, name in enumerate(names):
            entries = []
            for per, weighted in zip(metric_sets, (False, True)):
                for m in per[i]:
                    obj = _metrics.get(m, loss=loss_objs[i])
                    base = obj.name
                    log_name = base if len(names) == 1 else f"{name}_{base}"
                    if weighted and any(e[0] == log_name for e in entries):
                        log_name = f"weighted_{log_name}"
                    entries.append((log_name, obj, weighted))
            output_metrics.append(entries)
        optimizer_obj._set_ops(self._ops)
        self.optimizer = optimizer_obj
        self.loss = loss_objs[0] if len(names) == 1 else loss
        self._output_losses, self._loss_weights = loss_objs, weights
        self._output_metrics = output_metrics
        self.compiled_metrics = [m for entries in output_metrics for _, m, _ in entries]
        self._compile_config = {
            "optimizer": _optimizers.serialize(self.optimizer),
            "loss": self._loss_config(loss, loss_objs),
            "metrics": _metric_config(metrics),
        }
        if loss_weights is not None:
            self._compile_config["loss_weights"] = loss_weights
        if weighted_metrics is not None:
            self._compile_config["weighted_metrics"] = _metric_config(weighted_metrics)
        self._fused = None

    def _output_names_for_compile(self):
        return list(self._output_names)

    @staticmethod
    def _loss_config(loss, loss_objs):
        from fastseq import losses as _losses

        def one(l, obj):
            if l is None:
                return None
            if isinstance(l, str):
                return l
            if hasattr(_losses, "serialize"):
                return _losses.serialize(obj)
            return obj.name

        if isinstance(loss, dict):
            return {k: one(v, _losses.get(v) if v is not None else None)
                    for k, v in loss.items()}
        if isinstance(loss, (list, tuple)):
            return [one(l, o) for l, o in zip(loss, loss_objs)]
        return one(loss, loss_objs[0] if loss_objs else None)

    def _per_output(self, value, what, names, broadcast):
        """``value`` as one entry per output: a dict by output name, a list in output
        order, or (``broadcast``) one value for every output."""
        n = len(names)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"compile: {what} has keys {unknown} that are not output names "
                                 f"of model {self.name!r}; its outputs are {names}")
            return [value.get(name) for name in names]
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"compile: {what} is a list of {len(value)} entries for a model "
                                 f"with {n} output(s) ({names})")
            return list(value)
        if value is None or broadcast or n == 1:
            return [value] * n
        raise ValueError(f"compile: give {what} as a list or a dict for a model with {n} "
                         f"outputs ({names})")

    def _per_output_metrics(self, metrics, what, names):
        n = len(names)
        if metrics is None:
            return [[] for _ in names]
        if isinstance(metrics, dict):
            unknown = sorted(set(metrics) - set(names))
            if unknown:
                raise ValueError(f"compile: {what} has keys {unknown} that are not output names "
                                 f"of model {self.name!r}; its outputs are {names}")
            return [_as_list(metrics[name]) if name in metrics else [] for name in names]
        if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        nested = any(isinstance(m, (list, tuple, dict)) for m in metrics)
        if n == 1:
            if nested:
                if len(metrics) != 1:
                    raise ValueError(f"compile: {what} nests {len(metrics)} lists for a model "
                                     "with one output")
                return [_as_list(metrics[0])]
            return [list(metrics)]
        if not nested:
            raise ValueError(
                f"compile: for a model with {n} outputs ({names}), give {what} as a list of "
                f"{n} lists (one per output) or a dict keyed by output name")
        if len(metrics) != n:
            raise ValueError(f"compile: {what} has {len(metrics)} entries for {n} outputs")
        return [[] if m is None else _as_list(m) for m in metrics]

    @property
    def metrics(self):
        return list(self.compiled_metrics)

    @property
    def metrics_names(self):
        return list(self._log_names())

    def _log_names(self):
        names = ["loss"]
        if len(self._output_losses) > 1:
            names += [f"{n}_loss" for n, l in zip(self._output_names_for_compile(),
                                                  self._output_losses) if l is not None]
        names += [log for entries in self._output_metrics for log, _, _ in entries]
        return names

    def reset_metrics(self):
        for metric in self.compiled_metrics:
            metric.reset_state()

    def _check_compiled(self):
        if self.optimizer is None or not any(l is not None for l in self._output_losses):
            raise RuntimeError(
                "You must compile your model before training/testing. Use "
                "`model.compile(optimizer, loss)`."
            )

    def _output_layer(self, k):
        """The layer that computes output k when it is that layer's only call and only
        output (so its kept logits belong to that output), else None."""
        slot = self._output_slots[k]
        for step in self._steps:
            if slot in step.outputs:
                calls = sum(s.layer is step.layer for s in self._steps)
                return step.layer if calls == 1 and len(step.outputs) == 1 else None
        return None

    def _fusion(self):
        """Per output: True when its loss takes the output layer's logits (sigmoid + binary
        cross-entropy, softmax + categorical cross-entropy) and that activation's
        derivative is skipped."""
        if self._fused is None:
            for layer in self._layers:
                layer._keep_logits = False
            fused = []
            for k, loss in enumerate(self._output_losses):
                last = self._output_layer(k)
                act_name = getattr(getattr(last, "activation", None), "name", None)
                # an activity penalty on the output needs d/d(activated output): no fusion
                ok = (loss is not None and last is not None
                      and getattr(last, "activity_regularizer", None) is None
                      and hasattr(last, "backward_from_logits") and act_name in _FUSABLE
                      and _loss_kind(loss) in _FUSABLE[act_name]
                      and not getattr(loss, "from_logits", False))
                if ok:
                    last._keep_logits = True
                fused.append(bool(ok))
            self._fused = fused
        return self._fused

    # ------------------------------------------------------------------ data
    def _input_consumers(self, slot):
        return [step.layer for step in self._steps if slot in step.inputs[:step.n_main]]

    def _input_takes_indices(self, k):
        return any(layer._takes_indices for layer in self._input_consumers(self._input_slots[k]))

    def _input_takes_strings(self, k):
        return any(layer._takes_strings
                   for layer in self._input_consumers(self._input_slots[k]))

    def _prepare_one_input(self, x, k, name):
        if self._input_takes_strings(k):
            return _string_array(x, name)
        if self._input_takes_indices(k):
            consumer = next(l for l in self._input_consumers(self._input_slots[k])
                            if l._takes_indices)
            x = as_indices(x, consumer.name)
        else:
            x = _numeric_array(x, name)
            layer = self._layers[0] if isinstance(self, Sequential) else \
                self._inputs[k]._node.layer
            dtype = layer.dtype if layer.dtype.kind == "f" else None
            if dtype is None:
                consumers = self._input_consumers(self._input_slots[k])
                dtype = consumers[0].dtype if consumers else np.dtype(np.float32)
            if x.dtype.kind == "f":
                _check_finite_input(x, name)
            x = np.ascontiguousarray(x, dtype=dtype)
        if x.ndim == 0:
            raise ValueError(f"{name} must have a batch axis, got a scalar")
        return x

    def _prepare_inputs(self, x, name="x", lazy=False):
        """The model's inputs as a list of host arrays (one per input), checked. With
        ``lazy``, a memory-mapped input (``np.load(..., mmap_mode="r")``) stays on disk: only
        its shape is checked here, and each batch is converted when it is read
        (:meth:`_array_batches`)."""
        n = len(self._inputs)
        if x is None:
            raise ValueError(f"{name} is None: give the input data")
        if isinstance(x, dict):
            missing = [k for k in self._input_names if k not in x]
            unknown = sorted(set(x) - set(self._input_names))
            if missing or unknown:
                raise ValueError(f"{name}: the dict's keys must be the model's input names "
                                 f"{self._input_names}; missing {missing}, unknown {unknown}")
            parts = [x[k] for k in self._input_names]
        elif isinstance(x, (list, tuple)) and (
                n > 1 or (len(x) == 1 and isinstance(x[0], np.ndarray))):
            parts = list(x)
            if len(parts) != n:
                raise ValueError(f"{name}: model {self.name!r} has {n} inputs "
                                 f"({self._input_names}), got a list of {len(parts)} arrays")
        else:
            if n != 1:
                raise ValueError(f"{name}: model {self.name!r} has {n} inputs "
                                 f"({self._input_names}); give a list or a dict of {n} arrays")
            parts = [x]
        label = (lambda k: name) if n == 1 else (lambda k: f"{name}[{self._input_names[k]!r}]")
        arrays = [_checked_memmap(p, label(k)) if lazy and isinstance(p, np.memmap)
                  else self._prepare_one_input(p, k, label(k)) for k, p in enumerate(parts)]
        for k, a in enumerate(arrays):
            self._check_graph_input_shape(a, k, label(k))
        self._check_cardinality(arrays, [label(k) for k in range(n)])
        return arrays

    def _check_graph_input_shape(self, x, k, name):
        expected = self._inputs[k].shape
        if x.ndim != len(expected) or any(
                want is not None and got != want for got, want in zip(x.shape[1:],
                                                                      expected[1:])):
            raise ValueError(
                f"Input {k} ({self._input_names[k]!r}) of model {self.name!r} is incompatible: "
                f"expected shape={expected}, found {name} of shape {x.shape}")

    @staticmethod
    def _check_cardinality(arrays, labels):
        sizes = {len(a) for a in arrays if a is not None}
        if len(sizes) > 1:
            detail = ", ".join(f"{l}: {len(a)}" for l, a in zip(labels, arrays) if a is not None)
            raise ValueError(f"Data cardinality is ambiguous: {detail}. Make sure all arrays "
                             "contain the same number of samples.")

    @staticmethod
    def _prepare_y(y, n, name="y"):
        if y is None:
            raise ValueError(f"{name} is None: give the target data")
        y = _numeric_array(y, name)
        if y.dtype.kind == "f":
            _check_finite_input(y, name)
        if len(y) != n:
            raise ValueError(
                f"Data cardinality is ambiguous: x sizes: {n}, {name} sizes: {len(y)}. Make "
                "sure all arrays contain the same number of samples."
            )
        return y

    def _per_output_data(self, value, n, name, required):
        """Targets or sample weights as one entry per output (None where absent)."""
        names = self._output_names_for_compile()
        k = len(names)
        if value is None:
            if required:
                raise ValueError(f"{name} is None: give the target data")
            return [None] * k
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"{name}: keys {unknown} are not output names of model "
                                 f"{self.name!r}; its outputs are {names}")
            parts = [value.get(o) for o in names]
        elif isinstance(value, (list, tuple)) and k > 1:
            if len(value) != k:
                raise ValueError(f"{name}: model {self.name!r} has {k} outputs ({names}), "
                                 f"got a list of {len(value)}")
            parts = list(value)
        elif k > 1 and required:
            raise ValueError(f"{name}: model {self.name!r} has {k} outputs ({names}); give a "
                             f"list or a dict of {k} arrays")
        else:
            parts = [value] * k if not required else [value]
        out = []
        for o, part in enumerate(parts):
            label = name if k == 1 else f"{name}[{names[o]!r}]"
            if part is None:
                if required and self._output_losses and self._output_losses[o] is not None:
                    raise ValueError(f"{label} is None: output {names[o]!r} has a loss and "
                                     "needs targets")
                out.append(None)
            elif required:
                out.append(self._prepare_y(part, n, label))
            else:
                from fastseq._sample_weights import check_sample_weight

                out.append(check_sample_weight(part, n, label))
        return out

    def _prepare_targets(self, y, n, name="y"):
        return self._per_output_data(y, n, name, required=True)

    def _prepare_sample_weights(self, sample_weight, n, name="sample_weight"):
        return self._per_output_data(sample_weight, n, name, required=False)

    def _class_weights(self, class_weight, ys, sws):
        """Fold ``class_weight`` into the per-output sample weights (Keras: one output)."""
        if class_weight is None:
            return sws
        if any(sw is not None for sw in sws):
            raise ValueError("`class_weight` and `sample_weight` cannot be given at the same "
                             "time (as Keras): fold the class weights into sample_weight")
        if len(ys) != 1:
            raise ValueError("class_weight is only supported for models with one output; use "
                             "sample_weight for each output instead")
        from fastseq._sample_weights import class_weight_to_sample_weight

        shape = self._output_shapes()[0]
        n_units = shape[-1] if isinstance(shape, tuple) and shape else None
        return [class_weight_to_sample_weight(ys[0], class_weight, n_units)]

    def _output_shapes(self):
        return [t.shape for t in self._outputs]

    def _check_targets(self, ys, xs):
        shapes = self._output_shapes_for([x.shape for x in xs])
        for k, (loss, y) in enumerate(zip(self._output_losses, ys)):
            check = getattr(loss, "check_targets", None)
            if check is None or y is None or not self.built:
                continue
            shape = shapes[k]
            if isinstance(shape, list):
                raise NotImplementedError(
                    f"Training model {self.name!r} is not supported: its last layer returns "
                    "several outputs (return_state=True)")
            check(y, shape)

    def _output_shapes_for(self, x_shapes):
        return self._output_shapes()

    def _build_from_data(self, xs):
        """A functional model is built by its graph."""

    # ------------------------------------------------------------------ a model as a layer
    # A model called on KerasTensors, or added to a Sequential, is a layer of the outer
    # model (Keras: `Model(raw, classifier(vectorizer(raw)))`): the outer executor calls
    # forward / backward / compute_mask below, and keeps this model's run state as the
    # call's `_cache`, so a model called twice keeps one state per call.
    _takes_strings = False
    _differentiable = True
    _keep_logits = False
    _last_logits = None
    _batch_input_shape = None
    _mask_policy = "consume"

    @property
    def _takes_indices(self):
        return len(self._input_slots) == 1 and self._input_takes_indices(0)

    @property
    def _cache(self):
        return self._run_state

    @_cache.setter
    def _cache(self, value):
        self._run_state = value

    @property
    def dtype(self):
        layers = self._compute_layers()
        return layers[0].dtype if layers else np.dtype(np.float32)

    def _set_ops(self, ops):
        self._use_ops(ops)

    def _training_changes_forward(self):
        return any(layer._training_changes_forward() for layer in self._compute_layers())

    def _accepts_shape(self, shape):
        return True

    def _build_for(self, input_shape):
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def _call_symbolic(self, inputs, state_tensors=(), training=None):
        from fastseq.layers.input_layer import Node

        main_is_list = isinstance(inputs, (list, tuple))
        main = list(inputs) if main_is_list else [inputs]
        if len(main) != len(self._input_slots):
            raise ValueError(f"Model {self.name!r} takes {len(self._input_slots)} input(s), "
                             f"it was called on {len(main)}")
        shapes = self._output_shapes()
        specs = [(tuple(s), self.dtype) for s in shapes]
        node = Node(self, main, len(main), main_is_list, {} if training is None
                    else {"training": bool(training)}, specs)
        return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)

    def forward(self, x, mask=None, training=False):
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        self._input_grads = training
        outputs, masks = self._forward(xs, training)
        self._input_grads = False
        self._last_masks = masks
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_mask(self, x, mask=None):
        masks = getattr(self, "_last_masks", None) or [None]
        return masks[0] if len(masks) == 1 else masks

    def backward(self, grad_y, need_input_grad=True):
        grads = list(grad_y) if isinstance(grad_y, (list, tuple)) else [grad_y]
        self._input_grads = need_input_grad
        try:
            input_grads = self._backward(grads, [False] * len(grads))
        finally:
            self._input_grads = False
        if not need_input_grad:
            return None
        return input_grads if len(input_grads) > 1 else input_grads[0]

    # ------------------------------------------------------------------ the executor
    def _grad_plan(self):
        """(steps on the gradient path, slots a gradient must reach): a call is on the path
        when its layer has trainable weights or one of its inputs is. Called as a layer of
        another model, this model's inputs may need a gradient too (``_input_grads``)."""
        needs = [False] * self._n_slots
        if self._input_grads:
            for s in self._input_slots:
                needs[s] = True
        on_path = []
        for step in self._steps:
            on = bool(step.layer.trainable_weights) or any(needs[s] for s in step.inputs)
            on_path.append(on)
            for s in step.outputs:
                needs[s] = on
        return on_path, needs

    def _to_layer(self, x, layer):
        """Cast a slot's value for ``layer``: integer indices stay on the host for a layer
        that takes them; float values go to the backend in the layer's dtype (Keras: a
        layer computes in its own dtype)."""
        if layer._takes_indices or layer._takes_strings or isinstance(layer, Model):
            return x  # host indices / strings; a nested model casts for its own layers
        ops = self._ops
        if not ops.owns(x):
            x = ops.asarray(x)
        if x.dtype.kind != "f":
            return ops.asarray(ops.to_numpy(x), dtype=layer.dtype)
        if x.dtype != layer.dtype:
            return ops.cast(x, layer.dtype)
        return x

    def _forward(self, xs, training):
        """Run every step on the model's backend. ``xs``: the host input batches. Returns
        (the output values as backend arrays, their masks); with ``training`` each call on
        the gradient path keeps its cache (``self._run_state``) for :meth:`_backward`."""
        values = [None] * self._n_slots
        masks = [None] * self._n_slots
        for slot, x in zip(self._input_slots, xs):
            values[slot] = x
        on_path = self._grad_plan()[0] if training else [False] * len(self._steps)
        caches, activity = [None] * len(self._steps), []
        folds = () if training else self._embedding_folds()
        for i, step in enumerate(self._steps):
            if i in folds:
                continue  # this Embedding runs inside the next step's LSTM
            layer = step.layer
            # Keras 3: the model's own training flag overrides one recorded in the call
            layer_training = bool(training) and (on_path[i] or layer._training_changes_forward())
            args = [self._to_layer(values[s], layer) for s in step.inputs[:step.n_main]]
            arg_masks = [masks[s] for s in step.inputs[:step.n_main]]
            x = args if step.main_is_list else args[0]
            mask = arg_masks if step.main_is_list else arg_masks[0]
            kwargs = {}
            if len(step.inputs) > step.n_main:
                kwargs["initial_state"] = [self._to_layer(values[s], layer)
                                           for s in step.inputs[step.n_main:]]
            layer._cache = None
            if i - 1 in folds:
                # Embedding -> LSTM in inference: the LSTM gathers its input projections
                # from the indices (the Embedding folded into its kernel)
                embedding_step = self._steps[i - 1]
                indices = values[embedding_step.inputs[0]]
                mask = embedding_step.layer.compute_mask(indices,
                                                         masks[embedding_step.inputs[0]])
                x = None
                y = layer.forward_from_indices(indices, embedding_step.layer, mask=mask)
            else:
                y = layer.forward(x, mask=mask, training=layer_training, **kwargs)
            caches[i] = layer._cache if (training and on_path[i]) else None
            layer._cache = None
            out_mask = layer.compute_mask(x, mask)
            ys = y if isinstance(y, list) else [y]
            out_masks = out_mask if isinstance(out_mask, list) else [out_mask] * len(ys)
            for s, v, m in zip(step.outputs, ys, out_masks):
                values[s], masks[s] = v, m
            reg = getattr(layer, "activity_regularizer", None)
            if reg is not None:
                activity.append((i, reg, ys))
        dtypes = [None if v is None else np.dtype(v.dtype) for v in values]
        self._run_state = (caches, activity, on_path, dtypes) if training else None
        # Keras 3: each output's activity penalty divided by its batch size
        self._activity_loss = sum(
            reg(self._ops.to_numpy(v)) / max(len(v), 1) for _, reg, ys in activity for v in ys)
        return ([values[s] for s in self._output_slots],
                [masks[s] for s in self._output_slots])

    def _embedding_folds(self):
        """The steps i whose Embedding inference runs inside step i + 1's LSTM
        (``LSTM.forward_from_indices``): the LSTM is the only reader of the
        Embedding's output, which is no model output, and takes no initial state."""
        steps, folds = self._steps, set()
        for i in range(len(steps) - 1):
            embedding, lstm = steps[i], steps[i + 1]
            fold = getattr(lstm.layer, "folds_embedding", None)
            if (fold is not None and fold(embedding.layer) and len(embedding.outputs) == 1
                    and lstm.inputs == embedding.outputs and lstm.n_main == 1
                    and not lstm.main_is_list
                    and embedding.outputs[0] not in self._output_slots
                    and sum(embedding.outputs[0] in s.inputs for s in steps) == 1):
                folds.add(i)
        return folds

    def _backward(self, output_grads, fused):
        """Gradients of the outputs (None where an output has no loss) back through the
        steps: sets every trainable Variable's ``grad``."""
        caches, activity, on_path, dtypes = self._run_state
        self._run_state = None
        ops = self._ops
        needs = self._grad_plan()[1]
        grads = [None] * self._n_slots
        logits_slots = set()
        for k, (slot, g) in enumerate(zip(self._output_slots, output_grads)):
            if g is not None:
                grads[slot] = _sum_grads(ops, grads[slot], g)
                if fused[k]:
                    logits_slots.add(slot)
        activity_of = {i: (reg, ys) for i, reg, ys in activity}
        calls = {}
        for step in self._steps:
            calls[id(step.layer)] = calls.get(id(step.layer), 0) + 1
        for i in range(len(self._steps) - 1, -1, -1):
            step = self._steps[i]
            if not on_path[i]:
                continue
            layer = step.layer
            out_grads = [grads[s] for s in step.outputs]
            if i in activity_of:  # d activity_regularizer(y) / d y joins the output gradient
                reg, ys = activity_of[i]
                out_grads = [_sum_grads(ops, g, ops.asarray(
                    reg.gradient(ops.to_numpy(y)) / y.dtype.type(max(len(y), 1))))
                    for g, y in zip(out_grads, ys)]
            if all(g is None for g in out_grads):
                continue
            state_slots = step.inputs[step.n_main:]
            # several outputs (return_state) or gradients owed to initial states: a recurrent
            # layer's backward_with_states (an encoder's states feeding a decoder)
            with_states = len(out_grads) > 1 or any(needs[s] for s in state_slots)
            if with_states and not hasattr(layer, "backward_with_states"):
                raise NotImplementedError(
                    f"Training through {type(layer).__name__} {layer.name!r}'s several outputs "
                    "or initial states is not supported")
            need_input = any(needs[s] for s in step.inputs[:step.n_main])
            shared = calls[id(layer)] > 1
            before = [(v, v.grad) for v in layer.trainable_weights] if shared else ()
            layer._cache = caches[i]
            caches[i] = None
            state_grads = ()
            if with_states:
                grad_in, state_grads = layer.backward_with_states(out_grads,
                                                                  need_input_grad=need_input)
            elif step.outputs[0] in logits_slots:
                grad_in = layer.backward_from_logits(out_grads[0], need_input_grad=need_input)
            else:
                grad_in = layer.backward(out_grads[0], need_input_grad=need_input)
            layer._cache = None
            for var, old in before:
                var.grad = _sum_grads(ops, old, var.grad)
            parts = list(zip(state_slots, state_grads))
            if need_input:
                main = grad_in if step.main_is_list else [grad_in]
                parts = list(zip(step.inputs[:step.n_main], main)) + parts
            for s, g in parts:
                if needs[s] and g is not None:
                    if g.dtype != dtypes[s] and dtypes[s].kind == "f":
                        g = ops.cast(g, dtypes[s])  # back to the dtype the layer below gave
                    grads[s] = _sum_grads(ops, grads[s], g)
        return [grads[s] for s in self._input_slots]

    # ------------------------------------------------------------------ loss
    def _regularized_weights(self):
        # Keras 3: the penalties of the trainable weights (a frozen layer's are left out)
        return [(v, v.regularizer) for v in self.trainable_weights
                if getattr(v, "regularizer", None) is not None]

    def _regularization(self, need_grad):
        """The weight regularization loss; with ``need_grad`` its gradient joins each
        trainable weight's ``grad``."""
        ops = self._ops
        total = 0.0
        for var, reg in self._regularized_weights():
            value = var.value
            total += float(reg(value))
            if need_grad:
                penalty = np.asarray(reg.gradient(value), dtype=var.dtype)
                var.grad = _sum_grads(ops, var.grad, ops.asarray(penalty))
        return total

    def _apply_constraints(self):
        for var in self.trainable_weights:
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(np.asarray(constraint(var.value), dtype=var.dtype))

    def _losses_of(self, ys, y_preds, masks, sws, need_grad):
        """(total loss with the regularization, per-output losses, per-output gradients,
        per-output fused flags) of one forward pass."""
        fused = self._fusion()
        total = 0.0
        values, grads, used = [], [], []
        for k, loss in enumerate(self._output_losses):
            if loss is None:
                values.append(None)
                grads.append(None)
                used.append(False)
                continue
            layer = self._output_layer(k) if fused[k] else None
            logits = layer._last_logits if layer is not None else None
            on_logits = logits is not None
            if layer is not None:
                layer._last_logits = None
            value, grad = self._ops.loss_forward_backward(
                loss, ys[k], logits if on_logits else y_preds[k], masks[k],
                from_logits=on_logits, need_grad=need_grad, sample_weight=sws[k])
            weight = self._loss_weights[k]
            if need_grad and weight != 1.0:
                grad = self._ops.multiply(grad, np.asarray(weight, dtype=grad.dtype))
            total += weight * value
            values.append(value)
            grads.append(grad)
            used.append(on_logits)
        total += self._activity_loss
        return total, values, grads, used

    def _gradient_step(self, xs, ys, sws):
        """Forward, loss and backward of one prepared batch: sets every trainable
        Variable's ``grad`` (the regularization's included) and changes no weight. Returns
        (total loss, per-output losses, outputs, output masks). A data-parallel worker
        calls this, exchanges the grads, then :meth:`_apply_step`."""
        self._fusion()  # before the forward pass: the output layers keep their logits
        on_path, needs = self._grad_plan()
        for step, on in zip(self._steps, on_path):
            if on and not step.layer._differentiable and any(needs[s] for s in step.inputs):
                raise RuntimeError(
                    f"{type(step.layer).__name__} layer {step.layer.name!r} cannot be trained "
                    "through: it has no backward pass and there are trainable layers below it. "
                    "Freeze them (trainable=False) or use it for inference only; nothing was "
                    "changed")
        for var in self.trainable_weights:
            var.grad = None
        y_preds, masks = self._forward(xs, training=True)
        total, values, grads, fused = self._losses_of(ys, y_preds, masks, sws, need_grad=True)
        self._backward(grads, fused)
        total += self._regularization(need_grad=True)
        return total, values, y_preds, masks

    def _apply_step(self):
        """The optimizer's update from the Variables' ``grad``, then the constraints."""
        self.optimizer.apply_gradients(self.trainable_weights)
        self._apply_constraints()

    def _train_step(self, xs, ys, sws):
        result = self._gradient_step(xs, ys, sws)
        self._apply_step()
        return result

    def _eval_step(self, xs, ys, sws):
        """(loss, per-output losses, outputs, output masks) of one batch, no training."""
        self._fusion()
        y_preds, masks = self._forward(xs, training=False)
        total, values, _, _ = self._losses_of(ys, y_preds, masks, sws, need_grad=False)
        total += self._regularization(need_grad=False)
        return total, values, y_preds, masks

    def _update_metrics(self, ys, y_preds, masks, sws):
        for k, entries in enumerate(self._output_metrics):
            if not entries or ys[k] is None:
                continue
            plain = [m for _, m, weighted in entries if not weighted]
            weighted = [m for _, m, w in entries if w]
            self._ops.update_metrics(plain, ys[k], y_preds[k], masks[k])
            if weighted:
                self._ops.update_metrics(weighted, ys[k], y_preds[k], masks[k],
                                         sample_weight=sws[k])

    def _logs(self, tracker, output_trackers=None):
        logs = {"loss": tracker.result()}
        if output_trackers:
            for name, t in output_trackers.items():
                logs[f"{name}_loss"] = t.result()
        for entries in self._output_metrics:
            for log_name, metric, _ in entries:
                logs[log_name] = float(metric.result())
        return logs

    def _output_trackers(self):
        if len(self._output_losses) < 2:
            return None
        return {name: _Tracker() for name, loss in zip(self._output_names_for_compile(),
                                                       self._output_losses)
                if loss is not None}

    @staticmethod
    def _track(tracker, output_trackers, names, total, values, n):
        tracker.update(total, n)
        if output_trackers:
            for name, value in zip(names, values):
                if name in output_trackers and value is not None:
                    output_trackers[name].update(value, n)

    # ------------------------------------------------------------------ batches
    @staticmethod
    def _slice(arrays, index):
        return [None if a is None else a[index] for a in arrays]

    def _array_batches(self, xs, ys, sws, batch_size, order=None, limit=None):
        """(x, y, sample_weight) batches of the arrays, in ``order`` (None: as stored);
        at most ``limit`` of them. A memory-mapped input is read and converted one batch
        at a time (its rows in ascending order within a shuffled batch: fewer seeks)."""
        n = len(xs[0])
        stop = n if limit is None else min(n, limit * batch_size)
        lazy = [isinstance(a, np.memmap) for a in xs]
        for start in range(0, stop, batch_size):
            index = slice(start, start + batch_size) if order is None \
                else order[start:start + batch_size]
            if any(lazy):
                xb = [self._read_rows(a, index) if m else a[index] for a, m in zip(xs, lazy)]
                xb = [self._prepare_one_input(b, k, "x") if m else b
                      for k, (b, m) in enumerate(zip(xb, lazy))]
            else:
                xb = self._slice(xs, index)
            yield xb, self._slice(ys, index), self._slice(sws, index)

    @staticmethod
    def _read_rows(array, index):
        """Rows ``index`` of a memory-mapped array as an in-memory array; shuffled rows are
        read in ascending order (fewer seeks) and put back in the batch's order."""
        if isinstance(index, slice):
            return np.array(array[index])
        rows = np.sort(index)
        return np.asarray(array[rows])[np.searchsorted(rows, index)]

    def _predict_batches(self, batches, callbacks=None):
        outputs = None
        parts_list = []
        for step, (xb, _, _) in enumerate(batches):
            if callbacks is not None:
                callbacks.on_predict_batch_begin(step)
            parts = self._forward_numpy(xb)
            parts_list.append(parts)
            if callbacks is not None:
                callbacks.on_predict_batch_end(
                    step, {"outputs": parts[0] if self._single_output else parts})
        if not parts_list:
            return None
        outputs = [np.concatenate([p[k] for p in parts_list]) if len(parts_list) > 1
                   else parts_list[0][k] for k in range(len(parts_list[0]))]
        return outputs

    def _predict_arrays(self, xs, batch_size, callbacks=None):
        order = self._length_order(xs)
        if order is not None:
            # masked padding trimmed: samples sorted by the span of their tokens, each
            # batch cut to its own first and last real step (per-sample results unchanged)
            batches = (([_trim_padding(x)], None, None) for (x,), _, _ in self._array_batches(
                xs, [None], [None], batch_size, order))
        else:
            batches = self._array_batches(xs, [None] * len(xs), [None] * len(xs), batch_size)
        outputs = self._predict_batches(batches, callbacks)
        if outputs is None:  # no samples
            outputs = self._forward_numpy([np.asarray(a[:0]) for a in xs])
        elif order is not None:
            for out in outputs:
                out[order] = out.copy()
        return outputs[0] if self._single_output else outputs

    def _length_order(self, xs):
        """For a model whose padding is masked away (Embedding(mask_zero=True) first, then
        only layers that skip masked steps, until the time axis is reduced), the order of
        the samples by the span of their real tokens; else None."""
        if len(xs) != 1 or isinstance(xs[0], np.memmap) or xs[0].ndim != 2 \
                or len(xs[0]) < 2 or not self._padding_is_masked():
            return None
        x = xs[0]
        real = x != 0
        first = np.argmax(real, axis=1)
        last = x.shape[1] - np.argmax(real[:, ::-1], axis=1)
        span = np.where(real.any(axis=1), last - first, 0)
        return np.argsort(span, kind="stable")

    def _padding_is_masked(self):
        """True when trimming steps that are masked in every sample of a batch cannot
        change any output (see :meth:`_length_order`); Sequential models only."""
        if not isinstance(self, Sequential) or not self._layers:
            return False
        first = self._layers[0]
        if type(first).__name__ != "Embedding" or not getattr(first, "mask_zero", False):
            return False
        for layer in self._layers[1:]:
            kind = type(layer).__name__
            if kind in _MASKED_SEQUENCE_LAYERS:
                continue
            if kind in _RECURRENT_LAYERS or kind == "Bidirectional":
                if getattr(layer, "return_state", False):
                    return False
                if not layer.return_sequences:
                    return True  # the time axis is gone: anything may follow
                continue
            if kind in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
                return True
            return False
        return False

    def _evaluate_batches(self, batches, callbacks=None):
        """Loss (batch-size-weighted mean) and metrics over the batches, no training
        caches."""
        tracker, output_trackers = _Tracker(), self._output_trackers()
        names = self._output_names_for_compile()
        self.reset_metrics()
        self._fusion()
        logs = self._logs(tracker, output_trackers)
        for step, (xb, yb, swb) in enumerate(batches):
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            total, values, y_preds, masks = self._eval_step(xb, yb, swb)
            self._track(tracker, output_trackers, names, total, values, len(xb[0]))
            self._update_metrics(yb, y_preds, masks, swb)
            logs = self._logs(tracker, output_trackers)
            if callbacks is not None:
                callbacks.on_test_batch_end(step, logs)
        return logs

    @staticmethod
    def _is_batch_source(data):
        from fastseq.utils.data_adapter import is_batch_source

        return is_batch_source(data)

    def _batch_source(self, x, y, sample_weight, caller, steps, shuffle=False, **feed):
        """A :class:`fastseq.utils.data_adapter.BatchSource` over ``x`` when it yields
        batches (a generator, an iterator, a Sequence, ...), else None (arrays)."""
        if not self._is_batch_source(x):
            return None
        if y is not None or sample_weight is not None:
            raise ValueError(f"{caller}: when x is a generator, a Sequence or an iterable of "
                             "batches, y and sample_weight come in its batches ((x, y) or "
                             "(x, y, sample_weight)); do not pass them as arguments")
        from fastseq.utils.data_adapter import BatchSource

        what = "x" if caller in ("fit", "evaluate", "predict") else caller
        return BatchSource(x, steps=steps, shuffle=shuffle, what=what, **feed)

    def _source_batches(self, source, class_weight=None, targets=True):
        """Prepared (x, y, sample_weight) lists of each batch of ``source``; a batch that
        does not fit the model raises naming the batch."""
        for step, x, y, sample_weight in source.epoch():
            try:
                if not targets:
                    xs = self._prepare_inputs(x)
                    self._build_from_data(xs)
                    yield xs, None, None
                    continue
                xs, ys, sws = self._prepare_xy(x, y, sample_weight)
                sws = self._class_weights(class_weight, ys, sws)
                if len(xs[0]) == 0:
                    length = (f" (its __len__ says {source.num_batches} batches: more than "
                              "it has?)" if source.is_sequence else "")
                    raise ValueError(f"the batch is empty (0 samples){length}")
            except (ValueError, TypeError) as err:
                raise type(err)(f"{source.what}: batch {step} of the "
                                f"{type(source.data).__name__}: {err}") from err
            yield xs, ys, sws

    def _prepare_xy(self, x, y, sample_weight, names=("x", "y", "sample_weight"),
                    lazy=False):
        xs = self._prepare_inputs(x, names[0], lazy=lazy)
        n = len(xs[0])
        self._build_from_data(xs)
        ys = self._prepare_targets(y, n, names[1])
        sws = self._prepare_sample_weights(sample_weight, n, names[2])
        self._check_targets(ys, xs)
        return xs, ys, sws

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, workers=None,
            use_multiprocessing=None, max_queue_size=None, bucket_by_length=False,
            **kwargs):
        """Train for ``epochs`` epochs; returns the History (``.history`` holds ``loss``,
        the metrics and their ``val_`` versions).

        ``x`` (and ``validation_data``) may be arrays, or a generator / iterator / iterable
        of ``(x, y)`` or ``(x, y, sample_weight)`` batches, or a
        :class:`fastseq.utils.Sequence` (Keras's ``PyDataset``): then the batches are
        prepared in the background (``workers`` threads, a queue of ``max_queue_size``)
        while the current one trains, ``steps_per_epoch`` / ``validation_steps`` bound
        each epoch, and a generator goes on where the previous epoch stopped (Keras).

        ``bucket_by_length=True`` with ``x`` a list of ragged sequences (token ids) batches
        sequences of similar length together, each batch padded ("post") only to its own
        longest (:func:`fastseq.utils.bucket_by_length`); with ``mask_zero`` every sample
        gets the result it would padded to one length, for far less padding."""
        from fastseq import callbacks as _callbacks

        if "nb_epoch" in kwargs:
            warnings.warn("The `nb_epoch` argument in `fit` has been renamed `epochs`.",
                          DeprecationWarning, stacklevel=2)
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: unexpected keyword argument(s) {sorted(kwargs)}")
        self._check_compiled()
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        epochs = int(epochs)
        verbose = 1 if verbose == "auto" else int(verbose)
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if steps_per_epoch is not None:
            steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch")
        feed = dict(workers=workers, use_multiprocessing=use_multiprocessing,
                    max_queue_size=max_queue_size)
        if bucket_by_length:
            x, y, sample_weight = _bucketed(x, y, sample_weight, batch_size), None, None
            if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
                val_sw = validation_data[2] if len(validation_data) == 3 else None
                validation_data = _bucketed(validation_data[0], validation_data[1], val_sw,
                                            validation_batch_size or batch_size)

        source = self._batch_source(x, y, sample_weight, "fit", steps_per_epoch,
                                    shuffle=bool(shuffle), **feed)
        if source is not None:
            if validation_split:
                raise ValueError("fit: validation_split needs arrays; with a generator or a "
                                 "Sequence give validation_data")
            xs = ys = sws = None
        else:
            xs, ys, sws = self._prepare_xy(x, y, sample_weight, lazy=True)
            if len(xs[0]) == 0:
                raise ValueError("fit: x is empty (0 samples)")
            sws = self._class_weights(class_weight, ys, sws)

        val = val_source = None
        if validation_data is not None and self._is_batch_source(validation_data):
            val_source = self._batch_source(validation_data, None, None, "validation_data",
                                            validation_steps, shuffle=False, **feed)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"val_sample_weight), got {type(validation_data).__name__}"
                )
            val_sw = validation_data[2] if len(validation_data) == 3 else None
            val = self._prepare_xy(validation_data[0], validation_data[1], val_sw,
                                   ("x_val", "y_val", "val_sample_weight"), lazy=True)
        elif validation_split and source is None:
            # the last fraction, taken before any shuffling (Keras)
            total = len(xs[0])
            split_at = int(math.floor(total * (1.0 - validation_split)))
            if split_at == 0 or split_at == total:
                raise ValueError(
                    f"validation_split={validation_split} leaves no training or no validation "
                    f"samples out of {total}"
                )
            tail, head = slice(split_at, None), slice(0, split_at)
            val = tuple(self._slice(a, tail) for a in (xs, ys, sws))
            xs, ys, sws = (self._slice(a, head) for a in (xs, ys, sws))
        val_batch_size = validation_batch_size or batch_size

        if source is None:
            n = len(xs[0])
            steps = -(-n // batch_size)
            if steps_per_epoch is not None:
                steps = min(steps, steps_per_epoch)
        else:
            steps = source.num_batches
        callback_list = _callbacks.CallbackList(
            callbacks, model=self, add_history=True, add_progbar=verbose != 0,
            verbose=verbose, epochs=epochs, steps=steps,
        )
        names = self._output_names_for_compile()
        self.stop_training = False
        try:
            return self._fit_epochs(
                callback_list, callbacks, names, epochs, initial_epoch, source,
                (xs, ys, sws), batch_size, steps, shuffle, class_weight, val, val_source,
                val_batch_size, validation_freq)
        finally:
            for feeder in (source, val_source):
                if feeder is not None:
                    feeder.close()

    def _fit_epochs(self, callback_list, callbacks, names, epochs, initial_epoch, source,
                    arrays, batch_size, steps, shuffle, class_weight, val, val_source,
                    val_batch_size, validation_freq):
        from fastseq.utils import get_rng

        xs, ys, sws = arrays
        nan_warned = False
        has_nan_callback = any(type(c).__name__ == "TerminateOnNaN" for c in (callbacks or []))
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            tracker, output_trackers = _Tracker(), self._output_trackers()
            callback_list.on_epoch_begin(epoch)
            if source is not None:
                batches = self._source_batches(source, class_weight)
            else:
                n = len(xs[0])
                order = None
                if shuffle == "batch":
                    blocks = get_rng().permutation(-(-n // batch_size))
                    order = np.concatenate([np.arange(b * batch_size,
                                                      min((b + 1) * batch_size, n))
                                            for b in blocks])
                elif shuffle:
                    order = get_rng().permutation(n)
                batches = self._array_batches(xs, ys, sws, batch_size, order, limit=steps)
            for step, (xb, yb, swb) in enumerate(batches):
                callback_list.on_train_batch_begin(step)
                total, values, y_preds, masks = self._train_step(xb, yb, swb)
                self._track(tracker, output_trackers, names, total, values, len(xb[0]))
                self._update_metrics(yb, y_preds, masks, swb)
                logs = self._logs(tracker, output_trackers)
                if not math.isfinite(total) and not has_nan_callback and not nan_warned:
                    nan_warned = True
                    warnings.warn(
                        f"fit: the loss is {total} at epoch {epoch + 1}, batch {step}; "
                        "training goes on (pass callbacks=[TerminateOnNaN()] to stop it)",
                        RuntimeWarning,
                        stacklevel=4,  # the caller of fit
                    )
                callback_list.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if source is not None and source.ran_out:
                self.stop_training = True  # Keras: the input ran out, training stops
            epoch_logs = dict(logs)
            has_val = val is not None or val_source is not None
            if has_val and (epoch + 1) % validation_freq == 0 and not self.stop_training:
                # as Keras: the validation pass calls the test hooks (the progress bar
                # stays silent inside fit)
                callback_list.on_test_begin()
                val_batches = (self._source_batches(val_source) if val_source is not None
                               else self._array_batches(*val, val_batch_size))
                val_logs = self._evaluate_batches(val_batches, callbacks=callback_list)
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
                 steps=None, callbacks=None, return_dict=False, bucket_by_length=False,
                 **kwargs):
        """Loss, or [loss, *metrics], over (x, y); batch-size-weighted as Keras. ``x`` may
        be a generator / Sequence (see :meth:`fit`), or ragged sequences with
        ``bucket_by_length=True``."""
        from fastseq import callbacks as _callbacks

        if bucket_by_length:
            x = _bucketed(x, y, sample_weight, 32 if batch_size is None else batch_size)
            y = sample_weight = None

        feed = {k: kwargs.pop(k) for k in ("workers", "use_multiprocessing", "max_queue_size")
                if k in kwargs}
        if kwargs:
            raise TypeError(f"evaluate: unexpected keyword argument(s) {sorted(kwargs)}")
        self._check_compiled()
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        verbose = 1 if verbose == "auto" else int(verbose)
        if steps is not None:
            steps = positive_int(steps, "steps")
        source = self._batch_source(x, y, sample_weight, "evaluate", steps, **feed)
        try:
            if source is not None:
                batches, count = self._source_batches(source), source.num_batches
            else:
                xs, ys, sws = self._prepare_xy(x, y, sample_weight, lazy=True)
                count = -(-len(xs[0]) // batch_size)
                if steps is not None:
                    count = min(count, steps)
                order = self._length_order(xs) if steps is None else None
                batches = self._array_batches(xs, ys, sws, batch_size, order, limit=steps)
                if order is not None:  # masked padding trimmed, as in predict
                    batches = (([_trim_padding(xb[0])], yb, swb) for xb, yb, swb in batches)
            callback_list = _callbacks.CallbackList(
                callbacks, model=self, add_history=False, add_progbar=verbose != 0,
                verbose=verbose, epochs=1, steps=count,
            )
            callback_list.on_test_begin()
            logs = self._evaluate_batches(batches, callbacks=callback_list)
        finally:
            if source is not None:
                source.close()
        callback_list.on_test_end(logs)
        return self._result(logs, return_dict)

    def _result(self, logs, return_dict):
        if return_dict:
            return dict(logs)
        names = self._log_names()
        if len(names) == 1:
            return logs["loss"]
        return [logs[name] for name in names]

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None,
                bucket_by_length=False, **kwargs):
        """The model's output for ``x`` (inference: no dropout, no training caches). ``x``
        may be a generator / Sequence (see :meth:`fit`), or ragged sequences with
        ``bucket_by_length=True`` (outputs in the order of ``x``)."""
        if bucket_by_length:
            batches = _bucketed(x, None, None, 32 if batch_size is None else batch_size)
            out = self.predict(batches, verbose=verbose, steps=steps, callbacks=callbacks,
                               **kwargs)
            if isinstance(out, list):
                return [batches.restore_order(o) for o in out]
            return batches.restore_order(out)
        feed = {k: kwargs.pop(k) for k in ("workers", "use_multiprocessing", "max_queue_size")
                if k in kwargs}
        if kwargs:
            raise TypeError(f"predict: unexpected keyword argument(s) {sorted(kwargs)}")
        batch_size = 32 if batch_size is None else positive_int(batch_size, "batch_size")
        if steps is not None:
            steps = positive_int(steps, "steps")
        source = self._batch_source(x, None, None, "predict", steps, **feed)
        if source is None:
            xs = self._prepare_inputs(x, lazy=True)
            self._build_from_data(xs)
            count = -(-len(xs[0]) // batch_size)
            if steps is not None:
                count = min(count, steps)
                xs = self._slice(xs, slice(0, count * batch_size))
        else:
            count = source.num_batches
        callback_list = None
        verbose = 1 if verbose == "auto" else int(verbose)
        if callbacks or verbose:
            from fastseq import callbacks as _callbacks

            callback_list = _callbacks.CallbackList(
                callbacks, model=self, add_history=False, add_progbar=verbose != 0,
                verbose=verbose, epochs=1, steps=count,
            )
            callback_list.on_predict_begin()
        try:
            if source is None:
                out = self._predict_arrays(xs, batch_size, callbacks=callback_list)
            else:
                outputs = self._predict_batches(self._source_batches(source, targets=False),
                                                callbacks=callback_list)
                if outputs is None:
                    raise ValueError("predict: the generator / Sequence gave no batch")
                out = outputs[0] if self._single_output else outputs
        finally:
            if source is not None:
                source.close()
        if callback_list is not None:
            callback_list.on_predict_end()
        return out

    def __call__(self, x, training=False):
        from fastseq.layers.input_layer import is_symbolic

        if is_symbolic(x):
            return self._call_symbolic(x, training=None if training is False else training)
        xs = self._prepare_inputs(x)
        self._build_from_data(xs)
        parts = self._forward_numpy(xs, training=bool(training))
        self._run_state = None  # nothing follows to take the caches
        return parts[0] if self._single_output else parts

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       reset_metrics=True, return_dict=False):
        """One gradient step on one batch; returns the loss, or [loss, *metrics]."""
        self._check_compiled()
        xs, ys, sws = self._prepare_xy(x, y, sample_weight)
        sws = self._class_weights(class_weight, ys, sws)
        total, values, y_preds, masks = self._train_step(xs, ys, sws)
        self._update_metrics(ys, y_preds, masks, sws)
        return self._batch_result(total, values, reset_metrics, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True,
                      return_dict=False):
        """Loss (and metrics) on one batch, without training."""
        self._check_compiled()
        xs, ys, sws = self._prepare_xy(x, y, sample_weight)
        self._fusion()
        total, values, y_preds, masks = self._eval_step(xs, ys, sws)
        self._update_metrics(ys, y_preds, masks, sws)
        return self._batch_result(total, values, reset_metrics, return_dict)

    def _batch_result(self, total, values, reset_metrics, return_dict):
        tracker, output_trackers = _Tracker(), self._output_trackers()
        self._track(tracker, output_trackers, self._output_names_for_compile(), total, values,
                    1)
        logs = self._logs(tracker, output_trackers)
        if reset_metrics:
            self.reset_metrics()
        return self._result(logs, return_dict)

    def predict_on_batch(self, x):
        xs = self._prepare_inputs(x)
        self._build_from_data(xs)
        parts = self._forward_numpy(xs)
        return parts[0] if self._single_output else parts

    def _forward_numpy(self, xs, training=False):
        """The model's outputs for host batches ``xs`` as a list of NumPy arrays."""
        ys, _ = self._forward(xs, training=training)
        for layer in self._layers:  # a kept logit would pin a device array
            layer._last_logits = None
        return [self._ops.to_numpy(t) for t in ys]  # one value per output slot

    def __reduce__(self):
        """Pickled as config + weights + optimizer state, never caches nor device arrays
        (fastseq/_pickling.py), so Ray, multiprocessing and pickle move models."""
        from fastseq._pickling import reduce_model

        return reduce_model(self)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, {len(self._layers)} layers>"


def _is_input_layer(layer):
    return type(layer).__name__ == "InputLayer"


def _map_graph(inputs, outputs):
    """Keras 3's ``map_graph`` (keras/src/ops/function.py): the nodes between ``inputs``
    and ``outputs`` in an order that computes every input before its use (deepest first)
    and the layers in Keras's order (by depth, then by first visit from the outputs), which
    is also the order of ``model.weights``. Raises on a disconnected graph or a cycle."""
    input_ids = {id(t) for t in inputs}
    finished, in_progress = set(), set()
    ordered, first_visit = [], {}

    def visit(tensor):
        node = tensor._node
        layer = node.layer
        if node in finished:
            return
        if node in in_progress:
            raise ValueError(f"Tensor {tensor} from layer {layer.name!r} is part of a cycle.")
        first_visit.setdefault(layer, len(first_visit))
        in_progress.add(node)
        if not node.is_input:
            for t in node.inputs:
                visit(t)
        finished.add(node)
        in_progress.discard(node)
        ordered.append(node)

    for t in outputs:
        visit(t)
    in_graph = set(ordered)
    node_depth, layer_depth = {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[node] = depth
        for parent in node.parent_nodes:
            if parent in in_graph:
                node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for t in inputs:  # an input no output depends on is still a layer of the model
        node = t._node
        if node.layer not in layer_depth:
            layer_depth[node.layer] = 0
            first_visit[node.layer] = -1
            node_depth[node] = 0
    layers = sorted(layer_depth, key=lambda l: (-layer_depth[l], first_visit[l]))
    nodes = sorted(node_depth, key=lambda n: -node_depth[n])
    computable = set(input_ids)
    done = []
    for node in nodes:
        for t in node.inputs:
            if id(t) not in computable:
                raise ValueError(
                    f"Graph disconnected: cannot find parent for tensor {t} at layer "
                    f"{node.layer.name!r}. The following previous layers were accessed without "
                    f"issue: {done}")
        if node.is_input and id(node.outputs[0]) not in computable:
            raise ValueError(
                f"Graph disconnected: cannot obtain value for tensor {node.outputs[0]} at "
                f"layer {node.layer.name!r}: it is an Input that is not in the model's inputs. "
                f"The following previous layers were accessed without issue: {done}")
        done.append(node.layer.name)
        computable.update(id(t) for t in node.outputs)
    names = [l.name for l in layers]
    for name in names:
        if names.count(name) != 1:
            raise ValueError(f'The name "{name}" is used {names.count(name)} times in the model. '
                             "All layer names should be unique.")
    return nodes, layers


def _unique_output_names(outputs):
    names = []
    for t in outputs:
        layer = t._node.layer
        name = layer.name if len(t._node.outputs) == 1 else f"{layer.name}_{t._index}"
        while name in names:
            name = name + "_1"
        names.append(name)
    return names


def _functional_from_config(cls, config, custom_objects=None):
    """A functional model from Keras 3's config (``inbound_nodes`` as ``{"args": [...],
    "kwargs": {...}}`` with ``__keras_tensor__`` records) or Keras 2's (lists of
    ``[layer_name, node_index, tensor_index, kwargs]``)."""
    from fastseq.layers.input_layer import KerasTensor

    created = {}
    pending = []
    for entry in config.get("layers", []):
        layer = _base.deserialize(entry, custom_objects=custom_objects)
        name = entry.get("name") or entry.get("config", {}).get("name") or layer.name
        created[name] = layer
        if not _is_input_layer(layer):
            pending.append((layer, list(entry.get("inbound_nodes") or [])))
    produced = {}  # (layer name, node index) -> output tensors
    for name, layer in created.items():
        if _is_input_layer(layer):
            produced[(name, 0)] = [layer.output]
    calls = {}

    def tensor_of(history):
        key = (history[0], int(history[1]))
        if key not in produced:
            return None
        return produced[key][int(history[2])]

    def resolve(value):
        """A config value with its tensor records replaced by tensors (None: not ready)."""
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return tensor_of(value["config"]["keras_history"])
        if isinstance(value, (list, tuple)):
            items = [resolve(v) for v in value]
            return None if any(i is None for i in items) else items
        return value

    def call(layer, node):
        if isinstance(node, dict):  # Keras 3
            args = node.get("args", [])
            kwargs = dict(node.get("kwargs") or {})
            if len(args) != 1:
                raise ValueError(f"layer {layer.name!r}: a call with {len(args)} positional "
                                 "arguments is not supported")
            main = resolve(args[0])
            if main is None:
                return False
            states = kwargs.pop("initial_state", None)
            if states is not None:
                states = resolve(states)
                if states is None:
                    return False
                kwargs["initial_state"] = states
            kwargs.pop("mask", None)
        else:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            tensors = [tensor_of(item) for item in node]
            if any(t is None for t in tensors):
                return False
            main = tensors if len(tensors) > 1 else tensors[0]
            kwargs = {}
            for item in node:
                if len(item) > 3 and item[3]:
                    kwargs.update({k: v for k, v in item[3].items() if k == "training"})
        out = layer(main, **kwargs)
        index = calls.get(layer.name, 0)
        calls[layer.name] = index + 1
        produced[(layer.name, index)] = out if isinstance(out, list) else [out]
        return True

    progress = True
    while pending and progress:
        progress = False
        still = []
        for layer, nodes in pending:
            while nodes and call(layer, nodes[0]):
                nodes.pop(0)
                progress = True
            if nodes:
                still.append((layer, nodes))
        pending = still
    if pending:
        raise ValueError("model config: cannot connect layers "
                         f"{[layer.name for layer, _ in pending]}: their inputs are never made")

    def endpoints(spec):
        if isinstance(spec, dict):
            return {k: endpoints(v) for k, v in spec.items()}
        if spec and isinstance(spec[0], (list, tuple)):
            return [endpoints(s) for s in spec]
        tensor = tensor_of(spec)
        if not isinstance(tensor, KerasTensor):
            raise ValueError(f"model config: no tensor {spec}")
        return tensor

    inputs = endpoints(config["input_layers"])
    outputs = endpoints(config["output_layers"])
    # Keras writes a single endpoint as a one-item list, and reads it back as one tensor
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1:
        outputs = outputs[0]
    return cls(inputs, outputs, name=config.get("name"))


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Embedding(...), LSTM(...), Dense(...)])`` or
    ``model.add(layer)``, optionally after ``fastseq.Input(shape)`` / an ``InputLayer``.
    Built from the input's or the first layer's ``input_shape`` / ``input_length``, or on
    the first data it sees."""

    _default_name = "sequential"

    def __init__(self, layers=None, name=None, trainable=True):
        self._init_state(name)
        self._input_layer = None
        self._build_input_shape = None  # (None, ...) the model was built for
        self._built_from_data = False
        self._single_output = True
        if layers is not None:
            if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
                layers = [layers]
            for layer in layers:
                self.add(layer)
        if not trainable:
            self.trainable = False

    # ------------------------------------------------------------------ structure
    def add(self, layer):
        """Append a layer (built at once when the model's input shape is known). The first
        item may be ``fastseq.Input(...)`` or an ``InputLayer``: it sets the input shape."""
        from fastseq.layers.input_layer import InputLayer, KerasTensor

        if isinstance(layer, KerasTensor):
            if not isinstance(layer._node.layer, InputLayer):
                raise TypeError("A Sequential model takes fastseq.Input(...) tensors only as its "
                                f"first item; got the output of layer {layer._node.layer.name!r}")
            layer = layer._node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("An InputLayer (or fastseq.Input) can only be the first item "
                                 "of a Sequential model")
            self._input_layer = layer
            return
        if not isinstance(layer, (Layer, Model)):
            raise TypeError(
                "The added layer must be an instance of fastseq.layers.Layer (or a model), got "
                f"{type(layer).__name__}: {layer!r}"
            )
        if isinstance(layer, Model) and len(layer._input_slots) != 1:
            raise ValueError(f"Model {layer.name!r} takes {len(layer._input_slots)} inputs: a "
                             "Sequential model passes one")
        if getattr(layer, "_multi_input", False):
            raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) merges several "
                             "inputs: use it in a functional Model, not in a Sequential one")
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
        elif not self._layers and (self._input_layer is not None
                                   or layer._batch_input_shape is not None):
            self._layers.append(layer)
            shape = (self._input_layer.batch_shape if self._input_layer is not None
                     else layer._batch_input_shape)
            try:
                self.build(shape)
            except Exception:
                self._layers.pop()
                raise
            self._fused = None
            return
        self._layers.append(layer)
        self._fused = None
        if self.built:
            self._make_steps()

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self._fused = None
        if not self._layers:
            self.built = False
            self._build_input_shape = None
            self._steps = []
        else:
            self._make_steps()
        return layer

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch dimension first)."""
        if input_shape is None:
            input_shape = self._build_input_shape
            if input_shape is None and self._input_layer is not None:
                input_shape = self._input_layer.batch_shape
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
        self._make_steps()

    def _make_steps(self):
        """The chain: slot i -> layer i -> slot i + 1 (the last layer may fill several)."""
        steps = []
        for i, layer in enumerate(self._layers):
            last = i == len(self._layers) - 1
            several = last and isinstance(layer.output_shape, list)
            outputs = tuple(range(i + 1, i + 1 + len(layer.output_shape))) if several \
                else (i + 1,)
            steps.append(_Step(layer, (i,), 1, False, outputs))
        self._steps = steps
        self._input_slots = [0]
        self._output_slots = list(steps[-1].outputs)
        self._n_slots = steps[-1].outputs[-1] + 1
        self._single_output = len(self._output_slots) == 1
        self._fused = None

    def _build_from_data(self, xs):
        if not self.built:
            self.build((None,) + tuple(xs[0].shape[1:]))
            self._built_from_data = True

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

    @property
    def inputs(self):
        return None if self._input_layer is None else [self._input_layer.output]

    @property
    def outputs(self):
        return None

    @property
    def input_names(self):
        return [self._input_layer.name] if self._input_layer is not None else ["input"]

    @property
    def output_names(self):
        return self._output_names_for_compile()

    def _output_names_for_compile(self):
        return [self._layers[-1].name] if self._layers else ["output"]

    def _output_shapes(self):
        return [self.output_shape]

    def _output_shapes_for(self, x_shapes):
        return [self._output_shape_for(x_shapes[0])]

    def _output_shape_for(self, x_shape):
        """The model's output shape for an input of shape ``x_shape``."""
        shape = tuple(x_shape)
        for layer in self._layers:
            if isinstance(shape, list):
                break
            shape = layer.compute_output_shape(shape)
        return shape

    def _summary_rows(self):
        return [(f"{layer.name} ({type(layer).__name__})", layer.output_shape,
                 layer.count_params(), []) for layer in self._layers]

    # ------------------------------------------------------------------ config
    def get_config(self):
        layers = [_serialize(layer) for layer in self._layers]
        if self._input_layer is not None:
            layers.insert(0, _base.serialize(self._input_layer))
        config = {"name": self.name, "layers": layers}
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
            # an InputLayer first gives the shape, so each layer builds as it is added
            model.add(_base.deserialize(layer_config, custom_objects=custom_objects))
        if not model.built and build_shape is not None and model._layers:
            model.build(tuple(build_shape))
            model._built_from_data = config.get("build_input_shape") is not None
        return model

    # ------------------------------------------------------------------ data
    def _first_layer_takes_indices(self):
        return bool(self._layers) and self._layers[0]._takes_indices

    def _prepare_inputs(self, x, name="x", lazy=False):
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            x = x[0]
        if isinstance(x, dict):
            raise TypeError(f"{name}: a Sequential model takes one array, got a dict")
        if x is None:
            raise ValueError(f"{name} is None: give the input data")
        if not self._layers:
            raise ValueError("The model has no layers")
        if lazy and isinstance(x, np.memmap):
            x = _checked_memmap(x, name)  # each batch is converted when it is read
        else:
            x = self._prepare_one_input(x, 0, name)
        self._check_input_shape(x, name)
        return [x]

    def _prepare_one_input(self, x, k, name):
        if self._layers[0]._takes_strings:
            return _string_array(x, name)
        if self._first_layer_takes_indices():
            x = as_indices(x, self._layers[0].name)
        else:
            x = _numeric_array(x, name)
            if x.dtype.kind == "f":
                _check_finite_input(x, name)
            x = np.ascontiguousarray(x, dtype=self._layers[0].dtype)
        if x.ndim == 0:
            raise ValueError(f"{name} must have a batch axis, got a scalar")
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

    def __repr__(self):
        return f"<Sequential name={self.name!r}, {len(self._layers)} layers>"


def _serialize(layer):
    """A layer's ``{'class_name', 'config'}``; a nested model's is Keras 3's 'Functional'
    (or 'Sequential') with its whole config."""
    if isinstance(layer, Model):
        name = "Sequential" if isinstance(layer, Sequential) else "Functional"
        return {"class_name": name, "config": layer.get_config()}
    return _base.serialize(layer)


# a model's config inside another model's deserializes by its class name
for _name, _cls in (("Functional", Model), ("Model", Model), ("Sequential", Sequential)):
    _base._LAYER_CLASSES.setdefault(_name, _cls)


def model_from_config(config, custom_objects=None):
    """A model from ``{'class_name': 'Sequential' | 'Functional' | 'Model', 'config':
    {...}}``."""
    class_name = config.get("class_name")
    if class_name == "Sequential":
        return Sequential.from_config(config["config"], custom_objects=custom_objects)
    if class_name in ("Functional", "Model"):
        return Model.from_config(config["config"], custom_objects=custom_objects)
    raise ValueError(
        f"fastseq builds Sequential and functional models, got class_name={class_name!r}")


def model_from_json(json_string, custom_objects=None):
    return model_from_config(json.loads(json_string), custom_objects=custom_objects)


def load_model(filepath, custom_objects=None, compile=True, **kwargs):
    """Load a model saved by ``model.save`` (architecture, weights, optimizer state)."""
    from fastseq import saving

    if custom_objects is not None or not compile or kwargs:
        return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                                 **kwargs)
    return saving.load_model(filepath)
