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

from . import _recurrent as rec
from ._recurrent import SHAPES
from .core import Case

KEYS = ("input_masks", "recurrent_masks")


def _inputs(B, T, D, H, dropout=0.0):
    def make():
        rng = np.random.default_rng(0)
        masks = {"input_masks": None, "recurrent_masks": None}
        if dropout:
            # Keras's implementation-1 masks: one per gate, fixed for the sequence
            keep = 1.0 - dropout
            for name, F in (("input_masks", D), ("recurrent_masks", H)):
                masks[name] = ((rng.random((3, B, F)) < keep) / keep).astype(np.float32)
        return {**rec.weights(rng, B, T, D, H, gates=3, bias_rows=2), **masks}
    return make


def _forward(module, training):
    return rec.forward(module, "gru", training, KEYS)


def _forward_backward(module):
    return rec.forward_backward(module, "gru", KEYS, cache_at=2)


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


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * 3 * H * (D + H)


def cases(quick=False):
    out = rec.standard_cases(
        "gru", quick, inputs=_inputs, flops=forward_flops, reference=reference, fast=fast,
        forward=_forward, forward_backward=_forward_backward, peer=torch_gru,
        inference_note="reset_after=True, training=False; torch: nn.GRU under no_grad",
        gradients="five", training_cache=False)
    # Keras's recurrent_dropout path: per-gate masks (no PyTorch equivalent)
    B, T, D, H = SHAPES[0]
    out.append(Case(
        family="gru", name="forward+backward, dropout masks", shape=rec.shape_name(B, T, D, H),
        make_inputs=_inputs(B, T, D, H, dropout=0.2), baseline=_forward_backward(reference),
        fast=_forward_backward(fast), flops=3 * forward_flops(B, T, D, H),
        note="input_masks and recurrent_masks (Keras's implementation 1, rate 0.2)",
    ))
    return out
