"""Seed 003, second demo: the raw IMDB reviews, a Tokenizer, and a frozen GloVe embedding
(Embedding -> Flatten -> Dense 32 relu -> Dense sigmoid) trained on only 200 reviews.

    python examples/imdb_glove.py --data ../shared/data

The seed uses glove.6B.100d; the data here is glove.6B.50d (its 40,000 most frequent words),
so the embedding is 50-d. The training curves are saved as PNG files when matplotlib is
installed.
"""
import os
import sys
import time

import numpy as np
from _common import data_dir, parser, report, save_curves

from fastseq.callbacks import EpochTimer
from fastseq.datasets import imdb
from fastseq.datasets.embeddings import load_glove
from fastseq.layers import Dense, Embedding, Flatten
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import Tokenizer
from fastseq.utils import set_random_seed


def main(argv=None):
    p = parser(__doc__, epochs=10, batch_size=32, maxlen=100, num_words=10000)
    p.add_argument("--training-samples", type=int, default=200)
    p.add_argument("--validation-samples", type=int, default=10000)
    p.add_argument("--glove", default="glove.6B.50d.40k.txt", help="file name in --data")
    p.add_argument("--plots", default="imdb_glove", help="file prefix of the PNG curves")
    args = p.parse_args(argv)
    set_random_seed(args.seed)
    data = data_dir(args)
    maxlen = args.maxlen
    training_samples = args.training_samples
    validation_samples = args.validation_samples
    max_words = args.num_words

    # Tokenize the raw IMDB reviews
    start = time.perf_counter()
    (texts, labels), (test_texts, test_labels) = imdb.load_reviews(data, limit=args.limit)
    tokenizer = Tokenizer(num_words=max_words)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    word_index = tokenizer.word_index
    print("Found %s unique tokens." % len(word_index))
    data_tensor = pad_sequences(sequences, maxlen=maxlen)
    labels = np.asarray(labels)
    print("Shape of data tensor:", data_tensor.shape)
    print("Shape of label tensor:", labels.shape)
    print(f"Tokenized and padded {len(texts)} reviews in {time.perf_counter() - start:.2f} s")

    # Shuffle, then split into training and validation
    indices = np.random.default_rng(args.seed).permutation(data_tensor.shape[0])
    data_tensor, labels = data_tensor[indices], labels[indices]
    validation_samples = min(validation_samples, len(data_tensor) - training_samples)
    x_train, y_train = data_tensor[:training_samples], labels[:training_samples]
    x_val = data_tensor[training_samples:training_samples + validation_samples]
    y_val = labels[training_samples:training_samples + validation_samples]

    # Parse the GloVe file and build the (max_words, embedding_dim) embedding matrix
    start = time.perf_counter()
    glove = load_glove(os.path.join(data, args.glove))
    print(f"Found {len(glove)} word vectors in {time.perf_counter() - start:.2f} s.")
    embedding_dim = glove.dim
    embedding_matrix, found = glove.embedding_matrix(word_index, num_words=max_words)
    print(f"{found} of the {max_words - 1} most frequent words have a vector")

    model = Sequential()
    model.add(Embedding(max_words, embedding_dim, input_length=maxlen))
    model.add(Flatten())
    model.add(Dense(32, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.summary()
    # Load the pretrained word embeddings into the Embedding layer, and freeze it
    model.layers[0].set_weights([embedding_matrix])
    model.layers[0].trainable = False

    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    timer = EpochTimer()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_val, y_val), callbacks=[timer], verbose=args.verbose)
    frozen = np.array_equal(model.layers[0].get_weights()[0], embedding_matrix)
    print("Embedding weights unchanged by training (frozen):", frozen)
    print(f"Final validation accuracy: {history.history['val_acc'][-1]:.4f}")
    save_curves(history, args.plots, acc_key="acc")

    # Tokenize the test reviews with the same tokenizer and evaluate
    x_test = pad_sequences(tokenizer.texts_to_sequences(test_texts), maxlen=maxlen)
    y_test = np.asarray(test_labels)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    report(test_acc, timer)
    return 0 if frozen else 1


if __name__ == "__main__":
    sys.exit(main())
