"""Keras-compatible optimizers: SGD, Adam, RMSprop, Adagrad.

The update formulas, defaults and config keys are Keras 3's (keras/src/optimizers/*.py):

- SGD: ``m = momentum * m - lr * g; w += m`` (nesterov: ``w += momentum * m - lr * g``),
  without momentum ``w -= lr * g``.
- Adam: ``m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
  w -= alpha * m / (sqrt(v) + eps)`` with ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``:
  epsilon outside the square root and applied to the bias-uncorrected ``v``.
- RMSprop: ``v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)`` (epsilon inside the
  root; centered and momentum variants as Keras).
- Adagrad: ``acc += g^2; w -= lr g / sqrt(acc + eps)``, accumulators start at 0.1.

``apply_gradients(variables)`` reads each :class:`~fastseq.variables.Variable`'s ``grad``
and updates its ``data`` in place, with the update kernels of the optimizer's backend
(:mod:`fastseq.backend`: the model's, set at compile; the CPU's for a lone optimizer); the
slots live on that backend too. A :class:`~fastseq.variables.SparseGrad` (the embedding
gradient) is applied row-wise: exactly Keras's dense result by default, or only the touched
rows with ``lazy=True`` (TensorFlow's LazyAdam, PyTorch's SparseAdam).
"""
import math
import warnings

import numpy as np

from .variables import SparseGrad, Variable

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get", "serialize",
           "deserialize"]

# Keras base-optimizer options accepted (so Keras configs load) when inert: name -> test
_KERAS_INERT_OPTIONS = {
    "use_ema": lambda v: not v,
    "ema_momentum": lambda v: True,  # meaningless without use_ema
    "ema_overwrite_frequency": lambda v: v is None,
    "loss_scale_factor": lambda v: v is None,
    "gradient_accumulation_steps": lambda v: v is None,
    "jit_compile": lambda v: True,  # fastseq has no graph compiler
    "is_legacy_optimizer": lambda v: True,  # tf.keras 2.11+ configs carry it
}


def _flat(array):
    # a flat view of a C-contiguous NumPy or device array, for the update kernels
    return array.reshape(array.size)


