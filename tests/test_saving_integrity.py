"""Saving hardening: stale temporaries of killed saves are cleaned up by the next save (and
nothing else is), every weight fastseq writes carries a SHA-256 that loading verifies, and
fastseq.saving builds models through a function it is given instead of importing
fastseq.models."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest

from fastseq import saving
from fastseq.variables import Variable

h5py = pytest.importorskip("h5py")


# ---------------------------------------------------------------- a stand-in model
class Layer:
    def __init__(self, name, shapes, seed):
        rng = np.random.default_rng(seed)
        self.name = name
        self.weights = [Variable(rng.standard_normal(s).astype(np.float32), n)
                        for n, s in shapes]


class Model:
    name = "sequential"

    def __init__(self, seed=0):
        self.layers = [Layer("embedding", [("embeddings", (20, 4))], seed),
                       Layer("dense", [("kernel", (4, 3)), ("bias", (3,))], seed + 1)]

    def get_weights(self):
        return [v.value.copy() for layer in self.layers for v in layer.weights]

    def get_config(self):
        return {"name": self.name, "layers": []}


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


# ---------------------------------------------------------------- stale temporaries
_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from fastseq import saving
    from fastseq.variables import Variable

    class L:
        def __init__(self):
            self.name = "dense"
            self.weights = [Variable(np.ones((64, 64), np.float32), "kernel")]

    class M:
        name = "m"
        layers = [L()]

    def block(*args, **kwargs):
        print("writing", flush=True)
        time.sleep(600)

    path, mode = sys.argv[1], sys.argv[2]
    if mode == "fsync":  # the whole temporary is written, the rename never comes
        os.fsync = block
    else:  # mid-write: after the first dataset of the HDF5 file
        import h5py
        create = h5py.Group.create_dataset

        def create_then_block(self, *args, **kwargs):
            ds = create(self, *args, **kwargs)
            self.file.flush()
            block()

        h5py.Group.create_dataset = create_then_block
    saving.save_weights(M(), path)
""")


