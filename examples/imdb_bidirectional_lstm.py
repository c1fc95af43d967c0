"""Keras's examples/imdb_bidirectional_lstm.py: Embedding(20000, 128) -> Bidirectional(LSTM(64))
-> Dropout(0.5) -> Dense sigmoid, 100 words, batch 32, 4 epochs, validated on the test set.

    python examples/imdb_bidirectional_lstm.py --data ../shared/data        # the full run
    python examples/imdb_bidirectional_lstm.py --limit 500 --epochs 1       # a quick one

Keras's example reports about 81% test accuracy after 4 epochs.
"""
import sys
import time

from _common import data_dir, parser, report

from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import LSTM, Bidirectional, Dense, Dropout, Embedding
from fastseq.models import Sequential
from fastseq.preprocessing import sequence
from fastseq.utils import set_random_seed


def main(argv=None):
    args = parser(__doc__, epochs=4, batch_size=32, maxlen=100,
                  num_words=20000).parse_args(argv)
    set_random_seed(args.seed)
    max_features = args.num_words
    maxlen = args.maxlen
    batch_size = args.batch_size

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=data_dir(args),
                                                          num_words=max_features,
                                                          limit=args.limit)
    x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
    x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
    print(f"Loaded and padded {len(x_train)} + {len(x_test)} reviews in "
          f"{time.perf_counter() - start:.2f} s")

    model = Sequential()
    model.add(Embedding(max_features, 128, input_length=maxlen))
    model.add(Bidirectional(LSTM(64)))
    model.add(Dropout(0.5))
    model.add(Dense(1, activation="sigmoid"))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.summary()
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=args.epochs,
              validation_data=[x_test, y_test], callbacks=[timer], verbose=args.verbose)
    scores = model.evaluate(x_test, y_test, verbose=0)
    report(scores[1], timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
