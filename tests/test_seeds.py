"""The seed scripts (../shared/seeds/) with only their imports changed to fastseq, on small
data: tiny epochs and lengths, real IMDB reviews / GloVe vectors when FASTSEQ_DATA is set
and synthetic token ids otherwise. The model code is the seeds' own."""
import csv
import gzip
import importlib.util
import os

import numpy as np
import pytest

from fastseq.utils import set_random_seed


def _data_dir():
    return os.environ.get("FASTSEQ_DATA")


def _imdb_texts(per_class):
    """(texts, labels) of the first ``per_class`` negative and positive training reviews,
    interleaved; None when FASTSEQ_DATA is unset."""
    data = _data_dir()
    if not data:
        return None
    by_label = {0: [], 1: []}
    with gzip.open(os.path.join(data, "imdb_reviews.csv.gz"), "rt", newline="",
                   encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != "train":
                break
            bucket = by_label[int(row["label"])]
            if len(bucket) < per_class:
                bucket.append(row["text"])
            if all(len(b) >= per_class for b in by_label.values()):
                break
    texts = [t for pair in zip(by_label[0], by_label[1]) for t in pair]
    labels = np.array([0, 1] * per_class)
    return texts, labels


def _token_ids(n, length, vocab, seed=0):
    """Synthetic padded sequences with a learnable signal in the label."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, (n, length)).astype(np.int32)
    y = rng.integers(0, 2, n)
    x[y == 1, -1] = 1  # label 1 ends with token 1
    x[y == 0, -1] = np.where(x[y == 0, -1] == 1, 2, x[y == 0, -1])
    return x, y


def test_seed_000_002_embedding_output_example():
    # seeds 000 and 002: the "what does an Embedding output" example, verbatim
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import Tokenizer
    from fastseq.utils import to_categorical  # noqa: F401  (imported by the seed)

    texts = ['This is a text', 'This is not a text']
    max_review_length = 6  # maximum length of the sentence
    embedding_vecor_length = 3
    top_words = 10
    tokenizer = Tokenizer(top_words)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    word_index = tokenizer.word_index
    input_dim = len(word_index) + 1  # noqa: F841
    print('Found %s unique tokens.' % len(word_index))
    data = pad_sequences(sequences, max_review_length)
    print('Shape of data tensor:', data.shape)
    print(data)
    np.testing.assert_array_equal(data, [[0, 0, 1, 2, 3, 4], [0, 1, 2, 5, 3, 4]])

    from fastseq.layers import Embedding
    from fastseq.models import Sequential
    model = Sequential()
    model.add(Embedding(top_words, embedding_vecor_length, input_length=max_review_length,
                        mask_zero=True))
    model.compile(optimizer='adam', loss='categorical_crossentropy')
    output_array = model.predict(data)
    assert output_array.shape == (2, 6, 3) and output_array.dtype == np.float32
    (table,) = model.layers[0].get_weights()
    assert table.shape == (10, 3)
    # the mapping the answer describes: output rows are the table rows of the word ids
    np.testing.assert_array_equal(output_array, table[data])


def test_seed_002_imdb_lstm():
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential

    top_words = 5000
    max_review_length = 40  # the seed's 500, shortened for the test
    real = _imdb_texts(per_class=64)
    if real is not None:
        from fastseq.preprocessing.sequence import pad_sequences
        from fastseq.preprocessing.text import Tokenizer

        texts, y_train = real
        tokenizer = Tokenizer(num_words=top_words)
        tokenizer.fit_on_texts(texts)
        X_train = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=max_review_length)
    else:
        X_train, y_train = _token_ids(128, max_review_length, top_words)
    set_random_seed(0)

    embedding_vecor_length = 32
    model = Sequential()
    model.add(Embedding(top_words, embedding_vecor_length, input_length=max_review_length))
    model.add(LSTM(100))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    print(model.summary())
    with pytest.warns(DeprecationWarning, match="nb_epoch"):
        history = model.fit(X_train, y_train, nb_epoch=1, batch_size=64, verbose=0)
    assert model.count_params() == 213301
    assert len(history.history['loss']) == 1 and np.isfinite(history.history['loss'][0])
    assert 0 <= history.history['accuracy'][0] <= 1


def test_seed_003_flatten_demo():
    from fastseq.layers import Dense, Embedding, Flatten
    from fastseq.models import Sequential

    max_features = 10000
    maxlen = 20
    x_train, y_train = _token_ids(200, maxlen, max_features, seed=1)
    set_random_seed(0)
    model = Sequential()
    model.add(Embedding(10000, 8, input_length=maxlen))
    model.add(Flatten())
    model.add(Dense(1, activation='sigmoid'))
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    model.summary()
    history = model.fit(x_train, y_train, epochs=2, batch_size=32, validation_split=0.2,
                        verbose=0)
    acc = history.history['acc']
    val_acc = history.history['val_acc']
    loss = history.history['loss']
    val_loss = history.history['val_loss']
    epochs = range(1, len(acc) + 1)
    assert len(epochs) == 2 and len(val_acc) == len(loss) == len(val_loss) == 2
    assert model.count_params() == 10000 * 8 + 160 + 1


def _glove_matrix(word_index, max_words, embedding_dim):
    """Seed 003's GloVe matrix from the real 50-d file, or random vectors without data."""
    embedding_matrix = np.zeros((max_words, embedding_dim))
    data = _data_dir()
    if not data:
        rng = np.random.default_rng(0)
        for word, i in word_index.items():
            if i < max_words:
                embedding_matrix[i] = rng.standard_normal(embedding_dim)
        return embedding_matrix
    embeddings_index = {}
    wanted = {w for w, i in word_index.items() if i < max_words}
    with open(os.path.join(data, 'glove.6B.50d.40k.txt'), encoding='utf-8') as f:
        for line in f:
            values = line.split()
            word = values[0]
            if word in wanted:
                embeddings_index[word] = np.asarray(values[1:], dtype='float32')
    for word, i in word_index.items():
        if i < max_words:
            embedding_vector = embeddings_index.get(word)
            if embedding_vector is not None:
                embedding_matrix[i] = embedding_vector
    return embedding_matrix


def test_seed_003_pretrained_glove(tmp_path):
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import Tokenizer

    real = _imdb_texts(per_class=60)
    if real is not None:
        texts, labels = real
    else:
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(300)]
        texts = [" ".join(rng.choice(words, 30)) for _ in range(120)]
        labels = rng.integers(0, 2, 120)
    maxlen = 100
    training_samples = 80
    validation_samples = 40
    max_words = 2000
    tokenizer = Tokenizer(num_words=max_words)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    word_index = tokenizer.word_index
    data = pad_sequences(sequences, maxlen=maxlen)
    labels = np.asarray(labels)
    indices = np.arange(data.shape[0])
    np.random.shuffle(indices)
    data = data[indices]
    labels = labels[indices]
    x_train = data[:training_samples]
    y_train = labels[:training_samples]
    x_val = data[training_samples: training_samples + validation_samples]
    y_val = labels[training_samples: training_samples + validation_samples]
    embedding_dim = 50  # the data directory holds the 50-d GloVe vectors
    embedding_matrix = _glove_matrix(word_index, max_words, embedding_dim)

    from fastseq.layers import Dense, Embedding, Flatten
    from fastseq.models import Sequential
    set_random_seed(0)
    model = Sequential()
    model.add(Embedding(max_words, embedding_dim, input_length=maxlen))
    model.add(Flatten())
    model.add(Dense(32, activation='relu'))
    model.add(Dense(1, activation='sigmoid'))
    model.summary()
    model.layers[0].set_weights([embedding_matrix])
    model.layers[0].trainable = False
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    history = model.fit(x_train, y_train, epochs=2, batch_size=32,
                        validation_data=(x_val, y_val), verbose=0)
    # the frozen GloVe embedding did not move
    np.testing.assert_array_equal(model.layers[0].get_weights()[0],
                                  embedding_matrix.astype(np.float32))
    path = str(tmp_path / ('pre_trained_glove_model.h5'
                           if importlib.util.find_spec('h5py') else 'pre_trained_glove_model.npz'))
    model.save_weights(path)
    assert set(history.history) == {'acc', 'val_acc', 'loss', 'val_loss'}
    before = model.get_weights()
    model.set_weights([w * 0 for w in before])
    model.load_weights(path)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    x_test = pad_sequences(tokenizer.texts_to_sequences(texts[:20]), maxlen=maxlen)
    y_test = np.asarray(labels[:20])
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert np.isfinite(loss) and 0 <= acc <= 1


