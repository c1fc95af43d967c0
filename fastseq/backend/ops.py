"""The backend interface: every array operation a layer, loss, metric or optimizer needs.

:class:`Ops` is the base and the NumPy reference (the slow obvious version of every op, the
oracle of the tests and the baseline of the benchmarks). :class:`~fastseq.backend.cpu.CpuOps`
overrides the kernel pairs and optimizer updates with fastseq's checked fast kernels;
:class:`~fastseq.backend.cuda.CudaOps` runs everything on numba.cuda device arrays. A model
takes one ``Ops`` when it is built (the device in force, :func:`fastseq.set_device`) and
hands it to its layers, its optimizer and its loss step, so a layer's forward/backward is
written once, against this interface, and runs on every device.

"Backend arrays" are what an ``Ops`` computes on: NumPy arrays here and on the CPU, device
arrays on CUDA. Host data enters through :meth:`Ops.asarray` and leaves through
:meth:`Ops.to_numpy`; masks and integer indices stay host arrays (each backend moves them
where its kernels need them).
"""
import numpy as np

from fastseq._kernels import reference as _reference
from fastseq._kernels.reference import optim as _reference_optim

__all__ = ["Ops"]

# Kernel pairs and optimizer updates an Ops takes from its kernel namespaces by name.
KERNEL_NAMES = (
    "embedding_forward", "embedding_backward", "embedding_backward_sparse",
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
    "simple_rnn_forward", "simple_rnn_backward", "conv1d_forward", "conv1d_backward",
    "max_pool1d_forward", "max_pool1d_backward",
    "global_average_pool1d_forward", "global_average_pool1d_backward",
    "global_max_pool1d_forward", "global_max_pool1d_backward",
)
OPTIMIZER_NAMES = tuple(_reference_optim.__all__)


