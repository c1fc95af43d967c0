"""Benchmark cases shared by ``python -m fastseq bench`` and ``pytest bench/``."""
import importlib

FAMILIES = ["embedding", "lstm", "gru", "simple_rnn", "conv1d", "train", "preprocessing"]


def load_cases(families=None, quick=False):
    """All cases of the requested families (default: every family that is installed)."""
    cases = []
    for family in families or FAMILIES:
        try:
            module = importlib.import_module(f"fastseq._bench.{family}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fastseq._bench.{family}" and families is None:
                continue
            raise
        cases.extend(module.cases(quick=quick))
    return cases