def _kill_a_save_mid_write(path, mode):
    """Start a save of ``path`` in a child, SIGKILL it once it is writing; the child's pid."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), mode],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)  # reaped: the pid no longer exists
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return child.pid


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid liveness are POSIX")
@pytest.mark.parametrize("name, mode", [("w.npz", "fsync"), ("w.h5", "h5")])
def test_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path, name, mode):
    path = tmp_path / name
    saving.save_weights(Model(seed=0), path)
    old = path.read_bytes()
    dead = _kill_a_save_mid_write(path, mode)

    # what the killed save left: its temporary, named after the target, its host and pid
    left = [p.name for p in tmp_path.iterdir() if p.name != name]
    assert len(left) == 1, left
    match = re.fullmatch(r"\.%s\.fastseq-([A-Za-z0-9]+)-(\d+)-[0-9a-f]{8}\.tmp" % re.escape(name),
                         left[0])
    assert match and int(match[2]) == dead, left
    host = match[1]
    stale = tmp_path / left[0]
    assert stale.stat().st_size > 0
    assert path.read_bytes() == old  # the target is intact

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        keep = [
            f".{name}.fastseq-{host}-{live.pid}-0123abcd.tmp",  # a save in progress elsewhere
            f".other.npz.fastseq-{host}-{dead}-0123abcd.tmp",  # another target's stale temp
            f".x{name}.fastseq-{host}-{dead}-0123abcd.tmp",  # another target, a longer name
            f".{name}.fastseq-{host}x-{dead}-0123abcd.tmp",  # another host's
            f".{name}.fastseq-{host}-{dead}-0123abcd.tmp.keep",  # user files of other shapes
            f"{name}.fastseq-{host}-{dead}-0123abcd.tmp",
            f".{name}.fastseq-{host}-{dead}-0123abcdef.tmp",
            f".{name}.{dead}.tmp", f".{name}.tmp", f".{name}.abcd1234.tmp",
        ]
        for other in keep:
            (tmp_path / other).write_bytes(b"user data")
        (tmp_path / "sub").mkdir()
        # a directory that matches the pattern is never removed
        (tmp_path / f".{name}.fastseq-{host}-{dead}-fedcba98.tmp").mkdir()

        new = Model(seed=7)
        saving.save_weights(new, path)
        assert not stale.exists()
        remaining = sorted(p.name for p in tmp_path.iterdir())
        assert remaining == sorted(keep + [name, "sub",
                                           f".{name}.fastseq-{host}-{dead}-fedcba98.tmp"])
        assert all((tmp_path / other).read_bytes() == b"user data" for other in keep)
        loaded = Model(seed=1)
        saving.load_weights(loaded, path)
        assert same(new, loaded)
    finally:
        live.kill()
        live.wait()


@pytest.mark.skipif(os.name != "posix", reason="pid liveness is POSIX")
def test_a_save_in_progress_in_another_thread_keeps_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    writing, release = threading.Event(), threading.Event()
    fsync = os.fsync

    def slow_fsync(fd):
        if threading.current_thread().name == "slow-save":
            writing.set()
            assert release.wait(30)
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    first, second = Model(seed=1), Model(seed=2)
    errors = []

    def save_first():
        try:
            saving.save_weights(first, path)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=save_first, name="slow-save")
    thread.start()
    try:
        assert writing.wait(30)
        temporary = [p for p in tmp_path.iterdir() if p.name.startswith(".w.npz.fastseq-")]
        assert len(temporary) == 1
        saving.save_weights(second, path)  # same pid, but that save is in progress
        assert temporary[0].exists()
    finally:
        release.set()
        thread.join(30)
    assert not errors
    loaded = Model(seed=3)
    saving.load_weights(loaded, path)
    assert same(first, loaded)  # the first save finished last and renamed its (whole) file
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_a_temporary_of_this_pid_that_no_save_holds_is_stale(tmp_path):
    # A process that died with this pid long ago (pid reuse): nothing here writes it.
    stale = tmp_path / f".w.npz.fastseq-{saving._host_tag()}-{os.getpid()}-0123abcd.tmp"
    stale.write_bytes(b"x" * 100)
    saving.save_weights(Model(), tmp_path / "w.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


# ---------------------------------------------------------------- checksums
def _sequential():
    models = pytest.importorskip("fastseq.models")
    layers = pytest.importorskip("fastseq.layers")
    rng = np.random.default_rng(0)
    model = models.Sequential([layers.Embedding(30, 4, input_length=6), layers.LSTM(5),
                               layers.Dense(1, activation="sigmoid")])
    x = rng.integers(1, 30, (16, 6))
    y = (x[:, 0] > 15).astype(np.float32)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model


def _flip_inside(path, array):
    """Flip one byte in the middle of ``array``'s data inside the file (stored as is)."""
    data = bytearray(path.read_bytes())
    raw = np.ascontiguousarray(array).tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0, "the weight's bytes are not found once"
    data[at + len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(data))


# the formats fastseq writes: weights files, then model files
WEIGHT_FILES = ["w.npz", "w.h5", "w.weights.h5"]
MODEL_FILES = ["m.keras", "m.h5"]


@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_a_flipped_byte_in_a_weights_file_is_a_clear_error(tmp_path, name):
    path = tmp_path / name
    src = Model(seed=0)
    saving.save_weights(src, path)
    _flip_inside(path, src.layers[1].weights[0].value)  # the dense kernel
    dst = Model(seed=5)
    before = dst.get_weights()
    with pytest.raises(ValueError) as info:
        saving.load_weights(dst, path)
    message = str(info.value)
    assert repr(str(path)) in message and "corrupted" in message and "checksum" in message
    # the weight: dense/kernel (npz key), /dense/dense/kernel:0 (Keras 2), or Keras 3's
    # /layers/<class>/vars/0 with the layer's name
    assert re.search(r"'dense/kernel'|'/dense/dense/kernel:0'|/vars/0' \(layer 'dense'\)",
                     message), message
    assert all(np.array_equal(a, b) for a, b in zip(before, dst.get_weights()))


