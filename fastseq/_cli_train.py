"""``python -m fastseq train imdb --model lstm|conv1d|flatten --epochs N --data PATH``: train a
seed model on the IMDB reviews, with a progress bar, then print the test accuracy and the
seconds per epoch.

    lstm     seed 002: Embedding(5000, 32) -> LSTM(100) -> Dense sigmoid; adam, batch 64,
             reviews cut to 500 words
    conv1d   seed 004: Embedding(5000, 100) -> 2 x Conv1D(64, 3) -> MaxPooling1D(3) ->
             2 x Conv1D(128, 3) -> GlobalAveragePooling1D -> Dropout(0.5) -> Dense sigmoid;
             rmsprop, batch 16, 64 words
    flatten  seed 003: Embedding(10000, 8) -> Flatten -> Dense sigmoid; rmsprop, batch 32,
             20 words, 20% of the training set for validation
"""
from __future__ import annotations

import argparse
import sys
import time

from fastseq.callbacks import EpochTimer

MODELS = {
    # name: (num_words, maxlen, batch_size, default epochs)
    "lstm": (5000, 500, 64, 3),
    "conv1d": (5000, 64, 16, 10),
    "flatten": (10000, 20, 32, 10),
}


DESCRIPTION = __doc__.split("\n\n")[0]
EPILOG = __doc__.split("\n\n", 1)[1]


def _parser():
    p = argparse.ArgumentParser(prog="python -m fastseq train", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=EPILOG)
    add_arguments(p)
    return p


def add_arguments(p):
    """The options of ``python -m fastseq train`` on the parser ``p`` (this module's own, or
    the ``train`` subcommand's in ``python -m fastseq``)."""
    p.add_argument("dataset", choices=["imdb"], help="the dataset (imdb)")
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="default: the seed's")
    p.add_argument("--data", default=None,
                   help="imdb.npz, imdb_reviews.csv.gz, or their directory "
                        "(default: $FASTSEQ_DATA, then the caches)")
    p.add_argument("--maxlen", type=int, default=None, help="words kept per review")
    p.add_argument("--num-words", type=int, default=None, help="vocabulary size")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--limit", type=int, default=None,
                   help="use about this many reviews per split (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffling)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                   help="1: progress bar (default), 2: one line per epoch, 0: quiet")
    return p


def add_seed004_conv1d(model, **first_layer_kwargs):
    """Adds seed 004's Conv1D classifier (2 x Conv1D(64, 3), MaxPooling1D(3), 2 x Conv1D(128, 3),
    GlobalAveragePooling1D, Dropout(0.5), Dense sigmoid) to ``model``; ``first_layer_kwargs``
    go to the first Conv1D (``input_shape=...`` when nothing comes before it)."""
    from fastseq.layers import Conv1D, Dense, Dropout, GlobalAveragePooling1D, MaxPooling1D

    model.add(Conv1D(64, 3, activation="relu", **first_layer_kwargs))
    model.add(Conv1D(64, 3, activation="relu"))
    model.add(MaxPooling1D(3))
    model.add(Conv1D(128, 3, activation="relu"))
    model.add(Conv1D(128, 3, activation="relu"))
    model.add(GlobalAveragePooling1D())
    model.add(Dropout(0.5))
    model.add(Dense(1, activation="sigmoid"))
    return model


def build_model(name, num_words, maxlen):
    """The seed's model, compiled."""
    from fastseq.layers import LSTM, Dense, Embedding, Flatten
    from fastseq.models import Sequential

    model = Sequential()
    if name == "lstm":
        model.add(Embedding(num_words, 32, input_length=maxlen))
        model.add(LSTM(100))
        model.add(Dense(1, activation="sigmoid"))
        optimizer = "adam"
    elif name == "conv1d":
        model.add(Embedding(num_words, 100, input_length=maxlen))
        add_seed004_conv1d(model)
        optimizer = "rmsprop"
    elif name == "flatten":
        model.add(Embedding(num_words, 8, input_length=maxlen))
        model.add(Flatten())
        model.add(Dense(1, activation="sigmoid"))
        optimizer = "rmsprop"
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _positive(parser, name, value):
    if value is not None and value < 1:
        parser.error(f"--{name} must be >= 1, got {value}")


def main(argv=None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # tolerate being handed the subcommand too
        argv = argv[1:]
    return run(parser.parse_args(argv), parser)


def run(args, parser) -> int:
    """Train with the parsed ``args``; ``parser`` reports bad values (exit 2)."""
    for name in ("epochs", "maxlen", "num_words", "batch_size", "limit"):
        _positive(parser, name.replace("_", "-"), getattr(args, name))
    num_words, maxlen, batch_size, epochs = MODELS[args.model]
    num_words = args.num_words or num_words
    maxlen = args.maxlen or maxlen
    batch_size = args.batch_size or batch_size
    epochs = args.epochs or epochs

    from fastseq.datasets import imdb
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.utils import set_random_seed

    set_random_seed(args.seed)
    start = time.perf_counter()
    try:
        (x_train, y_train), (x_test, y_test) = imdb.load_data(path=args.data, num_words=num_words,
                                                              limit=args.limit)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x_train = pad_sequences(x_train, maxlen=maxlen)
    x_test = pad_sequences(x_test, maxlen=maxlen)
    print(f"IMDB: {len(x_train)} training and {len(x_test)} test reviews, {maxlen} words each, "
          f"{num_words} words vocabulary (loaded in {time.perf_counter() - start:.1f} s)")

    model = build_model(args.model, num_words, maxlen)
    timer = EpochTimer()
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
              validation_split=0.2 if args.model == "flatten" else 0.0,
              callbacks=[timer], verbose=args.verbose)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=max(batch_size, 64), verbose=0)
    print(f"Test accuracy: {accuracy:.4f}")
    print(f"Test loss: {loss:.4f}")
    per_epoch = sum(timer.seconds) / max(len(timer.seconds), 1)
    print(f"Seconds per epoch: {per_epoch:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
