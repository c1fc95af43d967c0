"""Weight files exchanged with Keras 3 itself, both ways, for the recurrent family: GRU (both
reset_after conventions), SimpleRNN, LSTM and Bidirectional (concat, sum), with masks. The
two models' predictions on the same tokens must agree, which checks the layers' semantics
(Keras's GRU cell, Bidirectional's zeroed masked steps) as well as the files' layout.

Runs where Keras 3 and PyTorch (its backend here) are installed, which the test extra does
not install (they are heavy); run it with `pip install keras torch==2.13.0`."""
import os

import numpy as np
import pytest

pytest.importorskip("torch")
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import fastseq.layers as F  # noqa: E402
from fastseq.models import Sequential  # noqa: E402

K = keras.layers
STEPS = 7
MODELS = {
    "bidirectional_gru_simple_rnn": (
        lambda: [K.Embedding(50, 6, mask_zero=True),
                 K.Bidirectional(K.GRU(5, return_sequences=True)),
                 K.Bidirectional(K.SimpleRNN(4)), K.Dense(1)],
        lambda: [F.Embedding(50, 6, mask_zero=True, input_length=STEPS),
                 F.Bidirectional(F.GRU(5, return_sequences=True)),
                 F.Bidirectional(F.SimpleRNN(4)), F.Dense(1)]),
    "gru_reset_before": (
        lambda: [K.Embedding(50, 6), K.GRU(5, reset_after=False), K.Dense(1)],
        lambda: [F.Embedding(50, 6, input_length=STEPS), F.GRU(5, reset_after=False),
                 F.Dense(1)]),
    "bidirectional_lstm_sum": (
        lambda: [K.Embedding(50, 6, mask_zero=True),
                 K.Bidirectional(K.LSTM(3), merge_mode="sum"), K.Dense(1)],
        lambda: [F.Embedding(50, 6, mask_zero=True, input_length=STEPS),
                 F.Bidirectional(F.LSTM(3), merge_mode="sum"), F.Dense(1)]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weights_h5_both_ways(tmp_path, name):
    keras_layers, fastseq_layers = MODELS[name]
    x = np.random.default_rng(0).integers(1, 50, (4, STEPS))
    x[0, :3] = 0  # padding, masked where the Embedding has mask_zero
    theirs = keras.Sequential([keras.Input((STEPS,), dtype="int32")] + keras_layers())
    want = theirs.predict(x, verbose=0)
    theirs.save_weights(str(tmp_path / "keras.weights.h5"))
    ours = Sequential(fastseq_layers())
    ours.build((None, STEPS))
    ours.load_weights(str(tmp_path / "keras.weights.h5"))
    got = ours.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ours.save_weights(str(tmp_path / "fastseq.weights.h5"))
    back = keras.Sequential([keras.Input((STEPS,), dtype="int32")] + keras_layers())
    back.load_weights(str(tmp_path / "fastseq.weights.h5"))
    np.testing.assert_allclose(back.predict(x, verbose=0), got, rtol=1e-5, atol=1e-6)
