"""The functional API's symbols: ``Input`` / ``InputLayer`` and the symbolic tensors that
calling a layer on them records (Keras 3's ``KerasTensor`` and ``Node``).

``x = Input(shape=(100,), dtype="int64")`` is a :class:`KerasTensor`: a shape with a None
batch, a dtype, and the layer call that made it. ``Dense(4)(x)`` builds the layer for that
shape and returns a new KerasTensor whose ``_keras_history`` is ``(layer, node_index,
tensor_index)``, as Keras's; :class:`fastseq.models.Model` walks these records back from
its outputs to get the graph it runs.
"""
import numpy as np

from .base import Layer, _shape_tuple

__all__ = ["Input", "InputLayer", "KerasTensor", "Node", "is_symbolic"]


class KerasTensor:
    """A symbolic tensor: ``shape`` (batch first, None where unknown), ``dtype`` (a
    string, as Keras), ``name``; made by :func:`Input` or by calling a layer on
    KerasTensors. It holds no data: a model built from it computes the values."""

    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = "string" if np.dtype(dtype).kind in "OUS" else np.dtype(dtype).name
        self._node = node
        self._index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        node = self._node
        return node.layer, node.layer._inbound_nodes.index(node), self._index

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, "
                f"name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is a symbolic tensor of the functional API: it has no values. Build a "
            "model with fastseq.models.Model(inputs, outputs) and call predict on data")


def is_symbolic(x):
    """True for a KerasTensor, or a non-empty list / tuple of them."""
    if isinstance(x, KerasTensor):
        return True
    return (isinstance(x, (list, tuple)) and len(x) > 0
            and all(isinstance(t, KerasTensor) for t in x))


class Node:
    """One call of ``layer`` in a graph: its input tensors (``inputs``, flat, the call's
    main input(s) first, then ``initial_state`` tensors), how the main inputs were passed
    (one tensor or a list of ``n_main``), and the KerasTensors it produced (``outputs``)."""

    def __init__(self, layer, inputs, n_main, main_is_list, call_kwargs, output_specs):
        self.layer = layer
        self.inputs = list(inputs)
        self.n_main = n_main
        self.main_is_list = main_is_list
        self.call_kwargs = dict(call_kwargs)  # non-tensor keyword arguments (training, ...)
        layer._inbound_nodes.append(self)
        base = layer.name
        self.outputs = [
            KerasTensor(shape, dtype, node=self, index=i, name=base if i == 0 else f"{base}_{i}")
            for i, (shape, dtype) in enumerate(output_specs)]

    @property
    def is_input(self):
        return isinstance(self.layer, InputLayer)

    @property
    def parent_nodes(self):
        return [t._node for t in self.inputs]


class InputLayer(Layer):
    """The entry of a graph (or the first item of a Sequential): ``batch_shape`` (batch
    dimension first) and ``dtype``, which may be an integer type (token ids)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 batch_shape=None, input_tensor=None, optional=False, name=None,
                 input_shape=None, batch_input_shape=None, **kwargs):
        if sparse:
            raise NotImplementedError("InputLayer: sparse inputs are not supported by fastseq")
        if input_tensor is not None:
            raise NotImplementedError("InputLayer: input_tensor is not supported by fastseq")
        if optional:
            raise NotImplementedError("InputLayer: optional inputs are not supported by fastseq")
        kwargs.pop("ragged", None)
        shape = shape if shape is not None else input_shape
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if shape is None and batch_shape is None:
            raise ValueError("You must pass a `shape` argument.")
        if batch_shape is None:
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        batch_shape = _shape_tuple(batch_shape, "batch_shape")
        if len(batch_shape) < 1:
            raise ValueError(f"InputLayer: batch_shape needs a batch dimension, got {batch_shape}")
        super().__init__(name=name, **kwargs)
        if dtype in ("string", "str", str):  # text, for TextVectorization
            dtype = object
        try:
            self.dtype = np.dtype("float32" if dtype is None else dtype)
        except TypeError:
            raise TypeError(f"InputLayer {self.name!r}: unknown dtype {dtype!r}") from None
        if self.dtype.kind not in "fiubO":
            raise TypeError(f"InputLayer {self.name!r}: dtype must be a number type or "
                            f"'string', got {self.dtype}")
        self._batch_input_shape = batch_shape
        self._build_for(batch_shape)
        self._inbound_nodes = []
        Node(self, [], 0, False, {}, [(batch_shape, self.dtype)])
        self.output = self._inbound_nodes[0].outputs[0]
        self.output.name = self.name

    @property
    def batch_shape(self):
        return self._batch_input_shape

    def forward(self, x, mask=None, training=False):
        return x

    def get_config(self):
        dtype = "string" if self.dtype.kind == "O" else self.dtype.name
        return {"batch_shape": self._batch_input_shape, "dtype": dtype,
                "sparse": False, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("batch_shape", "batch_input_shape"):
            if isinstance(config.get(key), list):
                config[key] = tuple(config[key])
        config.pop("trainable", None)
        return cls(**config)


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """A symbolic input of the functional API (Keras's ``keras.Input``): a
    :class:`KerasTensor` of shape ``(batch_size,) + shape`` to call layers on, and the
    ``inputs`` of :class:`fastseq.models.Model`. ``dtype`` defaults to float32; give an
    integer dtype for token ids."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, input_tensor=tensor, optional=optional,
                       name=name)
    return layer.output
