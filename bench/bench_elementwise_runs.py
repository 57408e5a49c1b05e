"""Runs of element-wise ops lowered into one loop nest (lower-to-loops) against one nest per op, in one run.

    python bench/bench_elementwise_runs.py [--quick] [--only ROW]

"runs" is the default pipeline: lower-to-loops lowers each run of consecutive
element-wise ops of one shape into one loop nest (passes/elementwise_clusters.py);
"per-op" the same pipeline with `lower-to-loops{fuse-elementwise=false}`: one
nest and one temporary per op, which fuse-loops merges. Per row: the time
of lower-to-loops + fuse-loops (ms, from the timing report of the compile),
the whole compile (rm.compile / the train step's first lowering; wall ms, and the
process's CPU ms, LLVM's worker thread included) and the run time of the compiled function
(microseconds per call, medians of interleaved rounds, bench/timing.py); compiles run with
`RASTER_MLIR_CACHE=0` (no object cache, in memory or on disk: every compile is a full one);
"x per-op" is per-op's figure over runs' (>1: runs is faster). "same IR" says
whether the IR after parallelize-loops is the same text both ways (then the
run-time ratio shows the noise). Compiles alternate between the two pipelines
(the first compile of the process pays imports: a warm-up compile goes first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import compare  # noqa: E402
from workloads.spring import unrolled_spring as spring  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402
from raster_mlir.compiler import DEFAULT_PIPELINE  # noqa: E402

PIPELINES = {
    "runs": DEFAULT_PIPELINE,
    "per-op": DEFAULT_PIPELINE.replace("lower-to-loops,", "lower-to-loops{fuse-elementwise=false},", 1),
}
LOOP_PASSES = ("lower-to-loops", "fuse-loops")


def layer(W, b, x):
    h = nn.tanh(nn.dense(W, x, b)) * 0.5 + rm.exp(-nn.dense(W, x, b))
    return rm.sum(h * h) + rm.mean(nn.sigmoid(h))


def softmax_loss(x):
    p = nn.softmax(x * 2.0 - 1.0)
    return rm.sum(rm.log(p + 1e-3) * x)


def gelu_like(x, y):
    """Element-wise chains on a matrix with broadcast rows, then a reduction per row."""
    t = rm.tanh(0.79788456 * (x + 0.044715 * x * x * x))
    g = 0.5 * x * (1.0 + t) * y
    return rm.sum(g * g, axis=1)


def functions(quick: bool):
    """name -> (function to compile, arguments)."""
    rng = np.random.default_rng(0)
    x64, v64 = np.linspace(0.0, 1.0, 64), np.zeros(64)
    W, b, xb = rng.standard_normal((64, 32)), rng.standard_normal(64), rng.standard_normal((16, 32))
    m, row = rng.standard_normal((256, 256)), rng.standard_normal(256)
    rows = {
        "ode 100 value": (spring(100), (x64, v64)),
        "ode 100 grad": (rm.grad(spring(100), argnums=(0, 1)), (x64, v64)),
        "dense layer value": (layer, (W, b, xb)),
        "dense layer grad": (rm.grad(layer, argnums=(0, 1)), (W, b, xb)),
        "softmax loss grad": (rm.grad(softmax_loss), (xb,)),
        "gelu rows 256x256": (gelu_like, (m, row)),
        "gelu rows grad": (rm.grad(lambda x, y: rm.sum(gelu_like(x, y))), (m, row)),
    }
    if not quick:
        rows["ode 1000 value"] = (spring(1000), (x64, v64))
        rows["ode 1000 grad"] = (rm.grad(spring(1000), argnums=(0, 1)), (x64, v64))
    return rows


def compile_once(fn, args, pipeline: str):
    """(compiled, loop-pass ms, compile ms); a full compile (no object cache: main())."""
    start, cpu = time.perf_counter(), time.process_time()
    compiled = rm.compile(fn, *args, pipeline=pipeline)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    seconds = compiled.pass_seconds
    return compiled, 1e3 * sum(seconds.get(p, 0.0) for p in LOOP_PASSES), (1e3 * total, 1e3 * cpu)


def train_step_once(layers: int, pipeline: str):
    from bench.workloads.raster_mlir_impl import sgd_train_step

    step, params, x, y = sgd_train_step(layers, lr=1e-4, pipeline=pipeline)
    start, cpu = time.perf_counter(), time.process_time()
    lowered = step.lower(*params, x, y)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    seconds = lowered.pass_seconds
    loops = 1e3 * sum(seconds.get(p, 0.0) for p in LOOP_PASSES)
    return (lambda: step(*params, x, y)), lowered, loops, (1e3 * total, 1e3 * cpu)


def measure(name, build, repeats: int, rounds: int):
    """One table row: median loop-pass ms, compile wall and CPU ms per pipeline, run time, same IR or not."""
    loop_ms = {k: [] for k in PIPELINES}
    compile_ms = {k: [] for k in PIPELINES}
    compile_cpu = {k: [] for k in PIPELINES}
    calls, irs = {}, {}
    for r in range(repeats):
        order = list(PIPELINES) if r % 2 == 0 else list(reversed(PIPELINES))
        for key in order:
            call, compiled, loops, total = build(PIPELINES[key])
            loop_ms[key].append(loops)
            compile_ms[key].append(total[0])
            compile_cpu[key].append(total[1])
            calls[key], irs[key] = call, compiled.ir("after:parallelize-loops")
    times = compare(calls, rounds=rounds, number=20)
    same = irs["runs"] == irs["per-op"]
    med = {
        k: (statistics.median(loop_ms[k]), statistics.median(compile_ms[k]), statistics.median(compile_cpu[k]), times[k].median)
        for k in PIPELINES
    }
    return name, med, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows, compiles and rounds")
    parser.add_argument("--only", help="rows whose name contains this text")
    options = parser.parse_args()
    os.environ["RASTER_MLIR_CACHE"] = "0"  # every compile a full one (read at each compile)
    os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_elementwise_runs_"))
    repeats, rounds = (1, 5) if options.quick else (3, 15)
    builds = {}
    for name, (fn, args) in functions(options.quick).items():

        def build(pipeline, fn=fn, args=args):
            compiled, loops, total = compile_once(fn, args, pipeline)
            return (lambda: compiled(*args)), compiled, loops, total

        builds[name] = build
    for layers in (2,) if options.quick else (2, 4, 8):
        builds[f"train step {layers} layers"] = lambda pipeline, layers=layers: train_step_once(layers, pipeline)
    compile_once(spring(5), (np.zeros(64), np.zeros(64)), PIPELINES["runs"])  # imports, outside the figures
    print(f"{'row':24} {'loop passes ms runs / per-op':>29} {'x':>5} {'compile ms runs / per-op':>25} {'x':>5} "
          f"{'(CPU ms) runs / per-op':>23} {'x':>5} {'run us runs / per-op':>23} {'x':>5}  same IR")  # fmt: skip
    for name, build in builds.items():
        if options.only and options.only not in name:
            continue
        name, med, same = measure(name, build, repeats, rounds)
        (la, ca, pa, ra), (lb, cb, pb, rb) = med["runs"], med["per-op"]
        print(f"{name:24} {la:13.1f} / {lb:13.1f} {lb / la:5.2f} {ca:11.1f} / {cb:11.1f} {cb / ca:5.2f} "
              f"{pa:10.1f} / {pb:10.1f} {pb / pa:5.2f} {ra:10.2f} / {rb:10.2f} {rb / ra:5.2f}  {'yes' if same else 'no'}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
