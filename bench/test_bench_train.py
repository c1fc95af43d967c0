"""pytest-benchmark suite for end-to-end training steps: `pytest bench/test_bench_train.py`.

One ``train_on_batch`` of each seed model, on fastseq's kernels and on the NumPy reference
kernels (the same model, weights and data). The cases are the ones `python -m fastseq bench`
runs; set FASTSEQ_BENCH_QUICK=1 for the short-sequence versions."""
import os

import pytest

from fastseq._bench.train import cases

CASES = cases(quick=os.environ.get("FASTSEQ_BENCH_QUICK") == "1")
IDS = [f"{c.name}-{c.shape}".replace(" ", "_") for c in CASES]


@pytest.fixture(scope="module")
def inputs_cache():
    return {}


def _inputs(case, cache):
    if case.key not in cache:
        cache.clear()  # one case's models alive at a time
        cache[case.key] = case.make_inputs()
    return cache[case.key]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numpy_baseline(benchmark, case, inputs_cache):
    benchmark.group = f"train {case.name} {case.shape}"
    benchmark.pedantic(case.baseline, args=(_inputs(case, inputs_cache),), rounds=3,
                       warmup_rounds=1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fastseq(benchmark, case, inputs_cache):
    benchmark.group = f"train {case.name} {case.shape}"
    benchmark(case.fast, _inputs(case, inputs_cache))
