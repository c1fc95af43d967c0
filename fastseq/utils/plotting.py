"""plot_history: the curves of ``model.fit``'s History in one PNG (loss and each metric per
epoch, training and ``val_`` curves side by side). Needs matplotlib, the ``plot`` extra."""
import os

__all__ = ["plot_history"]


def _figure_class():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install fastseq[plot]") from None
    return Figure, FigureCanvasAgg, MaxNLocator


def _history_dict(history):
    """A History callback (``model.fit``'s return value) or its ``history`` dict -> (dict of
    lists, epoch numbers from 1)."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError("plot_history: history must be what model.fit returns (a History) or "
                        f"its .history dict, got {type(history).__name__}")
    if not logs or not any(len(v) for v in logs.values()):
        raise ValueError("plot_history: the history is empty (fit ran no epoch)")
    epochs = getattr(history, "epoch", None)
    length = max(len(v) for v in logs.values())
    if not epochs or len(epochs) != length:
        epochs = range(length)
    return logs, [e + 1 for e in epochs]


def plot_history(history, path="history.png", metrics=None):
    """Write one PNG with a panel per quantity: the loss, then each metric, per epoch, with
    the ``val_`` curve beside the training one when fit had validation data.

    history: a History (``model.fit``'s return value) or its ``history`` dict.
    path: the PNG to write. metrics: the names to plot (e.g. ``["loss", "accuracy"]``),
    default every training quantity in the history. Returns the path."""
    logs, epochs = _history_dict(history)
    if metrics is None:
        names = []
        for key in logs:
            name = key[4:] if key.startswith("val_") else key
            if name not in names:
                names.append(name)
        names.sort(key=lambda k: k != "loss")  # loss first, as the Keras tutorials plot it
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in names if m not in logs and "val_" + m not in logs]
        if missing:
            raise ValueError(f"plot_history: {missing} not in the history; it holds "
                             f"{sorted(logs)}")
        if not names:
            raise ValueError("plot_history: metrics is empty; name at least one quantity")
    Figure, FigureCanvasAgg, MaxNLocator = _figure_class()
    figure = Figure(figsize=(5 * len(names), 4), dpi=100)
    FigureCanvasAgg(figure)
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "train"), ("val_" + name, "validation")):
            values = logs.get(key)
            if values:
                axes.plot(epochs[:len(values)], values, marker="o", label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        axes.set_ylabel(name)
        axes.legend()
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path, format="png")
    return path
