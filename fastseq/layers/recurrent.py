"""The recurrent layers: LSTM, GRU and SimpleRNN, with Keras's arguments, weights and masking.

Weights in Keras's shapes and gate order: LSTM kernel (D, 4u), recurrent_kernel (u, 4u), bias
(4u,), gates i, f, c, o; GRU kernel (D, 3u), recurrent_kernel (u, 3u), bias (2, 3u) with
``reset_after`` (input and recurrent biases) or (3u,), gates z, r, h; SimpleRNN kernel (D, u),
recurrent_kernel (u, u), bias (u,).

All three share one base (:class:`_RNN`): masks (a masked step keeps the state and repeats
the previous output), ``return_sequences``, ``return_state``, ``go_backwards``, an
``initial_state`` call argument, and dropout with Keras 3's semantics: ``dropout`` drops
input features and ``recurrent_dropout`` the recurrent state, each with masks drawn once per
sequence and kept for every step (inverted scaling; nothing at inference). Without
``recurrent_dropout`` the input mask is one per sequence, applied before the kernel; with
it, as Keras's implementation 1, each gate has its own input and recurrent masks, applied
inside the fused kernels.
"""
import numpy as np

from fastseq import activations as _activations
from fastseq import initializers as _initializers

from .base import Layer
from .core import _check_units

__all__ = ["LSTM", "GRU", "SimpleRNN"]


