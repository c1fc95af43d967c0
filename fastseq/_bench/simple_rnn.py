"""SimpleRNN benchmarks: forward (inference), forward with the training cache,
forward+backward, fastseq's Numba kernels against the NumPy reference (and PyTorch's
nn.RNN in its own process).

Floors, counted. The work is GEMMs: the forward's input projection is 2*B*T*D*H FLOPs and
its recurrence 2*B*T*H*H; the backward does each twice more (dx and dkernel, dh and
drecurrent_kernel), so forward+backward is 3x the forward. At the IMDB shape
(B, T, D, H) = (64, 500, 32, 100) the forward is 0.20 + 0.64 = 0.84 GFLOP and
forward+backward 2.5 GFLOP; at the ~150 GFLOP/s the 2-core development machine's BLAS
reaches on one large float32 GEMM (about 95 on one core), a floor of about 6 ms forward and
17 ms forward+backward; at (32, 100, 300, 256) 0.91 and 2.7 GFLOP, 6 and 18 ms. The
recurrence's GEMMs are small ((H, H) by (H, B) per step) and run below that peak; the
activations are one per unit and step; the training cache, the outputs and their
gradients are B*T*H values each, written or read once (12.8 MB each at the IMDB shape).
The NumPy reference is GEMM-bound as well: one thread of it runs the (32, 100, 300, 256)
forward+backward about as fast as one thread of the kernels, which gain there from running
their row blocks on both cores with no synchronization per step.

The GFLOP/s figures use these counts; the share of GEMM peak divides by
:func:`fastseq._bench.core.gemm_peak_gflops` measured in the same run.
"""
import numpy as np

from fastseq._api import simple_rnn as fast
from fastseq._kernels.reference import simple_rnn as reference

from . import _recurrent as rec
from ._recurrent import SHAPES
from .core import Case

KEYS = ("mask", "input_mask", "recurrent_mask")


def _inputs(B, T, D, H, masked_steps=0, dropout=0.0):
    def make():
        rng = np.random.default_rng(0)
        input_mask = recurrent_mask = None
        if dropout:
            keep = np.float32(1.0 / (1.0 - dropout))
            input_mask = (rng.random((B, D)) >= dropout).astype(np.float32) * keep
            recurrent_mask = (rng.random((B, H)) >= dropout).astype(np.float32) * keep
        return {
            **rec.weights(rng, B, T, D, H, gates=1),
            "mask": rec.pre_padding(B, T, masked_steps),
            "masked_steps": masked_steps,
            "input_mask": input_mask,
            "recurrent_mask": recurrent_mask,
        }
    return make


def _forward(module, training):
    return rec.forward(module, "simple_rnn", training, KEYS)


def _forward_backward(module):
    return rec.forward_backward(module, "simple_rnn", KEYS, cache_at=2)


def _torch_rnn(i):
    """nn.RNN (tanh) with our weights (see :func:`fastseq._bench._recurrent.torch_peer`).
    nn.RNN has no per-sequence dropout masks, so the dropout cases have no PyTorch
    column."""
    return rec.torch_peer(
        lambda torch, D, H: torch.nn.RNN(D, H, batch_first=True, nonlinearity="tanh"), i)


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * H * (D + H)


def cases(quick=False):
    common = dict(inputs=_inputs, flops=forward_flops, reference=reference, fast=fast,
                  forward_backward=_forward_backward, peer=_torch_rnn)
    out = rec.standard_cases("simple_rnn", quick, forward=_forward, gradients="five",
                             inference_note="training=False; torch: nn.RNN under no_grad",
                             **common)
    B, T, D, H = SHAPES[0]
    out.append(Case(
        family="simple_rnn", name="forward+backward, dropout 0.2 / 0.2",
        shape=rec.shape_name(B, T, D, H), make_inputs=_inputs(B, T, D, H, dropout=0.2),
        baseline=_forward_backward(reference), fast=_forward_backward(fast),
        flops=3 * forward_flops(B, T, D, H),
        note="input and recurrent dropout masks (one per sequence); no torch equivalent",
    ))
    return out + rec.pre_padded_cases("simple_rnn", **common)
