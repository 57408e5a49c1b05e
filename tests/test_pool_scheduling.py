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
from raster_mlir.compiler import DEFAULT_PIPELINE

EVERY_LOOP = DEFAULT_PIPELINE.replace("parallelize-loops", "parallelize-loops{min-work=0}")
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
    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_NUM_THREADS": "2"}
    env["RASTER_MLIR_PREPARE_RUNTIME"] = "0"  # (no background build thread to mistake for a worker)
    env["PIPELINE"] = EVERY_LOOP
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


def next_spin(base, limit, polls, waited=0, poll_ticks=0):
    jit = pool.pool().jit
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, *[ctypes.c_int64] * 5)(jit.function_address("raster_mlir_pool_next_spin"))
    return fn(base, limit, polls, waited, poll_ticks)


@needs_pool
def test_the_spin_adapts_to_the_gaps_between_jobs_within_bounds():
    """Adaptive spinning (the rule, without timing): twice the polls the last wait took, or twice the gap it
    slept through counted in polls; never below the configured spin nor above 16 times it."""
    base, most = 2048, 2048 * 16
    assert next_spin(base, base, 10) == base  # jobs back to back: the configured spin
    assert next_spin(base, 4 * base, 3000) == 6000  # caught after 3000 polls: 6000 next time
    assert next_spin(base, 4 * base, 10**6) == most  # capped
    # slept: its 2048 polls took 1000 ticks and the gap was 3000 ticks (3x the polls): 6 x 2048 polls next
    assert next_spin(base, base, -1, waited=3000, poll_ticks=1000) == 6 * base
    assert next_spin(base, 2 * base, -1, waited=3000, poll_ticks=1000) == 12 * base  # (its polls were 2 x 2048)
    assert next_spin(base, base, -1, waited=8000, poll_ticks=1000) == most  # 16 x: still bridged
    assert next_spin(base, base, -1, waited=8001, poll_ticks=1000) == base  # a longer gap: idle, back to base
    assert next_spin(base, base, -1, waited=10**18, poll_ticks=1000) == base  # (days: no overflow)
    assert next_spin(base, base, -1, waited=500, poll_ticks=0) == base  # no clock: the configured spin


@needs_pool
def test_the_statistics_count_jobs_alone_and_placements():
    rm.set_num_threads(2)
    f = rm.jit(lambda x: x * 3.0, pipeline=EVERY_LOOP)
    x = np.ones(1 << 16)
    before = pool.pool().statistics()
    for _ in range(5):
        f(x)
    after = pool.pool().statistics()
    assert after["jobs"] - before["jobs"] == 5
    assert 0 <= after["solo_jobs"] - before["solo_jobs"] <= 5
    assert 0 <= after["wakeups"] - before["wakeups"] <= 5
    rm.set_num_threads(1)  # one thread: the loops run on the caller, no job
    f(x)
    assert pool.pool().statistics()["jobs"] == after["jobs"]
