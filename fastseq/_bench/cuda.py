"""GPU benchmarks for ``python -m fastseq bench --device cuda``: the numba.cuda kernels
(embedding gather / backward, LSTM forward + backward, Conv1D forward + backward) and the
end-to-end IMDB training step of a model built under ``fastseq.device("cuda")``.

Each case times the GPU call followed by ``cuda.synchronize()`` (kernel launches are
asynchronous: without it the clock would stop before the work is done); its baseline is
the same call on the CPU (fastseq's CPU kernels / a CPU model with the same weights), so
the ratio column is CPU time / GPU time. Inputs are copied to the device once, before the
timing. Under the CUDA simulator every shape is tiny: the run checks the plumbing, its
times mean nothing.
"""
import numpy as np

from .core import Case

# (V, D, B, T) embedding; (D, H, B, T) LSTM; (B, L, Cin, Cout, k) Conv1D; the IMDB model
FULL = dict(embedding=[(5000, 32, 64, 500), (100000, 300, 64, 200)],
            lstm=[(32, 100, 64, 500), (256, 128, 16, 100)],
            conv1d=[(16, 64, 100, 64, 3), (64, 500, 32, 128, 5)],
            train=dict(vocab=5000, dim=32, units=100, batch=64, steps=500))
QUICK = dict(embedding=[(5000, 32, 64, 500)], lstm=[(32, 100, 64, 100)],
             conv1d=[(16, 64, 100, 64, 3)],
             train=dict(vocab=5000, dim=32, units=100, batch=64, steps=100))
SIMULATOR_SHAPES = dict(embedding=[(50, 4, 2, 4)], lstm=[(3, 2, 2, 3)],
                        conv1d=[(2, 6, 3, 2, 3)],
                        train=dict(vocab=50, dim=4, units=3, batch=4, steps=4))


def _sync():
    from numba import cuda

    cuda.synchronize()


def _synced(fn):
    def run(inputs):
        out = fn(inputs)
        _sync()
        return out
    return run


def _embedding_cases(shapes):
    from fastseq import kernels
    from fastseq._kernels import cuda as gpu

    from .embedding import zipf_indices

    out = []
    for vocab, dim, batch, steps in shapes:
        def make(vocab=vocab, dim=dim, batch=batch, steps=steps):
            rng = np.random.default_rng(0)
            host = {"weights": rng.standard_normal((vocab, dim)).astype(np.float32),
                    "indices": zipf_indices(rng, vocab, (batch, steps)),
                    "grad": rng.standard_normal((batch, steps, dim)).astype(np.float32)}
            dev = {k: gpu.as_device_indices(v, k) if k == "indices" else gpu.as_device(v, k)
                   for k, v in host.items()}
            return {"host": host, "dev": dev, "vocab": vocab}

        shape = f"V={vocab} D={dim} B={batch} T={steps}"
        n_bytes = batch * steps * dim * 4
        out += [
            Case("embedding", "forward", shape, make,
                 lambda i: kernels.embedding_forward(i["host"]["weights"], i["host"]["indices"]),
                 _synced(lambda i: gpu.embedding_forward(i["dev"]["weights"],
                                                         i["dev"]["indices"])),
                 bytes_moved=2 * n_bytes),
            Case("embedding", "backward dense", shape, make,
                 lambda i: kernels.embedding_backward(i["host"]["indices"], i["host"]["grad"],
                                                      i["vocab"]),
                 _synced(lambda i: gpu.embedding_backward(i["dev"]["indices"], i["dev"]["grad"],
                                                          i["vocab"])),
                 bytes_moved=n_bytes + vocab * dim * 4),
            Case("embedding", "backward sparse", shape, make,
                 lambda i: kernels.embedding_backward_sparse(i["host"]["indices"],
                                                             i["host"]["grad"]),
                 _synced(lambda i: gpu.embedding_backward_sparse(i["dev"]["indices"],
                                                                 i["dev"]["grad"])),
                 bytes_moved=2 * n_bytes),
        ]
    return out


