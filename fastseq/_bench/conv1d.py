"""Conv1D and pooling benchmarks against the NumPy im2col reference (and PyTorch).

Shapes (B, L, Cin, k, Cout), padding 'valid' (Keras's default), float32:
  (16, 64, 100, 3, 64)   seed 004's first Conv1D(64, 3) on (64 steps, 100 features), batch 16
  (64, 500, 32, 5, 128)  an IMDB-length sequence of 32-wide embeddings
  (32, 200, 128, 3, 128) a deeper layer: wide in, wide out

Floors. A conv's forward is 2 * B * Lout * k * Cin * Cout FLOPs done directly (im2col), and
forward + backward three times that (y, dx and dkernel are one GEMM each). At the machine's
GEMM peak (~160 GFLOP/s float32 on 2 cores, measured by the runner) that gives:
  (16, 64, 100, 3, 64):   forward  38 MFLOP -> 0.24 ms;  forward + backward 0.71 ms
  (64, 500, 32, 5, 128):  forward 1300 MFLOP -> 8.1 ms;  forward + backward 24.4 ms
  (32, 200, 128, 3, 128): forward  623 MFLOP -> 3.9 ms;  forward + backward 11.7 ms
fastseq runs Winograd F(4, k) at stride 1: its GEMMs do n / (m k) = 0.5 (k = 3) and
0.4 (k = 5) of those FLOPs, so its own floor is 0.5x / 0.4x the above (0.36, 9.8 and
5.8 ms forward + backward) plus the tile transforms (memory-bound: about 4 passes over
x-sized and grad_y-sized arrays). The GFLOP/s printed are the direct-equivalent FLOPs over
the time (the figure to compare with the reference's), so they can pass the GEMM peak.
The NumPy reference: sliding_window_view copied once into im2col rows, one matmul per GEMM,
col2im as one strided add per tap.

Pooling, at the size of seed 004's layers scaled to IMDB lengths, (B, L, C) = (64, 500, 128)
float32: memory-bound. x and dx are 16.4 MB each, max_pool1d(3)'s y and int32 argmax 5.4 MB
each (y and grad_y of the global pools: 32 KB). The bytes each must move (bytes_moved):
  max_pool1d(3) forward:                 x + y + argmax                       27.3 MB
  max_pool1d(3) forward+backward:        + grad_y + argmax + dx               54.5 MB
  global average / max forward+backward: x, then dx                           32.8 MB
At the copy bandwidth the run measures (a 64 MB copy, out of cache: 15-21 GB/s on the
2-core machine) that is 1.3-1.8, 2.6-3.6 and 1.6-2.2 ms; x fits in the 32 MB L3, so a
run that reads the same x again can pass that floor. The kernels run on ranges of whole
sequences on fastseq's threads (fastseq/_api/conv1d.py).
Measured 2026-12-06, issue 16 (fastseq 2 threads and PyTorch 2.13.0 2 threads in alternating
processes, 6 runs, load 1.1-3.2 on the 2 cores; medians, ms):
  max_pool1d(3) forward+backward:  fastseq 2.0-3.2 (17-27 GB/s), PyTorch 14-24
  global average forward+backward: fastseq 1.24-1.54 (21-26 GB/s), PyTorch 1.9-16
  global max forward+backward:     fastseq 1.37-1.95 (17-24 GB/s), PyTorch 28-48
  (fastseq on 1 thread: 2.0-3.0, 1.0-1.96, 1.14-1.61). `python -m fastseq bench` the same
  day (load 3.3, copy 23.5 GB/s): 3.70 / 1.52 / 1.74 ms, 14.7 / 21.6 / 18.8 GB/s, 2.0x /
  2.4x / 9.3x PyTorch. PyTorch's OpenMP regions suffer most on a busy machine; global
  average is the case that stays close: in an earlier run (load 3.7) PyTorch took 1.26 ms
  against fastseq's 1.75 (2 threads) and 1.54 (1 thread).
"""
import numpy as np

from fastseq import kernels
from fastseq._kernels import reference

from .core import Case

SHAPES = [(16, 64, 100, 3, 64), (64, 500, 32, 5, 128), (32, 200, 128, 3, 128)]
QUICK_SHAPES = [(16, 64, 100, 3, 64)]
POOL_SHAPE = (64, 500, 128)
QUICK_POOL_SHAPE = (16, 60, 64)
POOL_SIZE = 3


def _conv_inputs(batch, length, cin, k, cout):
    def make():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, length, cin)).astype(np.float32)
        limit = np.sqrt(6.0 / (k * cin + k * cout))  # glorot_uniform, as Keras
        kernel = rng.uniform(-limit, limit, (k, cin, cout)).astype(np.float32)
        bias = np.zeros(cout, np.float32)
        out_length = length - k + 1
        grad_y = rng.standard_normal((batch, out_length, cout)).astype(np.float32)
        return {"x": x, "kernel": kernel, "bias": bias, "grad_y": grad_y}
    return make


def _forward(module):
    return lambda i: module.conv1d_forward(i["x"], i["kernel"], i["bias"])


def _forward_backward(module):
    def run(i):
        _, cache = module.conv1d_forward(i["x"], i["kernel"], i["bias"])
        return module.conv1d_backward(cache, i["grad_y"])
    return run


