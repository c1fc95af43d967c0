"""Configs and optimizer state translated between fastseq and Keras 3's ``.keras`` files.

fastseq's configs are Keras 2's (``batch_input_shape``, ``"dtype": "float32"``, nested
objects as ``{"class_name", "config"}``); Keras 3's ``config.json`` wraps every object in
``{"module", "class_name", "config", "registered_name"}``, writes dtypes as DTypePolicy
objects, starts a Sequential with an InputLayer (``batch_shape``) and adds ``build_config``.
One set of tables below drives both directions. A key the other side does not know is
dropped only where it holds the value the other side implements (a table), else it is an
error naming the layer and the key: never a silently different model.

Keras 3 stores an optimizer's variables as ``iteration, learning_rate`` and then its slots
in groups (Adam: momentum and velocity interleaved per variable, then the AMSGrad maxima);
fastseq's ``get_state`` has every slot kind for all variables in turn. ``_SLOT_GROUPS``
maps one order onto the other.
"""
import inspect
import warnings

__all__ = ["NotTranslatable", "to_keras_model", "from_keras_model", "to_keras_compile",
           "from_keras_compile", "keras_slot_order"]

# the Keras 3 release whose config format this writes (also what metadata.json names)
KERAS_FORMAT_VERSION = "3.5.0"


class NotTranslatable(ValueError):
    """The model has something Keras 3 has no counterpart for (a layer class, a model
    class): it cannot be written as a Keras file."""


# Layer classes Keras 3 has under keras.layers with the config fastseq writes for them.
KERAS_LAYERS = frozenset({
    "InputLayer", "Embedding", "Dense", "Activation", "Dropout", "Flatten", "LSTM", "GRU",
    "SimpleRNN", "Bidirectional", "Conv1D", "MaxPooling1D", "AveragePooling1D",
    "GlobalMaxPooling1D", "GlobalAveragePooling1D", "SpatialDropout1D", "TimeDistributed",
    "Masking", "BatchNormalization", "LayerNormalization", "Reshape", "Permute",
    "RepeatVector", "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum",
    "Minimum", "Dot",
})
# Keras modules of the objects nested in layer configs, by the key's ending.
_OBJECT_MODULES = {"_initializer": "keras.initializers", "_regularizer": "keras.regularizers",
                   "_constraint": "keras.constraints"}
# Layer keys that wrap another layer (Bidirectional, TimeDistributed).
_WRAPPED_LAYER_KEYS = ("layer", "backward_layer")
# fastseq (Keras 2) layer keys Keras 3 removed; the input shape goes to the InputLayer.
_FASTSEQ_ONLY_LAYER_KEYS = ("input_length", "implementation", "batch_input_shape")
# Keys of fastseq's config that a Keras 3 class does not take (its constructor rejects them);
# they only restate the default there (a layer without weights is never trainable).
_KERAS_REJECTS = {"SpatialDropout1D": ("trainable",)}
# Keras 3 keys fastseq's classes do not take, dropped when they hold this value (what
# fastseq does); any other value is an error.
_KERAS_ONLY_DEFAULTS = {
    "zero_output_for_mask": False, "quantization_config": None, "lora_rank": None,
    "lora_alpha": None, "ragged": False, "optional": False, "sparse": False,
    "input_axes": None, "output_axes": None, "shared_object_id": None,
    "renorm": False, "renorm_momentum": 0.99,
}
# Keys of a wrapped layer that Keras's Bidirectional overrides whatever they hold
# (zero_output_for_mask = return_sequences; fastseq's Bidirectional does the same).
_SET_BY_WRAPPER = frozenset({"zero_output_for_mask"})
# Optimizer keys of fastseq's that Keras 3 lacks, and the value that means Keras's behaviour.
_FASTSEQ_ONLY_OPTIMIZER_KEYS = {"lazy": False}
# Keras 3's optimizer variables after iteration and learning_rate: groups of slot kinds,
# each group interleaved per trainable variable (keras optimizers' build methods).
_SLOT_GROUPS = {
    "Adam": (("momentum", "velocity"), ("velocity_hat",)),
    "RMSprop": (("velocity",), ("momentum",), ("average_gradient",)),
    "SGD": (("momentum",),),
    "Adagrad": (("accumulator",),),
}


def _policy(dtype):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype},
            "registered_name": None}


def _keras_object(value, module):
    """Keras 3's wrapper around a fastseq ``{"class_name", "config"}`` (kept when it has one)."""
    if not isinstance(value, dict) or "class_name" not in value or "module" in value:
        return value
    return {"module": module, "class_name": value["class_name"],
            "config": value.get("config", {}), "registered_name": None}


