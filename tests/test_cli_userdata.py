"""``python -m fastseq train --data / evaluate / predict`` on the user's own texts (issue 17):
each format and label kind end to end on small files built here, bad input, the metrics
against hand-computed cases, Ctrl-C, and a slice of the real IMDB reviews."""
import csv
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from fastseq import _cli_userdata
from fastseq.__main__ import main
from fastseq._cli_data import DataError, LabelMap, read_texts
from fastseq._cli_metrics import (
    classification_metrics,
    confusion_matrix,
    format_report,
    multilabel_metrics,
)

DATA = os.environ.get("FASTSEQ_DATA")
IMDB_CSV = os.path.join(DATA, "imdb_reviews.csv.gz") if DATA else None
needs_imdb = pytest.mark.skipif(not IMDB_CSV or not os.path.exists(IMDB_CSV),
                                reason="needs $FASTSEQ_DATA/imdb_reviews.csv.gz")

KEYWORDS = {"sport": "goal match team score", "politics": "vote election law senate",
            "tech": "code chip software laptop", "food": "recipe bake salt dinner"}
FILLER = "the a of and today people said very new it this that".split()
QUICK = ["--epochs", "2", "--maxlen", "10", "--embedding-dim", "8", "--units", "8",
         "--verbose", "0"]


