"""Saving and loading weights and whole models.

Weights (``save_weights`` / ``load_weights``), chosen by the file name:

- ``*.weights.h5``: Keras 3's weights layout (``layers/<layer>/vars/<i>``, LSTM weights
  under ``layers/lstm/cell/vars``), which ``keras.Model.load_weights`` reads.
- other ``*.h5`` / ``*.hdf5``: Keras 2's layout (root attribute ``layer_names``; per layer
  a group with ``weight_names`` such as ``embedding/embeddings:0``,
  ``lstm/lstm_cell/kernel:0``), which Keras 2 and Keras 3 (legacy loader) read.
- anything else (``*.npz`` recommended): a NumPy ``.npz`` with one array per weight, keyed
  ``<layer name>/<weight name>``, and a JSON member ``__fastseq__`` recording the layers,
  the weights' order, shapes and dtypes.

HDF5 needs h5py (``pip install fastseq[h5]``). Loading recognizes the format by content,
not by name, so every layout above loads whatever its extension, including the weights
inside a saved model file. Weights are matched to the model's layers in order, among the
layers that have weights (Keras's rule for ``.h5``), so a new model with other automatic
layer names ('dense_1') loads them. Every layer, count and shape is checked before any
weight changes: a mismatch raises ValueError naming the layer and the shapes and leaves the
model as it was. A truncated or corrupted file raises ValueError saying so.

Models (``save_model`` / ``load_model``):

- ``*.h5`` / ``*.hdf5``: Keras 2's full-model layout: attributes ``model_config`` (JSON
  ``{'class_name': 'Sequential', 'config': model.get_config()}``) and ``training_config``
  (loss, metrics, ``optimizer_config``), groups ``model_weights`` (the weights layout above)
  and ``optimizer_weights`` (the optimizer state, plus ``fastseq_slot_owners``).
- ``*.keras``: Keras 3's archive, which ``keras.models.load_model`` reads: ``metadata.json``,
  ``config.json`` (Keras 3's config of the model, with ``build_config`` and
  ``compile_config``: the translation is fastseq/_keras3_config.py) and ``model.weights.h5``
  (the ``*.weights.h5`` layout above plus the optimizer's variables under
  ``optimizer/vars``, in Keras's order). ``.keras`` files written by Keras 3 load the same
  way. A model Keras cannot rebuild (a layer class Keras lacks) is written as the archive
  below instead, with a warning.
- anything else: fastseq's own zip archive with ``metadata.json``, ``config.json``
  (``class_name``, ``config``, ``compile_config``), ``model.weights.npz`` (the npz weights
  format) and ``optimizer.npz`` (state arrays with their names and the weights they belong
  to). Keras cannot read it.

Integrity: fastseq stores a SHA-256 checksum of every weight (and optimizer slot) it writes,
computed over the array's bytes in C order, little-endian: in HDF5 files (also the weights
inside a ``.keras`` file; Keras ignores the attribute) as a string attribute
``fastseq_sha256`` on each dataset, in npz files (``.npz``, and the npz members of
a ``.keras`` archive) as ``"sha256"`` in the ``__fastseq__`` metadata, next to the zip's own
CRC-32 of each member. Loading recomputes it and raises ValueError naming the file and the
weight when the data no longer match (HDF5 itself keeps no checksum of the data, so a
damaged byte would otherwise load silently). Files without checksums (written by Keras, or
by an older fastseq) load as before, unchecked.

Every save writes a temporary file in the target's directory and renames it over the target
(``os.replace``), so a crash or an error mid-write never leaves a half-written file and an
existing file stays intact until the new one is complete. The temporary file is named
``.<target name>.fastseq-<host>-<pid>-<8 hex digits>.tmp``. A save killed outright (SIGKILL,
power loss) cannot remove it, so each save first removes the stale temporaries of the *same*
target: files matching exactly that pattern for that target name, written on this host by a
process that no longer exists (POSIX only). Temporaries of other targets, of other hosts, of
live processes (a save in progress elsewhere), and any other file are left alone. A stale
temporary whose pid has been reused by a new live process stays until that process ends.
"""
import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import secrets
import socket
import stat
import struct
import threading
import time
import warnings
import zipfile

import numpy as np

from fastseq import _keras3_config as _k3

__all__ = ["save_weights", "load_weights", "save_model", "load_model", "atomic_write_path"]

FORMAT_VERSION = 1
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_NPZ_META = "__fastseq__"
# Keras 2 writes these; "tensorflow" keeps Keras 2 from converting Theano-era kernels.
_KERAS_VERSION = "2.15.0"
_KERAS_BACKEND = "tensorflow"
_HDF5_OBJECT_HEADER_LIMIT = 64512
# Layer classes whose Keras weights live in a cell sub-layer (Keras 2 names, Keras 3 path).
_CELL_NAMES = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}
# The HDF5 attribute (on each dataset) holding the hex SHA-256 of the dataset's data.
_CHECKSUM_ATTR = "fastseq_sha256"
# The weights member of a Keras 3 .keras archive.
_KERAS3_WEIGHTS = "model.weights.h5"


# ------------------------------------------------------------------ small helpers
def _version():
    try:
        from fastseq import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Saving and loading HDF5 (.h5) files needs h5py: "
                          "pip install fastseq[h5]  (or: pip install h5py)") from None
    return h5py


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, np.dtype):
        return obj.name
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def _dumps(obj):
    return json.dumps(obj, default=_json_default)


def _is_h5_name(path):
    return str(path).lower().endswith((".h5", ".hdf5", ".keras.h5"))


