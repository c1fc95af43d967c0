"""plot_history: one PNG with the loss and each metric per epoch, train and val_ curves."""
import numpy as np
import pytest

from fastseq import Sequential
from fastseq.layers import Dense
from fastseq.utils import plot_history

HISTORY = {"loss": [0.9, 0.5, 0.3], "accuracy": [0.5, 0.7, 0.8],
           "val_loss": [1.0, 0.7, 0.6], "val_accuracy": [0.4, 0.6, 0.7]}


def test_without_matplotlib_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install fastseq\[plot\]"):
        plot_history(HISTORY)


def axes_of(history, tmp_path, monkeypatch, **kwargs):
    """Plot, and return the saved figure's axes (titles and line data)."""
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed")
    from matplotlib.figure import Figure

    saved = {}
    real_savefig = Figure.savefig

    def savefig(self, *args, **kw):
        saved["figure"] = self
        return real_savefig(self, *args, **kw)

    monkeypatch.setattr(Figure, "savefig", savefig)
    path = plot_history(history, path=tmp_path / "history.png", **kwargs)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return saved["figure"].axes


def lines(axes):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in axes.get_lines()}


def test_one_panel_per_quantity_with_train_and_validation_curves(tmp_path, monkeypatch):
    axes = axes_of(HISTORY, tmp_path, monkeypatch)
    assert [a.get_title() for a in axes] == ["loss", "accuracy"]
    assert lines(axes[0]) == {"train": ([1, 2, 3], HISTORY["loss"]),
                              "validation": ([1, 2, 3], HISTORY["val_loss"])}
    assert lines(axes[1])["validation"][1] == HISTORY["val_accuracy"]
    axes = axes_of(HISTORY, tmp_path, monkeypatch, metrics=["accuracy"])
    assert [a.get_title() for a in axes] == ["accuracy"]


def test_from_fit(tmp_path, monkeypatch):
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    axes = axes_of(history, tmp_path, monkeypatch)
    assert [a.get_title() for a in axes] == ["loss", "mae"]
    assert lines(axes[0])["train"] == ([1, 2], history.history["loss"])
    assert lines(axes[1])["validation"] == ([1, 2], history.history["val_mae"])


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="History"):
        plot_history([0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        plot_history({"loss": []})
    with pytest.raises(ValueError, match=r"\['acc'\] not in the history"):
        plot_history(HISTORY, path=tmp_path / "h.png", metrics=["acc"])