def _topic_rows(n, topics, seed=0):
    """(text, topic) rows: filler words plus two keywords of the row's topic."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = rng.choices(FILLER, k=5) + rng.choices(KEYWORDS[topic].split(), k=2)
        rng.shuffle(words)
        rows.append((" ".join(words), topic))
    return rows


def _write_csv(path, header, rows, delimiter=",", opener=open):
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return str(path)


def _train(argv, capsys=None):
    code = main(["train", *argv])
    out = capsys.readouterr() if capsys else None
    return code, out


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# -------------------------------------------------------------------------- metrics (NumPy)
def test_metrics_match_scikit_learns_documented_example():
    # scikit-learn's classification_report docstring: y_true = [0, 1, 2, 2, 2],
    # y_pred = [0, 0, 2, 2, 1] -> class 0: 0.50 1.00 0.67, class 1: 0.00 0.00 0.00,
    # class 2: 1.00 0.67 0.80; accuracy 0.60; macro avg 0.50 0.56 0.49; weighted avg
    # 0.70 0.60 0.61
    m = classification_metrics([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6)
    got = [[m["per_class"][c][k] for k in ("precision", "recall", "f1")] for c in "abc"]
    np.testing.assert_allclose(got, [[0.5, 1, 2 / 3], [0, 0, 0], [1, 2 / 3, 0.8]])
    assert [m["per_class"][c]["support"] for c in "abc"] == [1, 1, 3]
    np.testing.assert_allclose([m["macro avg"][k] for k in ("precision", "recall", "f1")],
                               [0.5, 5 / 9, (2 / 3 + 0.8) / 3])
    np.testing.assert_allclose([m["weighted avg"][k] for k in ("precision", "recall", "f1")],
                               [0.7, 0.6, (2 / 3 + 3 * 0.8) / 5])
    assert m["confusion_matrix"]["matrix"] == [[1, 0, 0], [1, 0, 0], [0, 1, 2]]
    report = format_report(m)
    assert "       a     0.500     1.000     0.667         1" in report
    assert "accuracy     0.600" in report


def test_confusion_matrix_and_zero_division():
    # scikit-learn's confusion_matrix docstring: [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
    y_true, y_pred = [2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
    # a class never predicted and never present: 0, not NaN
    m = classification_metrics([0, 0], [0, 0], ["x", "y"])
    assert m["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)


def test_multilabel_metrics_by_hand():
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    m = multilabel_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(2 / 4)  # rows 1 and 3 exactly right
    assert m["hamming_accuracy"] == pytest.approx(9 / 12)
    # a: tp 2; b: tp 1, fn 1; c: tp 1, fp 1, fn 1
    assert m["confusion_matrix"]["a"] == [[2, 0], [0, 2]]
    assert m["confusion_matrix"]["b"] == [[2, 0], [1, 1]]
    assert m["confusion_matrix"]["c"] == [[1, 1], [1, 1]]
    assert m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["f1"] == pytest.approx(0.5)
    # micro: tp 4, fp 1, fn 2
    assert m["micro avg"]["precision"] == pytest.approx(4 / 5)
    assert m["micro avg"]["recall"] == pytest.approx(4 / 6)


def test_balanced_class_weight_is_scikit_learns():
    # n / (classes * count): 8 samples, counts 6 and 2 -> 8/12, 8/4
    assert _cli_userdata.balanced_class_weight([6, 2]) == pytest.approx({0: 2 / 3, 1: 2.0})


# -------------------------------------------------------------------------- reading + labels
def test_label_maps(tmp_path):
    ints = _write_csv(tmp_path / "i.csv", ["text", "label"],
                      [("a", "10"), ("b", "2"), ("c", "1"), ("d", "2")])
    labels = LabelMap.from_labels(read_texts(ints))
    assert labels.kind == "multiclass" and labels.classes == [1, 2, 10]  # numeric order
    assert labels.encode(read_texts(ints)).tolist() == [2, 1, 0, 1]
    listed = _write_csv(tmp_path / "l.csv", ["text", "label"],
                        [("a", '["x", "y"]'), ("b", '["y"]'), ("c", "[]")])
    labels = LabelMap.from_labels(read_texts(listed))
    assert labels.kind == "multilabel" and labels.classes == ["x", "y"]
    assert labels.encode(read_texts(listed)).tolist() == [[1, 1], [0, 1], [0, 0]]
    joined = _write_csv(tmp_path / "j.csv", ["text", "label"], [("a", "x|z"), ("b", "y")])
    labels = LabelMap.from_labels(read_texts(joined), kind="multilabel")
    assert labels.classes == ["x", "y", "z"]
    bad = read_texts(_write_csv(tmp_path / "u.csv", ["text", "label"], [("a", "q")]))
    with pytest.raises(DataError, match=r"not trained on: 'q' \(line 2\)"):
        LabelMap(labels.kind, labels.classes).encode(bad)


def test_csv_quoting_and_line_numbers(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"two\nlines, a comma",a\n\nplain,b\n', encoding="utf-8")
    data = read_texts(str(path))
    assert data.texts == ["two\nlines, a comma", "plain"]
    assert data.where == ["line 2", "line 5"]


# -------------------------------------------------------------------------- end to end
def _formats(tmp_path):
    """One (data path, expected label kind, classes) per format and label kind."""
    binary = _topic_rows(40, ["sport", "politics"])
    multi = _topic_rows(60, ["sport", "politics", "tech"], seed=1)
    tree = tmp_path / "tree"
    for i, (text, topic) in enumerate(binary):
        (tree / topic).mkdir(parents=True, exist_ok=True)
        (tree / topic / f"{i}.txt").write_text(text, encoding="utf-8")
    rng = random.Random(2)
    records = []
    for i in range(60):
        topics = rng.sample(["sport", "tech", "food"], k=1 + i % 2)
        words = rng.choices(FILLER, k=4) + [w for t in topics for w in
                                            rng.choices(KEYWORDS[t].split(), k=2)]
        records.append({"id": i, "body": " ".join(words), "tags": topics})
    ints = {"sport": 0, "politics": 1, "tech": 2}
    return {
        "csv": (_write_csv(tmp_path / "b.csv", ["text", "label"], binary), [],
                "binary", ["politics", "sport"]),
        "tsv": (_write_csv(tmp_path / "m.tsv", ["text", "label"], multi, delimiter="\t"), [],
                "multiclass", ["politics", "sport", "tech"]),
        "csv.gz": (_write_csv(tmp_path / "m.csv.gz", ["label", "text"],
                              [(ints[t], x) for x, t in multi], opener=gzip.open), [],
                   "multiclass", [0, 1, 2]),
        "jsonl": (_write_jsonl(tmp_path / "ml.jsonl", records),
                  ["--text-column", "body", "--label-column", "tags"],
                  "multilabel", ["food", "sport", "tech"]),
        "folder": (str(tree), [], "binary", ["politics", "sport"]),
    }


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz", "jsonl", "folder"])
def test_train_each_format_and_label_kind(tmp_path, capsys, fmt):
    data, extra, kind, classes = _formats(tmp_path)[fmt]
    out = tmp_path / "run"
    code, printed = _train(["--data", data, *extra, "--out", str(out), "--model", "conv1d",
                            *QUICK], capsys)
    assert code == 0, printed.err
    assert sorted(os.listdir(out)) == sorted(_cli_userdata.FILES)
    assert _json(out / "labels.json")["kind"] == kind
    assert _json(out / "labels.json")["classes"] == classes
    metrics = _json(out / "metrics.json")
    assert set(metrics["per_class"]) == {str(c) for c in classes}
    if kind == "multilabel":
        assert set(metrics["confusion_matrix"]) == {str(c) for c in classes}
    else:
        matrix = np.array(metrics["confusion_matrix"]["matrix"])
        assert matrix.shape == (len(classes), len(classes))
        assert matrix.sum() == metrics["samples"]
        assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    with open(out / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert len(history) == 2 and {"loss", "val_loss", "accuracy"} <= set(history[0])
    with open(out / "training.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path).count("run") == 1
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


@pytest.mark.parametrize("model", ["lstm", "bilstm", "gru", "flatten"])
def test_every_architecture_learns_keywords(tmp_path, capsys, model):
    rows = _topic_rows(200, ["sport", "politics", "tech", "food"])
    data = _write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    out = tmp_path / model
    code, printed = _train(["--data", data, "--out", str(out), "--model", model,
                            "--epochs", "12", "--patience", "12", "--maxlen", "7",
                            "--embedding-dim", "16", "--units", "16", "--verbose", "0",
                            "--learning-rate", "0.01", "--class-weight", "balanced"], capsys)
    assert code == 0, printed.err
    # every text holds two keywords of its topic: far above chance (0.25)
    assert _json(out / "metrics.json")["accuracy"] >= 0.9, printed.out


# -------------------------------------------------------------------------- evaluate / predict
def test_evaluate_and_predict_round_trips(tmp_path, capsys):
    rows = _topic_rows(120, ["sport", "politics", "tech"])
    train_csv = _write_csv(tmp_path / "train.csv", ["text", "label"], rows[:90])
    val_csv = _write_csv(tmp_path / "val.csv", ["text", "label"], rows[90:])
    out = tmp_path / "run"
    code, printed = _train(["--data", train_csv, "--validation-data", val_csv, "--out",
                            str(out), "--model", "conv1d", *QUICK], capsys)
    assert code == 0, printed.err
    trained = _json(out / "metrics.json")

    report = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(out), "--data", val_csv, "--out",
                 str(report)]) == 0
    printed = capsys.readouterr()
    assert "precision" in printed.out and "accuracy" in printed.out
    evaluated = _json(report)
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    assert evaluated["confusion_matrix"] == trained["confusion_matrix"]

    predictions = tmp_path / "p.csv"
    assert main(["predict", "--model", str(out), "--data", val_csv, "--out",
                 str(predictions)]) == 0
    assert "texts/s" in capsys.readouterr().err
    with open(predictions) as f:
        predicted = list(csv.DictReader(f))
    assert list(predicted[0]) == ["label", "score", "p_politics", "p_sport", "p_tech"]
    right = sum(p["label"] == t for p, (_, t) in zip(predicted, rows[90:]))
    assert right / len(predicted) == pytest.approx(trained["accuracy"])
    for p in predicted:
        probabilities = [float(p[f"p_{c}"]) for c in ("politics", "sport", "tech")]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
        assert float(p["score"]) == pytest.approx(max(probabilities), abs=1e-6)

    # stdin to stdout, one text per line, in a fresh process
    texts = "\n".join(text for text, _ in rows[90:]) + "\n"
    proc = subprocess.run([sys.executable, "-m", "fastseq", "predict", "--model", str(out)],
                          input=texts, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "texts/s" in proc.stderr
    with open(predictions) as f:
        assert proc.stdout == f.read()

    wrong = _write_csv(tmp_path / "w.csv", ["text", "label"], [("goal match", "cooking")])
    assert main(["evaluate", "--model", str(out), "--data", wrong]) == 2
    assert "'cooking'" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path), "--data", val_csv]) == 2
    assert "expected a folder written by" in capsys.readouterr().err


def test_binary_predictions_and_threshold(tmp_path, capsys, monkeypatch):
    rows = _topic_rows(60, ["sport", "politics"])
    data = _write_csv(tmp_path / "b.csv", ["text", "label"], rows)
    out = tmp_path / "run"
    with monkeypatch.context() as without:  # no matplotlib: a message, the rest written
        for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
            without.setitem(sys.modules, name, None)
        code, printed = _train(["--data", data, "--out", str(out), "--model", "flatten",
                                *QUICK], capsys)
    assert code == 0, printed.err
    assert "training.png not written" in printed.err and "matplotlib" in printed.err
    assert sorted(os.listdir(out)) == sorted(set(_cli_userdata.FILES) - {"training.png"})
    texts = tmp_path / "texts.txt"
    texts.write_text("goal match team\n\nvote senate law\n", encoding="utf-8")
    for threshold, expected in (("0", {"sport"}), ("1.01", {"politics"})):
        result = tmp_path / f"p{threshold}.csv"
        assert main(["predict", "--model", str(out), "--data", str(texts), "--out",
                     str(result), "--threshold", threshold]) == 0
        with open(result) as f:
            predicted = list(csv.DictReader(f))
        assert len(predicted) == 2  # the blank line is skipped
        assert {p["label"] for p in predicted} == expected
        for p in predicted:  # score: the probability of the label given
            p_sport = float(p["p_sport"])
            assert float(p["score"]) == pytest.approx(
                p_sport if p["label"] == "sport" else 1 - p_sport, abs=1e-6)


# -------------------------------------------------------------------------- bad input
def _nothing_written(tmp_path, before):
    assert sorted(os.listdir(tmp_path)) == before


def test_bad_input_is_reported_before_training(tmp_path, capsys):
    rows = _topic_rows(20, ["sport", "politics"])
    good = _write_csv(tmp_path / "good.csv", ["text", "label"], rows)
    cases = [
        (_write_csv(tmp_path / "cols.csv", ["review", "sentiment"], rows), [],
         "no columns 'text', 'label'; the columns found are 'review', 'sentiment'"),
        (good, ["--label-column", "stars"], "no column 'stars'; the columns found are "
                                            "'text', 'label'"),
        (_write_csv(tmp_path / "empty.csv", ["text", "label"],
                    rows[:3] + [("", "sport"), ("  ", "politics")] + rows[3:]), [],
         r"2 empty text\(s\) at line 5, line 6"),
        (_write_csv(tmp_path / "one.csv", ["text", "label"], [(t, "sport") for t, _ in rows]),
         [], "a single class \\('sport'\\) in 20 rows"),
        (_write_csv(tmp_path / "nolabel.csv", ["text", "label"], rows[:4] + [("goal", "")]),
         [], r"1 row\(s\) without a label at line 6"),
        (_write_jsonl(tmp_path / "j.jsonl", [{"text": "a", "label": 1}, {"txt": "b"}]), [],
         "line 2: no columns 'text', 'label'; the columns found are 'txt'"),
        (str(tmp_path / "missing.csv"), [], "no such file"),
        (_write_csv(tmp_path / "x.xlsx", ["text", "label"], rows), [],
         "cannot tell the format"),
    ]
    latin = tmp_path / "mixed.csv"
    latin.write_bytes("text,label\ncaf\u00e9 ok,a\n".encode() +
                      "na\u00efve caf\u00e9,b\n".encode("latin-1"))
    cases.append((str(latin), [], r"line 3, column 3: bytes ef are not valid utf-8"))
    before = sorted(os.listdir(tmp_path))
    for data, extra, message in cases:
        code, printed = _train(["--data", data, *extra, "--out", str(tmp_path / "run"),
                                *QUICK], capsys)
        assert code == 2, (data, printed)
        assert printed.err.startswith("error: "), printed.err
        assert re.search(message, printed.err), (message, printed.err)
        _nothing_written(tmp_path, before)
    # the latin-1 file reads with its encoding
    assert read_texts(str(latin), encoding="latin-1").texts[1] == "na\u00efve caf\u00e9"


def test_existing_out_is_refused_unless_overwrite(tmp_path, capsys):
    data = _write_csv(tmp_path / "b.csv", ["text", "label"],
                      _topic_rows(30, ["sport", "politics"]))
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, printed = _train(["--data", data, "--out", str(out), *QUICK], capsys)
    assert code == 2 and "--out" in printed.err and "--overwrite" in printed.err
    assert os.listdir(out) == ["keep.txt"]
    code, printed = _train(["--data", data, "--out", str(out), "--overwrite", *QUICK], capsys)
    assert code == 0, printed.err
    assert sorted(os.listdir(out)) == sorted(_cli_userdata.FILES)
    assert sorted(os.listdir(tmp_path)) == ["b.csv", "run"]


def test_a_run_failing_late_leaves_nothing(tmp_path, capsys, monkeypatch):
    data = _write_csv(tmp_path / "b.csv", ["text", "label"],
                      _topic_rows(30, ["sport", "politics"]))

    def broken(history, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_cli_userdata, "plot_training", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _train(["--data", data, "--out", str(tmp_path / "run"), *QUICK])
    assert sorted(os.listdir(tmp_path)) == ["b.csv"]  # no run, no temporary folder


def test_command_line_errors_exit_2(tmp_path, capsys):
    for argv in (["train"], ["train", "--data", "x.csv"],
                 ["train", "--data", "x.csv", "--out", "o", "--epochs", "0"],
                 ["train", "--data", "x.csv", "--out", "o", "--model", "rnn"],
                 ["predict"], ["evaluate", "--model", "m"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
        assert "usage: python -m fastseq" in capsys.readouterr().err


# -------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_stops_after_the_batch_and_keeps_the_best_epoch(tmp_path, capsys, monkeypatch):
    data = _write_csv(tmp_path / "b.csv", ["text", "label"],
                      _topic_rows(64, ["sport", "politics"]))
    from fastseq.callbacks import Callback

    class CtrlC(Callback):
        """Ctrl-C during the third (last) batch of the third epoch."""
        def on_train_batch_begin(self, batch, logs=None):
            self.epoch_batches = getattr(self, "epoch_batches", 0) + 1
            if self.epoch_batches == 2 * 3 + 3:
                os.kill(os.getpid(), signal.SIGINT)

        def on_train_batch_end(self, batch, logs=None):
            self.last_batch = batch

    ctrl_c = CtrlC()
    building = _cli_userdata._training_callbacks
    monkeypatch.setattr(_cli_userdata, "_training_callbacks",
                        lambda *a: building(*a) + [ctrl_c])
    out = tmp_path / "run"
    # 64 rows, 20% validation: 51 training rows, batch 24 -> 3 batches per epoch
    code, printed = _train(["--data", data, "--out", str(out), "--batch-size", "24",
                            "--epochs", "6", "--patience", "6", "--maxlen", "8",
                            "--verbose", "0"], capsys)
    assert code == 130, printed.err
    assert "stopping after this batch" in printed.err
    assert ctrl_c.last_batch == 2  # the interrupted batch finished, no more
    metrics = _json(out / "metrics.json")
    assert metrics["model"]["interrupted"] and metrics["model"]["best_epoch"] <= 2
    assert metrics["model"]["epochs_run"] == 3  # the third one cut short, not validated
    with open(out / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 3
    assert sorted(os.listdir(out)) == sorted(_cli_userdata.FILES)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -------------------------------------------------------------------------- real IMDB reviews
@needs_imdb
def test_imdb_slice_reaches_the_stated_accuracy(tmp_path, capsys):
    with gzip.open(IMDB_CSV, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for _, r in zip(range(25000), reader)]  # the training split
    picked = random.Random(0).sample(rows, 1200)
    data = _write_csv(tmp_path / "imdb.csv", header, picked[:1000])
    test = _write_csv(tmp_path / "imdb_test.csv", header, picked[1000:])
    out = tmp_path / "run"
    code, printed = _train(["--data", data, "--out", str(out), "--model", "conv1d",
                            "--maxlen", "100", "--epochs", "8", "--verbose", "0"], capsys)
    assert code == 0, printed.err
    assert _json(out / "labels.json") == {"kind": "binary", "classes": [0, 1],
                                          "separator": "|"}
    report = tmp_path / "test.json"
    assert main(["evaluate", "--model", str(out), "--data", test, "--out", str(report)]) == 0
    accuracy = _json(report)["accuracy"]
    print(f"IMDB slice: validation {_json(out / 'metrics.json')['accuracy']:.3f}, "
          f"held-out {accuracy:.3f}")
    assert accuracy >= 0.65


def test_train_imdb_layout_still_dispatches(monkeypatch, capsys):
    called = []
    from fastseq import _cli_train

    monkeypatch.setattr(_cli_train, "main", lambda argv: called.append(argv) or 0)
    assert main(["train", "imdb", "--model", "lstm", "--epochs", "1"]) == 0
    assert called == [["imdb", "--model", "lstm", "--epochs", "1"]]


# -------------------------------------------------------------------------- --vectors
def test_pretrained_vectors_frozen_or_fine_tuned(tmp_path, capsys):
    from fastseq.models import load_model
    from fastseq.preprocessing.text import tokenizer_from_json

    rows = _topic_rows(40, ["sport", "politics"])
    data = _write_csv(tmp_path / "b.csv", ["text", "label"], rows)
    rng = np.random.default_rng(0)
    words = KEYWORDS["sport"].split() + KEYWORDS["politics"].split() + ["unused"]
    vectors = {w: rng.normal(size=5).round(4) for w in words}
    glove = tmp_path / "tiny.glove.txt"
    glove.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()))
    embeddings = {}
    for mode in ("frozen", "fine-tuned"):
        out = tmp_path / mode
        extra = ["--fine-tune-vectors"] if mode == "fine-tuned" else []
        code, printed = _train(["--data", data, "--out", str(out), "--vectors", str(glove),
                                "--model", "gru", "--learning-rate", "0.05", *extra, *QUICK],
                               capsys)
        assert code == 0, printed.err
        assert "8 of the" in printed.out and "5-d" in printed.out  # 8 keywords found
        with open(out / "tokenizer.json") as f:
            index = tokenizer_from_json(f.read()).word_index
        weights = load_model(str(out / "model.keras")).layers[0].get_weights()[0]
        assert weights.shape[1] == 5  # the vectors' size, not --embedding-dim
        embeddings[mode] = {w: weights[index[w]] for w in words[:-1]}
    for w in words[:-1]:
        np.testing.assert_allclose(embeddings["frozen"][w], vectors[w], rtol=1e-6)
    moved = [w for w in words[:-1]
             if not np.allclose(embeddings["fine-tuned"][w], vectors[w], atol=1e-4)]
    assert len(moved) == len(words) - 1
    code, printed = _train(["--data", data, "--out", str(tmp_path / "bad"), "--vectors",
                            str(tmp_path / "nope.txt"), *QUICK], capsys)
    assert code == 2 and "--vectors" in printed.err


# -------------------------------------------------------------------------- Keras 3 reads it
def test_keras3_loads_the_trained_model(tmp_path, capsys):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # as tests/test_keras_interop.py
    keras = pytest.importorskip("keras", reason="needs Keras 3 (pip install -e '.[keras]')")
    from fastseq.models import load_model
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import tokenizer_from_json

    rows = _topic_rows(60, ["sport", "politics", "tech"])
    data = _write_csv(tmp_path / "m.csv", ["text", "label"], rows)
    out = tmp_path / "run"
    assert _train(["--data", data, "--out", str(out), "--model", "bilstm", *QUICK],
                  capsys)[0] == 0
    with open(out / "tokenizer.json") as f:
        tokenizer = tokenizer_from_json(f.read())
    # short texts: the padding (masked by mask_zero) matters
    x = pad_sequences(tokenizer.texts_to_sequences(["goal", "vote senate", "new chip code"]),
                      maxlen=10)
    expected = load_model(str(out / "model.keras")).predict(x)
    got = keras.saving.load_model(str(out / "model.keras")).predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
