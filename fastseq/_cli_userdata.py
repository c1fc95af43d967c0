"""``python -m fastseq train --data ...``, ``evaluate`` and ``predict``: a text classifier on
the user's own labelled texts, end to end.

    python -m fastseq train --data reviews.csv --text-column text --label-column label \\
        --model bilstm --out run1
    python -m fastseq evaluate --model run1 --data test.csv
    python -m fastseq predict --model run1 --data new.csv --out predictions.csv
    cat texts.txt | python -m fastseq predict --model run1 > predictions.csv

``train`` writes into --out (all at once at the end: a failed run leaves nothing):
model.keras, tokenizer.json, labels.json, config.json, history.csv, training.png, and
metrics.json (accuracy, per-class precision / recall / F1, confusion matrix on the
validation data). Ctrl-C stops after the current batch; the best epoch so far is kept.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
import warnings

import numpy as np

from fastseq._cli_data import FORMATS, LABEL_KINDS, DataError, LabelMap, read_texts

ARCHITECTURES = ("lstm", "bilstm", "gru", "conv1d", "flatten")
MAX_DEFAULT_WORDS = 20000  # vocabulary cap when --num-words is not given
OOV_TOKEN = "<OOV>"  # "<" and ">" are in the Tokenizer's filters: no text can produce it
PREDICT_CHUNK = 1024  # texts tokenized and predicted at a time (the progress bar's step)
FILES = ("model.keras", "tokenizer.json", "labels.json", "config.json", "history.csv",
         "training.png", "metrics.json")

TRAIN_DESCRIPTION = """Train a text classifier. Two layouts:

  python -m fastseq train --data FILE_OR_DIR [options] --out DIR
      your own labelled texts: CSV, TSV, JSON Lines (each may be .gz), or a folder with one
      subfolder of .txt files per class
  python -m fastseq train imdb --model lstm|conv1d|flatten [--epochs N --data PATH ...]
      the tutorial models on the IMDB reviews (imdb mode's options: --model, --epochs,
      --data, --maxlen, --num-words, --batch-size, --limit, --seed, --verbose)"""

TRAIN_EPILOG = """Labels: two classes -> binary (sigmoid); more -> multi-class (softmax); a
JSON list per row (["a", "b"]) or --label-kind multilabel with --label-separator -> one
sigmoid per label. Class names are sorted (numerically for integers) and saved in
labels.json.

Files written into --out (together at the end, from a temporary folder beside it):
  model.keras     the best epoch's model (lowest val_loss): fastseq.models.load_model
  tokenizer.json  the vocabulary (fastseq.preprocessing.text.tokenizer_from_json)
  labels.json     label kind and class names, in the model's output order
  config.json     columns, sequence length, padding, architecture (read by evaluate /
                  predict)
  history.csv     loss and metrics per epoch (CSVLogger)
  training.png    loss and accuracy per epoch (needs matplotlib: fastseq[plot])
  metrics.json    accuracy, per-class precision / recall / F1 and confusion matrix on the
                  validation data

Ctrl-C stops after the current batch and writes the files from the best epoch so far (exit
status 130); a second Ctrl-C aborts and writes nothing. Bad input (a missing column, empty
texts, a single class, an undecodable line, an existing --out) is reported before training,
exit status 2.

