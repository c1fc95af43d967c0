"""Model-level GPU training: what a Sequential built under ``fastseq.device("cuda")`` runs.

The model keeps its Keras API (fit / evaluate / predict / *_on_batch / weights / save);
:mod:`fastseq.models` hands its per-batch work to :class:`CudaExecutor` through a few
hooks, and the CPU path is untouched.

- Weights: every weight of a cuda model becomes a :class:`DeviceVariable`, whose device
  array is the truth while training. Reading ``.value`` (get_weights, save, summary) copies
  it back once; writing it (set_weights, load) marks the device copy stale, so the next step
  uploads it. NumPy in, NumPy out, as on the CPU.
- One training step: x, y (and the masks, and the dropout masks drawn on the host from the
  same random stream as the CPU path) go up once; forward, loss, backward and the optimizer
  update run on device arrays with the kernels of :mod:`fastseq._kernels.cuda`; one
  (2,)-array comes back: the loss sum and the accuracy sum of the batch.
- Supported: Embedding (first layer, mask_zero), LSTM (return_sequences, go_backwards,
  masks, dropout), Dense, Dropout, Flatten, Activation, Conv1D, MaxPooling1D,
  GlobalAveragePooling1D, GlobalMaxPooling1D; losses binary / categorical / sparse
  categorical cross-entropy and mse; SGD (momentum, Nesterov), Adam (AMSGrad), RMSprop
  (momentum, centered), Adagrad, dense and lazy; the accuracy metrics. Anything else is a
  NotImplementedError when the layer is added or the model compiled.

Results equal the CPU path's within float32 rounding (same formulas, same random draws).
"""
import types

import numpy as np

from fastseq import losses as _losses
from fastseq import metrics as _metrics
from fastseq import optimizers as _optimizers
from fastseq.variables import Variable

__all__ = ["CudaExecutor", "DeviceVariable", "executor_for", "check_layer", "check_compile",
           "SUPPORTED_LAYERS"]

SUPPORTED_LAYERS = ("Embedding", "LSTM", "Dense", "Dropout", "Flatten", "Activation", "Conv1D",
                    "MaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D")
_LOSS_KINDS = {
    _losses.BinaryCrossentropy: "binary_crossentropy",
    _losses.CategoricalCrossentropy: "categorical_crossentropy",
    _losses.SparseCategoricalCrossentropy: "sparse_categorical_crossentropy",
    _losses.MeanSquaredError: "mse",
}
_ACCURACY_METRICS = (_metrics.AutoAccuracy, _metrics.BinaryAccuracy,
                     _metrics.CategoricalAccuracy, _metrics.SparseCategoricalAccuracy)

_kernels_module = None


def _k():
    """fastseq._kernels.cuda and its .training kernels, imported on first use (numba.cuda
    is optional; its import fixes simulator-or-GPU for the process)."""
    global _kernels_module
    if _kernels_module is None:
        from fastseq._device import cuda_status

        usable, reason = cuda_status()
        if not usable:
            raise RuntimeError(f"fastseq cannot run this model on device 'cuda': {reason}")
        from fastseq._kernels import cuda
        from fastseq._kernels.cuda import training

        names = {name: getattr(cuda, name) for name in cuda.__all__}
        names.update({name: getattr(training, name) for name in training.__all__})
        _kernels_module = types.SimpleNamespace(**names)
    return _kernels_module


# ---------------------------------------------------------------------------- checks
def _unsupported(what, detail):
    return NotImplementedError(
        f"{what} has no CUDA path in fastseq{': ' + detail if detail else ''}. Supported on "
        f"device 'cuda': layers {', '.join(SUPPORTED_LAYERS)}; losses binary_crossentropy, "
        "categorical_crossentropy, sparse_categorical_crossentropy, mse; optimizers sgd, adam, "
        "rmsprop, adagrad; metrics accuracy. Build this model on the CPU "
        "(fastseq.set_device('cpu'))."
    )


