"""Seed 004, sequence classification with 1D convolutions: two Conv1D(64, 3), max pooling,
two Conv1D(128, 3), global average pooling, Dropout(0.5), Dense sigmoid; rmsprop, batch 16,
10 epochs.

The seed's model reads 64 steps of 100 features each (input_shape=(64, 100)); here those
features are a trainable Embedding(5000, 100) of IMDB's words, over the last 64 words of
each review.

    python examples/imdb_conv1d.py --data ../shared/data
"""
import sys

from _common import data_dir, parser, report

from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import Conv1D, Dense, Dropout, Embedding, GlobalAveragePooling1D, MaxPooling1D
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.utils import set_random_seed


def main(argv=None):
    args = parser(__doc__, epochs=10, batch_size=16, maxlen=64, num_words=5000).parse_args(argv)
    set_random_seed(args.seed)
    seq_length = args.maxlen
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=data_dir(args),
                                                          num_words=args.num_words,
                                                          limit=args.limit)
    x_train = pad_sequences(x_train, maxlen=seq_length)
    x_test = pad_sequences(x_test, maxlen=seq_length)

    model = Sequential()
    model.add(Embedding(args.num_words, 100, input_length=seq_length))
    model.add(Conv1D(64, 3, activation="relu", input_shape=(seq_length, 100)))
    model.add(Conv1D(64, 3, activation="relu"))
    model.add(MaxPooling1D(3))
    model.add(Conv1D(128, 3, activation="relu"))
    model.add(Conv1D(128, 3, activation="relu"))
    model.add(GlobalAveragePooling1D())
    model.add(Dropout(0.5))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    model.summary()
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              callbacks=[timer], verbose=args.verbose)
    score = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    report(score[1], timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
