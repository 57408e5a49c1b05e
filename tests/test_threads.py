"""Threads: parallel loops on the native pool give the numbers of numpy for any thread count.

The compiled functions here use `parallelize-loops{min-work=0}`, so every loop
the pass accepts runs on the pool, however small (the default threshold keeps
small loops serial); each is run with 1, 2 and 3 threads.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.backend import pool
from raster_mlir.backend.target import host_target
from raster_mlir.compiler import DEFAULT_PIPELINE
from raster_mlir.errors import RasterError

EVERY_LOOP = DEFAULT_PIPELINE.replace("parallelize-loops", "parallelize-loops{min-work=0}")
THREADS = (1, 2, 3)


@pytest.fixture(autouse=True)
def restore_settings():
    threads, deterministic = rm.get_num_threads(), rm.get_deterministic()
    yield
    rm.set_num_threads(threads)
    rm.set_deterministic(deterministic)


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def mlp_predict(W1, b1, W2, b2, x):
    return nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2))


def numpy_step(params, x, y, lr):
    """The textbook SGD step of mlp_loss in float64: loss and updated parameters."""
    W1, b1, W2, b2 = (p.astype(np.float64) for p in params)
    x, y = x.astype(np.float64), y.astype(np.float64)
    z1 = x @ W1.T + b1
    h = np.maximum(z1, 0)
    z2 = h @ W2.T + b2
    p = np.exp(z2 - z2.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    n = x.shape[0]
    loss = -np.sum(y * np.log(p)) / n
    dz2 = (p * y.sum(axis=-1, keepdims=True) - y) / n
    dh = dz2 @ W2
    dz1 = dh * (z1 > 0)
    grads = [dz1.T @ x, dz1.sum(axis=0), dz2.T @ h, dz2.sum(axis=0)]
    return loss, [w - lr * g for w, g in zip((W1, b1, W2, b2), grads)], p


def problem(batch, n_in=67, hidden=37, n_out=5, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed + batch)
    params = [
        rng.normal(0, 0.3, (hidden, n_in)),
        rng.normal(0, 0.1, hidden),
        rng.normal(0, 0.3, (n_out, hidden)),
        rng.normal(0, 0.1, n_out),
    ]
    x = rng.random((batch, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    return [p.astype(dtype) for p in params], x.astype(dtype), y.astype(dtype)


def run_step(step, params, x, y):
    mine = [p.copy() for p in params]
    loss = step(*mine, x, y)
    return loss, mine


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 32, 127, 128, 129])
def test_batched_step_and_inference_match_numpy_with_1_2_3_threads(batch):
    params, x, y = problem(batch)
    loss_ref, params_ref, probs_ref = numpy_step(params, x, y, lr=0.1)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1), pipeline=EVERY_LOOP)
    predict = rm.jit(mlp_predict, pipeline=EVERY_LOOP)
    results = {}
    for n in THREADS:
        rm.set_num_threads(n)
        loss, got = run_step(step, params, x, y)
        probs = predict(*params, x)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
        for g, want in zip(got, params_ref):
            np.testing.assert_allclose(g, want, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(probs, probs_ref, rtol=1e-12, atol=1e-15)
        results[n] = (got, probs)
    # Only the batch's loss is a reduction: parameters and probabilities are bitwise the same.
    for n in THREADS[1:]:
        for a, b in zip(results[n][0], results[1][0]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(results[n][1], results[1][1])
    if batch >= 32:
        assert "raster.parallel" in step.ir()
    if batch == 129:  # the batch's loss is a parallel reduction here: bitwise in deterministic mode
        rm.set_deterministic(True)
        losses = set()
        for n in THREADS:
            rm.set_num_threads(n)
            losses.add(run_step(step, params, x, y)[0])
        assert len(losses) == 1 and losses.pop() == pytest.approx(loss_ref, rel=1e-12)
        assert 'raster.parallel = ["arith.addf"]' in step.ir()


@pytest.mark.parametrize("batch", [3, 129])
def test_f32_batched_step_matches_numpy(batch):
    params, x, y = problem(batch, n_in=70, hidden=33, dtype=np.float32)
    loss_ref, params_ref, _ = numpy_step(params, x, y, lr=0.1)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1), pipeline=EVERY_LOOP)
    for n in THREADS:
        rm.set_num_threads(n)
        loss, got = run_step(step, params, x, y)
        assert loss == pytest.approx(loss_ref, rel=1e-5)
        for g, want in zip(got, params_ref):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_the_default_threshold_keeps_small_and_per_sample_steps_serial():
    params, x, y = problem(1, n_in=784, hidden=128, n_out=10)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    step(*[p.copy() for p in params], x[0], y[0])
    assert "raster.parallel" not in step.ir()
    params, x, y = problem(128, n_in=784, hidden=128, n_out=10)
    step(*[p.copy() for p in params], x, y)
    assert "raster.parallel" in step.ir()  # the batch's dense layer and weight gradient


def big_sum(x, y):
    return rm.sum(x * y) + rm.max(x)


def test_parallel_reduction_is_bitwise_the_same_for_any_thread_count_in_deterministic_mode():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=600_001), rng.normal(size=600_001)  # above the default min-work
    f = rm.jit(big_sum)
    rm.set_num_threads(1)
    f(x, y)
    ir = f.lower(x, y).ir()
    assert 'raster.parallel = ["arith.addf"]' in ir and 'raster.parallel = ["arith.maximumf"]' in ir
    expected = float(np.dot(x, y) + x.max())
    default = {}
    for n in THREADS:
        rm.set_num_threads(n)
        default[n] = f(x, y)
        assert default[n] == pytest.approx(expected, rel=1e-12)
    rm.set_deterministic(True)
    deterministic = set()
    for n in (*THREADS, 4, 7):
        rm.set_num_threads(n)
        deterministic.add(float(f(x, y)))
    assert len(deterministic) == 1
    assert deterministic.pop() == pytest.approx(expected, rel=1e-12)


def test_reduction_loop_is_marked_with_its_kind():
    x = np.ones(300_000)
    f = rm.jit(lambda x: rm.sum(x), pipeline=EVERY_LOOP)
    assert f(x) == 300_000.0
    ir = f.lower(x).ir()
    assert 'raster.parallel = ["arith.addf"]' in ir


def test_concurrent_calls_from_python_threads_are_correct():
    """Four threads step one TrainStep on their own parameters: each gets its own parameters and its own losses
    (the step's loss buffer is shared; a switch every microsecond gives the threads every chance to interleave)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    rm.set_num_threads(3)
    params, x, y = problem(64, n_in=96, hidden=40)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.05), pipeline=EVERY_LOOP)
    run_step(step, params, x, y)  # compiled before the threads start
    errors = []

    def worker(seed):
        try:
            local = [p.copy() for p in params]
            reference = [p.copy() for p in params]
            rng = np.random.default_rng(seed)
            for _ in range(20):
                xs = rng.random(x.shape)
                loss = step(*local, xs, y)
                want_loss, reference, _ = numpy_step(reference, xs, y, lr=0.05)
                assert loss == pytest.approx(want_loss, rel=1e-10)
            for got, want in zip(local, reference):
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        except Exception as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors


