"""End-to-end training benchmarks: seconds per ``train_on_batch`` of the seeds' models.

The baseline is the same model (same weights, same data) on the NumPy reference backend
(``model._use_ops(fastseq.backend.get_ops("reference"))``): every kernel pair and optimizer
update in plain NumPy; the Dense layers and losses are NumPy on both sides, so the ratio is
what the fast backend buys end to end.
The PyTorch peers build the same architecture (torch.nn.LSTM / Conv1d, the same optimizer
and Keras's defaults) and time one optimizer step.

Counted FLOPs are the GEMM work of forward + backward (3x the forward GEMMs); gate and
activation arithmetic is left out, so GFLOP/s is a lower bound of the work done.
"""
import numpy as np

from .core import Case

# (name, kwargs) of each case; quick runs use shorter sequences
IMDB = dict(vocab=5000, dim=32, units=100, batch=64, steps=500)
IMDB_QUICK = dict(IMDB, steps=100)
SEED004_LSTM = dict(vocab=1024, dim=256, units=128, batch=16, steps=100)
SEED004_CONV = dict(batch=16, steps=64, channels=100)
# Keras's examples/imdb_bidirectional_lstm.py: Embedding(20000, 128) -> Bidirectional(LSTM(64))
IMDB_BIDIRECTIONAL = dict(vocab=20000, dim=128, units=64, batch=32, steps=100)
IMDB_BIDIRECTIONAL_QUICK = dict(IMDB_BIDIRECTIONAL, steps=50)


def _seeded_models(build, compile_args):
    """(fast model, baseline model) with identical weights; the baseline runs on the
    NumPy reference backend."""
    from fastseq.backend import get_ops
    from fastseq.utils import set_random_seed

    set_random_seed(0)
    fast = build()
    fast.compile(**compile_args)
    base = build()
    base.compile(**compile_args)
    base.set_weights(fast.get_weights())
    base._use_ops(get_ops("reference"))
    return fast, base


def _lstm_inputs(vocab, dim, units, batch, steps, optimizer, dropout):
    def make():
        from fastseq.layers import LSTM, Dense, Dropout, Embedding
        from fastseq.models import Sequential

        def build():
            layers = [Embedding(vocab, dim, input_length=steps), LSTM(units)]
            if dropout:
                layers.append(Dropout(dropout))
            layers.append(Dense(1, activation="sigmoid"))
            return Sequential(layers)

        fast, base = _seeded_models(build, dict(optimizer=optimizer,
                                                loss="binary_crossentropy",
                                                metrics=["accuracy"]))
        rng = np.random.default_rng(0)
        return {
            "fast_model": fast, "base_model": base,
            "x": rng.integers(1, vocab, (batch, steps)).astype(np.int32),
            "y": rng.integers(0, 2, batch).astype(np.float32),
            "weights": fast.get_weights(), "optimizer": optimizer, "dropout": dropout,
        }
    return make


def _recurrent_dropout_inputs(vocab, dim, units, batch, steps):
    """The IMDB LSTM step with LSTM(units, dropout=0.2, recurrent_dropout=0.2) as "fast" and
    the same model without recurrent_dropout as the baseline: the cost of the feature."""
    def make():
        from fastseq.layers import LSTM, Dense, Embedding
        from fastseq.models import Sequential
        from fastseq.utils import set_random_seed

        models = []
        for rate in (0.2, 0.0):
            set_random_seed(0)
            model = Sequential([Embedding(vocab, dim, input_length=steps),
                                LSTM(units, dropout=0.2, recurrent_dropout=rate),
                                Dense(1, activation="sigmoid")])
            model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
            models.append(model)
        rng = np.random.default_rng(0)
        return {"fast_model": models[0], "base_model": models[1],
                "x": rng.integers(1, vocab, (batch, steps)).astype(np.int32),
                "y": rng.integers(0, 2, batch).astype(np.float32)}
    return make


def _bidirectional_inputs(vocab, dim, units, batch, steps, dropout):
    def make():
        from fastseq.layers import LSTM, Bidirectional, Dense, Dropout, Embedding
        from fastseq.models import Sequential

        def build():
            layers = [Embedding(vocab, dim, input_length=steps), Bidirectional(LSTM(units))]
            if dropout:
                layers.append(Dropout(dropout))
            layers.append(Dense(1, activation="sigmoid"))
            return Sequential(layers)

        fast, base = _seeded_models(build, dict(optimizer="adam", loss="binary_crossentropy",
                                                metrics=["accuracy"]))
        rng = np.random.default_rng(0)
        return {
            "fast_model": fast, "base_model": base,
            "x": rng.integers(1, vocab, (batch, steps)).astype(np.int32),
            "y": rng.integers(0, 2, batch).astype(np.float32),
            "weights": fast.get_weights(), "optimizer": "adam", "dropout": dropout,
        }
    return make


