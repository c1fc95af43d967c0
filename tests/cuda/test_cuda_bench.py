"""python -m fastseq bench --device cuda: the clear error without a usable device, and a
quick run of the embedding family (tiny shapes under the simulator)."""
import pytest

pytest.importorskip("numba.cuda")

from fastseq import __main__ as cli  # noqa: E402
from fastseq import _device  # noqa: E402


def test_bench_cuda_without_a_usable_device_fails_at_once_with_cuda_status(monkeypatch,
                                                                            capsys):
    reason = "no usable NVIDIA GPU was found (test)"
    monkeypatch.setattr(_device, "cuda_status", lambda: (False, reason))
    monkeypatch.setattr(cli, "bench_cuda", lambda args: pytest.fail("benchmarks started"))
    assert cli.main(["bench", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip() == f"python -m fastseq bench --device cuda: {reason}"


def test_bench_cuda_quick_embedding_prints_the_table_and_gemm_backend(capsys):
    from fastseq._kernels.cuda import gemm_backend

    assert cli.main(["bench", "--device", "cuda", "--quick", "--family", "embedding",
                     "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    assert f"GEMM: {gemm_backend()}" in out
    rows = [line for line in out.splitlines() if line.startswith("| embedding")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "forward", "backward dense", "backward sparse"]
    assert all("ms" not in row.split("|")[5] and row.split("|")[5].strip() != "-"
               for row in rows)


def test_bench_cuda_rejects_unknown_families():
    with pytest.raises(ValueError, match="preprocessing"):
        cli.main(["bench", "--device", "cuda", "--family", "preprocessing"])
