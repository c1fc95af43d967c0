"""pytest-benchmark suite for text preprocessing: `pytest bench/test_bench_preprocessing.py`.

The cases are the ones `python -m fastseq bench` runs: Tokenizer and pad_sequences on all
50,000 IMDB reviews (with $FASTSEQ_DATA; synthetic text of the same size otherwise), against
the Keras code in plain Python. A baseline round takes ~10-20 s, so rounds are fixed at 3.
FASTSEQ_BENCH_QUICK=1 runs the 2,000-review cases instead."""
import os

import pytest

from fastseq._bench.preprocessing import cases

CASES = cases(quick=os.environ.get("FASTSEQ_BENCH_QUICK", "") not in ("", "0"))
IDS = [c.name.replace(" ", "_") for c in CASES]
ROUNDS = 3


@pytest.fixture(scope="module")
def inputs_cache():
    return {}


def _inputs(case, cache):
    if case.key not in cache:
        cache.clear()  # keep one case's texts alive at a time
        cache[case.key] = case.make_inputs()
    return cache[case.key]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_baseline(benchmark, case, inputs_cache):
    benchmark.group = f"preprocessing {case.name} {case.shape}"
    inputs = _inputs(case, inputs_cache)
    benchmark.pedantic(case.baseline, args=(inputs,), rounds=ROUNDS, iterations=1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fastseq(benchmark, case, inputs_cache):
    benchmark.group = f"preprocessing {case.name} {case.shape}"
    inputs = _inputs(case, inputs_cache)
    benchmark.pedantic(case.fast, args=(inputs,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
