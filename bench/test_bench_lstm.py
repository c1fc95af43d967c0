"""pytest-benchmark suite for the LSTM kernels: `pytest bench/test_bench_lstm.py`.

The cases (shapes, inputs, baselines, FLOP counts) are the ones `python -m fastseq bench`
runs; each result records its GFLOP/s and share of the GEMM peak measured in this run."""
import pytest

from fastseq._bench.core import gemm_peak_gflops
from fastseq._bench.lstm import cases

CASES = cases()
IDS = [f"{c.name}-{c.shape}".replace(" ", "_").replace(",", "") for c in CASES]


@pytest.fixture(scope="module")
def inputs_cache():
    return {}


def _inputs(case, cache):
    key = (case.name, case.shape)
    if key not in cache:
        cache.clear()  # keep one case's arrays alive at a time
        cache[key] = case.make_inputs()
    return cache[key]


def _record_flops(benchmark, case):
    benchmark.extra_info["gflop"] = case.flops / 1e9
    benchmark.extra_info["gemm_peak_gflops"] = gemm_peak_gflops()
    stats = getattr(benchmark, "stats", None)
    median = getattr(getattr(stats, "stats", None), "median", None) if stats else None
    if median:
        gflops = case.flops / median / 1e9
        benchmark.extra_info["gflops"] = gflops
        benchmark.extra_info["share_of_gemm_peak"] = gflops / gemm_peak_gflops()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numpy_baseline(benchmark, case, inputs_cache):
    benchmark.group = f"lstm {case.name} {case.shape}"
    benchmark(case.baseline, _inputs(case, inputs_cache))
    _record_flops(benchmark, case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fastseq(benchmark, case, inputs_cache):
    benchmark.group = f"lstm {case.name} {case.shape}"
    benchmark(case.fast, _inputs(case, inputs_cache))
    _record_flops(benchmark, case)
