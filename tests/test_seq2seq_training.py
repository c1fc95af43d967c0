"""Training through return_state and initial_state: Keras's sequence-to-sequence models
(an encoder's final states start the decoder), by finite differences of the whole graph."""
import numpy as np
import pytest
from test_functional import _graph_gradients

from fastseq.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Concatenate,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    SimpleRNN,
)
from fastseq.models import Model
from fastseq.optimizers import RMSprop
from fastseq.utils import set_random_seed

F64 = "float64"


def _encoder_decoder(rnn, units=3, features=4, go_backwards=False):
    """Keras's lstm_seq2seq.py graph: encoder(return_state) -> states -> decoder(
    return_sequences, return_state, initial_state=states) -> Dense(softmax)."""
    encoder_in = Input((None, features), dtype=F64)
    encoded = rnn(units, return_state=True, go_backwards=go_backwards, dtype=F64)(encoder_in)
    states = encoded[1:]
    decoder_in = Input((None, features), dtype=F64)
    decoded = rnn(units, return_sequences=True, return_state=True, dtype=F64)(
        decoder_in, initial_state=states)[0]
    return Model([encoder_in, decoder_in], Dense(features, activation="softmax",
                                                 dtype=F64)(decoded))


@pytest.mark.parametrize("rnn", [LSTM, GRU, SimpleRNN])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_encoder_states_into_a_decoder_match_finite_differences(rnn, go_backwards):
    rng = np.random.default_rng(1)
    model = _encoder_decoder(rnn, go_backwards=go_backwards)
    _graph_gradients(model, [rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 4, 4))])


@pytest.mark.parametrize("rnn", [LSTM, GRU])
def test_returned_states_and_output_used_together(rnn):
    """Without return_sequences the output is the last h: the gradients reaching it as the
    output and as the state add up; an LSTM's c gets its own."""
    x_in = Input((None, 3), dtype=F64)
    out, *states = rnn(4, return_state=True, dtype=F64)(x_in)
    model = Model(x_in, Dense(2, dtype=F64)(Concatenate(dtype=F64)([out] + states)))
    _graph_gradients(model, [np.random.default_rng(2).standard_normal((3, 6, 3))])


def test_masked_encoder_states_into_a_decoder():
    """Pre-padded source texts (Embedding mask_zero): the encoder's states are those of each
    text's last real token."""
    source = Input((None,), dtype="int64")
    _, h, c = LSTM(3, return_state=True, dtype=F64)(Embedding(9, 4, mask_zero=True,
                                                               dtype=F64)(source))
    target = Input((None, 2), dtype=F64)
    decoded = LSTM(3, return_sequences=True, dtype=F64)(target, initial_state=[h, c])
    model = Model([source, target], Dense(2, dtype=F64)(decoded))
    rng = np.random.default_rng(3)
    x = rng.integers(1, 9, (3, 6))
    x[0, :2] = 0
    x[1, :4] = 0
    _graph_gradients(model, [x, rng.standard_normal((3, 4, 2))])


def test_the_seq2seq_tutorial_model_learns_to_copy():
    """Keras's character-level translation setup (teacher forcing, categorical
    cross-entropy, rmsprop) on a copy task: the decoder must read the encoder's states."""
    set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens, length, n = 5, 4, 256
    source = rng.integers(0, tokens, (n, length))
    one_hot = np.eye(tokens + 1, dtype=np.float32)  # the last symbol starts a decoding
    encoder_x = one_hot[source]
    decoder_x = one_hot[np.concatenate([np.full((n, 1), tokens), source[:, :-1]], axis=1)]
    decoder_y = one_hot[source]

    encoder_in = Input((None, tokens + 1))
    _, h, c = LSTM(32, return_state=True)(encoder_in)
    decoder_in = Input((None, tokens + 1))
    decoded = LSTM(32, return_sequences=True)(decoder_in, initial_state=[h, c])
    model = Model([encoder_in, decoder_in], Dense(tokens + 1, activation="softmax")(decoded))
    model.compile(optimizer=RMSprop(0.01), loss="categorical_crossentropy")
    history = model.fit([encoder_x, decoder_x], decoder_y, batch_size=32, epochs=40, verbose=0)
    # the first target token is only in the encoder's states: copying it needs gradients
    # through them (without, the encoder never trains: chance is 1 in 5)
    first = model.predict([encoder_x, decoder_x], verbose=0)[:, 0].argmax(axis=-1)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    assert np.mean(first == source[:, 0]) > 0.9



@pytest.mark.parametrize("rnn", [LSTM, GRU])
def test_a_bidirectional_encoder_s_states_into_a_decoder(rnn):
    """The neural-translation pattern: Bidirectional(return_state) -> the two directions'
    states concatenated -> a decoder twice as wide (the merged output goes unused)."""
    source = Input((None, 3), dtype=F64)
    _, *states = Bidirectional(rnn(3, return_state=True, dtype=F64), dtype=F64)(source)
    half = len(states) // 2
    joined = [Concatenate(dtype=F64)([f, b]) for f, b in zip(states[:half], states[half:])]
    target = Input((None, 2), dtype=F64)
    decoded = rnn(6, return_sequences=True, dtype=F64)(target, initial_state=joined)
    model = Model([source, target], Dense(2, dtype=F64)(decoded))
    rng = np.random.default_rng(5)
    _graph_gradients(model, [rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4, 2))])


@pytest.mark.parametrize("merge_mode", [None, "concat", "mul"])
def test_a_bidirectional_layer_given_initial_states_and_returning_its_own(merge_mode):
    """Initial states computed from another input (their gradients flow back into that
    Dense), merge_mode=None's two outputs, and the returned states used as outputs."""
    x_in = Input((None, 3), dtype=F64)
    context = Input((2,), dtype=F64)
    init = [Dense(4, activation="tanh", dtype=F64)(context) for _ in range(4)]
    outputs = Bidirectional(LSTM(4, return_sequences=True, return_state=True, dtype=F64),
                            merge_mode=merge_mode, dtype=F64)(x_in, initial_state=init)
    n_outputs = 2 if merge_mode is None else 1
    pooled = [GlobalAveragePooling1D(dtype=F64)(y) for y in outputs[:n_outputs]]
    joined = Concatenate(dtype=F64)(pooled + [outputs[n_outputs], outputs[-1]])
    model = Model([x_in, context], Dense(2, dtype=F64)(joined))
    rng = np.random.default_rng(6)
    _graph_gradients(model, [rng.standard_normal((3, 5, 3)), rng.standard_normal((3, 2))])
