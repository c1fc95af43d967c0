"""Activations by Keras's names: relu, sigmoid, tanh, softmax, linear.

Each is a function ``f(x) -> y`` (as ``keras.activations.relu``) and, for the layers, an
:class:`Activation` object with ``forward(z, out=None)`` and ``backward(grad_y, y)``: the
gradient is computed from the output ``y`` alone, so a layer keeps only its output.
``backward`` may overwrite ``grad_y`` (the layers hand it a gradient they own).
"""
import numpy as np
from scipy.special import expit

__all__ = ["relu", "sigmoid", "tanh", "softmax", "linear", "get", "serialize", "deserialize",
           "Activation"]


class Activation:
    name = None

    def forward(self, z, out=None):
        raise NotImplementedError

    def backward(self, grad_y, y):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(np.asarray(x))

    def __repr__(self):
        return f"<activation {self.name}>"


class _Linear(Activation):
    name = "linear"

    def forward(self, z, out=None):
        if out is None or out is z:
            return z
        np.copyto(out, z)
        return out

    def backward(self, grad_y, y):
        return grad_y


class _Relu(Activation):
    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def backward(self, grad_y, y):
        # y > 0 exactly where z > 0
        grad_y *= y > 0
        return grad_y


class _Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z, out=None):
        return expit(z, out=out)  # stable for large |z|

    def backward(self, grad_y, y):
        grad_y *= y * (1 - y)
        return grad_y


class _Tanh(Activation):
    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, grad_y, y):
        grad_y *= 1 - y * y
        return grad_y


class _Softmax(Activation):
    """Softmax over the last axis."""

    name = "softmax"

    def forward(self, z, out=None):
        out = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def backward(self, grad_y, y):
        # dz = y * (g - sum(g * y))
        dot = np.einsum("...i,...i->...", grad_y, y)[..., None]
        grad_y -= dot
        grad_y *= y
        return grad_y


_ACTIVATIONS = {a.name: a for a in (_Linear(), _Relu(), _Sigmoid(), _Tanh(), _Softmax())}


def linear(x):
    return np.asarray(x)


def relu(x):
    return _ACTIVATIONS["relu"](x)


def sigmoid(x):
    return _ACTIVATIONS["sigmoid"](x)


def tanh(x):
    return _ACTIVATIONS["tanh"](x)


def softmax(x):
    x = np.asarray(x)
    out = np.empty_like(x, dtype=np.result_type(x, np.float32))
    return _ACTIVATIONS["softmax"].forward(x, out=out)


_FUNCTIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}


def get(identifier):
    """The :class:`Activation` for a name ('relu'), None (linear), one of this module's
    functions, or an Activation object."""
    if identifier is None:
        return _ACTIVATIONS["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        act = _ACTIVATIONS.get(identifier.lower())
        if act is None:
            raise ValueError(
                f"Unknown activation {identifier!r}; supported: {sorted(_ACTIVATIONS)}"
            )
        return act
    for name, fn in _FUNCTIONS.items():
        if identifier is fn:
            return _ACTIVATIONS[name]
    raise TypeError(
        f"Unsupported activation {identifier!r}: give one of the names {sorted(_ACTIVATIONS)} "
        "(fastseq needs each activation's derivative, so arbitrary callables are not accepted)"
    )


def serialize(activation):
    return get(activation).name


def deserialize(name):
    return get(name)