def _file_kind(path):
    """'h5', 'zip' or raise: from the file's first bytes."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, expected a weights or model file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_MAGIC):
        return "h5"
    if head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC):
        return "zip"
    raise ValueError(f"{path!r} is not a fastseq/Keras weights or model file (neither HDF5 nor "
                     "a zip/npz archive); it may be corrupted or truncated")


def _corrupted(path, err):
    return ValueError(f"{os.fspath(path)!r} is corrupted or truncated and cannot be loaded "
                      f"({type(err).__name__}: {err})")


# ------------------------------------------------------------------ checksums
def _sha256(value):
    """Hex SHA-256 of an array's bytes in C order, little-endian (whatever the machine)."""
    a = np.asarray(value)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False):
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(np.ascontiguousarray(a)).hexdigest()


def _checksum_error(path, what, expected, actual):
    return ValueError(
        f"{os.fspath(path)!r} is corrupted: the data of {what} do not match the SHA-256 "
        f"checksum saved with them (saved {expected[:16]}..., now {actual[:16]}...); the file "
        "was damaged after it was written. Nothing was loaded.")


def _verify(path, what, value, expected):
    """Raise ValueError naming ``path`` and ``what`` when ``value`` does not hash to
    ``expected``; a missing checksum (None: Keras's files, older fastseq files) passes."""
    if expected is None:
        return value
    if isinstance(expected, bytes):
        expected = expected.decode("ascii", "replace")
    actual = _sha256(value)
    if actual != str(expected):
        raise _checksum_error(path, what, str(expected), actual)
    return value


def _create_checked_dataset(group, name, value):
    """An HDF5 dataset of ``value`` with its SHA-256 as the ``fastseq_sha256`` attribute."""
    value = np.asarray(value)
    ds = group.create_dataset(name, data=value)
    ds.attrs[_CHECKSUM_ATTR] = _sha256(value)
    return ds


def _read_dataset(ds, what=None, path=None):
    """A dataset's array, checked against its ``fastseq_sha256`` attribute when it has one;
    ``path`` names the file in errors (an HDF5 file read from memory has no name)."""
    value = np.asarray(ds[()])
    expected = ds.attrs[_CHECKSUM_ATTR] if _CHECKSUM_ATTR in ds.attrs else None
    return _verify(path or ds.file.filename, what or f"weight {ds.name!r}", value, expected)


def _zip_member(zf, filepath, name):
    """``zf.read(name)``; when the member fails its CRC-32 and is stored uncompressed, its raw
    bytes and the error instead, so that the caller can say which weight inside is damaged."""
    try:
        return zf.read(name), None
    except zipfile.BadZipFile as err:
        info = zf.getinfo(name)
        if "CRC" not in str(err) or info.compress_type != zipfile.ZIP_STORED:
            raise
        with open(filepath, "rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != _ZIP_MAGIC:
                raise err from None
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            f.seek(info.header_offset + 30 + name_len + extra_len)
            return f.read(info.compress_size), err


# ------------------------------------------------------------------ atomic writes
def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_TEMP_SUFFIX = ".tmp"
# Temporaries of saves in progress in this process (a thread may be saving the same target).
_IN_PROGRESS = set()
_IN_PROGRESS_LOCK = threading.RLock()


def _host_tag():
    tag = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24]
    return tag or "localhost"


def _temp_name(target_name, host, pid, token):
    # .<target>.fastseq-<host>-<pid>-<8 hex>.tmp (host: letters and digits only)
    return f".{target_name}.fastseq-{host}-{pid}-{token}{_TEMP_SUFFIX}"


def _temp_pattern(target_name):
    """The regex matching exactly the temporaries of a save to ``target_name``: the name is
    unambiguous (the part after the target holds no dot), so no other target's temporary
    and no file of another shape matches."""
    return re.compile(r"\." + re.escape(target_name) +
                      r"\.fastseq-(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}"
                      + re.escape(_TEMP_SUFFIX) + r"\Z")


def _pid_is_alive(pid):
    if pid <= 0:
        return True  # not a process of ours: keep the file
    if pid == os.getpid():
        return None  # this process: alive only if the file is one of its saves in progress
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not a pid: keep the file
    return True


def _remove_stale_temporaries(directory, target_name):
    """Remove the temporaries left in ``directory`` by saves to ``target_name`` that were
    killed before they could clean up: exactly the files matching ``_temp_pattern``, written
    on this host by a process that has ended. Returns the removed paths."""
    if os.name != "posix":
        return []  # no safe liveness check (os.kill(pid, 0) would terminate it on Windows)
    pattern = _temp_pattern(target_name)
    host = _host_tag()
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or match["host"] != host:
            continue
        alive = _pid_is_alive(int(match["pid"]))
        if alive is None:
            with _IN_PROGRESS_LOCK:
                alive = entry.path in _IN_PROGRESS
        if alive:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(entry.path).st_mode):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


def _create_temporary(directory, target_name):
    host, pid = _host_tag(), os.getpid()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(directory, _temp_name(target_name, host, pid, secrets.token_hex(4)))
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file for {target_name!r} in "
                          f"{directory!r}")


