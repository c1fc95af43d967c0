"""pytest-benchmark suite for the Conv1D and pooling kernels: `pytest bench/test_bench_conv1d.py`.

The cases (shapes, inputs, baselines, FLOP and byte floors) are the ones `python -m fastseq
bench` runs; see fastseq/_bench/conv1d.py for the floors."""
import pytest

from fastseq._bench.conv1d import cases

CASES = cases()
IDS = [f"{c.name}-{c.shape}".replace(" ", "_") for c in CASES]


@pytest.fixture(scope="module")
def inputs_cache():
    return {}


def _inputs(case, cache):
    if case.shape not in cache:
        cache.clear()  # keep one shape's arrays alive at a time
        cache[case.shape] = case.make_inputs()
    return cache[case.shape]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numpy_baseline(benchmark, case, inputs_cache):
    benchmark.group = f"conv1d {case.name} {case.shape}"
    benchmark(case.baseline, _inputs(case, inputs_cache))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fastseq(benchmark, case, inputs_cache):
    benchmark.group = f"conv1d {case.name} {case.shape}"
    benchmark(case.fast, _inputs(case, inputs_cache))
