"""``text_dataset_from_directory``: the ``.txt`` files of a directory tree (one subfolder per
class, as the ``aclImdb`` layout) as a Sequence of ``(texts, labels)`` batches, with Keras 3's
file order, labels, shuffling and validation split.

    train, val = text_dataset_from_directory("aclImdb/train", validation_split=0.2,
                                             subset="both", seed=1337)
    texts, labels = train[0]          # an array of str (batch,), int32 labels (batch,)

The files are read when their batch is asked for (by the background workers in ``fit``).
"""
import os

import numpy as np

from .sequence_data import Sequence

__all__ = ["TextDataset", "text_dataset_from_directory"]

_FORMATS = (".txt",)


class TextDataset(Sequence):
    """The Sequence made by :func:`text_dataset_from_directory`: ``file_paths`` and their
    ``labels`` in batch order, ``class_names``. Batches are ``(texts, labels)`` (texts alone
    without labels); texts are an object array of str, decoded as UTF-8 (undecodable bytes
    replaced), cut to ``max_length`` bytes first as Keras's ``tf.strings.substr``."""

    def __init__(self, file_paths, labels, label_mode, class_names, batch_size, max_length,
                 shuffle=False, seed=None):
        super().__init__()
        self.file_paths = list(file_paths)
        self.labels = None if labels is None else np.asarray(labels)
        self.label_mode = label_mode
        self.class_names = class_names
        self.batch_size = batch_size
        self.max_length = max_length
        self.shuffle = shuffle
        self._rng = np.random.RandomState(seed) if shuffle else None
        self._order = np.arange(len(self.file_paths))

    def __len__(self):
        if self.batch_size is None:
            return len(self.file_paths)
        return -(-len(self.file_paths) // self.batch_size)

    def _read(self, path):
        with open(path, "rb") as f:
            raw = f.read() if self.max_length is None else f.read(self.max_length)
        return raw.decode("utf-8", errors="replace")

    def _encode(self, labels):
        if self.label_mode == "binary":
            return labels.astype("float32")[..., None]
        if self.label_mode == "categorical":
            return np.eye(len(self.class_names), dtype="float32")[labels]
        return labels.astype("int32")

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        index %= len(self)
        size = 1 if self.batch_size is None else self.batch_size
        rows = self._order[index * size:(index + 1) * size]
        texts = np.empty(len(rows), dtype=object)
        texts[:] = [self._read(self.file_paths[i]) for i in rows]
        if self.batch_size is None:
            texts = texts[0]
        if self.label_mode is None:
            return texts
        labels = self._encode(self.labels[rows])
        return texts, labels[0] if self.batch_size is None else labels

    def on_epoch_end(self):
        # Keras reshuffles the training files each epoch (tf.data's shuffle); here a new
        # permutation of the whole subset, from a generator seeded once.
        if self.shuffle:
            self._order = self._rng.permutation(len(self.file_paths))


def _check_validation_split(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: "
                         f"{validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", '
                         f"received: {subset}")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide "
                         "a `seed` argument, to make sure that there is no overlap between the "
                         "training and validation subset.")