def _torch_conv(with_backward):
    def build(inp):
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(inp["x"])
        # weights kept in PyTorch's own layout (Cout, Cin, k), as a PyTorch user would
        w = torch.from_numpy(np.ascontiguousarray(inp["kernel"].transpose(2, 1, 0)))
        b = torch.from_numpy(inp["bias"])
        gy = torch.from_numpy(inp["grad_y"])
        if not with_backward:
            def run():
                with torch.no_grad():
                    return F.conv1d(x.transpose(1, 2), w, b).transpose(1, 2)
            return run
        w.requires_grad_()
        b.requires_grad_()

        def run():
            w.grad = None
            b.grad = None
            xg = x.detach().requires_grad_()
            # channels-last data in and out, as a user holding (B, L, C) arrays would
            y = F.conv1d(xg.transpose(1, 2), w, b).transpose(1, 2)
            y.backward(gy)
            return xg.grad, w.grad, b.grad
        return run
    return build


def _pool_inputs(batch, length, channels):
    def make():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, length, channels)).astype(np.float32)
        out_length = length // POOL_SIZE
        return {
            "x": x,
            "grad_pool": rng.standard_normal((batch, out_length, channels)).astype(np.float32),
            "grad_global": rng.standard_normal((batch, channels)).astype(np.float32),
        }
    return make


def _torch_pool(op, grad_key):
    """PyTorch forward + backward of ``op(torch, x)`` (channels-last x), seeded with i[grad_key]."""
    def build(inp):
        import torch

        x = torch.from_numpy(inp["x"])
        gy = torch.from_numpy(inp[grad_key])

        def run():
            xg = x.detach().requires_grad_()
            op(torch, xg).backward(gy)
            return xg.grad
        return run
    return build


_torch_max_pool = _torch_pool(
    lambda torch, x: torch.nn.functional.max_pool1d(x.transpose(1, 2), POOL_SIZE).transpose(1, 2),
    "grad_pool")
_torch_global_average = _torch_pool(lambda torch, x: x.mean(dim=1), "grad_global")
_torch_global_max = _torch_pool(lambda torch, x: x.amax(dim=1), "grad_global")


def _pool_pair(module, name, grad_key, **kw):
    forward = getattr(module, name + "_forward")
    backward = getattr(module, name + "_backward")

    def run(i):
        _, cache = forward(i["x"], **kw)
        return backward(cache, i[grad_key])
    return run


def cases(quick=False):
    out = []
    for batch, length, cin, k, cout in (QUICK_SHAPES if quick else SHAPES):
        shape = f"B={batch} L={length} Cin={cin} k={k} Cout={cout}"
        make = _conv_inputs(batch, length, cin, k, cout)
        flops = 2 * batch * (length - k + 1) * k * cin * cout
        note = "baseline: sliding_window_view im2col + matmul; fastseq: Winograd F(4,k)"
        out.append(Case(
            family="conv1d", name="forward", shape=shape, make_inputs=make,
            baseline=_forward(reference), fast=_forward(kernels),
            torch=_torch_conv(False), flops=flops, note=note,
        ))
        out.append(Case(
            family="conv1d", name="forward+backward", shape=shape, make_inputs=make,
            baseline=_forward_backward(reference), fast=_forward_backward(kernels),
            torch=_torch_conv(True), flops=3 * flops, note=note,
        ))
    batch, length, channels = QUICK_POOL_SHAPE if quick else POOL_SHAPE
    shape = f"B={batch} L={length} C={channels}"
    make = _pool_inputs(batch, length, channels)
    x_bytes = batch * length * channels * 4
    y_bytes = batch * (length // POOL_SIZE) * channels * 4
    out.append(Case(
        family="conv1d", name=f"max_pool1d({POOL_SIZE}) forward", shape=shape,
        make_inputs=make,
        baseline=lambda i: reference.max_pool1d_forward(i["x"], POOL_SIZE),
        fast=lambda i: kernels.max_pool1d_forward(i["x"], POOL_SIZE),
        bytes_moved=x_bytes + 2 * y_bytes, note="writes y and the int32 argmax",
    ))
    out.append(Case(
        family="conv1d", name=f"max_pool1d({POOL_SIZE}) forward+backward", shape=shape,
        make_inputs=make,
        baseline=_pool_pair(reference, "max_pool1d", "grad_pool", pool_size=POOL_SIZE),
        fast=_pool_pair(kernels, "max_pool1d", "grad_pool", pool_size=POOL_SIZE),
        torch=_torch_max_pool, bytes_moved=2 * x_bytes + 4 * y_bytes,
        note="baseline: np.add.at scatter",
    ))
    out.append(Case(
        family="conv1d", name="global_average_pool1d forward+backward", shape=shape,
        make_inputs=make,
        baseline=_pool_pair(reference, "global_average_pool1d", "grad_global"),
        fast=_pool_pair(kernels, "global_average_pool1d", "grad_global"),
        torch=_torch_global_average, bytes_moved=2 * x_bytes,
    ))
    out.append(Case(
        family="conv1d", name="global_max_pool1d forward+backward", shape=shape,
        make_inputs=make,
        baseline=_pool_pair(reference, "global_max_pool1d", "grad_global"),
        fast=_pool_pair(kernels, "global_max_pool1d", "grad_global"),
        torch=_torch_global_max, bytes_moved=2 * x_bytes,
    ))
    return out
