"""LSTM inference from precomputed input projections: the kernels' ``x_proj`` entry (an
Embedding folded into the LSTM's input projection) and the layer's ``forward_from_indices``
with its cached (V, 4u) table, invalidated when a weight changes in any way."""
import numpy as np
import pytest

import fastseq
from fastseq._api.lstm import lstm_forward
from fastseq._kernels import reference
from fastseq.backend import get_ops
from fastseq.layers import LSTM, Dense, Embedding
from fastseq.models import Sequential

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _problem(rng, B, T, V, D, H, dtype, index_dtype=np.int64):
    embeddings = rng.standard_normal((V, D)).astype(dtype)
    kernel = (0.5 * rng.standard_normal((D, 4 * H))).astype(dtype)
    recurrent = (0.5 * rng.standard_normal((H, 4 * H))).astype(dtype)
    bias = (0.1 * rng.standard_normal(4 * H)).astype(dtype)
    indices = rng.integers(0, V, (B, T)).astype(index_dtype)
    mask = rng.random((B, T)) < 0.8
    mask[:, :2] = False  # pre-padding: steps masked for the whole batch
    mask[1] = False  # a fully masked sequence
    return embeddings, kernel, recurrent, bias, indices, mask


# B = 72 runs in several row blocks (an uneven last one), B = 3 in one
@pytest.mark.parametrize("B", [3, 72])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_x_proj_is_bitwise_the_gemm_path_on_inputs_that_select_its_rows(B, dtype, masked,
                                                                         go_backwards):
    # one-hot inputs times the table give exactly the table's rows: the two paths must then
    # agree bit for bit (the same gates, the same state arithmetic)
    rng = np.random.default_rng(B)
    T, V, D, H = 6, 11, 4, 5
    embeddings, kernel, recurrent, bias, indices, mask = _problem(rng, B, T, V, D, H, dtype)
    table = embeddings @ kernel
    h0 = rng.standard_normal((B, H)).astype(dtype)
    c0 = rng.standard_normal((B, H)).astype(dtype)
    kwargs = dict(h0=h0, c0=c0, mask=mask if masked else None, go_backwards=go_backwards,
                  training=False)
    folded = lstm_forward(indices, None, recurrent, bias, x_proj=table, **kwargs)
    one_hot = np.eye(V, dtype=dtype)[indices]
    plain = lstm_forward(one_hot, table, recurrent, bias, **kwargs)
    assert folded[3] is None
    for a, b in zip(folded[:3], plain[:3]):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    # and the reference: its own gather, the same semantics
    expected = reference.lstm_forward(indices, None, recurrent, bias, x_proj=table, **kwargs)
    for a, b in zip(folded[:3], expected[:3]):
        np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_x_proj_matches_the_embedded_inputs_within_rounding(dtype):
    rng = np.random.default_rng(1)
    embeddings, kernel, recurrent, bias, indices, mask = _problem(rng, 20, 7, 30, 9, 4, dtype,
                                                                  np.int32)
    folded = lstm_forward(indices, None, recurrent, None, mask=mask, training=False,
                          x_proj=embeddings @ kernel)
    plain = lstm_forward(embeddings[indices], kernel, recurrent, None, mask=mask,
                         training=False)
    expected = reference.lstm_forward(embeddings[indices], kernel, recurrent, None,
                                      mask=mask, training=False)
    for a, b, c in zip(folded[:3], plain[:3], expected[:3]):
        np.testing.assert_allclose(a, b, **TOL[dtype])
        np.testing.assert_allclose(a, c, **TOL[dtype])


