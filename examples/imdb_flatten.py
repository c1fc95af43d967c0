"""Seed 003, first demo: Embedding(10000, 8) -> Flatten -> Dense sigmoid on the first 20
words of each review, 10 epochs, 20% of the training set for validation.

    python examples/imdb_flatten.py --data ../shared/data

Keras reaches about 75% validation accuracy. The training curves are saved as PNG files
(--plots PREFIX) when matplotlib is installed.
"""
import sys

from _common import data_dir, parser, report, save_curves

from fastseq import preprocessing
from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import Dense, Embedding, Flatten
from fastseq.models import Sequential
from fastseq.utils import set_random_seed


def main(argv=None):
    p = parser(__doc__, epochs=10, batch_size=32, maxlen=20, num_words=10000)
    p.add_argument("--plots", default="imdb_flatten", help="file prefix of the PNG curves")
    args = p.parse_args(argv)
    set_random_seed(args.seed)
    max_features = args.num_words
    maxlen = args.maxlen

    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=data_dir(args),
                                                          num_words=max_features,
                                                          limit=args.limit)
    x_train = preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
    x_test = preprocessing.sequence.pad_sequences(x_test, maxlen=maxlen)

    model = Sequential()
    model.add(Embedding(max_features, 8, input_length=maxlen))
    model.add(Flatten())
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    model.summary()
    timer = EpochTimer()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_split=0.2, callbacks=[timer], verbose=args.verbose)
    print(f"Final validation accuracy: {history.history['val_acc'][-1]:.4f}")
    save_curves(history, args.plots, acc_key="acc")
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    report(test_acc, timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
