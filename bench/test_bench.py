"""pytest-benchmark suite: every case `python -m fastseq bench` runs, its baseline and
fastseq side by side in one group.

    pytest bench/                                   # every family
    pytest bench/ -k lstm                           # one family (or any name part)
    FASTSEQ_BENCH_QUICK=1 pytest bench/             # the short cases of --quick

The cases (shapes, inputs, baselines, the byte and FLOP floors) live in fastseq/_bench/;
results record achieved GB/s or GFLOP/s and the share of the copy bandwidth or GEMM peak
measured in this run. Slow cases (a baseline call over 0.5 s: the plain-Python tokenizer,
the reference-kernel training steps) run a fixed 3 rounds instead of calibrating."""
import os
import time

import pytest

from fastseq._bench import load_cases
from fastseq._bench.core import copy_bandwidth_gbs, gemm_peak_gflops

CASES = load_cases(quick=os.environ.get("FASTSEQ_BENCH_QUICK", "") not in ("", "0"))
IDS = [f"{c.family}-{c.name}-{c.shape}".replace(" ", "_").replace(",", "") for c in CASES]
WITH_BASELINE = [(c, i) for c, i in zip(CASES, IDS) if c.baseline is not None]
SLOW_CALL_S = 0.5


@pytest.fixture(scope="module")
def inputs_cache():
    return {}


def _inputs(case, cache):
    if case.key not in cache:
        cache.clear()  # one case's arrays (or models) alive at a time
        cache[case.key] = case.make_inputs()
    return cache[case.key]


def _run(benchmark, case, fn, inputs):
    benchmark.group = f"{case.family} {case.name} {case.shape}"
    start = time.perf_counter()
    fn(inputs)  # warm-up (Numba compiles, caches fill) and a measure of the call's cost
    if time.perf_counter() - start > SLOW_CALL_S:
        benchmark.pedantic(fn, args=(inputs,), rounds=3, iterations=1)
    else:
        benchmark(fn, inputs)
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if stats is None:
        return
    median = stats.stats.median
    if case.flops:
        gflops = case.flops / median / 1e9
        benchmark.extra_info.update(gflops=gflops, share_of_gemm_peak=gflops / gemm_peak_gflops())
    if case.bytes_moved:
        gbs = case.bytes_moved / median / 1e9
        benchmark.extra_info.update(gbs=gbs, share_of_copy=gbs / copy_bandwidth_gbs())


@pytest.mark.parametrize("case", [c for c, _ in WITH_BASELINE], ids=[i for _, i in WITH_BASELINE])
def test_baseline(benchmark, case, inputs_cache):
    _run(benchmark, case, case.baseline, _inputs(case, inputs_cache))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fastseq(benchmark, case, inputs_cache):
    _run(benchmark, case, case.fast, _inputs(case, inputs_cache))
