"""The checks the recurrent kernels' boundaries share (LSTM, GRU, SimpleRNN): the sequence
and the weights of G gates, the initial states, the mask, the per-gate dropout masks and the
flags, each a clear error naming what was expected; and the row blocks the batch runs in."""
import numpy as np

from ._checks import FLOAT_DTYPES

# The batch runs in blocks of rows, each block with its own small GEMMs, the blocks on up
# to get_num_threads() threads (fastseq.set_num_threads sets it; the thread count only
# decides which thread runs which block). The blocking depends on the batch size alone,
# never on the thread count, Numba's pool or the machine's cores, and the blocks' weight
# gradients are added in block order: results are bitwise the same for any thread count on
# any machine. Rows per block: enough for the per-step GEMM (4H x H by H x R) to run well
# (measured on one thread: at H = 256, R = 8 costs ~25% more per row than R = 16; at
# H = 100, R = 16 costs the same as R = 32), and blocks enough for a few cores: B < 32 in
# blocks of >= 8 rows (B = 16: 2 blocks), B < 128 of >= 16 (B = 32: 2, B = 64: 4), larger
# B of >= 32 (B = 256: 8).
_ROWS_PER_BLOCK = ((32, 8), (128, 16))  # (batch below, rows per block); beyond: 32


# Inference gathering its input projections from a table (an Embedding folded into the
# LSTM) keeps to blocks of <= 16 rows: at B = 256, H = 100 on 2 threads 16 blocks of 16
# ran 8% faster than 8 of 32 (measured; the gathered (4H, R) block, the step's gates and
# its GEMM's output then stay in L1).
_GATHERED_ROWS_PER_BLOCK = 16


def row_blocks(B, gathered=False):
    """The number of row blocks (of near-equal sizes) for a batch of B: a function of B (and
    of ``gathered``: inference from a table of input projections)."""
    rows = next((r for below, r in _ROWS_PER_BLOCK if B < below), 32)
    if gathered:
        rows = min(rows, _GATHERED_ROWS_PER_BLOCK)
    return max(1, B // rows)


def float_input(a, name, expected, dtype=None):
    """``a`` as a C-contiguous float array of the expected rank; ``expected`` names the
    shape in the error messages, e.g. "(batch, time, features)"."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a, dtype=dtype if dtype is not None else np.float32)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the dtype of x), got {a.dtype}")
    ndim = len([part for part in expected.strip("()").split(",") if part.strip()])
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {expected}, got shape {a.shape}")
    return np.ascontiguousarray(a)


def check_shape(a, name, shape, expected):
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {expected} = {shape}, got {a.shape}")


def check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def mask_input(mask, B, T):
    if not isinstance(mask, np.ndarray):
        mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "iu":
            raise TypeError(f"mask must be a bool (or integer 0/1) array, got dtype {mask.dtype}")
        mask = mask != 0
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (batch, time) = {(B, T)}, got shape {mask.shape}")
    check_shape(mask, "mask", (B, T), "(batch, time)")
    return np.ascontiguousarray(mask)


def _gates_text(gates):
    return "units" if gates == 1 else f"{gates} * units"


def sequence_and_weights(x, kernel, recurrent_kernel, gates):
    """x (B, T, D), kernel (D, G*H), recurrent_kernel (H, G*H), checked and C-contiguous in
    x's dtype -> (x, kernel, recurrent_kernel, (B, T, D, H))."""
    x = float_input(x, "x", "(batch, time, features)")
    dtype = x.dtype
    B, T, D = x.shape
    width = _gates_text(gates)
    recurrent_kernel = float_input(recurrent_kernel, "recurrent_kernel", f"(units, {width})",
                                   dtype)
    H = recurrent_kernel.shape[0]
    if H < 1 or recurrent_kernel.shape[1] != gates * H:
        raise ValueError(
            f"recurrent_kernel must have shape (units, {width}) with units >= 1, "
            f"got {recurrent_kernel.shape}")
    kernel = float_input(kernel, "kernel", f"(features, {width})", dtype)
    check_shape(kernel, "kernel", (D, gates * H), f"(features, {width})")
    return x, kernel, recurrent_kernel, (B, T, D, H)


def initial_state(state, name, B, H, dtype):
    """A (B, H) initial state: zeros for None, else checked."""
    if state is None:
        return np.zeros((B, H), dtype=dtype)
    state = float_input(state, name, "(batch, units)", dtype)
    check_shape(state, name, (B, H), "(batch, units)")
    return state


def dropout_masks(masks, name, gates, B, width, what, dtype):
    """Per-gate dropout masks (G, B, width) (a (B, width) mask for one gate), or None."""
    if masks is None:
        return None
    shape, expected = (B, width), f"(batch, {what})"
    if gates > 1:
        shape, expected = (gates,) + shape, f"({gates}, batch, {what})"
    masks = float_input(masks, name, expected, dtype)
    check_shape(masks, name, shape, expected)
    return masks
