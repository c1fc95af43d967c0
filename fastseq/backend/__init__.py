"""fastseq's backend: one interface of array operations (:class:`Ops`) with one
implementation per device, and the few ``keras.backend`` functions a Keras script calls
(clear_session, floatx).

- :class:`Ops` (``get_ops("reference")``): NumPy, the slow obvious version of every op;
- :class:`~fastseq.backend.cpu.CpuOps` (``get_ops("cpu")``): the fast CPU kernels;
- :class:`~fastseq.backend.cuda.CudaOps` (``get_ops("cuda")``): numba.cuda.

A model takes its backend once, when it is built (``fastseq.set_device`` /
``with fastseq.device(...)``); its layers, optimizer, loss and metrics use it from there.
"""
from .ops import Ops

__all__ = ["Ops", "get_ops", "clear_session", "floatx"]

BACKENDS = ("reference", "cpu", "cuda")
_instances = {}


def get_ops(name="cpu"):
    """The backend ``name`` ("reference", "cpu" or "cuda"); one shared instance each (they
    hold no state beyond their kernel tables)."""
    ops = _instances.get(name)
    if ops is not None:
        return ops
    if name == "reference":
        ops = Ops()
    elif name == "cpu":
        from .cpu import CpuOps

        ops = CpuOps()
    elif name == "cuda":
        from .cuda import CudaOps

        ops = CudaOps()
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    _instances[name] = ops
    return ops


def clear_session():
    """Forget the automatic layer names, so the next model starts at 'dense', 'lstm', ...

    fastseq keeps no graph or session; the names are its only global state (as after
    ``keras.backend.clear_session()``).
    """
    from fastseq.layers.base import reset_name_uids

    reset_name_uids()


def floatx():
    """The default float type of weights and activations: 'float32', as in Keras."""
    return "float32"
