"""Optimizers against Keras 3's update formulas (keras/src/optimizers/*.py), written out
below in plain NumPy float64; dense versus row-sparse gradients; lazy updates; state."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseq import optimizers
from fastseq.optimizers import SGD, Adagrad, Adam, RMSprop
from fastseq.variables import SparseGrad, Variable


# ---------------------------------------------------------------- Keras's formulas in NumPy
def ref_sgd(w, grads, lr=0.01, momentum=0.0, nesterov=False):
    m = np.zeros_like(w)
    for g in grads:
        if momentum:
            m = m * momentum - g * lr
            w = w + (m * momentum - g * lr if nesterov else m)
        else:
            w = w - g * lr
    return w


def ref_adam(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vhat = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - m * alpha / (np.sqrt(vhat) + eps)
        else:
            w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def ref_rmsprop(w, grads, lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    vel = np.zeros_like(w)
    mom = np.zeros_like(w)
    avg = np.zeros_like(w)
    for g in grads:
        vel = rho * vel + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            denom = vel - avg * avg + eps
        else:
            denom = vel + eps
        inc = lr * g / np.sqrt(denom)
        if momentum > 0:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def ref_adagrad(w, grads, lr=0.001, init=0.1, eps=1e-7):
    acc = np.full_like(w, init)
    for g in grads:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


CASES = [
    (SGD, {}, ref_sgd, {}),
    (SGD, {"learning_rate": 0.1, "momentum": 0.9}, ref_sgd, {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True}, ref_sgd,
     {"lr": 0.1, "momentum": 0.5, "nesterov": True}),
    (Adam, {}, ref_adam, {}),
    (Adam, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}, ref_adam,
     {"lr": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-3}),
    (Adam, {"learning_rate": 0.01, "amsgrad": True}, ref_adam, {"lr": 0.01, "amsgrad": True}),
    (RMSprop, {}, ref_rmsprop, {}),
    (RMSprop, {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5}, ref_rmsprop,
     {"lr": 0.01, "rho": 0.8, "momentum": 0.5}),
    (RMSprop, {"centered": True, "epsilon": 1e-3}, ref_rmsprop, {"centered": True, "eps": 1e-3}),
    (RMSprop, {"centered": True, "momentum": 0.3}, ref_rmsprop,
     {"centered": True, "momentum": 0.3}),
    (Adagrad, {}, ref_adagrad, {}),
    (Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.5}, ref_adagrad,
     {"lr": 0.1, "init": 0.5}),
]
IDS = [f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]

# Every optimizer configuration with a row-sparse path, for the sparse/lazy tests.
SPARSE_CONFIGS = [(cls, kw) for cls, kw, _, _ in CASES]


def _run(opt, shapes, grads_per_step, dtype=np.float64, start=None):
    rng = np.random.default_rng(0)
    variables = [Variable((start[i] if start else rng.standard_normal(s)).astype(dtype),
                          f"v{i}") for i, s in enumerate(shapes)]
    for grads in grads_per_step:
        for var, g in zip(variables, grads):
            var.grad = g
        opt.apply_gradients(variables)
    return variables


@pytest.mark.parametrize("cls,kwargs,ref,ref_kwargs", CASES, ids=IDS)
def test_matches_keras_formulas_over_steps(cls, kwargs, ref, ref_kwargs):
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (5,)]
    starts = [rng.standard_normal(s) for s in shapes]
    steps = [[rng.standard_normal(s) * 3 for s in shapes] for _ in range(6)]
    opt = cls(**kwargs)
    variables = _run(opt, shapes, steps, start=starts)
    for i, var in enumerate(variables):
        expected = ref(starts[i], [step[i] for step in steps], **ref_kwargs)
        np.testing.assert_allclose(var.value, expected, rtol=1e-12, atol=1e-15)
    assert opt.iterations == 6


@pytest.mark.parametrize("cls,kwargs,ref,ref_kwargs", CASES, ids=IDS)
def test_float32_in_float32_arithmetic(cls, kwargs, ref, ref_kwargs):
    rng = np.random.default_rng(2)
    start = rng.standard_normal((6, 4))
    steps = [[rng.standard_normal((6, 4))] for _ in range(3)]
    opt = cls(**kwargs)
    var = _run(opt, [(6, 4)], [[g.astype(np.float32)] for (g,) in steps], np.float32,
               start=[start])[0]
    assert var.value.dtype == np.float32
    expected = ref(start, [g for (g,) in steps], **ref_kwargs)
    np.testing.assert_allclose(var.value, expected, rtol=2e-5, atol=2e-6)


def test_keras_docstring_rmsprop_example():
    # keras.optimizers.RMSprop docstring: var = 10, loss = var^2 / 2, lr = 0.1 -> 9.683772
    var = Variable(np.array([10.0], dtype=np.float32), "var1")
    var.grad = var.value.copy()
    RMSprop(learning_rate=0.1).apply_gradients([var])
    np.testing.assert_allclose(var.value, [9.683772], rtol=1e-6)


def test_adam_epsilon_outside_sqrt_and_bias_correction():
    # First Adam step moves by lr * g / (|g| + eps / sqrt(1 - b2)) (Keras's alpha form):
    # with a large epsilon the two placements of epsilon differ clearly.
    g = np.array([0.01, -2.0])
    var = Variable(np.zeros(2), "w")
    var.grad = g
    Adam(learning_rate=0.1, epsilon=0.01).apply_gradients([var])
    expected = -0.1 * math.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (
        np.sqrt(0.001 * g * g) + 0.01)
    np.testing.assert_allclose(var.value, expected, rtol=1e-12)
    inside = -0.1 * g / np.sqrt(g * g + 0.01)  # epsilon inside the root: not Keras
    assert not np.allclose(var.value, inside, rtol=1e-3)


# ---------------------------------------------------------------- row-sparse gradients
def _sparse_steps(rng, n_rows, width, n_steps, always=()):
    steps = []
    for _ in range(n_steps):
        rows = set(rng.choice(n_rows, size=rng.integers(0, n_rows + 1), replace=False).tolist())
        rows |= set(always)
        rows = np.array(sorted(rows), dtype=np.int64)
        steps.append(SparseGrad(rows, rng.standard_normal((rows.size, width))))
    return steps


def _apply_steps(opt, start, steps, dtype):
    var = Variable(start.astype(dtype), "emb")
    for grad in steps:
        var.grad = grad
        opt.apply_gradients([var])
    return var


# float32: the configurations fit uses by default (each kernel variant compiles per dtype)
SPARSE_DTYPE_CASES = [(cls, kw, np.float64) for cls, kw in SPARSE_CONFIGS] + [
    (cls, kw, np.float32) for cls, kw in SPARSE_CONFIGS
    if not kw or kw == {"learning_rate": 0.1, "momentum": 0.9}]


@pytest.mark.parametrize("cls,kwargs,dtype", SPARSE_DTYPE_CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _) in
                              enumerate(SPARSE_DTYPE_CASES)])
def test_sparse_equals_dense_bitwise(cls, kwargs, dtype):
    rng = np.random.default_rng(3)
    n_rows, width = 9, 3
    start = rng.standard_normal((n_rows, width))
    steps = _sparse_steps(rng, n_rows, width, 5, always=(0, n_rows - 1))
    steps.insert(2, SparseGrad(np.zeros(0, np.int64), np.zeros((0, width))))  # empty step
    sparse_steps = [SparseGrad(s.rows, s.values.astype(dtype)) for s in steps]
    dense_steps = [s.to_dense((n_rows, width)).astype(dtype) for s in steps]
    opt_sparse, opt_dense = cls(**kwargs), cls(**kwargs)
    a = _apply_steps(opt_sparse, start, sparse_steps, dtype)
    b = _apply_steps(opt_dense, start, dense_steps, dtype)
    np.testing.assert_array_equal(a.value, b.value)
    for sa, sb in zip(opt_sparse.get_state(), opt_dense.get_state()):
        np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("cls,kwargs", [(c, k) for c, k in SPARSE_CONFIGS if c is not SGD
                                        or k.get("momentum")], ids=lambda x: str(x))
def test_lazy_equals_dense_on_rows_touched_every_step(cls, kwargs):
    rng = np.random.default_rng(4)
    n_rows, width = 10, 4
    start = rng.standard_normal((n_rows, width))
    touched = np.array([1, 2, 5, 9])
    steps = [SparseGrad(touched, rng.standard_normal((touched.size, width))) for _ in range(5)]
    lazy = _apply_steps(cls(lazy=True, **kwargs), start, steps, np.float64)
    dense = _apply_steps(cls(**kwargs), start, steps, np.float64)
    np.testing.assert_array_equal(lazy.value[touched], dense.value[touched])
    untouched = np.setdiff1d(np.arange(n_rows), touched)
    np.testing.assert_array_equal(lazy.value[untouched], start[untouched])
    # every row touched every step: lazy is exactly the dense result everywhere
    all_rows = np.arange(n_rows)
    steps = [SparseGrad(all_rows, rng.standard_normal((n_rows, width))) for _ in range(3)]
    lazy = _apply_steps(cls(lazy=True, **kwargs), start, steps, np.float64)
    dense = _apply_steps(cls(**kwargs), start, [s.to_dense((n_rows, width)) for s in steps],
                         np.float64)
    np.testing.assert_array_equal(lazy.value, dense.value)


def test_lazy_adam_leaves_untouched_slots_alone():
    rng = np.random.default_rng(5)
    start = rng.standard_normal((6, 2))
    opt = Adam(lazy=True)
    steps = [SparseGrad(np.array([0, 3]), rng.standard_normal((2, 2))),
             SparseGrad(np.array([3]), rng.standard_normal((1, 2)))]
    var = _apply_steps(opt, start, steps, np.float64)
    _, _, m, v = opt.get_state()
    np.testing.assert_array_equal(m[[1, 2, 4, 5]], 0)
    np.testing.assert_array_equal(v[[1, 2, 4, 5]], 0)
    np.testing.assert_array_equal(var.value[[1, 2, 4, 5]], start[[1, 2, 4, 5]])
    # row 0 got one update at step 1 only: Keras's step-1 Adam update with its gradient
    np.testing.assert_allclose(var.value[0], ref_adam(start[0], [steps[0].values[0]]),
                               rtol=1e-12)


def test_sgd_sparse_writes_only_touched_rows():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 3))
    var = Variable(w.copy(), "emb")
    var.grad = SparseGrad(np.array([2, 6]), np.ones((2, 3)))
    SGD(learning_rate=0.5).apply_gradients([var])
    expected = w.copy()
    expected[[2, 6]] -= 0.5
    np.testing.assert_array_equal(var.value, expected)


@settings(max_examples=25, deadline=None)
@given(
    config=st.sampled_from(range(len(SPARSE_CONFIGS))),
    n_rows=st.integers(1, 12),
    width=st.integers(1, 5),
    masks=st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_sparse_equals_dense_random(config, n_rows, width, masks, seed):
    cls, kwargs = SPARSE_CONFIGS[config]
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((n_rows, width))
    steps = []
    for mask in masks:
        rows = np.flatnonzero(mask[:n_rows]).astype(np.int64)
        steps.append(SparseGrad(rows, rng.standard_normal((rows.size, width))))
    a = _apply_steps(cls(**kwargs), start, steps, np.float64)
    b = _apply_steps(cls(**kwargs), start, [s.to_dense((n_rows, width)) for s in steps],
                     np.float64)
    np.testing.assert_array_equal(a.value, b.value)


def test_sparse_grad_on_3d_weight_rows():
    # a (V, A, B) weight: a row is everything behind the first index
    rng = np.random.default_rng(7)
    start = rng.standard_normal((5, 2, 3))
    grad = SparseGrad(np.array([1, 4]), rng.standard_normal((2, 2, 3)))
    a = _apply_steps(Adam(), start, [grad], np.float64)
    b = _apply_steps(Adam(), start, [grad.to_dense((5, 2, 3))], np.float64)
    np.testing.assert_array_equal(a.value, b.value)


# ---------------------------------------------------------------- clipping, decay
def test_clipnorm_per_variable_as_keras():
    g = np.array([3.0, 4.0])  # norm 5
    var = Variable(np.zeros(2), "w")
    var.grad = g
    SGD(learning_rate=1.0, clipnorm=1.0).apply_gradients([var])
    np.testing.assert_allclose(var.value, -g / 5.0)
    var.grad = np.array([0.3, 0.4])  # below the norm: unchanged
    SGD(learning_rate=1.0, clipnorm=1.0).apply_gradients([var])
    np.testing.assert_allclose(var.value, -g / 5.0 - np.array([0.3, 0.4]))


def test_global_clipnorm_and_clipvalue():
    a, b = Variable(np.zeros(1), "a"), Variable(np.zeros(1), "b")
    a.grad, b.grad = np.array([3.0]), np.array([4.0])
    SGD(learning_rate=1.0, global_clipnorm=1.0).apply_gradients([a, b])
    np.testing.assert_allclose([a.value[0], b.value[0]], [-0.6, -0.8])
    c = Variable(np.zeros(3), "c")
    c.grad = np.array([-5.0, 0.2, 7.0])
    SGD(learning_rate=1.0, clipvalue=0.5).apply_gradients([c])
    np.testing.assert_allclose(c.value, [0.5, -0.2, -0.5])
    # clipping applies to row-sparse gradients too (norm over the rows given)
    e = Variable(np.zeros((4, 2)), "e")
    e.grad = SparseGrad(np.array([1]), np.array([[3.0, 4.0]]))
    SGD(learning_rate=1.0, clipnorm=1.0).apply_gradients([e])
    np.testing.assert_allclose(e.value[1], [-0.6, -0.8])
    with pytest.raises(ValueError, match="Only one of"):
        SGD(clipnorm=1.0, clipvalue=1.0)


def test_weight_decay_as_keras():
    var = Variable(np.array([2.0]), "w")
    var.grad = np.array([0.0])
    SGD(learning_rate=0.1, weight_decay=0.5).apply_gradients([var])
    np.testing.assert_allclose(var.value, [2.0 - 2.0 * 0.5 * 0.1])


# ---------------------------------------------------------------- bookkeeping
def test_skips_frozen_and_gradless_variables():
    a = Variable(np.ones(3), "a")
    b = Variable(np.ones(3), "b", trainable=False)
    c = Variable(np.ones(3), "c")
    a.grad = np.ones(3)
    b.grad = np.ones(3)
    c.grad = None
    opt = Adam()
    opt.apply_gradients([a, b, c])
    assert not np.array_equal(a.value, np.ones(3))
    np.testing.assert_array_equal(b.value, np.ones(3))
    np.testing.assert_array_equal(c.value, np.ones(3))
    assert opt.iterations == 1
    # slots for every trainable variable, in order (as Keras builds on trainable_variables)
    assert [n.split("/")[1] for n in opt.state_names()] == [
        "iteration", "learning_rate", "a_momentum", "c_momentum", "a_velocity", "c_velocity"]
    opt.apply_gradients([c])  # nothing with a gradient: no step
    assert opt.iterations == 1


def test_update_in_place_and_keras_pairs():
    value = np.zeros(2)
    var = Variable(value, "w")
    assert var.value is value or np.shares_memory(var.value, value)
    held = var.value
    SGD(learning_rate=1.0).apply_gradients([(np.array([1.0, 2.0]), var)])
    np.testing.assert_array_equal(held, [-1.0, -2.0])


def test_learning_rate_settable_between_steps():
    var = Variable(np.zeros(1), "w")
    opt = SGD(learning_rate=0.1)
    var.grad = np.ones(1)
    opt.apply_gradients([var])
    opt.learning_rate = 1.0
    opt.apply_gradients([var])
    np.testing.assert_allclose(var.value, [-1.1])
    assert opt.lr == 1.0
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    with pytest.raises(TypeError, match="learning_rate"):
        opt.learning_rate = "fast"


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(8)
    start = rng.standard_normal((5, 3))
    grads = [rng.standard_normal((5, 3)) for _ in range(6)]
    full = _apply_steps(Adam(amsgrad=True), start, grads, np.float64)
    opt1 = Adam(amsgrad=True)
    half = _apply_steps(opt1, start, grads[:3], np.float64)
    state = opt1.get_state()
    opt2 = Adam(amsgrad=True)
    var2 = Variable(half.value.copy(), "emb")
    opt2.build([var2])
    opt2.set_state(state)
    assert opt2.iterations == 3
    for g in grads[3:]:
        var2.grad = g
        opt2.apply_gradients([var2])
    np.testing.assert_array_equal(var2.value, full.value)
    with pytest.raises(ValueError, match="expected 5 arrays"):
        opt2.set_state(state[:-1])
    bad = [s.copy() for s in state]
    bad[3] = np.zeros((2, 2))
    before = [s.copy() for s in opt2.get_state()]
    with pytest.raises(ValueError, match="shape"):
        opt2.set_state(bad)
    for s, b in zip(opt2.get_state(), before):  # nothing changed
        np.testing.assert_array_equal(s, b)


def test_get_by_name_instance_and_config():
    for name, cls in [("sgd", SGD), ("Adam", Adam), ("RMSPROP", RMSprop), ("adagrad", Adagrad)]:
        assert type(optimizers.get(name)) is cls
    opt = Adam(learning_rate=0.01)
    assert optimizers.get(opt) is opt
    config = optimizers.serialize(RMSprop(learning_rate=0.02, rho=0.8, centered=True))
    again = optimizers.get(config)
    assert isinstance(again, RMSprop)
    assert again.get_config() == config["config"]
    # a Keras 3 config (extra base-optimizer keys at their defaults) loads
    keras_config = {"class_name": "Adam", "module": "keras.optimizers", "config": {
        "name": "adam", "learning_rate": 0.002, "weight_decay": None, "clipnorm": None,
        "global_clipnorm": None, "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
        "ema_overwrite_frequency": None, "loss_scale_factor": None,
        "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-07, "amsgrad": False}}
    assert optimizers.get(keras_config).learning_rate == 0.002
    with pytest.raises(ValueError, match="adagrad, adam, rmsprop, sgd"):
        optimizers.get("adamax")
    with pytest.raises(TypeError):
        optimizers.get(3)
    with pytest.raises(ValueError, match="not supported"):
        Adam(use_ema=True)
    with pytest.raises(ValueError, match="not recognized"):
        Adam(betas=(0.9, 0.99))


def test_keras_defaults():
    assert SGD().get_config()["learning_rate"] == 0.01
    adam = Adam().get_config()
    assert (adam["learning_rate"], adam["beta_1"], adam["beta_2"], adam["epsilon"]) == (
        0.001, 0.9, 0.999, 1e-7)
    rms = RMSprop().get_config()
    assert (rms["learning_rate"], rms["rho"], rms["momentum"], rms["epsilon"]) == (
        0.001, 0.9, 0.0, 1e-7)
    ada = Adagrad().get_config()
    assert (ada["learning_rate"], ada["initial_accumulator_value"], ada["epsilon"]) == (
        0.001, 0.1, 1e-7)
    with pytest.warns(DeprecationWarning):
        assert Adam(lr=0.5).learning_rate == 0.5


def test_bad_gradients_raise_clear_errors():
    var = Variable(np.zeros((4, 2)), "emb")
    opt = Adam()
    var.grad = np.zeros((2, 4))
    with pytest.raises(ValueError, match="shape"):
        opt.apply_gradients([var])
    var.grad = SparseGrad(np.array([1, 4]), np.zeros((2, 2)))
    with pytest.raises(IndexError, match="row 4"):
        opt.apply_gradients([var])
    var.grad = SparseGrad(np.array([2, 1]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="ascending"):
        opt.apply_gradients([var])
    var.grad = SparseGrad(np.array([1, 1]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="unique"):
        opt.apply_gradients([var])
    var.grad = SparseGrad(np.array([1]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="values"):
        opt.apply_gradients([var])
    var.grad = SparseGrad(np.array([1.0]), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="integers"):
        opt.apply_gradients([var])
    with pytest.raises(TypeError):
        opt.apply_gradients([np.zeros(3)])
    np.testing.assert_array_equal(var.value, 0)  # no failed call changed anything
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=1.5)


def test_rebound_weight_with_other_shape_is_refused():
    var = Variable(np.zeros((4, 2)), "w")
    var.grad = np.ones((4, 2))
    opt = Adam()
    opt.apply_gradients([var])
    var.value = np.zeros((8, 2))
    var.grad = np.ones((8, 2))
    with pytest.raises(ValueError, match="slots"):
        opt.apply_gradients([var])
