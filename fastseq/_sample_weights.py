"""``sample_weight`` and ``class_weight`` checked and turned into per-sample weights, with
Keras 3's semantics (read in keras 3.15's keras/src/losses/loss.py,
trainers/compile_utils.py, trainers/trainer.py, backend/torch/trainer.py,
trainers/data_adapters/, layers/layer.py and metrics/reduction_metrics.py).

How Keras 3 uses the weights, which the training step follows:

(a) The mean loss. A loss gives per-element values (shape (n,), or (n, T) on a sequence
    output), ``values * sample_weight`` is summed and divided by the NUMBER OF ELEMENTS of
    the values (reduction "sum_over_batch_size"), not by the sum of the weights: a sample of
    weight 0 still counts in the divisor. A mask (from the output, e.g. Embedding(mask_zero)
    -> LSTM(return_sequences)) is merged into the weight as ``mask * total / valid`` (total =
    mask entries, valid = True entries), so the loss is ``sum(loss * w * mask) / valid``
    (0 when nothing is valid). Ranks are matched by squeezing or expanding a last axis of
    size 1 ((n, 1) weights against (n,) values and the reverse); Keras does not expand a (n,)
    weight against (n, T) values, which users weight per step with (n, T) or per sample with
    (n, 1). ``class_weight`` becomes a (n,) sample_weight before all this
    (:func:`class_weight_to_sample_weight`); both at once is an error. The epoch "loss" is
    the mean of the batch losses weighted by the batch sizes.
(b) Metrics. The metrics given as ``compile(metrics=...)`` get NO sample weight; only
    ``weighted_metrics`` do (class weights included, as sample weights). A weighted metric
    is a weighted mean, ``sum(value * w) / sum(w)`` (divided by the weights this time),
    per-step values averaged over the steps of each sample first when w is (n,).
(c) The activity regularizer. On every call of a layer (training or not), for each output:
    ``activity_regularizer(output) / output.shape[0]`` (divided by the batch size) is added
    to the loss. Weight regularizers add ``regularizer(weight)`` for every trainable weight,
    not divided by anything, on the weights before the update; ``loss_weights`` do not scale
    them. Constraints are applied after each optimizer update.
(d) The logged loss. Yes: the loss that train_on_batch returns, fit's History "loss"
    (and "val_loss") and evaluate report is the total that is minimized, compiled loss plus
    every regularization loss (evaluate computes it too). A multi-output model's per-output
    "<name>_loss" entries are the compiled losses alone.
"""
import numbers

import numpy as np

__all__ = ["class_weight_to_sample_weight", "check_sample_weight"]


def _positions(bad, limit=5):
    """The first places where the boolean array ``bad`` is True: 'i, j' or '(i, t), ...'."""
    if bad.ndim == 1:
        places = [str(int(i)) for i in np.flatnonzero(bad)]
    else:
        places = [str(tuple(int(i) for i in idx)) for idx in np.argwhere(bad)]
    return ", ".join(places[:limit]) + (", ..." if len(places) > limit else "")


def _check_class_weight(class_weight, n_classes):
    """The class_weight dict with int keys, after checking keys and values."""
    if not isinstance(class_weight, dict):
        raise TypeError("class_weight must be a dict {class index: weight}, got "
                        f"{type(class_weight).__name__}")
    bad_keys = [key for key in class_weight
                if isinstance(key, bool) or not isinstance(key, numbers.Integral) or key < 0
                or (n_classes is not None and key >= n_classes)]
    if bad_keys:
        known = f"0 .. {n_classes - 1}" if n_classes is not None else "integers >= 0"
        raise ValueError(f"class_weight keys {bad_keys!r} are not classes of the data: "
                         f"expected class indices {known}")
    weights = {}
    for key, value in class_weight.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got "
                             f"{value!r}")
        weights[int(key)] = float(value)
    return weights


def class_weight_to_sample_weight(y, class_weight, n_outputs_classes=None):
    """Keras 3's ``class_weight_to_sample_weights``: a (n,) float64 weight per sample,
    ``class_weight.get(label, 1.0)``. Labels: (n,) class indices, (n, 1) (a sigmoid output's
    0/1 targets) or (n, C) one-hot / probabilities (argmax), rounded to the nearest int.

    The keys are checked first (Keras does not): each must be an int >= 0 and below the
    number of classes where it is known, from one-hot labels' C or ``n_outputs_classes``
    (the output's last-axis size; 1, a sigmoid unit, means the 2 classes 0 and 1).
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"class_weight needs numeric labels y, got an array of dtype {y.dtype}")
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError("class_weight needs labels of shape (n,), (n, 1) or one-hot (n, C), "
                         f"got y of shape {y.shape}")
    one_hot = y.ndim == 2 and y.shape[-1] != 1
    if one_hot and n_outputs_classes is not None \
            and y.shape[-1] != max(int(n_outputs_classes), 2):
        # e.g. (n, T) class indices of a sequence output: Keras 3 would take their argmax
        raise ValueError(
            f"class_weight needs labels of shape (n,), (n, 1) or one-hot (n, "
            f"{n_outputs_classes}) for this output, got y of shape {y.shape}; to weight "
            "the steps of a sequence output, pass sample_weight of shape (n, T)")
    if one_hot:
        n_classes = y.shape[-1]
    elif n_outputs_classes is not None:
        n_classes = max(int(n_outputs_classes), 2)
    else:
        n_classes = None
    weights = _check_class_weight(class_weight, n_classes)
    if one_hot:
        labels = np.argmax(y, axis=-1)
    else:
        labels = y[:, 0] if y.ndim == 2 else y
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels)
        if bad.any():
            raise ValueError(f"class_weight: labels y are not finite at samples "
                             f"{_positions(bad)}")
        labels = np.round(labels)  # Keras: np.round (half to even), then int
    labels = labels.astype(np.int64)
    sample_weight = np.ones(labels.shape[0], dtype=np.float64)
    for label, weight in weights.items():
        sample_weight[labels == label] = weight
    return sample_weight


def check_sample_weight(sample_weight, n, what="sample_weight", timesteps=None):
    """``sample_weight`` as a float64 array of shape (n,) (one weight per sample; (n, 1) is
    squeezed) or (n, T) (one per time step of a sequence output; ``timesteps``, when given,
    is T). None stays None. Raises on a wrong type, length or rank, NaN / infinite or
    negative values, naming ``what`` and what was expected."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers (one float weight per sample), got an "
                        f"array of dtype {weights.dtype}")
    if weights.ndim == 0 or weights.ndim > 2:
        raise ValueError(f"{what} must have shape ({n},) (one weight per sample) or "
                         f"({n}, T) (one per time step), got shape {weights.shape}")
    if weights.shape[0] != n:
        raise ValueError(f"{what} has {weights.shape[0]} entries but the data have {n} "
                         f"samples: expected shape ({n},) or ({n}, T)")
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim == 2 and timesteps is not None and weights.shape[1] != timesteps:
        raise ValueError(f"{what} of shape {weights.shape} has {weights.shape[1]} steps per "
                         f"sample but the output has {timesteps}: expected shape ({n},) or "
                         f"({n}, {timesteps})")
    weights = weights.astype(np.float64)
    bad = ~np.isfinite(weights)
    if bad.any():
        raise ValueError(f"{what} must be finite: NaN or infinite at {_positions(bad)}")
    bad = weights < 0
    if bad.any():
        raise ValueError(f"{what} must be >= 0: negative at {_positions(bad)}")
    return weights