def _check_float(value, name, low=None, high=None, low_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


class Optimizer:
    """Base class: learning rate, iteration count, gradient clipping, per-variable slots.

    Slots (momentums, velocities, ...) are created the first time a variable is updated,
    with the variable's shape and dtype, and kept in a fixed order (slot kind, then
    variable in the order first seen) so :meth:`get_state` / :meth:`set_state` round-trip.
    """

    def __init__(self, learning_rate, name=None, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, **kwargs):
        if "lr" in kwargs:
            warnings.warn("the `lr` argument is deprecated, use `learning_rate`",
                          DeprecationWarning, stacklevel=3)
            learning_rate = kwargs.pop("lr")
        if kwargs.pop("decay", None):
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=3)
        for key in [k for k in kwargs if k in _KERAS_INERT_OPTIONS]:
            value = kwargs.pop(key)
            if not _KERAS_INERT_OPTIONS[key](value):
                raise ValueError(f"{type(self).__name__}: {key}={value!r} is not supported by "
                                 "fastseq")
        if kwargs:
            raise ValueError(f"{type(self).__name__}: argument(s) not recognized: "
                             f"{sorted(kwargs)}")
        self.learning_rate = learning_rate
        self.name = name if name is not None else type(self).__name__.lower()
        self.weight_decay = None if weight_decay is None else _check_float(
            weight_decay, "weight_decay", low=0.0)
        clips = [c for c in (clipnorm, clipvalue, global_clipnorm) if c is not None]
        if len(clips) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        self.clipnorm = None if clipnorm is None else _check_float(clipnorm, "clipnorm", 0.0)
        self.clipvalue = None if clipvalue is None else _check_float(clipvalue, "clipvalue", 0.0)
        self.global_clipnorm = (None if global_clipnorm is None
                                else _check_float(global_clipnorm, "global_clipnorm", 0.0))
        self.iterations = 0
        self._vars = []        # Variables with slots, in the order first seen
        self._index = {}       # id(Variable) -> position in _vars
        self._slots = {}       # slot name -> list of backend arrays, parallel to _vars
        self._ops = None       # the backend of the updates (None: the CPU's)

    # ------------------------------------------------------------------ backend
    @property
    def ops(self):
        if self._ops is None:
            from .backend import get_ops

            self._ops = get_ops("cpu")
        return self._ops

    def _set_ops(self, ops):
        """Update with backend ``ops`` from now on; slots already made move there."""
        old = self.ops
        if ops is old:
            return
        for arrays in self._slots.values():
            for i, array in enumerate(arrays):
                arrays[i] = ops.asarray(old.to_numpy(array))
        self._ops = ops

    # ------------------------------------------------------------------ learning rate
    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        self._learning_rate = _check_float(value, "learning_rate", low=0.0)

    # Keras 2 spelling, still used by old scripts and callbacks.
    lr = learning_rate

    # ------------------------------------------------------------------ slots
    def _slot_specs(self):
        """[(slot name, initial value)] for this optimizer's configuration."""
        return []

    def build(self, variables):
        """Create the slots of the given (trainable) variables, in this order, as Keras's
        ``optimizer.build(model.trainable_variables)``. Variables already known are kept."""
        for var in variables:
            if not isinstance(var, Variable):
                raise TypeError(f"{type(self).__name__}.build: expected fastseq Variables, "
                                f"got {type(var).__name__}")
            self._track(var)

    @property
    def built(self):
        return bool(self._vars)

    def _track(self, var):
        pos = self._index.get(id(var))
        if pos is not None and self._vars[pos] is var:
            specs = self._slot_specs()
            if specs:
                slot = self._slots[specs[0][0]][pos]
                if tuple(slot.shape) != var.shape or slot.dtype != var.dtype:
                    # the kernels index slots by the weight's layout: never let them differ
                    raise ValueError(
                        f"variable {var.name!r} now has shape {var.shape} and dtype "
                        f"{var.dtype}, its optimizer slots {tuple(slot.shape)} {slot.dtype}; "
                        "update weights in place (Variable.assign) or use a new optimizer")
            return pos
        pos = len(self._vars)
        self._vars.append(var)
        self._index[id(var)] = pos
        for slot_name, init in self._slot_specs():
            self._slots.setdefault(slot_name, []).append(
                self.ops.full(var.shape, init, var.dtype))
        return pos

    def _slot(self, name, pos):
        return self._slots[name][pos]

    # ------------------------------------------------------------------ state I/O
    def variables(self):
        """The optimizer's state as arrays, Keras's order: iteration, learning rate, then
        each slot kind for every variable (e.g. all momentums, then all velocities)."""
        state = [np.array(self.iterations, dtype=np.int64),
                 np.array(self._learning_rate, dtype=np.float64)]
        for slot_name, _ in self._slot_specs():
            state.extend(self.ops.to_numpy(a) for a in self._slots.get(slot_name, []))
        return state

    def get_state(self):
        """Copies of :meth:`variables` (for saving)."""
        return [np.array(a, copy=True) for a in self.variables()]

    def state_names(self, var_names=None):
        """A name for each entry of :meth:`variables`, as Keras's ``optimizer.variables``
        paths: ``adam/iteration``, ``adam/learning_rate``, ``adam/<var>_momentum``, ...
        ``var_names`` (one per tracked variable, e.g. ``dense/kernel``) replaces the
        variables' own (possibly repeated) names."""
        if var_names is None:
            var_names = [var.name for var in self._vars]
        var_names = [str(n).replace("/", "_").replace(":", "_") for n in var_names]
        if len(var_names) != len(self._vars):
            raise ValueError(f"state_names: {len(var_names)} names for {len(self._vars)} "
                             "tracked variables")
        names = [f"{self.name}/iteration", f"{self.name}/learning_rate"]
        for slot_name, _ in self._slot_specs():
            names.extend(f"{self.name}/{ref}_{slot_name}" for ref in var_names)
        return names

    def set_state(self, state):
        """Restore :meth:`get_state`'s list. The optimizer must already track the same
        variables in the same order (:meth:`build`). Everything is checked before anything
        changes."""
        state = list(state)
        expected = self.variables()
        if len(state) != len(expected):
            raise ValueError(
                f"{type(self).__name__}.set_state: expected {len(expected)} arrays "
                f"(iteration, learning_rate and {len(expected) - 2} slots for "
                f"{len(self._vars)} variables), got {len(state)}. Build the optimizer on the "
                "model's trainable variables first (optimizer.build(variables)).")
        names = self.state_names()
        arrays = []
        for i, (new, old) in enumerate(zip(state, expected)):
            new = np.asarray(new)
            if new.shape != old.shape:
                raise ValueError(f"{type(self).__name__}.set_state: {names[i]} has shape "
                                 f"{old.shape}, got an array of shape {new.shape}")
            if i >= 2 and new.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}.set_state: {names[i]} must be a float "
                                f"array, got dtype {new.dtype}")
            arrays.append(new)
        self.iterations = int(arrays[0])
        self.learning_rate = float(arrays[1])
        slots = [a for name, _ in self._slot_specs() for a in self._slots.get(name, [])]
        for old, new in zip(slots, arrays[2:]):
            self.ops.copy_into(old, new)

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {
            "name": self.name,
            "learning_rate": self._learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            raise ValueError("learning-rate schedules are not supported by fastseq; got "
                             f"learning_rate={lr!r}")
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} learning_rate={self._learning_rate:g}>"

    def __reduce__(self):
        """Pickle as class, config and iteration count (the slots travel with the model):
        fastseq/_pickling.py."""
        from fastseq._pickling import reduce_optimizer

        return reduce_optimizer(self)

    # ------------------------------------------------------------------ updates
    def apply_gradients(self, variables):
        """Update every trainable Variable that has a gradient, in place, then count one
        iteration. ``variables``: Variables (gradient in ``.grad``) or, as Keras, pairs
        ``(gradient, variable)``. Returns the new iteration count."""
        pairs = []
        for item in variables:
            if isinstance(item, Variable):
                var, grad = item, item.grad
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                grad, var = item
                if not isinstance(var, Variable):
                    raise TypeError("apply_gradients: pairs must be (gradient, Variable), got "
                                    f"({type(grad).__name__}, {type(var).__name__})")
            else:
                raise TypeError("apply_gradients: expected Variables or (gradient, Variable) "
                                f"pairs, got {type(item).__name__}")
            if not var.trainable:
                continue
            # Slots for every trainable variable, in the order given (as Keras builds on
            # model.trainable_variables), even before its first gradient.
            self._track(var)
            if grad is not None:
                pairs.append((var, self._check_grad(var, grad)))
        if not pairs:
            return self.iterations
        pairs = self._clip(pairs)
        lr = self._learning_rate
        if self.weight_decay:
            for var, _ in pairs:
                self.ops.decay(var.data, self.weight_decay * lr)
        for var, grad in pairs:
            pos = self._index[id(var)]
            if isinstance(grad, SparseGrad):
                self._update_rows(var, pos, grad)
            else:
                self._update_dense(var, pos, grad)
            var.data_updated()
        self.iterations += 1
        return self.iterations

    def _check_grad(self, var, grad):
        ops = self.ops
        if ops.on_device:
            # a device gradient comes from fastseq's own backward, in the weight's layout
            if isinstance(grad, SparseGrad) and ops.owns(grad.values):
                return grad
            if not isinstance(grad, SparseGrad) and ops.owns(grad):
                if tuple(grad.shape) != var.shape:
                    raise ValueError(f"variable {var.name!r} has shape {var.shape}, its "
                                     f"gradient has shape {tuple(grad.shape)}")
                return grad
        value = var.value
        if not (isinstance(value, np.ndarray) and value.flags.c_contiguous
                and value.dtype.kind == "f"):
            raise TypeError(f"variable {var.name!r}: value must be a C-contiguous float array "
                            "so it can be updated in place")
        if isinstance(grad, SparseGrad):
            if value.ndim < 1:
                raise ValueError(f"variable {var.name!r}: a row-sparse gradient needs a weight "
                                 f"with rows, got shape {value.shape}")
            rows = np.asarray(grad.rows)
            if rows.dtype.kind not in "iu":
                raise TypeError(f"variable {var.name!r}: SparseGrad.rows must be integers, got "
                                f"dtype {rows.dtype}")
            rows = np.ascontiguousarray(rows.reshape(-1), dtype=np.int64)
            n_rows = value.shape[0]
            width = value.size // n_rows if n_rows else 0
            vals = np.asarray(grad.values)
            if vals.shape[:1] != rows.shape or vals.size != rows.size * width:
                raise ValueError(
                    f"variable {var.name!r} of shape {value.shape}: SparseGrad.values must "
                    f"have shape ({rows.size}, *{value.shape[1:]}) for {rows.size} rows, got "
                    f"{vals.shape}")
            if rows.size:
                if rows[0] < 0 or rows[-1] >= n_rows:
                    bad = rows[(rows < 0) | (rows >= n_rows)][0]
                    raise IndexError(f"variable {var.name!r}: SparseGrad row {bad} is outside "
                                     f"[0, {n_rows})")
                if rows.size > 1 and not np.all(rows[1:] > rows[:-1]):
                    raise ValueError(f"variable {var.name!r}: SparseGrad.rows must be "
                                     "ascending and unique")
            vals = np.ascontiguousarray(vals.reshape(rows.size, width), dtype=value.dtype)
            return SparseGrad(ops.asarray(rows), ops.asarray(vals))
        grad = np.asarray(grad)
        if grad.shape != value.shape:
            raise ValueError(f"variable {var.name!r} has shape {value.shape}, its gradient has "
                             f"shape {grad.shape}")
        return ops.asarray(grad, dtype=value.dtype)

    def _clip(self, pairs):
        ops = self.ops

        def values_of(g):
            return g.values if isinstance(g, SparseGrad) else g

        def scaled(g, s):
            if isinstance(g, SparseGrad):
                return SparseGrad(g.rows, ops.scaled(g.values, s))
            return ops.scaled(g, s)

        if self.clipnorm:
            out = []
            for var, g in pairs:
                norm = math.sqrt(ops.sum_of_squares(values_of(g)))
                # Keras: g * clipnorm / max(norm, clipnorm)
                out.append((var, scaled(g, self.clipnorm / max(norm, self.clipnorm))))
            return out
        if self.global_clipnorm:
            total = math.sqrt(sum(ops.sum_of_squares(values_of(g)) for _, g in pairs))
            # Keras: clip_norm * min(1 / norm, 1 / clip_norm); NaN norm propagates
            scale = self.global_clipnorm * min(1.0 / total if total else math.inf,
                                               1.0 / self.global_clipnorm)
            if math.isnan(total):
                scale = math.nan
            return [(var, scaled(g, scale)) for var, g in pairs]
        if self.clipvalue:
            c = self.clipvalue
            out = []
            for var, g in pairs:
                if isinstance(g, SparseGrad):
                    out.append((var, SparseGrad(g.rows, ops.clipped(g.values, c))))
                else:
                    out.append((var, ops.clipped(g, c)))
            return out
        return pairs

    def _update_dense(self, var, pos, grad):
        raise NotImplementedError

    def _update_rows(self, var, pos, grad):
        raise NotImplementedError

    @staticmethod
    def _flat_rows(var, grad):
        # (flat weight view, rows, flat values, row width) for the *_rows kernels
        width = grad.values.shape[1] if len(grad.values.shape) > 1 else 1
        return (_flat(var.data), grad.rows, _flat(grad.values), width)

    def _flat_slot(self, name, pos):
        return _flat(self._slots[name][pos])


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as ``keras.optimizers.SGD``.

    A row-sparse gradient without momentum moves only its rows (exactly the dense result);
    with momentum every row's velocity decays, as Keras (``lazy=True``: touched rows only).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, lazy=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="SGD", **kwargs):
        super().__init__(learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, **kwargs)
        self.momentum = _check_float(momentum, "momentum", 0.0, 1.0)
        self.nesterov = bool(nesterov)
        self.lazy = bool(lazy)

    def _slot_specs(self):
        return [("momentum", 0.0)] if self.momentum != 0 else []

    def _update_dense(self, var, pos, grad):
        dt = var.dtype.type
        w = _flat(var.data)
        g = _flat(grad)
        if self.momentum != 0:
            kernel = self.ops.sgd_nesterov_dense if self.nesterov else self.ops.sgd_momentum_dense
            kernel(w, self._flat_slot("momentum", pos), g, dt(self._learning_rate),
                   dt(self.momentum))
        else:
            self.ops.sgd_dense(w, g, dt(self._learning_rate))

    def _update_rows(self, var, pos, grad):
        dt = var.dtype.type
        w, rows, values, width = self._flat_rows(var, grad)
        if self.momentum != 0:
            kernel = self.ops.sgd_nesterov_rows if self.nesterov else self.ops.sgd_momentum_rows
            kernel(w, self._flat_slot("momentum", pos), rows, values, width,
                   dt(self._learning_rate), dt(self.momentum), self.lazy)
        else:
            self.ops.sgd_rows(w, rows, values, width, dt(self._learning_rate))

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        if self.lazy:
            config["lazy"] = True
        return config


