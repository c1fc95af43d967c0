"""Fork safety (issue 13): a child process works after its parent ran the kernels.

GNU OpenMP (libgomp, behind the embedding kernels' parallel loops) is not fork-safe: a child
made by fork() after the parent's main thread ran a parallel region used to hang forever in
its own first one. Here a parent runs every kernel family on its parallel paths (a
multithreaded gather and scatter-add, the LSTM's and Conv1D's helper threads), then
predicts and fits two small models, then starts a child with each start method
(``fork``, ``forkserver``, ``spawn``) that does the same from the same initial weights.
The child must finish in time and its results must be bitwise the parent's.

Each scenario runs in its own Python process (this file run as a script) under a timeout,
so a hang fails the test instead of hanging the test run.
"""
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

METHODS = [m for m in ("fork", "forkserver", "spawn")
           if m in multiprocessing.get_all_start_methods()]
CHILD_TIMEOUT_S = 120   # a child that has not answered by then is hung
SCENARIO_TIMEOUT_S = 300

V, D, T, BATCH = 300, 16, 40, 64


def _data():
    rng = np.random.default_rng(7)
    x = rng.integers(0, V, (BATCH, T))
    y = rng.integers(0, 2, BATCH).astype(np.float32)
    return x, y


def _models():
    from fastseq import Sequential
    from fastseq.layers import LSTM, Dense, Embedding, GlobalAveragePooling1D
    from fastseq.utils import set_random_seed

    set_random_seed(0)
    lstm = Sequential([Embedding(V, D, input_length=T), LSTM(8), Dense(1, activation="sigmoid")])
    pooled = Sequential([Embedding(V, D, input_length=T), GlobalAveragePooling1D(),
                         Dense(1, activation="sigmoid")])
    for model in (lstm, pooled):
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.predict(_data()[0][:1], verbose=0)  # builds the weights
    return {"lstm": lstm, "pooled": pooled}


def _work(initial_weights):
    """Every kernel family, then predict and fit of both models from ``initial_weights``
    (None: the models' own). Returns (results: name -> array, initial weights)."""
    from fastseq import kernels as K
    from fastseq._kernels import embedding
    from fastseq.utils import set_random_seed

    # The parallel loops whatever the core count (work is split by the shapes, so the
    # results do not depend on it); a forked child ignores this and runs them serially.
    embedding.set_num_threads(2)
    rng = np.random.default_rng(3)
    out = {}
    # rows of 128 floats (512 bytes): the scatter-adds take their parallel path too
    W = rng.standard_normal((V, 128)).astype(np.float32)
    idx = rng.integers(0, V, (BATCH, T))
    g = rng.standard_normal((BATCH, T, 128)).astype(np.float32)
    out["gather"] = K.embedding_forward(W, idx)
    out["scatter_dense"] = K.embedding_backward(idx, g, V)
    out["scatter_sparse_rows"], out["scatter_sparse_values"] = K.embedding_backward_sparse(idx, g)
    xs = rng.standard_normal((BATCH, T, 8)).astype(np.float32)
    lstm_out, _, _, cache = K.lstm_forward(xs, rng.standard_normal((8, 32)).astype(np.float32),
                                           rng.standard_normal((8, 32)).astype(np.float32),
                                           np.zeros(32, np.float32))
    out["lstm_forward"] = lstm_out
    out["lstm_backward_dx"] = K.lstm_backward(cache, np.ones_like(lstm_out))[0]
    y, cache = K.conv1d_forward(xs, rng.standard_normal((3, 8, 4)).astype(np.float32))
    out["conv1d_forward"] = y
    out["conv1d_backward_dx"] = K.conv1d_backward(cache, np.ones_like(y))[0]

    models = _models()
    if initial_weights is None:
        initial_weights = {name: m.get_weights() for name, m in models.items()}
    x, labels = _data()
    for name, model in models.items():
        model.set_weights(initial_weights[name])
        out[f"{name}_predict"] = model.predict(x, batch_size=BATCH, verbose=0)
        set_random_seed(1)  # the same shuffles in every process
        history = model.fit(x, labels, batch_size=16, epochs=2, verbose=0)
        out[f"{name}_loss"] = np.array(history.history["loss"])
        for k, w in enumerate(model.get_weights()):
            out[f"{name}_weight{k}"] = w
        out[f"{name}_predict_after_fit"] = model.predict(x, batch_size=BATCH, verbose=0)
    return out, initial_weights


def _child(conn, initial_weights):
    from fastseq._kernels import embedding

    try:
        results, _ = _work(initial_weights)
        conn.send(("ok", results, embedding.in_forked_child()))
    except BaseException as e:  # reported by the parent
        conn.send(("error", f"{type(e).__name__}: {e}", None))
    finally:
        conn.close()


def _scenario(method):
    """The parent: run everything (starting libgomp's threads), then the child."""
    from fastseq._kernels import embedding

    parent_results, initial_weights = _work(None)
    assert not embedding.in_forked_child()
    ctx = multiprocessing.get_context(method)
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, initial_weights))
    child.start()
    send.close()
    if not receive.poll(CHILD_TIMEOUT_S):
        child.kill()
        child.join()
        print(f"HUNG: the {method} child gave no answer in {CHILD_TIMEOUT_S} s", flush=True)
        sys.exit(1)
    status, child_results, child_forked = receive.recv()
    child.join(CHILD_TIMEOUT_S)
    if status != "ok":
        print(f"CHILD ERROR: {child_results}", flush=True)
        sys.exit(1)
    # Only a fork of a process that had loaded the kernels runs them serially: forkserver's
    # server (a fresh process) has not imported fastseq, so its children load it anew.
    assert child_forked == (method == "fork"), (method, child_forked)
    assert child_results.keys() == parent_results.keys()
    differ = [name for name, want in parent_results.items()
              if not (child_results[name].dtype == want.dtype
                      and child_results[name].shape == want.shape
                      and np.array_equal(child_results[name], want))]
    if differ:
        print(f"DIFFER: the {method} child's results differ from the parent's: {differ}",
              flush=True)
        sys.exit(1)
    print(f"OK {len(parent_results)} results bitwise equal", flush=True)


@pytest.mark.parametrize("method", METHODS)
def test_child_after_parent_ran_kernels_predicts_and_fits_as_the_parent(method):
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), method],
                              capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the {method} scenario hung for {SCENARIO_TIMEOUT_S} s:\n{e.stdout}\n"
                    f"{e.stderr}")
    report = proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0 and "OK " in proc.stdout, report


def test_a_forked_child_runs_the_embedding_loops_serially():
    """Directly, in a bare fork: the flag is set in the child only, and a parallel-sized
    gather finishes there (with the parent's result)."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    code = (
        "import os, sys, numpy as np\n"
        "from fastseq import kernels as K\n"
        "from fastseq._kernels import embedding\n"
        "embedding.set_num_threads(2)\n"
        "W = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)\n"
        "idx = np.arange(64000).reshape(64, 1000) % 1000\n"
        "want = K.embedding_forward(W, idx)\n"
        "assert not embedding.in_forked_child()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = embedding.in_forked_child() and np.array_equal(K.embedding_forward(W, idx), want)\n"
        "    os._exit(0 if ok else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert not embedding.in_forked_child()\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung in its first gather")
    assert proc.returncode == 0, proc.stdout + proc.stderr


if __name__ == "__main__":
    _scenario(sys.argv[1])
