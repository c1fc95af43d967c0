"""The Layer base class: Keras's constructor keywords, naming, weights and config, plus the
forward/backward protocol the Sequential model drives.

Protocol (what a subclass implements):
    build(input_shape)                 create weights with add_weight; input_shape has None batch
    compute_output_shape(input_shape)  -> output shape (tuple, None batch)
    forward(x, mask=None, training=False) -> y
        with training=True it keeps what backward needs (self._cache); without it keeps nothing
    backward(grad_y, need_input_grad=True) -> grad_x (or None when not needed)
        sets .grad of its trainable Variables; may overwrite grad_y (the caller hands it over)
    compute_mask(x, mask) -> the mask passed to the next layer
Masks are boolean (batch, time) arrays, or None.
"""
import collections
import re
import warnings

import numpy as np

from fastseq import constraints as _constraints
from fastseq import initializers as _initializers
from fastseq import regularizers as _regularizers
from fastseq.variables import Variable

__all__ = ["Layer", "reset_name_uids", "serialize", "deserialize", "get_registered_layer"]

_NAME_UIDS = collections.defaultdict(int)
_LAYER_CLASSES = {}


def _to_snake_case(name):
    # Keras: GlobalAveragePooling1D -> global_average_pooling1d, LSTM -> lstm
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def unique_name(base):
    """Keras's naming: 'dense', then 'dense_1', 'dense_2', ... per base name."""
    count = _NAME_UIDS[base]
    _NAME_UIDS[base] += 1
    return base if count == 0 else f"{base}_{count}"


def reset_name_uids():
    """Restart the automatic names ('dense', 'dense_1', ...), as keras.backend.clear_session."""
    _NAME_UIDS.clear()


def _default_ops():
    from fastseq.backend import get_ops

    return get_ops("cpu")


def _shape_tuple(shape, what):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a tuple of ints (or None), got {shape!r}") from None
    if any(d is not None and d < 0 for d in shape):
        raise ValueError(f"{what} must hold non-negative sizes, got {shape}")
    return shape


def assign_checked(variables, weights, owner, name, built):
    """``variables[i].assign(weights[i])`` for all i (layer or model ``set_weights``), after
    checking the count, every shape and dtype: on an error nothing has changed. ``owner``
    ('layer' or 'model') and ``name`` name the caller in the messages."""
    weights = list(weights)
    if len(weights) != len(variables):
        raise ValueError(
            f"You called set_weights(weights) on {owner} {name!r} with a weight list of "
            f"length {len(weights)}, but the {owner} was expecting {len(variables)} weights"
            + ("" if built else f" (the {owner} is not built yet)")
        )
    arrays = []
    for var, w in zip(variables, weights):
        w = np.asarray(w)
        if w.shape != var.shape:
            raise ValueError(
                f"Weight {var.name!r} of {owner} {name!r} has shape {var.shape}, not compatible "
                f"with the provided weight shape {w.shape}; nothing was changed"
            )
        if w.dtype.kind not in "fiub":
            raise TypeError(f"Weight {var.name!r} of {owner} {name!r}: cannot set from an array "
                            f"of dtype {w.dtype}")
        arrays.append(w)
    for var, w in zip(variables, arrays):
        var.assign(w.astype(var.dtype, copy=False))


