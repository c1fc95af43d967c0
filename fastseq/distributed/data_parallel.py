"""Synchronous data-parallel training on Ray actors.

The driver keeps the model the user gave (or ``model_fn()``): its ``fit`` runs unchanged
(shuffling, validation, callbacks, progress bar, generators, class weights), except that
each training step is spread over the workers. For one global batch:

1. the driver cuts the batch into ``num_workers`` contiguous shards (np.array_split) and
   sends each worker its shard, together with the previous step's averaged gradients;
2. each worker (a replica of the model on its own process) applies that update, then runs
   forward, loss and backward on its shard (``Model._gradient_step``) and sends back its
   loss, outputs and gradients: the dense ones as one flat buffer, the Embedding ones as
   (rows, values);
3. the driver averages the gradients worker by worker, in rank order, each weighted by its
   shard's share of the batch (the loss is a mean over samples), applies the optimizer
   update to its own model, and feeds the global loss and metrics to the callbacks.

Every replica applies the same averaged gradients with the same optimizer code, so all
hold bitwise-equal weights (:meth:`DataParallel.replica_digests`). The driver is the
reducer: the gradients go through Ray's object store (shared memory on one machine). Ray's
collective allreduce (gloo) needs torch and sums in an order that depends on its ring, and
cannot carry row-sparse gradients; see the README section "Distributed (Ray)" for the
measured costs.

Faults: a worker that dies (or does not answer within ``step_timeout`` seconds) stops the
step with :class:`WorkerLostError` naming it, after the other workers are shut down; with
``on_worker_failure="restart"`` the run instead restarts every worker from the last
checkpoint a ``ModelCheckpoint`` callback wrote (checkpoints are written by the driver,
atomically, so a lost worker never leaves a half-written one).
"""
import os
import time
import warnings

import numpy as np

from fastseq._pickling import model_state, restore_model_state
from fastseq.callbacks import Callback, ModelCheckpoint
from fastseq.distributed import _replica
from fastseq.distributed._gradients import average_gradients, unpack_gradients
from fastseq.distributed._ray import require_ray

__all__ = ["DataParallel", "WorkerLostError", "fit"]

_FAILURE_MODES = ("raise", "restart")


class WorkerLostError(RuntimeError):
    """A data-parallel worker died or stopped answering; ``rank`` and ``info`` (pid, host,
    node) name it."""

    def __init__(self, message, rank=None, info=None):
        super().__init__(message)
        self.rank = rank
        self.info = info or {}


class _RunTracker(Callback):
    """Where the run is (epoch, step) and the last checkpoint a ModelCheckpoint wrote."""

    def __init__(self, checkpoints):
        super().__init__()
        self.checkpoints = [c for c in checkpoints if c.save_freq == "epoch"]
        self.epoch, self.step = 0, 0
        self.last_checkpoint = None  # (epoch, path, weights only)
        self._seen = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step = batch

    def on_epoch_end(self, epoch, logs=None):
        # runs after the user's callbacks: a file that changed this epoch was saved now
        for checkpoint in self.checkpoints:
            path = checkpoint._get_file_path(epoch, None, dict(logs or {}))
            try:
                stat = os.stat(path)
            except OSError:
                continue
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if self._seen.get(path) != key:
                self._seen[path] = key
                self.last_checkpoint = (epoch, path, checkpoint.save_weights_only)


def _positive(value, name, kind=int):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")
    if kind is int and int(value) != value:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return kind(value)


