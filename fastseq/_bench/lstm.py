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

from .core import Case

# (B, T, D, H): the seed's IMDB model (Embedding(5000, 32) -> LSTM(100), batch 64, 500
# steps), a short-sequence wide-input one, and a large one (GloVe-300 inputs, 256 units).
SHAPES = [(64, 500, 32, 100), (16, 64, 256, 128), (32, 100, 300, 256)]
QUICK_SHAPES = [(64, 500, 32, 100)]


def _inputs(B, T, D, H, masked_steps=0):
    def make():
        rng = np.random.default_rng(0)
        scale_in, scale_rec = 1.0 / np.sqrt(D), 1.0 / np.sqrt(H)
        mask = None
        if masked_steps:
            mask = np.ones((B, T), dtype=bool)
            mask[:, :masked_steps] = False  # pre-padding, the whole batch
        return {
            "x": rng.standard_normal((B, T, D)).astype(np.float32),
            "kernel": (scale_in * rng.standard_normal((D, 4 * H))).astype(np.float32),
            "recurrent_kernel": (scale_rec * rng.standard_normal((H, 4 * H))).astype(np.float32),
            "bias": (0.1 * rng.standard_normal(4 * H)).astype(np.float32),
            "grad": rng.standard_normal((B, T, H)).astype(np.float32),
            "mask": mask,
            "masked_steps": masked_steps,
        }
    return make


def _forward(module, training):
    def run(i):
        return module.lstm_forward(i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
                                   mask=i["mask"], training=training)
    return run


def _forward_backward(module):
    def run(i):
        cache = module.lstm_forward(i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
                                    mask=i["mask"])[3]
        return module.lstm_backward(cache, grad_outputs=i["grad"])
    return run


def _torch_lstm(i):
    """nn.LSTM with our weights. PyTorch's gate order (i, f, g, o) is Keras's (i, f, c, o);
    its weights are the transposes: weight_ih (4H, D) = kernel.T, weight_hh (4H, H) =
    recurrent_kernel.T; bias_ih = bias, bias_hh = 0. Pre-padding masked for the whole batch
    is the same work as the trimmed sequence, which is what PyTorch gets."""
    import torch

    D, H = i["kernel"].shape[0], i["recurrent_kernel"].shape[0]
    lstm = torch.nn.LSTM(D, H, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(i["kernel"].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(i["recurrent_kernel"].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(i["bias"]))
        lstm.bias_hh_l0.zero_()
    skip = i["masked_steps"]
    x = torch.from_numpy(np.ascontiguousarray(i["x"][:, skip:]))
    grad = torch.from_numpy(np.ascontiguousarray(i["grad"][:, skip:]))
    return torch, lstm, x, grad


def _torch_forward(training):
    def build(i):
        torch, lstm, x, _ = _torch_lstm(i)
        if not training:
            def run():
                with torch.no_grad():
                    return lstm(x)
            return run
        x.requires_grad_()
        return lambda: lstm(x)
    return build


def _torch_forward_backward(i):
    torch, lstm, x, grad = _torch_lstm(i)
    x.requires_grad_()

    def run():
        lstm.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = lstm(x)
        out.backward(grad)
    return run


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * 4 * H * (D + H)


def cases(quick=False):
    out = []
    for B, T, D, H in (QUICK_SHAPES if quick else SHAPES):
        shape = f"B={B} T={T} D={D} H={H}"
        make = _inputs(B, T, D, H)
        fwd = forward_flops(B, T, D, H)
        out.append(Case(
            family="lstm", name="forward (inference)", shape=shape, make_inputs=make,
            baseline=_forward(reference, False), fast=_forward(kernels, False),
            torch=_torch_forward(False), flops=fwd,
            note="training=False; torch: nn.LSTM under no_grad",
        ))
        out.append(Case(
            family="lstm", name="forward (training cache)", shape=shape, make_inputs=make,
            baseline=_forward(reference, True), fast=_forward(kernels, True),
            torch=_torch_forward(True), flops=fwd,
            note="training=True: keeps what the backward needs; torch: with autograd",
        ))
        out.append(Case(
            family="lstm", name="forward+backward", shape=shape, make_inputs=make,
            baseline=_forward_backward(reference), fast=_forward_backward(kernels),
            torch=_torch_forward_backward, flops=3 * fwd,
            note="gradients of the output sequence; all six gradients",
        ))
    # pre-padded batches: half the steps masked for the whole batch cost nothing
    B, T, D, H = SHAPES[0]
    shape = f"B={B} T={T} D={D} H={H}"
    half = _inputs(B, T, D, H, masked_steps=T // 2)
    out.append(Case(
        family="lstm", name="forward+backward, half pre-padded", shape=shape, make_inputs=half,
        baseline=_forward_backward(reference), fast=_forward_backward(kernels),
        torch=_torch_forward_backward, flops=3 * forward_flops(B, T - T // 2, D, H),
        note="mask[:, :T/2] = False for every sequence; torch: the trimmed sequence",
    ))
    full = _inputs(B, T, D, H)
    out.append(Case(
        family="lstm", name="forward+backward, half pre-padded vs unmasked", shape=shape,
        make_inputs=lambda: {"masked": half(), "unmasked": full()},
        baseline=lambda i: _forward_backward(kernels)(i["unmasked"]),
        fast=lambda i: _forward_backward(kernels)(i["masked"]),
        flops=3 * forward_flops(B, T - T // 2, D, H),
        note="baseline: fastseq on the same batch unmasked (target: >= 1.8x)",
    ))
    return out
