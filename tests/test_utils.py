"""fastseq.utils: the Keras 3 progress bar, to_categorical, set_random_seed."""
import io
import re
import sys

import numpy as np
import pytest

from fastseq import utils
from fastseq.utils import Progbar

BAR = "\u2501" * 20
TIME = r"\d+s \d+(us|ms|s)/step"


class FakeTTY(io.StringIO):
    encoding = "utf-8"

    def isatty(self):
        return True


def test_verbose1_not_a_tty_prints_only_the_final_line(capsys):
    bar = Progbar(5, interval=0.0)
    for step in range(1, 5):
        bar.update(step, [("acc", 0.5), ("loss", 1.0)])
    assert capsys.readouterr().out == ""  # no cursor to move back: nothing until the end
    bar.update(5, [("acc", 0.8), ("loss", 0.4)])
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    assert re.fullmatch(rf"5/5 {BAR} {TIME} - acc: 0\.8000 - loss: 0\.4000\n", out), out


def test_verbose1_tty_redraws_in_place(monkeypatch):
    fake = FakeTTY()
    monkeypatch.setattr(sys, "stdout", fake)
    bar = Progbar(391, interval=0.0)
    bar.update(1, [("loss", 2.0)])
    bar.update(391, [("loss", 0.5)])
    out = fake.getvalue()
    lines = out.split("\r")[1:]
    assert len(lines) == 2
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    assert re.fullmatch(r"  1/391 \u2501{20} \d+s \d+(us|ms|s)/step - loss: 2\.0000",
                        plain[0]), plain[0]
    assert re.fullmatch(rf"391/391 {BAR} {TIME} - loss: 0\.5000\s*\n", plain[1]), plain[1]
    assert "\x1b[32m" in lines[1]  # the done part in green, as Keras


def test_averaging_of_stateless_metrics_and_stateful(capsys):
    bar = Progbar(3, stateful_metrics=["acc"])
    bar.update(1, [("loss", 1.0), ("acc", 0.1)])
    bar.update(2, [("loss", 3.0), ("acc", 0.9)])
    bar.update(3, finalize=True)
    out = capsys.readouterr().out
    # loss averaged over the steps (weighted by steps), acc shown as last given
    assert "- loss: 2.0000 - acc: 0.9000" in out


def test_verbose2_and_small_values(capsys):
    bar = Progbar(10, verbose=2)
    bar.update(5, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    bar.update(10, [("loss", 1e-5)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"10/10 - \d+s - \d+(us|ms|s)/step - loss: 1\.0000e-05\n", out), out


def test_verbose0_and_unknown_target_and_add(capsys):
    bar = Progbar(4, verbose=0)
    bar.update(4, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    bar = Progbar(None)
    bar.add(2, [("loss", 1.0)])
    bar.add(1, [("loss", 0.5)])
    bar.update(3, [("loss", 0.25)], finalize=True)
    out = capsys.readouterr().out
    assert re.fullmatch(r"\s+3/Unknown \d+s \d+(us|ms|s)/step - loss: 0\.2500\n", out), out


def test_bad_arguments():
    with pytest.raises(ValueError, match="verbose"):
        Progbar(3, verbose=3)
    with pytest.raises(ValueError, match="target"):
        Progbar(-1)


def test_to_categorical_and_seed():
    np.testing.assert_array_equal(utils.to_categorical([0, 2, 1], 3),
                                  np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert utils.to_categorical(np.array([[1], [0]])).shape == (2, 2)
    with pytest.raises(ValueError, match="num_classes"):
        utils.to_categorical([3], 2)
    utils.set_random_seed(7)
    a = utils.get_rng().standard_normal(3)
    utils.set_random_seed(7)
    np.testing.assert_array_equal(a, utils.get_rng().standard_normal(3))
