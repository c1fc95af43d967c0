"""The CUDA backend: the numba.cuda kernels of :mod:`fastseq._kernels.cuda` on device
arrays, with host/device transfers at the edges.

Weights, optimizer slots, activations, caches and gradients stay on the device; host data
enters through :meth:`CudaOps.asarray` (a model's batch, dropout masks drawn on the host from
the same random stream as the CPU) and leaves through :meth:`CudaOps.to_numpy`. Masks and
integer indices are host arrays that the kernels copy up themselves. The loss of the common
Keras losses (binary / categorical / sparse categorical cross-entropy, mse) and the accuracy
metrics run on the device, so a training step copies back only two scalars; any other loss,
metric, activation or broadcast runs through the host (exact, slower), never an error.

Results equal the CPU backend's within float32 rounding (same formulas, same random draws).
"""
import numpy as np

from fastseq import losses as _losses
from fastseq import metrics as _metrics

from .ops import Ops

__all__ = ["CudaOps"]

# the losses with a device kernel, by exact class (subclasses may change the formula)
_LOSS_KINDS = {
    _losses.BinaryCrossentropy: "binary_crossentropy",
    _losses.CategoricalCrossentropy: "categorical_crossentropy",
    _losses.SparseCategoricalCrossentropy: "sparse_categorical_crossentropy",
    _losses.MeanSquaredError: "mse",
}
_DEVICE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _import_kernels():
    from fastseq._device import cuda_status

    usable, reason = cuda_status()
    if not usable:
        raise RuntimeError(f"fastseq cannot use device 'cuda': {reason}")
    from fastseq._kernels import cuda
    from fastseq._kernels.cuda import training

    return cuda, training


class _DeviceKernels:
    """The CUDA kernel pairs by name; a pair with no CUDA kernel yet runs the NumPy reference
    through the host (its cache stays there, its outputs come back to the device)."""

    def __init__(self, ops, module):
        self._ops, self._module = ops, module

    def __getattr__(self, name):
        kernel = getattr(self._module, name, None)
        if kernel is not None:
            return kernel
        from fastseq._kernels import reference

        return self._host(getattr(reference, name), keeps_cache=name.endswith("_forward"))

    def _host(self, reference_kernel, keeps_cache):
        ops = self._ops

        def down(value):
            return ops.to_numpy(value) if ops.owns(value) else value

        def up(value):
            if isinstance(value, tuple):
                return tuple(up(v) for v in value)
            return ops.asarray(value) if isinstance(value, np.ndarray) else value

        def run(*args, **kwargs):
            result = reference_kernel(*[down(a) for a in args],
                                      **{k: down(v) for k, v in kwargs.items()})
            if keeps_cache:  # (arrays..., cache): the cache stays for the reference backward
                return up(result[:-1]) + (result[-1],)
            return up(result)

        return run


