"""Callbacks: each one's behavior against a stand-in model driven like fit, then with the
real Sequential."""
import csv
import re
import time

import numpy as np
import pytest

from fastseq import callbacks as cbks
from fastseq.callbacks import (
    CallbackList,
    CSVLogger,
    EarlyStopping,
    EpochTimer,
    History,
    LambdaCallback,
    ModelCheckpoint,
    ProgbarLogger,
    TerminateOnNaN,
)


class StandIn:
    """What callbacks need from a model: weights, stop_training, save, an optimizer."""

    def __init__(self):
        self.w = np.zeros(2)
        self.stop_training = False
        self.saved = []
        self.history = None
        self.metrics = []
        self.optimizer = type("Opt", (), {"learning_rate": 0.1})()

    def get_weights(self):
        return [self.w.copy()]

    def set_weights(self, weights):
        self.w = np.array(weights[0])

    def save(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))


def drive(model, callbacks, epoch_logs, steps=2, batch_logs=None, verbose=0):
    """Run the hooks as fit does: one epoch per entry of epoch_logs; the weights are set to
    the epoch number so restored weights tell which epoch they came from."""
    cl = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                      verbose=verbose, epochs=len(epoch_logs), steps=steps)
    cl.on_train_begin()
    ran = 0
    for epoch, logs in enumerate(epoch_logs):
        cl.on_epoch_begin(epoch)
        for step in range(steps):
            cl.on_train_batch_begin(step)
            model.w[:] = epoch
            train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
            cl.on_train_batch_end(step, (batch_logs or {}).get((epoch, step), train_logs))
            if model.stop_training:
                break
        cl.on_epoch_end(epoch, dict(logs))
        ran += 1
        if model.stop_training:
            break
    cl.on_train_end()
    return ran, model.history


def test_epoch_timer_times_each_epoch_from_its_begin_to_its_end():
    """A callback after the timer sleeps 20 ms at each epoch's begin: every epoch the timer
    records lasts at least that (the measured span covers it), one entry per epoch."""
    timer = EpochTimer()
    sleeper = LambdaCallback(on_epoch_begin=lambda epoch, logs: time.sleep(0.02))
    assert timer.mean == 0.0
    drive(StandIn(), [timer, sleeper], [{"loss": 1.0}] * 3)
    assert len(timer.seconds) == 3 and min(timer.seconds) >= 0.02
    assert timer.mean == pytest.approx(sum(timer.seconds) / 3)


def test_early_stopping_patience_and_restore():
    model = StandIn()
    losses = [1.0, 0.9, 0.95, 0.97, 0.5]
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    ran, history = drive(model, [es], [{"loss": 1, "val_loss": v} for v in losses])
    # epoch 1 is the best; epochs 2 and 3 do not improve: patience 2 stops after epoch 3
    assert ran == 4 and es.stopped_epoch == 3 and es.best_epoch == 1
    np.testing.assert_array_equal(model.w, [1, 1])  # weights of epoch 1 restored
    assert history.history["val_loss"] == losses[:4]
    model = StandIn()
    ran, _ = drive(model, [EarlyStopping(patience=0)], [{"val_loss": v} for v in losses])
    assert ran == 3  # patience 0: the first epoch without improvement stops
    np.testing.assert_array_equal(model.w, [2, 2])  # not restored by default


def test_early_stopping_mode_delta_baseline_start():
    accs = [0.5, 0.6, 0.605, 0.61, 0.9]
    ran, _ = drive(StandIn(), [EarlyStopping(monitor="val_acc", patience=1, min_delta=0.02)],
                   [{"val_acc": a} for a in accs])
    assert ran == 3  # auto mode maximizes 'acc'; +0.005 is below min_delta
    worse = [{"val_loss": v} for v in [1.0, 1.1, 1.2, 1.3, 1.4]]
    ran, _ = drive(StandIn(), [EarlyStopping(patience=2)], worse)
    assert ran == 3
    # Keras: the first epoch does not reset the wait when it misses the baseline
    ran, _ = drive(StandIn(), [EarlyStopping(baseline=0.1, patience=2)], worse)
    assert ran == 2
    ran, _ = drive(StandIn(), [EarlyStopping(patience=0, start_from_epoch=3)],
                   [{"val_loss": v} for v in [1.0, 2.0, 3.0, 4.0, 5.0]])
    assert ran == 5  # epochs before start_from_epoch are not monitored
    with pytest.warns(UserWarning, match="not available"):
        drive(StandIn(), [EarlyStopping(monitor="val_auc", mode="max")], [{"loss": 1.0}])
    with pytest.raises(ValueError, match="mode='max'"):
        drive(StandIn(), [EarlyStopping(monitor="val_f1")], [{"val_f1": 1.0}])


def test_model_checkpoint_save_best_only(tmp_path):
    model = StandIn()
    path = str(tmp_path / "ck_{epoch:02d}_{val_loss:.2f}.h5")
    ck = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    drive(model, [ck], [{"val_loss": v} for v in [0.5, 0.7, 0.4, 0.45]])
    assert model.saved == [("model", str(tmp_path / "ck_01_0.50.h5")),
                           ("model", str(tmp_path / "ck_03_0.40.h5"))]
    model = StandIn()
    ck = ModelCheckpoint(str(tmp_path / "w.npz"), save_weights_only=True)
    drive(model, [ck], [{"val_loss": v} for v in [0.5, 0.7]])
    assert model.saved == [("weights", str(tmp_path / "w.npz"))] * 2
    model = StandIn()
    ck = ModelCheckpoint(str(tmp_path / "a.h5"), monitor="val_acc", save_best_only=True,
                         mode="max")
    drive(model, [ck], [{"val_acc": v} for v in [0.5, 0.4, 0.6]])
    assert len(model.saved) == 2
    with pytest.raises(KeyError, match="Failed to format"):
        drive(StandIn(), [ModelCheckpoint(str(tmp_path / "{nope}.h5"))], [{"loss": 1.0}])


