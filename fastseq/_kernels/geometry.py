"""The one home of what every floor derives alike: Keras's output lengths and paddings of
Conv1D and MaxPooling1D, the padding-mode check, and the positive-int check of a size
argument. The NumPy references, the fast kernels' boundary, the CUDA kernels and the layers
all import these (so a rule cannot drift between them); nothing here imports fastseq."""
import numpy as np

__all__ = ["CONV_PADDINGS", "POOL_PADDINGS", "padding_mode", "positive_int",
           "conv1d_output_geometry", "conv1d_output_length", "max_pool1d_output_geometry",
           "max_pool1d_output_length"]

CONV_PADDINGS = ("valid", "same", "causal")
POOL_PADDINGS = ("valid", "same")


def positive_int(value, name):
    """``value`` as an int >= 1 (TypeError for a non-int or a bool, ValueError below 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def padding_mode(padding, allowed):
    """``padding`` lower-cased, checked against ``allowed`` (TypeError for a non-string,
    ValueError naming the allowed modes)."""
    if not isinstance(padding, str):
        raise TypeError(f"padding must be a string, one of {allowed}, got "
                        f"{type(padding).__name__}")
    mode = padding.lower()
    if mode not in allowed:
        raise ValueError(f"padding must be one of {allowed}, got {padding!r}")
    return mode


def conv1d_output_geometry(length, kernel_size, strides, padding, dilation_rate):
    """(Lout, pad_left, pad_right) of a Keras Conv1D over ``length`` steps; Lout < 1 means
    the input is too short. 'same' pads as TensorFlow (the extra step on the right),
    'causal' pads only on the left."""
    span = dilation_rate * (kernel_size - 1) + 1
    if padding == "valid":
        return (length - span) // strides + 1, 0, 0
    out_length = (length - 1) // strides + 1
    if padding == "causal":
        return out_length, span - 1, 0
    total = max((out_length - 1) * strides + span - length, 0)
    return out_length, total // 2, total - total // 2


def conv1d_output_length(length, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """Keras's output length of a Conv1D (None stays None; may be < 1: too short)."""
    if length is None:
        return None
    return conv1d_output_geometry(length, kernel_size, strides, padding, dilation_rate)[0]


def max_pool1d_output_geometry(length, pool_size, strides, padding):
    """(Lout, pad_left) of a Keras MaxPooling1D; padded steps never win the max."""
    if padding == "valid":
        return (length - pool_size) // strides + 1, 0
    out_length = (length - 1) // strides + 1
    total = max((out_length - 1) * strides + pool_size - length, 0)
    return out_length, total // 2


def max_pool1d_output_length(length, pool_size, strides=None, padding="valid"):
    """Keras's output length of MaxPooling1D (None stays None; may be < 1: too short)."""
    if length is None:
        return None
    strides = pool_size if strides is None else strides
    return max_pool1d_output_geometry(length, pool_size, strides, padding)[0]
