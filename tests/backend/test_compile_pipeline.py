"""LLVM compiling kernel segments while the rest of the module is emitted (part_handoff.py), on a
persistent worker thread (llvm_worker.py): same results, deterministic objects, errors, threads, report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from llvmlite import ir

import raster_mlir as rm
import raster_mlir.backend as backend
from raster_mlir.backend import jit, llvm_emit, llvm_worker
from raster_mlir.backend.llvm_emit import emit_module
from raster_mlir.backend.module_split import PART_SEPARATOR, ModulePart
from raster_mlir.backend.part_handoff import SegmentHandOff
from raster_mlir.errors import CompileError
from raster_mlir.timing import CompileTimer

from helpers import mlp_loss, mlp_params

TESTS = Path(__file__).resolve().parent.parent


def problem(seed=0, n_in=60, hidden=24, n_out=5):
    rng = np.random.default_rng(seed)
    params = mlp_params(rng, n_in, hidden, n_out)
    return params, rng.random(n_in), np.eye(n_out)[2]


def train_step(monkeypatch, threads: int, segment_ops: int = 8):
    """A cold compile of the MLP train step, cut into segments; (step, updated params, loss)."""
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=True)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", segment_ops)
    monkeypatch.setattr(jit, "_usable_cpus", lambda: 2)
    previous = rm.get_num_threads()
    rm.set_num_threads(threads)
    try:
        params, x, y = problem()
        step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
        loss = step(*params, x, y)
    finally:
        rm.set_num_threads(previous)
    return step, params, loss


def objects_of(step) -> list[bytes]:
    return list(step.lower(*problem()[0], *problem()[1:]).native.function._jit._compiled.objects)


def test_pipelined_compile_equals_the_sequential_one(monkeypatch):
    one, params_one, loss_one = train_step(monkeypatch, threads=1)
    two, params_two, loss_two = train_step(monkeypatch, threads=2)
    assert loss_one == loss_two
    for a, b in zip(params_one, params_two):
        np.testing.assert_array_equal(a, b)
    assert len(one.llvm_ir_optimized.split(PART_SEPARATOR)) >= 3  # handed off in several parts
    # The parts depend on the IR alone, not on the threads or who compiled what first.
    assert objects_of(one) == objects_of(two)
    assert one.llvm_ir_optimized == two.llvm_ir_optimized


OBJECT_DIGEST = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, raster_mlir as rm
from raster_mlir.backend import llvm_emit
from helpers import mlp_loss, mlp_params
llvm_emit.SEGMENT_OPS = 8
rng = np.random.default_rng(0)
params = mlp_params(rng, 60, 24, 5)
x, y = rng.random(60), np.eye(5)[2]
step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
step(*params, x, y)
objects = step.lower(*params, x, y).native.function._jit._compiled.objects
print(len(objects), hashlib.sha256(b"".join(objects)).hexdigest())
"""


def test_object_code_is_the_same_in_two_fresh_processes(tmp_path):
    digests = []
    for k in range(2):
        env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path / f"cache{k}"), "RASTER_MLIR_NUM_THREADS": "2"}
        out = subprocess.run(
            [sys.executable, "-c", OBJECT_DIGEST, str(TESTS)], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.split())
    assert int(digests[0][0]) >= 3 and digests[0] == digests[1]


def test_the_module_text_is_what_llvmlite_prints(monkeypatch):
    """part_handoff assembles the module's text (the cache key) from the texts it printed for the parts."""
    seen = []

    def recording(module, entries, options=None, verified=False, on_parallel_loops=None, hand_off=None):
        emitted = emit_module(module, entries, options, verified, on_parallel_loops, hand_off)
        seen.append((emitted.llvm_ir, hand_off))
        return emitted

    monkeypatch.setattr(backend, "emit_module", recording)
    monkeypatch.setattr(backend, "release_module", lambda llmod: None)  # kept whole for the test to print
    train_step(monkeypatch, threads=2)
    text, handoff = seen[0]
    assert len(handoff.handed_off) >= 3
    assert text == str(handoff._llmod)
    rest = handoff.rest_text()
    for name in handoff.handed_off:  # declared in the rest (defined in a handed-off part)
        lines = [line.split(" ", 1)[0] for line in rest.splitlines() if f'@"{name}"(' in line]
        assert "declare" in lines and "define" not in lines


class _Submitted:
    def __init__(self):
        self.parts: list[ModulePart] = []

    def submit(self, part):
        self.parts.append(part)


