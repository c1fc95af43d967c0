"""Bitwise the same results for any thread count and any core count.

Each test runs this file as a script in fresh processes started with NUMBA_NUM_THREADS and
OMP_NUM_THREADS = 1, 2, 3 and 4 (Numba starts more threads than cores when asked, so a
2-core machine stands in for an 8-core one: the size of Numba's pool is what a bigger
machine changes), most calling ``fastseq.set_num_threads`` with that count, and one with
NUMBA_NUM_THREADS = 4 and OMP_NUM_THREADS = 1 (a single-threaded BLAS) that keeps the
default thread count. Every process writes its results to an .npz; all must hold the same
bytes.

Covered: the LSTM forward (outputs and last state) and all six gradients, without a mask,
with a mask (pre-padding and scattered masked steps), with go_backwards, float32 and
float64, at batch sizes that split into several row blocks; the GRU (reset_after both ways)
and SimpleRNN, which share the LSTM's row blocks; Conv1D forward and all
gradients on the Winograd path (kernel sizes 3 and 5, dilation, 'same'/'causal') and the
im2col path (strides 2, kernel size 9), at sizes that split into several tasks; max
pooling, global max and average pooling, forward and backward; and a few steps of
``fit`` (Adam) of an Embedding-LSTM-Dense model and of a Conv1D-pooling-Dense model: the
weights after training and the loss history.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

# (NUMBA_NUM_THREADS, OMP_NUM_THREADS, the count passed to fastseq.set_num_threads or None
# for the default)
CONFIGS = ((1, 1, 1), (2, 2, None), (3, 3, 3), (4, 4, 4), (4, 1, None))
_HERE = os.path.abspath(__file__)


# ------------------------------------------------------------------- the worker (subprocess)

def _lstm_results(out):
    from fastseq import kernels

    rng = np.random.default_rng(13)
    # B = 72: several row blocks whatever the rule (and an uneven last block)
    for dtype in (np.float32, np.float64):
        B, T, D, H = 72, 9, 5, 6
        x = rng.standard_normal((B, T, D)).astype(dtype)
        kernel = (0.5 * rng.standard_normal((D, 4 * H))).astype(dtype)
        recurrent = (0.5 * rng.standard_normal((H, 4 * H))).astype(dtype)
        bias = (0.1 * rng.standard_normal(4 * H)).astype(dtype)
        h0 = rng.standard_normal((B, H)).astype(dtype)
        c0 = rng.standard_normal((B, H)).astype(dtype)
        mask = rng.random((B, T)) < 0.8
        mask[:, :2] = False  # pre-padding: steps masked for the whole batch
        mask[3] = False  # a fully masked sequence
        gout = rng.standard_normal((B, T, H)).astype(dtype)
        gh = rng.standard_normal((B, H)).astype(dtype)
        gc = rng.standard_normal((B, H)).astype(dtype)
        for name, m, back in (("plain", None, False), ("mask", mask, False),
                              ("mask_back", mask, True), ("back", None, True)):
            key = f"lstm_{np.dtype(dtype).name}_{name}"
            outputs, h, c, cache = kernels.lstm_forward(x, kernel, recurrent, bias, h0, c0,
                                                        mask=m, go_backwards=back)
            out[key + "_outputs"], out[key + "_h"], out[key + "_c"] = outputs, h, c
            grads = kernels.lstm_backward(cache, gout, gh, gc)
            for gname, g in zip(("dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0"), grads):
                out[f"{key}_{gname}"] = g
            inference = kernels.lstm_forward(x, kernel, recurrent, bias, h0, c0, mask=m,
                                             go_backwards=back, training=False)
            out[key + "_inference_outputs"] = inference[0]


def _rnn_results(out):
    """The GRU and SimpleRNN kernels, which share the LSTM's row blocks."""
    from fastseq._api.gru import gru_backward, gru_forward
    from fastseq._api.simple_rnn import simple_rnn_backward, simple_rnn_forward

    rng = np.random.default_rng(16)
    B, T, D, H = 72, 8, 5, 6
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    mask = rng.random((B, T)) < 0.8
    mask[:, :2] = False
    gout = rng.standard_normal((B, T, H)).astype(np.float32)
    gh = rng.standard_normal((B, H)).astype(np.float32)
    for reset_after in (True, False):
        kernel = (0.5 * rng.standard_normal((D, 3 * H))).astype(np.float32)
        recurrent = (0.5 * rng.standard_normal((H, 3 * H))).astype(np.float32)
        bias = (0.1 * rng.standard_normal((2, 3 * H) if reset_after else 3 * H))
        bias = bias.astype(np.float32)
        for m, back in ((None, False), (mask, True)):
            key = f"gru_{reset_after}_{m is not None}_{back}"
            outputs, h, cache = gru_forward(x, kernel, recurrent, bias, mask=m,
                                            go_backwards=back, reset_after=reset_after)
            out[key + "_outputs"], out[key + "_h"] = outputs, h
            for i, g in enumerate(gru_backward(cache, gout, gh)):
                out[f"{key}_grad{i}"] = g
    kernel = (0.5 * rng.standard_normal((D, H))).astype(np.float32)
    recurrent = (0.5 * rng.standard_normal((H, H))).astype(np.float32)
    bias = (0.1 * rng.standard_normal(H)).astype(np.float32)
    for m, back in ((None, False), (mask, True)):
        key = f"simple_rnn_{m is not None}_{back}"
        outputs, h, cache = simple_rnn_forward(x, kernel, recurrent, bias, mask=m,
                                               go_backwards=back)
        out[key + "_outputs"], out[key + "_h"] = outputs, h
        for i, g in enumerate(simple_rnn_backward(cache, gout, gh)):
            out[f"{key}_grad{i}"] = g


