"""The wrappers: Bidirectional (a recurrent layer run both ways over the sequence, merged)
and TimeDistributed (a layer applied to every step).

Keras 3's semantics (keras/src/layers/rnn/bidirectional.py): the forward layer is a fresh
copy of the given layer named ``forward_<name>``; the backward layer is ``backward_layer``
or a copy with ``go_backwards`` flipped, named ``backward_<name>``. With
``return_sequences`` the backward outputs are flipped back into time order and masked steps
output zeros in both directions (Keras forces ``zero_output_for_mask`` there). Merge modes:
concat (last axis), sum, mul, ave, or None (a list of both). With ``return_state`` the
output is followed by the forward layer's states, then the backward layer's. Weights: the
forward layer's, then the backward layer's.

TimeDistributed (keras/src/layers/rnn/time_distributed.py): the inner layer on every step;
Keras loops over the steps, fastseq folds them into the batch (one call, same results).
"""
import numpy as np

from .base import Layer, assign_checked, deserialize, serialize
from .recurrent import call_with_initial_state

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _renamed_copy(layer, name, **changes):
    config = layer.get_config()
    config.update(changes, name=name)
    config.pop("batch_input_shape", None)
    return type(layer).from_config(config)


def _without_prefix(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Wrapper(Layer):
    """A layer around other layers (``_sublayers()``): their weights are its weights."""

    def _sublayers(self):
        raise NotImplementedError

    @property
    def weights(self):
        return [v for layer in self._sublayers() for v in layer.weights]

    @property
    def trainable_weights(self):
        return [v for layer in self._sublayers() for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [v for layer in self._sublayers() for v in layer.non_trainable_weights]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._sublayers():
            layer.trainable = value

    def _set_ops(self, ops):
        self._ops = ops
        for layer in self._sublayers():
            layer._set_ops(ops)

    def get_weights(self):
        return [w for layer in self._sublayers() for w in layer.get_weights()]

    def set_weights(self, weights):
        assign_checked(self.weights, weights, "layer", self.name, self.built)

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call count_params on layer {self.name!r}, but the "
                             "layer isn't built.")
        return sum(layer.count_params() for layer in self._sublayers())

    def _training_changes_forward(self):
        return any(layer._training_changes_forward() for layer in self._sublayers())


class Bidirectional(Wrapper):
    """``Bidirectional(layer, merge_mode="concat", weights=None, backward_layer=None)``
    over LSTM, GRU or SimpleRNN (or any layer with their ``go_backwards`` /
    ``return_sequences`` / ``return_state`` attributes)."""

    _mask_policy = "consume"

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `Bidirectional` layer with a fastseq Layer "
                             f"instance. Received: {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError("`backward_layer` need to be a fastseq Layer instance. Received: "
                             f"{backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode!r}. Merge mode "
                             "should be one of {'sum', 'mul', 'ave', 'concat', None}")
        for attribute in ("go_backwards", "return_sequences", "return_state"):
            if not hasattr(layer, attribute):
                raise ValueError(f"Bidirectional wraps a recurrent layer (LSTM, GRU, "
                                 f"SimpleRNN); {type(layer).__name__} has no {attribute!r}")
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs \
                and layer._batch_input_shape is not None:
            kwargs["batch_input_shape"] = layer._batch_input_shape
        kwargs.setdefault("dtype", layer.dtype)  # computes in the wrapped layer's dtype
        super().__init__(**kwargs)
        self.forward_layer = _renamed_copy(
            layer, "forward_" + _without_prefix(layer.name, "forward_"))
        if backward_layer is None:
            self.backward_layer = _renamed_copy(
                layer, "backward_" + _without_prefix(layer.name, "backward_"),
                go_backwards=not layer.go_backwards)
        else:
            self.backward_layer = backward_layer
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards {forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}")
        for attribute in ("return_sequences", "return_state"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value for "
                    f'attribute "{attribute}", got "{getattr(forward, attribute)}" for forward '
                    f'layer and "{getattr(backward, attribute)}" for backward layer')
        self.merge_mode = merge_mode
        self.return_sequences = forward.return_sequences
        self.return_state = forward.return_state
        self.stateful = False
        if weights:
            half = len(weights) // 2
            forward._initial_weights = weights[:half]
            backward._initial_weights = weights[half:]

    def _sublayers(self):
        return (self.forward_layer, self.backward_layer)

    def __call__(self, x, training=None, mask=None, initial_state=None):
        # initial_state: the forward layer's states, then the backward layer's
        return call_with_initial_state(self, x, training, mask, initial_state,
                                       2 * self.forward_layer._state_count)

    # ----- shapes and masks
    def build(self, input_shape):
        for layer in self._sublayers():
            layer._build_for(input_shape)

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (None if shape[-1] is None else 2 * shape[-1],)
        out = [shape, shape] if self.merge_mode is None else [shape]
        if self.return_state or self.merge_mode is None:
            return out + states + states
        return shape

    def compute_mask(self, x, mask=None):
        if self.return_sequences and self.merge_mode is not None and not self.return_state:
            return mask
        return None

    # ----- forward / backward
    # x: (B, T, D) -> (B, T, 2u) (concat, return_sequences) or (B, 2u); [+ states]
    def forward(self, x, mask=None, training=False, initial_state=None):
        ops = self.ops
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        forward, backward = self.forward_layer, self.backward_layer
        if self._concurrent():
            # the host work in order (the dropout draws stay in the CPU's sequence), then the
            # two kernels at once: they are independent
            jobs = [forward._forward_start(x, mask, training, forward_state),
                    backward._forward_start(x, mask, training, backward_state)]
            result, result_rev = ops.run_concurrently(jobs)
            y, y_rev = forward._forward_finish(result), backward._forward_finish(result_rev)
        else:
            y = forward.forward(x, mask=mask, training=training, initial_state=forward_state)
            y_rev = backward.forward(x, mask=mask, training=training,
                                     initial_state=backward_state)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        step_mask = None
        if self.return_sequences:
            y_rev = ops.flip_time(y_rev)
            if mask is not None and not mask.all():
                # Keras: masked steps output zeros in a Bidirectional's sequences
                step_mask = ops.asarray(
                    np.broadcast_to(mask[:, :, None], tuple(y.shape)).astype(y.dtype))
                y = ops.multiply(y, step_mask)
                y_rev = ops.multiply(y_rev, step_mask)
        merge = self.merge_mode
        if merge == "concat":
            out = ops.concatenate_last(y, y_rev)
        elif merge == "sum":
            out = ops.add(y, y_rev)
        elif merge == "ave":
            out = ops.scaled(ops.add(y, y_rev), 0.5)
        elif merge == "mul":
            out = ops.multiply(y, y_rev)
        else:
            out = [y, y_rev]
        if training:
            kept = (y, y_rev) if merge == "mul" else (None, None)
            self._cache = kept + (step_mask, x.shape[0])
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def _concurrent(self):
        """Both layers split into a start and a finish (fastseq's recurrent layers)."""
        return all(hasattr(layer, "_forward_start") for layer in self._sublayers())

    # grad_y: the merged output's gradient -> grad_x: (B, T, D)
    def backward(self, grad_y, need_input_grad=True):
        if self.return_state or self.merge_mode is None:
            raise NotImplementedError(
                f"Bidirectional {self.name!r}: with return_state=True or merge_mode=None the "
                "layer has several outputs: backward_with_states takes their gradients")
        return self._backward([grad_y], None, None, need_input_grad)[0]

    # out_grads: the gradients of the outputs (None: zero), in the order they come ([merged]
    # or [forward, backward] with merge_mode=None, then with return_state the forward
    # layer's states and the backward layer's) -> (grad_x, [grads of the initial states])
    def backward_with_states(self, out_grads, need_input_grad=True):
        """The backward of a call with several outputs (``merge_mode=None``,
        ``return_state``) or given ``initial_state``: a bidirectional encoder whose states
        start a decoder. Returns the input's gradient and those of the initial states, the
        forward layer's then the backward layer's (the order ``initial_state`` takes)."""
        out_grads = list(out_grads)
        n_outputs = 2 if self.merge_mode is None else 1
        n_states = self.forward_layer._state_count if self.return_state else 0
        if len(out_grads) != n_outputs + 2 * n_states:
            raise ValueError(f"Bidirectional {self.name!r}: {len(out_grads)} output gradients "
                             f"for {n_outputs + 2 * n_states} outputs")
        states = out_grads[n_outputs:]
        return self._backward(out_grads[:n_outputs], states[:n_states] or None,
                              states[n_states:] or None, need_input_grad)

    def _backward(self, out_grads, forward_state_grads, backward_state_grads,
                  need_input_grad):
        ops = self.ops
        y, y_rev, step_mask, batch = self._cache
        self._cache = None
        merge = self.merge_mode
        grad_y = out_grads[0]
        if merge is None:
            grad_f, grad_b = out_grads
        elif grad_y is None:
            grad_f = grad_b = None
        elif merge == "concat":
            grad_f, grad_b = ops.split_last(grad_y)
        elif merge == "sum":
            # a copy for the second layer: a backward may overwrite the gradient it gets
            grad_f, grad_b = grad_y, ops.scaled(grad_y, 1.0)
        elif merge == "ave":
            grad_f = ops.scaled(grad_y, 0.5)
            grad_b = ops.scaled(grad_y, 0.5)
        else:  # mul
            grad_f, grad_b = ops.multiply(grad_y, y_rev), ops.multiply(grad_y, y)
        if step_mask is not None:
            grad_f = None if grad_f is None else ops.multiply(grad_f, step_mask)
            grad_b = None if grad_b is None else ops.multiply(grad_b, step_mask)
        if self.return_sequences and grad_b is not None:
            grad_b = ops.flip_time(grad_b)
        forward, backward = self.forward_layer, self.backward_layer
        with_states = forward_state_grads is not None or backward_state_grads is not None
        if not self._concurrent():
            if with_states or grad_f is None or grad_b is None:
                raise NotImplementedError(
                    f"Bidirectional {self.name!r}: training through the states or one "
                    f"direction alone of a {type(forward).__name__} is not supported")
            dx = forward.backward(grad_f, need_input_grad=need_input_grad)
            dx_rev = backward.backward(grad_b, need_input_grad=need_input_grad)
            return (None if not need_input_grad else ops.add(dx, dx_rev, out=dx)), []
        starts = []
        for layer, grad, state_grads in ((forward, grad_f, forward_state_grads),
                                         (backward, grad_b, backward_state_grads)):
            state_grads = list(state_grads or [None] * layer._state_count)
            if grad is None and all(g is None for g in state_grads):
                # no gradient reaches this direction: its weights' gradients are zero
                state_grads[0] = ops.asarray(np.zeros((batch, layer.units),
                                                      dtype=layer.dtype))
            starts.append(layer._backward_start(grad, state_grads))
        grads, grads_rev = ops.run_concurrently(starts)
        dx = forward._backward_finish(grads, need_input_grad)
        dx_rev = backward._backward_finish(grads_rev, need_input_grad)
        state_grads = (list(grads[4:4 + forward._state_count])
                       + list(grads_rev[4:4 + backward._state_count]))
        if not need_input_grad:
            return None, state_grads
        return ops.add(dx, dx_rev, out=dx), state_grads

    # ----- config
    def get_config(self):
        config = super().get_config()
        config.update({"merge_mode": self.merge_mode,
                       "layer": serialize(self.forward_layer),
                       "backward_layer": serialize(self.backward_layer)})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("batch_input_shape"), list):
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        config["layer"] = deserialize(config["layer"], custom_objects=custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            config["backward_layer"] = deserialize(backward, custom_objects=custom_objects)
        return cls(**config)


class TimeDistributed(Wrapper):
    """``TimeDistributed(layer)``: ``layer`` applied to every step of a (batch, time, ...)
    input, the time axis folded into the batch (one call, the same weights at every step;
    the weights are the inner layer's). The mask is passed on as Keras (its steps beyond
    (batch, time), if any, go to the inner layer)."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a fastseq Layer "
                             f"instance. Received: {layer!r}")
        if getattr(layer, "return_state", False):
            raise ValueError(f"TimeDistributed: the wrapped layer {layer.name!r} must have one "
                             "output (return_state=True gives several)")
        kwargs.setdefault("dtype", layer.dtype)  # computes in the wrapped layer's dtype
        super().__init__(**kwargs)
        self.layer = layer
        self._takes_indices = layer._takes_indices  # TimeDistributed(Embedding): int inputs

    def _sublayers(self):
        return (self.layer,)

    @staticmethod
    def _child_shape(input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError("`TimeDistributed` Layer should be passed an `input_shape` with at "
                             f"least 3 dimensions, received: {input_shape}")
        return (input_shape[0],) + tuple(input_shape[2:])

    def build(self, input_shape):
        self.layer._build_for(self._child_shape(input_shape))

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._child_shape(input_shape))
        if isinstance(child, list):
            raise ValueError(f"TimeDistributed: the wrapped layer {self.layer.name!r} must have "
                             "one output")
        return (child[0], input_shape[1]) + tuple(child[1:])

    # x: (B, T, ...) -> (B, T, ...inner output)
    def forward(self, x, mask=None, training=False):
        batch, steps = x.shape[0], x.shape[1]
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs of at least 3 "
                             f"dimensions (batch, time, ...), got shape {tuple(x.shape)}")
        inner_mask = None
        if mask is not None:
            if tuple(mask.shape[:2]) != (batch, steps):
                raise ValueError("`TimeDistributed` Layer should be passed a `mask` of shape "
                                 f"({batch}, {steps}, ...), received: mask.shape={mask.shape}")
            if mask.ndim > 2:  # a mask over the inner layer's own steps
                inner_mask = mask.reshape((batch * steps,) + tuple(mask.shape[2:]))
        folded = self.ops.contiguous(x).reshape((batch * steps,) + tuple(x.shape[2:]))
        y = self.layer.forward(folded, mask=inner_mask, training=training)
        if training:
            self._cache = tuple(x.shape)
        return y.reshape((batch, steps) + tuple(y.shape[1:]))

    def backward(self, grad_y, need_input_grad=True):
        x_shape, self._cache = self._cache, None
        batch, steps = x_shape[:2]
        grad = self.ops.contiguous(grad_y).reshape((batch * steps,) + tuple(grad_y.shape[2:]))
        grad_x = self.layer.backward(grad, need_input_grad=need_input_grad)
        if not need_input_grad:
            return None
        return grad_x.reshape(x_shape)

    def get_config(self):
        config = super().get_config()
        config["layer"] = serialize(self.layer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("batch_input_shape"), list):
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        config["layer"] = deserialize(config["layer"], custom_objects=custom_objects)
        return cls(**config)