def _concat(parts):
    if any(p is None for p in parts):
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class DataParallel:
    """Synchronous data-parallel training of one model on ``num_workers`` Ray actors, each
    with ``threads_per_worker`` kernel threads (``fastseq.set_num_threads``) and
    ``cpus_per_worker`` Ray CPUs (default: the thread count).

    ``model``: a compiled model, or a picklable function returning one (then each worker
    builds its replica with it and takes the driver's weights). ``step_timeout``: seconds
    a step (or a worker's start) may take before the worker counts as lost.
    ``on_worker_failure``: "raise" (:class:`WorkerLostError`) or "restart" (from the last
    ModelCheckpoint, at most ``max_restarts`` times).

    Dropout draws its masks on each worker, so a model with dropout trains like one
    process only in distribution, not bitwise. Validation and ``evaluate`` / ``predict``
    run on the driver's model (use :func:`fastseq.distributed.predict` for a corpus).
    """

    def __init__(self, model, num_workers=2, threads_per_worker=1, cpus_per_worker=None,
                 step_timeout=300.0, on_worker_failure="raise", max_restarts=1):
        self._model_fn = None
        if callable(model) and not hasattr(model, "fit"):
            self._model_fn = model
            model = model()
        if not hasattr(model, "_gradient_step"):
            raise TypeError("DataParallel: expected a fastseq model or a function returning "
                            f"one, got {type(model).__name__}")
        model._check_compiled()
        self.model = model
        self.num_workers = _positive(num_workers, "num_workers")
        self.threads_per_worker = _positive(threads_per_worker, "threads_per_worker")
        self.cpus_per_worker = (self.threads_per_worker if cpus_per_worker is None
                                else _positive(cpus_per_worker, "cpus_per_worker", float))
        self.step_timeout = _positive(step_timeout, "step_timeout", float)
        if on_worker_failure not in _FAILURE_MODES:
            raise ValueError(f"on_worker_failure must be one of {_FAILURE_MODES}, got "
                             f"{on_worker_failure!r}")
        self.on_worker_failure = on_worker_failure
        self.max_restarts = int(max_restarts)
        self.workers = []
        self.worker_info = []
        self.step_timings = []  # per step: step_s, compute_s, reduce_s, comm_s, grad_bytes
        self._pending = None     # (object ref of the last averaged gradients, learning rate)
        self._tracker = None
        self._partial = None

    # ------------------------------------------------------------------ workers
    def _start_workers(self):
        ray = require_ray()
        needed, there = (self.num_workers * self.cpus_per_worker,
                         ray.cluster_resources().get("CPU", 0))
        if needed > there:  # an autoscaling cluster may add them; else the step times out
            warnings.warn(f"DataParallel: {self.num_workers} workers x {self.cpus_per_worker:g} "
                          f"CPUs need {needed:g} Ray CPUs, the cluster has {there:g} now: "
                          "the workers wait for CPUs (pass cpus_per_worker= to share them)",
                          RuntimeWarning, stacklevel=4)
        actor = ray.remote(_replica.Replica).options(
            num_cpus=self.cpus_per_worker, max_restarts=0, max_concurrency=1)
        state = ray.put(model_state(self.model))
        self.workers = [actor.remote(state, self._model_fn, self.threads_per_worker)
                        for _ in range(self.num_workers)]
        self.worker_info = [{} for _ in self.workers]
        infos = self._gather([w.info.remote() for w in self.workers], "starting")
        self.worker_info = infos
        self._pending = None

    def shutdown(self):
        """Stop the workers (the driver's model stays)."""
        if self.workers:
            ray = require_ray()
            for worker in self.workers:
                ray.kill(worker, no_restart=True)
        self.workers, self.worker_info, self._pending = [], [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _where(self):
        tracker = self._tracker
        if tracker is None:
            return ""
        return f" at epoch {tracker.epoch + 1}, step {tracker.step}"

    def _lost(self, rank, reason, cause=None):
        info = self.worker_info[rank] if rank < len(self.worker_info) else {}
        who = (f"worker {rank} of {self.num_workers} (pid {info.get('pid', '?')} on host "
               f"{info.get('host', '?')}, Ray node {str(info.get('node', '?'))[:12]})")
        message = (f"data-parallel fit: {who} {reason}{self._where()}. The other workers were "
                   "stopped; the driver's model holds the weights of the last complete "
                   "step. Pass on_worker_failure='restart' with a ModelCheckpoint callback to "
                   "recover from the last checkpoint.")
        self.shutdown()
        return WorkerLostError(message, rank, info)

    def _gather(self, refs, doing):
        """The results of one call per worker, in rank order; a dead or silent worker
        raises WorkerLostError naming it (never waits past ``step_timeout``)."""
        ray = require_ray()
        from ray.exceptions import GetTimeoutError, RayActorError

        deadline = time.monotonic() + self.step_timeout
        results = []
        for rank, ref in enumerate(refs):
            try:
                results.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic())))
            except GetTimeoutError:
                raise self._lost(rank, f"did not answer within {self.step_timeout:g} s while "
                                 f"{doing} (too few CPUs for {self.num_workers} workers x "
                                 f"{self.cpus_per_worker:g}? a hung process?)") from None
            except RayActorError as err:
                raise self._lost(rank, f"died while {doing} ({type(err).__name__})") from err
        return results

    # ------------------------------------------------------------------ one step
    def _train_step(self, xs, ys, sws):
        """Replaces the driver model's ``_train_step`` during fit (same arguments, same
        results): the step on the workers, the update on the driver."""
        ray = require_ray()
        model = self.model
        if not self.workers:
            self._start_workers()
        start = time.perf_counter()
        n = len(xs[0])
        bounds = np.cumsum([0] + [len(a) for a in np.array_split(np.arange(n),
                                                                 self.num_workers)])
        update, learning_rate = self._pending or (None, None)
        refs, sizes = [], []
        for rank, worker in enumerate(self.workers):
            lo, hi = int(bounds[rank]), int(bounds[rank + 1])
            shard = None
            if hi > lo:
                cut = slice(lo, hi)
                shard = tuple([None if a is None else a[cut] for a in arrays]
                              for arrays in (xs, ys, sws))
            sizes.append(hi - lo)
            refs.append(worker.step.remote(update, learning_rate, shard))
        results = self._gather(refs, "computing its gradients")
        reduce_start = time.perf_counter()
        done = [(r, size) for (r, _), size in zip(results, sizes) if r is not None]
        shares = [size / n for _, size in done]
        total = sum(share * r[0] for (r, _), share in zip(done, shares))
        values = [None if done[0][0][1][k] is None
                  else sum(share * r[1][k] for (r, _), share in zip(done, shares))
                  for k in range(len(done[0][0][1]))]
        y_preds = [_concat([r[2][k] for r, _ in done]) for k in range(len(done[0][0][2]))]
        masks = [_concat([r[3][k] for r, _ in done]) for k in range(len(done[0][0][3]))]
        averaged = average_gradients([r[4] for r, _ in done], [size for _, size in done])
        unpack_gradients(averaged, model.trainable_weights, model.ops)
        learning_rate = model.optimizer.learning_rate
        model._apply_step()
        self._pending = (ray.put(averaged), learning_rate)
        end = time.perf_counter()
        compute = max(seconds for _, seconds in results)
        self.step_timings.append({
            "step_s": end - start, "compute_s": compute, "reduce_s": end - reduce_start,
            "comm_s": max(0.0, reduce_start - start - compute),
            "grad_bytes": sum(r[4].nbytes for r, _ in done)})
        return total, values, y_preds, masks

    def _flush(self):
        """Send the last averaged gradients, so that every replica equals the driver."""
        if self._pending is not None and self.workers:
            update, learning_rate = self._pending
            self._gather([w.apply.remote(update, learning_rate) for w in self.workers],
                         "applying the last update")
        self._pending = None

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, **fit_kwargs):
        """``model.fit(x, y, **fit_kwargs)``, data-parallel; returns the History."""
        callbacks = list(fit_kwargs.pop("callbacks", None) or [])
        initial_epoch = int(fit_kwargs.pop("initial_epoch", 0))
        restarts = 0
        earlier = {}  # History of the epochs done before a restart
        while True:
            self._tracker = _RunTracker([c for c in callbacks if isinstance(c, ModelCheckpoint)])
            try:
                history = self._fit_once(x, y, callbacks + [self._tracker], initial_epoch,
                                         fit_kwargs)
            except WorkerLostError as err:
                checkpoint = self._tracker.last_checkpoint
                if self.on_worker_failure != "restart" or restarts >= self.max_restarts:
                    raise
                if checkpoint is None:
                    raise WorkerLostError(f"{err} No checkpoint was written before the loss, "
                                          "so there is nothing to restart from.", err.rank,
                                          err.info) from err
                restarts += 1
                epoch, path, weights_only = checkpoint
                warnings.warn(f"{err.args[0].split('. ')[0]}; restarting {self.num_workers} "
                              f"workers from the checkpoint of epoch {epoch + 1} ({path})",
                              RuntimeWarning, stacklevel=2)
                self._restore(path, weights_only)
                earlier = _keep_epochs(earlier, self._partial, epoch)
                initial_epoch = epoch + 1
                continue
            break
        if earlier:
            _prepend(history, earlier)
        return history

    def _fit_once(self, x, y, callbacks, initial_epoch, fit_kwargs):
        from fastseq.callbacks import History

        model = self.model
        self._partial = History()  # the epochs of this attempt, kept if it fails
        if self.workers:  # a second fit: the driver's weights may have changed since
            self._flush()
            state = require_ray().put(model_state(model))
            self._gather([w.sync.remote(state) for w in self.workers], "taking the weights")
        model._train_step = self._train_step  # this instance only; removed below
        try:
            result = model.fit(x, y, callbacks=callbacks + [self._partial],
                               initial_epoch=initial_epoch, **fit_kwargs)
        finally:
            del model._train_step
        self._flush()
        return result

    def _restore(self, path, weights_only):
        from fastseq.models import load_model

        self.shutdown()
        if weights_only:
            warnings.warn(f"{path} holds weights only (save_weights_only=True): the optimizer "
                          "keeps the state it had when the worker was lost", RuntimeWarning,
                          stacklevel=3)
            self.model.load_weights(path)
        else:
            restore_model_state(self.model, model_state(load_model(path)), repr(path))

    # ------------------------------------------------------------------ checks
    def replica_digests(self):
        """SHA-256 of each worker's weights and optimizer state (rank order), after the
        last update reached them: equal to :meth:`driver_digest` after a fit."""
        self._flush()
        return self._gather([w.digest.remote() for w in self.workers], "hashing its weights")

    def driver_digest(self):
        return _replica.weights_digest(self.model)


