"""The benchmark machinery behind ``python -m fastseq bench`` and ``pytest bench/``.

Each op family has a module in this package with ``cases(quick=False) -> list[Case]``.
A case names its inputs, the NumPy baseline, the fastseq call and, optionally, the PyTorch
equivalent. Baseline and fastseq run side by side in one process; PyTorch runs in a
separate process (``fastseq._bench.torch_worker``), because NumPy's and PyTorch's thread
pools in one process disturb each other's timings.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable, Optional

import numpy as np


@dataclasses.dataclass
class Case:
    family: str                     # "embedding", "lstm", "conv1d", "train"
    name: str                       # "forward", "backward (dense)", ...
    shape: str                      # "V=5000 D=32 B=64 T=500"
    make_inputs: Callable[[], dict]  # built once per case, before any timing; deterministic
    baseline: Optional[Callable[[dict], Any]]  # the NumPy reference
    fast: Callable[[dict], Any]     # fastseq
    # Given the inputs (NumPy arrays), build the PyTorch version and return a zero-argument
    # callable that runs it once. Imports torch itself; runs only in the torch worker.
    torch: Optional[Callable[[dict], Callable[[], Any]]] = None
    bytes_moved: Optional[int] = None  # the floor: bytes the op must read + write
    flops: Optional[int] = None
    note: str = ""

    @property
    def key(self):
        return f"{self.family}|{self.name}|{self.shape}"


def time_call(fn, min_time=0.3, min_repeats=5, max_repeats=200, warmup=1):
    """Median wall time of ``fn()`` in seconds over repeats (after ``warmup`` calls).

    Repeats until both ``min_repeats`` calls and ``min_time`` seconds are spent. Medians,
    not means: these machines are shared and noisy."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_repeats and time.perf_counter() - start >= min_time:
            break
    return statistics.median(times)


_GEMM_PEAK = {}


def gemm_peak_gflops(dtype=np.float32, n=1024, min_time=0.3):
    """The BLAS's achieved GFLOP/s on an n x n x n GEMM, measured now: the machine's GEMM
    peak for GFLOP/s shares in the tables."""
    key = (np.dtype(dtype).name, n)
    if key not in _GEMM_PEAK:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        out = np.empty((n, n), dtype=dtype)
        t = time_call(lambda: np.matmul(a, b, out=out), min_time=min_time)
        _GEMM_PEAK[key] = 2.0 * n**3 / t / 1e9
    return _GEMM_PEAK[key]


_COPY_BW = {}


def copy_bandwidth_gbs(nbytes=64 << 20, min_time=0.3):
    """Achieved GB/s (read + write) of one large memory copy, measured now."""
    if nbytes not in _COPY_BW:
        src = np.ones(nbytes // 8, dtype=np.float64)
        dst = np.empty_like(src)
        t = time_call(lambda: np.copyto(dst, src), min_time=min_time)
        _COPY_BW[nbytes] = 2.0 * nbytes / t / 1e9
    return _COPY_BW[nbytes]


def time_pair(fast, baseline, min_time=0.3, rounds=5, warm_in_s=0.25, max_repeats=200):
    """Medians (fast_s, baseline_s) of ``fast()`` and ``baseline()`` timed side by side.

    The two run in alternating blocks, ``rounds`` each (the order flips every round), so a
    machine whose speed drifts (shared VMs) moves both medians alike instead of whichever
    side happened to run in the slow second. Each block first runs its function for
    ``warm_in_s`` uncounted: the state the other side left is not this side's steady state
    (a multithreaded BLAS call leaves OpenBLAS workers spinning for about 0.1 s, which slows
    whatever runs next; idle cores take tens of ms to come back to speed, so the warm-in
    keeps them busy rather than idle). Calls longer than the warm-in get none."""
    times = {fast: [], baseline: []}
    per_block = min_time / rounds
    estimate = {}
    for fn in (fast, baseline):
        fn()  # warm-up: compiles (seconds, the first time), caches, the allocator
        t0 = time.perf_counter()
        fn()
        estimate[fn] = time.perf_counter() - t0  # decides whether blocks get a warm-in
    for r in range(rounds):
        for fn in ((fast, baseline) if r % 2 == 0 else (baseline, fast)):
            if estimate[fn] < warm_in_s:
                start = time.perf_counter()
                while time.perf_counter() - start < warm_in_s:
                    fn()
            start = time.perf_counter()
            for _ in range(max(1, max_repeats // rounds)):
                t0 = time.perf_counter()
                fn()
                times[fn].append(time.perf_counter() - t0)
                if t0 + times[fn][-1] - start >= per_block:
                    break
    return statistics.median(times[fast]), statistics.median(times[baseline])


def run_case(case: Case, min_time=0.3, with_baseline=True):
    """Time one case; returns a dict of medians (seconds) and derived figures."""
    inputs = case.make_inputs()
    base_s = None
    if with_baseline and case.baseline is not None:
        fast_s, base_s = time_pair(lambda: case.fast(inputs), lambda: case.baseline(inputs),
                                   min_time=min_time)
    else:
        fast_s = time_call(lambda: case.fast(inputs), min_time=min_time)
    row = {
        "family": case.family,
        "name": case.name,
        "shape": case.shape,
        "baseline_s": base_s,
        "fastseq_s": fast_s,
        "speedup": (base_s / fast_s) if base_s else None,
        "gbs": (case.bytes_moved / fast_s / 1e9) if case.bytes_moved else None,
        "gflops": (case.flops / fast_s / 1e9) if case.flops else None,
        "note": case.note,
    }
    return row
