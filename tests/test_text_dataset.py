"""text_dataset_from_directory: Keras 3's file order, labels, split and shuffling on a small
aclImdb-shaped tree built in a temporary folder."""
import os

import numpy as np
import pytest

from fastseq.utils import BatchSource, Sequence, text_dataset_from_directory


@pytest.fixture
def reviews(tmp_path):
    """neg/ (3 files), pos/ (4 files, one in a sub-folder), a .md file, a hidden folder."""
    root = tmp_path / "train"
    texts = {"neg/0_1.txt": "bad film", "neg/1_2.txt": "awful", "neg/2_1.txt": "boring plot",
             "pos/0_9.txt": "great", "pos/1_8.txt": "loved it", "pos/deep/2_10.txt": "superb",
             "pos/3_7.txt": "fine acting", "pos/notes.md": "not a review",
             ".hidden/x.txt": "ignored"}
    for name, text in texts.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def everything(ds):
    texts, labels = [], []
    for i in range(len(ds)):
        batch = ds[i]
        texts += list(batch[0])
        labels += list(batch[1])
    return texts, labels


SORTED_TEXTS = ["bad film", "awful", "boring plot", "great", "loved it", "fine acting",
                "superb"]


def test_inferred_labels_in_sorted_order(reviews, capsys):
    ds = text_dataset_from_directory(reviews, shuffle=False, batch_size=3)
    assert isinstance(ds, Sequence)
    assert capsys.readouterr().out == "Found 7 files belonging to 2 classes.\n"
    assert ds.class_names == ["neg", "pos"] and len(ds) == 3
    texts, labels = ds[0]
    assert texts.dtype == object and labels.dtype == np.int32
    # sorted by folder, then files (a sub-folder after its parent's files: os.walk order)
    assert everything(ds) == (SORTED_TEXTS, [0, 0, 0, 1, 1, 1, 1])


def test_class_names_order_and_label_modes(reviews):
    ds = text_dataset_from_directory(reviews, class_names=["pos", "neg"], shuffle=False,
                                     label_mode="categorical", verbose=False)
    texts, labels = ds[0]
    assert texts[0] == "great"
    np.testing.assert_array_equal(labels[[0, -1]], [[1, 0], [0, 1]])
    assert labels.dtype == np.float32
    ds = text_dataset_from_directory(reviews, shuffle=False, label_mode="binary",
                                     verbose=False)
    assert ds[0][1].shape == (7, 1) and ds[0][1].dtype == np.float32
    only = text_dataset_from_directory(reviews, class_names=["pos"], shuffle=False,
                                       verbose=False)
    assert len(everything(only)[0]) == 4


def test_no_labels_and_explicit_labels(reviews):
    ds = text_dataset_from_directory(reviews, labels=None, shuffle=False, verbose=False)
    texts = ds[0]
    # the whole tree, hidden folders too (Keras walks it without the class rules)
    assert isinstance(texts, np.ndarray) and list(texts) == ["ignored"] + SORTED_TEXTS
    ds = text_dataset_from_directory(reviews, labels=[4, 5, 5, 6, 6, 6, 7, 7], shuffle=False,
                                     verbose=False)
    assert ds.class_names == ["4", "5", "6", "7"]
    assert list(ds[0][1]) == [4, 5, 5, 6, 6, 6, 7, 7]


def test_shuffle_is_kerass_randomstate_permutation(reviews):
    ds = text_dataset_from_directory(reviews, seed=3, verbose=False)
    expected = list(zip(SORTED_TEXTS, [0, 0, 0, 1, 1, 1, 1]))
    np.random.RandomState(3).shuffle(expected)
    texts, labels = everything(ds)
    assert list(zip(texts, labels)) == [(t, lab) for t, lab in expected]
    ds.on_epoch_end()  # a new order each epoch, the same pairs
    again = everything(ds)
    assert sorted(zip(*again)) == sorted(expected)


def test_validation_split_subsets(reviews, capsys):
    train, val = text_dataset_from_directory(reviews, validation_split=0.3, subset="both",
                                             seed=11, batch_size=2)
    out = capsys.readouterr().out
    assert "Using 5 files for training." in out and "Using 2 files for validation." in out
    expected = list(SORTED_TEXTS)
    np.random.RandomState(11).shuffle(expected)
    train_texts, _ = everything(train)
    val_texts, _ = everything(val)
    assert train_texts == expected[:5] and val_texts == expected[5:]
    assert val.class_names == ["neg", "pos"]
    one = text_dataset_from_directory(reviews, validation_split=0.3, subset="validation",
                                      seed=11, verbose=False)
    assert everything(one)[0] == val_texts


def test_max_length_cuts_bytes(reviews):
    ds = text_dataset_from_directory(reviews, max_length=4, shuffle=False, verbose=False)
    assert list(ds[0][0][:2]) == ["bad ", "awfu"]


def test_follow_links(reviews, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "z.txt").write_text("linked review")
    os.symlink(extra, reviews / "pos" / "linked")
    plain = text_dataset_from_directory(reviews, shuffle=False, verbose=False)
    linked = text_dataset_from_directory(reviews, shuffle=False, follow_links=True,
                                         verbose=False)
    assert "linked review" not in everything(plain)[0]
    assert "linked review" in everything(linked)[0]


def test_unbatched_and_batch_source(reviews):
    ds = text_dataset_from_directory(reviews, batch_size=None, shuffle=False, verbose=False)
    assert len(ds) == 7 and ds[3] == ("great", 1)
    batched = text_dataset_from_directory(reviews, batch_size=4, shuffle=False, verbose=False)
    got = [len(x) for _, x, _, _ in BatchSource(batched, workers=2).epoch()]
    assert got == [4, 3]


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels="folders"), "`labels` argument should be a list/tuple"),
    (dict(labels=[0] * 8, class_names=["a"]), "only pass `class_names` if"),
    (dict(label_mode="sparse"), "`label_mode` argument must be one of"),
    (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
    (dict(validation_split=0.2), "If `subset` is set, `validation_split` must be set"),
    (dict(validation_split=0.2, subset="test", seed=1), "`subset` must be either"),
    (dict(validation_split=0.2, subset="training"), "you must provide a `seed`"),
    (dict(validation_split=0.1, subset="training", seed=1), "leaves 0 files for validation"),
    (dict(class_names=["pos", "other"]), "did not match the names of the subdirectories"),
    (dict(labels=[0, 1]), "lengths of `labels` to match the number of files"),
    (dict(class_names=["neg", "pos", "neg"], label_mode="binary"), "exactly 2"),
    (dict(batch_size=0), "`batch_size` must be None or an int >= 1"),
])
def test_bad_arguments_give_kerass_errors(reviews, kwargs, match):
    with pytest.raises(ValueError, match=match):
        text_dataset_from_directory(reviews, verbose=False, **kwargs)


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        text_dataset_from_directory(tmp_path / "nowhere")
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="No text files found in directory"):
        text_dataset_from_directory(tmp_path, verbose=False)