@contextlib.contextmanager
def atomic_write_path(path):
    """Yield a temporary path in ``path``'s directory; when the block ends without error,
    the temporary file is flushed to disk and renamed over ``path`` (``os.replace``). On
    error it is removed and ``path`` is untouched.

    The temporary is ``.<name>.fastseq-<host>-<pid>-<8 hex>.tmp``. Before creating it, the
    stale temporaries of the same target are removed: those matching that exact pattern for
    ``path``'s name, from this host, whose process has ended (a save killed by SIGKILL or a
    power loss). Those of live processes (saves in progress), of other targets or hosts, and
    every other file are kept."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, expected a file path")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory {directory!r} does not exist (saving {path!r})")
    target_name = os.path.basename(path)
    with _IN_PROGRESS_LOCK:
        _remove_stale_temporaries(directory, target_name)
        tmp = _create_temporary(directory, target_name)
        _IN_PROGRESS.add(tmp)
    try:
        yield tmp
        mode = (os.stat(path).st_mode & 0o777) if os.path.exists(path) else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        with _IN_PROGRESS_LOCK:
            _IN_PROGRESS.discard(tmp)
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ------------------------------------------------------------------ the model's weights
def _layers(model):
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"expected a model with .layers, got {type(model).__name__}")
    return list(layers)


def _layer_weights(layer):
    return list(getattr(layer, "weights", []) or [])


def _short_name(var):
    name = str(getattr(var, "name", "weight"))
    name = name.rsplit("/", 1)[-1]
    return name[:-2] if name.endswith(":0") else name


def _weight_paths(layer):
    """A unique path for each of a layer's weights: ``dense/kernel``, and for a
    Bidirectional ``bidirectional/forward_lstm/kernel``."""
    sublayers = getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)
    if all(sublayers):
        return [f"{layer.name}/{path}" for sub in sublayers for path in _weight_paths(sub)]
    return [f"{layer.name}/{_short_name(var)}" for var in _layer_weights(layer)]


def _keras2_weight_names(layer):
    """Keras 2's names of a layer's weights: ``dense/kernel:0``, ``lstm/lstm_cell/kernel:0``,
    ``bidirectional/forward_lstm/lstm_cell/kernel:0``."""
    sublayers = getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)
    if all(sublayers):  # a Bidirectional: its two layers' names under its own
        return [f"{layer.name}/{name}" for sub in sublayers
                for name in _keras2_weight_names(sub)]
    cell = _CELL_NAMES.get(type(layer).__name__)
    prefix = f"{layer.name}/{cell}" if cell else layer.name
    return [f"{prefix}/{_short_name(var)}:0" for var in _layer_weights(layer)]


def _weighted_layers(model):
    return [layer for layer in _layers(model) if _layer_weights(layer)]


def _not_built_hint(model):
    if not _weighted_layers(model) and _layers(model):
        return (" (the model has no weights yet: build it first, e.g. give the first layer "
                "input_shape / input_length, or call the model on data)")
    return ""


def _assign_checked(model, per_layer_values, saved_names, source):
    """Match saved [(layer name, [arrays])] to the model's layers with weights, in order;
    check everything, then assign. Raises ValueError naming the first mismatch."""
    layers = _weighted_layers(model)
    if len(per_layer_values) != len(layers):
        raise ValueError(
            f"Layer count mismatch when loading weights from {source}: the model has "
            f"{len(layers)} layers with weights {[l.name for l in layers]}, the file has "
            f"{len(per_layer_values)} {list(saved_names)}{_not_built_hint(model)}. Nothing "
            "was changed.")
    plan = []
    for k, (layer, (saved_name, values)) in enumerate(zip(layers, per_layer_values)):
        variables = _layer_weights(layer)
        label = f"layer #{k} (named {layer.name!r} in the model, {saved_name!r} in the file)"
        if len(values) != len(variables):
            raise ValueError(
                f"Weight count mismatch for {label}: the layer expects {len(variables)} "
                f"weight(s), the file has {len(values)}. Nothing was changed.")
        for var, value in zip(variables, values):
            if tuple(value.shape) != tuple(var.value.shape):
                raise ValueError(
                    f"Shape mismatch for {label}, weight {_short_name(var)!r}: the model "
                    f"expects shape {tuple(var.value.shape)}, the file has shape "
                    f"{tuple(value.shape)}. Nothing was changed.")
            if value.dtype.kind not in "fiu":
                raise ValueError(f"Weight {_short_name(var)!r} of {label} has dtype "
                                 f"{value.dtype} in the file; expected floats")
            plan.append((var, value))
    for var, value in plan:
        np.copyto(var.value, value, casting="unsafe")


# ------------------------------------------------------------------ npz weights
def _npz_weights_bytes(model):
    meta = {"format": "fastseq.weights", "version": FORMAT_VERSION,
            "fastseq_version": _version(), "layers": []}
    arrays = {}
    for layer in _layers(model):
        entry = {"name": layer.name, "class_name": type(layer).__name__, "weights": []}
        for j, var in enumerate(_layer_weights(layer)):
            key = f"{layer.name}/{_short_name(var)}"
            if key in arrays or key == _NPZ_META:
                key = f"{key}#{j}"
            arrays[key] = np.asarray(var.value)
            entry["weights"].append({"name": _short_name(var), "key": key,
                                     "shape": list(var.value.shape),
                                     "dtype": var.value.dtype.name,
                                     "sha256": _sha256(arrays[key])})
        meta["layers"].append(entry)
    arrays[_NPZ_META] = np.array(_dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_npz_members(source, label, what="weight"):
    """{key: array} of an npz (bytes or a path); reading a member checks its CRC-32, and a
    mismatch raises ValueError naming ``label`` and the member."""
    key = None
    try:
        arrays = {}
        with np.load(source, allow_pickle=False) as data:
            for key in data.files:
                arrays[key] = data[key]
        return arrays
    except zipfile.BadZipFile as err:
        if key is not None and "CRC" in str(err):
            member = "the weights' metadata" if key == _NPZ_META else f"{what} {key!r}"
            raise ValueError(
                f"{label!r} is corrupted: the data of {member} do not match their CRC-32 "
                "checksum; the file was damaged after it was written. Nothing was loaded."
            ) from None
        raise _corrupted(label, err) from None
    except (EOFError, OSError, ValueError, KeyError) as err:
        raise _corrupted(label, err) from None


def _read_npz_weights(source, label):
    """[(layer name, [arrays])] for the layers with weights, from npz bytes or a path."""
    arrays = _read_npz_members(source, label)
    if _NPZ_META in arrays:
        try:
            meta = json.loads(str(arrays[_NPZ_META]))
            layers = [(entry["name"], [(w["key"], arrays[w["key"]], w.get("sha256"))
                                       for w in entry["weights"]])
                      for entry in meta["layers"]]
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise _corrupted(label, err) from None
        return [(name, [_verify(label, f"weight {key!r} (layer {name!r})", value, expected)
                        for key, value, expected in weights])
                for name, weights in layers if weights]
    # A plain np.savez(path, *model.get_weights()): one flat list, in order.
    keys = sorted((k for k in arrays if k.startswith("arr_")), key=lambda k: int(k[4:]))
    if not keys or len(keys) != len(arrays):
        raise ValueError(f"{label!r} is an npz file but not a fastseq weights file (no "
                         f"{_NPZ_META!r} member and not arr_0, arr_1, ...)")
    return [("<flat list>", [arrays[k] for k in keys])]


def _assign_flat(model, values, source):
    variables = [var for layer in _layers(model) for var in _layer_weights(layer)]
    per_layer, i = [], 0
    for layer in _weighted_layers(model):
        n = len(_layer_weights(layer))
        per_layer.append((f"arrays {i}..{i + n - 1}", values[i:i + n]))
        i += n
    if len(values) != len(variables):
        raise ValueError(f"{source}: the file has {len(values)} arrays, the model has "
                         f"{len(variables)} weights{_not_built_hint(model)}. Nothing was "
                         "changed.")
    _assign_checked(model, per_layer, [p[0] for p in per_layer], source)


# ------------------------------------------------------------------ HDF5 weights
def _save_h5_attr(group, name, data):
    # Keras 2's save_attributes_to_hdf5_group: split lists beyond the object header limit
    data = [d.encode("utf8") if isinstance(d, str) else d for d in data]
    arr = np.asarray(data)
    chunks = 1
    parts = np.array_split(arr, chunks)
    while any(p.nbytes > _HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(arr, chunks)
    if chunks > 1:
        for i, part in enumerate(parts):
            group.attrs[f"{name}{i}"] = part
    else:
        group.attrs[name] = arr if len(data) else np.array([], dtype="S1")


def _load_h5_attr(group, name):
    def decode(values):
        return [v.decode("utf8") if hasattr(v, "decode") else str(v) for v in values]

    if name in group.attrs:
        return decode(group.attrs[name])
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out.extend(decode(group.attrs[f"{name}{i}"]))
        i += 1
    return out


def _write_keras2_weights(group, model):
    layers = _layers(model)
    _save_h5_attr(group, "layer_names", [layer.name for layer in layers])
    group.attrs["backend"] = _KERAS_BACKEND.encode("utf8")
    group.attrs["keras_version"] = _KERAS_VERSION.encode("utf8")
    group.attrs["fastseq_version"] = _version().encode("utf8")
    for layer in sorted(layers, key=lambda l: l.name):
        g = group.create_group(layer.name)
        variables = _layer_weights(layer)
        names = _keras2_weight_names(layer)
        _save_h5_attr(g, "weight_names", names)
        for name, var in zip(names, variables):
            _create_checked_dataset(g, name, var.value)


def _read_keras2_weights(group):
    out = []
    for name in _load_h5_attr(group, "layer_names"):
        g = group[name]
        weight_names = _load_h5_attr(g, "weight_names")
        if weight_names:
            out.append((name, [_read_dataset(g[w]) for w in weight_names]))
    return out


def _keras_snake_case(name):
    # keras.src.utils.naming.to_snake_case: GlobalMaxPooling1D -> global_max_pooling1d
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_layer_keys(model):
    # Keras 3 names each layer's group after its class (snake case), numbered per class in
    # model order: embedding, lstm, dense, dense_1, ...
    seen = {}
    keys = []
    for layer in _layers(model):
        base = _keras_snake_case(type(layer).__name__)
        count = seen.get(base, 0)
        seen[base] = count + 1
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def _write_keras3_weights(f, model):
    f.create_group("vars").attrs["name"] = str(getattr(model, "name", "sequential"))
    layers_group = f.create_group("layers")
    for key, layer in zip(_keras3_layer_keys(model), _layers(model)):
        _write_keras3_layer(layers_group.create_group(key), layer)


def _write_keras3_layer(g, layer):
    # Keras 3 stores a layer's own vars, then its sub-objects' under their attribute names:
    # an RNN's cell ("cell/vars"), a Bidirectional's "forward_layer" and "backward_layer"
    own = g.create_group("vars")
    own.attrs["name"] = layer.name
    if getattr(layer, "forward_layer", None) is not None:
        _write_keras3_layer(g.create_group("forward_layer"), layer.forward_layer)
        _write_keras3_layer(g.create_group("backward_layer"), layer.backward_layer)
        return
    wrapped = getattr(layer, "layer", None)
    if wrapped is not None and hasattr(wrapped, "weights"):  # TimeDistributed: its "layer"
        _write_keras3_layer(g.create_group("layer"), wrapped)
        return
    cell = _CELL_NAMES.get(type(layer).__name__)
    if cell:
        own = g.create_group("cell").create_group("vars")
        own.attrs["name"] = cell
    for i, var in enumerate(_layer_weights(layer)):
        _create_checked_dataset(own, str(i), var.value)


def _keras3_datasets(g, out):
    """``g``'s weight datasets in Keras 3's order: its own vars, then its sub-objects'
    (an RNN's cell; a Bidirectional's forward layer, then its backward layer)."""
    if "vars" in g:
        v = g["vars"]
        out.extend(v[k] for k in sorted(v, key=int))
    first = {"forward_layer": 0, "backward_layer": 1}
    for child in sorted((k for k in g if k != "vars"), key=lambda k: (first.get(k, 2), k)):
        if hasattr(g[child], "keys"):
            _keras3_datasets(g[child], out)
    return out


def _read_keras3_weights(f, model, path=None):
    """[(layers/<key>, [arrays])] for the model's layers with weights, from Keras 3's layout;
    each array checked against its checksum, named by its dataset, the layer and the
    model's name for the weight."""
    layers_group = f["layers"]
    saved = {key: _keras3_datasets(layers_group[key], []) for key in layers_group}
    saved_with_weights = sorted(key for key, values in saved.items() if values)
    matched = []
    for key, layer in zip(_keras3_layer_keys(model), _layers(model)):
        if _layer_weights(layer):
            if not saved.get(key):
                raise ValueError(
                    f"Layer count mismatch: the model's layer {layer.name!r} (stored as "
                    f"layers/{key} by Keras 3) has weights, the file has none for it; the file "
                    f"has weights for {saved_with_weights}. Nothing was changed.")
            matched.append((key, layer))
    if len(matched) != len(saved_with_weights):
        raise ValueError(
            f"Layer count mismatch: the file has weights for {saved_with_weights}, the model "
            f"for {[k for k, _ in matched]}. Nothing was changed.")
    out = []
    for key, layer in matched:
        # errors name the layer as saved (its vars group's name) and the weight under it
        saved_name = layers_group[key]["vars"].attrs.get("name", layer.name) \
            if "vars" in layers_group[key] else layer.name
        if isinstance(saved_name, bytes):
            saved_name = saved_name.decode("utf8")
        paths = [saved_name + p[len(layer.name):] for p in _weight_paths(layer)]
        values = []
        for i, ds in enumerate(saved[key]):
            weight = f", {paths[i]!r}" if i < len(paths) else ""
            values.append(_read_dataset(ds, f"weight {ds.name!r} (layer {saved_name!r}"
                                            f"{weight})", path))
        out.append((f"layers/{key}", values))
    return out


