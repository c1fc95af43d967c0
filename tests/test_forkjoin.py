"""The fork-join helper the LSTM and Conv1D kernels run their blocks on
(fastseq._kernels._forkjoin), and the rule that put it there: the kernels import nothing of
fastseq above fastseq._kernels."""
import ast
import os
import pathlib
import sys
import threading
import time

import pytest

import fastseq._kernels
from fastseq._kernels._forkjoin import run_tasks


def _slow_square(i, delay):
    time.sleep(delay)  # releases the GIL, as the kernels do
    return i * i, threading.get_ident()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_in_task_order_on_several_threads(threads):
    tasks = [(i, 0.002 * (i % 3)) for i in range(12)]
    out = run_tasks(_slow_square, tasks, threads)
    assert [r for r, _ in out] == [i * i for i in range(12)]
    used = {ident for _, ident in out}
    assert len(used) <= threads
    if threads > 1:  # the sleeps leave the helpers time to take tasks
        assert len(used) > 1


def test_no_tasks_and_one_task():
    assert run_tasks(_slow_square, [], 2) == []
    assert run_tasks(_slow_square, [(3, 0)], 2)[0][0] == 9


@pytest.mark.parametrize("failing", [0, 5])
def test_an_error_in_any_task_is_raised_once_all_have_stopped(failing):
    done = []

    def task(i):
        time.sleep(0.002)
        if i == failing:
            raise ValueError(f"task {i} failed")
        done.append(i)
        return i

    with pytest.raises(ValueError, match=f"task {failing} failed"):
        run_tasks(task, [(i,) for i in range(8)], 2)
    # nothing left behind: the next call runs normally (no stale error from the last one)
    assert run_tasks(lambda i: i + 1, [(i,) for i in range(8)], 2) == list(range(1, 9))


def test_errors_on_both_threads_leave_no_stale_error():
    def task(i):
        time.sleep(0.005)
        raise KeyError(i)

    with pytest.raises(KeyError):
        run_tasks(task, [(0,), (1,)], 2)
    assert run_tasks(lambda i: -i, [(1,), (2,), (3,)], 2) == [-1, -2, -3]


def test_concurrent_callers_each_get_their_own_results():
    results = {}

    def caller(k):
        results[k] = run_tasks(lambda i: (k, i, _slow_square(i, 0.001)[0]),
                               [(i,) for i in range(10)], 2)

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    for k in range(4):
        assert results[k] == [(k, i, i * i) for i in range(10)]


def test_the_caller_does_not_wait_for_a_helper_that_never_woke(monkeypatch):
    """A helper the OS has not scheduled yet when the tasks are done (a loaded machine) is
    not waited for: its start is taken back. Here a helper whose thread never runs."""
    from fastseq._kernels import _forkjoin

    class Asleep:
        def __init__(self):
            self.go, self.done = threading.Lock(), threading.Lock()
            self.go.acquire()
            self.done.acquire()
            self.work = self.error = None

    helper = Asleep()
    monkeypatch.setattr(_forkjoin, "_helpers", [helper])
    results = []
    caller = threading.Thread(
        target=lambda: results.append(run_tasks(lambda i: i * i, [(i,) for i in range(5)], 2)),
        daemon=True)
    caller.start()
    caller.join(timeout=10)
    assert not caller.is_alive(), "run_tasks waited for a helper that never woke"
    assert results == [[0, 1, 4, 9, 16]]
    # its start was taken back: a later call hands it work again
    assert helper.work is None and not helper.go.acquire(blocking=False)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                    reason="needs fork()")
def test_a_forked_child_makes_its_own_helpers():
    run_tasks(_slow_square, [(i, 0.001) for i in range(4)], 2)  # helpers exist in the parent
    pid = os.fork()
    if pid == 0:  # child: would hang on the parent's helpers, which do not exist here
        try:
            out = run_tasks(_slow_square, [(i, 0.001) for i in range(6)], 2)
            os._exit(0 if [r for r, _ in out] == [i * i for i in range(6)] else 1)
        except BaseException:
            os._exit(2)
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    pytest.fail("the forked child hung in run_tasks")


def _fastseq_imports(path, package):
    """The fastseq modules a source file imports (relative imports resolved against
    ``package``, the file's own package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(module)
    return [m for m in found if m == "fastseq" or m.startswith("fastseq.")]


def test_the_kernels_import_nothing_of_fastseq_above_them():
    root = pathlib.Path(fastseq._kernels.__file__).parent
    sources = sorted(root.rglob("*.py"))
    assert root / "lstm.py" in sources and root / "_forkjoin.py" in sources
    outside = {}
    for path in sources:
        package = ".".join(("fastseq", "_kernels") + path.relative_to(root).parent.parts)
        bad = [m for m in _fastseq_imports(path, package)
               if not (m == "fastseq._kernels" or m.startswith("fastseq._kernels."))]
        if bad:
            outside[str(path.relative_to(root))] = bad
    for path in sorted(root.rglob("*.pyx")):  # Cython: a plain text check
        text = path.read_text()
        if "from .." in text or "import fastseq" in text or "from fastseq" in text:
            outside[str(path.relative_to(root))] = ["(a fastseq import)"]
    assert not outside, f"kernels importing fastseq above fastseq._kernels: {outside}"
