"""GRU benchmarks: forward (inference) and forward+backward, fastseq's Numba kernels against
the NumPy reference (and PyTorch's nn.GRU in its own process).

Floors, counted. The work is GEMMs: the forward's input projection is 2*B*T*D*3H FLOPs and
its recurrence 2*B*T*H*3H; the backward does each twice more (dx and dkernel, dh and
drecurrent_kernel), so forward+backward is 3x the forward. At the seed's IMDB shape
(B, T, D, H) = (64, 500, 32, 100) the forward is 0.61 + 1.92 = 2.5 GFLOP and
forward+backward 7.6 GFLOP, three quarters of the LSTM's; at the ~150-180 GFLOP/s a 2-core
AVX2/AVX-512 machine reaches on one large float32 GEMM, a floor of about 15 ms forward and
45 ms forward+backward. The recurrence's GEMMs are small (H x 3H by H x R per step and row
block) and run below that peak; the nonlinearities (3 transcendentals per unit and step)
and the training cache's memory traffic (about 6*B*T*H floats written and read) come on
top.

Keras's default ``reset_after=True`` is what PyTorch's nn.GRU computes (gates r, z, n in
its order), so the two run the same cell. The GFLOP/s figures use these counts; the share
of GEMM peak divides by :func:`fastseq._bench.core.gemm_peak_gflops` measured in the same
run.
"""
import numpy as np

from fastseq._api import gru as fast
from fastseq._kernels.reference import gru as reference

from .core import Case

# (B, T, D, H): the LSTM benchmarks' shapes: the seed's IMDB model (Embedding(5000, 32) ->
# 100 units, batch 64, 500 steps), a short-sequence wide-input one, and a large one
# (GloVe-300 inputs, 256 units).
SHAPES = [(64, 500, 32, 100), (16, 64, 256, 128), (32, 100, 300, 256)]
QUICK_SHAPES = [(64, 500, 32, 100)]


def _inputs(B, T, D, H, dropout=0.0):
    def make():
        rng = np.random.default_rng(0)
        scale_in, scale_rec = 1.0 / np.sqrt(D), 1.0 / np.sqrt(H)
        masks = {"input_masks": None, "recurrent_masks": None}
        if dropout:
            # Keras's implementation-1 masks: one per gate, fixed for the sequence
            keep = 1.0 - dropout
            for name, F in (("input_masks", D), ("recurrent_masks", H)):
                masks[name] = ((rng.random((3, B, F)) < keep) / keep).astype(np.float32)
        return {
            "x": rng.standard_normal((B, T, D)).astype(np.float32),
            "kernel": (scale_in * rng.standard_normal((D, 3 * H))).astype(np.float32),
            "recurrent_kernel": (scale_rec * rng.standard_normal((H, 3 * H))).astype(np.float32),
            "bias": (0.1 * rng.standard_normal((2, 3 * H))).astype(np.float32),
            "grad": rng.standard_normal((B, T, H)).astype(np.float32),
            **masks,
        }
    return make


def _forward(module, training):
    def run(i):
        return module.gru_forward(i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
                                  training=training, input_masks=i["input_masks"],
                                  recurrent_masks=i["recurrent_masks"])
    return run


def _forward_backward(module):
    def run(i):
        cache = module.gru_forward(i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
                                   input_masks=i["input_masks"],
                                   recurrent_masks=i["recurrent_masks"])[2]
        return module.gru_backward(cache, grad_outputs=i["grad"])
    return run


def torch_gru(i):
    """nn.GRU with our weights: Keras's gates z, r, h are PyTorch's z, r, n in the order
    r, z, n; its weights are the transposes: weight_ih (3H, D) = kernel[:, order].T,
    weight_hh (3H, H) = recurrent_kernel[:, order].T; bias_ih, bias_hh = bias[0], bias[1]
    (reset_after=True, Keras's default, is PyTorch's cell)."""
    import torch

    D, H = i["kernel"].shape[0], i["recurrent_kernel"].shape[0]
    order = np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    gru = torch.nn.GRU(D, H, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(i["kernel"][:, order].T.copy()))
        gru.weight_hh_l0.copy_(torch.from_numpy(i["recurrent_kernel"][:, order].T.copy()))
        gru.bias_ih_l0.copy_(torch.from_numpy(i["bias"][0, order].copy()))
        gru.bias_hh_l0.copy_(torch.from_numpy(i["bias"][1, order].copy()))
    return torch, gru, torch.from_numpy(i["x"]), torch.from_numpy(i["grad"])


def _torch_forward(i):
    torch, gru, x, _ = torch_gru(i)

    def run():
        with torch.no_grad():
            return gru(x)
    return run


def _torch_forward_backward(i):
    torch, gru, x, grad = torch_gru(i)
    x.requires_grad_()

    def run():
        gru.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = gru(x)
        out.backward(grad)
    return run


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * 3 * H * (D + H)


def cases(quick=False):
    out = []
    for B, T, D, H in (QUICK_SHAPES if quick else SHAPES):
        shape = f"B={B} T={T} D={D} H={H}"
        make = _inputs(B, T, D, H)
        fwd = forward_flops(B, T, D, H)
        out.append(Case(
            family="gru", name="forward (inference)", shape=shape, make_inputs=make,
            baseline=_forward(reference, False), fast=_forward(fast, False),
            torch=_torch_forward, flops=fwd,
            note="reset_after=True, training=False; torch: nn.GRU under no_grad",
        ))
        out.append(Case(
            family="gru", name="forward+backward", shape=shape, make_inputs=make,
            baseline=_forward_backward(reference), fast=_forward_backward(fast),
            torch=_torch_forward_backward, flops=3 * fwd,
            note="gradients of the output sequence; all five gradients",
        ))
    # Keras's recurrent_dropout path: per-gate masks (no PyTorch equivalent)
    B, T, D, H = SHAPES[0]
    out.append(Case(
        family="gru", name="forward+backward, dropout masks", shape=f"B={B} T={T} D={D} H={H}",
        make_inputs=_inputs(B, T, D, H, dropout=0.2), baseline=_forward_backward(reference),
        fast=_forward_backward(fast), flops=3 * forward_flops(B, T, D, H),
        note="input_masks and recurrent_masks (Keras's implementation 1, rate 0.2)",
    ))
    return out
