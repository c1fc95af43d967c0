"""Reading a user's labelled texts for ``python -m fastseq train / evaluate / predict``.

Formats: CSV, TSV, JSON Lines (each optionally gzipped, told by its name or its magic
bytes), plain text (one text per line: predict only) and a folder-per-class tree of ``.txt``
files (the ``aclImdb`` / ``text_dataset_from_directory`` layout). Every problem is a
:class:`DataError` naming the file, the line and what was expected, raised before any
training starts.

Labels: binary (two classes), multi-class (strings or ints) and multi-label (a JSON list
per row, or the values of a row split on a separator), mapped to indices by a
:class:`LabelMap` that is saved with the model.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

FORMATS = ("csv", "tsv", "jsonl", "txt")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".json": "jsonl", ".txt": "txt"}
LABEL_KINDS = ("auto", "binary", "multiclass", "multilabel")
_SHOWN = 5  # line numbers quoted in one error message


class DataError(ValueError):
    """Bad input data: the message says where and what was expected."""


@dataclass
class Texts:
    """Texts read from one source; ``labels`` holds the raw label values (None without a
    label column); ``where[i]`` says where text i came from ("line 12", a file name)."""
    source: str
    texts: list
    labels: list | None
    where: list
    columns: list = field(default_factory=list)

    def __len__(self):
        return len(self.texts)

    def take(self, index):
        """The rows at ``index`` (an integer array), as a new Texts."""
        def pick(values):
            return [values[i] for i in index]

        return Texts(self.source, pick(self.texts),
                     None if self.labels is None else pick(self.labels), pick(self.where),
                     self.columns)


def _shown(items):
    items = list(items)
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(str(i) for i in items[:_SHOWN]) + more


# ---------------------------------------------------------------------------- bytes, text
def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file ({e})") from None
    return raw


def _decode(raw, encoding, path):
    """``raw`` decoded; an undecodable byte is reported with its line and column."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a byte order mark is not part of the first column's name
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start:e.end].hex(" ")
        raise DataError(
            f"{path}: line {line}, column {column}: bytes {bad} are not valid {e.encoding} "
            f"({e.reason}); the file (or this line) is in another encoding: pass "
            "--encoding (e.g. latin-1, cp1252) or re-save the file as UTF-8") from None
    except LookupError:
        raise DataError(f"unknown --encoding {encoding!r}") from None


def detect_format(path, format=None):
    """The format of ``path``: ``format`` when given, else its name (a ``.gz`` suffix
    skipped), else a folder-per-class tree for a directory."""
    if os.path.isdir(path):
        return "folder"
    if format:
        return format
    name = os.path.basename(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix not in _SUFFIXES:
        raise DataError(f"{path}: cannot tell the format from the name; expected one of "
                        f"{', '.join(sorted(_SUFFIXES))} (optionally .gz), or pass --format "
                        f"{'|'.join(FORMATS)}")
    return _SUFFIXES[suffix]


# ---------------------------------------------------------------------------- readers
def _check_columns(path, found, wanted):
    missing = [c for c in wanted if c is not None and c not in found]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise DataError(f"{path}: no column{'s' if len(missing) > 1 else ''} {names}; the "
                        f"columns found are "
                        f"{', '.join(repr(c) for c in found)} (choose with --text-column / "
                        "--label-column)")


def _read_delimited(path, text, delimiter, text_column, label_column):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty; expected a header line naming the "
                            "columns, then one row per text")
        _check_columns(path, header, [text_column, label_column])
        ti = header.index(text_column)
        li = None if label_column is None else header.index(label_column)
        texts, labels, where = [], [], []
        line = reader.line_num
        for row in reader:
            start, line = line + 1, reader.line_num
            if not row:  # a blank line
                continue
            if len(row) != len(header):
                raise DataError(f"{path}: line {start} has {len(row)} fields, the header "
                                f"{len(header)} ({', '.join(header)}); check the quoting "
                                f"and the delimiter ({delimiter!r})")
            texts.append(row[ti])
            if li is not None:
                labels.append(row[li])
            where.append(f"line {start}")
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: {e}") from None
    return Texts(path, texts, labels if li is not None else None, where, header)


