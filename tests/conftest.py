"""Where the CUDA tests run (tests/cuda, and the cuda backend of tests/backends).

On a machine with an NVIDIA GPU (a CUDA driver that reports a device) they run on it.
Anywhere else they run in numba's CUDA simulator: NUMBA_ENABLE_CUDASIM=1 is set here,
before numba.cuda is first imported (the simulator runs every CUDA thread as Python, so the
tests use tiny shapes). NUMBA_ENABLE_CUDASIM set by the caller is respected either way.
Each test module skips (visibly) only when numba.cuda cannot be imported at all.
"""
import ctypes
import ctypes.util
import os
import sys


def _gpu_present():
    """True when the CUDA driver initialises and counts at least one device (no numba:
    importing numba.cuda would fix its mode before we could choose the simulator)."""
    for name in ("libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda"), "nvcuda.dll"):
        if not name:
            continue
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 \
                and count.value > 0
        except AttributeError:
            return False
    return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ and "numba.cuda" not in sys.modules:
    if not _gpu_present():
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        if "numba" in sys.modules:  # numba read its config at import: read it again
            from numba.core import config

            config.reload_config()
