"""Fork-join over a few long-lived helper threads, for kernels split into tasks.

The calling thread works too, and every thread takes the next task as it frees up. A
helper waits on a plain lock between calls, so handing it work is one lock release (a
ThreadPoolExecutor's submit and Future cost ~15 us more per call, measured; that is 5-10%
of a small Conv1D). The kernels release the GIL, so the threads run in parallel.

One caller at a time uses the helpers: a second thread calling in meanwhile runs its tasks
on its own thread (the same results: which thread runs a task never changes its result).
After os.fork() the child starts without helpers (they do not exist there) and makes its
own on first use."""
import itertools
import os
import threading

_helpers = []
_in_use = threading.Lock()


class _Helper:
    def __init__(self):
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.work = None
        self.error = None
        threading.Thread(target=self._loop, daemon=True, name="fastseq-helper").start()

    def _loop(self):
        while True:
            self.go.acquire()
            try:
                self.work()
            except BaseException as e:  # re-raised in the caller
                self.error = e
            self.work = None
            self.done.release()


def _forget_helpers():
    global _in_use
    _helpers.clear()
    _in_use = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def run_tasks(fn, tasks, threads):
    """[fn(*task) for task in tasks] on up to ``threads`` threads (the caller's among them);
    results in task order. An exception in any task is raised here once all have stopped."""
    workers = min(threads, len(tasks))
    if workers <= 1 or not _in_use.acquire(blocking=False):
        return [fn(*task) for task in tasks]
    try:
        while len(_helpers) < workers - 1:
            _helpers.append(_Helper())
        results = [None] * len(tasks)
        next_task = itertools.count()  # next() on it is atomic under the GIL

        def work():
            for i in iter(lambda: next(next_task), None):
                if i >= len(tasks):
                    return
                results[i] = fn(*tasks[i])

        helpers = _helpers[:workers - 1]
        for helper in helpers:
            helper.work = work
            helper.go.release()
        errors = []
        try:
            work()
        finally:
            for helper in helpers:
                if helper.go.acquire(blocking=False):
                    # the helper never woke for this call (a loaded machine can delay it by
                    # milliseconds) and the tasks are all done: take its start back instead
                    # of waiting for it to wake, find nothing to do and say so
                    helper.work = None
                    continue
                helper.done.acquire()
                if helper.error is not None:
                    errors.append(helper.error)
                    helper.error = None
        if errors:
            raise errors[0]
        return results
    finally:
        _in_use.release()
