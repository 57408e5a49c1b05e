"""The parts of a module compiled by this thread and one persistent LLVM worker thread.

Why: a cold compile's LLVM work (optimisation and code generation of the
module's parts, module_split.py) is half of it, and LLVM releases the GIL
(llvmlite's ctypes calls; the two long ones are made without llvmlite's lock,
jit._unlocked), so a second core can compile parts while the calling thread
still runs Python: the emitter hands each finished group of kernel segments
over as soon as it exists (part_handoff.py), and the worker compiles it while
the emitter writes the next one.

A `PartQueue` holds the parts of one compile. `submit` adds a part (the
worker may start on it at once); `finish` says that no more parts come, and
the calling thread then takes parts too, the heaviest left first (entry
points, cheap at O0, last), until none is left, then waits for the worker's
last part (running meanwhile the compile's Python tasks that need no
result of LLVM's: `when_idle`). Results come back in submission order whatever thread compiled
them, so the object code does not depend on the scheduling. `cancel` (a
cache hit after emission, or a failed compile) drops the parts not started.

The worker is one daemon thread per process, started by the first queue that
can use it (not at import), serving queues in the order they were opened.
It keeps its target machines between compiles (jit._thread_target_machine),
so later compiles pay neither a thread start nor target machine creation.
At exit it is stopped and joined (atexit); after `os.fork` the child has no
worker thread, and starts its own on first use. An error in a part (a
CompileError, or any exception of LLVM) is raised by `finish` on the
calling thread, as CompileError with today's text.

Its work is visible in the compile's timing report as rows
"... (other thread)", which overlap the calling thread's rows and are not
added to the total (timing.py); "LLVM, waiting for the other thread" is the
calling thread's idle wait at the end.
"""

from __future__ import annotations

import atexit
import collections
import heapq
import os
import sys
import threading

from ..errors import CompileError
from ..timing import CompileTimer
from .llvm_remarks import close_capture, open_capture
from .module_split import ModulePart

OTHER_THREAD = " (other thread)"

# Python's switch interval while the worker has LLVM work (`_ShortSwitchInterval`).
HAND_OVER_INTERVAL = 0.0005