def check_layer(layer, position):
    """Raise NotImplementedError naming ``layer`` (the ``position``-th of a cuda model) when
    it, or one of its options, has no CUDA path."""
    kind = type(layer).__name__
    what = f"Layer {layer.name!r} ({kind})"
    if kind not in SUPPORTED_LAYERS:
        raise _unsupported(what, "")
    if kind == "Embedding" and position != 0:
        raise _unsupported(what, "on device 'cuda' an Embedding must be the model's first layer")
    if kind == "LSTM" and layer.return_state:
        raise _unsupported(what, "return_state=True")
    if kind == "Dropout" and layer.noise_shape is not None:
        raise _unsupported(what, f"noise_shape={layer.noise_shape}")
    if kind == "Flatten" and layer.data_format == "channels_first":
        raise _unsupported(what, "data_format='channels_first'")


def _loss_kind(loss):
    for cls, kind in _LOSS_KINDS.items():
        if type(loss) is cls:
            return kind
    return None


def check_compile(optimizer, loss, metrics):
    """Raise NotImplementedError naming the optimizer, loss or metric of a cuda model that has
    no CUDA path (checked before compile keeps them)."""
    if type(optimizer) not in (_optimizers.SGD, _optimizers.Adam, _optimizers.RMSprop,
                               _optimizers.Adagrad):
        raise _unsupported(f"Optimizer {type(optimizer).__name__}", "")
    for option in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
        if getattr(optimizer, option):
            raise _unsupported(f"Optimizer {type(optimizer).__name__}",
                               f"{option}={getattr(optimizer, option)}")
    if loss is not None:
        kind = _loss_kind(loss)
        if kind is None:
            raise _unsupported(f"Loss {getattr(loss, 'name', None) or type(loss).__name__}", "")
        if loss.reduction != "sum_over_batch_size":
            raise _unsupported(f"Loss {loss.name}", f"reduction={loss.reduction!r}")
        if getattr(loss, "label_smoothing", 0.0):
            raise _unsupported(f"Loss {loss.name}", f"label_smoothing={loss.label_smoothing}")
    for metric in metrics:
        if type(metric) not in _ACCURACY_METRICS:
            raise _unsupported(f"Metric {metric.name!r} ({type(metric).__name__})", "")


def _check_loss_input(model, fused):
    """Categorical cross-entropy on probabilities (not right after a softmax, not
    from_logits) has no CUDA kernel: say so."""
    kind = _loss_kind(model.loss)
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy") and not (
            fused or model.loss.from_logits):
        raise _unsupported(
            f"Loss {model.loss.name} on probabilities",
            "on device 'cuda' it needs the last layer to end in a softmax (or from_logits=True)")


# ---------------------------------------------------------------------------- weights
class DeviceVariable(Variable):
    """A :class:`Variable` of a cuda model: the device array is the truth while training.

    ``value`` (the host array) is brought up to date on read; a read may be followed by an
    in-place write (``assign``, ``np.copyto``), so after any host access the device copy is
    refreshed before the next step uses it."""

    @classmethod
    def adopt(cls, var):
        """Turn an existing Variable into a DeviceVariable in place (same object, so the
        layer, the optimizer's slot index and the user's references stay valid)."""
        if isinstance(var, DeviceVariable):
            return var
        host = var.__dict__.pop("value")
        var.__class__ = cls
        var._host = host
        var._device = None
        var._host_stale = False   # the device holds newer values than _host
        var._device_stale = True  # _host holds newer values than the device
        return var

    @property
    def value(self):
        if self._host_stale:
            self._device.copy_to_host(self._host)
            self._host_stale = False
        self._device_stale = True
        return self._host

    @value.setter
    def value(self, new_value):
        self._host = np.ascontiguousarray(new_value)
        self._host_stale = False
        self._device_stale = True

    @property
    def shape(self):
        return self._host.shape

    @property
    def dtype(self):
        return self._host.dtype

    def device_value(self):
        """The device array, uploaded first when the host copy changed."""
        from numba import cuda

        if self._device is None:
            self._device = cuda.to_device(self._host)
        elif self._device_stale:
            self._device.copy_to_device(self._host)
        self._device_stale = False
        return self._device

    def device_updated(self):
        """The device array was written (an optimizer step): the host copy is stale."""
        self._host_stale = True