@pytest.mark.parametrize("name", MODEL_FILES)
@pytest.mark.parametrize("part", ["weight", "optimizer"])
def test_a_flipped_byte_in_a_model_file_is_a_clear_error(tmp_path, name, part):
    path = tmp_path / name
    model = _sequential()
    model.save(path)
    lstm = model.layers[1]
    if part == "weight":
        _flip_inside(path, lstm.weights[1].value)  # the recurrent kernel
        pattern = rf"weight .*{lstm.name}/(lstm_cell/)?recurrent_kernel"
    else:
        slot = max(model.optimizer.get_state(), key=lambda a: np.asarray(a).size)
        _flip_inside(path, slot)
        pattern = r"optimizer state"
    for load in (saving.load_model, lambda p: saving.load_weights(_sequential(), p)):
        if part == "optimizer" and load is not saving.load_model:
            continue  # load_weights reads only the weights
        with pytest.raises(ValueError, match=r"corrupted.*checksum") as info:
            load(path)
        assert repr(str(path)) in str(info.value)
        assert re.search(pattern, str(info.value)), str(info.value)


def _strip_npz(data):
    """The npz bytes with the sha256 entries dropped from its metadata (older fastseq)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["__fastseq__"]))
    for entry in meta.get("layers", []):
        for w in entry["weights"]:
            del w["sha256"]
    meta.pop("sha256", None)
    arrays["__fastseq__"] = np.array(json.dumps(meta))
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _strip_checksums(path):
    """Rewrite a fastseq file as an older fastseq (or Keras) would have written it."""
    if path.read_bytes()[:4] == b"\x89HDF":
        with h5py.File(path, "r+") as f:
            found = []
            f.visititems(lambda n, obj: found.append(obj) if "fastseq_sha256" in obj.attrs
                         else None)
            assert found
            for obj in found:
                del obj.attrs["fastseq_sha256"]
    elif path.suffix == ".npz":
        path.write_bytes(_strip_npz(path.read_bytes()))
    else:
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        with zipfile.ZipFile(path, "w") as zf:
            for n, data in members.items():
                zf.writestr(n, _strip_npz(data) if n.endswith(".npz") else data)


@pytest.mark.parametrize("name", WEIGHT_FILES + MODEL_FILES)
def test_files_without_checksums_still_load(tmp_path, name):
    path = tmp_path / name
    if name in MODEL_FILES:
        src = _sequential()
        src.save(path)
    else:
        src = Model(seed=0)
        saving.save_weights(src, path)
    _strip_checksums(path)
    if name in MODEL_FILES:
        loaded = saving.load_model(path)
        assert same(src, loaded)
        for a, b in zip(src.optimizer.get_state(), loaded.optimizer.get_state()):
            np.testing.assert_array_equal(a, b)
    else:
        dst = Model(seed=4)
        saving.load_weights(dst, path)
        assert same(src, dst)


@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_the_checksum_is_the_sha256_of_the_weight(tmp_path, name):
    import hashlib

    path = tmp_path / name
    src = Model(seed=0)
    saving.save_weights(src, path)
    kernel = src.layers[1].weights[0].value
    expected = hashlib.sha256(kernel.astype("<f4").tobytes()).hexdigest()
    if name.endswith(".h5"):
        with h5py.File(path, "r") as f:
            sums = []
            f.visititems(lambda n, obj: sums.append(obj.attrs.get("fastseq_sha256")))
        assert expected in [s.decode() if isinstance(s, bytes) else s for s in sums]
    else:
        with np.load(path) as npz:
            meta = json.loads(str(npz["__fastseq__"]))
        assert meta["layers"][1]["weights"][0]["sha256"] == expected


# ---------------------------------------------------------------- no import cycle
def test_load_model_takes_the_model_builder_and_never_imports_models(tmp_path):
    path = tmp_path / "m.keras"
    saving.save_model(Model(seed=0), path)
    code = textwrap.dedent(f"""
        import sys
        from fastseq import saving
        assert "fastseq.models" not in sys.modules
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_saving_integrity import Model, same
        seen = []

        def build(config, custom_objects=None):
            seen.append(config["class_name"])
            return Model(seed=3)

        model = saving.load_model({str(path)!r}, model_from_config=build)
        assert seen == ["Model"], seen
        assert same(model, Model(seed=0))
        assert "fastseq.models" not in sys.modules, "saving imported fastseq.models"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_load_model_names_the_file_when_the_builder_refuses(tmp_path):
    class Unknown(Model):
        pass

    path = tmp_path / "m.keras"
    saving.save_model(Unknown(seed=0), path)
    pytest.importorskip("fastseq.models")
    with pytest.raises(ValueError, match=re.escape(repr(str(path)))):
        saving.load_model(path)  # class_name 'Unknown': the default builder refuses it