def _conv_inputs(batch, steps, channels):
    def make():
        from fastseq._cli_train import add_seed004_conv1d
        from fastseq.models import Sequential

        def build():  # seed 004's Conv1D classifier on (steps, channels) inputs
            return add_seed004_conv1d(Sequential(), input_shape=(steps, channels))

        fast, base = _seeded_models(build, dict(optimizer="rmsprop",
                                                loss="binary_crossentropy",
                                                metrics=["accuracy"]))
        rng = np.random.default_rng(0)
        return {
            "fast_model": fast, "base_model": base,
            "x": rng.standard_normal((batch, steps, channels)).astype(np.float32),
            "y": rng.integers(0, 2, batch).astype(np.float32),
            "weights": fast.get_weights(),
        }
    return make


def _fast_step(inputs):
    return inputs["fast_model"].train_on_batch(inputs["x"], inputs["y"])


def _base_step(inputs):
    return inputs["base_model"].train_on_batch(inputs["x"], inputs["y"])


def _torch_optimizer(torch, name, params):
    # Keras's defaults: Adam(1e-3, eps 1e-7), RMSprop(1e-3, rho 0.9, eps 1e-7)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)


def _torch_lstm(inputs):
    import torch

    emb_w, kernel, recurrent, bias, dense_k, dense_b = inputs["weights"]
    vocab, dim = emb_w.shape
    units = recurrent.shape[0]
    dropout = inputs["dropout"]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, dim)
            self.lstm = torch.nn.LSTM(dim, units, batch_first=True)
            self.drop = torch.nn.Dropout(dropout)
            self.out = torch.nn.Linear(units, 1)
            with torch.no_grad():  # Keras layouts -> torch (gate order i, f, c/g, o in both)
                self.emb.weight.copy_(torch.from_numpy(emb_w))
                self.lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
                self.lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T))
                self.lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
                self.lstm.bias_hh_l0.zero_()
                self.out.weight.copy_(torch.from_numpy(dense_k.T))
                self.out.bias.copy_(torch.from_numpy(dense_b))

        def forward(self, x):
            _, (h, _) = self.lstm(self.emb(x))
            return self.out(self.drop(h[0]))[:, 0]

    model = Model().train()
    opt = _torch_optimizer(torch, inputs["optimizer"], model.parameters())
    x = torch.from_numpy(inputs["x"].astype(np.int64))
    y = torch.from_numpy(inputs["y"])
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def _torch_bidirectional(inputs):
    import torch

    (emb_w, kernel, recurrent, bias, kernel_b, recurrent_b, bias_b, dense_k,
     dense_b) = inputs["weights"]
    vocab, dim = emb_w.shape
    units = recurrent.shape[0]
    dropout = inputs["dropout"]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, dim)
            self.lstm = torch.nn.LSTM(dim, units, batch_first=True, bidirectional=True)
            self.drop = torch.nn.Dropout(dropout)
            self.out = torch.nn.Linear(2 * units, 1)
            with torch.no_grad():  # Keras layouts -> torch, forward then reverse direction
                self.emb.weight.copy_(torch.from_numpy(emb_w))
                for suffix, (k, r, b) in (("", (kernel, recurrent, bias)),
                                          ("_reverse", (kernel_b, recurrent_b, bias_b))):
                    getattr(self.lstm, "weight_ih_l0" + suffix).copy_(torch.from_numpy(k.T))
                    getattr(self.lstm, "weight_hh_l0" + suffix).copy_(torch.from_numpy(r.T))
                    getattr(self.lstm, "bias_ih_l0" + suffix).copy_(torch.from_numpy(b))
                    getattr(self.lstm, "bias_hh_l0" + suffix).zero_()
                self.out.weight.copy_(torch.from_numpy(dense_k.T))
                self.out.bias.copy_(torch.from_numpy(dense_b))

        def forward(self, x):
            _, (h, _) = self.lstm(self.emb(x))  # h: (2, B, H), forward then backward
            return self.out(self.drop(torch.cat([h[0], h[1]], dim=1)))[:, 0]

    model = Model().train()
    opt = _torch_optimizer(torch, inputs["optimizer"], model.parameters())
    x = torch.from_numpy(inputs["x"].astype(np.int64))
    y = torch.from_numpy(inputs["y"])
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def _torch_conv(inputs):
    import torch

    weights = inputs["weights"]
    channels = inputs["x"].shape[2]
    nn = torch.nn

    model = nn.Sequential(
        nn.Conv1d(channels, 64, 3), nn.ReLU(), nn.Conv1d(64, 64, 3), nn.ReLU(),
        nn.MaxPool1d(3), nn.Conv1d(64, 128, 3), nn.ReLU(), nn.Conv1d(128, 128, 3), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(128, 1),
    )
    convs = [m for m in model if isinstance(m, nn.Conv1d)]
    with torch.no_grad():  # Keras kernel (k, in, out) -> torch (out, in, k)
        for conv, (k, b) in zip(convs, zip(weights[0:8:2], weights[1:8:2])):
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.transpose(2, 1, 0))))
            conv.bias.copy_(torch.from_numpy(b))
        model[-1].weight.copy_(torch.from_numpy(weights[8].T))
        model[-1].bias.copy_(torch.from_numpy(weights[9]))
    model.train()
    opt = _torch_optimizer(torch, "rmsprop", model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(inputs["x"].transpose(0, 2, 1)))  # channels first
    y = torch.from_numpy(inputs["y"])
    loss_fn = nn.BCEWithLogitsLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x)[:, 0], y)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def _lstm_flops(dim, units, batch, steps, **_):
    return 3 * 2 * batch * steps * 4 * units * (dim + units)