class CudaOps(Ops):
    name = "cuda"
    device = "cuda"
    on_device = True

    def __init__(self):
        self._k, self._t = _import_kernels()
        self._kernels = _DeviceKernels(self, self._k)
        self._optim = self._k
        super().__init__()

    # ------------------------------------------------------------------ arrays
    def asarray(self, x, dtype=None):
        if self.owns(x):
            return x
        return self._t.to_device(np.asarray(x, dtype=dtype))

    def to_numpy(self, x):
        return self._k.to_host(x)

    def owns(self, x):
        return self._k.is_device_array(x)

    def full(self, shape, value, dtype):
        from numba import cuda

        return self._k.fill(cuda.device_array(shape, dtype=dtype), value)

    def empty_like(self, x):
        from numba import cuda

        return cuda.device_array(tuple(x.shape), dtype=x.dtype)

    def copy_into(self, dst, src):
        dst.copy_to_device(np.ascontiguousarray(src, dtype=dst.dtype))

    def cast(self, x, dtype):
        return self._via_host(lambda a: a.astype(dtype), x)

    def contiguous(self, x):
        return x  # device arrays made by the kernels are C-contiguous

    def _via_host(self, fn, *arrays):
        """``fn`` on host copies of ``arrays``, its result copied back: the exact path for
        what has no device kernel."""
        result = fn(*[self.to_numpy(a) for a in arrays])
        return self.asarray(result)

    def apply(self, fn, *arrays):
        result = fn(*[self.to_numpy(a) if self.owns(a) else a for a in arrays])
        if isinstance(result, (list, tuple)):
            return [self.asarray(r) for r in result]
        return self.asarray(result)

    def moveaxis(self, x, source, destination):
        return self._via_host(lambda a: np.ascontiguousarray(np.moveaxis(a, source,
                                                                         destination)), x)

    # ------------------------------------------------------------------ small ops
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        return self._k.matmul(a.T if transpose_a else a, b.T if transpose_b else b)

    def bias_add(self, z, bias):
        return self._k.bias_add(z, bias)

    def column_sum(self, x):
        return self._k.column_sum(x)

    def activation_forward(self, activation, z, out=None):
        name = getattr(activation, "name", None)
        if name not in _DEVICE_ACTIVATIONS:
            result = self._via_host(activation.forward, z)
            if out is not None:
                out.copy_to_device(result)
                return out
            return result
        if name == "linear":
            if out is None or out is z:
                return z
            out.copy_to_device(z)
            return out
        return self._k.activation_forward(name, z, out=out)

    def activation_backward(self, activation, grad_y, y):
        name = getattr(activation, "name", None)
        if name not in _DEVICE_ACTIVATIONS:
            return self._via_host(activation.backward, grad_y, y)
        if name == "linear":
            return grad_y
        return self._k.activation_backward(name, grad_y, y, out=grad_y)

    def multiply(self, x, scale, out=None):
        x_shape, s_shape = tuple(x.shape), tuple(scale.shape)
        if x_shape == s_shape:
            return self._t.multiply(x, scale, out=out)
        if len(x_shape) == 3 and s_shape == (x_shape[0], 1, x_shape[2]):
            # one mask per sequence for every step (LSTM input dropout)
            return self._t.scale_steps(x, scale.reshape(x_shape[0], x_shape[2]), out=out)
        result = self._via_host(np.multiply, x, scale)
        if out is not None:
            out.copy_to_device(result)
            return out
        return result

    def add(self, a, b, out=None):
        result = self._via_host(np.add, a, b)
        if out is not None:
            out.copy_to_device(result)
            return out
        return result

    # time flips, concatenation and splits of the last axis go through the host (exact; a
    # device kernel for them is future work)
    def flip_time(self, x):
        return self._via_host(lambda a: np.ascontiguousarray(a[:, ::-1]), x)

    def concatenate_last(self, a, b):
        return self._via_host(lambda p, q: np.concatenate([p, q], axis=-1), a, b)

    def split_last(self, x):
        host = self.to_numpy(x)
        half = host.shape[-1] // 2
        return self.asarray(host[..., :half]), self.asarray(host[..., half:])

    # ------------------------------------------------------------------ gradient clipping
    def sum_of_squares(self, x):
        return super().sum_of_squares(self.to_numpy(x))

    def scaled(self, x, factor):
        out = self.empty_like(x)
        out.copy_to_device(x)
        return self._k.scale_inplace(out, factor)

    def clipped(self, x, limit):
        return self._via_host(lambda a: np.clip(a, -limit, limit), x)

    def decay(self, w, factor):
        self._k.scale_inplace(w, 1.0 - factor)

    # ------------------------------------------------------------------ loss and metrics
    def _row_weights(self, y_true, shape, mask):
        """A 0/1 weight per output row where a sequence output is masked (Keras weighs the
        loss and metrics by the mask), else None."""
        y_shape = np.shape(y_true)[:2]
        if (mask is not None and len(shape) >= 3 and mask.shape == shape[:2]
                and y_shape == mask.shape and not mask.all()):
            return mask.reshape(-1)
        return None

    def _device_targets(self, kind, y_true, rows, n_classes, dtype, what):
        if kind == "sparse_categorical_crossentropy":
            labels = np.asarray(y_true).astype(np.int64).reshape(-1)
            if labels.size != rows:
                raise ValueError(f"{what}: {labels.size} labels for {rows} output rows")
            return self._t.to_device(labels)
        targets = np.asarray(y_true, dtype=dtype)
        if targets.size != rows * n_classes:
            raise ValueError(f"{what}: labels of shape {targets.shape} do not fit the model "
                             f"output of {rows} rows of {n_classes}")
        return self._t.to_device(targets.reshape(rows, n_classes))

    def loss_forward_backward(self, loss, y_true, y_pred, mask=None, from_logits=False,
                              need_grad=True, sample_weight=None):
        if sample_weight is not None:  # weighted losses run the reference on the host
            value, grad = super().loss_forward_backward(
                loss, y_true, self.to_numpy(y_pred), mask, from_logits, need_grad,
                sample_weight)
            return value, (None if grad is None else self.asarray(grad))
        kind = _LOSS_KINDS.get(type(loss))
        logits_mode = bool(from_logits or getattr(loss, "from_logits", False))
        device_kernel = (
            kind is not None and loss.reduction == "sum_over_batch_size"
            and not getattr(loss, "label_smoothing", 0.0)
            and (logits_mode or kind in ("binary_crossentropy", "mse")))
        if not device_kernel:
            value, grad = super().loss_forward_backward(
                loss, y_true, self.to_numpy(y_pred), mask, from_logits, need_grad)
            return value, (None if grad is None else self.asarray(grad))
        shape = tuple(y_pred.shape)
        n_classes = shape[-1]
        rows = y_pred.size // max(n_classes, 1)
        weights = self._row_weights(y_true, shape, mask)
        denom = max(rows if weights is None else int(weights.sum()), 1)
        dtype = np.dtype(y_pred.dtype)
        y_dev = self._device_targets(kind, y_true, rows, n_classes, dtype, loss.name)
        weight_dev = None if weights is None else self._t.to_device(weights.astype(dtype))
        stats, grad = self._t.loss_rows(kind, logits_mode, y_dev,
                                        y_pred.reshape(rows, n_classes), weight_dev,
                                        1.0 / denom, need_grad)
        value = float(self._k.column_sum(stats).copy_to_host()[0]) / denom
        return value, (None if grad is None else grad.reshape(shape))

    def update_metrics(self, metrics, y_true, y_pred, mask=None, sample_weight=None):
        if not metrics:
            return
        if sample_weight is not None:
            return super().update_metrics(metrics, y_true, y_pred, mask, sample_weight)
        shape = tuple(y_pred.shape)
        concrete = [self._concrete(m, y_true, shape, y_pred.dtype) for m in metrics]
        kinds = {self._accuracy_kind(m) for m in concrete}
        if None in kinds or len(kinds) != 1:
            return super().update_metrics(metrics, y_true, y_pred, mask)
        (kind, threshold), = kinds
        n_classes = shape[-1]
        rows = y_pred.size // max(n_classes, 1)
        weights = self._row_weights(y_true, shape, mask)
        dtype = np.dtype(y_pred.dtype)
        loss_kind = "sparse_categorical_crossentropy" if kind == 3 else None
        y_dev = self._device_targets(loss_kind, y_true, rows, n_classes, dtype, "accuracy")
        weight_dev = None if weights is None else self._t.to_device(weights.astype(dtype))
        stats = self._k.zeros((rows, 2), dtype)
        self._t.accuracy_rows(kind, threshold, y_dev, y_pred.reshape(rows, n_classes),
                              weight_dev, stats)
        hits = float(self._k.column_sum(stats).copy_to_host()[1])
        # weighed as the CPU's Mean metric: per sample (steps averaged), or per kept step
        batch = shape[0]
        if weights is None:
            total, count = hits / max(rows // max(batch, 1), 1), batch
        else:
            total, count = hits, int(weights.sum())
        for metric in concrete:
            metric.total += total
            metric.count += count

    @staticmethod
    def _concrete(metric, y_true, shape, dtype):
        """The metric, or what an AutoAccuracy resolves to (as its first update would)."""
        if not isinstance(metric, _metrics.AutoAccuracy):
            return metric
        if metric.resolved is None:
            metric.resolved = metric._resolve(y_true, np.empty((0,) + shape[1:], dtype=dtype))
        return metric.resolved

    @staticmethod
    def _accuracy_kind(metric):
        """(kind, threshold) of an accuracy metric with a device kernel (1 binary,
        2 categorical, 3 sparse categorical), else None."""
        if type(metric) is _metrics.BinaryAccuracy:
            return 1, float(metric._fn_kwargs.get("threshold", 0.5))
        if type(metric) is _metrics.CategoricalAccuracy:
            return 2, 0.5
        if type(metric) is _metrics.SparseCategoricalAccuracy:
            return 3, 0.5
        return None
