"""Cold first calls with and without the background build of the runtime modules (A/B, fresh processes).

    python bench/bench_compile_overlap.py [--quick] [--repeats R]

raster_mlir builds two modules once per process: the native dispatcher
(every `@rm.jit` function's call path) and the thread pool's runtime (every
module with parallel loops). `raster_mlir/backend/runtime_prep.py` builds
them on a background thread while the first compile's Python part runs;
`RASTER_MLIR_PREPARE_RUNTIME=0` builds them on first use, after the compile,
as before. Each run is a fresh process with an empty cache directory (the
first call: trace, compile, run once); the two settings alternate run by
run, and each figure is the median of `--repeats` runs: wall, CPU of all
threads, and CPU of the calling thread, of the first call. Ratios are on
(background) / off. The calling thread's CPU is what the wall time is on two
idle cores when the background build finishes before it is needed, so its
ratio shows the gain even on a loaded machine, where the wall ratio cannot.

Workloads: the unrolled damped spring of bench_compile.py (value and
gradient; 64-element vectors, no parallel loop: the dispatcher only), a
sum of tanh over 2^20 elements (a parallel reduction: dispatcher and pool),
and the 784 -> 128 -> 10 train step (neither runtime: the control, it must
not change). Children read
bytecode from a prefix filled first (bench_compile.py's docstring).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench import bench_compile  # noqa: E402  (the children and the bytecode prefix)
from bench.workloads.spring import unrolled_spring  # noqa: E402


def child(workload: str, cache: str) -> dict:
    """The first call of `workload` in this fresh process: wall, CPU of all threads, CPU of this thread."""
    os.environ["RASTER_MLIR_CACHE_DIR"] = cache
    import numpy as np

    import raster_mlir as rm

    kind, _, size = workload.partition(":")
    if kind in ("value", "grad"):
        x, v = bench_compile.ode_inputs()
        steps = int(size)

        spring = unrolled_spring(steps)

        f, args = (rm.jit(spring) if kind == "value" else rm.jit(rm.grad(spring))), (x, v)
    elif kind == "reduction":
        x = np.linspace(-2.0, 2.0, 1 << 20)
        f, args = rm.jit(lambda x: rm.sum(rm.tanh(x))), (x,)
    else:  # the train step, as bench_compile.py's MLP rows
        from bench.workloads import model
        from bench.workloads.raster_mlir_impl import mlp_loss

        spec = model.Spec(model.mlp_sizes(128, int(size)), "f64")
        params = [rm.aligned(p) for p in model.init_params(spec)]
        x = model.aligned_copy(np.random.default_rng(1).random(model.N_IN))
        f = rm.compile_train_step(mlp_loss, params=tuple(range(len(params))), optimizer=rm.optim.SGD(lr=0.01))
        args = (*params, x, model.aligned_copy(np.eye(model.N_OUT)[3]))
    wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
    result = f(*args)
    wall, cpu, main = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - main
    if kind == "value":
        assert abs(float(result) - bench_compile.ode_reference(steps)) < 1e-9 * abs(bench_compile.ode_reference(steps))
    elif kind == "reduction":
        assert abs(float(result) - float(np.sum(np.tanh(x)))) < 1e-9 * len(x), result
    return {"first_s": wall, "first_cpu_s": cpu, "main_cpu_s": main}


def commands(quick: bool) -> dict[str, str]:
    workloads = {
        "spring N=10, value": "value:10",
        "spring N=100, value": "value:100",
        "spring N=10, grad": "grad:10",
        "sum(tanh(x)), 2^20 (parallel)": "reduction:",
        "MLP train step, 2 layers (control)": "mlp:2",
    }
    if not quick:
        workloads["spring N=100, grad"] = "grad:100"
    return workloads


def run(workload: str, cache: str, prepare: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", workload, cache]
    saved = os.environ.get("RASTER_MLIR_PREPARE_RUNTIME")
    os.environ["RASTER_MLIR_PREPARE_RUNTIME"] = prepare
    try:
        got = bench_compile.run(command)
    finally:
        if saved is None:
            os.environ.pop("RASTER_MLIR_PREPARE_RUNTIME")
        else:
            os.environ["RASTER_MLIR_PREPARE_RUNTIME"] = saved
    if isinstance(got, str):
        raise SystemExit(f"{workload}: {got}")
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer workloads and 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench_overlap_pyc_") as prefix:
        bench_compile.prepare_bytecode(prefix, ["raster_mlir"], ["ode", "mlp"], raster_from_source=False)
        rows = []
        for name, workload in commands(args.quick).items():
            samples: dict[str, list[dict]] = {"1": [], "0": []}
            for _ in range(repeats):
                for prepare in ("1", "0"):
                    with tempfile.TemporaryDirectory(prefix="bench_overlap_cache_") as cache:
                        samples[prepare].append(run(workload, cache, prepare))
            med = {p: tuple(statistics.median(s[k] for s in runs) for k in ("first_s", "first_cpu_s", "main_cpu_s"))
                   for p, runs in samples.items()}  # fmt: skip
            rows.append((name, med))
            print(f"  {name}: background {med['1'][0] * 1e3:.0f} ms, on first use {med['0'][0] * 1e3:.0f} ms", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print(f"Cold first call, median of {repeats} fresh processes each: wall / CPU of all threads / CPU of the calling thread\n")
    print("| workload | runtimes built in the background | built on first use | wall ratio | calling thread's CPU ratio |")
    print("|---|---|---|---|---|")
    for name, med in rows:
        (w1, c1, m1), (w0, c0, m0) = med["1"], med["0"]
        cells = [f"{w * 1e3:.0f} / {c * 1e3:.0f} / {m * 1e3:.0f} ms" for w, c, m in ((w1, c1, m1), (w0, c0, m0))]
        print(f"| {name} | {cells[0]} | {cells[1]} | {w1 / w0:.2f} | {m1 / m0:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        main()
