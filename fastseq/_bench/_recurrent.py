"""What the recurrent families' benchmarks (lstm, gru, simple_rnn) share: the shapes, the
random inputs, the calls into a kernel module, the PyTorch peers' runners and the lists of
cases. Each family module states only what differs: its kernel pair, its gate count and
bias layout, its torch module, its FLOP count and its extra cases.
"""
import numpy as np

from .core import Case

# (B, T, D, H): the seed's IMDB model (Embedding(5000, 32) -> 100 units, batch 64, 500
# steps), a short-sequence wide-input one, and a large one (GloVe-300 inputs, 256 units).
SHAPES = [(64, 500, 32, 100), (16, 64, 256, 128), (32, 100, 300, 256)]
QUICK_SHAPES = [(64, 500, 32, 100)]


def shape_name(B, T, D, H):
    return f"B={B} T={T} D={D} H={H}"


def pre_padding(B, T, masked_steps):
    """The first masked_steps steps masked for the whole batch (None when there are none)."""
    if not masked_steps:
        return None
    mask = np.ones((B, T), dtype=bool)
    mask[:, :masked_steps] = False  # pre-padding, the whole batch
    return mask


def weights(rng, B, T, D, H, gates, bias_rows=None):
    """x, kernel (D, gates*H), recurrent_kernel (H, gates*H), bias (gates*H or
    (bias_rows, gates*H)) and the output gradient, drawn in that order from rng."""
    scale_in, scale_rec = 1.0 / np.sqrt(D), 1.0 / np.sqrt(H)
    G = gates * H
    bias_shape = G if bias_rows is None else (bias_rows, G)
    return {
        "x": rng.standard_normal((B, T, D)).astype(np.float32),
        "kernel": (scale_in * rng.standard_normal((D, G))).astype(np.float32),
        "recurrent_kernel": (scale_rec * rng.standard_normal((H, G))).astype(np.float32),
        "bias": (0.1 * rng.standard_normal(bias_shape)).astype(np.float32),
        "grad": rng.standard_normal((B, T, H)).astype(np.float32),
    }


def _call_forward(module, op, i, keys, **kwargs):
    return getattr(module, f"{op}_forward")(
        i["x"], i["kernel"], i["recurrent_kernel"], i["bias"],
        **{key: i[key] for key in keys}, **kwargs)


def forward(module, op, training, keys):
    """module.<op>_forward on the inputs, with the inputs named by keys as keywords."""
    def run(i):
        return _call_forward(module, op, i, keys, training=training)
    return run


def forward_backward(module, op, keys, cache_at):
    """module.<op>_forward (training cache at index cache_at), then module.<op>_backward."""
    def run(i):
        cache = _call_forward(module, op, i, keys)[cache_at]
        return getattr(module, f"{op}_backward")(cache, grad_outputs=i["grad"])
    return run


def torch_peer(make_module, i):
    """A torch module in PyTorch's weight layout for an LSTM or a SimpleRNN: weight_ih =
    kernel.T, weight_hh = recurrent_kernel.T; bias_ih = bias, bias_hh = 0. Pre-padding
    masked for the whole batch is the same work as the trimmed sequence, which is what
    PyTorch gets. make_module(torch, D, H) builds the module."""
    import torch

    D, H = i["kernel"].shape[0], i["recurrent_kernel"].shape[0]
    module = make_module(torch, D, H)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(i["kernel"].T.copy()))
        module.weight_hh_l0.copy_(torch.from_numpy(i["recurrent_kernel"].T.copy()))
        module.bias_ih_l0.copy_(torch.from_numpy(i["bias"]))
        module.bias_hh_l0.zero_()
    skip = i["masked_steps"]
    x = torch.from_numpy(np.ascontiguousarray(i["x"][:, skip:]))
    grad = torch.from_numpy(np.ascontiguousarray(i["grad"][:, skip:]))
    return torch, module, x, grad


def torch_forward(peer, training):
    """The forward of peer(i) -> (torch, module, x, grad): under no_grad, or with autograd."""
    def build(i):
        torch, module, x, _ = peer(i)
        if not training:
            def run():
                with torch.no_grad():
                    return module(x)
            return run
        x.requires_grad_()
        return lambda: module(x)
    return build


def torch_forward_backward(peer):
    """The forward and backward of peer(i) -> (torch, module, x, grad)."""
    def build(i):
        torch, module, x, grad = peer(i)
        x.requires_grad_()

        def run():
            module.zero_grad(set_to_none=True)
            x.grad = None
            out, _ = module(x)
            out.backward(grad)
        return run
    return build


def standard_cases(family, quick, *, inputs, flops, reference, fast, forward, forward_backward,
                   peer, inference_note, gradients, training_cache=True):
    """Per shape: forward (inference), forward (training cache) where training_cache, and
    forward+backward; forward(module, training) and forward_backward(module) are the
    family's runners, peer its torch peer."""
    out = []
    for B, T, D, H in (QUICK_SHAPES if quick else SHAPES):
        shape = shape_name(B, T, D, H)
        make = inputs(B, T, D, H)
        fwd = flops(B, T, D, H)
        out.append(Case(
            family=family, name="forward (inference)", shape=shape, make_inputs=make,
            baseline=forward(reference, False), fast=forward(fast, False),
            torch=torch_forward(peer, False), flops=fwd, note=inference_note,
        ))
        if training_cache:
            out.append(Case(
                family=family, name="forward (training cache)", shape=shape,
                make_inputs=make, baseline=forward(reference, True), fast=forward(fast, True),
                torch=torch_forward(peer, True), flops=fwd,
                note="training=True: keeps what the backward needs; torch: with autograd",
            ))
        out.append(Case(
            family=family, name="forward+backward", shape=shape, make_inputs=make,
            baseline=forward_backward(reference), fast=forward_backward(fast),
            torch=torch_forward_backward(peer), flops=3 * fwd,
            note=f"gradients of the output sequence; all {gradients} gradients",
        ))
    return out


def pre_padded_cases(family, *, inputs, flops, reference, fast, forward_backward, peer):
    """Pre-padded batches at SHAPES[0]: half the steps masked for the whole batch cost
    nothing, against the reference and against fastseq on the same batch unmasked."""
    B, T, D, H = SHAPES[0]
    shape = shape_name(B, T, D, H)
    half = inputs(B, T, D, H, masked_steps=T // 2)
    full = inputs(B, T, D, H)
    return [
        Case(
            family=family, name="forward+backward, half pre-padded", shape=shape,
            make_inputs=half, baseline=forward_backward(reference),
            fast=forward_backward(fast), torch=torch_forward_backward(peer),
            flops=3 * flops(B, T - T // 2, D, H),
            note="mask[:, :T/2] = False for every sequence; torch: the trimmed sequence",
        ),
        Case(
            family=family, name="forward+backward, half pre-padded vs unmasked", shape=shape,
            make_inputs=lambda: {"masked": half(), "unmasked": full()},
            baseline=lambda i: forward_backward(fast)(i["unmasked"]),
            fast=lambda i: forward_backward(fast)(i["masked"]),
            flops=3 * flops(B, T - T // 2, D, H),
            note="baseline: fastseq on the same batch unmasked (target: >= 1.8x)",
        ),
    ]