def _valid_files(directory, follow_links):
    walk = os.walk(directory, followlinks=follow_links)
    for root, _, files in sorted(walk, key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(_FORMATS):
                yield root, name


def _index_directory(directory, labels, class_names, shuffle, seed, follow_links, verbose):
    """(file_paths, labels, class_names) as Keras's dataset_utils.index_directory."""
    if not os.path.isdir(directory):
        raise ValueError(f"text_dataset_from_directory: {directory!r} is not a directory")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the "
                                 "subdirectories of the target directory. Expected: "
                                 f"{subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)  # their order gives the labels
    else:
        subdirs = [""]  # the whole tree, unlabelled or with the labels given
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be "
                             "specified." if labels is None else
                             "When argument `labels` is specified, argument `class_names` "
                             "cannot be specified (the `class_names` will be the sorted list "
                             "of labels).")
    class_names = subdirs
    file_paths, inferred = [], []
    for label, subdir in enumerate(subdirs):
        class_dir = os.path.join(directory, subdir)
        for root, name in _valid_files(class_dir, follow_links):
            file_paths.append(os.path.join(root, name))
            inferred.append(label)
    if labels == "inferred":
        labels = np.asarray(inferred, dtype="int32")
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(file_paths):
            raise ValueError("Expected the lengths of `labels` to match the number of files in "
                             f"the target directory. len(labels) is {len(labels)} while we "
                             f"found {len(file_paths)} files in directory {directory}.")
        labels = list(labels)
        class_names = [str(label) for label in sorted(set(labels))]
    if verbose:
        if labels is None:
            print(f"Found {len(file_paths)} files.")
        else:
            print(f"Found {len(file_paths)} files belonging to {len(class_names)} classes.")
    if shuffle:
        # the same permutation of paths and labels: two generators with one seed (Keras)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _split(file_paths, labels, validation_split, subset, verbose):
    """The training (first) or validation (last) share of the files, as Keras."""
    if not validation_split:
        return file_paths, labels
    num_val = int(validation_split * len(file_paths))
    if num_val == 0:
        # Keras would give no training files / every file as validation (x[:-0], x[-0:])
        raise ValueError(f"validation_split={validation_split} of {len(file_paths)} files "
                         "leaves 0 files for validation")
    if subset == "training":
        if verbose:
            print(f"Using {len(file_paths) - num_val} files for training.")
        return file_paths[:-num_val], None if labels is None else labels[:-num_val]
    if verbose:
        print(f"Using {num_val} files for validation.")
    return file_paths[-num_val:], None if labels is None else labels[-num_val:]


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                batch_size=32, max_length=None, shuffle=True, seed=None,
                                validation_split=None, subset=None, follow_links=False,
                                verbose=True):
    """The ``.txt`` files under ``directory`` as a Sequence of ``(texts, labels)``, as
    ``keras.utils.text_dataset_from_directory``.

    labels: "inferred" (one subfolder per class, in alphanumeric order or ``class_names``'s),
    None, or a list of int labels for the files in sorted path order. label_mode: "int"
    (int32 (batch,)), "binary" (float32 (batch, 1)), "categorical" (float32 one-hot) or None
    (texts alone). shuffle: the files in a random order drawn from ``seed`` (else sorted).
    validation_split + subset ("training", "validation" or "both": a list [train, val]) +
    seed: Keras's split of the shuffled files (the last ``int(split * n)`` are validation).
    The result has ``class_names``.
    """
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("`labels` argument should be a list/tuple of integer labels, of "
                             "the same size as the number of text files in the target "
                             "directory. If you wish to infer the labels from the subdirectory "
                             'names in the target directory, pass `labels="inferred"`. If you '
                             "wish to get a dataset that only contains text samples (no "
                             f"labels), pass `labels=None`. Received: labels={labels}")
        if class_names:
            raise ValueError('You can only pass `class_names` if `labels="inferred"`. '
                             f"Received: labels={labels}, and class_names={class_names}")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", '
                         f"or None. Received: label_mode={label_mode}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"`batch_size` must be None or an int >= 1, got {batch_size!r}")
    if max_length is not None and (not isinstance(max_length, (int, np.integer))
                                   or max_length < 0):
        raise ValueError(f"`max_length` must be None or an int >= 0, got {max_length!r}")
    if labels is None or label_mode is None:
        labels = label_mode = None
    _check_validation_split(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    file_paths, labels, class_names = _index_directory(
        os.fspath(directory), labels, class_names, shuffle, seed, follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={class_names}")

    def dataset(subset_name, shuffle_epochs):
        paths, subset_labels = _split(file_paths, labels, validation_split, subset_name,
                                      verbose)
        if not paths:
            raise ValueError(f"No {'' if subset_name is None else subset_name + ' '}text files "
                             f"found in directory {directory}. Allowed format: .txt")
        return TextDataset(paths, subset_labels, label_mode, class_names, batch_size,
                           max_length, shuffle=shuffle_epochs, seed=seed)

    if subset == "both":
        return [dataset("training", shuffle), dataset("validation", False)]
    return dataset(subset, shuffle)
