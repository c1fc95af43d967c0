"""Seeds 000 / 002: what does an Embedding layer output?

Two sentences -> Tokenizer(10) -> pad_sequences(.., 6) -> an Embedding(10, 3) model; its
output (2, 6, 3) is the weight matrix's rows picked by the word indices.

    python examples/embedding_output.py
"""
import sys

import numpy as np

from fastseq.layers import Embedding
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import Tokenizer
from fastseq.utils import set_random_seed


def main(argv=None):
    set_random_seed(0)
    texts = ["This is a text", "This is not a text"]
    max_review_length = 6  # maximum length of the sentence
    embedding_vecor_length = 3
    top_words = 10
    tokenizer = Tokenizer(top_words)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    word_index = tokenizer.word_index
    print("Found %s unique tokens." % len(word_index))
    data = pad_sequences(sequences, max_review_length)
    print("Shape of data tensor:", data.shape)
    print(data)
    for text, row in zip(texts, data):
        print(f"{text!r} --> {row}")

    model = Sequential()
    model.add(Embedding(top_words, embedding_vecor_length, input_length=max_review_length,
                        mask_zero=True))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    output_array = model.predict(data)
    print("output_array shape:", output_array.shape)
    print(repr(output_array))
    weights = model.layers[0].get_weights()
    print(weights)
    same = np.array_equal(output_array, weights[0][data])
    print("output rows equal the weight rows of the word indices:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