def _read_jsonl(path, text, text_column, label_column):
    texts, labels, where, columns = [], [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {number}: not JSON ({e.msg} at column {e.colno}); "
                            "expected one JSON object per line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: a JSON {type(record).__name__}, expected "
                            "an object such as {\"text\": ..., \"label\": ...}")
        for key in record:
            if key not in columns:
                columns.append(key)
        _check_columns(f"{path}: line {number}", list(record), [text_column, label_column])
        value = record[text_column]
        if not isinstance(value, str):
            raise DataError(f"{path}: line {number}: {text_column!r} is a JSON "
                            f"{type(value).__name__}, expected a string")
        texts.append(value)
        if label_column is not None:
            labels.append(record[label_column])
        where.append(f"line {number}")
    if not texts:
        raise DataError(f"{path}: no records; expected one JSON object per line")
    return Texts(path, texts, labels if label_column is not None else None, where, columns)


def _read_folder(path, encoding, with_labels):
    from fastseq.utils.text_dataset import text_dataset_from_directory

    try:
        listing = text_dataset_from_directory(path, label_mode="int" if with_labels else None,
                                              labels="inferred" if with_labels else None,
                                              batch_size=None, shuffle=False, verbose=False)
    except ValueError as e:
        raise DataError(f"{path}: {e}; expected one subfolder per class holding .txt "
                        "files") from None
    texts = []
    for file_path in listing.file_paths:
        with open(file_path, "rb") as f:
            texts.append(_decode(f.read(), encoding, file_path))
    labels = None
    if with_labels:
        labels = [listing.class_names[i] for i in listing.labels]
    where = [os.path.relpath(p, path) for p in listing.file_paths]
    return Texts(path, texts, labels, where, ["<file text>", "<folder name>"])


def read_texts(path, text_column="text", label_column="label", format=None, encoding="utf-8"):
    """Texts (and labels, unless ``label_column`` is None) from ``path``: see the module's
    docstring for the formats. ``path`` "-" reads one text per line from stdin."""
    if path == "-":
        import sys

        raw = sys.stdin.buffer.read()
        fmt = format or "txt"
        path = "<stdin>"
    else:
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file or directory")
        fmt = detect_format(path, format)
        if fmt == "folder":
            data = _read_folder(path, encoding, label_column is not None)
            check_texts(data)
            return data
        raw = _read_bytes(path)
    text = _decode(raw, encoding, path)
    if fmt == "csv":
        data = _read_delimited(path, text, ",", text_column, label_column)
    elif fmt == "tsv":
        data = _read_delimited(path, text, "\t", text_column, label_column)
    elif fmt == "jsonl":
        data = _read_jsonl(path, text, text_column, label_column)
    elif fmt == "txt":
        if label_column is not None:
            raise DataError(f"{path}: a plain text file has no labels; training and "
                            "evaluation need CSV, TSV, JSON Lines or a folder per class")
        lines = text.splitlines()
        keep = [i for i, t in enumerate(lines) if t.strip()]
        data = Texts(path, [lines[i] for i in keep], None, [f"line {i + 1}" for i in keep],
                     ["<line>"])
    else:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    check_texts(data)
    return data


def check_texts(data):
    """No source without texts, no empty (or blank) text."""
    if not data.texts:
        raise DataError(f"{data.source}: no texts found")
    empty = [w for t, w in zip(data.texts, data.where) if not t.strip()]
    if empty:
        raise DataError(f"{data.source}: {len(empty)} empty text(s) at {_shown(empty)}; "
                        "remove those rows or fill in their text")