def test_x_proj_is_bitwise_the_same_for_any_thread_count():
    rng = np.random.default_rng(2)
    embeddings, kernel, recurrent, bias, indices, mask = _problem(rng, 72, 9, 40, 5, 6,
                                                                  np.float32)
    table = embeddings @ kernel
    before = fastseq.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            fastseq.set_num_threads(threads)
            results.append(lstm_forward(indices, None, recurrent, bias, mask=mask,
                                        training=False, x_proj=table)[:3])
    finally:
        fastseq.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_x_proj_bad_inputs_name_what_was_expected():
    rng = np.random.default_rng(3)
    embeddings, kernel, recurrent, bias, indices, _ = _problem(rng, 2, 3, 5, 2, 3, np.float32)
    table = embeddings @ kernel
    with pytest.raises(ValueError, match="kernel must be None when x_proj"):
        lstm_forward(indices, kernel, recurrent, bias, training=False, x_proj=table)
    with pytest.raises(ValueError, match="x_proj is for inference"):
        lstm_forward(indices, None, recurrent, bias, x_proj=table)  # training=True
    with pytest.raises(ValueError, match="x_proj is for inference"):
        lstm_forward(indices, None, recurrent, bias, training=False, x_proj=table,
                     recurrent_masks=np.ones((4, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"x_proj must have shape \(vocabulary, 4 \* units\)"):
        lstm_forward(indices, None, recurrent, bias, training=False, x_proj=table[:, :-1])
    with pytest.raises(TypeError, match="must have dtype float32"):
        lstm_forward(indices, None, recurrent.astype(np.float64), bias, training=False,
                     x_proj=table)
    with pytest.raises(ValueError, match=r"x must be 2-D \(batch, time\) indices"):
        lstm_forward(indices[..., None], None, recurrent, bias, training=False, x_proj=table)
    with pytest.raises(TypeError, match="int32 or int64"):
        lstm_forward(indices.astype(np.float32), None, recurrent, bias, training=False,
                     x_proj=table)
    bad = indices.copy()
    bad[1, 2] = 5
    with pytest.raises(IndexError, match=r"index 5 at position \(1, 2\) is out of range: "
                                         r"indices must be in \[0, 5\)"):
        lstm_forward(bad, None, recurrent, bias, training=False, x_proj=table)
    bad[1, 2] = -1
    with pytest.raises(IndexError, match=r"index -1 at position \(1, 2\)"):
        lstm_forward(bad, None, recurrent, bias, training=False, x_proj=table)


# ---------------------------------------------------------------- the layer


def _model(V=40, D=6, units=5, mask_zero=True, go_backwards=False, return_sequences=False,
           dtype=None, seed=0):
    fastseq.utils.set_random_seed(seed)
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = Sequential([Embedding(V, D, mask_zero=mask_zero, **kwargs),
                        LSTM(units, go_backwards=go_backwards,
                             return_sequences=return_sequences, **kwargs),
                        Dense(1, activation="sigmoid", **kwargs)])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _batch(rng, B=12, T=9, V=40):
    x = rng.integers(1, V, (B, T))
    for b in range(B):  # pre-padding of varied lengths (mask_zero)
        x[b, :rng.integers(0, T)] = 0
    return x


def _plain(model, x):
    """The LSTM's output from the two layers' ordinary forward passes."""
    embedding, lstm = model.layers[:2]
    y = embedding.forward(x, training=False)
    return lstm.forward(y, mask=embedding.compute_mask(x), training=False)


@pytest.mark.parametrize("mask_zero", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_forward_from_indices_is_the_two_layers_forward(mask_zero, go_backwards,
                                                        return_sequences):
    rng = np.random.default_rng(4)
    model = _model(mask_zero=mask_zero, go_backwards=go_backwards,
                   return_sequences=return_sequences)
    x = _batch(rng)
    model.predict(x, verbose=0)  # built
    embedding, lstm = model.layers[:2]
    assert lstm.folds_embedding(embedding)
    y = lstm.forward_from_indices(x, embedding, mask=embedding.compute_mask(x))
    assert lstm._folded is not None  # the table path ran
    np.testing.assert_allclose(y, _plain(model, x), rtol=1e-5, atol=1e-6)
    assert lstm._cache is None  # inference keeps no training cache


def test_return_state_and_float_indices_as_keras_casts_them():
    rng = np.random.default_rng(5)
    fastseq.utils.set_random_seed(0)
    embedding, lstm = Embedding(30, 4), LSTM(3, return_state=True)
    Sequential([embedding, lstm]).predict(_batch(rng, V=30), verbose=0)
    x = _batch(rng, V=30)
    out = lstm.forward_from_indices(x.astype(np.float32), embedding)
    expected = lstm.forward(embedding.forward(x), training=False)
    assert len(out) == 3
    for a, b in zip(out, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fractional part"):
        lstm.forward_from_indices(x + 0.5, embedding)
    with pytest.raises(IndexError, match="out of range: indices must be in"):
        lstm.forward_from_indices(x + 30, embedding)
    with pytest.raises(ValueError, match="mask of shape"):
        lstm.forward_from_indices(x, embedding, mask=np.ones((2, 2), bool))


def test_the_table_is_kept_while_the_weights_are_unchanged():
    rng = np.random.default_rng(6)
    model = _model()
    embedding, lstm = model.layers[:2]
    x = _batch(rng)
    model.predict(x, verbose=0)
    lstm.forward_from_indices(x, embedding)
    table = lstm._folded[3]
    lstm.forward_from_indices(_batch(rng), embedding)
    assert lstm._folded[3] is table


def _changes():
    """Ways a weight changes in place or is replaced, each (name, change(model))."""
    def optimizer_step(model):
        rng = np.random.default_rng(7)
        model.train_on_batch(_batch(rng), rng.integers(0, 2, 12).astype(np.float32))

    def set_weights(model):
        weights = model.get_weights()
        weights[0] = weights[0] + 0.25
        model.set_weights(weights)

    def assign_kernel(model):
        lstm = model.layers[1]
        lstm.kernel.assign(lstm.kernel.numpy() * 1.5)

    def write_embeddings_in_place(model):
        model.layers[0].embeddings.value[3] += 1.0  # a user's write: no call at all

    def write_kernel_in_place(model):
        model.layers[1].kernel.data[0, :] -= 0.5

    return [optimizer_step, set_weights, assign_kernel, write_embeddings_in_place,
            write_kernel_in_place]


@pytest.mark.parametrize("change", _changes(), ids=lambda f: f.__name__)
def test_the_table_follows_every_change_of_the_weights(change):
    rng = np.random.default_rng(8)
    model = _model()
    embedding, lstm = model.layers[:2]
    x = _batch(rng)
    x[:, -1] = 3  # reads the row the in-place write changes
    model.predict(x, verbose=0)
    before = lstm.forward_from_indices(x, embedding, embedding.compute_mask(x))
    change(model)
    after = lstm.forward_from_indices(x, embedding, embedding.compute_mask(x))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _plain(model, x), rtol=1e-5, atol=1e-6)


def test_no_table_where_it_does_not_pay_or_apply():
    rng = np.random.default_rng(9)
    # a vocabulary above 8 batches' tokens: the plain path, no table kept
    model = _model(V=2000)
    embedding, lstm = model.layers[:2]
    x = _batch(rng, B=4, T=5, V=2000)
    model.predict(x, verbose=0)
    y = lstm.forward_from_indices(x, embedding, embedding.compute_mask(x))
    assert lstm._folded is None
    np.testing.assert_array_equal(y, _plain(model, x))
    # an activity penalty on the Embedding needs its output: not foldable
    assert not lstm.folds_embedding(Embedding(5, 2, activity_regularizer="l2"))
    assert not lstm.folds_embedding(Dense(3))


def test_float64_model_and_the_reference_backend():
    rng = np.random.default_rng(10)
    for use_reference in (False, True):
        model = _model(dtype="float64")
        if use_reference:
            model._use_ops(get_ops("reference"))
        embedding, lstm = model.layers[:2]
        x = _batch(rng)
        model.predict(x, verbose=0)
        y = lstm.forward_from_indices(x, embedding, embedding.compute_mask(x))
        assert y.dtype == np.float64 and lstm._folded is not None
        np.testing.assert_allclose(y, _plain(model, x), rtol=1e-12, atol=1e-13)


# ------------------------------------------------- outputs not written (return_sequences=False)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_without_return_sequences_the_state_and_gradients_are_unchanged(training, masked,
                                                                         go_backwards):
    from fastseq._api.lstm import lstm_backward

    rng = np.random.default_rng(11)
    B, T, D, H = 40, 7, 3, 4
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    _, kernel, recurrent, bias, _, mask = _problem(rng, B, T, 5, D, H, np.float32)
    kwargs = dict(mask=mask if masked else None, go_backwards=go_backwards, training=training)
    full = lstm_forward(x, kernel, recurrent, bias, **kwargs)
    last = lstm_forward(x, kernel, recurrent, bias, return_sequences=False, **kwargs)
    assert last[0] is None
    np.testing.assert_array_equal(full[1], last[1])
    np.testing.assert_array_equal(full[2], last[2])
    expected = reference.lstm_forward(x, kernel, recurrent, bias, return_sequences=False,
                                      **kwargs)
    assert expected[0] is None
    np.testing.assert_allclose(last[1], expected[1], rtol=1e-5, atol=1e-6)
    if training:
        gh = rng.standard_normal((B, H)).astype(np.float32)
        for a, b in zip(lstm_backward(full[3], grad_h_last=gh),
                        lstm_backward(last[3], grad_h_last=gh)):
            np.testing.assert_array_equal(a, b)


def test_a_layer_without_return_sequences_trains_as_before():
    # the layer asks the kernels for the last state only; its fit must match the reference
    # backend's, which computes the outputs
    rng = np.random.default_rng(12)
    x, y = _batch(rng), rng.integers(0, 2, 12).astype(np.float32)
    losses = []
    for use_reference in (False, True):
        model = _model()
        if use_reference:
            model._use_ops(get_ops("reference"))
        losses.append([model.train_on_batch(x, y) for _ in range(3)])
        losses[-1].append(model.predict(x, verbose=0))
    np.testing.assert_allclose(losses[0][:3], losses[1][:3], rtol=1e-5)
    np.testing.assert_allclose(losses[0][3], losses[1][3], rtol=1e-5, atol=1e-6)


def test_forward_from_indices_is_bitwise_the_same_for_any_thread_count():
    # the table (a BLAS product) and the kernel, each made again under 1 and 2 threads
    rng = np.random.default_rng(13)
    model = _model(V=60)
    embedding, lstm = model.layers[:2]
    x = _batch(rng, B=72, V=60)
    model.predict(x, verbose=0)
    before = fastseq.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            fastseq.set_num_threads(threads)
            lstm._folded = None
            results.append(lstm.forward_from_indices(x, embedding, embedding.compute_mask(x)))
    finally:
        fastseq.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


# ------------------------------------------- the executor's use (Model._embedding_folds)

@pytest.mark.parametrize("mask_zero", [False, True])
def test_predict_and_evaluate_fold_the_embedding_with_the_same_results(mask_zero):
    rng = np.random.default_rng(14)
    model = _model(mask_zero=mask_zero)
    x, y = _batch(rng, B=50), rng.integers(0, 2, 50).astype(np.float32)
    folded = model.predict(x, batch_size=16, verbose=0)
    folded_loss = model.evaluate(x, y, verbose=0)
    assert model._embedding_folds() == {0} and model.layers[1]._folded is not None
    model._embedding_folds = lambda: set()
    np.testing.assert_allclose(folded, model.predict(x, batch_size=16, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(folded_loss, model.evaluate(x, y, verbose=0), rtol=1e-5)
    # training runs the two layers as usual (the backward needs the embedded inputs)
    model.train_on_batch(x, y)


def test_no_fold_where_the_embedding_output_has_another_reader():
    from fastseq.layers import GlobalAveragePooling1D, Input, concatenate
    from fastseq.models import Model

    inputs = Input((None,), dtype="int32")
    embedded = Embedding(30, 4)(inputs)
    shared = Model(inputs, concatenate([LSTM(3)(embedded), GlobalAveragePooling1D()(embedded)]))
    assert shared._embedding_folds() == set()
    stacked = Sequential([Embedding(30, 4), LSTM(3, return_sequences=True), LSTM(2)])
    stacked.build((None, 5))
    assert stacked._embedding_folds() == {0}


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_an_embedding_in_another_dtype_is_cast_as_the_executor_casts_it(dtypes):
    rng = np.random.default_rng(15)
    fastseq.utils.set_random_seed(0)
    embedding, lstm = Embedding(30, 4, dtype=dtypes[0]), LSTM(3, dtype=dtypes[1])
    model = Sequential([embedding, lstm])
    x = _batch(rng, V=30)
    expected = model.predict(x, verbose=0)
    for _ in range(2):  # with a table, then (a vocabulary too large) without
        y = lstm.forward_from_indices(x, embedding)
        assert y.dtype == np.dtype(dtypes[1])
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
        lstm._FOLD_MAX_BATCHES = 0