class _ShortSwitchInterval:
    """Python's switch interval shortened to HAND_OVER_INTERVAL while a compile's worker has work.

    Why: the worker runs Python between its calls into LLVM (waking up, taking a part, parsing,
    setting up the pass pipeline: a few dozen ctypes calls per part), and each time it needs the
    GIL, which the calling thread holds while it runs the pass pipeline or LLVM IR emission: it
    gets it when that thread is asked to drop it, after the switch interval (5 ms by default).
    Measured while the calling thread ran 25 ms of Python: the worker compiled 21 ms of a part
    with the default interval, 25 ms with 0.5 ms; waking up for a part handed off took about
    5 ms. The calling thread gives the GIL up only when the worker asks for it, so its own cost
    is a few thread switches per part. Set from the first part handed off during emission
    (`PartQueue.submit`) to the end of that compile, counted across concurrent compiles; the
    interval found is put back (unless somebody changed it meanwhile). Not for the warm-up nor for
    compiles whose parts all come when emission ends (runtime modules, small kernels): another
    thread running Python then (the native dispatcher's emission beside the pass pipeline) would
    make both threads switch ten times as often for no gain (the ODE's value: 6 ms more CPU of
    the calling thread before emission ended, loaded machine, medians of 5)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: float | None = None

    def hold(self) -> None:
        with self._lock:
            if not self._holders:
                self._saved = sys.getswitchinterval()
                if self._saved > HAND_OVER_INTERVAL:
                    sys.setswitchinterval(HAND_OVER_INTERVAL)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if not self._holders and self._saved is not None:
                if self._saved > HAND_OVER_INTERVAL and sys.getswitchinterval() == HAND_OVER_INTERVAL:
                    sys.setswitchinterval(self._saved)
                self._saved = None


_switch_interval = _ShortSwitchInterval()


class PartQueue:
    """The parts of one compile and their results (module docstring)."""

    def __init__(self, compile_part, use_worker: bool):
        """`compile_part(part, timer) -> result` compiles one part on whichever thread calls it."""
        self._compile_part = compile_part
        self._cv = threading.Condition()
        self._pending: list = []  # heap of (entry points only, -weight, number, part)
        self._results: dict[int, object] = {}
        self._errors: list[BaseException] = []
        self._running = 0  # parts the worker is compiling
        self._count = 0
        self.closed = False  # finish() or cancel() was called: no part comes any more
        self._cancelled = False
        self.worker_timer = CompileTimer()  # the worker's phases (only the worker writes it until it is idle)
        self._use_worker = use_worker
        self._served = False
        self._holds_interval = False  # parts were handed off during emission: the short switch interval
        self._released = False  # the switch interval is given back (_disengage_worker)
        # LLVM's diagnostics are captured from the first part until the last one is compiled (llvm_remarks.py).
        self._capture = None
        self._capturing = False
        self.remarks: list[str] = []
        self._idle_tasks: list[tuple[str, object]] = []  # (timer row, task): `when_idle`

    def when_idle(self, name: str, task) -> None:
        """`task()` (Python work of the compile that needs no result of LLVM's) is run by the calling
        thread while it waits for the worker's last part (`finish`), as timer row `name`; else by
        `run_idle_tasks`, after the compile. Waiting, that thread had nothing to do: the task is free
        there (the 2-layer train step's freeing of the llvmlite IR: about 1 ms)."""
        self._idle_tasks.append((name, task))

    def run_idle_tasks(self, timer) -> None:
        """Run the tasks `finish` did not run (each runs once)."""
        tasks, self._idle_tasks = self._idle_tasks, []
        for name, task in tasks:
            with timer.phase(name):
                task()

    def submit(self, part: ModulePart) -> None:
        """A part handed off while the calling thread still emits (Python): the worker compiles it
        meanwhile, and needs the GIL between its calls into LLVM (`_ShortSwitchInterval`)."""
        with self._cv:
            self._push(part)
            self._cv.notify_all()
            if self._use_worker and not self._holds_interval and not self._released:
                self._holds_interval = True
                _switch_interval.hold()
        self._engage_worker()

    def _push(self, part: ModulePart) -> None:
        if self.closed:
            raise RuntimeError("internal error: a part submitted after finish()")
        if not self._capturing:
            self._capturing, self._capture = True, open_capture()
        heapq.heappush(self._pending, (part.entry_points_only, -part.weight, self._count, part))
        self._count += 1

    def _engage_worker(self) -> None:
        if self._use_worker and not self._served:
            self._served = True
            _worker().serve(self)

    def _disengage_worker(self) -> None:
        """The worker has no more work of this compile (called once the queue is closed)."""
        with self._cv:
            release = self._holds_interval and not self._released
            self._released = True
        if release:
            _switch_interval.release()

    def finish(self, timer, last_parts=()) -> list:
        """Add `last_parts`, compile what is left with the worker's help; the results in submission order.

        This thread takes the heaviest part left before the worker may: its phases are the timing
        report's main rows (a kernel without segments is one part beside its entry points)."""
        with self._cv:
            for part in last_parts:
                self._push(part)
            self.closed = True
            first = heapq.heappop(self._pending) if self._pending else None
            self._cv.notify_all()
        self._engage_worker()
        item = first
        while item is not None:
            self._run(item, timer)
            item = self._take(wait=False)
        with self._cv:
            waiting = self._running and self._idle_tasks
        if waiting:
            self.run_idle_tasks(timer)
        with self._cv:
            if self._running:
                with timer.phase("LLVM, waiting for the other thread"):
                    while self._running:
                        self._cv.wait()
            self._end_capture()
        self._disengage_worker()
        for name, seconds in self.worker_timer.seconds.items():
            timer.add_concurrent(name + OTHER_THREAD, seconds, self.worker_timer.counts[name])
        if self._errors:
            error = self._errors[0]
            if isinstance(error, CompileError):
                raise error
            raise CompileError(f"LLVM failed on a part of a split module: {error}") from error
        return [self._results[k] for k in range(self._count)]

    def cancel(self) -> None:
        """No more parts: drop those not started (the worker finishes the one it has)."""
        with self._cv:
            self.closed = self._cancelled = True
            self._pending.clear()
            self._cv.notify_all()
            if not self._running:
                self._end_capture()
        self._disengage_worker()

    def _end_capture(self) -> None:
        """Close the capture once no part is being compiled any more (called holding the lock)."""
        if self._capturing:
            self._capturing = False
            self.remarks = close_capture(self._capture)

    # ---- both threads ----------------------------------------------------

    def _take(self, wait: bool):
        """The heaviest pending part (or None when there is none and, with `wait`, none will come)."""
        with self._cv:
            while wait and not self._pending and not self.closed:
                self._cv.wait()
            if not self._pending or self._errors:
                return None
            item = heapq.heappop(self._pending)
            if wait:
                self._running += 1
            return item

    def _run(self, item, timer) -> None:
        _, _, number, part = item
        try:
            result = self._compile_part(part, timer)
        except Exception as exc:  # raised on the calling thread by finish()
            with self._cv:
                self._errors.append(exc)
                self._pending.clear()
            return
        with self._cv:
            self._results[number] = result

    def _serve_once(self) -> bool:
        """On the worker: compile one part; False when this queue has no more work for it."""
        item = self._take(wait=True)
        if item is None:
            return False
        try:
            self._run(item, self.worker_timer)
        finally:
            with self._cv:
                self._running -= 1
                if self._cancelled and not self._running:
                    self._end_capture()  # the cancelled compile's last part is done
                self._cv.notify_all()
        return True


class _Worker:
    def __init__(self):
        self._cv = threading.Condition()
        self._queues: collections.deque[PartQueue] = collections.deque()
        self._stop = False
        self.thread = threading.Thread(target=self._loop, name="raster-mlir-llvm", daemon=True)
        self.thread.start()

    def serve(self, queue) -> None:
        """Serve `queue` (a PartQueue), or run `queue()` (a task: it must not raise), in turn."""
        with self._cv:
            self._queues.append(queue)
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            for queue in self._queues:
                if isinstance(queue, PartQueue):
                    queue.cancel()
            self._cv.notify()
        self.thread.join()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queues and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                queue = self._queues.popleft()
            if not isinstance(queue, PartQueue):
                queue()
                continue
            while queue._serve_once():
                pass


_lock = threading.Lock()
_the_worker: _Worker | None = None


def _worker() -> _Worker:
    global _the_worker
    with _lock:
        if _the_worker is None:
            _the_worker = _Worker()
        return _the_worker


def warm_up(task) -> None:
    """Run `task()` on the worker, starting it if needed: the first compile of a process calls this
    when its pass pipeline starts, so that LLVM's one-time costs are paid on the other core meanwhile."""
    with _lock:
        if _warmed:
            return
        _warmed.append(True)
    _worker().serve(task)


_warmed: list = []  # warm_up ran in this process


def worker_thread() -> threading.Thread | None:
    """The worker thread, if this process started it."""
    return None if _the_worker is None else _the_worker.thread


@atexit.register
def _stop_worker() -> None:
    global _the_worker
    with _lock:
        worker, _the_worker = _the_worker, None
    if worker is not None:
        worker.stop()


def _forget_worker_in_child() -> None:
    global _the_worker, _lock, _switch_interval
    _the_worker = None  # the thread does not exist in the child
    _lock = threading.Lock()
    _warmed.clear()
    saved = _switch_interval._saved  # no compile of the parent's goes on in the child
    if saved is not None and sys.getswitchinterval() == HAND_OVER_INTERVAL:
        sys.setswitchinterval(saved)
    _switch_interval = _ShortSwitchInterval()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker_in_child)
