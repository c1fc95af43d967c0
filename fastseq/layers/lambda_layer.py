"""Lambda: a NumPy function as a layer, for inference (Keras 3's
keras/src/layers/core/lambda_layer.py).

The function takes and returns NumPy arrays (on a device backend it runs on host copies).
fastseq cannot differentiate it: training through a Lambda with trainable layers below it
raises a clear error (layers above it train as usual). Its config names the function by
module and name, Keras's form ``{"module", "class_name": "function", "config": name}``, so
only a function importable by that name can be saved; a lambda or a nested function raises
on save, and a config holding Python bytecode (Keras's ``"__lambda__"``) is refused.
"""
import importlib
import inspect

import numpy as np

from .base import Layer

__all__ = ["Lambda"]


def _importable(fn):
    """(module, qualified name) under which ``fn`` can be imported back, or None."""
    module = getattr(fn, "__module__", None)
    if module is None and isinstance(fn, np.ufunc):
        module = "numpy"  # NumPy's ufuncs (np.square, ...) carry no __module__
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not module or not name or "<" in name:  # <lambda>, <locals>
        return None
    try:
        found = _resolve(module, name)
    except (ImportError, AttributeError):
        return None
    return (module, name) if found is fn else None


def _resolve(module, name):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _serialize_function(fn, what):
    where = _importable(fn)
    if where is None:
        raise ValueError(
            f"Lambda: cannot save {what} {fn!r}: only a function importable by module and name "
            "can be saved (fastseq does not save Python bytecode). Define it at the top level "
            "of a module, or write a Layer subclass")
    module, name = where
    return {"module": module, "class_name": "function", "config": name,
            "registered_name": name}


def _deserialize_function(config, what, custom_objects=None):
    if callable(config):
        return config
    if isinstance(config, str):
        if custom_objects and config in custom_objects:
            return custom_objects[config]
        raise ValueError(f"Lambda: unknown {what} {config!r}; pass it in custom_objects")
    if not isinstance(config, dict):
        raise ValueError(f"Lambda: cannot read the {what} from {config!r}")
    if config.get("class_name") == "__lambda__":
        raise ValueError(
            f"Lambda: the saved {what} is Python bytecode (a lambda); fastseq does not load "
            "code from files. Rebuild the layer with the function in your code")
    name = config.get("config")
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    module = config.get("module")
    try:
        return _resolve(module, name)
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"Lambda: cannot import the {what} {name!r} from module "
                         f"{module!r}: {err}") from None


def _trial_shape(shape, fill):
    return tuple(1 if i == 0 else (fill if d is None else d) for i, d in enumerate(shape))


class Lambda(Layer):
    """``Lambda(function, output_shape=None, mask=None, arguments=None)``: ``y =
    function(x, **arguments)`` (plus ``mask=`` / ``training=`` when the function takes
    them). ``output_shape``: a tuple without the batch axis, or a function of the input
    shape; without it the shape is found by calling the function on zeros. ``mask``: None
    (an incoming mask is dropped, with a warning, as Keras), a function ``(x, mask) ->
    mask``, or a fixed mask."""

    _differentiable = False  # the model refuses to train through it, before any step

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {function!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda: arguments must be a dict, got {arguments!r}")
        if output_shape is not None and not callable(output_shape):
            output_shape = tuple(None if d is None else int(d) for d in output_shape)
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self._given_output_shape = output_shape
        self._mask_policy = "drop" if mask is None else "consume"
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            parameters = {}
        self._fn_takes_mask = "mask" in parameters
        self._fn_takes_training = "training" in parameters

    def _call_function(self, x, mask=None, training=False):
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        if self._fn_takes_training:
            kwargs["training"] = training
        return np.asarray(self.function(x, **kwargs))

    def compute_output_shape(self, input_shape):
        given = self._given_output_shape
        if callable(given):
            return tuple(given(tuple(input_shape)))
        if given is not None:
            return (input_shape[0],) + given
        # found by calling the function on zeros; a size that follows an unknown input size
        # (two trials with different fills) is unknown
        try:
            trials = [self._call_function(np.zeros(_trial_shape(input_shape, fill), self.dtype))
                      for fill in (2, 3)]
        except Exception as err:
            raise NotImplementedError(
                f"Lambda {self.name!r}: could not infer the output shape by calling the "
                f"function on zeros of shape {_trial_shape(input_shape, 2)} ({err}); pass "
                "output_shape=") from err
        first, second = trials[0].shape, trials[1].shape
        if len(first) != len(second) or not first:
            raise NotImplementedError(f"Lambda {self.name!r}: could not infer the output "
                                      "shape; pass output_shape=")
        return (input_shape[0],) + tuple(a if a == b else None
                                         for a, b in zip(first[1:], second[1:]))

    def compute_mask(self, x, mask=None):
        if self.mask is None:
            return super().compute_mask(x, mask)
        if callable(self.mask):
            return self.mask(self.ops.to_numpy(x), mask)
        return np.asarray(self.mask)

    def forward(self, x, mask=None, training=False):
        return self.ops.apply(lambda a: self._call_function(a, mask, training), x)

    def backward(self, grad_y, need_input_grad=True):
        raise RuntimeError(
            f"Lambda layer {self.name!r} cannot be trained through: fastseq does not "
            "differentiate its function, and there are trainable layers below it. Use the "
            "Lambda for inference, freeze the layers below it (trainable=False), or write a "
            "Layer subclass with a backward pass")

    def get_config(self):
        config = super().get_config()
        config["function"] = _serialize_function(self.function, "function")
        given = self._given_output_shape
        if given is not None:
            config["output_shape"] = (_serialize_function(given, "output_shape function")
                                      if callable(given) else given)
        if self.mask is not None:
            config["mask"] = (_serialize_function(self.mask, "mask function")
                              if callable(self.mask) else np.asarray(self.mask).tolist())
        config["arguments"] = self.arguments
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["function"] = _deserialize_function(config["function"], "function",
                                                   custom_objects)
        shape = config.get("output_shape")
        if isinstance(shape, dict) or isinstance(shape, str):
            config["output_shape"] = _deserialize_function(shape, "output_shape function",
                                                           custom_objects)
        elif isinstance(shape, list):
            config["output_shape"] = tuple(shape)
        mask = config.get("mask")
        if isinstance(mask, dict):
            config["mask"] = _deserialize_function(mask, "mask function", custom_objects)
        return super().from_config(config)