def test_a_segment_using_a_global_that_cannot_be_shared_stays_in_the_module():
    module = ir.Module("m")
    table = ir.GlobalVariable(module, ir.IntType(64), name="private_table")
    table.linkage = "internal"
    table.initializer = ir.Constant(ir.IntType(64), 3)
    fn = ir.Function(module, ir.FunctionType(ir.IntType(64), []), name="k.segment1")
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.ret(builder.load(table))
    later = ir.Function(module, ir.FunctionType(ir.IntType(64), []), name="k.segment2")
    later.linkage = "internal"
    later.attributes.add("noinline")
    ir.IRBuilder(later.append_basic_block("entry")).ret(ir.Constant(ir.IntType(64), 1))
    submitted = _Submitted()
    handoff = SegmentHandOff(submitted)
    assert not handoff.hand_off(module, [fn])
    assert not handoff.hand_off(module, [later])  # the kernel's part would declare segment1: nothing leaves now
    assert submitted.parts == [] and handoff.handed_off == []
    assert handoff.module_text(module) == str(module)


def test_an_error_in_a_part_surfaces_as_a_compile_error(monkeypatch):
    optimize = jit._optimize_and_emit
    where = []

    def failing(module, llvm_ir, *args, **kwargs):
        if re.search(r'^define [^\n]*@"mlp_loss_train_step.segment2"\(', llvm_ir, re.M):
            where.append(threading.current_thread().name)
            raise RuntimeError("LLVM ran out of luck")
        return optimize(module, llvm_ir, *args, **kwargs)

    monkeypatch.setattr(jit, "_optimize_and_emit", failing)
    with pytest.raises(CompileError, match="LLVM failed on a part of a split module: LLVM ran out of luck"):
        train_step(monkeypatch, threads=2)
    assert where
    monkeypatch.setattr(jit, "_optimize_and_emit", optimize)
    _, _, loss = train_step(monkeypatch, threads=2)  # the worker is still there and works
    assert np.isfinite(loss)


def test_compiles_leave_one_llvm_thread(monkeypatch):
    for _ in range(3):
        train_step(monkeypatch, threads=2)
    rm.compile(lambda x: rm.sum(rm.tanh(x)), np.ones(8))(np.ones(8))
    llvm_threads = [t for t in threading.enumerate() if t.name == "raster-mlir-llvm"]
    assert llvm_threads == [llvm_worker.worker_thread()]
    assert llvm_threads[0].daemon


FORK_SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, raster_mlir as rm
from raster_mlir.backend import llvm_emit, llvm_worker
from helpers import mlp_loss, mlp_params
llvm_emit.SEGMENT_OPS = 8
rm.set_num_threads(2)
assert llvm_worker.worker_thread() is None  # not started at import
def step_loss(lr):
    rng = np.random.default_rng(0)
    params = mlp_params(rng, 60, 24, 5)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=lr))
    return step(*params, rng.random(60), np.eye(5)[2])
parent = step_loss(0.1)
assert llvm_worker.worker_thread() is not None
pid = os.fork()
if pid == 0:
    ok = step_loss(0.2) > 0 and llvm_worker.worker_thread().is_alive()
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), parent > 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_compiles_with_a_worker_of_its_own(tmp_path):
    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_NUM_THREADS": "2"}
    script = [sys.executable, "-c", FORK_SCRIPT, str(TESTS)]
    out = subprocess.run(script, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]


def _fake_compile(part, timer):
    with timer.phase("LLVM optimisation"):
        time.sleep(part.weight / 1e4)
    return part.text.encode(), part.text


def test_the_timing_report_shows_the_worker_apart(monkeypatch):
    monkeypatch.setattr(jit, "_usable_cpus", lambda: 2)
    started = threading.Event()

    def compile_part(part, timer):
        if threading.current_thread().name == "raster-mlir-llvm":
            started.set()
        return _fake_compile(part, timer)

    queue = llvm_worker.PartQueue(compile_part, use_worker=True)
    queue.submit(ModulePart("early", 200))
    assert started.wait(30)  # the worker took the part handed off early
    timer = CompileTimer()
    with timer.phase("LLVM IR emission"):
        pass
    results = queue.finish(timer, [ModulePart("late", 100)])
    assert results == [(b"early", "early"), (b"late", "late")]
    report = timer.report()
    assert "LLVM optimisation (other thread), overlapped (not in the total)" in report
    assert timer.concurrent == {"LLVM optimisation (other thread)"}
    assert timer.total == pytest.approx(sum(s for name, s in timer.seconds.items() if name not in timer.concurrent))


