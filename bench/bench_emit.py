"""Python time of LLVM IR emission (backend/llvm_emit.emit_module), per program.

    python bench/bench_emit.py [--quick] [--reps N]

The loop-level modules of a few programs (the 784-128-10 and 784-128x7-10 f64 SGD
train steps, the 100-step unrolled spring's gradient, a 50-step fori_loop's
gradient, an f32 tanh matmul, a softmax) are captured while they compile, then
emitted again and again in this process: CPU time of one emission (median),
interleaved A/B of the emitter as it is against the same emitter building
with llvmlite's own `ir.IRBuilder` and printing with llvmlite's `str(module)`
(the part of the speed-up that can be switched off in one process; the other
changes - one flat walk, cached flags, id sets - are in both columns), and a
check that both print the same text. The before/after of the whole emitter
needs two checkouts: run this script in each and compare the "ours" column.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_emit_"))

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402

import raster_mlir as rm  # noqa: E402
import raster_mlir.backend as backend  # noqa: E402
from raster_mlir.backend import llvm_body, llvm_cf, llvm_emit, llvm_entry, parallel_emit, segment_emit  # noqa: E402
from raster_mlir.backend.vmath import avx512 as vmath_avx512, fallback as vmath_fallback  # noqa: E402
import raster_mlir.backend.vmath as vmath  # noqa: E402
from raster_mlir.backend.fast_builder import FastBuilder  # noqa: E402
from raster_mlir.backend.llvm_print import module_text  # noqa: E402
from bench.workloads import raster_mlir_impl  # noqa: E402
from bench.workloads.spring import unrolled_spring  # noqa: E402

BUILDER_MODULES = (llvm_body, llvm_cf, llvm_entry, parallel_emit, segment_emit, vmath, vmath_avx512, vmath_fallback)


def _train_step(layers: int):
    step, params, x, y = raster_mlir_impl.sgd_train_step(layers)
    step(*params, x, y)


_unrolled_spring = unrolled_spring(100)


def _damped_spring(k, x0, v0):
    def step(i, state):
        x, v = state
        v = v + 0.01 * (-k * x - 0.1 * v)
        return x + 0.01 * v, v

    x, _ = rm.fori_loop(0, 50, step, (x0, v0))
    return rm.sum(x * x)


def programs(rng):
    f32 = np.float32
    return {
        "train step, 2 layers": lambda: _train_step(2),
        "train step, 8 layers": lambda: _train_step(8),
        "unrolled spring grad": lambda: rm.jit(rm.grad(_unrolled_spring))(rng.random(64), rng.random(64)),
        "fori_loop grad": lambda: rm.jit(rm.grad(_damped_spring))(1.5, rng.random(64), rng.random(64)),
        "f32 tanh(a @ b)": lambda: rm.jit(lambda a, b: rm.sum(rm.tanh(a @ b)))(
            rng.random((16, 33)).astype(f32), rng.random((33, 7)).astype(f32)
        ),
        "softmax": lambda: rm.jit(lambda x: rm.exp(x - rm.max(x)) / rm.sum(rm.exp(x - rm.max(x))))(rng.random(100)),
    }


def capture(thunk) -> list:
    """The (module, entries, options) of every emit_module call the compile makes (the cache is off)."""
    captured, real = [], backend.emit_module

    def spy(module, entries, options=None, *args, **kwargs):
        captured.append((module.clone(), entries, options))
        return real(module, entries, options, *args, **kwargs)

    backend.emit_module = spy
    try:
        thunk()
    finally:
        backend.emit_module = real
    return captured


def use_llvmlite(on: bool) -> None:
    """Build with llvmlite's IRBuilder and print with str(module) (on), or the emitter's own (off)."""
    llvm_emit.module_text = str if on else module_text
    for mod in BUILDER_MODULES:
        mod.FastBuilder = ir.IRBuilder if on else FastBuilder


def emit_all(modules) -> tuple[float, str]:
    t = time.process_time()
    texts = [llvm_emit.emit_module(m, e, o, True).llvm_ir for m, e, o in modules]
    return time.process_time() - t, "".join(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    args = parser.parse_args()
    reps = 5 if args.quick else args.reps
    os.environ["RASTER_MLIR_CACHE"] = "0"
    rng = np.random.default_rng(0)
    print(f"LLVM IR emission, CPU ms of one emission (median of {reps}, interleaved); Python {sys.version.split()[0]}")
    print(f"{'program':24s} {'ours':>8s} {'llvmlite builder+printer':>25s} {'ratio':>6s}  text")
    gc.disable()
    try:
        for name, thunk in programs(rng).items():
            modules = capture(thunk)
            times = {True: [], False: []}
            texts = {}
            for r in range(reps):
                for on in (True, False) if r % 2 else (False, True):
                    use_llvmlite(on)
                    seconds, texts[on] = emit_all(modules)
                    times[on].append(seconds)
                    gc.collect()
            ours, theirs = (statistics.median(times[k]) * 1000 for k in (False, True))
            same = "same" if texts[True] == texts[False] else "DIFFERENT"
            print(f"{name:24s} {ours:8.2f} {theirs:25.2f} {ours / theirs:6.2f}  {same}")
    finally:
        use_llvmlite(False)
        gc.enable()


if __name__ == "__main__":
    main()