def _conv_results(out):
    from fastseq import kernels

    rng = np.random.default_rng(14)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((12, 150, 6)).astype(dtype)
        for k, strides, padding, dilation in ((3, 1, "valid", 1), (5, 1, "same", 2),
                                              (3, 1, "causal", 1), (3, 2, "valid", 1),
                                              (9, 1, "same", 1)):
            kernel = rng.standard_normal((k, 6, 7)).astype(dtype)
            bias = rng.standard_normal(7).astype(dtype)
            y, cache = kernels.conv1d_forward(x, kernel, bias, strides=strides,
                                              padding=padding, dilation_rate=dilation)
            key = f"conv_{np.dtype(dtype).name}_{k}_{strides}_{padding}_{dilation}"
            out[key + "_path"] = np.array(cache["path"])
            out[key + "_y"] = y
            gy = rng.standard_normal(y.shape).astype(dtype)
            for gname, g in zip(("dx", "dkernel", "dbias"), kernels.conv1d_backward(cache, gy)):
                out[f"{key}_{gname}"] = g
        x = np.round(x, 1)  # ties in the windows
        for pool, strides, padding in ((2, None, "valid"), (3, 2, "same")):
            y, cache = kernels.max_pool1d_forward(x, pool, strides, padding)
            key = f"maxpool_{np.dtype(dtype).name}_{pool}_{padding}"
            out[key + "_y"] = y
            out[key + "_dx"] = kernels.max_pool1d_backward(
                cache, rng.standard_normal(y.shape).astype(dtype))
        mask = rng.random(x.shape[:2]) < 0.7
        for name, fwd, bwd in (("gmax", kernels.global_max_pool1d_forward,
                                kernels.global_max_pool1d_backward),
                               ("gavg", kernels.global_average_pool1d_forward,
                                kernels.global_average_pool1d_backward)):
            for m in (None, mask):
                y, cache = fwd(x, mask=m)
                key = f"{name}_{np.dtype(dtype).name}_{m is not None}"
                out[key + "_y"] = y
                out[key + "_dx"] = bwd(cache, rng.standard_normal(y.shape).astype(dtype))


