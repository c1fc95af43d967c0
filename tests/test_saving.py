"""Saving: weights round-trip through npz / Keras 2 h5 / Keras 3 .weights.h5, whole models
through the zip archive and h5, mismatched and corrupted files, atomic writes."""
import os
import sys
import zipfile

import numpy as np
import pytest

from fastseq import saving
from fastseq.variables import Variable

h5py = pytest.importorskip("h5py")


# ---------------------------------------------------------------- a stand-in model
class Layer:
    def __init__(self, name, shapes, cls_name=None, dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.name = name
        self.weights = [Variable(rng.standard_normal(s).astype(dtype), n) for n, s in shapes]
        if cls_name:
            self.__class__ = type(cls_name, (Layer,), {})


class Model:
    def __init__(self, seed=0, names=("embedding", "lstm", "dropout", "dense"), dense_units=1,
                 dtype=np.float32):
        e, l, d, o = names
        self.name = "sequential"
        self.layers = [
            Layer(e, [("embeddings", (20, 4))], "Embedding", dtype, seed),
            Layer(l, [("kernel", (4, 12)), ("recurrent_kernel", (3, 12)), ("bias", (12,))],
                  "LSTM", dtype, seed + 1),
            Layer(d, [], "Dropout"),
            Layer(o, [("kernel", (3, dense_units)), ("bias", (dense_units,))], "Dense", dtype,
                  seed + 2),
        ]

    def get_weights(self):
        return [v.value.copy() for layer in self.layers for v in layer.weights]


def same(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.dtype == y.dtype and np.array_equal(x, y)
                                      for x, y in zip(wa, wb))


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("name", ["w.npz", "w.h5", "w.hdf5", "w.weights.h5", "w.bin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_round_trip(tmp_path, name, dtype):
    src = Model(seed=0, dtype=dtype)
    path = tmp_path / name
    saving.save_weights(src, path)
    # other automatic layer names: matched by order, as Keras's h5 loading
    dst = Model(seed=10, names=("embedding_1", "lstm_1", "dropout_1", "dense_1"), dtype=dtype)
    assert not same(src, dst)
    saving.load_weights(dst, path)
    assert same(src, dst)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_keras2_h5_layout(tmp_path):
    path = tmp_path / "w.h5"
    model = Model()
    saving.save_weights(model, path)
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == [
            "embedding", "lstm", "dropout", "dense"]
        backend = f.attrs["backend"]
        assert (backend.decode() if hasattr(backend, "decode") else backend) == "tensorflow"
        assert [n.decode() for n in f["embedding"].attrs["weight_names"]] == [
            "embedding/embeddings:0"]
        assert [n.decode() for n in f["lstm"].attrs["weight_names"]] == [
            "lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0",
            "lstm/lstm_cell/bias:0"]
        assert list(f["dropout"].attrs["weight_names"]) == []
        np.testing.assert_array_equal(f["lstm"]["lstm/lstm_cell/kernel:0"][()],
                                      model.layers[1].weights[0].value)
        np.testing.assert_array_equal(f["dense"]["dense/bias:0"][()],
                                      model.layers[3].weights[1].value)


def test_keras3_weights_h5_layout(tmp_path):
    path = tmp_path / "w.weights.h5"
    model = Model()
    saving.save_weights(model, path)
    with h5py.File(path, "r") as f:
        assert sorted(f["layers"]) == ["dense", "dropout", "embedding", "lstm"]
        np.testing.assert_array_equal(f["layers/embedding/vars/0"][()],
                                      model.layers[0].weights[0].value)
        np.testing.assert_array_equal(f["layers/lstm/cell/vars/1"][()],
                                      model.layers[1].weights[1].value)
        assert len(f["layers/lstm/vars"]) == 0


def test_plain_npz_of_get_weights_loads(tmp_path):
    src = Model(seed=3)
    np.savez(tmp_path / "flat.npz", *src.get_weights())
    dst = Model(seed=4)
    saving.load_weights(dst, tmp_path / "flat.npz")
    assert same(src, dst)


@pytest.mark.parametrize("name", ["w.npz", "w.h5", "w.weights.h5"])
def test_mismatched_file_leaves_model_unchanged(tmp_path, name):
    path = tmp_path / name
    saving.save_weights(Model(seed=0, dense_units=2), path)
    dst = Model(seed=5)
    before = dst.get_weights()
    with pytest.raises(ValueError, match=r"dense.*\(3, 1\).*\(3, 2\)"):
        saving.load_weights(dst, path)
    assert all(np.array_equal(a, b) for a, b in zip(before, dst.get_weights()))
    small = Model(seed=6)
    small.layers = small.layers[:2]
    saving.save_weights(small, tmp_path / ("s" + name))
    with pytest.raises(ValueError, match="Layer count mismatch"):
        saving.load_weights(dst, tmp_path / ("s" + name))
    assert all(np.array_equal(a, b) for a, b in zip(before, dst.get_weights()))


@pytest.mark.parametrize("name", ["w.npz", "w.h5", "m.keras"])
def test_corrupted_and_truncated_files(tmp_path, name):
    path = tmp_path / name
    src = Model(seed=0)
    if name.endswith(".keras"):
        pytest.importorskip("fastseq.models")
        _, seq = _sequential()
        saving.save_model(seq, path)
        dst_model = _sequential()[1]
        loader = saving.load_model
    else:
        saving.save_weights(src, path)
        dst_model = Model(seed=1)
        loader = None
    data = path.read_bytes()
    before = dst_model.get_weights()
    for broken in (data[: len(data) // 2], data[:10] + b"\0" * (len(data) - 10),
                   b"garbage" * 10):
        path.write_bytes(broken)
        with pytest.raises(ValueError, match="corrupted|truncated|not a"):
            if loader is not None:
                loader(path)
            else:
                saving.load_weights(dst_model, path)
        with pytest.raises(ValueError, match="corrupted|truncated|not a"):
            saving.load_weights(dst_model, path)
        assert all(np.array_equal(a, b) for a, b in zip(before, dst_model.get_weights()))
    with pytest.raises(FileNotFoundError):
        saving.load_weights(dst_model, tmp_path / "missing.npz")


# ---------------------------------------------------------------- atomic writes
def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    model = Model(seed=0)
    for name in ("w.npz", "w.h5", "w.weights.h5"):
        path = tmp_path / name
        saving.save_weights(model, path)
        old = path.read_bytes()
        other = Model(seed=9)

        def boom(*args, **kwargs):
            raise OSError("disk full (simulated)")

        if name.endswith("h5"):
            monkeypatch.setattr(h5py.Group, "create_dataset", boom)
        else:
            monkeypatch.setattr(np, "savez", boom)
        with pytest.raises(OSError, match="simulated"):
            saving.save_weights(other, path)
        monkeypatch.undo()
        assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5", "w.npz", "w.weights.h5"]


def test_crash_between_write_and_rename(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    saving.save_weights(Model(seed=0), path)
    old = path.read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        saving.save_weights(Model(seed=1), path)
    monkeypatch.undo()
    assert path.read_bytes() == old and len(list(tmp_path.iterdir())) == 1


def test_h5_without_h5py_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install fastseq\[h5\]"):
        saving.save_weights(Model(), tmp_path / "w.h5")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- whole models
def _sequential(seed=0):
    models = pytest.importorskip("fastseq.models")
    layers = pytest.importorskip("fastseq.layers")
    rng = np.random.default_rng(seed)
    model = models.Sequential([layers.Embedding(30, 4, input_length=6), layers.LSTM(5),
                               layers.Dense(1, activation="sigmoid")])
    x = rng.integers(1, 30, (32, 6))
    y = (x[:, 0] > 15).astype(np.float32)
    return (x, y), model


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_save_load_model_resumes_training(tmp_path, name):
    models = pytest.importorskip("fastseq.models")
    from fastseq.optimizers import Adam

    (x, y), model = _sequential()
    model.compile(optimizer=Adam(learning_rate=0.01), loss="binary_crossentropy",
                  metrics=["acc"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / name
    model.save(path)
    loaded = models.load_model(path)
    assert same(model, loaded)
    assert [type(l).__name__ for l in loaded.layers] == ["Embedding", "LSTM", "Dense"]
    assert isinstance(loaded.optimizer, Adam) and loaded.optimizer.learning_rate == 0.01
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    for a, b in zip(model.optimizer.get_state(), loaded.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    assert loaded.metrics_names == ["loss", "acc"]
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    assert same(model, loaded)  # the optimizer state came back: identical next step
    # the weights inside a model file load into a fresh model too
    _, fresh = _sequential()
    saving.load_weights(fresh, path)
    other = models.load_model(path)
    assert same(other, fresh)


def test_save_model_without_optimizer_and_uncompiled(tmp_path):
    models = pytest.importorskip("fastseq.models")
    (x, y), model = _sequential()
    model.save(tmp_path / "plain.keras")
    loaded = models.load_model(tmp_path / "plain.keras")
    assert same(model, loaded) and loaded.optimizer is None
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "noopt.h5", include_optimizer=False)
    loaded = models.load_model(tmp_path / "noopt.h5")
    assert loaded.optimizer.iterations == 0 and same(model, loaded)
    with zipfile.ZipFile(tmp_path / "plain.keras") as zf:
        # a .keras file is Keras 3's archive (Keras loads it): its weights are HDF5
        assert {"metadata.json", "config.json", "model.weights.h5"} <= set(zf.namelist())


def test_load_model_on_a_weights_file_is_a_clear_error(tmp_path):
    saving.save_weights(Model(), tmp_path / "w.h5")
    saving.save_weights(Model(), tmp_path / "w.npz")
    with pytest.raises(ValueError, match="load_weights"):
        saving.load_model(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="load_weights"):
        saving.load_model(tmp_path / "w.npz")


def test_unbuilt_model_gets_a_hint(tmp_path):
    models = pytest.importorskip("fastseq.models")
    layers = pytest.importorskip("fastseq.layers")
    saving.save_weights(Model(), tmp_path / "w.npz")
    unbuilt = models.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="build it first"):
        saving.load_weights(unbuilt, tmp_path / "w.npz")