Example (the IMDB reviews CSV, its 'text' and 'label' columns):
  python -m fastseq train --data imdb_reviews.csv.gz --limit 5000 --model bilstm \\
      --maxlen 200 --epochs 3 --out imdb_run"""


# ------------------------------------------------------------------------------ arguments
def _input_arguments(p, labels=True):
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="the file's format (default: from its name: .csv, .tsv, .jsonl, "
                        ".txt, each optionally .gz; a directory is a folder per class)")
    p.add_argument("--text-column", default=None,
                   help="column (CSV/TSV header name, JSON key) holding the texts "
                        "(train default: text; evaluate / predict: the training's)")
    if labels:
        p.add_argument("--label-column", default=None,
                       help="column holding the labels (train default: label)")
    p.add_argument("--encoding", default="utf-8",
                   help="text encoding of the files (default utf-8; a BOM is skipped)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 (predict 256)")


def add_train_arguments(p):
    """The options of ``python -m fastseq train``: the imdb layout's and the user-data
    layout's (the imdb layout re-parses its own with fastseq._cli_train)."""
    p.add_argument("dataset", nargs="?", choices=["imdb"], default=None,
                   help="'imdb' for the tutorial models; leave out with --data FILE_OR_DIR")
    p.add_argument("--data", default=None,
                   help="your labelled texts (file or folder); in imdb mode imdb.npz, "
                        "imdb_reviews.csv.gz or their directory")
    p.add_argument("--model", default=None, choices=ARCHITECTURES,
                   help="architecture (default lstm): Embedding, then lstm: LSTM; bilstm: "
                        "Bidirectional(LSTM); gru: GRU; conv1d: Conv1D(5) + global max "
                        "pooling; flatten: Flatten; then Dense")
    p.add_argument("--out", default=None, help="output folder (must not exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--validation-data", default=None,
                   help="a separate validation file (same columns)")
    p.add_argument("--validation-split", type=float, default=0.2,
                   help="fraction of --data held out for validation when no "
                        "--validation-data (default 0.2, shuffled with --seed)")
    _input_arguments(p)
    p.add_argument("--label-kind", choices=LABEL_KINDS, default="auto",
                   help="auto (default): multilabel for list labels, else binary / "
                        "multiclass by the number of classes")
    p.add_argument("--label-separator", default="|",
                   help="multi-label: labels of one row joined by this (default '|')")
    p.add_argument("--num-words", type=int, default=None,
                   help="vocabulary size (default: words seen at least twice, at most "
                        f"{MAX_DEFAULT_WORDS})")
    p.add_argument("--maxlen", type=int, default=None,
                   help="tokens kept per text (default: 95th percentile of the lengths)")
    p.add_argument("--embedding-dim", type=int, default=64,
                   help="embedding size (default 64; with --vectors: theirs)")
    p.add_argument("--units", type=int, default=64,
                   help="LSTM / GRU units, Conv1D filters / 2 (default 64)")
    p.add_argument("--vectors", default=None,
                   help="pretrained word vectors (GloVe or word2vec text / binary) for the "
                        "embedding, frozen unless --fine-tune-vectors")
    p.add_argument("--fine-tune-vectors", action="store_true",
                   help="train the --vectors embedding too")
    p.add_argument("--epochs", type=int, default=None, help="at most this many (default 10)")
    p.add_argument("--patience", type=int, default=2,
                   help="early stopping: epochs without a lower val_loss (default 2)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's (default 1e-3)")
    p.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                   help="balanced: weigh each class by n / (classes * its count)")
    p.add_argument("--limit", type=int, default=None,
                   help="use N rows of --data drawn at random with --seed (imdb mode: "
                        "about N reviews per split)")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, split, shuffling)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                   help="1: progress bar (default), 2: one line per epoch, 0: quiet")
    return p


def add_evaluate_arguments(p):
    p.add_argument("--model", required=True, help="a folder written by train --out")
    p.add_argument("--data", required=True, help="labelled texts, as for train")
    p.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    _input_arguments(p)
    return p


def add_predict_arguments(p):
    p.add_argument("--model", required=True, help="a folder written by train --out")
    p.add_argument("--data", default="-",
                   help="texts to classify: a file as for train (labels not needed) or a "
                        ".txt with one text per line; default '-': stdin, one text per line")
    p.add_argument("--out", default="-",
                   help="predictions CSV (default '-': stdout): label, score (its "
                        "probability), then one probability column per class")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="binary / multi-label decision threshold (default 0.5)")
    _input_arguments(p, labels=False)
    return p


EVALUATE_DESCRIPTION = ("Evaluate a model written by 'train --out' on labelled texts: "
                        "accuracy, per-class precision / recall / F1, confusion matrix.")
PREDICT_DESCRIPTION = ("Classify texts with a model written by 'train --out'; a progress bar "
                       "on stderr, the throughput at the end.")


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def _check_positive(parser, args, names):
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")


# ------------------------------------------------------------------------------ text -> ids
def _sequences(tokenizer, texts, maxlen):
    from fastseq.preprocessing.sequence import pad_sequences

    return pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=maxlen)


def _fit_tokenizer(texts, num_words):
    """A Tokenizer fit on ``texts``, with an OOV index 1; ``num_words`` None: the words seen
    at least twice, capped."""
    from fastseq.preprocessing.text import Tokenizer

    tokenizer = Tokenizer(oov_token=OOV_TOKEN)
    tokenizer.fit_on_texts(texts)
    if num_words is None:
        repeated = sum(1 for c in tokenizer.word_counts.values() if c >= 2)
        num_words = min(MAX_DEFAULT_WORDS, max(repeated, 1)) + 2  # + padding 0, OOV 1
    tokenizer.num_words = num_words
    return tokenizer


