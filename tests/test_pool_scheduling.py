"""The pool's scheduling decisions, checked without timing: how a job is cut into claims, where the
workers may run, and that idle workers stop using the CPU (backend/pool.py)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.backend import pool

TWO_CPUS = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2
needs_pool = pytest.mark.skipif(pool.pool() is None, reason="needs the native pool (Linux)")
TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
DISPATCH = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


@pytest.fixture(autouse=True)
def restore_threads():
    threads = rm.get_num_threads()
    yield
    rm.set_num_threads(threads)


def claims_of_one_job(units: int, threads: int) -> list[tuple[int, int, int]]:
    """Run one job of `units` through the pool's dispatcher with a task that records each claim
    (begin, end, native thread id); the dispatcher is called with the GIL released, the task takes it."""
    rm.set_num_threads(threads)
    claims = []

    def task(ctx, begin, end):
        claims.append((begin, end, threading.get_native_id()))
        time.sleep(0.0005)  # long enough for the other threads to claim too

    callback = TASK(task)
    DISPATCH(pool.pool().dispatch)(ctypes.cast(callback, ctypes.c_void_p), None, units)
    return sorted(claims)


@needs_pool
@pytest.mark.parametrize("units, threads", [(10_000, 2), (1_000, 3), (37, 2), (2, 2), (5, 4)])
def test_claims_cover_every_unit_once_largest_first(units, threads):
    claims = claims_of_one_job(units, threads)
    ends = [0] + [end for _, end, _ in claims]
    assert [begin for begin, _, _ in claims] == ends[:-1] and ends[-1] == units  # a partition of 0..units
    sizes = [end - begin for begin, end, _ in claims]
    n = min(threads, units)
    smallest = max(1, units // (16 * n))
    assert sizes[0] == max(smallest, units // (2 * n))  # the first claim: a 1/(2n) share of the job
    assert all(a >= b for a, b in zip(sizes, sizes[1:-1]))  # guided: each claim at most the one before it
    assert all(size >= smallest for size in sizes[:-1])  # ...and never below the smallest chunk
    assert len(claims) <= 2 * n * 3 + 16 * n  # a few geometric rounds, then at most the small chunks


@needs_pool
def test_a_job_uses_at_most_the_configured_threads():
    claims = claims_of_one_job(4_000, 2)
    assert len({tid for _, _, tid in claims}) <= 2
    assert claims_of_one_job(4_000, 1) and len({tid for _, _, tid in claims_of_one_job(4_000, 1)}) == 1


PLACEMENT_SCRIPT = """
import os, numpy as np, raster_mlir as rm
from raster_mlir.backend import pool
f = rm.jit(lambda x: x * 2.0 + 1.0, pipeline=os.environ['PIPELINE'])
x = np.linspace(-3.0, 3.0, 1 << 18)
before = set(os.listdir('/proc/self/task'))
np.testing.assert_array_equal(f(x), x * 2.0 + 1.0)
from raster_mlir.backend import llvm_worker
compiler = llvm_worker.worker_thread()  # the LLVM worker thread (a compile's, not the pool's)
workers = [int(t) for t in set(os.listdir('/proc/self/task')) - before if compiler is None or int(t) != compiler.native_id]
assert len(workers) == pool.pool().started_workers == 1, workers
cpus = sorted(os.sched_getaffinity(0))
seen = []
for cpu in (cpus[0], cpus[1], cpus[0]):
    os.sched_setaffinity(0, {cpu})  # the caller moves to `cpu`...
    np.testing.assert_array_equal(f(x), x * 2.0 + 1.0)  # ...and one call later the worker avoids it
    seen.append(sorted(os.sched_getaffinity(workers[0])) == [c for c in cpus if c != cpu])
print(seen)
"""


@needs_pool
@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs")
def test_the_dispatcher_moves_workers_off_its_cpu_when_it_migrates(tmp_path):
    """The placement is the dispatcher's decision at each job: a worker may run anywhere but on the CPU
    the caller opened the job on, from that job on (not only once the worker notices a clash). Run in a
    fresh process: it pins its own threads."""
    from raster_mlir.compiler import DEFAULT_PIPELINE

    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_NUM_THREADS": "2"}
    env["RASTER_MLIR_PREPARE_RUNTIME"] = "0"  # (no background build thread to mistake for a worker)
    env["PIPELINE"] = DEFAULT_PIPELINE.replace("parallelize-loops", "parallelize-loops{min-work=0}")
    out = subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True]"


def thread_cpu_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


@needs_pool
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc")
def test_idle_workers_stop_using_the_cpu():
    """Workers spin only briefly after a job, then sleep in the kernel: an idle process uses no CPU."""
    rm.set_num_threads(2)
    f = rm.jit(lambda x: x * 3.0)
    x = np.ones(1 << 20)
    for _ in range(20):  # calls in quick succession (any adaptive spin at its longest)
        f(x)
    assert pool.pool().started_workers >= 1
    workers = [int(t) for t in os.listdir("/proc/self/task") if int(t) != threading.get_native_id()]
    time.sleep(0.1)
    start = {t: thread_cpu_ns(t) for t in workers}
    time.sleep(0.3)
    used = {t: thread_cpu_ns(t) - start[t] for t in workers}
    assert max(used.values(), default=0) < 2_000_000, used  # < 2 ms of CPU in 0.3 s of idleness