@given(weights=st.lists(st.integers(1, 30), min_size=1, max_size=12), handed=st.integers(0, 12))
def test_every_part_is_compiled_once_and_results_keep_the_order(weights, handed):
    compiled = []
    lock = threading.Lock()

    def compile_part(part, timer):
        with lock:
            compiled.append(part.text)
        return _fake_compile(ModulePart(part.text, part.weight // 10), timer)

    queue = llvm_worker.PartQueue(compile_part, use_worker=True)
    parts = [ModulePart(f"part{k}", w, entry_points_only=w % 7 == 0) for k, w in enumerate(weights)]
    for part in parts[:handed]:
        queue.submit(part)
    results = queue.finish(CompileTimer(), parts[handed:])
    assert [text for _, text in results] == [p.text for p in parts]
    assert sorted(compiled) == sorted(p.text for p in parts)


def test_an_error_on_the_worker_stops_the_queue_and_is_raised_here():
    def compile_part(part, timer):
        if part.text == "bad":
            raise CompileError("the LLVM backend produced invalid IR: nonsense")
        return _fake_compile(part, timer)

    queue = llvm_worker.PartQueue(compile_part, use_worker=True)
    queue.submit(ModulePart("bad", 50))
    with pytest.raises(CompileError, match="produced invalid IR: nonsense"):
        queue.finish(CompileTimer(), [ModulePart("good", 10)])


def test_idle_tasks_run_while_the_worker_finishes_or_after_the_compile():
    release_worker = threading.Event()
    ran: list[str] = []

    def compile_part(part, timer):
        if part.text == "slow":
            assert release_worker.wait(30)
        return _fake_compile(part, timer)

    def idle_task():
        ran.append("task")
        release_worker.set()  # the worker's last part is still being compiled while the task runs

    queue = llvm_worker.PartQueue(compile_part, use_worker=True)
    queue.submit(ModulePart("slow", 10))
    deadline = time.monotonic() + 30
    while queue._running == 0:  # the worker took it
        if time.monotonic() > deadline:
            release_worker.set()
            pytest.fail("the LLVM worker did not take the part within 30 s")
        time.sleep(0.001)
    queue.when_idle("freeing", idle_task)
    timer = CompileTimer()
    results = queue.finish(timer, [ModulePart("quick", 1)])
    assert [text for _, text in results] == ["slow", "quick"] and ran == ["task"]
    assert "freeing" in timer.seconds
    queue.run_idle_tasks(timer)
    assert ran == ["task"]  # once

    alone = llvm_worker.PartQueue(_fake_compile, use_worker=False)
    alone.when_idle("freeing", lambda: ran.append("after"))
    alone.finish(CompileTimer(), [ModulePart("part", 1)])
    assert ran == ["task"]  # nothing to wait for: not run by finish
    alone.run_idle_tasks(CompileTimer())
    assert ran == ["task", "after"]


def test_the_switch_interval_is_short_while_the_worker_has_parts_and_restored_after():
    import sys

    previous = sys.getswitchinterval()
    seen: list[float] = []

    def compile_part(part, timer):
        seen.append(sys.getswitchinterval())
        return _fake_compile(part, timer)

    queue = llvm_worker.PartQueue(compile_part, use_worker=True)
    queue.submit(ModulePart("early", 20))
    queue.finish(CompileTimer(), [ModulePart("late", 10)])
    assert seen == [llvm_worker.HAND_OVER_INTERVAL] * 2
    assert sys.getswitchinterval() == previous

    cancelled = llvm_worker.PartQueue(compile_part, use_worker=True)
    cancelled.submit(ModulePart("dropped", 10))
    cancelled.cancel()
    cancelled.cancel()
    assert sys.getswitchinterval() == previous  # given back once, at the first cancel

    alone = llvm_worker.PartQueue(compile_part, use_worker=False)
    alone.finish(CompileTimer(), [ModulePart("part", 10)])
    assert seen[-1] == previous  # no worker, nothing to hand over

    at_the_end = llvm_worker.PartQueue(compile_part, use_worker=True)
    at_the_end.finish(CompileTimer(), [ModulePart("a", 10), ModulePart("b", 10)])
    assert seen[-2:] == [previous] * 2  # nothing handed off during emission: the interval is left alone