def test_terminate_on_nan(capsys):
    model = StandIn()
    ran, _ = drive(model, [TerminateOnNaN()], [{"loss": 1.0}] * 3,
                   batch_logs={(1, 0): {"loss": float("nan")}})
    assert ran == 2 and model.stop_training
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        drive(StandIn(), [TerminateOnNaN(raise_error=True)], [{"loss": 1.0}],
              batch_logs={(0, 1): {"loss": float("inf")}})


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    drive(StandIn(), [CSVLogger(path)], [{"loss": 0.5, "acc": 0.7, "val_loss": 0.6},
                                          {"loss": 0.4, "acc": 0.8, "val_loss": 0.55}])
    rows = list(csv.reader(open(path)))
    assert rows == [["epoch", "acc", "loss", "val_loss"], ["0", "0.7", "0.5", "0.6"],
                    ["1", "0.8", "0.4", "0.55"]]
    drive(StandIn(), [CSVLogger(path, append=True)], [{"loss": 0.3, "acc": 0.9,
                                                       "val_loss": 0.5}])
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[-1] == ["0", "0.9", "0.3", "0.5"]  # no second header
    drive(StandIn(), [CSVLogger(path, separator=";")], [{"loss": 0.3}])
    assert open(path).read().splitlines() == ["epoch;loss", "0;0.3"]


def test_lambda_history_and_callback_list():
    seen = []
    lam = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])),
                         on_train_end=lambda logs: seen.append("end"),
                         on_test_begin=lambda logs: seen.append("test"))
    model = StandIn()
    ran, history = drive(model, [lam], [{"loss": np.float32(0.5)}, {"loss": 0.25}])
    assert seen == [(0, 0.5), (1, 0.25), "end"]
    assert isinstance(seen[0][1], float)  # NumPy scalars arrive as Python floats
    assert isinstance(history, History) and model.history is history
    assert history.epoch == [0, 1] and history.history == {"loss": [0.5, 0.25]}
    with pytest.raises(ValueError, match="unexpected argument"):
        LambdaCallback(foo=print)

    class Recorder(cbks.Callback):
        def __init__(self):
            super().__init__()
            self.batch_logs = []

        def on_batch_end(self, batch, logs=None):  # the Keras 2 alias still fires
            self.batch_logs.append(list(logs))

    rec = Recorder()
    cl = CallbackList([rec], add_history=True, add_progbar=True, model=StandIn(), verbose=0,
                      epochs=3, steps=7)
    assert rec.params == {"verbose": 0, "epochs": 3, "steps": 7} and rec.model is not None
    assert sum(isinstance(c, (History, ProgbarLogger)) for c in cl) == 2
    cl.on_train_batch_end(0, {"loss": 1.0, "acc": 0.5, "val_x": 1, "b": 2})
    assert rec.batch_logs == [["acc", "b", "loss", "val_x"]]  # sorted, as Keras
    with pytest.raises(TypeError, match="Callback"):
        CallbackList([object()])


def test_progbar_logger_output(capsys):
    drive(StandIn(), [], [{"acc": 0.75, "loss": 0.5, "val_loss": 0.6, "val_acc": 0.7}] * 2,
          steps=3, verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2" and len(out) == 4
    assert re.fullmatch(r"3/3 \u2501{20} \d+s \d+(us|ms|s)/step - acc: 0\.7500 - loss: 0\.5000 "
                        r"- val_acc: 0\.7000 - val_loss: 0\.6000", out[1]), out[1]
    drive(StandIn(), [], [{"loss": 0.5}] * 2, steps=3, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and re.fullmatch(
        r"3/3 - \d+s - \d+(us|ms|s)/step - loss: 0\.5000", out[1]), out
    drive(StandIn(), [], [{"loss": 0.5}], steps=3, verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("3/3 ")  # one epoch: no "Epoch 1/1"


def test_lr_callbacks():
    model = StandIn()
    drive(model, [cbks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)], [{"loss": 1}] * 3)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**3)
    model = StandIn()
    rl = cbks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0)
    drive(model, [rl], [{"loss": v} for v in [1.0, 1.0, 1.0, 0.5]])
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**2)


def test_with_sequential(tmp_path):
    models = pytest.importorskip("fastseq.models")
    layers = pytest.importorskip("fastseq.layers")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["acc"])
    es = EarlyStopping(monitor="val_acc", patience=0, restore_best_weights=True)
    ck = ModelCheckpoint(str(tmp_path / "best.h5"), monitor="val_loss", save_best_only=True)
    log = CSVLogger(tmp_path / "log.csv")
    history = model.fit(x, y, epochs=50, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[es, ck, log])
    n = len(history.history["loss"])
    assert 1 <= n < 50 and model.history is history
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert (tmp_path / "best.h5").exists()
    assert len(open(tmp_path / "log.csv").read().splitlines()) == n + 1
