"""The per-process runtime modules built on a background thread during the first compile (runtime_prep.py).

Each test starts from a process state where the runtime was never built
(the module globals are reset with monkeypatch and restored afterwards) and
without the compile cache, so the compile under test is the one that
triggers the background build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.backend import dispatch, jit, pool, runtime_prep
from raster_mlir.compiler import DEFAULT_PIPELINE
from raster_mlir.errors import CompileError

EVERY_LOOP = DEFAULT_PIPELINE.replace("parallelize-loops", "parallelize-loops{min-work=0}")


@pytest.fixture
def fresh_runtimes(monkeypatch):
    """Neither runtime built yet in this process, as in a fresh one (restored after the test)."""
    runtime_prep.join()
    monkeypatch.setattr(dispatch, "_dispatcher", None)
    monkeypatch.setattr(dispatch, "_unavailable", False)
    monkeypatch.setattr(pool, "_pool", None)
    monkeypatch.setattr(pool, "_pool_failed", None)
    monkeypatch.setattr(runtime_prep, "_threads", {})
    monkeypatch.delenv("RASTER_MLIR_PREPARE_RUNTIME", raising=False)
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")  # every compile runs in full (no function, runtime or object reused)
    monkeypatch.setattr(jit, "_compile_threads", lambda: min(2, pool.get_num_threads()))  # two CPUs, as here
    yield
    runtime_prep.join()


def builders(monkeypatch, cls, fail: BaseException | None = None) -> list[str]:
    """Record the thread of every construction of `cls` (raising `fail` instead, if given)."""
    threads: list[str] = []
    build = cls.__init__

    def spy(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        if fail is not None:
            raise fail
        build(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", spy)
    return threads


def prepare_threads_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("raster-mlir-prepare") and t.is_alive()]


def axpy(a, x, y):
    return a * x + y


def test_the_dispatcher_is_built_on_the_background_thread_and_serves_the_first_call(fresh_runtimes, monkeypatch):
    threads = builders(monkeypatch, dispatch._Dispatcher)
    x, y = np.arange(5.0), np.ones(5)
    f = rm.jit(axpy)
    np.testing.assert_array_equal(f(2.0, x, y), 2.0 * x + y)
    assert threads == ["raster-mlir-prepare-dispatcher"]
    assert f._dispatch is not f._call  # the native dispatcher serves the next call
    np.testing.assert_array_equal(f(3.0, x, y), 3.0 * x + y)
    runtime_prep.join()
    assert prepare_threads_alive() == []
    g = rm.jit(lambda x: x * x)  # a second compile starts nothing more
    np.testing.assert_array_equal(g(x), x * x)
    assert threads == ["raster-mlir-prepare-dispatcher"] and list(runtime_prep._threads) == ["dispatcher"]


@pytest.mark.parametrize("prepare", ["1", "0"])
def test_a_broken_dispatcher_build_raises_the_error_it_raises_without_the_background_build(
    fresh_runtimes, monkeypatch, prepare
):
    monkeypatch.setenv("RASTER_MLIR_PREPARE_RUNTIME", prepare)
    threads = builders(monkeypatch, dispatch._Dispatcher, CompileError("LLVM failed on the dispatcher: broken runtime"))
    f = rm.jit(axpy)
    with pytest.raises(CompileError, match="broken runtime") as caught:
        f(2.0, np.arange(5.0), np.ones(5))
    assert "test_runtime_prep.py" in str(caught.value)  # located at the user's call, as every call error
    # In the background and then, the failure not being remembered, again on the calling thread.
    assert threads == (["raster-mlir-prepare-dispatcher", "MainThread"] if prepare == "1" else ["MainThread"])
    assert prepare_threads_alive() == []


def test_the_pool_runtime_is_built_in_the_background_once_emission_meets_a_parallel_loop(fresh_runtimes, monkeypatch):
    threads = builders(monkeypatch, pool._Pool)
    x = np.linspace(0.0, 1.0, 4096)
    f = rm.jit(lambda x: rm.sum(x * x), pipeline=EVERY_LOOP)
    assert f(x) == pytest.approx(np.sum(x * x), rel=1e-12)
    assert "raster.parallel" in f.lower(x).ir()
    assert threads == ["raster-mlir-prepare-pool"]
    assert pool._pool is not None and pool._pool.jit is not None


def test_a_module_without_parallel_loops_builds_no_pool(fresh_runtimes, monkeypatch):
    threads = builders(monkeypatch, pool._Pool)
    f = rm.jit(axpy)
    f(2.0, np.arange(5.0), np.ones(5))
    assert threads == [] and "pool" not in runtime_prep._threads


@pytest.mark.parametrize("prepare", ["1", "0"])
def test_a_broken_pool_build_fails_the_compile_as_without_the_background_build(fresh_runtimes, monkeypatch, prepare):
    monkeypatch.setenv("RASTER_MLIR_PREPARE_RUNTIME", prepare)
    builders(monkeypatch, pool._Pool, OSError("broken pool runtime"))
    f = rm.jit(lambda x: rm.sum(x * x), pipeline=EVERY_LOOP)
    with pytest.raises(OSError, match="broken pool runtime"):
        f(np.linspace(0.0, 1.0, 4096))
    assert prepare_threads_alive() == []


@pytest.mark.parametrize("prepare", ["1", "0"])
def test_a_pool_that_cannot_run_here_leaves_parallel_loops_serial_either_way(fresh_runtimes, monkeypatch, prepare):
    monkeypatch.setenv("RASTER_MLIR_PREPARE_RUNTIME", prepare)
    message = "the native thread pool needs Linux on x86-64 or AArch64"
    builders(monkeypatch, pool._Pool, rm.RasterError(message))
    x = np.linspace(0.0, 1.0, 4096)
    f = rm.jit(lambda x: rm.sum(x * x), pipeline=EVERY_LOOP)
    assert f(x) == pytest.approx(np.sum(x * x), rel=1e-12)
    assert pool._pool is None and pool._pool_failed == message


def test_a_failed_compile_leaves_no_build_running(fresh_runtimes, monkeypatch):
    release = threading.Event()
    build = dispatch._Dispatcher.__init__

    def slow(self):
        release.wait(5)
        build(self)

    monkeypatch.setattr(dispatch._Dispatcher, "__init__", slow)
    f = rm.jit(lambda x, y: x @ y)
    timer = threading.Timer(0.2, release.set)  # the build is still running when the trace fails
    timer.start()
    with pytest.raises(rm.RasterError):
        f(np.ones(3), np.ones(4))
    assert prepare_threads_alive() == []
    timer.join()


def test_no_build_without_a_native_pipeline(fresh_runtimes):
    f = rm.jit(axpy, pipeline="inline,canonicalize")
    np.testing.assert_array_equal(f(2.0, np.arange(3.0), np.ones(3)), 2.0 * np.arange(3.0) + 1.0)
    assert runtime_prep._threads == {}


def test_rm_compile_prepares_the_dispatcher_and_a_train_step_does_not(fresh_runtimes, monkeypatch):
    threads = builders(monkeypatch, dispatch._Dispatcher)
    step = rm.compile_train_step(lambda w, x: rm.sum(w * x), params=(0,), optimizer=rm.optim.SGD(lr=0.5))
    w, x = np.ones(4), np.arange(4.0)
    assert step(w, x) == 6.0 and np.array_equal(w, 1.0 - 0.5 * x)
    assert threads == [] and runtime_prep._threads == {}
    c = rm.compile(axpy, 2.0, np.arange(3.0), np.ones(3))
    np.testing.assert_array_equal(c(2.0, np.arange(3.0), np.ones(3)), 2.0 * np.arange(3.0) + 1.0)
    assert threads == ["raster-mlir-prepare-dispatcher"]


def test_the_setting_changes_no_cache_key(monkeypatch):
    from raster_mlir import compile_cache

    traced = rm.compile(axpy, 2.0, np.arange(3.0), np.ones(3), pipeline="").traced
    keys = set()
    for value in ("0", "1"):
        monkeypatch.setenv("RASTER_MLIR_PREPARE_RUNTIME", value)
        keys.add(compile_cache.function_key(traced, DEFAULT_PIPELINE, "backend"))
    assert len(keys) == 1


def test_one_thread_means_no_background_build(fresh_runtimes, monkeypatch):
    threads = builders(monkeypatch, dispatch._Dispatcher)
    monkeypatch.setattr(pool._settings, "threads", 1)  # rm.set_num_threads(1), restored afterwards
    f = rm.jit(axpy)
    np.testing.assert_array_equal(f(2.0, np.arange(3.0), np.ones(3)), 2.0 * np.arange(3.0) + 1.0)
    assert threads == ["MainThread"] and runtime_prep._threads == {}


def test_the_timing_report_shows_the_call_path_row(fresh_runtimes, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_PREPARE_RUNTIME", "0")  # built in that row, on the calling thread
    c = rm.compile(axpy, 2.0, np.arange(3.0), np.ones(3))
    row = [line for line in c.timing_report().splitlines() if line.endswith("%  native call path")]
    assert len(row) == 1 and dispatch._dispatcher is not None


def test_a_train_step_in_a_fresh_process_builds_no_dispatcher(tmp_path):
    """A cold train step never needs the dispatcher (it writes its parameters), so it must not pay for it:
    CompiledFunction once compared bound methods with `is not` and built it for the call slot (~50 ms)."""
    script = (
        "import numpy as np, raster_mlir as rm\n"
        "from raster_mlir.backend import dispatch\n"
        "step = rm.compile_train_step(lambda w, x: rm.sum(w * x), params=(0,), optimizer=rm.optim.SGD(lr=0.5))\n"
        "w = np.ones(4)\n"
        "assert step(w, np.arange(4.0)) == 6.0\n"
        "print(dispatch._dispatcher is None)\n"
    )
    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_PREPARE_RUNTIME": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