def _keep_epochs(earlier, partial, last_epoch):
    """The History entries of epochs <= last_epoch (those the checkpoint holds)."""
    merged = {k: list(v) for k, v in earlier.items()}
    if partial is None:
        return merged
    epochs = list(merged.get("__epoch__", []))
    for i, epoch in enumerate(partial.epoch):
        if epoch <= last_epoch and epoch not in epochs:
            epochs.append(epoch)
            for key, values in partial.history.items():
                merged.setdefault(key, []).append(values[i])
    merged["__epoch__"] = epochs
    return merged


def _prepend(history, earlier):
    epochs = earlier.pop("__epoch__", [])
    history.epoch[:0] = epochs
    for key, values in earlier.items():
        history.history[key] = list(values) + list(history.history.get(key, []))


def fit(model_fn, x=None, y=None, num_workers=2, threads_per_worker=1, cpus_per_worker=None,
        step_timeout=300.0, on_worker_failure="raise", max_restarts=1, **fit_kwargs):
    """Train ``model_fn()`` (or a model) data-parallel on ``num_workers`` Ray workers with
    ``threads_per_worker`` threads each; ``fit_kwargs`` as ``Model.fit``. Returns the
    History (its ``.model`` is the trained driver model)."""
    with DataParallel(model_fn, num_workers, threads_per_worker, cpus_per_worker,
                      step_timeout, on_worker_failure, max_restarts) as parallel:
        return parallel.fit(x, y, **fit_kwargs)