def _rate(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a float in [0, 1), got {type(value).__name__}")
    if not 0 <= value < 1:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return float(value)


def _check_gate_activations(kind, activation, recurrent_activation):
    # the fused LSTM and GRU kernels compute tanh and sigmoid
    if activation != "tanh" or recurrent_activation != "sigmoid":
        raise NotImplementedError(
            f"{kind}: fastseq's kernels implement activation='tanh' with "
            f"recurrent_activation='sigmoid', got {activation!r} / {recurrent_activation!r}")


def call_with_initial_state(layer, x, training, mask, initial_state, n_states):
    """``layer(x, initial_state=...)`` for a recurrent layer or a wrapper of one: on
    symbolic tensors a graph node whose extra inputs are the states; on arrays the layer's
    forward with them. ``n_states``: how many states the layer takes."""
    from .input_layer import is_symbolic

    name = f"{type(layer).__name__} {layer.name!r}"
    if is_symbolic(x):
        states = [] if initial_state is None else (
            list(initial_state) if isinstance(initial_state, (list, tuple))
            else [initial_state])
        if states and not is_symbolic(states):
            raise TypeError(f"{name}: called on a symbolic tensor, initial_state must be "
                            "symbolic tensors too")
        if len(states) not in (0, n_states):
            raise ValueError(f"{name} expects {n_states} initial state(s), got {len(states)}")
        return layer._call_symbolic(x, state_tensors=states, training=training)
    training = bool(training)
    if initial_state is None:
        return Layer.__call__(layer, x, training=training, mask=mask)
    x = np.asarray(x)
    if not layer.built:
        layer._build_for((None,) + x.shape[1:])
    ops = layer.ops
    x = ops.asarray(x, dtype=layer.dtype)
    y = layer.forward(x, mask=mask, training=training, initial_state=initial_state)
    return [ops.to_numpy(t) for t in y] if isinstance(y, list) else ops.to_numpy(y)


class _RNN(Layer):
    """What LSTM, GRU and SimpleRNN share. A subclass sets ``_gates`` (the number of weight
    blocks: 4, 3, 1), ``_state_count`` (2 for the LSTM's h and c, else 1), builds its
    weights and runs its kernel pair in ``_kernel_forward`` / ``_kernel_backward``."""

    _mask_policy = "consume"
    _gates = 1
    _state_count = 1

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, time_major=False, unroll=False, **kwargs):
        kind = type(self).__name__
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._set_weight_options(
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint)
        self.units = _check_units(units, f"{kind}: units")
        self.dropout = _rate(dropout, f"{kind}: dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, f"{kind}: recurrent_dropout")
        if stateful:
            raise NotImplementedError(f"{kind}: stateful=True is not supported by fastseq")
        if time_major:
            raise NotImplementedError(
                f"{kind}: time_major=True is not supported; inputs are (batch, time, features)")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.recurrent_initializer = _initializers.get(recurrent_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.kernel = self.recurrent_kernel = self.bias = None
        self._pending = None  # what a started pass's finish needs (see _forward_start)

    # ----- building
    def build(self, input_shape):
        kind = type(self).__name__
        if len(input_shape) != 3:
            raise ValueError(
                f"{kind} {self.name!r} expects 3-D input (batch, time, features), got shape "
                f"{input_shape}"
            )
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{kind} {self.name!r}: the feature size of the input must be "
                             f"known, got {input_shape}")
        width = self._gates * self.units
        self.kernel = self.add_weight("kernel", (in_dim, width), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        out = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * self._state_count
        return out

    def compute_mask(self, x, mask=None):
        # as Keras's RNN: passed on as given, also with go_backwards (whose outputs come in
        # processing order, so the mask is not reversed with them)
        if self.return_sequences:
            return mask
        return None

    def _training_changes_forward(self):
        return self.dropout > 0 or self.recurrent_dropout > 0

    # ----- dropout masks, drawn on the host (the same stream on every backend)
    def _random(self, shape, dtype):
        if self._rng is not None:
            return self._rng.random(shape, dtype=dtype)
        from fastseq.utils import get_rng

        return get_rng().random(shape, dtype=dtype)

    def _scale_mask(self, shape, rate, dtype):
        keep = self._random(shape, dtype) >= rate
        mask = keep.astype(dtype)
        mask *= 1.0 / (1.0 - rate)
        return self.ops.asarray(mask)

    def _dropout_masks(self, x):
        """(input scale applied before the kernel (B, 1, D) or None, per-gate input masks
        (G, B, D) or None, per-gate recurrent masks (G, B, u) or None)."""
        batch, _, dim = tuple(x.shape)
        dtype = x.dtype
        if self.recurrent_dropout == 0:
            if self.dropout == 0:
                return None, None, None
            # one mask per sequence and feature, shared by all steps and gates
            return self._scale_mask((batch, 1, dim), self.dropout, dtype), None, None
        gates = self._gates
        inputs = (self._scale_mask((gates, batch, dim), self.dropout, dtype)
                  if self.dropout > 0 else None)
        recurrent = self._scale_mask((gates, batch, self.units), self.recurrent_dropout, dtype)
        return None, inputs, recurrent

    # ----- forward / backward
    def _check_initial_state(self, initial_state, x):
        if initial_state is None:
            return [None] * self._state_count
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
            else [initial_state]
        if len(states) != self._state_count:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects {self._state_count} initial "
                f"state(s), got {len(states)}")
        want = (x.shape[0], self.units)
        out = []
        for state in states:
            if tuple(state.shape) != want:
                raise ValueError(f"{type(self).__name__} {self.name!r}: an initial state must "
                                 f"have shape (batch, units) = {want}, got {tuple(state.shape)}")
            out.append(self.ops.asarray(state, dtype=x.dtype) if not self.ops.owns(state)
                       else state)
        return out

    # x: (B, T, D), mask: (B, T) bool -> (B, T, u) or (B, u) [, states (B, u) ...]
    def forward(self, x, mask=None, training=False, initial_state=None):
        return self._forward_finish(self._forward_start(x, mask, training, initial_state)())

    # grad_y: (B, T, u) with return_sequences, else (B, u) -> grad_x: (B, T, D)
    def backward(self, grad_y, need_input_grad=True):
        return self._backward_finish(self._backward_start(grad_y)(), need_input_grad)

    # The passes in two halves, so that a Bidirectional runs its two layers' kernels at once:
    # *_start does the host work in order (checks, the dropout draws) and returns the kernel
    # call; *_finish takes its result.
    def _forward_start(self, x, mask, training, initial_state):
        self._check_input(x)
        if mask is not None and mask.shape != tuple(x.shape[:2]):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: mask of shape {mask.shape} does not "
                f"fit the input {tuple(x.shape)}"
            )
        states = self._check_initial_state(initial_state, x)
        ops = self.ops
        scale = input_masks = recurrent_masks = None
        if training:
            scale, input_masks, recurrent_masks = self._dropout_masks(x)
        if scale is not None:
            x = ops.multiply(x, scale)
        self._pending = (training, scale)
        return lambda: self._kernel_forward(x, states, mask, training, input_masks,
                                            recurrent_masks)

    def _forward_finish(self, result):
        outputs, last_states, cache = result
        training, scale = self._pending
        self._pending = None
        self._cache = (cache, scale) if training else None
        out = outputs if self.return_sequences else last_states[0]
        if self.return_state:
            return [out] + list(last_states)
        return out

    # out_grads: [grad of output, grads of the states (B, u) ...] (None: zero), the layer's
    # outputs with return_state -> (grad_x or None, [grads of the initial states (B, u)])
    def backward_with_states(self, out_grads, need_input_grad=True):
        """The backward of a call with ``return_state`` (gradients may reach the returned
        states: an encoder's states feeding a decoder) and of a call given
        ``initial_state`` (the gradients of those states come back too), as Keras trains
        its sequence-to-sequence models."""
        out_grads = list(out_grads)
        n_states = self._state_count
        n_outputs = 1 + n_states if self.return_state else 1
        if len(out_grads) != n_outputs:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {len(out_grads)} output "
                             f"gradients for {n_outputs} outputs")
        # without return_state no gradient reaches the last states but through the output
        state_grads = out_grads[1:] or [None] * n_states
        grads = self._backward_start(out_grads[0], state_grads)()
        dx = self._backward_finish(grads, need_input_grad)
        return dx, list(grads[4:4 + n_states])

    def _backward_start(self, grad_y, state_grads=None):
        cache, scale = self._cache
        self._cache = None
        self._pending = scale
        grad_h, *grad_others = state_grads or [None] * self._state_count
        if not self.return_sequences:
            # without return_sequences the output is h_last itself: its gradients add
            if grad_h is None or grad_y is None:
                grad_h = grad_y if grad_h is None else grad_h
            else:
                grad_h = self.ops.add(grad_h, grad_y)
            grad_y = None
        kwargs = {"grad_outputs": grad_y, "grad_h_last": grad_h}
        if grad_others and grad_others[0] is not None:
            kwargs["grad_c_last"] = grad_others[0]
        return lambda: self._kernel_backward(cache, **kwargs)

    def _backward_finish(self, grads, need_input_grad):
        scale, self._pending = self._pending, None
        dx, dkernel, drecurrent, dbias = grads[:4]
        if self.kernel.trainable:
            self.kernel.grad = dkernel
        if self.recurrent_kernel.trainable:
            self.recurrent_kernel.grad = drecurrent
        if self.bias is not None and self.bias.trainable:
            self.bias.grad = dbias
        if not need_input_grad:
            return None
        if scale is not None:
            dx = self.ops.multiply(dx, scale, out=dx)
        return dx

    def __call__(self, x, training=None, mask=None, initial_state=None):
        return call_with_initial_state(self, x, training, mask, initial_state,
                                       self._state_count)

    def _kernel_weights(self):
        return (self.kernel.data, self.recurrent_kernel.data,
                None if self.bias is None else self.bias.data)

    def _kernel_forward(self, x, states, mask, training, input_masks, recurrent_masks):
        """(outputs (B, T, u), [last states], cache) from the layer's kernel pair."""
        raise NotImplementedError

    def _kernel_backward(self, cache, grad_outputs=None, grad_h_last=None):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": _initializers.serialize(self.recurrent_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
        })
        return config


