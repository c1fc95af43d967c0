"""The bodies of the Ray actors (workers): plain classes, turned into actors with
``ray.remote`` by the driver, so this module imports without Ray."""
import hashlib
import os
import socket
import time

import numpy as np

from fastseq._pickling import model_from_state, restore_model_state
from fastseq.distributed._gradients import pack_gradients, unpack_gradients


def _to_host(ops, array):
    return None if array is None else np.asarray(ops.to_numpy(array))


def _start(threads):
    import fastseq

    fastseq.set_num_threads(threads)


def _build(state, model_fn):
    """A replica: ``model_fn()`` (compiled) given the driver's weights and optimizer state,
    or the driver's model rebuilt from its state."""
    if model_fn is None:
        return model_from_state(state)
    return restore_model_state(model_fn(), state, "the driver's model")


def worker_info():
    import ray

    return {"pid": os.getpid(), "host": socket.gethostname(),
            "node": ray.get_runtime_context().get_node_id()}


def weights_digest(model):
    """SHA-256 of every weight's bytes and the optimizer's state, in order."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        for value in optimizer.get_state():
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


class Replica:
    """One data-parallel worker: a replica of the driver's model. Each step it applies the
    previous step's averaged gradients (the same update the driver applied), then computes
    the gradients of its shard of the new global batch."""

    def __init__(self, state, model_fn, threads):
        _start(threads)
        self.model = _build(state, model_fn)

    def info(self):
        return worker_info()

    def _apply(self, update, learning_rate):
        model = self.model
        unpack_gradients(update, model.trainable_weights, model.ops)
        model.optimizer.learning_rate = learning_rate
        model._apply_step()

    def step(self, update, learning_rate, shard):
        """Apply ``update`` (None: nothing to apply), then the gradients of ``shard``
        (prepared (xs, ys, sample weights); None: no samples this step). Returns (total
        loss, per-output losses, outputs, output masks, packed gradients) or None, and the
        seconds spent computing."""
        start = time.perf_counter()
        if update is not None:
            self._apply(update, learning_rate)
        result = None
        if shard is not None:
            model, ops = self.model, self.model.ops
            total, values, y_preds, masks = model._gradient_step(*shard)
            result = (float(total), [None if v is None else float(v) for v in values],
                      [_to_host(ops, p) for p in y_preds], [_to_host(ops, m) for m in masks],
                      pack_gradients(model.trainable_weights, ops))
        return result, time.perf_counter() - start

    def apply(self, update, learning_rate):
        self._apply(update, learning_rate)

    def sync(self, state):
        """Take the driver's weights and optimizer state (before a new fit)."""
        restore_model_state(self.model, state, "the driver's model")

    def digest(self):
        return weights_digest(self.model)


class Predictor:
    """One corpus-predict worker: the model (and the tokenizer) arrive once, at start."""

    def __init__(self, state, encoder, batch_size, threads):
        _start(threads)
        self.model = model_from_state(state)
        self.encoder = encoder
        self.batch_size = batch_size

    def info(self):
        return worker_info()

    def predict(self, chunk):
        x = chunk if self.encoder is None else self.encoder(chunk)
        return self.model.predict(x, batch_size=self.batch_size, verbose=0)