class Ops:
    """NumPy reference backend (see the module docstring)."""

    name = "reference"
    device = "cpu"
    on_device = False  # arrays live in host memory: a Variable's value is its data
    _kernels = _reference
    _optim = _reference_optim

    def __init__(self):
        # bind the kernel pairs and the optimizer updates once (no lookup per call)
        for name in KERNEL_NAMES:
            setattr(self, name, getattr(self._kernels, name))
        for name in OPTIMIZER_NAMES:
            setattr(self, name, getattr(self._optim, name))

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} on {self.device!r}>"

    # ------------------------------------------------------------------ arrays
    def asarray(self, x, dtype=None):
        """A backend array holding host data ``x`` (C-contiguous)."""
        return np.ascontiguousarray(x, dtype=dtype)

    def to_numpy(self, x):
        """A NumPy array with the values of backend array ``x`` (no copy on the host)."""
        return x

    def owns(self, x):
        """True when ``x`` is an array this backend computes on."""
        return isinstance(x, np.ndarray)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def empty_like(self, x):
        return np.empty_like(x)

    def copy_into(self, dst, src):
        """Copy host array ``src`` into backend array ``dst`` (same shape)."""
        np.copyto(dst, src, casting="same_kind")

    def cast(self, x, dtype):
        return x.astype(dtype)

    def contiguous(self, x):
        return np.ascontiguousarray(x)

    def moveaxis(self, x, source, destination):
        return np.ascontiguousarray(np.moveaxis(x, source, destination))

    # ------------------------------------------------------------------ small ops
    # a: (M, K), b: (K, N) -> (M, N); transpose_a / transpose_b take a.T / b.T instead
    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        return (a.T if transpose_a else a) @ (b.T if transpose_b else b)

    # z: (M, N), bias: (N,) -> z += bias, in place
    def bias_add(self, z, bias):
        z += bias
        return z

    # x: (M, N) -> (N,)
    def column_sum(self, x):
        return x.sum(axis=0)

    def activation_forward(self, activation, z, out=None):
        """``activation`` (a :class:`fastseq.activations.Activation`) of ``z``; ``out=z``
        works in place."""
        return activation.forward(z, out=out)

    def activation_backward(self, activation, grad_y, y):
        """d loss / d z from the output ``y``; may overwrite ``grad_y``."""
        return activation.backward(grad_y, y)

    # x: any shape, scale: x's shape or broadcastable to it -> x * scale
    def multiply(self, x, scale, out=None):
        if out is not None:
            return np.multiply(x, scale, out=out)
        return x * scale

    # a, b: the same shape -> a + b
    def add(self, a, b, out=None):
        if out is not None:
            return np.add(a, b, out=out)
        return a + b

    # x: (B, T, ...) -> x reversed along time (a new C-contiguous array)
    def flip_time(self, x):
        return np.ascontiguousarray(x[:, ::-1])

    # a: (..., m), b: (..., n) -> (..., m + n)
    def concatenate_last(self, a, b):
        return np.concatenate([a, b], axis=-1)

    # x: (..., 2n) -> two C-contiguous (..., n) halves
    def split_last(self, x):
        half = x.shape[-1] // 2
        return np.ascontiguousarray(x[..., :half]), np.ascontiguousarray(x[..., half:])

    def apply(self, fn, *arrays):
        """``fn(*arrays)`` on NumPy arrays, for the array work a layer has no backend op
        for (merges, reshapes, normalization statistics). A device backend runs it through
        the host; a list or tuple result comes back as a list."""
        result = fn(*arrays)
        return list(result) if isinstance(result, tuple) else result

    def run_concurrently(self, jobs):
        """[job() for job in jobs]: independent kernel calls (a Bidirectional's two
        directions); a backend with threads to spare runs them at once."""
        return [job() for job in jobs]

    # ------------------------------------------------------------------ gradient clipping
    def sum_of_squares(self, x):
        """sum(x ** 2) in float64, as a Python float."""
        return float(np.sum(np.square(x, dtype=np.float64)))

    def scaled(self, x, factor):
        return x * x.dtype.type(factor)

    def clipped(self, x, limit):
        return np.clip(x, -limit, limit)

    def decay(self, w, factor):
        """w -= w * factor, in place (decoupled weight decay)."""
        w -= w * w.dtype.type(factor)

    # ------------------------------------------------------------------ loss and metrics
    @staticmethod
    def _masked(y_true, y_pred, mask, sample_weight=None):
        """Keep the unmasked steps of a sequence output, their targets and sample weights,
        as Keras weighs the loss and the metrics by the output mask; (y_true, y_pred,
        sample_weight, mask or None). A per-sample weight (B,) of a sequence output is
        repeated over its steps first."""
        if mask is None or y_pred.ndim < 3 or mask.shape != y_pred.shape[:2]:
            return y_true, y_pred, sample_weight, None
        if y_true.shape[:2] != mask.shape or mask.all():
            return y_true, y_pred, sample_weight, None
        if sample_weight is not None:
            sw = np.asarray(sample_weight)
            sw = sw.reshape(sw.shape[:2]) if sw.ndim >= 2 else sw[:, None]
            sample_weight = np.broadcast_to(sw, mask.shape)[mask]
        return y_true[mask], y_pred[mask], sample_weight, mask

    def loss_forward_backward(self, loss, y_true, y_pred, mask=None, from_logits=False,
                              need_grad=True, sample_weight=None):
        """(loss as a float, d loss / d y_pred or None) of a model output ``y_pred`` (the
        logits when ``from_logits``) against host targets ``y_true``, weighed by the output
        ``mask`` and the host ``sample_weight`` (B,) or (B, T) as Keras does."""
        yt, yp, sw, sel = self._masked(y_true, y_pred, mask, sample_weight)
        kwargs = {"from_logits": True} if from_logits else {}
        if not need_grad:
            if from_logits or sw is not None:
                return float(loss.forward_backward(yt, yp, sample_weight=sw, **kwargs)[0]), None
            return float(loss(yt, yp)), None
        value, grad = loss.forward_backward(yt, yp, sample_weight=sw, **kwargs)
        grad = np.asarray(grad, dtype=yp.dtype)
        if sel is not None:
            full = np.zeros_like(y_pred)
            full[sel] = grad
            grad = full
        elif grad.shape != y_pred.shape:
            grad = grad.reshape(y_pred.shape)
        return float(value), grad

    def update_metrics(self, metrics, y_true, y_pred, mask=None, sample_weight=None):
        """Update each metric with a batch's targets and outputs (masked steps left out),
        weighted by the host ``sample_weight`` when given."""
        if not metrics:
            return
        yt, yp, sw, _ = self._masked(y_true, self.to_numpy(y_pred), mask, sample_weight)
        for metric in metrics:
            if sw is None:
                metric.update_state(yt, yp)
            else:
                metric.update_state(yt, yp, sample_weight=sw)
