"""Classification metrics in NumPy for ``python -m fastseq train / evaluate``, with
scikit-learn's definitions (``confusion_matrix``, ``precision_recall_fscore_support`` with
``zero_division=0``, ``classification_report``, ``multilabel_confusion_matrix``), without
depending on it."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels, y_pred {y_pred.size}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} holds class indices outside [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _scores(tp, fp, fn):
    """Per-class precision, recall and F1 from true positives, false positives and false
    negatives."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1


def _report(class_names, precision, recall, f1, support):
    per_class = {
        str(name): {"precision": float(p), "recall": float(r), "f1": float(f),
                    "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)}
    total = int(np.sum(support))
    weights = _ratio(support, total)
    averages = {
        "macro avg": {"precision": float(np.mean(precision)), "recall": float(np.mean(recall)),
                      "f1": float(np.mean(f1)), "support": total},
        "weighted avg": {"precision": float(np.sum(precision * weights)),
                         "recall": float(np.sum(recall * weights)),
                         "f1": float(np.sum(f1 * weights)), "support": total},
    }
    return per_class, averages


def classification_metrics(y_true, y_pred, class_names):
    """Accuracy, per-class precision / recall / F1 / support, their macro and weighted
    averages and the confusion matrix of single-label predictions (class indices)."""
    k = len(class_names)
    matrix = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(matrix)
    precision, recall, f1 = _scores(tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp)
    per_class, averages = _report(class_names, precision, recall, f1, matrix.sum(axis=1))
    return {
        "accuracy": float(_ratio(tp.sum(), matrix.sum())),
        "samples": int(matrix.sum()),
        "per_class": per_class,
        **averages,
        "confusion_matrix": {"labels": [str(c) for c in class_names],
                             "rows": "true class", "columns": "predicted class",
                             "matrix": matrix.tolist()},
    }


def multilabel_metrics(y_true, y_pred, class_names):
    """Subset accuracy (every label of a row right), label-wise (Hamming) accuracy,
    per-label precision / recall / F1, their micro, macro and weighted averages, and one
    2 x 2 confusion matrix [[tn, fp], [fn, tp]] per label (scikit-learn's
    ``multilabel_confusion_matrix``), for multi-hot (n, labels) arrays."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != len(class_names):
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must both be "
                         f"(samples, {len(class_names)})")
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    tn = (~y_true & ~y_pred).sum(axis=0)
    precision, recall, f1 = _scores(tp, fp, fn)
    per_class, averages = _report(class_names, precision, recall, f1, tp + fn)
    micro_p, micro_r, micro_f = _scores(tp.sum(), fp.sum(), fn.sum())
    averages = {"micro avg": {"precision": float(micro_p), "recall": float(micro_r),
                              "f1": float(micro_f), "support": int((tp + fn).sum())},
                **averages}
    return {
        "accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))) if len(y_true) else 0.0,
        "hamming_accuracy": float(np.mean(y_true == y_pred)) if y_true.size else 0.0,
        "samples": int(len(y_true)),
        "per_class": per_class,
        **averages,
        "confusion_matrix": {str(c): [[int(tn[i]), int(fp[i])], [int(fn[i]), int(tp[i])]]
                             for i, c in enumerate(class_names)},
    }


def format_report(metrics, digits=3):
    """The metrics as scikit-learn's ``classification_report`` text, then the accuracy."""
    rows = list(metrics["per_class"].items()) + [
        (name, metrics[name]) for name in ("micro avg", "macro avg", "weighted avg")
        if name in metrics]
    width = max(12, *(len(name) for name, _ in rows))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for i, (name, row) in enumerate(rows):
        if i == len(metrics["per_class"]):
            lines.append("")
        lines.append(f"{name:>{width}} {row['precision']:>9.{digits}f} "
                     f"{row['recall']:>9.{digits}f} {row['f1']:>9.{digits}f} "
                     f"{row['support']:>9}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}} {metrics['accuracy']:>9.{digits}f}"
                 f"{'':>20} {metrics['samples']:>9}")
    if "hamming_accuracy" in metrics:
        lines.append(f"{'label accuracy':>{width}} {metrics['hamming_accuracy']:>9.{digits}f}")
    return "\n".join(lines)
