"""A functional model with two inputs and two outputs on the real IMDB reviews: the review's
words (Embedding(mask_zero) -> LSTM) and three style features of its text (length,
exclamation marks, capitals) -> Dense, concatenated, predict both the sentiment (sigmoid,
binary cross-entropy) and the reviewer's star rating 1-10 (linear, mean squared error).
The Keras book's multi-input / multi-output chapter, with only the imports changed.

    python examples/imdb_functional_two_inputs.py --data ../shared/data      # the full run
    python examples/imdb_functional_two_inputs.py --limit 500 --epochs 1     # a quick one
"""
import csv
import gzip
import os
import sys
import time

import numpy as np
from _common import data_dir, parser, report

from fastseq import Input, Model
from fastseq.callbacks import EpochTimer
from fastseq.layers import LSTM, Dense, Embedding, concatenate
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import Tokenizer
from fastseq.utils import set_random_seed


def read_reviews(directory, limit=None):
    """{split: (texts, labels, ratings)} from imdb_reviews.csv.gz (about ``limit`` reviews
    per split, evenly spaced, when given)."""
    rows = {"train": [], "test": []}
    path = os.path.join(directory, "imdb_reviews.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            rows[row["split"]].append((row["text"], int(row["label"]), int(row["rating"])))
    out = {}
    for split, items in rows.items():
        step = max(1, len(items) // limit) if limit else 1
        items = items[::step]
        out[split] = ([t for t, _, _ in items], np.array([[l] for _, l, _ in items], np.float32),
                      np.array([[r] for _, _, r in items], np.float32))
    return out


def style_features(texts):
    """(n, 3): log word count, exclamation marks per 100 words, share of capital letters."""
    feats = np.empty((len(texts), 3), np.float32)
    for i, text in enumerate(texts):
        words = max(len(text.split()), 1)
        letters = max(sum(c.isalpha() for c in text), 1)
        feats[i] = (np.log(words), 100.0 * text.count("!") / words,
                    sum(c.isupper() for c in text) / letters)
    return feats


def main(argv=None):
    args = parser(__doc__, epochs=2, batch_size=64, maxlen=200,
                  num_words=10000).parse_args(argv)
    set_random_seed(args.seed)
    start = time.perf_counter()
    data = read_reviews(data_dir(args), args.limit)
    (train_texts, y_train, r_train), (test_texts, y_test, r_test) = data["train"], data["test"]
    tokenizer = Tokenizer(num_words=args.num_words)
    tokenizer.fit_on_texts(train_texts)
    x_train = pad_sequences(tokenizer.texts_to_sequences(train_texts), maxlen=args.maxlen)
    x_test = pad_sequences(tokenizer.texts_to_sequences(test_texts), maxlen=args.maxlen)
    m_train, m_test = style_features(train_texts), style_features(test_texts)
    mean, std = m_train.mean(axis=0), m_train.std(axis=0) + 1e-6
    m_train, m_test = (m_train - mean) / std, (m_test - mean) / std
    print(f"Loaded and prepared {len(x_train)} + {len(x_test)} reviews in "
          f"{time.perf_counter() - start:.2f} s")

    text = Input(shape=(args.maxlen,), dtype="int64", name="text")
    style = Input(shape=(3,), name="style")
    words = LSTM(32)(Embedding(args.num_words, 32, mask_zero=True)(text))
    hints = Dense(8, activation="relu")(style)
    joined = concatenate([words, hints])
    sentiment = Dense(1, activation="sigmoid", name="sentiment")(joined)
    rating = Dense(1, name="rating")(joined)
    model = Model(inputs=[text, style], outputs=[sentiment, rating])
    model.compile(optimizer="adam",
                  loss={"sentiment": "binary_crossentropy", "rating": "mse"},
                  loss_weights={"sentiment": 1.0, "rating": 0.05},
                  metrics={"sentiment": ["accuracy"], "rating": ["mae"]})
    model.summary()
    timer = EpochTimer()
    model.fit({"text": x_train, "style": m_train}, {"sentiment": y_train, "rating": r_train},
              batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer],
              validation_data=([x_test, m_test], [y_test, r_test]), verbose=args.verbose)
    logs = model.evaluate([x_test, m_test], [y_test, r_test], verbose=0, return_dict=True)
    report(logs["sentiment_accuracy"], timer)
    print(f"Test rating MAE: {logs['rating_mae']:.3f} stars (predicting the mean rating: "
          f"{float(np.mean(np.abs(r_test - r_train.mean()))):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