def _read_h5_weights(model, path, data=None):
    """[(layer, [arrays])] matched to ``model``'s layers, from the HDF5 weights file ``path``
    or the HDF5 bytes ``data`` read from it (the weights member of a ``.keras`` archive)."""
    h5py = _h5py()
    try:
        with h5py.File(io.BytesIO(data) if data is not None else path, "r") as f:
            if "layer_names" in f.attrs or "layer_names0" in f.attrs:
                per_layer = _read_keras2_weights(f)
            elif "model_weights" in f:
                per_layer = _read_keras2_weights(f["model_weights"])
            elif "layers" in f:
                per_layer = _read_keras3_weights(f, model, path)
            else:
                raise ValueError(f"{os.fspath(path)!r} is an HDF5 file without Keras weights "
                                 "(no 'layer_names', 'model_weights' or 'layers')")
    except (OSError, KeyError, RuntimeError) as err:
        raise _corrupted(path, err) from None
    return per_layer


# ------------------------------------------------------------------ public: weights
def save_weights(model, filepath):
    """Save every layer's weights: Keras 3 layout for ``*.weights.h5``, Keras 2 layout for
    other ``*.h5`` / ``*.hdf5``, fastseq's npz otherwise (see the module docstring).
    Written atomically."""
    filepath = os.fspath(filepath)
    if _is_h5_name(filepath):
        h5py = _h5py()
        with atomic_write_path(filepath) as tmp:
            with h5py.File(tmp, "w") as f:
                if filepath.lower().endswith(".weights.h5"):
                    _write_keras3_weights(f, model)
                else:
                    _write_keras2_weights(f, model)
        return
    data = _npz_weights_bytes(model)
    with atomic_write_path(filepath) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def load_weights(model, filepath):
    """Load weights saved by :func:`save_weights` (or by Keras 2 / Keras 3 into ``.h5``, or a
    fastseq model file) into ``model``. Everything is checked before any weight changes."""
    filepath = os.fspath(filepath)
    kind = _file_kind(filepath)
    if kind == "h5":
        per_layer = _read_h5_weights(model, filepath)
        _assign_checked(model, per_layer, [p[0] for p in per_layer], repr(filepath))
        return
    try:
        with zipfile.ZipFile(filepath) as zf:
            names = set(zf.namelist())
            if _KERAS3_WEIGHTS in names:  # a Keras 3 .keras archive
                h5, crc_error = _zip_member(zf, filepath, _KERAS3_WEIGHTS)
            elif "model.weights.npz" in names:  # a fastseq model archive
                npz, crc_error = _zip_member(zf, filepath, "model.weights.npz")
            else:
                npz = crc_error = None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _corrupted(filepath, err) from None
    if _KERAS3_WEIGHTS in names:
        per_layer = _read_h5_weights(model, filepath, h5)
        if crc_error is not None:  # damaged, but not in a weight's data: still an error
            raise _corrupted(filepath, crc_error)
        _assign_checked(model, per_layer, [p[0] for p in per_layer], repr(filepath))
        return
    per_layer = _read_npz_weights(io.BytesIO(npz) if npz is not None else filepath, filepath)
    if crc_error is not None:  # damaged, but not in a weight's data: still an error
        raise _corrupted(filepath, crc_error)
    if per_layer and per_layer[0][0] == "<flat list>":
        _assign_flat(model, per_layer[0][1], repr(filepath))
        return
    _assign_checked(model, per_layer, [p[0] for p in per_layer], repr(filepath))