class Adam(Optimizer):
    """Adam, as ``keras.optimizers.Adam`` (epsilon outside the square root, Keras's
    bias-corrected step size). ``lazy=True``: a row-sparse gradient updates only its rows'
    moments and values (LazyAdam / SparseAdam); by default every row's moments decay as in
    Keras's dense update."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, lazy=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="adam", **kwargs):
        super().__init__(learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, **kwargs)
        self.beta_1 = _check_float(beta_1, "beta_1", 0.0, 1.0)
        self.beta_2 = _check_float(beta_2, "beta_2", 0.0, 1.0)
        self.epsilon = _check_float(epsilon, "epsilon", 0.0)
        self.amsgrad = bool(amsgrad)
        self.lazy = bool(lazy)

    def _slot_specs(self):
        specs = [("momentum", 0.0), ("velocity", 0.0)]
        if self.amsgrad:
            specs.append(("velocity_hat", 0.0))
        return specs

    def _scalars(self, dtype):
        # In the weight's dtype, as Keras casts lr, betas and the step to variable.dtype.
        dt = np.dtype(dtype).type
        step = dt(self.iterations + 1)
        b1, b2 = dt(self.beta_1), dt(self.beta_2)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = dt(self._learning_rate) * np.sqrt(dt(1) - b2 ** step) / (dt(1) - b1 ** step)
        return alpha, dt(1 - self.beta_1), dt(1 - self.beta_2), dt(self.epsilon)

    def _update_dense(self, var, pos, grad):
        scalars = self._scalars(var.dtype)
        w, g = _flat(var.data), _flat(grad)
        m = self._flat_slot("momentum", pos)
        v = self._flat_slot("velocity", pos)
        if self.amsgrad:
            self.ops.adam_amsgrad_dense(w, m, v, self._flat_slot("velocity_hat", pos), g,
                                  *scalars)
        else:
            self.ops.adam_dense(w, m, v, g, *scalars)

    def _update_rows(self, var, pos, grad):
        scalars = self._scalars(var.dtype)
        w, rows, values, width = self._flat_rows(var, grad)
        m = self._flat_slot("momentum", pos)
        v = self._flat_slot("velocity", pos)
        if self.amsgrad:
            self.ops.adam_amsgrad_rows(w, m, v, self._flat_slot("velocity_hat", pos), rows,
                                 values, width, *scalars, self.lazy)
        else:
            self.ops.adam_rows(w, m, v, rows, values, width, *scalars, self.lazy)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad})
        if self.lazy:
            config["lazy"] = True
        return config


class RMSprop(Optimizer):
    """RMSprop, as ``keras.optimizers.RMSprop`` (epsilon inside the square root; plain
    momentum; ``centered`` subtracts the squared mean gradient). ``lazy=True``: a row-sparse
    gradient updates only its rows."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, lazy=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="rmsprop", **kwargs):
        super().__init__(learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, **kwargs)
        self.rho = _check_float(rho, "rho", 0.0, 1.0)
        self.momentum = _check_float(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _check_float(epsilon, "epsilon", 0.0)
        self.centered = bool(centered)
        self.lazy = bool(lazy)

    def _slot_specs(self):
        specs = [("velocity", 0.0)]
        if self.momentum > 0:
            specs.append(("momentum", 0.0))
        if self.centered:
            specs.append(("average_gradient", 0.0))
        return specs

    def _variant(self, pos):
        # (kernel name suffix, extra slot arrays) for this configuration
        suffix, slots = "", []
        if self.centered:
            suffix = "_centered"
        if self.momentum > 0:
            suffix += "_momentum"
            slots.append(self._flat_slot("momentum", pos))
        if self.centered:
            slots.append(self._flat_slot("average_gradient", pos))
        return suffix, slots

    def _scalars(self, dtype):
        dt = np.dtype(dtype).type
        return (dt(self._learning_rate), dt(self.rho), dt(1 - self.rho), dt(self.momentum),
                dt(self.epsilon))

    def _update_dense(self, var, pos, grad):
        suffix, slots = self._variant(pos)
        kernel = getattr(self.ops, f"rmsprop{suffix}_dense")
        kernel(_flat(var.data), self._flat_slot("velocity", pos), *slots,
               _flat(grad), *self._scalars(var.dtype))

    def _update_rows(self, var, pos, grad):
        suffix, slots = self._variant(pos)
        kernel = getattr(self.ops, f"rmsprop{suffix}_rows")
        w, rows, values, width = self._flat_rows(var, grad)
        kernel(w, self._flat_slot("velocity", pos), *slots, rows, values, width,
               *self._scalars(var.dtype), self.lazy)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        if self.lazy:
            config["lazy"] = True
        return config


class Adagrad(Optimizer):
    """Adagrad, as ``keras.optimizers.Adagrad``. A zero gradient changes neither the
    accumulator nor the weight, so a row-sparse gradient touches only its rows and is
    exactly the dense result whether or not ``lazy`` is set."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 lazy=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name="adagrad", **kwargs):
        super().__init__(learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, **kwargs)
        self.initial_accumulator_value = _check_float(
            initial_accumulator_value, "initial_accumulator_value", 0.0)
        self.epsilon = _check_float(epsilon, "epsilon", 0.0)
        self.lazy = bool(lazy)

    def _slot_specs(self):
        return [("accumulator", self.initial_accumulator_value)]

    def _update_dense(self, var, pos, grad):
        dt = var.dtype.type
        self.ops.adagrad_dense(_flat(var.data), self._flat_slot("accumulator", pos),
                         _flat(grad), dt(self._learning_rate), dt(self.epsilon))

    def _update_rows(self, var, pos, grad):
        dt = var.dtype.type
        w, rows, values, width = self._flat_rows(var, grad)
        self.ops.adagrad_rows(w, self._flat_slot("accumulator", pos), rows, values, width,
                        dt(self._learning_rate), dt(self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value,
                       "epsilon": self.epsilon})
        if self.lazy:
            config["lazy"] = True
        return config


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}


def serialize(optimizer):
    """``{'class_name': 'Adam', 'config': {...}}``, as ``keras.optimizers.serialize``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize: expected a fastseq Optimizer, got "
                        f"{type(optimizer).__name__}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Inverse of :func:`serialize`; also reads Keras's serialized optimizer dicts."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("optimizer config must be a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    cls = _lookup(config["class_name"])
    return cls.from_config(config.get("config") or {})


def _lookup(name):
    cls = _BY_NAME.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {name!r}. Known optimizers: "
                         f"{', '.join(sorted(_BY_NAME))}")
    return cls


def get(identifier):
    """An Optimizer from a name (``'adam'``, ``'RMSprop'``, any case, with Keras's defaults),
    an Optimizer instance (returned as is) or a config dict ``{'class_name', 'config'}``."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError("Could not interpret optimizer identifier: expected a name "
                    f"({', '.join(sorted(_BY_NAME))}), an Optimizer or a config dict, got "
                    f"{type(identifier).__name__} {identifier!r}")