def _conv_flops(batch, steps, channels):
    flops, length, cin = 0, steps, channels
    for cout, pool in ((64, 1), (64, 3), (128, 1), (128, 1)):
        length -= 2
        flops += 2 * batch * length * 3 * cin * cout
        cin = cout
        length //= pool
    return 3 * flops


def cases(quick=False):
    imdb = IMDB_QUICK if quick else IMDB
    bidirectional = IMDB_BIDIRECTIONAL_QUICK if quick else IMDB_BIDIRECTIONAL
    out = [
        Case(
            family="train", name="IMDB LSTM step (seed 002)",
            shape="V={vocab} D={dim} H={units} B={batch} T={steps}".format(**imdb),
            make_inputs=_lstm_inputs(**imdb, optimizer="adam", dropout=0.0),
            baseline=_base_step, fast=_fast_step, torch=_torch_lstm,
            flops=_lstm_flops(**imdb),
            note="Embedding -> LSTM -> Dense(sigmoid), BCE, Adam; baseline: reference kernels",
        ),
        Case(
            family="train", name="seed 004 LSTM step",
            shape="V={vocab} D={dim} H={units} B={batch} T={steps}".format(**SEED004_LSTM),
            make_inputs=_lstm_inputs(**SEED004_LSTM, optimizer="rmsprop", dropout=0.5),
            baseline=_base_step, fast=_fast_step, torch=_torch_lstm,
            flops=_lstm_flops(**SEED004_LSTM),
            note="Embedding -> LSTM -> Dropout -> Dense(sigmoid), BCE, RMSprop",
        ),
        Case(
            family="train", name="seed 004 Conv1D step",
            shape="B={batch} T={steps} C={channels}".format(**SEED004_CONV),
            make_inputs=_conv_inputs(**SEED004_CONV),
            baseline=_base_step, fast=_fast_step, torch=_torch_conv,
            flops=_conv_flops(**SEED004_CONV),
            note="4 Conv1D + MaxPooling1D + GlobalAveragePooling1D + Dense, BCE, RMSprop",
        ),
        Case(
            family="train", name="IMDB Bidirectional(LSTM) step (keras example)",
            shape="V={vocab} D={dim} H={units} B={batch} T={steps}".format(**bidirectional),
            make_inputs=_bidirectional_inputs(**bidirectional, dropout=0.5),
            baseline=_base_step, fast=_fast_step, torch=_torch_bidirectional,
            flops=2 * _lstm_flops(**bidirectional),
            note="Embedding -> Bidirectional(LSTM) -> Dropout(0.5) -> Dense(sigmoid), Adam",
        ),
        Case(
            family="train", name="IMDB Bidirectional(LSTM(100)) step",
            shape="V={vocab} D={dim} H={units} B={batch} T={steps}".format(**imdb),
            make_inputs=_bidirectional_inputs(**imdb, dropout=0.0),
            baseline=_base_step, fast=_fast_step, torch=_torch_bidirectional,
            flops=2 * _lstm_flops(**imdb),
            note="the seed's IMDB model with its LSTM made bidirectional",
        ),
        Case(
            family="train", name="IMDB LSTM step, recurrent_dropout=0.2",
            shape="V={vocab} D={dim} H={units} B={batch} T={steps}".format(**imdb),
            make_inputs=_recurrent_dropout_inputs(**imdb),
            baseline=_base_step, fast=_fast_step, flops=_lstm_flops(**imdb),
            note="LSTM(dropout=0.2, recurrent_dropout=0.2); BASELINE: the same step without "
                 "recurrent_dropout (speed-up = 1 / its cost)",
        ),
    ]
    return out