# ---------------------------------------------------------------------------- layers
class _Op:
    """The device twin of one layer: forward / backward on device arrays. Weight gradients go
    to ``grads`` (id(Variable) -> device array, or ("rows", rows, values) for lazy rows)."""

    def __init__(self, layer, grads):
        self.layer = layer
        self.grads = grads
        self.cache = None
        self.logits = None
        self.keep_logits = False

    def w(self, var):
        return None if var is None else var.device_value()

    def set_grad(self, var, grad):
        if var is not None and var.trainable:
            self.grads[id(var)] = grad


class _ActivationMixin:
    def activate(self, z, keep):
        name = self.layer.activation.name
        k = _k()
        if self.keep_logits and name != "linear":
            self.logits = z
            y = k.activation_forward(name, z)
        else:
            self.logits = None
            y = z if name == "linear" else k.activation_forward(name, z, out=z)
        return y

    def activation_grad(self, grad_y, y):
        name = self.layer.activation.name
        if name == "linear":
            return grad_y
        return _k().activation_backward(name, grad_y, y, out=grad_y)


class _EmbeddingOp(_Op):
    # indices: (B, T) int -> y: (B, T, D); gradient: dense (V, D), or row-sparse when lazy
    def __init__(self, layer, grads, lazy_rows):
        super().__init__(layer, grads)
        self.lazy_rows = lazy_rows

    def forward(self, x, host_x, training, keep):
        k = _k()
        high = -1
        if host_x.size:
            low, high = int(host_x.min()), int(host_x.max())
            if low < 0 or high >= self.layer.input_dim:
                bad = low if low < 0 else high
                where = tuple(int(i) for i in np.argwhere(host_x == bad)[0])
                raise IndexError(
                    f"Embedding {self.layer.name!r}: index {bad} at position {where} is out of "
                    f"range: indices must be in [0, {self.layer.input_dim})")
        self.cache = (x, high) if keep else None
        return k.gather(self.w(self.layer.embeddings), x)

    def backward(self, grad_y, need_input_grad):
        (indices, largest), self.cache = self.cache, None
        var = self.layer.embeddings
        if var.trainable:
            k = _k()
            if self.lazy_rows:
                rows, values = k.embedding_backward_sparse(indices, grad_y)
                self.set_grad(var, ("rows", rows, values))
            else:
                self.set_grad(var, k.embedding_grad_dense(indices, grad_y, var.shape[0],
                                                          largest))
        return None


class _LSTMOp(_Op):
    # x: (B, T, D), mask: (B, T) uint8 -> (B, T, H) with return_sequences, else (B, H)
    def forward(self, x, mask, training, keep):
        layer, k = self.layer, _k()
        dropout_mask = None
        if training and layer.dropout > 0:
            from fastseq.utils import get_rng

            # the CPU path's draw, in the same order: (B, 1, D), one mask for all steps
            shape = (x.shape[0], 1, x.shape[2])
            keep_host = get_rng().random(shape, dtype=layer.dtype) >= layer.dropout
            scale = keep_host.astype(layer.dtype)
            scale *= 1.0 / (1.0 - layer.dropout)
            dropout_mask = k.to_device(scale.reshape(shape[0], shape[2]))
            x = k.scale_steps(x, dropout_mask)
        outputs, h_last, _, cache = k.lstm_forward(
            x, self.w(layer.kernel), self.w(layer.recurrent_kernel), self.w(layer.bias),
            mask=mask, go_backwards=layer.go_backwards, training=keep)
        self.cache = (cache, dropout_mask) if keep else None
        return outputs if layer.return_sequences else h_last

    def backward(self, grad_y, need_input_grad):
        layer, k = self.layer, _k()
        (cache, dropout_mask), self.cache = self.cache, None
        if layer.return_sequences:
            grads = k.lstm_backward(cache, grad_outputs=grad_y)
        else:
            grads = k.lstm_backward(cache, grad_h_last=grad_y)
        dx, dkernel, drecurrent, dbias = grads[:4]
        self.set_grad(layer.kernel, dkernel)
        self.set_grad(layer.recurrent_kernel, drecurrent)
        self.set_grad(layer.bias, dbias)
        if not need_input_grad:
            return None
        if dropout_mask is not None:
            dx = k.scale_steps(dx, dropout_mask, out=dx)
        return dx