# ------------------------------------------------------------------ optimizer state
def _optimizer_state(model):
    """(names, arrays, owners) of the model's optimizer, or None when it has no state to
    save. owners: [layer index, weight index] of each variable the slots belong to."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "get_state"):
        return None
    tracked = list(getattr(optimizer, "_vars", []))
    where = {}
    for li, layer in enumerate(_layers(model)):
        for wi, var in enumerate(_layer_weights(layer)):
            where[id(var)] = [li, wi]
    owners = []
    for var in tracked:
        if id(var) not in where:
            warnings.warn("the optimizer tracks a variable that is not in the model; its state "
                          "is not saved", stacklevel=3)
            return None
        owners.append(where[id(var)])
    layers = _layers(model)
    var_names = [_weight_paths(layers[li])[wi] for li, wi in owners]
    return optimizer.state_names(var_names), optimizer.get_state(), owners


def _restore_optimizer(model, arrays, owners, source):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or arrays is None:
        return
    layers = _layers(model)
    try:
        variables = [_layer_weights(layers[li])[wi] for li, wi in owners]
        if any(id(v) in getattr(optimizer, "_index", {}) for v in variables):
            raise ValueError("the optimizer already has state")
        optimizer.build(variables)
        optimizer.set_state(arrays)
    except (ValueError, TypeError, IndexError) as err:
        warnings.warn(f"Error in loading the saved optimizer state from {source} ({err}). As a "
                      "result, your model is starting with a freshly initialized optimizer.",
                      stacklevel=3)
        _reset_optimizer(optimizer)


def _reset_optimizer(optimizer):
    if hasattr(optimizer, "_vars"):
        optimizer._vars, optimizer._index, optimizer._slots = [], {}, {}
        optimizer.iterations = 0


# ------------------------------------------------------------------ public: models
def _model_config(model):
    return {"class_name": type(model).__name__, "config": model.get_config()}


def _compile_config(model):
    config = getattr(model, "_compile_config", None)
    if not config:
        return None
    return json.loads(_dumps(config))


def save_model(model, filepath, include_optimizer=True):
    """Save the architecture (``model.get_config()``), the weights, the compile settings and
    (``include_optimizer``) the optimizer state: Keras 2's HDF5 layout for ``*.h5`` /
    ``*.hdf5``, fastseq's zip archive otherwise. Written atomically."""
    filepath = os.fspath(filepath)
    model_config = _model_config(model)
    compile_config = _compile_config(model)
    state = _optimizer_state(model) if include_optimizer else None
    if _is_h5_name(filepath):
        _save_model_h5(model, filepath, model_config, compile_config, state)
        return
    if filepath.lower().endswith(".keras"):
        try:
            keras_config = _k3.to_keras_model(model)
        except _k3.NotTranslatable as err:
            warnings.warn(f"{filepath!r}: {err}; wrote fastseq's own model archive instead of "
                          "a Keras 3 file (Keras cannot load it, fastseq can)", stacklevel=3)
        else:
            _save_model_keras3(model, filepath, keras_config, compile_config, state)
            return
    _save_model_zip(model, filepath, model_config, compile_config, state)