def _fit_results(out):
    from fastseq.layers import (
        LSTM,
        Conv1D,
        Dense,
        Embedding,
        GlobalMaxPooling1D,
        MaxPooling1D,
    )
    from fastseq.models import Sequential
    from fastseq.utils import set_random_seed

    rng = np.random.default_rng(15)
    tokens = rng.integers(1, 200, size=(96, 40))
    tokens[:, :10] = 0  # pre-padding
    labels = (rng.random(96) < 0.5).astype(np.float32)
    builders = {
        "lstm": lambda: [Embedding(200, 8, input_length=40, mask_zero=True), LSTM(12),
                         Dense(1, activation="sigmoid")],
        "conv": lambda: [Embedding(200, 8, input_length=40), Conv1D(10, 3, activation="relu"),
                         MaxPooling1D(2), Conv1D(6, 5, padding="same", activation="relu"),
                         GlobalMaxPooling1D(), Dense(1, activation="sigmoid")],
    }
    for name, build in builders.items():
        set_random_seed(7)
        model = Sequential(build())
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        history = model.fit(tokens, labels, batch_size=48, epochs=2, verbose=0, shuffle=True)
        for i, w in enumerate(model.get_weights()):
            out[f"fit_{name}_w{i}"] = w
        out[f"fit_{name}_loss"] = np.array(history.history["loss"])
        out[f"fit_{name}_predict"] = model.predict(tokens[:20], verbose=0)


def _dense_results(out):
    """A Dense layer over 700 inputs: a multithreaded OpenBLAS rounds some of its GEMMs
    (K = 700, measured) differently on one thread and on several, so the CPU backend's
    matmul runs the BLAS single-threaded on output blocks chosen from the shapes; and a
    small Dense head, whose GEMMs OpenBLAS keeps on one thread anyway."""
    from fastseq.layers import Dense, Embedding, Flatten
    from fastseq.models import Sequential
    from fastseq.utils import set_random_seed

    rng = np.random.default_rng(17)
    tokens = rng.integers(1, 200, size=(128, 10))
    labels = (rng.random(128) < 0.5).astype(np.float32)
    set_random_seed(7)
    model = Sequential([Embedding(200, 70, input_length=10), Flatten(),
                        Dense(500, activation="relu"), Dense(3, activation="relu"),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(tokens, labels, batch_size=64, epochs=1, verbose=0)
    for i, w in enumerate(model.get_weights()):
        out[f"fit_dense_w{i}"] = w


_PARTS = {"lstm": _lstm_results, "rnn": _rnn_results, "conv": _conv_results,
          "fit": _fit_results, "dense": _dense_results}
_KERNEL_PARTS = ("conv", "fit", "lstm", "rnn")


def _worker(part, path, threads):
    import fastseq

    if threads != "default":
        fastseq.set_num_threads(int(threads))
    out = {}
    _PARTS[part](out)
    np.savez(path, **out)


# ------------------------------------------------------------------------------ the tests

def _run_everywhere(part, tmp_path):
    """The worker's results for ``part`` under each configuration, run side by side."""
    procs = {}
    for config in CONFIGS:
        numba_threads, omp_threads, threads = config
        env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads),
                   OMP_NUM_THREADS=str(omp_threads))
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS"):
            env.pop(var, None)
        path = tmp_path / f"{part}_{numba_threads}_{omp_threads}_{threads}.npz"
        args = [sys.executable, _HERE, part, str(path), str(threads or "default")]
        procs[config] = (subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT), path)
    results = {}
    for config, (proc, path) in procs.items():
        log = proc.communicate(timeout=300)[0].decode(errors="replace")
        assert proc.returncode == 0, f"worker {config} failed:\n{log}"
        with np.load(path) as data:
            results[config] = {key: data[key] for key in data.files}
    return results


@pytest.mark.parametrize("part", _KERNEL_PARTS)
def test_bitwise_the_same_for_any_thread_count(part, tmp_path):
    _check_the_same(_run_everywhere(part, tmp_path))


def test_a_wide_dense_layer_the_same_for_any_thread_count(tmp_path):
    _check_the_same(_run_everywhere("dense", tmp_path))


def _check_the_same(results):
    first = results[CONFIGS[0]]
    assert len(first) >= 5
    for config in CONFIGS[1:]:
        other = results[config]
        assert sorted(other) == sorted(first)
        differ = [key for key in first
                  if first[key].dtype != other[key].dtype
                  or first[key].shape != other[key].shape
                  or first[key].tobytes() != other[key].tobytes()]
        assert not differ, (
            f"{len(differ)} of {len(first)} results differ between (NUMBA_NUM_THREADS, "
            f"OMP_NUM_THREADS, threads) = {CONFIGS[0]} and {config}: {differ[:12]}")


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2], sys.argv[3])
