"""A new user's first minutes: the submodules are attributes of the package (as in Keras),
every command line subcommand has a working --help, and the Keras 2 module paths that
tutorials import from exist."""
import importlib
import subprocess
import sys
import textwrap
import types

import pytest

SUBMODULES = ["layers", "models", "optimizers", "losses", "metrics", "callbacks",
              "preprocessing", "datasets", "utils", "kernels", "backend", "activations",
              "initializers", "saving"]


def _python(code):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---------------------------------------------------------------- submodules as attributes
def test_submodules_are_attributes_after_import_fastseq():
    # in a fresh interpreter: nothing has imported the submodules by name yet
    out = _python(f"""
        import sys, types
        import fastseq
        assert fastseq.layers.Dense is sys.modules["fastseq.layers"].Dense
        for name in {SUBMODULES!r}:
            module = getattr(fastseq, name)
            assert isinstance(module, types.ModuleType), name
            assert module is sys.modules["fastseq." + name], name
            assert name in dir(fastseq), name
        print("ok")
    """)
    assert out.strip() == "ok"


def test_import_fastseq_kernels_stays_light():
    out = _python("""
        import sys
        import fastseq.kernels
        import fastseq
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[:2] in (["fastseq", "models"], ["fastseq", "layers"],
                                               ["fastseq", "saving"], ["fastseq", "datasets"],
                                               ["fastseq", "preprocessing"]))
        print(heavy)
    """)
    assert out.strip() == "[]"


def test_the_lazy_names_still_work_and_unknown_names_fail():
    import fastseq
    from fastseq import _device, models

    assert fastseq.Sequential is models.Sequential
    for name in ("set_device", "device", "get_device"):
        assert getattr(fastseq, name) is getattr(_device, name)
        assert name in dir(fastseq)
    assert {"Sequential", "set_num_threads", "__version__"} <= set(dir(fastseq))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fastseq.nope
    assert not hasattr(fastseq, "distributed_nope")
    from fastseq import layers

    assert isinstance(layers, types.ModuleType)


# ---------------------------------------------------------------- --help of every subcommand
def _subcommands():
    import argparse

    from fastseq.__main__ import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return sorted(actions[0].choices)


def test_the_parser_has_the_documented_subcommands():
    assert {"bench", "train"} <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_help(command, capsys):
    from fastseq.__main__ import main

    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert out.startswith(f"usage: python -m fastseq {command}"), out
    assert "unrecognized" not in out + err
    with pytest.raises(SystemExit) as info:
        main([command, "-h"])
    assert info.value.code == 0 and capsys.readouterr().out == out


def test_train_help_from_the_shell():
    out = subprocess.run([sys.executable, "-m", "fastseq", "train", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m fastseq train")
    assert "--model" in out.stdout and "--epochs" in out.stdout and out.stderr == ""


def test_train_errors_still_exit_2(capsys):
    from fastseq.__main__ import main

    for argv in (["train"], ["train", "imdb"], ["train", "imdb", "--model", "gru"],
                 ["train", "imdb", "--model", "lstm", "--epochs", "0"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert "usage: python -m fastseq train" in capsys.readouterr().err


# ---------------------------------------------------------------- Keras 2 module paths
KERAS2_PATHS = [
    # fastseq module (keras module with "keras" -> "fastseq"), the names tutorials import
    ("fastseq.layers.embeddings", ["Embedding"]),
    ("fastseq.layers.recurrent", ["LSTM"]),
    ("fastseq.layers.core", ["Dense", "Dropout", "Activation", "Flatten"]),
    ("fastseq.layers.convolutional", ["Conv1D", "Convolution1D", "MaxPooling1D",
                                      "GlobalMaxPooling1D", "GlobalAveragePooling1D"]),
    ("fastseq.layers.pooling", ["MaxPooling1D", "GlobalMaxPooling1D",
                                "GlobalAveragePooling1D"]),
    ("fastseq.preprocessing.text", ["Tokenizer", "one_hot", "text_to_word_sequence",
                                    "hashing_trick"]),
    ("fastseq.preprocessing.sequence", ["pad_sequences"]),
    ("fastseq.utils.np_utils", ["to_categorical"]),
]


@pytest.mark.parametrize("module, names", KERAS2_PATHS)
def test_keras2_module_paths(module, names):
    exec(f"from {module} import {', '.join(names)}", {})
    mod = importlib.import_module(module)
    public = importlib.import_module(module.rsplit(".", 1)[0])
    for name in names:  # the same objects as the package's public names
        assert getattr(mod, name) is getattr(public, name), (module, name)


def test_keras2_embeddings_is_an_alias_of_embedding():
    from fastseq.layers import embedding, embeddings

    assert embeddings.__all__ == embedding.__all__
    for name in embedding.__all__:
        assert getattr(embeddings, name) is getattr(embedding, name)


def test_a_keras2_tutorial_runs_with_only_the_package_renamed():
    import numpy as np

    tutorial = """
from keras.models import Sequential
from keras.layers.embeddings import Embedding
from keras.layers.recurrent import LSTM
from keras.layers.core import Dense, Dropout
from keras.preprocessing.text import Tokenizer
from keras.preprocessing.sequence import pad_sequences

tokenizer = Tokenizer(num_words=50)
tokenizer.fit_on_texts(["a good film", "a bad film", "good good", "bad bad"])
x = pad_sequences(tokenizer.texts_to_sequences(["a good film", "bad bad"]), maxlen=4)
model = Sequential()
model.add(Embedding(50, 8, input_length=4))
model.add(LSTM(4))
model.add(Dropout(0.2))
model.add(Dense(1, activation="sigmoid"))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x, [1, 0], epochs=1, verbose=0)
prediction = model.predict(x, verbose=0)
"""
    scope = {}
    exec(tutorial.replace("from keras.", "from fastseq."), scope)
    assert scope["prediction"].shape == (2, 1) and np.isfinite(scope["prediction"]).all()


def test_train_through_the_entry_point(capsys):
    import os

    data = os.environ.get("FASTSEQ_DATA")
    if not data or not os.path.isdir(data):
        pytest.skip("needs the IMDB data: set FASTSEQ_DATA")
    from fastseq.__main__ import main

    assert main(["train", "imdb", "--model", "flatten", "--epochs", "1", "--data", data,
                 "--limit", "30", "--verbose", "0"]) == 0
    assert "Test accuracy: " in capsys.readouterr().out
