"""Merge layers of the functional API (Keras 3's keras/src/layers/merging): ``Add``,
``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``, ``Concatenate``,
``Dot`` and their functions (``add([a, b])``, ``concatenate([a, b], axis=-1)``, ...).

They take a list of inputs: ``forward(xs, mask=masks)`` -> one output, ``backward(grad_y)``
-> one gradient per input. Element-wise merges broadcast as Keras (a size-1 axis matches
any size) and sum the gradient back over the broadcast axes. Masks: element-wise merges
and ``Concatenate`` on the feature axis AND the inputs' masks; ``Concatenate`` on the time
axis concatenates them (an input without a mask counts as all-true); ``Dot`` gives none.
"""
import numpy as np

from .base import Layer, _shape_tuple

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "Dot", "add", "subtract", "multiply", "average", "maximum", "minimum",
           "concatenate", "dot"]


def _broadcast_shapes(shapes, name):
    """Keras's element-wise output shape: batch dims first, equal sizes or 1 (or None)."""
    rank = max(len(s) for s in shapes)
    if any(len(s) != rank for s in shapes):
        raise ValueError(f"{name}: inputs must have the same rank, got shapes {shapes}")
    out = []
    for axis in range(rank):
        sizes = {s[axis] for s in shapes} - {1}
        known = sizes - {None}
        if len(known) > 1:
            raise ValueError(f"{name}: inputs with shapes {shapes} cannot be merged (axis "
                             f"{axis} has sizes {sorted(known)}; sizes must be equal or 1)")
        if known:
            out.append(known.pop())
        else:
            out.append(None if None in sizes else 1)
    return tuple(out)


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes where an input of ``shape`` was broadcast."""
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


def _and_masks(masks):
    present = [m for m in (masks or []) if m is not None]
    if not present:
        return None
    out = np.array(present[0], dtype=bool, copy=True)
    for m in present[1:]:
        out &= m
    return out


class _Merge(Layer):
    """The base of the merge layers: a list of at least two inputs."""

    _multi_input = True
    _mask_policy = "consume"
    _min_inputs = 2
    _max_inputs = None

    def _build_for(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"A merge layer ({type(self).__name__} {self.name!r}) should be "
                             f"called on a list of inputs. Received: input_shape={input_shape}")
        shapes = [_shape_tuple(s, "input_shape") for s in input_shape]
        count = len(shapes)
        if count < self._min_inputs or (self._max_inputs and count > self._max_inputs):
            want = (f"exactly {self._max_inputs}" if self._max_inputs == self._min_inputs
                    else f"at least {self._min_inputs}")
            raise ValueError(f"{type(self).__name__} {self.name!r} should be called on {want} "
                             f"inputs. Received: {count} inputs")
        out = self.compute_output_shape(shapes)
        if not self.built:
            self.build(shapes)
            self.built = True
            self._input_shape = shapes
            self._output_shape = out
        return out

    def _check_inputs(self, xs):
        if not isinstance(xs, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r} takes a list of inputs, "
                             f"got {type(xs).__name__}")
        self._build_for([(None,) + tuple(x.shape[1:]) for x in xs])

    def __call__(self, x, training=None, mask=None):
        from .input_layer import is_symbolic

        if is_symbolic(x):
            return self._call_symbolic(x, training=training)
        ops = self.ops
        xs = [ops.asarray(np.asarray(v), dtype=self.dtype) for v in x]
        return ops.to_numpy(self.forward(xs, mask=mask, training=bool(training)))

    def compute_mask(self, x, mask=None):
        return _and_masks(mask)

    def get_config(self):
        config = super().get_config()
        config.pop("batch_input_shape", None)
        return config


class _ElementWise(_Merge):
    """``y = merge(x1, x2, ...)`` element by element, with broadcasting."""

    def compute_output_shape(self, input_shape):
        return _broadcast_shapes([tuple(s) for s in input_shape], type(self).__name__)

    # xs: [(B, ...)] -> (B, ...)
    def forward(self, xs, mask=None, training=False):
        self._check_inputs(xs)
        y = self.ops.apply(self._merge, *xs)
        if training:
            self._cache = (xs, y)
        return y

    # grad_y: (B, ...) -> [grad_x1, grad_x2, ...], each x_i's shape
    def backward(self, grad_y, need_input_grad=True):
        xs, y = self._cache
        self._cache = None
        if not need_input_grad:
            return None

        def grads(g, out, *inputs):
            return [_unbroadcast(gi, x.shape).astype(x.dtype, copy=False)
                    for gi, x in zip(self._local_grads(g, out, inputs), inputs)]

        return self.ops.apply(grads, grad_y, y, *xs)


class Add(_ElementWise):
    """The sum of the inputs."""

    @staticmethod
    def _merge(*xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out

    @staticmethod
    def _local_grads(g, out, xs):
        return [g] + [g.copy() for _ in xs[1:]]  # each input's own array: layers below
        # may overwrite the gradient they are handed


class Subtract(_ElementWise):
    """``x1 - x2`` (exactly two inputs)."""

    _max_inputs = 2

    @staticmethod
    def _merge(a, b):
        return a - b

    @staticmethod
    def _local_grads(g, out, xs):
        return [g, -g]


class Multiply(_ElementWise):
    """The element-wise product of the inputs."""

    @staticmethod
    def _merge(*xs):
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        return out

    @staticmethod
    def _local_grads(g, out, xs):
        grads = []
        for i in range(len(xs)):
            others = g
            for j, x in enumerate(xs):
                if j != i:
                    others = others * x
            grads.append(others)
        return grads


class Average(_ElementWise):
    """The mean of the inputs."""

    @staticmethod
    def _merge(*xs):
        return Add._merge(*xs) / xs[0].dtype.type(len(xs))

    @staticmethod
    def _local_grads(g, out, xs):
        return [g / g.dtype.type(len(xs)) for _ in xs]


class Maximum(_ElementWise):
    """The element-wise maximum; the gradient goes to the first input holding it."""

    _pick = staticmethod(np.maximum)

    @classmethod
    def _merge(cls, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = cls._pick(out, x)
        return out

    @staticmethod
    def _local_grads(g, out, xs):
        taken = np.zeros(np.broadcast_shapes(*[x.shape for x in xs]), dtype=bool)
        grads = []
        for x in xs:
            winner = (x == out) & ~taken
            taken |= winner
            grads.append(np.where(winner, g, 0).astype(g.dtype, copy=False))
        return grads


class Minimum(Maximum):
    """The element-wise minimum; the gradient goes to the first input holding it."""

    _pick = staticmethod(np.minimum)


class Concatenate(_Merge):
    """The inputs joined along ``axis`` (default the last); the other axes must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def _axis(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is out of range for "
                             f"inputs of rank {rank} (the batch axis 0 cannot be joined)")
        return axis

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"A `Concatenate` layer requires inputs with matching shapes "
                             f"except for the concatenation axis. Received: input_shape={shapes}")
        axis = self._axis(rank)
        out = list(shapes[0])
        for i in range(1, rank):
            if i == axis:
                sizes = [s[i] for s in shapes]
                out[i] = None if None in sizes else int(sum(sizes))
                continue
            known = {s[i] for s in shapes} - {None}
            if len(known) > 1:
                raise ValueError(
                    "A `Concatenate` layer requires inputs with matching shapes except for "
                    f"the concatenation axis. Received: input_shape={shapes} (axis {i} "
                    f"differs: {sorted(known)})")
            out[i] = known.pop() if known else None
        return tuple(out)

    # xs: [(B, ..., n_i, ...)] -> (B, ..., sum n_i, ...)
    def forward(self, xs, mask=None, training=False):
        self._check_inputs(xs)
        axis = self._axis(xs[0].ndim)
        y = self.ops.apply(lambda *a: np.concatenate(a, axis=axis), *xs)
        if training:
            self._cache = ([int(x.shape[axis]) for x in xs], axis)
        return y

    def backward(self, grad_y, need_input_grad=True):
        sizes, axis = self._cache
        self._cache = None
        if not need_input_grad:
            return None
        cuts = np.cumsum(sizes)[:-1]
        return self.ops.apply(
            lambda g: [np.ascontiguousarray(p) for p in np.split(g, cuts, axis=axis)], grad_y)

    def compute_mask(self, x, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        axis = self._axis(x[0].ndim)
        # masks are (B, T): joining on the time axis joins them, on a feature axis ANDs them
        if axis == 1:
            parts = [m if m is not None else np.ones(tuple(xi.shape[:2]), dtype=bool)
                     for m, xi in zip(mask, x)]
            return np.concatenate(parts, axis=1)
        return _and_masks(mask)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dot(_Merge):
    """The dot product of two inputs along ``axes`` (an int or a pair), batch by batch
    (Keras's ``batch_dot``); ``normalize=True`` L2-normalizes both along those axes first
    (a cosine similarity). (B, d) . (B, d) -> (B, 1); (B, n, d) . (B, m, d), axes=2 ->
    (B, n, m)."""

    _max_inputs = 2
    _epsilon = 1e-12  # Keras's l2_normalize floor on the squared norm

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                                 for a in pair):
            raise TypeError(f"Dot: axes must be an int or a pair of ints, got {axes!r}")
        self.axes = axes if isinstance(axes, (int, np.integer)) else list(pair)
        self._pair = tuple(int(a) for a in pair)
        self.normalize = bool(normalize)

    def _resolved(self, ranks):
        axes = []
        for a, rank in zip(self._pair, ranks):
            axis = a + rank if a < 0 else a
            if not 1 <= axis < rank:
                raise ValueError(f"Dot {self.name!r}: axis {a} is out of range for an input of "
                                 f"rank {rank} (the batch axis 0 cannot be contracted)")
            axes.append(axis)
        return axes

    def _subscripts(self, ranks):
        ax, ay = self._resolved(ranks)
        letters = iter("cdefghijklmnopqrstuvwxyz")
        xs = ["b"] + [next(letters) for _ in range(ranks[0] - 1)]
        ys = ["b"] + [next(letters) for _ in range(ranks[1] - 1)]
        ys[ay] = xs[ax]
        out = [s for i, s in enumerate(xs) if i not in (0, ax)] + \
              [s for i, s in enumerate(ys) if i not in (0, ay)]
        return "".join(xs), "".join(ys), "b" + "".join(out)

    def compute_output_shape(self, input_shape):
        sx, sy = (tuple(s) for s in input_shape)
        ax, ay = self._resolved((len(sx), len(sy)))
        if sx[ax] is not None and sy[ay] is not None and sx[ax] != sy[ay]:
            raise ValueError(
                f"Incompatible input shapes: axis values {sx[ax]} (at axis {ax}) != {sy[ay]} "
                f"(at axis {ay}). Full input shapes: {sx}, {sy}")
        out = (sx[0],) + tuple(d for i, d in enumerate(sx) if i not in (0, ax)) + \
            tuple(d for i, d in enumerate(sy) if i not in (0, ay))
        return out if len(out) > 1 else out + (1,)

    def _normalized(self, v, axis):
        norm = np.sqrt(np.maximum(np.sum(v * v, axis=axis, keepdims=True), self._epsilon))
        return v / norm, norm

    # x: (B, ...), y: (B, ...) -> (B, ...) or (B, 1)
    def forward(self, xs, mask=None, training=False):
        self._check_inputs(xs)
        ranks = (xs[0].ndim, xs[1].ndim)
        sx, sy, so = self._subscripts(ranks)
        ax, ay = self._resolved(ranks)

        def dot(x, y):
            if self.normalize:
                x, y = self._normalized(x, ax)[0], self._normalized(y, ay)[0]
            return np.einsum(f"{sx},{sy}->{so}", x, y).reshape(
                (x.shape[0],) + self.compute_output_shape([x.shape, y.shape])[1:])

        out = self.ops.apply(dot, xs[0], xs[1])
        if training:
            self._cache = xs
        return out

    def backward(self, grad_y, need_input_grad=True):
        x0, y0 = self._cache
        self._cache = None
        if not need_input_grad:
            return None
        ranks = (x0.ndim, y0.ndim)
        sx, sy, so = self._subscripts(ranks)
        ax, ay = self._resolved(ranks)

        def grads(g, x, y):
            g = g.reshape((g.shape[0],) + tuple(
                d for i, d in enumerate(x.shape) if i not in (0, ax)) + tuple(
                d for i, d in enumerate(y.shape) if i not in (0, ay)))
            if self.normalize:
                xn, x_norm = self._normalized(x, ax)
                yn, y_norm = self._normalized(y, ay)
            else:
                xn, yn = x, y
            gx = np.einsum(f"{so},{sy}->{sx}", g, yn)
            gy = np.einsum(f"{so},{sx}->{sy}", g, xn)
            if self.normalize:  # d(v/|v|) = (g - v_hat <v_hat, g>) / |v|
                gx = (gx - xn * np.sum(xn * gx, axis=ax, keepdims=True)) / x_norm
                gy = (gy - yn * np.sum(yn * gy, axis=ay, keepdims=True)) / y_norm
            return [gx.astype(x.dtype, copy=False), gy.astype(y.dtype, copy=False)]

        return self.ops.apply(grads, grad_y, x0, y0)

    def compute_mask(self, x, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update({"axes": self.axes, "normalize": self.normalize})
        return config


def _merge_function(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)

    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"``{cls.__name__}(**kwargs)(inputs)``: the functional form."
    return merge


add = _merge_function(Add)
subtract = _merge_function(Subtract)
multiply = _merge_function(Multiply)
average = _merge_function(Average)
maximum = _merge_function(Maximum)
minimum = _merge_function(Minimum)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """``Dot(axes, normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