def _lstm_cases(shapes):
    from fastseq import kernels
    from fastseq._kernels import cuda as gpu

    out = []
    for dim, hidden, batch, steps in shapes:
        def make(dim=dim, hidden=hidden, batch=batch, steps=steps):
            rng = np.random.default_rng(0)
            host = {"x": rng.standard_normal((batch, steps, dim)).astype(np.float32),
                    "kernel": (rng.standard_normal((dim, 4 * hidden)) * 0.1).astype(np.float32),
                    "recurrent": (rng.standard_normal((hidden, 4 * hidden)) * 0.1
                                  ).astype(np.float32),
                    "bias": np.zeros(4 * hidden, np.float32),
                    "grad": rng.standard_normal((batch, hidden)).astype(np.float32)}
            return {"host": host, "dev": {k: gpu.as_device(v, k) for k, v in host.items()}}

        def step(ns, arrays):
            _, _, _, cache = ns.lstm_forward(arrays["x"], arrays["kernel"], arrays["recurrent"],
                                             arrays["bias"], training=True)
            return ns.lstm_backward(cache, grad_h_last=arrays["grad"])

        out.append(Case(
            "lstm", "forward + backward", f"D={dim} H={hidden} B={batch} T={steps}", make,
            lambda i: step(kernels, i["host"]), _synced(lambda i: step(gpu, i["dev"])),
            flops=3 * 2 * batch * steps * 4 * hidden * (dim + hidden)))
    return out


def _conv_cases(shapes):
    from fastseq import kernels
    from fastseq._kernels import cuda as gpu

    out = []
    for batch, length, cin, cout, taps in shapes:
        def make(batch=batch, length=length, cin=cin, cout=cout, taps=taps):
            rng = np.random.default_rng(0)
            out_len = length - taps + 1
            host = {"x": rng.standard_normal((batch, length, cin)).astype(np.float32),
                    "kernel": (rng.standard_normal((taps, cin, cout)) * 0.1).astype(np.float32),
                    "bias": np.zeros(cout, np.float32),
                    "grad": rng.standard_normal((batch, out_len, cout)).astype(np.float32)}
            return {"host": host, "dev": {k: gpu.as_device(v, k) for k, v in host.items()}}

        def step(ns, arrays):
            _, cache = ns.conv1d_forward(arrays["x"], arrays["kernel"], arrays["bias"])
            return ns.conv1d_backward(cache, arrays["grad"])

        out_len = length - taps + 1
        out.append(Case(
            "conv1d", "forward + backward", f"B={batch} L={length} Cin={cin} Cout={cout} "
            f"k={taps}", make, lambda i: step(kernels, i["host"]),
            _synced(lambda i: step(gpu, i["dev"])),
            flops=3 * 2 * batch * out_len * taps * cin * cout))
    return out


def _train_case(vocab, dim, units, batch, steps):
    def make():
        import fastseq
        from fastseq.layers import LSTM, Dense, Embedding
        from fastseq.models import Sequential
        from fastseq.utils import set_random_seed

        def build():
            model = Sequential([Embedding(vocab, dim, input_length=steps), LSTM(units),
                                Dense(1, activation="sigmoid")])
            model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
            return model

        set_random_seed(0)
        cpu = build()
        with fastseq.device("cuda"):
            gpu = build()
        gpu.set_weights(cpu.get_weights())
        rng = np.random.default_rng(0)
        return {"cpu": cpu, "gpu": gpu,
                "x": rng.integers(1, vocab, (batch, steps)).astype(np.int32),
                "y": rng.integers(0, 2, batch).astype(np.float32)}

    # train_on_batch already waits: the loss comes back at the end of the step
    return Case(
        "train", "IMDB LSTM step (seed 002)",
        f"V={vocab} D={dim} H={units} B={batch} T={steps}", make,
        lambda i: i["cpu"].train_on_batch(i["x"], i["y"]),
        _synced(lambda i: i["gpu"].train_on_batch(i["x"], i["y"])),
        flops=3 * 2 * batch * steps * 4 * units * (dim + units),
        note="Embedding -> LSTM -> Dense(sigmoid), BCE, Adam; baseline: the CPU model")


FAMILIES = ("embedding", "lstm", "conv1d", "train")


def cases(quick=False, families=None, simulator=False):
    shapes = SIMULATOR_SHAPES if simulator else QUICK if quick else FULL
    families = families or FAMILIES
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"--device cuda benchmarks the families {', '.join(FAMILIES)}; "
                         f"got {', '.join(unknown)}")
    out = []
    if "embedding" in families:
        out += _embedding_cases(shapes["embedding"])
    if "lstm" in families:
        out += _lstm_cases(shapes["lstm"])
    if "conv1d" in families:
        out += _conv_cases(shapes["conv1d"])
    if "train" in families:
        out.append(_train_case(**shapes["train"]))
    return out
