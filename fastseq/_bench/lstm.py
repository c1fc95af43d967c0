"""LSTM benchmarks: forward (inference), forward with the training cache, forward+backward,
fastseq's Numba kernels against the NumPy reference (and PyTorch's nn.LSTM in its own
process).

Floors, counted. The work is GEMMs: the forward's input projection is 2*B*T*D*4H FLOPs and
its recurrence 2*B*T*H*4H; the backward does each twice more (dx and dkernel, dh and
drecurrent_kernel), so forward+backward is 3x the forward. At the seed's IMDB shape
(B, T, D, H) = (64, 500, 32, 100) the forward is 0.82 + 2.56 = 3.4 GFLOP and
forward+backward 10.1 GFLOP; at the ~160-180 GFLOP/s a 2-core AVX2 machine reaches on one
large float32 GEMM, that is a floor of about 20 ms forward and 60 ms forward+backward.
The recurrence's GEMMs are small (B x H by H x 4H per step) and run well below that peak;
the gate nonlinearities (5 transcendentals per unit and step) and the training cache's
memory traffic (about 7*B*T*H floats written and read) come on top.

The GFLOP/s figures use these counts; the share of GEMM peak divides by
:func:`fastseq._bench.core.gemm_peak_gflops` measured in the same run.
"""
import numpy as np

from fastseq import kernels
from fastseq._kernels import reference

from . import _recurrent as rec
from .core import Case

KEYS = ("mask",)


def _inputs(B, T, D, H, masked_steps=0):
    def make():
        rng = np.random.default_rng(0)
        return {**rec.weights(rng, B, T, D, H, gates=4),
                "mask": rec.pre_padding(B, T, masked_steps), "masked_steps": masked_steps}
    return make


def _forward(module, training):
    return rec.forward(module, "lstm", training, KEYS)


def _forward_backward(module):
    return rec.forward_backward(module, "lstm", KEYS, cache_at=3)


def _torch_lstm(i):
    """nn.LSTM with our weights. PyTorch's gate order (i, f, g, o) is Keras's (i, f, c, o);
    its weights are the transposes (see :func:`fastseq._bench._recurrent.torch_peer`)."""
    return rec.torch_peer(lambda torch, D, H: torch.nn.LSTM(D, H, batch_first=True), i)


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * 4 * H * (D + H)


# The vocabulary of the folded-Embedding inference case at each shape: the seed's IMDB
# model, seed 004's, and 10,000 words for the wide one (its (V, 4H) table: 41 MB)
FOLD_VOCABULARY = dict(zip(rec.SHAPES, (5000, 1024, 10000)))


def _folded_inputs(B, T, D, H, V):
    def make():
        rng = np.random.default_rng(0)
        i = rec.weights(rng, B, T, D, H, gates=4)
        embeddings = rng.standard_normal((V, D)).astype(np.float32)
        return {**i, "embeddings": embeddings, "indices": rng.integers(0, V, (B, T)),
                "table": embeddings @ i["kernel"]}
    return make


def _folded_forward(module):
    def run(i):
        return module.lstm_forward(i["indices"], None, i["recurrent_kernel"], i["bias"],
                                   training=False, x_proj=i["table"])
    return run


def _torch_embedding_lstm(i):
    """nn.Embedding -> nn.LSTM under no_grad, on the indices."""
    import torch

    _, module, _, _ = _torch_lstm({**i, "masked_steps": 0})
    embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(i["embeddings"]))
    indices = torch.from_numpy(i["indices"])

    def run():
        with torch.no_grad():
            return module(embedding(indices))
    return run


def _folded_cases(quick):
    out = []
    for B, T, D, H in (rec.QUICK_SHAPES if quick else rec.SHAPES):
        V = FOLD_VOCABULARY[(B, T, D, H)]
        out.append(Case(
            family="lstm", name="inference from indices (Embedding folded)",
            shape=f"{rec.shape_name(B, T, D, H)} V={V}", make_inputs=_folded_inputs(B, T, D, H, V),
            baseline=_folded_forward(reference), fast=_folded_forward(kernels),
            torch=_torch_embedding_lstm, flops=2 * B * T * 4 * H * H,
            note="x_proj = embeddings @ kernel made once (as the layer caches it), the steps "
                 "gather their rows; FLOPs: the recurrence only; torch: nn.Embedding -> "
                 "nn.LSTM under no_grad",
        ))
    return out


# predict on the seed's IMDB model: 2,048 reviews of 500 tokens, batch 256
PREDICT = dict(samples=2048, steps=500, vocab=5000, dim=32, units=100, batch=256)


def _predict_inputs():
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential
    from fastseq.utils import set_random_seed

    p = PREDICT
    set_random_seed(0)
    model = Sequential([Embedding(p["vocab"], p["dim"], input_length=p["steps"]),
                        LSTM(p["units"]), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(1, p["vocab"], (p["samples"], p["steps"])).astype(np.int32)
    return {"model": model, "x": x, "weights": model.get_weights()}


def _predict(i):
    return i["model"].predict(i["x"], batch_size=PREDICT["batch"], verbose=0)


def _torch_predict(i):
    import torch

    embeddings, kernel, recurrent, bias, dense_kernel, dense_bias = i["weights"]
    p = PREDICT
    lstm = torch.nn.LSTM(p["dim"], p["units"], batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        lstm.bias_hh_l0.zero_()
    embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(embeddings))
    dense = torch.nn.Linear(p["units"], 1)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(dense_kernel.T.copy()))
        dense.bias.copy_(torch.from_numpy(dense_bias))
    x = torch.from_numpy(i["x"].astype(np.int64))

    def run():
        with torch.no_grad():
            return torch.cat([torch.sigmoid(dense(lstm(embedding(x[s:s + p["batch"]]))[1][0][0]))
                              for s in range(0, p["samples"], p["batch"])])
    return run


def _predict_case():
    p = PREDICT
    return Case(
        family="lstm", name="predict (IMDB model)",
        shape=f"N={p['samples']} T={p['steps']} V={p['vocab']} D={p['dim']} H={p['units']} "
              f"batch={p['batch']}",
        make_inputs=_predict_inputs, baseline=None, fast=_predict, torch=_torch_predict,
        flops=forward_flops(p["samples"], p["steps"], p["dim"], p["units"]),
        note="Embedding -> LSTM -> Dense, model.predict; torch: the same modules under no_grad, "
             "batch by batch",
    )


def cases(quick=False):
    common = dict(inputs=_inputs, flops=forward_flops, reference=reference, fast=kernels,
                  forward_backward=_forward_backward, peer=_torch_lstm)
    return (rec.standard_cases("lstm", quick, forward=_forward, gradients="six",
                               inference_note="training=False; torch: nn.LSTM under no_grad",
                               **common)
            + rec.pre_padded_cases("lstm", **common) + _folded_cases(quick)
            + ([] if quick else [_predict_case()]))