def _save_model_zip(model, filepath, model_config, compile_config, state):
    metadata = {"format": "fastseq.model", "version": FORMAT_VERSION,
                "fastseq_version": _version(),
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}
    config = dict(model_config)
    config["compile_config"] = compile_config
    weights = _npz_weights_bytes(model)
    optimizer = None
    if state is not None:
        names, arrays, owners = state
        buffer = io.BytesIO()
        members = {f"state_{i:04d}": a for i, a in enumerate(arrays)}
        members[_NPZ_META] = np.array(_dumps({"names": names, "owners": owners,
                                              "sha256": [_sha256(a) for a in arrays]}))
        np.savez(buffer, **members)
        optimizer = buffer.getvalue()
    with atomic_write_path(filepath) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", _dumps(metadata))
            zf.writestr("config.json", _dumps(config))
            zf.writestr("model.weights.npz", weights)
            if optimizer is not None:
                zf.writestr("optimizer.npz", optimizer)


# ------------------------------------------------------------------ Keras 3 .keras files
def _trainable_owners(model):
    """[layer index, weight index] of each trainable weight, in Keras's order
    (``model.trainable_variables``, which its optimizer is built on)."""
    return [[li, wi] for li, layer in enumerate(_layers(model))
            for wi, var in enumerate(_layer_weights(layer)) if getattr(var, "trainable", True)]


def _keras3_optimizer_arrays(model, state):
    """(optimizer name, its variables in Keras 3's order) from fastseq's saved ``state``;
    slots of weights the optimizer has not updated yet hold their initial value, as
    Keras's. None (with a warning) for an optimizer whose Keras layout is unknown."""
    optimizer = model.optimizer
    specs = dict(optimizer._slot_specs())
    kinds = list(specs)
    targets = _trainable_owners(model)
    try:
        order = _k3.keras_slot_order(type(optimizer).__name__, kinds, len(targets))
    except ValueError as err:
        warnings.warn(f"{err}: the optimizer state is not saved; Keras starts it fresh",
                      stacklevel=4)
        return None
    _, arrays, owners = state
    position = {tuple(owner): p for p, owner in enumerate(owners)}
    layers = _layers(model)
    out = [np.asarray(arrays[0], dtype=np.int64), np.asarray(arrays[1], dtype=np.float32)]
    for kind, t in order:
        li, wi = targets[t]
        p = position.get((li, wi))
        if p is None:
            value = _layer_weights(layers[li])[wi].value
            out.append(np.full(value.shape, specs[kind], value.dtype))
        else:
            out.append(arrays[2 + kinds.index(kind) * len(owners) + p])
    return optimizer.name, out


def _keras3_weights_bytes(model, optimizer):
    """Keras 3's model.weights.h5 (weights, then the optimizer's variables), checksummed."""
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        _write_keras3_weights(f, model)
        if optimizer is not None:
            name, arrays = optimizer
            g = f.create_group("optimizer").create_group("vars")
            g.attrs["name"] = name
            for i, value in enumerate(arrays):
                _create_checked_dataset(g, str(i), value)
    return buffer.getvalue()


