"""Seed 002: the IMDB LSTM (Embedding 32 -> LSTM 100 -> Dense sigmoid), 3 epochs.

    python examples/imdb_lstm.py --data ../shared/data        # the seed's full run
    python examples/imdb_lstm.py --limit 500 --maxlen 100 --epochs 1   # a quick one

Keras reaches about 86-88% test accuracy with this model.
"""
import sys
import time

from _common import data_dir, parser, report

from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import LSTM, Dense, Embedding
from fastseq.models import Sequential
from fastseq.preprocessing import sequence
from fastseq.utils import set_random_seed


def main(argv=None):
    args = parser(__doc__, epochs=3, batch_size=64, maxlen=500, num_words=5000).parse_args(argv)
    set_random_seed(args.seed)
    top_words = args.num_words
    max_review_length = args.maxlen
    embedding_vecor_length = 32

    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = imdb.load_data(path=data_dir(args), num_words=top_words,
                                                          limit=args.limit)
    X_train = sequence.pad_sequences(X_train, maxlen=max_review_length)
    X_test = sequence.pad_sequences(X_test, maxlen=max_review_length)
    print(f"Loaded and padded {len(X_train)} + {len(X_test)} reviews in "
          f"{time.perf_counter() - start:.2f} s")

    model = Sequential()
    model.add(Embedding(top_words, embedding_vecor_length, input_length=max_review_length))
    model.add(LSTM(100))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.summary()
    timer = EpochTimer()
    model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              callbacks=[timer], verbose=args.verbose)
    scores = model.evaluate(X_test, y_test, verbose=0)
    report(scores[1], timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