def test_seed_004_lstm_classifier():
    from fastseq.layers import LSTM, Dense, Dropout, Embedding
    from fastseq.models import Sequential

    x_train, y_train = _token_ids(48, 12, 1024, seed=2)
    x_test, y_test = _token_ids(16, 12, 1024, seed=3)
    set_random_seed(0)
    max_features = 1024
    model = Sequential()
    model.add(Embedding(max_features, output_dim=256))
    model.add(LSTM(128))
    model.add(Dropout(0.5))
    model.add(Dense(1, activation='sigmoid'))

    model.compile(loss='binary_crossentropy', optimizer='rmsprop', metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=16, epochs=2, verbose=0)
    score = model.evaluate(x_test, y_test, batch_size=16, verbose=0)
    assert len(score) == 2 and np.isfinite(score[0])


def test_seed_004_conv1d_classifier():
    from fastseq.layers import Conv1D, Dense, Dropout, GlobalAveragePooling1D, MaxPooling1D
    from fastseq.models import Sequential

    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((32, 64, 100)).astype(np.float32)
    y_train = (x_train[:, :, 0].mean(axis=1) > 0).astype(np.float32)
    x_test, y_test = x_train[:16], y_train[:16]
    set_random_seed(0)
    seq_length = 64
    model = Sequential()
    model.add(Conv1D(64, 3, activation='relu', input_shape=(seq_length, 100)))
    model.add(Conv1D(64, 3, activation='relu'))
    model.add(MaxPooling1D(3))
    model.add(Conv1D(128, 3, activation='relu'))
    model.add(Conv1D(128, 3, activation='relu'))
    model.add(GlobalAveragePooling1D())
    model.add(Dropout(0.5))
    model.add(Dense(1, activation='sigmoid'))

    model.compile(loss='binary_crossentropy', optimizer='rmsprop', metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=16, epochs=2, verbose=0)
    score = model.evaluate(x_test, y_test, batch_size=16, verbose=0)
    assert len(score) == 2 and np.isfinite(score[0])
    assert model.output_shape == (None, 1)

    # the builder `python -m fastseq train --model conv1d` and the benchmark share: the same
    # layers with the same settings
    from fastseq._cli_train import add_seed004_conv1d

    def configs(m):
        return [{k: v for k, v in layer.get_config().items() if k != "name"}
                for layer in m.layers]

    shared = add_seed004_conv1d(Sequential(), input_shape=(seq_length, 100))
    assert configs(shared) == configs(model)
    assert shared.count_params() == model.count_params()
