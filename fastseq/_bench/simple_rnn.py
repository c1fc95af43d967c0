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

from .core import Case

# (B, T, D, H): the IMDB model's shape with SimpleRNN(100) in place of LSTM(100), a
# short-sequence wide-input one, and a large one (GloVe-300 inputs, 256 units).
SHAPES = [(64, 500, 32, 100), (16, 64, 256, 128), (32, 100, 300, 256)]
QUICK_SHAPES = [(64, 500, 32, 100)]


def _inputs(B, T, D, H, masked_steps=0, dropout=0.0):
    def make():
        rng = np.random.default_rng(0)
        scale_in, scale_rec = 1.0 / np.sqrt(D), 1.0 / np.sqrt(H)
        mask = None
        if masked_steps:
            mask = np.ones((B, T), dtype=bool)
            mask[:, :masked_steps] = False  # pre-padding, the whole batch
        input_mask = recurrent_mask = None
        if dropout:
            keep = np.float32(1.0 / (1.0 - dropout))
            input_mask = (rng.random((B, D)) >= dropout).astype(np.float32) * keep
            recurrent_mask = (rng.random((B, H)) >= dropout).astype(np.float32) * keep
        return {
            "x": rng.standard_normal((B, T, D)).astype(np.float32),
            "kernel": (scale_in * rng.standard_normal((D, H))).astype(np.float32),
            "recurrent_kernel": (scale_rec * rng.standard_normal((H, H))).astype(np.float32),
            "bias": (0.1 * rng.standard_normal(H)).astype(np.float32),
            "grad": rng.standard_normal((B, T, H)).astype(np.float32),
            "mask": mask,
            "masked_steps": masked_steps,
            "input_mask": input_mask,
            "recurrent_mask": recurrent_mask,
        }
    return make


def _forward(module, training):
    def run(i):
        return module.simple_rnn_forward(i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
                                         mask=i["mask"], training=training,
                                         input_mask=i["input_mask"],
                                         recurrent_mask=i["recurrent_mask"])
    return run


def _forward_backward(module):
    def run(i):
        cache = module.simple_rnn_forward(i["x"], i["kernel"], i["recurrent_kernel"],
                                          i["bias"], mask=i["mask"],
                                          input_mask=i["input_mask"],
                                          recurrent_mask=i["recurrent_mask"])[2]
        return module.simple_rnn_backward(cache, grad_outputs=i["grad"])
    return run


def _torch_rnn(i):
    """nn.RNN (tanh) with our weights: weight_ih (H, D) = kernel.T, weight_hh (H, H) =
    recurrent_kernel.T, bias_ih = bias, bias_hh = 0. Pre-padding masked for the whole batch
    is the same work as the trimmed sequence, which is what PyTorch gets. nn.RNN has no
    per-sequence dropout masks, so the dropout cases have no PyTorch column."""
    import torch

    D, H = i["kernel"].shape
    rnn = torch.nn.RNN(D, H, batch_first=True, nonlinearity="tanh")
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(i["kernel"].T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(i["recurrent_kernel"].T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(i["bias"]))
        rnn.bias_hh_l0.zero_()
    skip = i["masked_steps"]
    x = torch.from_numpy(np.ascontiguousarray(i["x"][:, skip:]))
    grad = torch.from_numpy(np.ascontiguousarray(i["grad"][:, skip:]))
    return torch, rnn, x, grad


def _torch_forward(training):
    def build(i):
        torch, rnn, x, _ = _torch_rnn(i)
        if not training:
            def run():
                with torch.no_grad():
                    return rnn(x)
            return run
        x.requires_grad_()
        return lambda: rnn(x)
    return build


def _torch_forward_backward(i):
    torch, rnn, x, grad = _torch_rnn(i)
    x.requires_grad_()

    def run():
        rnn.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = rnn(x)
        out.backward(grad)
    return run


def forward_flops(B, T, D, H):
    # the input projection and the recurrence's GEMMs
    return 2 * B * T * H * (D + H)


def cases(quick=False):
    out = []
    for B, T, D, H in (QUICK_SHAPES if quick else SHAPES):
        shape = f"B={B} T={T} D={D} H={H}"
        make = _inputs(B, T, D, H)
        fwd = forward_flops(B, T, D, H)
        out.append(Case(
            family="simple_rnn", name="forward (inference)", shape=shape, make_inputs=make,
            baseline=_forward(reference, False), fast=_forward(fast, False),
            torch=_torch_forward(False), flops=fwd,
            note="training=False; torch: nn.RNN under no_grad",
        ))
        out.append(Case(
            family="simple_rnn", name="forward (training cache)", shape=shape,
            make_inputs=make, baseline=_forward(reference, True), fast=_forward(fast, True),
            torch=_torch_forward(True), flops=fwd,
            note="training=True: keeps what the backward needs; torch: with autograd",
        ))
        out.append(Case(
            family="simple_rnn", name="forward+backward", shape=shape, make_inputs=make,
            baseline=_forward_backward(reference), fast=_forward_backward(fast),
            torch=_torch_forward_backward, flops=3 * fwd,
            note="gradients of the output sequence; all five gradients",
        ))
    B, T, D, H = SHAPES[0]
    shape = f"B={B} T={T} D={D} H={H}"
    out.append(Case(
        family="simple_rnn", name="forward+backward, dropout 0.2 / 0.2", shape=shape,
        make_inputs=_inputs(B, T, D, H, dropout=0.2), baseline=_forward_backward(reference),
        fast=_forward_backward(fast), flops=3 * forward_flops(B, T, D, H),
        note="input and recurrent dropout masks (one per sequence); no torch equivalent",
    ))
    # pre-padded batches: half the steps masked for the whole batch cost nothing
    half = _inputs(B, T, D, H, masked_steps=T // 2)
    out.append(Case(
        family="simple_rnn", name="forward+backward, half pre-padded", shape=shape,
        make_inputs=half, baseline=_forward_backward(reference), fast=_forward_backward(fast),
        torch=_torch_forward_backward, flops=3 * forward_flops(B, T - T // 2, D, H),
        note="mask[:, :T/2] = False for every sequence; torch: the trimmed sequence",
    ))
    full = _inputs(B, T, D, H)
    out.append(Case(
        family="simple_rnn", name="forward+backward, half pre-padded vs unmasked",
        shape=shape, make_inputs=lambda: {"masked": half(), "unmasked": full()},
        baseline=lambda i: _forward_backward(fast)(i["unmasked"]),
        fast=lambda i: _forward_backward(fast)(i["masked"]),
        flops=3 * forward_flops(B, T - T // 2, D, H),
        note="baseline: fastseq on the same batch unmasked (target: >= 1.8x)",
    ))
    return out
