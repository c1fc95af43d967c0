"""Batches that do not sit in memory as whole arrays: generators, iterators, iterables and
``Sequence`` / ``PyDataset`` objects, fed to the training loop one batch at a time.

    source = BatchSource(generator, steps=100)       # what fit / evaluate / predict build
    for epoch in range(epochs):
        for step, x, y, sample_weight in source.epoch():
            ...                                     # train on the batch
    source.close()

While the caller trains on one batch, the next ones are prepared in the background by
``workers`` threads (a queue of at most ``max_queue_size`` batches), so that file reading and
tokenizing overlap the kernels. Threads, not processes, by default: nothing is pickled and the
kernels release the GIL while they run. Keras's rules for epochs:

- a Sequence is read in index order (a new random order each epoch with ``shuffle=True``),
  and its ``on_epoch_end()`` is called after each epoch;
- a generator or iterator goes on where the previous epoch stopped; an epoch ends after
  ``steps`` batches or when it is exhausted. Running out before ``steps`` warns as Keras
  ("Your input ran out of data; interrupting training") and sets ``ran_out``; an epoch that
  gets no batch at all raises.
"""
import collections
import collections.abc
import concurrent.futures
import itertools
import multiprocessing
import queue
import threading
import warnings
import weakref

import numpy as np

from .sequence_data import Sequence

__all__ = ["BatchSource", "is_batch_source", "unpack_batch"]

# Keras's own base classes, recognised by name so that keras is never imported.
_KERAS_SEQUENCE_NAMES = ("PyDataset", "Sequence")
_KERAS_PACKAGES = ("keras", "tf_keras", "tensorflow")
_NOT_BATCH_SOURCES = (np.ndarray, list, tuple, dict, str, bytes, bytearray, memoryview)


def _is_keras_sequence(data):
    for cls in type(data).__mro__:
        if (cls.__name__ in _KERAS_SEQUENCE_NAMES
                and cls.__module__.split(".")[0] in _KERAS_PACKAGES):
            return True
    return False


def _is_sequence(data):
    """A fastseq Sequence, or a subclass of Keras's PyDataset / Sequence."""
    if isinstance(data, Sequence):
        return True
    return (_is_keras_sequence(data) and hasattr(data, "__len__")
            and hasattr(data, "__getitem__"))


def is_batch_source(x):
    """Whether ``x`` yields whole batches (a generator, an iterator, a Sequence / PyDataset or
    another iterable), as opposed to data held whole: an array, or a list / tuple / dict of
    arrays (several inputs)."""
    if x is None or isinstance(x, _NOT_BATCH_SOURCES) or isinstance(x, collections.abc.Mapping):
        return False
    if _is_sequence(x):
        return True
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        return False  # array-likes (pandas, torch tensors): data, not batches
    return hasattr(x, "__next__") or hasattr(x, "__iter__")


def unpack_batch(batch, index):
    """``(x, y, sample_weight)`` of one batch: ``(x,)``, ``(x, y)``, ``(x, y, sample_weight)``
    (a tuple or a list) or a bare ``x`` (an array or a dict of arrays); missing parts are None.
    ``index`` names the batch in the error."""
    if isinstance(batch, (tuple, list)):
        if len(batch) in (1, 2, 3) and batch[0] is not None:
            x, y, sample_weight = (tuple(batch) + (None, None))[:3]
            return x, y, sample_weight
        what = (f"a {type(batch).__name__} of length {len(batch)}" if len(batch) not in (1, 2, 3)
                else f"a {type(batch).__name__} whose x is None")
        raise ValueError(f"batch {index}: expected x, (x,), (x, y) or (x, y, sample_weight), "
                         f"got {what}")
    if isinstance(batch, (np.ndarray, dict)) or hasattr(batch, "__array__"):
        return batch, None, None
    shown = repr(batch)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise TypeError(f"batch {index}: expected x, (x,), (x, y) or (x, y, sample_weight) of "
                    f"arrays, got {type(batch).__name__}: {shown}")


class BatchSourceError(RuntimeError):
    """An error in the user's batch code whose own exception type could not be rebuilt."""


def _reraise(exc, where):
    """Raise ``exc`` again in the caller, as its own type when possible, with a message that
    says which batch failed; the original (and its traceback) is chained as the cause."""
    message = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, StopIteration):  # would end the caller's generator silently
        err = BatchSourceError(message)
    else:
        try:
            err = type(exc)(message)
        except Exception:
            err = BatchSourceError(message)
    raise err from exc


# ----------------------------------------------------------------- background workers
_END, _BATCH, _ERROR = "end", "batch", "error"