def _listed(shape):
    if isinstance(shape, (list, tuple)):
        return [_listed(s) for s in shape]
    return shape


# ------------------------------------------------------------------ fastseq -> Keras 3
def _layer_to_keras(entry, layer=None):
    class_name = entry["class_name"]
    config = dict(entry.get("config") or {})
    name = config.get("name", entry.get("name"))
    if class_name not in KERAS_LAYERS:
        raise NotTranslatable(f"layer {name!r} ({class_name}) has no Keras 3 counterpart")
    for key in _FASTSEQ_ONLY_LAYER_KEYS + _KERAS_REJECTS.get(class_name, ()):
        config.pop(key, None)
    if class_name == "InputLayer":
        config.pop("trainable", None)
        config["batch_shape"] = _listed(config.get("batch_shape"))
    elif isinstance(config.get("dtype"), str):
        config["dtype"] = _policy(config["dtype"])
    for key, value in config.items():
        if key in _WRAPPED_LAYER_KEYS and isinstance(value, dict):
            config[key] = _layer_to_keras(value)
            continue
        module = next((m for end, m in _OBJECT_MODULES.items() if key.endswith(end)), None)
        if module is not None:
            config[key] = _keras_object(value, module)
    out = {"module": "keras.layers", "class_name": class_name, "config": config,
           "registered_name": None}
    input_shape = getattr(layer, "_input_shape", None)
    if class_name != "InputLayer" and input_shape is not None:
        out["build_config"] = {"input_shape": _listed(input_shape)}
    for key in ("name", "inbound_nodes"):  # a functional model's graph, Keras 3's format
        if key in entry:
            out[key] = entry[key]
    return out


def _input_layer(batch_shape, dtype):
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": _listed(batch_shape), "dtype": dtype, "sparse": False,
                       "ragged": False, "name": "input_layer"},
            "registered_name": None}


def _sequential_input(config, layers):
    """(batch shape, dtype) of a Sequential's input, or (None, None) when it has none."""
    entries = config.get("layers", [])
    if entries and entries[0].get("class_name") == "InputLayer":
        inner = entries[0].get("config", {})
        return inner.get("batch_shape") or inner.get("batch_input_shape"), inner.get("dtype")
    first = entries[0].get("config", {}) if entries else {}
    shape = first.get("batch_input_shape") or config.get("build_input_shape")
    if shape is None and layers:
        shape = getattr(layers[0], "_input_shape", None)
    if shape is None:
        return None, None
    takes_indices = bool(layers) and getattr(layers[0], "_takes_indices", False)
    return shape, "int32" if takes_indices else first.get("dtype", "float32")


def to_keras_model(model):
    """Keras 3's config.json dict (without compile_config) for a fastseq Sequential or
    functional Model. Raises NotTranslatable when Keras 3 could not rebuild it."""
    kind = type(model).__name__
    get_config = getattr(model, "get_config", None)
    if get_config is None or not type(model).__module__.startswith("fastseq"):
        raise NotTranslatable(f"{kind} is not a fastseq model")
    config = get_config()
    by_name = {getattr(layer, "name", None): layer for layer in getattr(model, "layers", [])}
    entries = config.get("layers", [])
    if kind == "Sequential":
        batch_shape, dtype = _sequential_input(config, list(getattr(model, "layers", [])))
        layers = [_layer_to_keras(e, by_name.get(e.get("config", {}).get("name")))
                  for e in entries if e.get("class_name") != "InputLayer"]
        if batch_shape is not None:
            layers.insert(0, _input_layer(batch_shape, dtype))
        inner = {"name": config.get("name", "sequential"), "trainable": True,
                 "dtype": _policy("float32"), "layers": layers}
        out = {"module": "keras", "class_name": "Sequential", "config": inner,
               "registered_name": None}
        if batch_shape is not None:
            inner["build_input_shape"] = _listed(batch_shape)
            out["build_config"] = {"input_shape": _listed(batch_shape)}
        return out
    if "input_layers" in config and "output_layers" in config:
        layers = [_layer_to_keras(e, by_name.get(e.get("name"))) for e in entries]
        inner = {"name": config.get("name", "functional"),
                 "trainable": config.get("trainable", True), "layers": layers,
                 "input_layers": config["input_layers"],
                 "output_layers": config["output_layers"]}
        return {"module": "keras.src.models.functional", "class_name": "Functional",
                "config": inner, "registered_name": "Functional"}
    raise NotTranslatable(f"{kind} is neither a Sequential nor a functional model")


def _keras_metrics(metrics):
    """Metric names as they are; metric objects' configs wrapped as Keras 3's, at any depth
    (a list per output, a dict by output name)."""
    if isinstance(metrics, list):
        return [_keras_metrics(m) for m in metrics]
    if isinstance(metrics, dict) and "class_name" not in metrics:
        return {k: _keras_metrics(v) for k, v in metrics.items()}
    return _keras_object(metrics, "keras.metrics")