class _DenseOp(_ActivationMixin, _Op):
    # x: (..., in) -> y: (..., units)
    def forward(self, x, mask, training, keep):
        layer, k = self.layer, _k()
        shape = tuple(x.shape)
        in_dim = layer.kernel.shape[0]
        if shape[-1] != in_dim:
            raise ValueError(f"Input of layer {layer.name!r} is incompatible with the layer: "
                             f"expected axis -1 of size {in_dim}, got an input of shape {shape}")
        x2 = x.reshape(x.size // in_dim, in_dim)
        z = k.matmul(x2, self.w(layer.kernel))
        if layer.bias is not None:
            k.bias_add(z, self.w(layer.bias))
        y = self.activate(z, keep)
        self.cache = (x2, y, shape) if keep else None
        out_shape = shape[:-1] + (layer.units,)
        if self.logits is not None:
            self.logits = self.logits.reshape(out_shape)
        return y.reshape(out_shape)

    def backward(self, grad_y, need_input_grad, from_logits=False):
        _, y, _ = self.cache
        grad_y = grad_y.reshape(y.shape)
        dz = grad_y if from_logits else self.activation_grad(grad_y, y)
        x2, _, x_shape = self.cache
        self.cache = self.logits = None
        layer, k = self.layer, _k()
        if layer.kernel.trainable:
            self.set_grad(layer.kernel, k.matmul(x2.T, dz))
        if layer.bias is not None and layer.bias.trainable:
            self.set_grad(layer.bias, k.column_sum(dz))
        if not need_input_grad:
            return None
        return k.matmul(dz, self.w(layer.kernel).T).reshape(x_shape)


class _DropoutOp(_Op):
    # x: any shape -> x * scale_mask in training (mask drawn on the host, as the CPU path)
    def forward(self, x, mask, training, keep):
        layer = self.layer
        self.cache = None
        if not training or layer.rate == 0:
            return x
        keep_mask = layer._random(tuple(x.shape)) >= layer.rate
        scale = keep_mask.astype(x.dtype)
        scale *= 1.0 / (1.0 - layer.rate)
        k = _k()
        scale_dev = k.to_device(scale)
        self.cache = scale_dev if keep else None
        return k.multiply(x, scale_dev)

    def backward(self, grad_y, need_input_grad):
        scale, self.cache = self.cache, None
        if not need_input_grad:
            return None
        if scale is None:
            return grad_y
        return _k().multiply(grad_y, scale, out=grad_y)


class _FlattenOp(_Op):
    # (B, d1, d2, ...) -> (B, d1 * d2 * ...)
    def forward(self, x, mask, training, keep):
        self.cache = tuple(x.shape) if keep else None
        return x.reshape(x.shape[0], x.size // max(x.shape[0], 1))

    def backward(self, grad_y, need_input_grad):
        shape, self.cache = self.cache, None
        return grad_y.reshape(shape) if need_input_grad else None


class _ActivationOp(_Op):
    # x: any shape -> activation(x) (a new array)
    def forward(self, x, mask, training, keep):
        name = self.layer.activation.name
        self.logits = x if self.keep_logits and name != "linear" else None
        y = _k().activation_forward(name, x)
        self.cache = y if keep else None
        return y

    def backward(self, grad_y, need_input_grad, from_logits=False):
        y, self.cache = self.cache, None
        self.logits = None
        if not need_input_grad:
            return None
        if from_logits or self.layer.activation.name == "linear":
            return grad_y
        return _k().activation_backward(self.layer.activation.name, grad_y, y, out=grad_y)


class _Conv1DOp(_ActivationMixin, _Op):
    # x: (B, L, Cin) -> y: (B, Lout, filters)
    def forward(self, x, mask, training, keep):
        layer, k = self.layer, _k()
        layer._check_length(x.shape[1])
        z, cache = k.conv1d_forward(x, self.w(layer.kernel), self.w(layer.bias),
                                    strides=layer.strides, padding=layer.padding,
                                    dilation_rate=layer.dilation_rate)
        y = self.activate(z, keep)
        self.cache = (cache, y) if keep else None
        return y

    def backward(self, grad_y, need_input_grad, from_logits=False):
        cache, y = self.cache
        self.cache = self.logits = None
        dz = grad_y if from_logits else self.activation_grad(grad_y, y)
        dx, dkernel, dbias = _k().conv1d_backward(cache, dz)
        self.set_grad(self.layer.kernel, dkernel)
        self.set_grad(self.layer.bias, dbias)
        return dx if need_input_grad else None


class _MaxPoolingOp(_Op):
    # x: (B, L, C) -> y: (B, Lout, C)
    def forward(self, x, mask, training, keep):
        layer = self.layer
        layer._check_length(x.shape[1])
        y, cache = _k().max_pool1d_forward(x, pool_size=layer.pool_size, strides=layer.strides,
                                           padding=layer.padding)
        self.cache = cache if keep else None
        return y

    def backward(self, grad_y, need_input_grad):
        cache, self.cache = self.cache, None
        return _k().max_pool1d_backward(cache, grad_y) if need_input_grad else None


class _GlobalPoolingOp(_Op):
    # x: (B, L, C), mask: (B, L) uint8 or None -> y: (B, C), or (B, 1, C) with keepdims
    def forward(self, x, mask, training, keep):
        layer = self.layer
        y, cache = getattr(_k(), layer._forward_name)(x, mask=mask)
        self.cache = cache if keep else None
        return y.reshape(y.shape[0], 1, y.shape[1]) if layer.keepdims else y

    def backward(self, grad_y, need_input_grad):
        cache, self.cache = self.cache, None
        if not need_input_grad:
            return None
        grad_y = grad_y.reshape(grad_y.shape[0], grad_y.size // max(grad_y.shape[0], 1))
        return getattr(_k(), self.layer._backward_name)(cache, grad_y)


_OPS = {"LSTM": _LSTMOp, "Dense": _DenseOp, "Dropout": _DropoutOp, "Flatten": _FlattenOp,
        "Activation": _ActivationOp, "Conv1D": _Conv1DOp, "MaxPooling1D": _MaxPoolingOp,
        "GlobalAveragePooling1D": _GlobalPoolingOp, "GlobalMaxPooling1D": _GlobalPoolingOp}


# ---------------------------------------------------------------------------- optimizer
class _DeviceOptimizer:
    """Applies a fastseq optimizer's update (its hyper-parameters, iteration counter and
    slot layout) to device weights. The host slots (``optimizer._slots``) keep their shapes
    and order for saving; their device twins hold the values while training
    (:meth:`download` copies them back, :meth:`upload` after a restored state)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.slots = {}  # (slot name, position) -> device array

    def _position(self, var):
        opt = self.optimizer
        pos = opt._index.get(id(var))
        if pos is not None and opt._vars[pos] is var:
            if (opt._slot_specs() and (opt._slot_specs()[0][0], pos) not in self.slots):
                self._upload_slots(pos)
            return pos
        pos = opt._track(var)
        self._upload_slots(pos)
        return pos

    def _upload_slots(self, pos):
        from numba import cuda

        for name, _ in self.optimizer._slot_specs():
            self.slots[(name, pos)] = cuda.to_device(self.optimizer._slots[name][pos])

    def upload(self):
        """Refresh every device slot from the host slots (after optimizer.set_state)."""
        for (name, pos), dev in self.slots.items():
            dev.copy_to_device(self.optimizer._slots[name][pos])

    def download(self):
        """Copy the device slots into the host slots (before saving the optimizer state)."""
        for (name, pos), dev in self.slots.items():
            dev.copy_to_host(self.optimizer._slots[name][pos])

    def _slot(self, name, pos):
        return self.slots[(name, pos)].reshape(-1)

    def apply(self, variables, grads):
        """One update of every trainable variable with a gradient; counts one iteration."""
        updated = []
        for var in variables:
            if not var.trainable:
                continue
            pos = self._position(var)
            grad = grads.get(id(var))
            if grad is not None:
                updated.append((var, pos, grad))
        if not updated:
            return
        for var, pos, grad in updated:
            w = var.device_value()
            if isinstance(grad, tuple):
                _, rows, values = grad
                width = values.shape[1] if len(values.shape) > 1 else 1
                self._rows(w.reshape(-1), pos, rows, values.reshape(-1), width, var.dtype)
            else:
                self._dense(w.reshape(-1), pos, grad.reshape(-1), var.dtype)
            var.device_updated()
        self.optimizer.iterations += 1

    def _dense(self, w, pos, g, dtype):
        opt, k, dt = self.optimizer, _k(), np.dtype(dtype).type
        if isinstance(opt, _optimizers.SGD):
            if opt.momentum != 0:
                kernel = k.sgd_nesterov_dense if opt.nesterov else k.sgd_momentum_dense
                kernel(w, self._slot("momentum", pos), g, dt(opt.learning_rate),
                       dt(opt.momentum))
            else:
                k.sgd_dense(w, g, dt(opt.learning_rate))
        elif isinstance(opt, _optimizers.Adam):
            m, v = self._slot("momentum", pos), self._slot("velocity", pos)
            if opt.amsgrad:
                k.adam_amsgrad_dense(w, m, v, self._slot("velocity_hat", pos), g,
                                     *opt._scalars(dtype))
            else:
                k.adam_dense(w, m, v, g, *opt._scalars(dtype))
        elif isinstance(opt, _optimizers.RMSprop):
            suffix, slots = self._rmsprop_variant(pos)
            getattr(k, f"rmsprop{suffix}_dense")(w, self._slot("velocity", pos), *slots, g,
                                                 *opt._scalars(dtype))
        else:
            k.adagrad_dense(w, self._slot("accumulator", pos), g, dt(opt.learning_rate),
                            dt(opt.epsilon))

    def _rows(self, w, pos, rows, values, width, dtype):
        opt, k, dt = self.optimizer, _k(), np.dtype(dtype).type
        if isinstance(opt, _optimizers.SGD):
            if opt.momentum != 0:
                kernel = k.sgd_nesterov_rows if opt.nesterov else k.sgd_momentum_rows
                kernel(w, self._slot("momentum", pos), rows, values, width,
                       dt(opt.learning_rate), dt(opt.momentum), opt.lazy)
            else:
                k.sgd_rows(w, rows, values, width, dt(opt.learning_rate))
        elif isinstance(opt, _optimizers.Adam):
            m, v = self._slot("momentum", pos), self._slot("velocity", pos)
            if opt.amsgrad:
                k.adam_amsgrad_rows(w, m, v, self._slot("velocity_hat", pos), rows, values,
                                    width, *opt._scalars(dtype), opt.lazy)
            else:
                k.adam_rows(w, m, v, rows, values, width, *opt._scalars(dtype), opt.lazy)
        elif isinstance(opt, _optimizers.RMSprop):
            suffix, slots = self._rmsprop_variant(pos)
            getattr(k, f"rmsprop{suffix}_rows")(w, self._slot("velocity", pos), *slots, rows,
                                                values, width, *opt._scalars(dtype), opt.lazy)
        else:
            k.adagrad_rows(w, self._slot("accumulator", pos), rows, values, width,
                           dt(opt.learning_rate), dt(opt.epsilon))

    def _rmsprop_variant(self, pos):
        # (kernel name suffix, extra slot arrays), as RMSprop._variant
        opt = self.optimizer
        suffix, slots = "", []
        if opt.centered:
            suffix = "_centered"
        if opt.momentum > 0:
            suffix += "_momentum"
            slots.append(self._slot("momentum", pos))
        if opt.centered:
            slots.append(self._slot("average_gradient", pos))
        return suffix, slots


# ---------------------------------------------------------------------------- batch results
class DeviceBatch:
    """What one batch's device work sends back: the loss and the accuracy sums, and how to
    weigh them as the CPU path's loss tracker and Mean metrics do."""

    def __init__(self, loss, metric_total, metric_count):
        self.loss = loss
        self.metric_total = metric_total
        self.metric_count = metric_count

    def update_metrics(self, metrics, y, output_shape, dtype):
        for metric in metrics:
            target = _concrete_metric(metric, y, output_shape, dtype)
            target.total += self.metric_total
            target.count += self.metric_count


def _concrete_metric(metric, y, output_shape, dtype):
    """The metric itself, or what an AutoAccuracy resolves to for these targets and outputs
    (resolved once, as its first update_state on the CPU)."""
    if not isinstance(metric, _metrics.AutoAccuracy):
        return metric
    if metric.resolved is None:
        metric.resolved = metric._resolve(y, np.empty((0,) + tuple(output_shape[1:]),
                                                      dtype=dtype))
    return metric.resolved


def _accuracy_kind(metrics, y, output_shape, dtype):
    """(kind, threshold) of the model's accuracy metric: 0 none, 1 binary, 2 categorical,
    3 sparse categorical (all accuracy metrics of a model resolve alike)."""
    for metric in metrics:
        metric = _concrete_metric(metric, y, output_shape, dtype)
        if isinstance(metric, _metrics.BinaryAccuracy):
            return 1, metric._fn_kwargs.get("threshold", 0.5)
        if isinstance(metric, _metrics.CategoricalAccuracy):
            return 2, 0.5
        if isinstance(metric, _metrics.SparseCategoricalAccuracy):
            return 3, 0.5
    return 0, 0.5


# ---------------------------------------------------------------------------- executor
class CudaExecutor:
    """Runs a cuda Sequential's batches on the GPU (see the module docstring)."""

    def __init__(self, model):
        for i, layer in enumerate(model._layers):
            check_layer(layer, i)
        if model.optimizer is not None:
            check_compile(model.optimizer, model.loss, model.compiled_metrics)
        self.model = model
        self.grads = {}
        lazy = bool(getattr(model.optimizer, "lazy", False))
        self.ops = []
        for layer in model._layers:
            name = type(layer).__name__
            if name == "Embedding":
                self.ops.append(_EmbeddingOp(layer, self.grads, lazy))
            else:
                self.ops.append(_OPS[name](layer, self.grads))
            for var in layer.weights:
                DeviceVariable.adopt(var)
        self.optimizer = (_DeviceOptimizer(model.optimizer) if model.optimizer is not None
                          else None)
        self.key = _executor_key(model)

    # ----- passes
    def _masks(self, x_host):
        """The mask reaching each layer (host arrays, from the layers' own compute_mask, so
        warnings and semantics are the CPU path's) and the output mask."""
        masks, mask = [], None
        for i, layer in enumerate(self.model._layers):
            masks.append(mask)
            mask = layer.compute_mask(x_host if i == 0 else None, mask)
        return masks, mask

    def _forward(self, x_host, training):
        """(device output, host output mask); keeps the caches when training."""
        model, k = self.model, _k()
        fused = model._fusion()
        for op in self.ops:
            op.keep_logits = bool(getattr(op.layer, "_keep_logits", False)) and fused
        masks, out_mask = self._masks(x_host)
        device_masks = {}
        x = k.to_device(x_host)
        stop = model._backward_start() if training else 0
        for i, (layer, op) in enumerate(zip(model._layers, self.ops)):
            layer_training = training and (i >= stop or layer._training_changes_forward())
            keep = training and i >= stop
            if isinstance(op, _EmbeddingOp):
                x = op.forward(x, x_host, layer_training, keep)
                continue
            mask = masks[i]
            if mask is not None:
                if id(mask) not in device_masks:
                    device_masks[id(mask)] = k.to_device(np.ascontiguousarray(mask, np.uint8))
                mask = device_masks[id(mask)]
            x = op.forward(x, mask, layer_training, keep)
        return x, out_mask

    def _fused(self):
        """True when the loss takes the last layer's logits (kept by its forward)."""
        return self.model._fusion() and self.ops[-1].logits is not None

    def _loss(self, y_host, y_pred, out_mask, need_grad):
        """(stats (R, 2) device array, grad of the loss input or None, loss denominator,
        metric weighing): the per-row loss and accuracy of the batch, on the device."""
        model, k = self.model, _k()
        loss = model.loss
        kind = _loss_kind(loss)
        fused = self._fused()
        _check_loss_input(model, fused)
        logits_mode = fused or bool(getattr(loss, "from_logits", False))
        loss_input = self.ops[-1].logits if fused else y_pred
        shape = tuple(y_pred.shape)
        n_classes = shape[-1]
        rows = y_pred.size // n_classes
        batch = shape[0]
        # Keras weighs the loss and metrics of a sequence output by its mask (the CPU
        # path keeps the unmasked steps): here a 0/1 weight per row
        weights = None
        y_mask_shape = np.shape(y_host)[:2]
        if (out_mask is not None and len(shape) >= 3 and out_mask.shape == shape[:2]
                and y_mask_shape == out_mask.shape and not out_mask.all()):
            weights = out_mask.reshape(-1)
        if weights is None:
            denom = rows
            metric_scale, metric_count = rows // max(batch, 1), batch
        else:
            denom = int(weights.sum())
            metric_scale, metric_count = 1, denom
        dtype = np.dtype(y_pred.dtype)
        if kind == "sparse_categorical_crossentropy":
            labels = np.asarray(y_host)
            labels = labels.astype(np.int64).reshape(-1)
            if labels.size != rows:
                raise ValueError(f"{loss.name}: {labels.size} labels for an output of shape "
                                 f"{shape}")
            y_dev = k.to_device(np.ascontiguousarray(labels))
        else:
            targets = np.asarray(y_host, dtype=dtype)
            if targets.size != y_pred.size:
                raise ValueError(f"{loss.name}: labels of shape {targets.shape} do not fit the "
                                 f"model output of shape {shape}")
            y_dev = k.to_device(np.ascontiguousarray(targets.reshape(rows, n_classes)))
        weight_dev = k.to_device(np.ascontiguousarray(weights, dtype=dtype)) if weights \
            is not None else None
        pred2 = loss_input.reshape(rows, n_classes)
        prob2 = y_pred.reshape(rows, n_classes)
        stats, grad = k.loss_rows(kind, logits_mode, y_dev, pred2, weight_dev,
                                  1.0 / max(denom, 1), need_grad)
        metric_kind, threshold = _accuracy_kind(model.compiled_metrics, y_host, shape, dtype)
        if metric_kind:
            k.accuracy_rows(metric_kind, threshold, y_dev, prob2, weight_dev, stats)
        if grad is not None:
            grad = grad.reshape(tuple(loss_input.shape))
        return stats, grad, max(denom, 1), (metric_scale, metric_count)

    def _result(self, stats, denom, weighing):
        for op in self.ops:  # the batch is done: drop the kept logits
            op.logits = None
        sums = _k().column_sum(stats).copy_to_host()  # the one transfer back of a batch
        metric_scale, metric_count = weighing
        return DeviceBatch(float(sums[0]) / denom, float(sums[1]) / metric_scale,
                           metric_count)

    def train_step(self, x, y):
        """One training step: (loss, DeviceBatch, None) as Sequential._train_step."""
        model = self.model
        self.grads.clear()
        for var in model.trainable_weights:
            var.grad = None
        y_pred, out_mask = self._forward(x, training=True)
        stats, grad, denom, weighing = self._loss(y, y_pred, out_mask, need_grad=True)
        fused = self._fused()
        stop = model._backward_start()
        last = len(self.ops) - 1
        for i in range(last, stop - 1, -1):
            op = self.ops[i]
            need = i > stop
            if i == last and fused:
                grad = op.backward(grad, need, from_logits=True)
            else:
                grad = op.backward(grad, need)
        self.optimizer.apply(model.trainable_weights, self.grads)
        self.grads.clear()
        result = self._result(stats, denom, weighing)
        return result.loss, result, None

    def eval_step(self, x, y):
        """Loss and metric sums of one batch without training: (loss, DeviceBatch, None)."""
        y_pred, out_mask = self._forward(x, training=False)
        stats, _, denom, weighing = self._loss(y, y_pred, out_mask, need_grad=False)
        result = self._result(stats, denom, weighing)
        return result.loss, result, None

    def forward(self, x, training):
        """The model's output as a NumPy array, and the output mask, as Sequential._forward."""
        y, out_mask = self._forward(x, training=training)
        for op in self.ops:
            op.cache = op.logits = None
        return _k().to_host(y), out_mask

    def sync_to_host(self):
        """Bring the optimizer state back to the host slots (the weights sync on read)."""
        if self.optimizer is not None:
            self.optimizer.download()


def _executor_key(model):
    return (tuple(id(layer) for layer in model._layers), id(model.optimizer), id(model.loss),
            tuple(id(m) for m in model.compiled_metrics))


def executor_for(model):
    """The model's CudaExecutor, made (again) when its layers or compile settings changed."""
    executor = getattr(model, "_cuda_executor", None)
    if executor is None or executor.key != _executor_key(model):
        _k()
        executor = CudaExecutor(model)
        model._cuda_executor = executor
    return executor