def _produce(iterator, out, stop):
    """Thread body: draw batches from ``iterator`` into the queue ``out`` until it ends,
    raises, or ``stop`` is set. Holds no reference to the BatchSource."""
    while not stop.is_set():
        try:
            item = (_BATCH, next(iterator))
        except StopIteration:
            item = (_END, None)
        except BaseException as exc:  # handed to the caller, who re-raises it
            item = (_ERROR, exc)
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                break
            except queue.Full:
                continue
        if item[0] != _BATCH:
            return


class _Prefetcher:
    """One thread that draws from an iterator ahead of the caller (a generator cannot be
    advanced by two threads at once, so there is one whatever ``workers`` says)."""

    def __init__(self, iterator, max_queue_size):
        self.queue = queue.Queue(max(1, max_queue_size))
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=_produce, name="fastseq-batches", daemon=True,
                                       args=(iterator, self.queue, self.stop_event))
        self.thread.start()

    def get(self):
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():
                    return (_END, None)  # stopped from outside

    def stop(self, wait=True):
        self.stop_event.set()
        if wait and self.thread is not threading.current_thread():
            # a batch being drawn finishes first; the user's code cannot be interrupted
            self.thread.join(timeout=30)


_PROCESS_SEQUENCE = None


def _install_sequence(sequence):
    global _PROCESS_SEQUENCE
    _PROCESS_SEQUENCE = sequence


def _getitem_in_process(index):
    return _PROCESS_SEQUENCE[index]