def _default_maxlen(tokenizer, texts):
    lengths = [len(s) for s in tokenizer.texts_to_sequences(texts)]
    return max(1, int(math.ceil(np.percentile(lengths, 95))))


# ------------------------------------------------------------------------------ model
def build_model(architecture, num_words, maxlen, labels, embedding_dim=64, units=64,
                embedding_matrix=None, train_embedding=True, learning_rate=1e-3):
    """The compiled classifier; the output layer and loss follow the label kind."""
    from fastseq.layers import (
        GRU,
        LSTM,
        Bidirectional,
        Conv1D,
        Dense,
        Dropout,
        Embedding,
        Flatten,
        GlobalMaxPooling1D,
    )
    from fastseq.models import Sequential
    from fastseq.optimizers import Adam

    recurrent = architecture in ("lstm", "bilstm", "gru")
    embedding = Embedding(num_words, embedding_dim, input_length=maxlen, mask_zero=recurrent)
    model = Sequential([embedding])
    if architecture == "lstm":
        model.add(LSTM(units))
    elif architecture == "bilstm":
        model.add(Bidirectional(LSTM(units)))
    elif architecture == "gru":
        model.add(GRU(units))
    elif architecture == "conv1d":
        model.add(Dropout(0.2))
        model.add(Conv1D(2 * units, 5, padding="same", activation="relu"))
        model.add(GlobalMaxPooling1D())
    elif architecture == "flatten":
        model.add(Flatten())
    else:
        raise ValueError(f"unknown architecture {architecture!r}; expected {ARCHITECTURES}")
    model.add(Dropout(0.2))
    if labels.kind == "binary":
        model.add(Dense(1, activation="sigmoid"))
        loss = "binary_crossentropy"
    elif labels.kind == "multiclass":
        model.add(Dense(len(labels.classes), activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    else:
        model.add(Dense(len(labels.classes), activation="sigmoid"))
        loss = "binary_crossentropy"
    model.build((None, maxlen))
    if embedding_matrix is not None:
        embedding.set_weights([embedding_matrix])
        embedding.trainable = train_embedding
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss=loss,
                  metrics=["accuracy"])
    return model


def _embedding_matrix(path, tokenizer, num_words):
    from fastseq.datasets import embeddings

    try:
        vectors = embeddings.load(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"--vectors {path}: {e}") from None
    matrix, found = vectors.embedding_matrix(tokenizer.word_index, num_words=num_words)
    print(f"vectors: {found} of the {num_words - 2} vocabulary words have one in {path} "
          f"({vectors.dim}-d)")
    return matrix


def balanced_class_weight(counts):
    """scikit-learn's "balanced": n_samples / (n_classes * count), for the classes seen."""
    counts = np.asarray(counts, dtype=np.float64)
    seen = counts > 0
    weights = np.zeros_like(counts)
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return {i: float(w) for i, w in enumerate(weights) if seen[i]}


# ------------------------------------------------------------------------------ callbacks
def _stop_on_interrupt_callback():
    from fastseq.callbacks import Callback

    class StopOnInterrupt(Callback):
        """First Ctrl-C: ``model.stop_training`` (fit stops after the current batch);
        second: KeyboardInterrupt as usual."""

        def __init__(self):
            super().__init__()
            self.interrupted = False
            self._previous = None

        def _handle(self, signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.model.stop_training = True
            print("\nCtrl-C: stopping after this batch (again to abort and write nothing)",
                  file=sys.stderr)

        def on_train_begin(self, logs=None):
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main thread: no handler, Ctrl-C as usual
                self._previous = None

        def on_train_end(self, logs=None):
            if self._previous is not None:
                signal.signal(signal.SIGINT, self._previous)
                self._previous = None

    return StopOnInterrupt()


def _training_callbacks(folder, patience):
    """Best checkpoint, history.csv, early stopping and the Ctrl-C handler."""
    from fastseq.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint

    return [ModelCheckpoint(os.path.join(folder, "model.keras"), monitor="val_loss",
                            save_best_only=True),
            CSVLogger(os.path.join(folder, "history.csv")),
            EarlyStopping(monitor="val_loss", patience=patience),
            _stop_on_interrupt_callback()]


# ------------------------------------------------------------------------------ outputs
def plot_training(history, path):
    """Loss and each metric per epoch (training and validation) as a PNG
    (:func:`fastseq.utils.plot_history`); False, and a message, where matplotlib is missing."""
    from fastseq.utils import plot_history

    try:
        plot_history(history, path)
    except ImportError as e:
        print(f"training.png not written: {e}; history.csv holds the same numbers",
              file=sys.stderr)
        return False
    return True


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def _probabilities_to_predictions(probabilities, labels, threshold=0.5):
    """Class indices (single-label) or a multi-hot array (multi-label) from the model's
    outputs."""
    if labels.kind == "binary":
        return (probabilities[:, 0] >= threshold).astype(np.int64)
    if labels.kind == "multiclass":
        return probabilities.argmax(axis=1)
    return probabilities >= threshold


def compute_metrics(probabilities, y_true, labels, threshold=0.5):
    from fastseq._cli_metrics import classification_metrics, multilabel_metrics

    y_pred = _probabilities_to_predictions(probabilities, labels, threshold)
    if labels.kind == "multilabel":
        return multilabel_metrics(y_true, y_pred, labels.classes)
    return classification_metrics(np.asarray(y_true).reshape(-1), y_pred, labels.classes)


def _publish(temp, out, overwrite):
    """Move the finished temporary folder to ``out`` (replacing it with --overwrite)."""
    old = None
    if os.path.lexists(out):
        if not overwrite:  # it appeared while training
            raise DataError(f"--out {out} exists; pass --overwrite to replace it")
        old = f"{temp}.old"
        os.rename(out, old)
    try:
        os.rename(temp, out)
    except OSError:
        if old is not None:  # put the previous run back
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------ train
def train(args, parser):
    """``python -m fastseq train --data ...``; returns the exit status."""
    _check_positive(parser, args, ["epochs", "maxlen", "num_words", "batch_size", "limit",
                                   "embedding_dim", "units"])
    if args.out is None:
        parser.error("--out DIR is required with --data (where the model and reports go)")
    if not 0 <= args.validation_split < 1:
        parser.error(f"--validation-split must be in [0, 1), got {args.validation_split}")
    if args.patience < 0:
        parser.error(f"--patience must be >= 0, got {args.patience}")
    out = os.path.abspath(args.out)
    if os.path.lexists(out) and not args.overwrite:
        return _fail(f"--out {args.out} exists; pass --overwrite to replace it, or choose "
                     "another folder")
    if not os.path.isdir(os.path.dirname(out)):
        return _fail(f"--out {args.out}: its parent folder does not exist")
    architecture = args.model or "lstm"
    text_column = args.text_column or "text"
    label_column = args.label_column or "label"
    try:
        prepared = _prepare_training(args, text_column, label_column)
    except DataError as e:
        return _fail(str(e))

    from fastseq.utils import set_random_seed

    set_random_seed(args.seed)
    temp = f"{os.path.join(os.path.dirname(out), '.' + os.path.basename(out))}.tmp-{os.getpid()}"
    os.makedirs(temp)
    try:
        return _train_into(args, prepared, architecture, text_column, label_column, temp, out)
    finally:
        if os.path.exists(temp):
            shutil.rmtree(temp, ignore_errors=True)


def _prepare_training(args, text_column, label_column):
    """Read, check, split and tokenize everything before any training (DataError on bad
    input)."""
    read = dict(text_column=text_column, label_column=label_column, format=args.format,
                encoding=args.encoding)
    start = time.perf_counter()
    data = read_texts(args.data, **read)
    if args.limit and args.limit < len(data):
        # drawn at random: files are often sorted by label, and the first rows one class
        pick = np.random.default_rng(args.seed).choice(len(data), args.limit, replace=False)
        data = data.take(np.sort(pick))
    if args.validation_data:
        train_data, val_data = data, read_texts(args.validation_data, **read)
    else:
        if args.validation_split <= 0:
            raise DataError("training needs validation data for early stopping, the best "
                            "checkpoint and metrics.json: give --validation-data FILE or "
                            "--validation-split > 0")
        order = np.random.default_rng(args.seed).permutation(len(data))
        n_val = int(round(len(data) * args.validation_split))
        if n_val < 1 or n_val >= len(data):
            raise DataError(f"--validation-split {args.validation_split} of {len(data)} rows "
                            "leaves no training or no validation rows")
        train_data, val_data = data.take(order[n_val:]), data.take(order[:n_val])
    # the classes of the whole --data file, so a split never loses a rare class's name
    labels = LabelMap.from_labels(data, args.label_kind, args.label_separator)
    y_train, y_val = labels.encode(train_data), labels.encode(val_data)
    class_weight = None
    if args.class_weight == "balanced":
        if labels.kind == "multilabel":
            raise DataError("--class-weight balanced is for binary and multi-class labels; "
                            "a multi-label model weighs every label alike")
        class_weight = balanced_class_weight(labels.counts(y_train))
    tokenizer = _fit_tokenizer(train_data.texts, args.num_words)
    maxlen = args.maxlen or _default_maxlen(tokenizer, train_data.texts)
    x_train = _sequences(tokenizer, train_data.texts, maxlen)
    x_val = _sequences(tokenizer, val_data.texts, maxlen)
    counts = ", ".join(f"{c}: {n}" for c, n in zip(labels.classes, labels.counts(y_train)))
    print(f"{args.data}: {len(train_data)} training and {len(val_data)} validation texts, "
          f"{labels.kind} labels ({counts}); vocabulary {tokenizer.num_words} words, "
          f"{maxlen} tokens per text (read in {time.perf_counter() - start:.1f} s)")
    matrix = None
    if args.vectors:
        matrix = _embedding_matrix(args.vectors, tokenizer, tokenizer.num_words)
    return dict(tokenizer=tokenizer, labels=labels, maxlen=maxlen, x_train=x_train,
                y_train=y_train, x_val=x_val, y_val=y_val, class_weight=class_weight,
                embedding_matrix=matrix)


def _train_into(args, p, architecture, text_column, label_column, temp, out):
    from fastseq.models import load_model

    labels, tokenizer, maxlen = p["labels"], p["tokenizer"], p["maxlen"]
    matrix = p["embedding_matrix"]
    model = build_model(architecture, tokenizer.num_words, maxlen, labels,
                        embedding_dim=matrix.shape[1] if matrix is not None else
                        args.embedding_dim, units=args.units, embedding_matrix=matrix,
                        train_embedding=args.fine_tune_vectors or matrix is None,
                        learning_rate=args.learning_rate)

    from fastseq.callbacks import EpochTimer

    timer = EpochTimer()
    callbacks = _training_callbacks(temp, args.patience) + [timer]
    interrupt = callbacks[3]
    batch_size = args.batch_size or 32
    with warnings.catch_warnings():
        # an epoch cut short by Ctrl-C ends without validation: nothing to warn about
        for message in ("Can save best model only with val_loss",
                        "Early stopping conditioned on metric `val_loss`"):
            warnings.filterwarnings("ignore", message=message)
        history = model.fit(p["x_train"], p["y_train"], epochs=args.epochs or 10,
                            batch_size=batch_size, validation_data=(p["x_val"], p["y_val"]),
                            class_weight=p["class_weight"], callbacks=callbacks,
                            verbose=args.verbose)
    checkpoint = os.path.join(temp, "model.keras")
    if not os.path.exists(checkpoint):
        print("error: stopped before the first epoch ended: no model to keep, nothing "
              "written", file=sys.stderr)
        return 130 if interrupt.interrupted else 1
    best = load_model(checkpoint)
    probabilities = best.predict(p["x_val"], batch_size=max(batch_size, 256))
    metrics = compute_metrics(probabilities, p["y_val"], labels)
    val_loss = history.history.get("val_loss", [])
    best_epoch = int(np.nanargmin(val_loss)) + 1 if val_loss else None
    seconds = float(np.mean(timer.seconds)) if timer.seconds else None
    metrics["model"] = {"architecture": architecture, "best_epoch": best_epoch,
                        "epochs_run": len(timer.seconds), "seconds_per_epoch": seconds,
                        "interrupted": interrupt.interrupted}

    with open(os.path.join(temp, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tokenizer.to_json())
    _write_json(os.path.join(temp, "labels.json"), labels.to_dict())
    _write_json(os.path.join(temp, "config.json"), {
        "text_column": text_column, "label_column": label_column, "maxlen": maxlen,
        "padding": "pre", "truncating": "pre", "architecture": architecture,
        "num_words": tokenizer.num_words, "format": args.format, "encoding": args.encoding})
    _write_json(os.path.join(temp, "metrics.json"), metrics)
    plot_training({k: [float(v) for v in vs] for k, vs in history.history.items()},
                  os.path.join(temp, "training.png"))
    _publish(temp, out, args.overwrite)

    from fastseq._cli_metrics import format_report

    print(format_report(metrics))
    print(f"Validation accuracy: {metrics['accuracy']:.4f} (best epoch {best_epoch} of "
          f"{len(timer.seconds)})")
    if seconds is not None:
        print(f"Seconds per epoch: {seconds:.2f}")
    print(f"Wrote {', '.join(sorted(os.listdir(out)))} to {args.out}")
    if interrupt.interrupted:
        print("Interrupted (Ctrl-C): kept the best epoch so far", file=sys.stderr)
        return 130
    return 0


# ------------------------------------------------------------------------------ evaluate / predict
class _Trained:
    """A folder written by ``train``: model, tokenizer, labels, config."""

    def __init__(self, folder):
        from fastseq.models import load_model
        from fastseq.preprocessing.text import tokenizer_from_json

        missing = [f for f in ("model.keras", "tokenizer.json", "labels.json", "config.json")
                   if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise DataError(f"--model {folder}: no {', '.join(missing)}; expected a folder "
                            "written by 'python -m fastseq train --out'")
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            self.config = json.load(f)
        with open(os.path.join(folder, "labels.json"), encoding="utf-8") as f:
            self.labels = LabelMap.from_dict(json.load(f))
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            self.tokenizer = tokenizer_from_json(f.read())
        self.model = load_model(os.path.join(folder, "model.keras"))

    def probabilities(self, texts, batch_size, progress=None):
        """The model's outputs for ``texts``, tokenized and predicted in chunks."""
        outputs = []
        for start in range(0, len(texts), PREDICT_CHUNK):
            chunk = texts[start:start + PREDICT_CHUNK]
            x = _sequences(self.tokenizer, chunk, self.config["maxlen"])
            outputs.append(np.asarray(self.model.predict(x, batch_size=batch_size)))
            if progress is not None:
                progress.update(len(chunk))
        return np.concatenate(outputs)


def evaluate(args, parser):
    _check_positive(parser, args, ["batch_size"])
    from fastseq._cli_metrics import format_report

    try:
        trained = _Trained(args.model)
        config = trained.config
        data = read_texts(args.data, text_column=args.text_column or config["text_column"],
                          label_column=args.label_column or config["label_column"],
                          format=args.format, encoding=args.encoding)
        y_true = trained.labels.encode(data)
    except DataError as e:
        return _fail(str(e))
    with _progress(len(data)) as progress:
        probabilities = trained.probabilities(data.texts, args.batch_size or 256, progress)
    metrics = compute_metrics(probabilities, y_true, trained.labels)
    print(format_report(metrics))
    if args.out:
        _write_json(args.out, metrics)
    return 0


def _progress(total, unit="text"):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None, mininterval=0.5)


def predict(args, parser):
    _check_positive(parser, args, ["batch_size"])
    import csv

    try:
        trained = _Trained(args.model)
        data = read_texts(args.data, text_column=args.text_column or
                          trained.config["text_column"], label_column=None,
                          format=args.format, encoding=args.encoding)
    except DataError as e:
        return _fail(str(e))
    labels = trained.labels
    start = time.perf_counter()
    with _progress(len(data)) as progress:
        probabilities = trained.probabilities(data.texts, args.batch_size or 256, progress)
    seconds = time.perf_counter() - start
    predicted = _probabilities_to_predictions(probabilities, labels, args.threshold)

    def rows():
        if labels.kind == "binary":
            for p, i in zip(probabilities[:, 0], predicted):
                yield [labels.classes[i], f"{p if i else 1 - p:.6f}", f"{p:.6f}"]
        elif labels.kind == "multiclass":
            for ps, i in zip(probabilities, predicted):
                yield [labels.classes[i], f"{ps[i]:.6f}", *(f"{p:.6f}" for p in ps)]
        else:
            for ps, hot in zip(probabilities, predicted):
                names = [str(c) for c, h in zip(labels.classes, hot) if h]
                yield [labels.separator.join(names), "", *(f"{p:.6f}" for p in ps)]

    columns = [f"p_{labels.classes[1]}"] if labels.kind == "binary" else \
        [f"p_{c}" for c in labels.classes]
    target = sys.stdout if args.out == "-" else open(args.out, "w", newline="",
                                                     encoding="utf-8")
    try:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(["label", "score", *columns])
        writer.writerows(rows())
    finally:
        if target is not sys.stdout:
            target.close()
    print(f"Predicted {len(data)} texts in {seconds:.2f} s "
          f"({len(data) / max(seconds, 1e-9):,.0f} texts/s)", file=sys.stderr)
    return 0