class Layer:
    """Base of every fastseq layer; Keras's keywords: name, trainable, dtype, input_shape,
    batch_input_shape, input_dim, batch_size, weights, activity_regularizer."""

    # how a layer treats an incoming mask: "pass" it on, "consume" it (its own
    # compute_mask decides), or "drop" it with a warning (Keras raises there; we warn)
    _mask_policy = "pass"
    _takes_indices = False  # integer inputs (Embedding): never cast to the float dtype
    _takes_strings = False  # text inputs (TextVectorization): kept as strings on the host
    _differentiable = True  # False: no backward (Lambda); a model refuses to train through it
    # a subclass's <weight>_regularizer / <weight>_constraint keywords (_set_weight_options)
    _weight_option_keys = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 batch_input_shape=None, input_dim=None, batch_size=None, weights=None,
                 activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name if name is not None else unique_name(_to_snake_case(type(self).__name__))
        self.dtype = np.dtype(dtype if dtype is not None else np.float32)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"{self.name}: dtype must be float32 or float64, got {self.dtype}")
        # Keras 3: a penalty on the layer's outputs, divided by the batch size
        self.activity_regularizer = _regularizers.get(activity_regularizer)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + _shape_tuple(input_shape, "input_shape")
        self._batch_input_shape = _shape_tuple(batch_input_shape, "batch_input_shape")
        self._trainable = bool(trainable)
        self._weights = []
        self._initial_weights = weights
        self._ops = None  # the backend, given by the model (a lone layer: the CPU's)
        self.built = False
        self._input_shape = None
        self._output_shape = None
        self._cache = None
        self._warned_mask = False
        self._inbound_nodes = []  # this layer's calls in functional graphs (input_layer.Node)

    # ----- the backend every array operation of forward / backward goes through
    @property
    def ops(self):
        ops = self._ops
        return ops if ops is not None else _default_ops()

    def _set_ops(self, ops):
        """Compute on backend ``ops`` from now on (its weights move there)."""
        self._ops = ops
        for var in self._weights:
            var.place(ops)

    # ----- building
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch dimension first, None)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _build_for(self, input_shape):
        """Build once for ``input_shape`` (with batch dim); returns the output shape."""
        input_shape = tuple(input_shape)
        if not self.built:
            self.build(input_shape)
            self.built = True
            self._input_shape = input_shape
            self._output_shape = self.compute_output_shape(input_shape)
            if self._initial_weights is not None:
                initial, self._initial_weights = self._initial_weights, None
                self.set_weights(initial)
            return self._output_shape
        return self.compute_output_shape(input_shape)

    def _set_weight_options(self, **options):
        """Keep a layer's ``<weight>_regularizer`` / ``<weight>_constraint`` keywords as
        attributes of those names (through regularizers.get / constraints.get); get_config
        writes them back. The layer passes them to add_weight for its weights."""
        for key, value in options.items():
            module = _regularizers if key.endswith("_regularizer") else _constraints
            setattr(self, key, module.get(value))
        self._weight_option_keys = tuple(options)

    def add_weight(self, name, shape, initializer, trainable=True, regularizer=None,
                   constraint=None):
        init = _initializers.get(initializer)
        value = np.asarray(init(tuple(shape), dtype=self.dtype), dtype=self.dtype)
        if value.shape != tuple(shape):
            raise ValueError(
                f"{self.name}: initializer for {name!r} returned shape {value.shape}, "
                f"expected {tuple(shape)}"
            )
        var = Variable(value, name, trainable=trainable and self._trainable,
                       regularizer=_regularizers.get(regularizer),
                       constraint=_constraints.get(constraint))
        var._layer_trainable = trainable  # the weight's own flag, before layer.trainable
        var.place(self._ops)
        self._weights.append(var)
        return var

    # ----- shapes
    @property
    def input_shape(self):
        if self._input_shape is None:
            if self._batch_input_shape is not None:
                return self._batch_input_shape
            raise AttributeError(
                f"The layer {self.name!r} has never been called and thus has no defined input shape"
            )
        return self._input_shape

    @property
    def output_shape(self):
        if self._output_shape is None:
            raise AttributeError(
                f"The layer {self.name!r} has never been called and thus has no defined "
                "output shape"
            )
        return self._output_shape

    def _check_input(self, x):
        """Rank and feature size (last axis) against the shape the layer was built for."""
        expected = self._input_shape
        if expected is None:
            return
        if x.ndim != len(expected):
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: expected "
                f"ndim={len(expected)} (shape {expected}), found ndim={x.ndim}, full shape "
                f"received: {x.shape}"
            )
        if expected[-1] is not None and tuple(x.shape)[-1] != expected[-1]:
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: expected axis -1 "
                f"of the input shape to have value {expected[-1]} (shape {expected}), got an "
                f"input of shape {x.shape}"
            )

    def _accepts_shape(self, shape):
        """Whether inputs of ``shape`` fit the weights built for ``self._input_shape``."""
        expected = self._input_shape
        if expected is None:
            return True
        return len(shape) == len(expected) and (expected[-1] is None or shape[-1] == expected[-1])

    # ----- masks
    def compute_mask(self, x, mask=None):
        if mask is None:
            return None
        if self._mask_policy == "drop":
            if not self._warned_mask:
                self._warned_mask = True
                warnings.warn(
                    f"Layer {self.name!r} ({type(self).__name__}) does not support masking: "
                    "the mask from the previous layers is dropped here, so the following "
                    "layers see the padded steps",
                    UserWarning,
                    stacklevel=4,
                )
            return None
        return mask

    # ----- forward / backward
    def forward(self, x, mask=None, training=False):
        raise NotImplementedError

    def backward(self, grad_y, need_input_grad=True):
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    def _training_changes_forward(self):
        """True when training mode changes the output (dropout), not just the caching."""
        return False

    def __call__(self, x, training=None, mask=None):
        """Apply the layer to a NumPy array (inference unless training=True), or, on
        symbolic tensors (``fastseq.Input``), record the call in a functional graph."""
        from .input_layer import is_symbolic

        if is_symbolic(x):
            return self._call_symbolic(x, training=training)
        training = bool(training)
        x = np.asarray(x)
        if not self.built:
            self._build_for((None,) + x.shape[1:])
        ops = self.ops
        if x.dtype.kind == "f" and not self._takes_indices:
            x = ops.asarray(x, dtype=self.dtype)
        y = self.forward(x, mask=mask, training=training)
        if isinstance(y, list):
            return [ops.to_numpy(t) for t in y]
        return ops.to_numpy(y)

    def _call_symbolic(self, inputs, state_tensors=(), training=None):
        """Build for the symbolic ``inputs`` (one KerasTensor or a list) and record the
        call; returns the output KerasTensor(s). ``state_tensors``: a recurrent layer's
        ``initial_state`` tensors, inputs of the call after the main ones."""
        from .input_layer import Node

        main_is_list = isinstance(inputs, (list, tuple))
        main = list(inputs) if main_is_list else [inputs]
        shapes = [t.shape for t in main]
        in_shape = shapes if main_is_list else shapes[0]
        if self.built and not main_is_list and not self._accepts_shape(in_shape):
            raise ValueError(
                f"Input of layer {self.name!r} is incompatible with the layer: it was built "
                f"for inputs of shape {self._input_shape}, it is now called on a tensor of "
                f"shape {in_shape}")
        out_shape = self._build_for(in_shape)
        several = isinstance(out_shape, list)
        specs = [(tuple(s), self.dtype) for s in (out_shape if several else [out_shape])]
        call_kwargs = {} if training is None else {"training": bool(training)}
        node = Node(self, main + list(state_tensors), len(main), main_is_list, call_kwargs,
                    specs)
        return list(node.outputs) if several else node.outputs[0]

    # ----- weights
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for var in self._weights:
            var.trainable = self._trainable and getattr(var, "_layer_trainable", True)

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return [v for v in self._weights if v.trainable]

    @property
    def non_trainable_weights(self):
        return [v for v in self._weights if not v.trainable]

    @property
    def variables(self):
        return self.weights

    def _ensure_built_for_weights(self):
        """Layers whose weight shapes do not depend on the input shape build here."""

    def get_weights(self):
        self._ensure_built_for_weights()
        return [v.value.copy() for v in self._weights]

    def set_weights(self, weights):
        """Set the weights from a list of arrays (Keras's order and shapes); every shape is
        checked before anything changes."""
        self._ensure_built_for_weights()
        assign_checked(self._weights, weights, "layer", self.name, self.built)

    def count_params(self):
        if not self.built and not self._weights:
            raise ValueError(
                f"You tried to call count_params on layer {self.name!r}, but the layer isn't "
                "built. You can build it manually via: layer.build(batch_input_shape)."
            )
        return int(sum(v.value.size for v in self._weights))

    # ----- config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        if self.activity_regularizer is not None:  # as Keras 3: only when set
            config["activity_regularizer"] = _regularizers.serialize(self.activity_regularizer)
        for key in self._weight_option_keys:
            module = _regularizers if key.endswith("_regularizer") else _constraints
            config[key] = module.serialize(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("batch_input_shape"), list):
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"

    def __reduce__(self):
        """Pickle as class, config, built input shape and weights (no caches, no device
        arrays): fastseq/_pickling.py."""
        from fastseq._pickling import reduce_layer

        return reduce_layer(self)


def serialize(layer):
    """``{'class_name': 'Dense', 'config': {...}}``, as keras.layers.serialize."""
    if not isinstance(layer, Layer):
        raise TypeError(f"serialize expects a Layer, got {type(layer).__name__}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def get_registered_layer(class_name):
    return _LAYER_CLASSES.get(class_name)


def deserialize(config, custom_objects=None):
    """A new layer from ``{'class_name': ..., 'config': {...}}``."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"deserialize expects {{'class_name': ..., 'config': ...}}, got {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"Unknown layer class {name!r}; known: {sorted(_LAYER_CLASSES)}")
    return cls.from_config(config.get("config") or {})
