"""The per-process runtime modules, prepared on a background thread while the first compile runs.

Two modules are compiled once per process, through the compile cache like
any compiled function: the native dispatcher (dispatch.py: every `@rm.jit`
function's call path) and the thread pool's runtime (pool.py: every module
with parallel loops). Cold, each costs 30-40 ms of LLVM work, which used to
run on the calling thread after the function's own compile, while the
second core sat idle during the compile's Python part (tracing, passes, LLVM
IR emission: single-threaded). llvmlite's calls into LLVM release the GIL,
so that work can overlap the Python part.

When the prepared module is needed:
- the dispatcher: when a compile of a native function that writes no
  argument starts (`@rm.jit`, `rm.compile`: jit.py's CompiledFunction makes
  its call path at the end of the compile; train steps, which update their
  parameters in place, do not use it);
- the pool runtime: when LLVM IR emission meets the first parallel loop of a
  module being compiled to run (llvm_emit.py `on_parallel_loops`).
Never at `import raster_mlir`: a process that compiles nothing builds nothing.

Joining: `prepare(name)` starts one daemon thread that calls the runtime's
own getter (`dispatch._get`, `pool.pool`). Those getters build under their
module's lock and keep the result, so the caller's own call later simply
waits for the lock (the background build finishes) or finds the result.
Errors: the background thread swallows any exception and keeps nothing of
it; the getters then hold nothing either (a failed build is not remembered,
except the pool's "cannot run here", which the getter records itself
exactly as on the calling thread), so the caller's own call builds again
and raises the same error, from its own thread, exactly as without the
background build. `join()` waits for a started build; callers whose compile
failed join before returning, and so does `os.fork` (a child never inherits
a runtime's lock held by a build in flight).

Each runtime is prepared at most once per process (a second request, or a
request after the getter ran, starts nothing). `RASTER_MLIR_PREPARE_RUNTIME=0`
turns the background builds off (the runtimes are then built on first use),
and so does a process whose compiles keep to one thread (`enabled`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}


def _getters() -> dict[str, Callable[[], object]]:
    from . import dispatch, pool

    return {"dispatcher": dispatch._get, "pool": pool.pool}


def _ready(name: str) -> bool:
    """Whether the runtime's getter already has its answer (then there is nothing to prepare)."""
    from . import dispatch, pool

    if name == "dispatcher":
        return dispatch._dispatcher is not None or dispatch._unavailable
    return pool._pool is not None or pool._pool_failed is not None


def enabled() -> bool:
    """Not with RASTER_MLIR_PREPARE_RUNTIME=0, nor when compiles keep to one thread (one usable CPU,
    or `rm.set_num_threads(1)`: the compile's own LLVM work then stays on the calling thread too)."""
    from .jit import _compile_threads

    return os.environ.get("RASTER_MLIR_PREPARE_RUNTIME", "1").strip() not in ("0", "") and _compile_threads() > 1


def prepare(name: str) -> None:
    """Start building runtime `name` ("dispatcher" or "pool") on a background thread, once per process."""
    if name in _threads or not enabled() or _ready(name):
        return
    with _lock:
        if name in _threads:
            return
        getter = _getters()[name]
        thread = threading.Thread(target=_build, args=(getter,), name=f"raster-mlir-prepare-{name}", daemon=True)
        _threads[name] = thread
    thread.start()


def _build(getter: Callable[[], object]) -> None:
    try:
        getter()
    except BaseException:  # noqa: BLE001 - the caller's own call raises it again (module docstring)
        pass


def prepare_pool() -> None:
    """`prepare("pool")` (the emitter's callback for a module with parallel loops)."""
    prepare("pool")


def join() -> None:
    """Wait for every background build started so far."""
    with _lock:
        threads = list(_threads.values())
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()


os.register_at_fork(before=join)
