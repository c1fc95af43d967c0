"""Each example script (one per seed model) and ``python -m fastseq train`` run on a small
slice of the real data (few reviews, short sequences, one epoch); the tests check what they
print. One test trains the small Flatten model on 2,500 reviews and checks it learns."""
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

from fastseq.backend import clear_session

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = os.environ.get("FASTSEQ_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="FASTSEQ_DATA is not set")


def run_example(name, argv, capsys):
    """Import examples/<name>.py and run its main(argv); returns (exit code, stdout)."""
    clear_session()  # each script's layers get Keras's first names ('lstm', 'dropout')
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        code = module.main(argv)
    finally:
        sys.path.remove(str(EXAMPLES))
    return code, capsys.readouterr().out


def accuracy(out, label="Test accuracy"):
    match = re.search(rf"{label}: ([0-9.]+)", out)
    assert match, f"no '{label}' in the output:\n{out}"
    value = float(match.group(1))
    assert 0.0 <= value <= 1.0
    return value


def seconds_per_epoch(out, epochs):
    """The mean seconds per epoch; the examples also list each epoch's: one per epoch."""
    match = re.search(r"Seconds per epoch: ([0-9.]+)(?: \(([^)]*)\))?", out)
    assert match, out
    if match.group(2) is not None:
        assert len(match.group(2).split(", ")) == epochs, out
    return float(match.group(1))


QUICK = ["--limit", "60", "--epochs", "1", "--verbose", "0"]


def test_embedding_output(capsys):
    code, out = run_example("embedding_output", [], capsys)
    assert code == 0
    assert "Found 5 unique tokens." in out
    assert "Shape of data tensor: (2, 6)" in out
    assert "[[0 0 1 2 3 4]\n [0 1 2 5 3 4]]" in out
    assert "'This is not a text' --> [0 1 2 5 3 4]" in out
    assert "output_array shape: (2, 6, 3)" in out
    assert "output rows equal the weight rows of the word indices: True" in out


@needs_data
def test_imdb_lstm(capsys):
    code, out = run_example("imdb_lstm", ["--data", DATA, "--maxlen", "20"] + QUICK, capsys)
    assert code == 0
    assert "lstm (LSTM)" in out and "(None, 100)" in out  # the summary
    accuracy(out)
    seconds_per_epoch(out, 1)


@needs_data
def test_imdb_bidirectional_lstm(capsys):
    code, out = run_example("imdb_bidirectional_lstm", ["--data", DATA, "--maxlen", "20"] + QUICK,
                            capsys)
    assert code == 0
    assert "bidirectional (Bidirectional" in out and "(None, 128)" in out  # the summary
    accuracy(out)
    seconds_per_epoch(out, 1)


@needs_data
def test_imdb_functional_two_inputs(capsys):
    code, out = run_example("imdb_functional_two_inputs",
                            ["--data", DATA, "--maxlen", "20"] + QUICK, capsys)
    assert code == 0
    assert "Connected to" in out and "concatenate[0][0]" in out  # the functional summary
    accuracy(out)
    seconds_per_epoch(out, 1)
    assert re.search(r"Test rating MAE: [0-9.]+ stars", out)


@needs_data
def test_imdb_text_vectorization_gru(capsys):
    code, out = run_example("imdb_text_vectorization_gru",
                            ["--data", DATA, "--maxlen", "20"] + QUICK, capsys)
    assert code == 0
    assert "gru (GRU)" in out and "Adapted the vocabulary" in out
    accuracy(out)
    seconds_per_epoch(out, 1)
    scores = re.findall(r"^([0-9.]+)  ", out, flags=re.M)  # the end-to-end model on raw text
    assert len(scores) == 2 and all(0.0 <= float(s) <= 1.0 for s in scores)


@needs_data
def test_imdb_flatten(capsys, tmp_path):
    argv = ["--data", DATA, "--plots", str(tmp_path / "c")] + QUICK
    code, out = run_example("imdb_flatten", argv, capsys)
    assert code == 0
    accuracy(out, "Final validation accuracy")
    accuracy(out)
    seconds_per_epoch(out, 1)
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "c_accuracy.png").is_file() and (tmp_path / "c_loss.png").is_file()
    else:
        assert "matplotlib is not installed" in out


@needs_data
def test_imdb_flatten_learns(capsys, tmp_path):
    code, out = run_example("imdb_flatten", ["--data", DATA, "--limit", "2500", "--epochs", "5",
                                             "--maxlen", "50", "--verbose", "0",
                                             "--plots", str(tmp_path / "c")], capsys)
    assert code == 0
    # chance is 0.50 (balanced; 2,500 test reviews: one standard error is 0.01)
    assert accuracy(out) > 0.55


@needs_data
def test_imdb_glove(capsys, tmp_path):
    code, out = run_example("imdb_glove", ["--data", DATA, "--maxlen", "20", "--training-samples",
                                           "40", "--validation-samples", "40",
                                           "--plots", str(tmp_path / "g")] + QUICK, capsys)
    assert code == 0
    assert "Found 40000 word vectors" in out
    assert "Shape of data tensor: (" in out and ", 20)" in out
    assert "Embedding weights unchanged by training (frozen): True" in out
    accuracy(out)


@needs_data
def test_imdb_lstm_dropout(capsys):
    code, out = run_example("imdb_lstm_dropout", ["--data", DATA, "--maxlen", "10"] + QUICK, capsys)
    assert code == 0
    assert "dropout (Dropout)" in out
    accuracy(out)


@needs_data
def test_imdb_conv1d(capsys):
    code, out = run_example("imdb_conv1d", ["--data", DATA, "--maxlen", "24"] + QUICK, capsys)
    assert code == 0
    assert "global_average_pooling1d" in out
    accuracy(out)


def test_examples_need_data(capsys, monkeypatch):
    monkeypatch.delenv("FASTSEQ_DATA", raising=False)
    with pytest.raises(SystemExit, match="pass --data DIR or set FASTSEQ_DATA"):
        run_example("imdb_lstm", [], capsys)


# -- python -m fastseq train ------------------------------------------------------------------

@needs_data
def test_cli_train(capsys):
    from fastseq._cli_train import main
    code = main(["imdb", "--model", "flatten", "--epochs", "1", "--data", DATA, "--limit", "60",
                 "--verbose", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "IMDB: " in out and "20 words each" in out
    accuracy(out)
    seconds_per_epoch(out, 1)
    # the lead's entry point hands over what follows "train"; "train" itself is tolerated
    assert main(["train", "imdb", "--model", "lstm", "--epochs", "1", "--data", DATA,
                 "--limit", "30", "--maxlen", "8", "--verbose", "0"]) == 0
    assert main(["imdb", "--model", "conv1d", "--epochs", "1", "--data", DATA,
                 "--limit", "30", "--maxlen", "24", "--verbose", "0"]) == 0


def test_cli_train_errors(capsys, monkeypatch, tmp_path):
    from fastseq._cli_train import main
    monkeypatch.delenv("FASTSEQ_DATA", raising=False)
    monkeypatch.setenv("FASTSEQ_OFFLINE", "1")
    monkeypatch.setenv("FASTSEQ_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["imdb", "--model", "lstm"]) == 2
    assert "The IMDB dataset not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["imdb", "--model", "gru"])
    with pytest.raises(SystemExit):
        main(["imdb", "--model", "lstm", "--epochs", "0"])