def _compiled_metrics_config(model, compile_config):
    """The compile config with each metric written so Keras rebuilds the same one: a name
    where the model's metric object is what that name makes, else the object's config (a
    threshold, a metric given as an object). Only for one flat list of metrics."""
    metrics = compile_config.get("metrics")
    objects = list(getattr(model, "compiled_metrics", None) or [])
    if not isinstance(metrics, list) or len(metrics) != len(objects) or any(
            isinstance(m, (list, dict)) and "class_name" not in m for m in metrics):
        return compile_config
    from fastseq import metrics as _metrics

    out = []
    for entry, obj in zip(metrics, objects):
        try:
            from_name = _metrics.get(entry, loss=getattr(model, "loss", None))
            if isinstance(entry, str) and _dumps(from_name.get_config()) == _dumps(
                    obj.get_config()):
                out.append(entry)
                continue
        except (ValueError, TypeError):
            pass
        out.append(_metrics.serialize(obj) if hasattr(obj, "get_config") else entry)
    return dict(compile_config, metrics=out)


def _save_model_keras3(model, filepath, keras_config, compile_config, state):
    config = dict(keras_config)
    if compile_config:
        compile_config = _compiled_metrics_config(model, compile_config)
    keras_compile = _k3.to_keras_compile(compile_config)
    if keras_compile is not None:
        config["compile_config"] = keras_compile
    optimizer = _keras3_optimizer_arrays(model, state) if state is not None else None
    weights = _keras3_weights_bytes(model, optimizer)
    metadata = {"keras_version": _k3.KERAS_FORMAT_VERSION, "fastseq_version": _version(),
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}
    with atomic_write_path(filepath) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", _dumps(metadata))
            zf.writestr("config.json", _dumps(config))
            zf.writestr(_KERAS3_WEIGHTS, weights)


def _is_keras3_archive(filepath):
    try:
        with zipfile.ZipFile(filepath) as zf:
            return _KERAS3_WEIGHTS in zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _corrupted(filepath, err) from None


def _restore_keras3_optimizer(model, arrays, source):
    """Keras 3's optimizer variables (iteration, learning_rate, slots in its order) into
    the model's freshly compiled optimizer; a layout that does not fit warns and leaves
    the optimizer fresh. The learning rate stays the compile config's."""
    optimizer = model.optimizer
    kinds = [kind for kind, _ in optimizer._slot_specs()]
    targets = _trainable_owners(model)
    try:
        order = _k3.keras_slot_order(type(optimizer).__name__, kinds, len(targets))
        if len(arrays) != 2 + len(order):
            raise ValueError(f"the file has {len(arrays)} optimizer variables, "
                             f"{type(optimizer).__name__} on this model has {2 + len(order)}")
    except ValueError as err:
        warnings.warn(f"Error in loading the saved optimizer state from {source} ({err}). As a "
                      "result, your model is starting with a freshly initialized optimizer.",
                      stacklevel=4)
        return
    slots = {key: arrays[2 + j] for j, key in enumerate(order)}
    state = [arrays[0], np.array(optimizer.learning_rate)]
    state += [slots[(kind, t)] for kind in kinds for t in range(len(targets))]
    _restore_optimizer(model, state, targets, source)


def _load_model_keras3(filepath, custom_objects, compile, model_from_config):
    """A model from a Keras 3 ``.keras`` archive (written by Keras or by fastseq)."""
    try:
        with zipfile.ZipFile(filepath) as zf:
            config = json.loads(zf.read("config.json"))
            weights, crc_error = _zip_member(zf, filepath, _KERAS3_WEIGHTS)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, json.JSONDecodeError) as err:
        raise _corrupted(filepath, err) from None
    try:
        model = model_from_config(_k3.from_keras_model(config, custom_objects),
                                  custom_objects=custom_objects)
        compile_config = _k3.from_keras_compile(config.get("compile_config"))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{filepath!r}: {err}") from err
    h5py = _h5py()
    optimizer = None
    try:
        with h5py.File(io.BytesIO(weights), "r") as f:
            per_layer = _read_keras3_weights(f, model, filepath)
            if compile and "optimizer" in f and "vars" in f["optimizer"]:
                v = f["optimizer"]["vars"]
                optimizer = [_read_dataset(v[k], f"optimizer state {v[k].name!r}", filepath)
                             for k in sorted(v, key=int)]
    except (OSError, KeyError, RuntimeError) as err:
        raise _corrupted(filepath, err) from None
    if crc_error is not None:  # damaged, but not in a checksummed array: still an error
        raise _corrupted(filepath, crc_error)
    _assign_checked(model, per_layer, [p[0] for p in per_layer], repr(filepath))
    if compile and compile_config and compile_config.get("optimizer") is not None:
        try:
            _compile_from_config(model, compile_config)
        except (ValueError, TypeError, NotImplementedError) as err:
            raise ValueError(f"{filepath!r}: its compile settings do not load in fastseq "
                             f"({err}); load_model(..., compile=False) gives the model "
                             "uncompiled") from err
        if optimizer is not None:
            _restore_keras3_optimizer(model, optimizer, repr(filepath))
    return model


def _save_model_h5(model, filepath, model_config, compile_config, state):
    h5py = _h5py()
    training_config = None
    if compile_config is not None:
        training_config = {"loss": compile_config.get("loss"),
                           "metrics": compile_config.get("metrics"),
                           "weighted_metrics": None, "loss_weights": None,
                           "optimizer_config": compile_config.get("optimizer")}
    with atomic_write_path(filepath) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["keras_version"] = _KERAS_VERSION.encode("utf8")
            f.attrs["backend"] = _KERAS_BACKEND.encode("utf8")
            f.attrs["fastseq_version"] = _version().encode("utf8")
            f.attrs["model_config"] = _dumps(model_config).encode("utf8")
            if training_config is not None:
                f.attrs["training_config"] = _dumps(training_config).encode("utf8")
            _write_keras2_weights(f.create_group("model_weights"), model)
            if state is not None:
                names, arrays, owners = state
                g = f.create_group("optimizer_weights")
                names = [f"{n}:0" for n in names]
                _save_h5_attr(g, "weight_names", names)
                g.attrs["fastseq_slot_owners"] = _dumps(owners).encode("utf8")
                for name, value in zip(names, arrays):
                    _create_checked_dataset(g, name, value)