# ---------------------------------------------------------------------------- labels
def _as_label_list(value, separator):
    """A multi-label row's labels: a JSON list, a string holding one, or a string split on
    ``separator``."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        if not stripped:
            return []
        return [part.strip() for part in stripped.split(separator) if part.strip()]
    return [value]


def _scalar(value, where, source):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, str)):
        return value
    raise DataError(f"{source}: {where}: label {value!r} is a {type(value).__name__}; "
                    "expected a string or an integer (or a list, for multi-label)")


def _normalize(values):
    """String labels that all spell integers become ints (so 2 sorts before 10)."""
    if values and all(isinstance(v, str) for v in values):
        try:
            as_int = [int(v) for v in values]
        except ValueError:
            return values
        if all(str(i) == v.strip() for i, v in zip(as_int, values)):
            return as_int
    return values


def _sorted_classes(values):
    unique = set(values)
    if all(isinstance(v, int) for v in unique):
        return sorted(unique)
    return sorted(unique, key=str)


class LabelMap:
    """Label kind ("binary", "multiclass", "multilabel") and class names, class index i
    being ``classes[i]`` (sorted: numerically for ints); for binary, ``classes[1]`` is the
    positive class."""

    def __init__(self, kind, classes, separator="|"):
        if kind not in LABEL_KINDS[1:]:
            raise ValueError(f"label kind {kind!r}; expected one of {LABEL_KINDS[1:]}")
        self.kind = kind
        self.classes = list(classes)
        self.separator = separator
        self.index = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def from_labels(cls, data, kind="auto", separator="|"):
        """The label map of ``data``'s labels; a single class is an error."""
        raw = data.labels
        missing = [w for v, w in zip(raw, data.where) if v is None or v == ""]
        if kind == "auto":
            is_list = [isinstance(v, list) or (isinstance(v, str) and v.strip().startswith("["))
                       for v in raw]
            kind = "multilabel" if any(is_list) else None
        if kind != "multilabel" and missing:
            raise DataError(f"{data.source}: {len(missing)} row(s) without a label at "
                            f"{_shown(missing)}")
        if kind == "multilabel":
            rows = [_as_label_list(v, separator) for v in raw]
            values = _normalize([_scalar(x, w, data.source)
                                 for row, w in zip(rows, data.where) for x in row])
            classes = _sorted_classes(values)
        else:
            values = _normalize([_scalar(v, w, data.source) for v, w in zip(raw, data.where)])
            classes = _sorted_classes(values)
            if kind is None:
                kind = "binary" if len(classes) == 2 else "multiclass"
            elif kind == "binary" and len(classes) > 2:
                raise DataError(f"{data.source}: --label-kind binary, but the labels hold "
                                f"{len(classes)} classes ({_shown(classes)})")
        if len(classes) < 2:
            found = repr(classes[0]) if classes else "none"
            raise DataError(f"{data.source}: the labels hold a single class ({found}) in "
                            f"{len(raw)} rows; a classifier needs at least two classes")
        return cls(kind, classes, separator)

    def encode(self, data):
        """``data``'s labels as the model's targets: binary float32 (n, 1), multi-class
        int32 (n,), multi-label float32 multi-hot (n, classes). An unknown label is an
        error naming its rows."""
        index = {str(c): i for i, c in enumerate(self.classes)}
        unknown = {}

        def lookup(value, where):
            i = index.get(str(_scalar(value, where, data.source)).strip())
            if i is None:
                unknown.setdefault(value if not isinstance(value, list) else str(value),
                                   []).append(where)
            return i

        if self.kind == "multilabel":
            y = np.zeros((len(data), len(self.classes)), dtype=np.float32)
            for r, (value, where) in enumerate(zip(data.labels, data.where)):
                for label in _as_label_list(value, self.separator):
                    i = lookup(label, where)
                    if i is not None:
                        y[r, i] = 1
        else:
            y = np.array([lookup(v, w) if v not in (None, "") else -1
                          for v, w in zip(data.labels, data.where)], dtype=object)
            empty = [w for v, w in zip(data.labels, data.where) if v in (None, "")]
            if empty:
                raise DataError(f"{data.source}: {len(empty)} row(s) without a label at "
                                f"{_shown(empty)}")
        if unknown:
            parts = [f"{label!r} ({_shown(where)})" for label, where in unknown.items()]
            raise DataError(f"{data.source}: label(s) the model was not trained on: "
                            f"{'; '.join(parts)}; its classes are {_shown(self.classes)}")
        if self.kind == "binary":
            return y.astype(np.float32)[:, None]
        if self.kind == "multiclass":
            return y.astype(np.int32)
        return y

    def counts(self, y):
        """Examples per class of encoded targets ``y``."""
        if self.kind == "multilabel":
            return y.sum(axis=0).astype(np.int64)
        return np.bincount(np.asarray(y).reshape(-1).astype(np.int64),
                           minlength=len(self.classes))

    def to_dict(self):
        return {"kind": self.kind, "classes": self.classes, "separator": self.separator}

    @classmethod
    def from_dict(cls, config):
        return cls(config["kind"], config["classes"], config.get("separator", "|"))