def _mxcsr_setter():
    """A native `set_mxcsr(value)` for the calling thread (x86-64 only)."""
    target = host_target()
    ir_text = """
declare void @llvm.x86.sse.ldmxcsr(ptr)
declare void @llvm.x86.sse.stmxcsr(ptr)
define i32 @swap_mxcsr(i32 %v) {
  %old = alloca i32
  call void @llvm.x86.sse.stmxcsr(ptr %old)
  %new = alloca i32
  store i32 %v, ptr %new
  call void @llvm.x86.sse.ldmxcsr(ptr %new)
  %r = load i32, ptr %old
  ret i32 %r
}
"""
    module = llvm.parse_assembly(ir_text)
    module.triple = target.triple
    engine = llvm.create_mcjit_compiler(module, target.create_target_machine(2))
    engine.finalize_object()
    fn = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32)(engine.get_function_address("swap_mxcsr"))
    return engine, fn


@pytest.mark.skipif(not host_target().triple.startswith("x86_64"), reason="MXCSR is x86")
def test_workers_run_with_the_callers_flush_to_zero_mode():
    engine, swap = _mxcsr_setter()
    f = rm.jit(lambda x: x * 1e-300, pipeline=EVERY_LOOP)
    x = np.full(100_000, 1e-10)  # 1e-310: a subnormal result
    rm.set_num_threads(3)
    flushing = rm.get_flush_denormal()
    rm.set_flush_denormal(False)  # compiled code keeps the caller's mode (no FTZ of its own)
    try:
        assert np.all(f(x) > 0)
        old = swap(0)
        swap(old | 0x8040)  # flush-to-zero and denormals-are-zero
        try:
            out = f(x)
        finally:
            swap(old)
        assert np.all(out == 0.0), f"{np.count_nonzero(out)} elements computed without the caller's FTZ"
        assert np.all(f(x) > 0)
        rm.set_flush_denormal(True)  # the entry point's own FTZ (fp_mode.py) reaches the workers too
        out = f(x)
        assert np.all(out == 0.0), f"{np.count_nonzero(out)} elements computed without the entry's FTZ"
    finally:
        rm.set_flush_denormal(flushing)
    del engine


def test_thread_settings_are_checked():
    with pytest.raises(RasterError, match="positive int"):
        rm.set_num_threads(0)
    with pytest.raises(RasterError, match="positive int"):
        rm.set_num_threads(2.0)
    rm.set_num_threads(5)
    assert rm.get_num_threads() == 5


