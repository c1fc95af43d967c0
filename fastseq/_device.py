"""Device selection: where new models keep their weights, optimizer state and activations.

    import fastseq
    fastseq.set_device("cuda")        # every model built from now on
    with fastseq.device("cuda"):      # only inside the block (and this thread / task)
        ...
    fastseq.get_device()              # "cpu" or "cuda"

"cuda" runs the numba.cuda kernels of :mod:`fastseq._kernels.cuda`. It needs numba's CUDA
target (``pip install "fastseq[cuda]"``) and an NVIDIA GPU with its driver, or the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported: pure Python, slow, for
tests). Asking for "cuda" without either is a RuntimeError saying what is missing.
"""
import contextlib
import contextvars

__all__ = ["set_device", "get_device", "device", "cuda_status"]

DEVICES = ("cpu", "cuda")
_INSTALL_HINT = 'install the CUDA extra with: pip install "fastseq[cuda]"'

_global_device = "cpu"
# a `with device(...)` block overrides the global choice in its own thread / asyncio task
_block_device = contextvars.ContextVar("fastseq_device", default=None)


def cuda_status():
    """(usable, reason): whether numba.cuda can run kernels here, and if not, why."""
    try:
        from numba import cuda
        from numba.core import config
    except ImportError as exc:
        return False, f"numba.cuda cannot be imported ({exc}); {_INSTALL_HINT}"
    if config.ENABLE_CUDASIM:
        return True, "CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        available = cuda.is_available()
    except Exception as exc:  # a broken driver or toolkit install
        return False, (f"numba.cuda failed to start ({type(exc).__name__}: {exc}); "
                       f"{_INSTALL_HINT}")
    if not available:
        detail = ""
        try:
            error = cuda.cuda_error()
            if error is not None:
                detail = f" ({error})"
        except Exception:
            pass
        return False, (f"no usable NVIDIA GPU was found{detail}. The 'cuda' device needs an "
                       f"NVIDIA GPU with its driver and numba's CUDA target: {_INSTALL_HINT}. "
                       "Without a GPU, NUMBA_ENABLE_CUDASIM=1 (set before importing numba) "
                       "runs the CUDA kernels in a slow pure-Python simulator")
    return True, "GPU"


def _normalize(name):
    if not isinstance(name, str):
        raise TypeError(f"device must be a string, 'cpu' or 'cuda', got {type(name).__name__}")
    key = name.strip().lower()
    if key not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {name!r}")
    if key == "cuda":
        usable, reason = cuda_status()
        if not usable:
            raise RuntimeError(f"fastseq cannot use device 'cuda': {reason}")
    return key


def set_device(name):
    """Make ``name`` ("cpu" or "cuda") the device of every model built from now on."""
    global _global_device
    _global_device = _normalize(name)


def get_device():
    """The device in force here: a ``with device(...)`` block's, else ``set_device``'s."""
    block = _block_device.get()
    return _global_device if block is None else block


@contextlib.contextmanager
def device(name):
    """``with fastseq.device("cuda"):`` - models built inside the block use ``name``."""
    token = _block_device.set(_normalize(name))
    try:
        yield _block_device.get()
    finally:
        _block_device.reset(token)
