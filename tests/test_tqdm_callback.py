"""TqdmCallback: an epoch bar and per-epoch batch bars with the logs as postfix."""
import io

import numpy as np
import pytest
from tqdm import tqdm

from fastseq import Sequential
from fastseq.callbacks import TqdmCallback
from fastseq.layers import Dense


def fit_with(callback, epochs=2, batch_size=4):
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 1))
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=(x, y),
                     verbose=0, callbacks=[callback])


class Recorder(tqdm):
    """tqdm writing to a buffer, remembering every bar made."""
    bars = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, file=io.StringIO(), mininterval=0, **kwargs)
        Recorder.bars.append(self)


@pytest.mark.parametrize("verbose,batch_bars", [(0, 0), (1, 2), (2, 2)])
def test_epoch_and_batch_bars(verbose, batch_bars):
    Recorder.bars = []
    history = fit_with(TqdmCallback(verbose=verbose, tqdm_class=Recorder))
    epoch_bar, *batches = Recorder.bars
    assert len(batches) == batch_bars
    assert (epoch_bar.n, epoch_bar.total, epoch_bar.unit) == (2, 2, "epoch")
    last = history.history
    assert epoch_bar.postfix == f"loss={last['loss'][-1]:.3g}, mae={last['mae'][-1]:.3g}, " \
        f"val_loss={last['val_loss'][-1]:.3g}, val_mae={last['val_mae'][-1]:.3g}"
    for i, bar in enumerate(batches):
        assert (bar.n, bar.total, bar.desc, bar.leave) == (3, 3, f"Epoch {i + 1}/2",
                                                          verbose == 2)
        assert bar.disable or bar.postfix.startswith("loss=")
    assert all(bar.disable or bar.last_print_n == bar.n for bar in Recorder.bars)


def test_text_output(capsys):
    buffer = io.StringIO()
    fit_with(TqdmCallback(verbose=2, file=buffer, ascii=True, mininterval=0), epochs=1)
    text = buffer.getvalue()
    assert "Epoch 1/1" in text and "3/3" in text and "loss=" in text and "val_loss=" in text
    assert "Training" in text and "1/1" in text
    assert capsys.readouterr().out == ""  # fit's own progress bar stayed quiet


def test_bad_verbose():
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        TqdmCallback(verbose=3)
