"""Seed 004, sequence classification with an LSTM: Embedding(1024, 256) -> LSTM(128) ->
Dropout(0.5) -> Dense sigmoid, rmsprop, batch 16, 10 epochs.

The seed does not say which data or sequence length; here: IMDB with the 1,024 most
frequent words (max_features), reviews cut to their last 80 words.

    python examples/imdb_lstm_dropout.py --data ../shared/data
"""
import sys

from _common import data_dir, parser, report

from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import LSTM, Dense, Dropout, Embedding
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.utils import set_random_seed


def main(argv=None):
    args = parser(__doc__, epochs=10, batch_size=16, maxlen=80, num_words=1024).parse_args(argv)
    set_random_seed(args.seed)
    max_features = args.num_words
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=data_dir(args),
                                                          num_words=max_features,
                                                          limit=args.limit)
    x_train = pad_sequences(x_train, maxlen=args.maxlen)
    x_test = pad_sequences(x_test, maxlen=args.maxlen)

    model = Sequential()
    model.add(Embedding(max_features, output_dim=256))
    model.add(LSTM(128))
    model.add(Dropout(0.5))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              callbacks=[timer], verbose=args.verbose)
    model.summary()
    score = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    report(score[1], timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
