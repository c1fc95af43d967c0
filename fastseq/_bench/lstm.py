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


def cases(quick=False):
    common = dict(inputs=_inputs, flops=forward_flops, reference=reference, fast=kernels,
                  forward_backward=_forward_backward, peer=_torch_lstm)
    return (rec.standard_cases("lstm", quick, forward=_forward, gradients="six",
                               inference_note="training=False; torch: nn.LSTM under no_grad",
                               **common)
            + rec.pre_padded_cases("lstm", **common))
