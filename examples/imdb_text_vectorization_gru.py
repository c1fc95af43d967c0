"""Keras 3's text classification from raw strings: TextVectorization adapted on the
training reviews -> Embedding(mask_zero) -> GRU -> Dense sigmoid, on the real IMDB reviews.
As Keras 3's tutorials write it, with only the imports changed: the vectorizer is applied
to the strings once (``vectorizer(texts)``), the model trains on the integer sequences, and
an end-to-end model (the vectorizer in front) predicts from raw strings.

    python examples/imdb_text_vectorization_gru.py --data ../shared/data      # the full run
    python examples/imdb_text_vectorization_gru.py --limit 500 --epochs 1     # a quick one
"""
import sys
import time

import numpy as np
from _common import data_dir, parser, report

from fastseq import Input, Model
from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.layers import GRU, Dense, Embedding, TextVectorization
from fastseq.utils import set_random_seed


def main(argv=None):
    args = parser(__doc__, epochs=2, batch_size=64, maxlen=200,
                  num_words=20000).parse_args(argv)
    set_random_seed(args.seed)
    start = time.perf_counter()
    (train_texts, y_train), (test_texts, y_test) = imdb.load_reviews(data_dir(args),
                                                                     limit=args.limit)
    vectorizer = TextVectorization(max_tokens=args.num_words, output_mode="int",
                                   output_sequence_length=args.maxlen)
    vectorizer.adapt(train_texts)
    x_train, x_test = vectorizer(train_texts), vectorizer(test_texts)
    print(f"Adapted the vocabulary ({vectorizer.vocabulary_size()} tokens) and vectorized "
          f"{len(train_texts)} + {len(test_texts)} reviews in "
          f"{time.perf_counter() - start:.2f} s")

    tokens = Input(shape=(args.maxlen,), dtype="int64")
    x = Embedding(args.num_words, 64, mask_zero=True)(tokens)
    x = GRU(32)(x)
    outputs = Dense(1, activation="sigmoid")(x)
    model = Model(tokens, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.summary()
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_test, y_test), callbacks=[timer], verbose=args.verbose)
    scores = model.evaluate(x_test, y_test, verbose=0)
    report(scores[1], timer)

    # end to end: raw strings in, as Keras 3's tutorial exports its model
    raw = Input(shape=(1,), dtype="string")
    end_to_end = Model(raw, model(vectorizer(raw)))
    samples = ["A wonderful, moving film: the best acting I have seen this year.",
               "Dull, far too long and badly acted. A waste of two hours."]
    scores = end_to_end.predict(np.array(samples)[:, None])
    for text, score in zip(samples, scores[:, 0]):
        print(f"{score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
