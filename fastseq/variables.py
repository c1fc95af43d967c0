"""Weights and their gradients, as the layers hold them and the optimizers update them."""
from typing import NamedTuple

import numpy as np


class SparseGrad(NamedTuple):
    """A row-sparse gradient of a (V, D) weight: only ``rows`` have a non-zero gradient.

    rows: (U,) int64, ascending and unique; values: (U, D), the summed gradient of each row.
    Embedding layers hand these to the optimizer so no V x D array is written."""

    rows: np.ndarray
    values: np.ndarray

    def to_dense(self, shape):
        out = np.zeros(shape, dtype=self.values.dtype)
        out[self.rows] = self.values
        return out


class Variable:
    """A named weight array. Optimizers update it in place, so every holder of the array
    sees the update; ``grad`` is the last backward pass's gradient (an array of the same
    shape, a :class:`SparseGrad`, or None). ``regularizer`` (a penalty on the weight, added
    to the loss) and ``constraint`` (a projection applied after each update) are the
    layer's keywords (``kernel_regularizer=``, ...), None by default.

    ``value`` is the weight as a NumPy array (get_weights, saving, user code); ``data`` is
    the array its backend computes on (:meth:`place`). On the CPU the two are one array. On
    a device backend the device array is the truth while training: reading ``value``
    copies it back once, and a read may be followed by an in-place write (``assign``,
    ``np.copyto``), so after any host access the device copy is refreshed before the next
    use of ``data``; a kernel that writes ``data`` calls :meth:`data_updated`."""

    def __init__(self, value, name, trainable=True, regularizer=None, constraint=None):
        self._host = np.ascontiguousarray(value)
        self._ops = None           # a device backend, or None: value is data
        self._device = None
        self._host_stale = False   # the device holds newer values than the host
        self._device_stale = True  # the host holds newer values than the device
        self.name = name
        self.trainable = trainable
        self.grad = None
        self.regularizer = regularizer
        self.constraint = constraint

    def place(self, ops):
        """Keep this weight where ``ops`` computes (a device copy is made on first use)."""
        if ops is not None and not ops.on_device:
            ops = None
        if ops is self._ops:
            return
        host = self.value  # brings a device copy home first
        self._ops, self._device = ops, None
        self._host, self._host_stale, self._device_stale = host, False, True

    @property
    def value(self):
        if self._ops is None:
            return self._host
        if self._host_stale:
            self._host = np.ascontiguousarray(self._ops.to_numpy(self._device))
            self._host_stale = False
        self._device_stale = True
        return self._host

    @value.setter
    def value(self, new_value):
        self._host = np.ascontiguousarray(new_value)
        self._host_stale = False
        self._device_stale = True

    @property
    def data(self):
        """The array the backend computes on (the device copy, brought up to date)."""
        if self._ops is None:
            return self._host
        if self._device is None or self._device_stale:
            if self._device is None or tuple(self._device.shape) != self._host.shape:
                self._device = self._ops.asarray(self._host)
            else:
                self._ops.copy_into(self._device, self._host)
            self._device_stale = False
        return self._device

    def data_updated(self):
        """``data`` was written in place (an optimizer step): the host copy is stale."""
        if self._ops is not None:
            self._host_stale = True

    @property
    def shape(self):
        return self._host.shape

    @property
    def dtype(self):
        return self._host.dtype

    def numpy(self):
        return self.value.copy()

    def assign(self, new_value):
        """Copy ``new_value`` into this weight (in place); its shape must match."""
        new_value = np.asarray(new_value)
        if new_value.shape != self.shape:
            raise ValueError(
                f"weight {self.name!r} has shape {self.shape}, got a value of shape "
                f"{new_value.shape}"
            )
        np.copyto(self.value, new_value, casting="same_kind")

    def __repr__(self):
        return f"<Variable {self.name!r} shape={self.shape} dtype={self.dtype}>"