def _read_model_zip(filepath):
    try:
        with zipfile.ZipFile(filepath) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                if any(n.endswith(".npy") for n in names):
                    raise ValueError(f"{filepath!r} holds only weights (npz), not a model: use "
                                     "model.load_weights")
                raise ValueError(f"{filepath!r} is a zip file but not a fastseq model (no "
                                 "config.json)")
            config = json.loads(zf.read("config.json"))
            weights, weights_crc_error = _zip_member(zf, filepath, "model.weights.npz")
            optimizer, optimizer_crc_error = (_zip_member(zf, filepath, "optimizer.npz")
                                              if "optimizer.npz" in names else (None, None))
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, json.JSONDecodeError) as err:
        raise _corrupted(filepath, err) from None
    compile_config = config.pop("compile_config", None)
    # a member that failed its CRC-32: reading it names the damaged weight, else a plain error
    per_layer = _read_npz_weights(io.BytesIO(weights), filepath)
    if weights_crc_error is not None:
        raise _corrupted(filepath, weights_crc_error)
    state = None
    if optimizer is not None:
        members = _read_npz_members(io.BytesIO(optimizer), filepath, "optimizer state")
        try:
            meta = json.loads(str(members[_NPZ_META]))
            keys = sorted(k for k in members if k.startswith("state_"))
            sums = meta.get("sha256") or [None] * len(keys)
            arrays = [_verify(filepath, f"optimizer state {k!r}", members[k], h)
                      for k, h in zip(keys, sums)]
            state = (arrays, meta["owners"])
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
            raise _corrupted(filepath, err) from None
        if optimizer_crc_error is not None:
            raise _corrupted(filepath, optimizer_crc_error)
    return config, compile_config, per_layer, state


def _read_model_h5(filepath):
    h5py = _h5py()
    try:
        with h5py.File(filepath, "r") as f:
            if "model_config" not in f.attrs:
                raise ValueError(f"{filepath!r} holds no model_config: it is a weights file, "
                                 "use model.load_weights")
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode("utf8") if hasattr(raw, "decode") else raw)
            compile_config = None
            if "training_config" in f.attrs:
                raw = f.attrs["training_config"]
                training = json.loads(raw.decode("utf8") if hasattr(raw, "decode") else raw)
                compile_config = {"optimizer": training.get("optimizer_config"),
                                  "loss": training.get("loss"),
                                  "metrics": training.get("metrics")}
            per_layer = _read_keras2_weights(f["model_weights"])
            state = None
            if "optimizer_weights" in f:
                g = f["optimizer_weights"]
                if "fastseq_slot_owners" in g.attrs:
                    raw = g.attrs["fastseq_slot_owners"]
                    owners = json.loads(raw.decode("utf8") if hasattr(raw, "decode") else raw)
                    arrays = [_read_dataset(g[n], f"optimizer state {g[n].name!r}")
                              for n in _load_h5_attr(g, "weight_names")]
                    state = (arrays, owners)
                else:
                    warnings.warn(f"{filepath!r}: the optimizer state was written by Keras and "
                                  "is not loaded; the optimizer starts fresh", stacklevel=3)
    except (OSError, KeyError, RuntimeError, json.JSONDecodeError) as err:
        raise _corrupted(filepath, err) from None
    return config, compile_config, per_layer, state


def _metric_names(metrics):
    # Keras 2 training configs may nest metrics per output: [['acc']] for one output
    if metrics is None:
        return None
    out = []
    for m in metrics:
        if isinstance(m, (list, tuple)):
            out.extend(m)
        else:
            out.append(m)
    return out


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True,
               model_from_config=None):
    """A model saved by :func:`save_model` (or a Keras 2 ``.h5`` model whose layers fastseq
    has): rebuilt from its config, weights loaded (checked), compiled as it was and, when
    saved, the optimizer state restored.

    ``model_from_config(config, custom_objects=...)`` builds the model from the saved
    ``{'class_name': ..., 'config': ...}``; by default
    :func:`fastseq.models.model_from_config`, imported only when called, so that this module
    never imports :mod:`fastseq.models` (which imports this one)."""
    filepath = os.fspath(filepath)
    kind = _file_kind(filepath)
    if model_from_config is None:
        model_from_config = importlib.import_module("fastseq.models").model_from_config
    if kind == "zip" and _is_keras3_archive(filepath):
        return _load_model_keras3(filepath, custom_objects, compile, model_from_config)
    if kind == "h5":
        config, compile_config, per_layer, state = _read_model_h5(filepath)
    else:
        config, compile_config, per_layer, state = _read_model_zip(filepath)
    if not isinstance(config, dict) or "config" not in config:
        raise ValueError(f"{filepath!r}: the saved model config is not "
                         "{'class_name': ..., 'config': ...}")
    try:
        model = model_from_config(config, custom_objects=custom_objects)
    except ValueError as err:
        raise ValueError(f"{filepath!r}: {err}") from err
    _assign_checked(model, per_layer, [p[0] for p in per_layer], repr(filepath))
    if compile and compile_config and compile_config.get("optimizer") is not None:
        _compile_from_config(model, compile_config)
        if state is not None:
            _restore_optimizer(model, state[0], state[1], repr(filepath))
    return model


def _compile_from_config(model, compile_config):
    """``model.compile`` with the saved optimizer, loss and metrics."""
    from fastseq import losses as _losses
    from fastseq import optimizers as _optimizers

    loss = compile_config.get("loss")
    if isinstance(loss, dict) and "class_name" in loss:
        loss = _losses.get(loss)
    extra = {key: compile_config[key] for key in ("loss_weights", "weighted_metrics")
             if compile_config.get(key) is not None}
    model.compile(optimizer=_optimizers.get(compile_config["optimizer"]), loss=loss,
                  metrics=_metric_names(compile_config.get("metrics")), **extra)