class _Workers:
    """The threads / processes of one BatchSource; closed by BatchSource.close() or when the
    BatchSource is garbage collected (it holds no reference back to it)."""

    def __init__(self):
        self.pool = None
        self.prefetcher = None

    def close(self, wait=True):
        if self.prefetcher is not None:
            self.prefetcher.stop(wait)
            self.prefetcher = None
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class BatchSource:
    """Batches of ``data`` (a generator, an iterator, an iterable of batches, or a
    Sequence / PyDataset), one epoch at a time, prepared in the background.

    steps: batches per epoch (None: a Sequence's ``len``, or until a generator is exhausted).
    shuffle: a new random order of a Sequence's batches each epoch (``fastseq.utils.get_rng``).
    workers, use_multiprocessing, max_queue_size: as Keras; None takes the Sequence's own
    settings (its ``PyDataset`` init kwargs), else 1, False, 10. ``workers=0`` prepares the
    batches in the caller. ``what`` names the data in messages ("x", "validation_data").
    """

    def __init__(self, data, steps=None, shuffle=False, workers=None, use_multiprocessing=None,
                 max_queue_size=None, what="x"):
        if not is_batch_source(data):
            raise TypeError(f"{what}: expected a generator, an iterator, an iterable of batches "
                            f"or a Sequence / PyDataset, got {type(data).__name__}")
        self.data = data
        self.what = what
        self.is_sequence = _is_sequence(data)
        own = data if self.is_sequence else None

        def setting(value, name, default):
            if value is None and own is not None:
                value = getattr(own, name, default)
            return default if value is None else value

        self.steps = None if steps is None else _check_count(steps, "steps", 1)
        self.shuffle = bool(shuffle)
        self.workers = _check_count(setting(workers, "workers", 1), "workers", 0)
        self.use_multiprocessing = bool(setting(use_multiprocessing, "use_multiprocessing",
                                                False))
        self.max_queue_size = _check_count(setting(max_queue_size, "max_queue_size", 10),
                                           "max_queue_size", 1)
        if self.use_multiprocessing and self.workers and not self.is_sequence:
            warnings.warn(f"{self.what}: use_multiprocessing needs a Sequence (a generator "
                          "cannot be shared between processes); its batches are prepared "
                          "in a thread", stacklevel=2)
            self.use_multiprocessing = False
        self.ran_out = False
        self._iterator = None  # a generator's iterator, kept across epochs
        self._order = None  # a Sequence's order of batches in the pass under way
        self._position = 0
        self._drawn = 0  # batches drawn from a generator so far (its batch index)
        self._workers = _Workers()
        self._finalizer = weakref.finalize(self, self._workers.close, False)

    # -------------------------------------------------------------- public
    @property
    def num_batches(self):
        """Batches per epoch: ``steps`` if given, a Sequence's ``len``, else None (unknown)."""
        if self.steps is not None:
            return self.steps
        if self.is_sequence:
            return self._length()
        return None

    def epoch(self, steps=None):
        """An iterator of ``(step_index, x, y, sample_weight)`` over one epoch."""
        steps = self.steps if steps is None else _check_count(steps, "steps", 1)
        if self.is_sequence:
            return self._sequence_epoch(steps)
        return self._iterator_epoch(steps)

    def close(self):
        """Stop the background workers (also done when the BatchSource is collected)."""
        self._workers.close()
        self._iterator = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -------------------------------------------------------------- Sequences
    def _length(self):
        try:
            n = len(self.data)
        except Exception as exc:
            _reraise(exc, f"{self.what}: len() of the {type(self.data).__name__} failed")
        return n

    def _sequence_epoch(self, steps):
        n = self._length()
        if n == 0:
            raise ValueError(f"{self.what}: the {type(self.data).__name__} has length 0 "
                             "(no batch)")
        if hasattr(self.data, "on_epoch_begin"):
            self.data.on_epoch_begin()
        if self._order is None or steps is None or self._position >= len(self._order):
            # a new pass (Keras: with steps, a pass spans epochs until every batch was seen)
            self._order = get_order(n, self.shuffle)
            self._position = 0
        indices = self._order[self._position:].tolist()
        if steps is not None:
            indices = indices[:steps]
        self._position += len(indices)
        step = -1
        for step, (index, batch) in enumerate(self._fetch(indices, n)):
            x, y, sample_weight = unpack_batch(batch, index)
            yield step, x, y, sample_weight
        if steps is not None and step + 1 < steps:
            self._interrupted(steps)
        if hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()

    def _fetch(self, indices, n):
        where = f"{self.what}: batch {{}} of the {type(self.data).__name__} (len() = {n})"
        if self.workers == 0:
            for index in indices:
                try:
                    batch = self.data[index]
                except Exception as exc:
                    _reraise(exc, where.format(index))
                yield index, batch
            return
        pool = self._pool()
        get = _getitem_in_process if self.use_multiprocessing else self.data.__getitem__
        pending = collections.deque()
        todo = iter(indices)
        try:
            for index in itertools.islice(todo, self.max_queue_size):
                pending.append((index, pool.submit(get, index)))
            while pending:
                index, future = pending.popleft()
                try:
                    batch = future.result()
                except Exception as exc:
                    self.close()
                    _reraise(exc, where.format(index))
                following = next(todo, None)
                if following is not None:
                    pending.append((following, pool.submit(get, following)))
                yield index, batch
        finally:
            for _, future in pending:
                future.cancel()
            if self.use_multiprocessing:
                # processes see the Sequence as it was when they forked: a new pool each
                # epoch, after on_epoch_end, as Keras's OrderedEnqueuer
                self._workers.close()

    def _pool(self):
        if self._workers.pool is None:
            if self.use_multiprocessing:
                self._workers.pool = concurrent.futures.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("fork"),
                    initializer=_install_sequence, initargs=(self.data,))
            else:
                self._workers.pool = concurrent.futures.ThreadPoolExecutor(
                    self.workers, thread_name_prefix="fastseq-batches")
        return self._workers.pool

    # -------------------------------------------------------------- generators
    def _iterator_epoch(self, steps):
        if self._iterator is None or steps is None:
            self._start_iterator()
        step = 0
        while steps is None or step < steps:
            batch = self._next_batch()
            if batch is _END:
                self._stop_iterator()
                if step == 0:
                    raise ValueError(
                        f"{self.what}: the {type(self.data).__name__} yielded no batch this "
                        f"epoch (exhausted after {self._drawn} batches). A generator can be "
                        "read once: give an endless one (while True: ...) with steps_per_epoch,"
                        " or a Sequence")
                if steps is not None:
                    self._interrupted(steps)
                return
            x, y, sample_weight = unpack_batch(batch, self._drawn - 1)
            yield step, x, y, sample_weight
            step += 1

    def _start_iterator(self):
        self._stop_iterator()
        try:
            self._iterator = iter(self.data)
        except Exception as exc:
            _reraise(exc, f"{self.what}: iter() of the {type(self.data).__name__} failed")
        if self.workers:
            self._workers.prefetcher = _Prefetcher(self._iterator, self.max_queue_size)

    def _stop_iterator(self):
        self._workers.close()
        self._iterator = None

    def _next_batch(self):
        where = f"{self.what}: batch {self._drawn} of the {type(self.data).__name__}"
        if self._workers.prefetcher is None:
            try:
                batch = next(self._iterator)
            except StopIteration:
                return _END
            except Exception as exc:
                self._stop_iterator()
                _reraise(exc, where)
        else:
            kind, batch = self._workers.prefetcher.get()
            if kind == _END:
                return _END
            if kind == _ERROR:
                self._stop_iterator()
                if not isinstance(batch, Exception):  # KeyboardInterrupt, SystemExit
                    raise batch
                _reraise(batch, where)
        self._drawn += 1
        return batch

    def _interrupted(self, steps):
        self.ran_out = True
        warnings.warn(
            f"{self.what}: Your input ran out of data; interrupting training. Make sure that "
            "your dataset or generator can generate at least `steps_per_epoch * epochs` "
            f"batches (steps_per_epoch={steps} here).", UserWarning, stacklevel=3)


def get_order(n, shuffle):
    """Batch indices 0..n-1, in a random order (fastseq.utils.get_rng) when ``shuffle``."""
    if not shuffle:
        return np.arange(n)
    from fastseq.utils import get_rng

    return get_rng().permutation(n)
