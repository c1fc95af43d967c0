"""Corpus-scale predict on Ray actors: the model (and a tokenizer) shipped once per worker,
chunks of the corpus dealt to the workers in turn, the predictions returned in the
corpus's order."""
import collections
import itertools

import numpy as np

from fastseq.distributed import _replica
from fastseq.distributed._ray import require_ray

__all__ = ["predict", "TextEncoder"]


class TextEncoder:
    """Raw texts -> the model's input: a Tokenizer's ``texts_to_sequences`` padded by
    ``pad_sequences(maxlen, padding, truncating)``, a TextVectorization layer called on the
    texts, or any callable. Pickled with its tokenizer, once per worker."""

    def __init__(self, tokenizer, maxlen=None, padding="pre", truncating="pre"):
        if not callable(tokenizer) and not hasattr(tokenizer, "texts_to_sequences"):
            raise TypeError("tokenizer must be a fastseq Tokenizer, a TextVectorization layer "
                            f"or a callable texts -> array, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.maxlen, self.padding, self.truncating = maxlen, padding, truncating

    def __call__(self, texts):
        tokenizer = self.tokenizer
        if hasattr(tokenizer, "texts_to_sequences"):
            from fastseq.preprocessing.sequence import pad_sequences

            return pad_sequences(tokenizer.texts_to_sequences(list(texts)), maxlen=self.maxlen,
                                 padding=self.padding, truncating=self.truncating)
        if hasattr(tokenizer, "get_vocabulary"):  # a TextVectorization layer
            return np.asarray(tokenizer(np.asarray(list(texts), dtype=object)))
        return tokenizer(texts)


def _chunks(data, size):
    """Slices of an array / list (no copy of the whole), or lists from any iterable."""
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        for start in range(0, len(data), size):
            yield data[start:start + size]
        return
    iterator = iter(data)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def _join(parts):
    if not parts:
        return np.zeros((0,), dtype=np.float32)
    if isinstance(parts[0], list):  # several outputs
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
    return np.concatenate(parts)


def predict(model, data, batch_size=32, num_workers=2, tokenizer=None, maxlen=None,
            padding="pre", truncating="pre", chunk_size=None, threads_per_worker=1,
            cpus_per_worker=None, timeout=600.0):
    """``model.predict`` over a corpus on ``num_workers`` Ray actors.

    ``data``: an array (or list) of model inputs, or of raw texts when ``tokenizer`` is
    given (a Tokenizer, with ``maxlen`` / ``padding`` / ``truncating`` for pad_sequences; a
    TextVectorization layer; or a callable); any iterable (a generator reading files), read
    ``chunk_size`` items at a time with at most two chunks per worker in flight; or a
    ``ray.data.Dataset`` (one column of inputs): then the result is a Dataset with a
    ``prediction`` column, in the input's order. Otherwise the predictions come back as one
    array (a list of arrays for several outputs), in the input's order.

    The model (config + weights, no caches) and the tokenizer go to each worker once, when
    it starts; the Numba kernels compile once per worker."""
    from fastseq.distributed.data_parallel import _positive

    num_workers = _positive(num_workers, "num_workers")
    batch_size = _positive(batch_size, "batch_size")
    chunk_size = _positive(chunk_size or 8 * batch_size, "chunk_size")
    encoder = None if tokenizer is None else TextEncoder(tokenizer, maxlen, padding, truncating)
    cpus = threads_per_worker if cpus_per_worker is None else cpus_per_worker
    ray = require_ray()
    from fastseq._pickling import model_state

    state = ray.put(model_state(model))
    if type(data).__module__.startswith("ray.data"):
        return _predict_dataset(ray, data, state, encoder, batch_size, num_workers, chunk_size,
                                threads_per_worker, cpus)
    actor = ray.remote(_replica.Predictor).options(num_cpus=cpus, max_restarts=0)
    workers = [actor.remote(state, encoder, batch_size, threads_per_worker)
               for _ in range(num_workers)]
    try:
        parts, in_flight = [], collections.deque()
        for k, chunk in enumerate(_chunks(data, chunk_size)):
            if len(in_flight) >= 2 * num_workers:
                parts.append(ray.get(in_flight.popleft(), timeout=timeout))
            in_flight.append(workers[k % num_workers].predict.remote(chunk))
        while in_flight:
            parts.append(ray.get(in_flight.popleft(), timeout=timeout))
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
    return _join(parts)


class _DatasetPredictor:
    """``Dataset.map_batches`` callable: one per worker, the model built once."""

    def __init__(self, state, encoder, batch_size, threads):
        import ray

        if isinstance(state, ray.ObjectRef):
            state = ray.get(state)
        self.predictor = _replica.Predictor(state, encoder, batch_size, threads)

    def __call__(self, batch):
        column = next(iter(batch))
        predictions = self.predictor.predict(batch[column])
        if isinstance(predictions, list):
            raise ValueError("predict on a ray.data.Dataset takes single-output models")
        return {"prediction": list(predictions) if predictions.ndim > 1 else predictions}


def _predict_dataset(ray, dataset, state, encoder, batch_size, num_workers, chunk_size,
                     threads, cpus):
    # a Dataset keeps a copy of the DataContext current when it was made, and runs with that
    # copy: setting the option on DataContext.get_current() now would not reach it (its
    # batches then came back in the order the workers finished, in some runs)
    # (older Rays, whose Datasets have no context of their own, read the current one)
    context = getattr(dataset, "context", None) or ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    return dataset.map_batches(
        _DatasetPredictor, fn_constructor_args=(state, encoder, batch_size, threads),
        batch_size=chunk_size, concurrency=num_workers, num_cpus=cpus, batch_format="numpy")
