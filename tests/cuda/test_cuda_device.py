"""fastseq.set_device / device / get_device and their errors."""
import sys

import pytest

pytest.importorskip("numba.cuda")

import numba  # noqa: E402

from fastseq import _device  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_device():
    saved = _device._global_device
    yield
    _device._global_device = saved


def test_default_is_cpu_and_set_device_switches():
    assert _device.get_device() == "cpu"
    _device.set_device("cuda")  # a GPU here, or the simulator the conftest turned on
    assert _device.get_device() == "cuda"
    _device.set_device("CPU")
    assert _device.get_device() == "cpu"


def test_device_block_overrides_and_restores():
    with _device.device("cuda") as name:
        assert name == "cuda" and _device.get_device() == "cuda"
        with _device.device("cpu"):
            assert _device.get_device() == "cpu"
        assert _device.get_device() == "cuda"
    assert _device.get_device() == "cpu"


def test_device_block_restores_after_an_error():
    with pytest.raises(KeyError):
        with _device.device("cuda"):
            raise KeyError("boom")
    assert _device.get_device() == "cpu"


def test_fastseq_forwards_the_device_functions():
    import fastseq

    assert fastseq.set_device is _device.set_device
    assert fastseq.get_device is _device.get_device
    assert fastseq.device is _device.device


@pytest.mark.parametrize("bad", ["tpu", "gpu0", ""])
def test_unknown_device_names_are_value_errors(bad):
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        _device.set_device(bad)
    assert _device.get_device() == "cpu"


def test_non_string_device_is_a_type_error():
    with pytest.raises(TypeError, match="string"):
        _device.set_device(0)


def test_cuda_without_numba_cuda_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba.cuda", None)  # import numba.cuda -> ImportError
    monkeypatch.delattr(numba, "cuda", raising=False)
    with pytest.raises(RuntimeError, match=r'pip install "fastseq\[cuda\]"'):
        _device.set_device("cuda")
    with pytest.raises(RuntimeError, match="cannot be imported"):
        with _device.device("cuda"):
            pass
    assert _device.get_device() == "cpu"


def test_cuda_without_gpu_or_simulator_says_how_to_install(monkeypatch):
    from numba import cuda
    from numba.core import config

    monkeypatch.setattr(config, "ENABLE_CUDASIM", 0)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    monkeypatch.setattr(cuda, "cuda_error", lambda: "CUDA driver library cannot be found",
                        raising=False)
    with pytest.raises(RuntimeError) as info:
        _device.set_device("cuda")
    message = str(info.value)
    assert "no usable NVIDIA GPU" in message and "driver library" in message
    assert 'pip install "fastseq[cuda]"' in message and "NUMBA_ENABLE_CUDASIM" in message
    assert _device.get_device() == "cpu"


def test_cuda_status_reports_what_runs():
    usable, reason = _device.cuda_status()
    assert usable
    from numba.core import config

    assert reason == ("CUDA simulator (NUMBA_ENABLE_CUDASIM=1)" if config.ENABLE_CUDASIM
                      else "GPU")
