"""Pickling of models, layers and optimizers: their config, weights and optimizer state,
never their caches (the last forward pass) nor their device arrays, so that Ray,
``multiprocessing`` and ``pickle`` itself move them between processes.

The classes' ``__reduce__`` hooks call these functions:

- a model is rebuilt from ``get_config()`` (``model_from_config``), its weights assigned
  (checked, as ``load_model`` does), compiled again from its compile config and its
  optimizer's slots restored (the variables they belong to found by layer and weight
  position, as saved model files do);
- a layer is rebuilt from its class and ``get_config()``, built for the input shape it was
  built for, and given its weights (a layer comes back on its own, outside any model);
- an optimizer is rebuilt from its class and ``get_config()`` with its iteration count. Its
  slots (momentums, ...) belong to the model's Variables, so they travel with the model:
  an optimizer pickled alone starts with fresh slots.

Everything comes back on the unpickling process's current device
(:func:`fastseq.set_device`). Tokenizers hold plain Python state (no cache, no device
array), so the default pickling already does the right thing for them.
"""
import numpy as np

from fastseq import saving as _saving

__all__ = ["reduce_model", "reduce_layer", "reduce_optimizer", "model_state",
           "model_from_state", "restore_model_state"]

_STATE_VERSION = 1


def _host_copy(array):
    return np.array(array, copy=True)


def model_state(model):
    """A picklable dict of ``model``: config, compile config, weights (per layer with
    weights, host copies), optimizer state (arrays and the owning [layer, weight]
    positions, or None) and the input shape it was built for."""
    weights = [(layer.name, [_host_copy(v.value) for v in _saving._layer_weights(layer)])
               for layer in _saving._weighted_layers(model)]
    optimizer = _saving._optimizer_state(model)
    input_shape = None
    try:
        input_shape = model.input_shape if weights else None
    except (AttributeError, ValueError, TypeError, IndexError):
        input_shape = None
    return {
        "version": _STATE_VERSION,
        "config": _saving._model_config(model),
        "compile_config": _saving._compile_config(model),
        "weights": weights,
        "optimizer": None if optimizer is None else (optimizer[1], optimizer[2]),
        "input_shape": input_shape,
    }


def restore_model_state(model, state, source="a pickled model"):
    """Give ``model`` (same architecture, compiled) the weights and optimizer state of
    :func:`model_state`'s ``state``. Everything is checked before any weight changes."""
    per_layer = state["weights"]
    if per_layer and len(_saving._weighted_layers(model)) != len(per_layer):
        _build(model, state.get("input_shape"))
    _saving._assign_checked(model, per_layer, [name for name, _ in per_layer], source)
    if getattr(model, "optimizer", None) is not None:
        _saving._reset_optimizer(model.optimizer)  # slots as the state says, or none
        if state.get("optimizer") is not None:
            arrays, owners = state["optimizer"]
            _saving._restore_optimizer(model, arrays, owners, source)
    return model


def _build(model, input_shape):
    """Build a model whose config does not carry its input shape (built on data)."""
    if input_shape is None or not hasattr(model, "build"):
        return
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    model.build(shapes[0] if len(shapes) == 1 else shapes)


def model_from_state(state):
    """The model :func:`model_state` described: rebuilt, compiled, weights and optimizer
    state restored."""
    from fastseq.models import model_from_config

    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        raise ValueError("not a fastseq model state (from fastseq._pickling.model_state), or "
                         f"one of another version (expected version {_STATE_VERSION})")
    model = model_from_config(state["config"])
    compile_config = state.get("compile_config")
    if compile_config and compile_config.get("optimizer") is not None:
        _saving._compile_from_config(model, compile_config)
    return restore_model_state(model, state)


def reduce_model(model):
    """``Model.__reduce__``: (rebuild function, its arguments)."""
    return model_from_state, (model_state(model),)


def _rebuild_layer(cls, config, input_shape, weights):
    layer = cls.from_config(config)
    if input_shape is not None:
        layer._build_for(input_shape)
    if weights:
        layer.set_weights(weights)
    return layer


def reduce_layer(layer):
    """``Layer.__reduce__``: the class, ``get_config()``, the input shape it was built for
    and its weights. The layer's graph links (functional nodes), caches and backend stay
    behind."""
    input_shape = layer._input_shape if layer.built else None
    weights = [_host_copy(v.value) for v in layer.weights] if layer.built else []
    return _rebuild_layer, (type(layer), layer.get_config(), input_shape, weights)


def _rebuild_optimizer(cls, config, iterations):
    optimizer = cls.from_config(config)
    optimizer.iterations = int(iterations)
    return optimizer


def reduce_optimizer(optimizer):
    """``Optimizer.__reduce__``: the class, ``get_config()`` and the iteration count. The
    slots travel with the model they belong to (:func:`reduce_model`)."""
    return _rebuild_optimizer, (type(optimizer), optimizer.get_config(),
                                int(optimizer.iterations))