def to_keras_compile(compile_config):
    """Keras 3's compile_config from fastseq's (``model._compile_config``), or None."""
    if not compile_config:
        return None
    optimizer = compile_config.get("optimizer")
    if isinstance(optimizer, dict):
        config = dict(optimizer.get("config") or {})
        for key, keras_value in _FASTSEQ_ONLY_OPTIMIZER_KEYS.items():
            if config.pop(key, keras_value) != keras_value:
                warnings.warn(f"Keras 3's {optimizer['class_name']} has no {key!r}: Keras "
                              f"will run it as {key}={keras_value!r}", stacklevel=4)
        optimizer = {"module": "keras.optimizers", "class_name": optimizer["class_name"],
                     "config": config, "registered_name": None}
    loss = compile_config.get("loss")
    loss = ({k: _keras_object(v, "keras.losses") for k, v in loss.items()}
            if isinstance(loss, dict) and "class_name" not in loss
            else [_keras_object(v, "keras.losses") for v in loss]
            if isinstance(loss, list) else _keras_object(loss, "keras.losses"))
    return {"optimizer": optimizer, "loss": loss,
            "loss_weights": compile_config.get("loss_weights"),
            "metrics": _keras_metrics(compile_config.get("metrics")) or None,
            "weighted_metrics": _keras_metrics(compile_config.get("weighted_metrics")),
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


# ------------------------------------------------------------------ Keras 3 -> fastseq
def _accepted_keys(cls):
    """The keyword names ``cls(...)`` takes: every named parameter of the ``__init__``s
    along its class hierarchy (subclasses pass the base's on through **kwargs)."""
    keys = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                keys.add(p.name)
    return keys


def _fastseq_object(value):
    """A nested Keras 3 object (initializer, regularizer, ...) as fastseq reads it."""
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    out = {k: v for k, v in value.items() if k != "shared_object_id"}
    if isinstance(out.get("config"), dict):
        out["config"] = {k: v for k, v in out["config"].items()
                         if not (k in _KERAS_ONLY_DEFAULTS and v == _KERAS_ONLY_DEFAULTS[k])}
    return out


def _layer_from_keras(entry, layer_class, wrapped=False):
    class_name = entry.get("class_name")
    config = dict(entry.get("config") or {})
    name = config.get("name", entry.get("name"))
    cls = layer_class(class_name)
    if cls is None:
        raise ValueError(f"layer {name!r}: fastseq has no layer class {class_name!r} (Keras 3 "
                         "file); pass it in custom_objects")
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = (config["dtype"].get("config") or {}).get("name")
    accepted = _accepted_keys(cls)
    defaults = _KERAS_ONLY_DEFAULTS
    for key in list(config):
        value = config[key]
        if key in _WRAPPED_LAYER_KEYS and isinstance(value, dict):
            config[key] = _layer_from_keras(value, layer_class, wrapped=True)
        elif key not in accepted:
            if (wrapped and key in _SET_BY_WRAPPER) or (
                    key in defaults and value == defaults[key]) or (
                    key not in defaults and value is None):
                del config[key]
            else:
                raise ValueError(
                    f"layer {name!r} ({class_name}): Keras 3's config has {key}={value!r}, "
                    f"which fastseq's {class_name} does not support")
        else:
            config[key] = _fastseq_object(value)
    out = {"class_name": class_name, "config": config}
    for key in ("name", "inbound_nodes"):
        if key in entry:
            out[key] = entry[key]
    return out


def _history(record):
    if isinstance(record, dict) and record.get("class_name") == "__keras_tensor__":
        return tuple(record["config"]["keras_history"])
    return None


def _fastseq_graph(entries):
    """A Keras 3 functional config's layers as fastseq runs them: without the
    ``not_equal(tokens, 0)`` operations Keras records for an Embedding's ``mask_zero`` mask
    (and the ``mask=`` call arguments they feed; fastseq carries that mask through the graph
    from the Embedding itself, as Keras does when it rebuilds the model), and without the
    ``training`` call arguments Keras records (its model's own mode overrides them at run
    time; fastseq would hold the layer to them). Any other operation stays (and fails as an
    unknown layer class)."""
    embedding_inputs = {_history(node["args"][0])
                        for e in entries if e.get("class_name") == "Embedding"
                        and (e.get("config") or {}).get("mask_zero")
                        for node in e.get("inbound_nodes", []) if node.get("args")}
    mask_ops = set()
    for e in entries:
        nodes = e.get("inbound_nodes", [])
        if (e.get("class_name") == "NotEqual" and str(e.get("module", "")).startswith(
                "keras.src.ops") and len(nodes) == 1 and len(nodes[0].get("args", [])) == 2
                and nodes[0]["args"][1] == 0 and _history(nodes[0]["args"][0])
                in embedding_inputs):
            mask_ops.add(e["name"])
    out = []
    for e in entries:
        if e.get("name") in mask_ops:
            continue
        e = dict(e)
        nodes = []
        for node in e.get("inbound_nodes", []):
            kwargs = dict(node.get("kwargs") or {})
            kwargs.pop("training", None)
            mask = _history(kwargs.get("mask"))
            if mask is not None and mask[0] in mask_ops:
                del kwargs["mask"]
            nodes.append(dict(node, kwargs=kwargs))
        e["inbound_nodes"] = nodes
        out.append(e)
    return out


def from_keras_model(config, custom_objects=None):
    """fastseq's ``{"class_name", "config"}`` from a Keras 3 config.json dict."""
    from fastseq.layers import base as _base

    def layer_class(class_name):
        return (custom_objects or {}).get(class_name) or _base.get_registered_layer(class_name)

    class_name = config.get("class_name")
    inner = dict(config.get("config") or {})
    if class_name not in ("Sequential", "Functional", "Model"):
        raise ValueError(f"Keras 3 model class {class_name!r}: fastseq reads Sequential and "
                         "functional models")
    dtype = inner.pop("dtype", None)
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype not in (None, "float32", "float64"):  # each layer's own policy says the rest
        raise ValueError(f"Keras 3 model with dtype policy {dtype!r}: fastseq's layers "
                         "compute in float32 or float64")
    entries = inner.get("layers", [])
    if class_name != "Sequential":
        entries = _fastseq_graph(entries)
    layers = [_layer_from_keras(e, layer_class) for e in entries]
    if class_name == "Sequential" and len(layers) > 1 and layers[0]["class_name"] == "InputLayer":
        # the input shape on the first layer (Keras 2's way, which fastseq's Sequential
        # reads): the layers are built as they are added, for that shape
        shape = layers.pop(0)["config"].get("batch_shape")
        first = layers[0]["config"]
        first.setdefault("batch_input_shape", shape)
        if layers[0]["class_name"] == "Embedding" and shape and len(shape) == 2:
            first.setdefault("input_length", shape[1])  # Keras 2's spelling of that shape
    inner["layers"] = layers
    return {"class_name": class_name, "config": inner}


def from_keras_compile(compile_config):
    """fastseq's compile settings (optimizer, loss, metrics, ...) from Keras 3's."""
    if not compile_config:
        return None
    optimizer = compile_config.get("optimizer")
    if isinstance(optimizer, dict):
        optimizer = {"class_name": optimizer.get("registered_name") or optimizer["class_name"],
                     "config": optimizer.get("config") or {}}
        if isinstance(optimizer["config"].get("learning_rate"), dict):
            raise ValueError("Keras 3 file with a learning-rate schedule "
                             f"({optimizer['config']['learning_rate'].get('class_name')}): "
                             "fastseq's optimizers take a number")

    def plain(value):
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict) and value.get("class_name") == "function" and (
                str(value.get("module")).startswith("keras") or value.get("module")
                == "builtins"):  # where Keras 3 writes its own functions
            return value.get("config")  # a Keras function (loss, metric): its name
        if isinstance(value, dict) and "class_name" in value:
            return {"class_name": value["class_name"], "config": value.get("config") or {}}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {"optimizer": optimizer, "loss": plain(compile_config.get("loss")),
            "metrics": plain(compile_config.get("metrics")),
            "loss_weights": compile_config.get("loss_weights"),
            "weighted_metrics": plain(compile_config.get("weighted_metrics"))}


# ------------------------------------------------------------------ optimizer state
def keras_slot_order(optimizer_class, slot_names, n_variables):
    """For each of Keras 3's slot variables in order: (slot kind, variable position), given
    the slot kinds this optimizer has (fastseq's ``_slot_specs`` names, in its order). Raises
    ValueError for an optimizer whose Keras layout is unknown."""
    groups = _SLOT_GROUPS.get(optimizer_class)
    if groups is None:
        raise ValueError(f"the Keras 3 layout of {optimizer_class}'s variables is unknown")
    known = {kind for group in groups for kind in group}
    unknown = [kind for kind in slot_names if kind not in known]
    if unknown:
        raise ValueError(f"{optimizer_class} slot kind(s) {unknown} have no Keras 3 place")
    order = []
    for group in groups:
        group = [kind for kind in group if kind in slot_names]
        order.extend((kind, i) for i in range(n_variables) for kind in group)
    return order