def test_environment_variable_and_default(monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_NUM_THREADS", "3")
    assert pool._default_threads() == 3
    monkeypatch.setenv("RASTER_MLIR_NUM_THREADS", "zero")
    with pytest.raises(RasterError, match="RASTER_MLIR_NUM_THREADS"):
        pool._default_threads()
    monkeypatch.delenv("RASTER_MLIR_NUM_THREADS")
    assert pool._default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_workers():
    rm.set_num_threads(2)
    x = np.arange(300_000, dtype=np.float64)
    f = rm.jit(lambda x: x * 2.0 + 1.0, pipeline=EVERY_LOOP)
    expected = x * 2.0 + 1.0
    np.testing.assert_array_equal(f(x), expected)
    pid = os.fork()
    if pid == 0:  # the child: its pool has no workers until a job needs them
        ok = np.array_equal(f(x), expected) and pool.pool().started_workers == 1
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_data_loop_of_batched_steps_runs_its_loops_on_the_pool():
    """step.run over batches (what `raster-mlir train --batch B` does): the loops inside each step are marked."""
    params, x, y = problem(256, n_in=120, hidden=48)
    xs, ys = x.reshape(4, 64, 120), y.reshape(4, 64, 5)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1), pipeline=EVERY_LOOP)
    expected = [p.copy() for p in params]
    for xb, yb in zip(xs, ys):
        _, expected, _ = numpy_step(expected, xb, yb, lr=0.1)
    results = []
    for n in THREADS:
        rm.set_num_threads(n)
        mine = [p.copy() for p in params]
        losses = step.run(*mine, xs, ys)
        assert losses.shape == (4,)
        for got, want in zip(mine, expected):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        results.append(mine)
    assert "raster.parallel" in step.run_ir()
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_array_equal(a, b)


def test_the_outlined_loop_keeps_its_buffer_facts_and_is_not_vectorised_across_iterations():
    rng = np.random.default_rng(3)
    W, x, b = rng.normal(size=(16, 40)), rng.normal(size=(12, 40)), rng.normal(size=16)
    f = rm.jit(lambda W, x, b: nn.dense(W, x, b), pipeline=EVERY_LOOP)
    np.testing.assert_allclose(f(W, x, b), x @ W.T + b, rtol=1e-12)
    llvm_ir = f.lower(W, x, b).llvm_ir
    body = next(line for line in llvm_ir.splitlines() if line.startswith("define internal") and '.parallel1"(' in line)
    assert "noalias" in body and "dereferenceable(5120)" in body  # W: 16 x 40 f64, as in the entry
    assert ".parallel1.task" in llvm_ir and "rm.parallel_runtime" in llvm_ir
    assert '!"llvm.loop.unroll.disable"' in llvm_ir and '!"llvm.loop.interleave.count", i32 1' in llvm_ir


PLACEMENT_SCRIPT = """
import os, numpy as np, raster_mlir as rm
rm.set_num_threads(2)
f = rm.jit(lambda x: rm.tanh(x) * 2.0)
x = np.linspace(-3.0, 3.0, 1 << 20)
before = set(os.listdir('/proc/self/task'))
expected = np.tanh(x) * 2.0
np.testing.assert_allclose(f(x), expected, rtol=1e-14)
from raster_mlir.backend import llvm_worker
compiler = llvm_worker.worker_thread()  # the LLVM worker thread (a compile's, not the pool's)
workers = [int(t) for t in set(os.listdir('/proc/self/task')) - before if compiler is None or int(t) != compiler.native_id]
assert workers, 'no pool worker started'
cpus = sorted(os.sched_getaffinity(0))
os.sched_setaffinity(0, {cpus[0]})  # the calling thread on one CPU...
for t in workers:
    os.sched_setaffinity(t, {cpus[0]})  # ...and the workers forced onto the same one
for _ in range(20):
    np.testing.assert_allclose(f(x), expected, rtol=1e-14)
print(sorted(cpus[0] in os.sched_getaffinity(t) for t in workers))
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2 or pool.pool() is None,
    reason="needs Linux, the pool and two CPUs",
)
def test_a_worker_on_the_callers_cpu_moves_off_it(tmp_path):
    """pool.py's placement: a worker that joins a job on the dispatching thread's CPU leaves that CPU
    (the two would share it and the loop run at one thread's speed). Run in a fresh process: it pins
    its own threads."""
    import subprocess

    env = {**os.environ, "RASTER_MLIR_CACHE_DIR": str(tmp_path), "RASTER_MLIR_NUM_THREADS": "2"}
    env["RASTER_MLIR_PREPARE_RUNTIME"] = "0"  # (no background build thread to mistake for a worker)
    out = subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[False]"  # the worker may no longer run on the caller's CPU