class LSTM(_RNN):
    """Keras's LSTM on (batch, time, features) inputs (activation tanh, recurrent activation
    sigmoid: the fused kernels'). With ``return_state`` the layer returns ``[output, h, c]``
    and must be the model's last layer."""

    _gates = 4
    _state_count = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, implementation=2, **kwargs):
        _check_gate_activations("LSTM", activation, recurrent_activation)
        super().__init__(units, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.activation = "tanh"
        self.recurrent_activation = "sigmoid"
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = implementation
        self._folded = None  # (embedding, its weights, kernel, their product): see below

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        u, bias_init = self.units, self.bias_initializer

        def forget_ones(shape, dtype="float32"):
            # Keras: the forget gate's bias block starts at one
            return np.concatenate([
                bias_init((u,), dtype=dtype),
                np.ones((u,), dtype=dtype),
                bias_init((2 * u,), dtype=dtype),
            ])

        return forget_ones

    def _kernel_forward(self, x, states, mask, training, input_masks, recurrent_masks):
        h0, c0 = states
        options = self._output_options()
        if recurrent_masks is not None:  # only then: the kernels' plain path is unchanged
            options.update(input_masks=input_masks, recurrent_masks=recurrent_masks)
        outputs, h_last, c_last, cache = self.ops.lstm_forward(
            x, *self._kernel_weights(), h0=h0, c0=c0, mask=mask,
            go_backwards=self.go_backwards, training=training, **options)
        return outputs, [h_last, c_last], cache

    def _output_options(self):
        # without return_sequences the host kernels skip writing the (B, T, u) outputs
        if self.return_sequences or self.ops.on_device:
            return {}
        return {"return_sequences": False}

    def _kernel_backward(self, cache, grad_outputs=None, grad_h_last=None, grad_c_last=None):
        return self.ops.lstm_backward(cache, grad_outputs=grad_outputs, grad_h_last=grad_h_last,
                                      grad_c_last=grad_c_last)

    # ----- inference from an Embedding's indices: the Embedding folded into the kernel
    def folds_embedding(self, embedding):
        """True when an executor may run ``embedding`` followed by this layer, in inference,
        as :meth:`forward_from_indices` (skipping the Embedding's call): ``embedding`` is an
        Embedding without an activity penalty (its output is never made) and the backend
        computes on the host. The executor also checks that this layer is the only reader
        of the Embedding's output, that the output is not a model output, and that no
        initial state is given."""
        from .embedding import Embedding

        return (isinstance(embedding, Embedding) and not self.ops.on_device
                and getattr(embedding, "activity_regularizer", None) is None)

    def forward_from_indices(self, indices, embedding, mask=None):
        """Inference of ``embedding`` then this layer from the indices (B, T): what
        ``self.forward(embedding.forward(indices), mask)`` returns, within float rounding
        (the input projections come from another GEMM). An embedded token's input
        projection ``e @ kernel`` is a row of ``embeddings @ kernel`` (V, 4u): that table is
        built once, kept while the two weights hold the same values (compared at every call:
        optimizers, set_weights and users write them in place), and the kernel gathers its
        rows in place of the input-projection GEMM. Where a table does not pay (larger than
        64 MB or than the projections of 8 such batches; layers not built) the two layers
        run as usual. An Embedding in another dtype is cast to the LSTM's, as the executor
        casts its output. ``mask``: the Embedding's output mask
        (``embedding.compute_mask(indices)``)."""
        indices = embedding.checked_indices(np.asarray(indices))
        table = self._folded_projections(embedding, indices)
        if table is None:
            x = embedding.forward(indices, mask=None, training=False)
            if x.dtype != self.dtype:  # as the executor casts a layer's input
                x = self.ops.cast(x, self.dtype)
            return self.forward(x, mask=mask, training=False)
        if mask is not None and mask.shape != indices.shape:
            raise ValueError(f"LSTM {self.name!r}: mask of shape {mask.shape} does not fit "
                             f"the indices {indices.shape}")
        outputs, h_last, c_last, _ = self.ops.lstm_forward(
            indices, None, self.recurrent_kernel.data,
            None if self.bias is None else self.bias.data, mask=mask,
            go_backwards=self.go_backwards, training=False, x_proj=table,
            **self._output_options())
        self._pending = (False, None)
        return self._forward_finish((outputs, [h_last, c_last], None))

    _FOLD_MAX_TABLE_BYTES = 64 << 20
    _FOLD_MAX_BATCHES = 8

    def _folded_projections(self, embedding, indices):
        """``embeddings @ kernel`` (V, 4u), cached with copies of the two weights it was
        made from; None where folding does not apply or pay."""
        if not (self.built and embedding.built) or indices.ndim != 2:
            return None
        weights, kernel = embedding.embeddings.data, self.kernel.data
        V, D = weights.shape
        table_bytes = V * kernel.shape[1] * kernel.dtype.itemsize
        if (kernel.shape[0] != D or table_bytes > self._FOLD_MAX_TABLE_BYTES
                or V > self._FOLD_MAX_BATCHES * indices.size):
            return None
        folded = self._folded
        # a content check, not a version: weights change in place in many ways (optimizer
        # steps, assign, set_weights, constraints, users' writes); it reads V*D + D*4u
        # values, a small part of a batch's work where the table pays
        if (folded is not None and folded[0] is embedding
                and np.array_equal(folded[1], weights) and np.array_equal(folded[2], kernel)):
            return folded[3]
        # in the LSTM's dtype, as the executor casts the embedded values for it
        cast = weights if weights.dtype == kernel.dtype else self.ops.cast(weights, kernel.dtype)
        table = np.ascontiguousarray(self.ops.matmul(cast, kernel))
        self._folded = (embedding, weights.copy(), kernel.copy(), table)
        return table

    def get_config(self):
        config = super().get_config()
        config.update({
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "unit_forget_bias": self.unit_forget_bias,
            "implementation": self.implementation,
        })
        return config


class GRU(_RNN):
    """Keras's GRU (Cho et al. 2014): gates z, r, h; ``reset_after=True`` (Keras's default,
    cuDNN-compatible) applies the reset gate after the recurrent product and keeps separate
    input and recurrent biases, bias (2, 3u); ``reset_after=False``, bias (3u,). Activation
    tanh, recurrent activation sigmoid. ``return_state``: ``[output, h]``."""

    _gates = 3
    _state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", reset_after=True, implementation=2, **kwargs):
        _check_gate_activations("GRU", activation, recurrent_activation)
        super().__init__(units, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.activation = "tanh"
        self.recurrent_activation = "sigmoid"
        self.reset_after = bool(reset_after)
        self.implementation = implementation

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _kernel_forward(self, x, states, mask, training, input_masks, recurrent_masks):
        outputs, h_last, cache = self.ops.gru_forward(
            x, *self._kernel_weights(), h0=states[0], mask=mask,
            go_backwards=self.go_backwards, training=training, reset_after=self.reset_after,
            input_masks=input_masks, recurrent_masks=recurrent_masks)
        return outputs, [h_last], cache

    def _kernel_backward(self, cache, grad_outputs=None, grad_h_last=None):
        return self.ops.gru_backward(cache, grad_outputs=grad_outputs, grad_h_last=grad_h_last)

    def get_config(self):
        config = super().get_config()
        config.update({
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "reset_after": self.reset_after,
            "implementation": self.implementation,
        })
        return config


class SimpleRNN(_RNN):
    """Keras's SimpleRNN: ``h = activation(x @ kernel + h @ recurrent_kernel + bias)``, with
    activation tanh (default), relu, sigmoid or linear. ``return_state``: ``[output, h]``."""

    _gates = 1
    _state_count = 1
    _ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", **kwargs):
        super().__init__(units, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        name = _activations.get(activation).name
        if name not in self._ACTIVATIONS:
            raise NotImplementedError(
                f"SimpleRNN: fastseq's kernels implement activation in {self._ACTIVATIONS}, "
                f"got {activation!r}")
        self.activation = name

    def _kernel_forward(self, x, states, mask, training, input_masks, recurrent_masks):
        outputs, h_last, cache = self.ops.simple_rnn_forward(
            x, *self._kernel_weights(), h0=states[0], mask=mask,
            go_backwards=self.go_backwards, training=training, activation=self.activation,
            input_mask=None if input_masks is None else input_masks[0],
            recurrent_mask=None if recurrent_masks is None else recurrent_masks[0])
        return outputs, [h_last], cache

    def _kernel_backward(self, cache, grad_outputs=None, grad_h_last=None):
        return self.ops.simple_rnn_backward(cache, grad_outputs=grad_outputs,
                                            grad_h_last=grad_h_last)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation
        return config
