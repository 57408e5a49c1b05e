"""Cold first calls with and without the background build of the runtime modules (A/B, fresh processes).

    python bench/bench_compile_overlap.py [--quick] [--repeats R]

raster_mlir builds two modules once per process: the native dispatcher
(every `@rm.jit` function's call path) and the thread pool's runtime (every
module with parallel loops). `raster_mlir/backend/runtime_prep.py` builds
them on a background thread while the first compile's Python part runs;
`RASTER_MLIR_PREPARE_RUNTIME=0` builds them on first use, after the compile,
as before. Each run is a fresh process with an empty cache directory (the
first call: trace, compile, run once); the two settings alternate run by
run, and each figure is the median of `--repeats` runs, wall and CPU
(all threads) of the first call. The ratio is on (background) / off.

Workloads: the unrolled damped spring of bench_compile.py (value and
gradient; 64-element vectors, no parallel loop: the dispatcher only), a
sum of tanh over 2^20 elements (a parallel reduction: dispatcher and pool),
and the 784 -> 128 -> 10 train step (neither runtime: the control, it must
not change). The wall-time gain needs a free second core: on a loaded
machine both columns are the same within the noise. Children read
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


def reduction_child(cache: str) -> dict:
    os.environ["RASTER_MLIR_CACHE_DIR"] = cache
    import numpy as np

    import raster_mlir as rm

    x = np.linspace(-2.0, 2.0, 1 << 20)
    f = rm.jit(lambda x: rm.sum(rm.tanh(x)))
    wall, cpu = time.perf_counter(), time.process_time()
    value = float(f(x))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert abs(value - float(np.sum(np.tanh(x)))) < 1e-9 * len(x), value
    return {"first_s": wall, "first_cpu_s": cpu}


def commands(quick: bool) -> dict[str, callable]:
    me = [sys.executable, str(Path(__file__).resolve()), "--child-reduction"]
    workloads = {
        "spring N=10, value": lambda cache: bench_compile.ode_command("raster_mlir", 10, "value", cache),
        "spring N=100, value": lambda cache: bench_compile.ode_command("raster_mlir", 100, "value", cache),
        "spring N=10, grad": lambda cache: bench_compile.ode_command("raster_mlir", 10, "grad", cache),
        "sum(tanh(x)), 2^20 (parallel)": lambda cache: [*me, cache],
        "MLP train step, 2 layers (control)": lambda cache: bench_compile.mlp_command("raster_mlir", 2, cache),
    }
    if not quick:
        workloads["spring N=100, grad"] = lambda cache: bench_compile.ode_command("raster_mlir", 100, "grad", cache)
    return workloads


def run(command: list[str], prepare: str) -> dict:
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
        raise SystemExit(f"{' '.join(command)}: {got}")
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
        for name, command in commands(args.quick).items():
            samples: dict[str, list[dict]] = {"1": [], "0": []}
            for _ in range(repeats):
                for prepare in ("1", "0"):
                    with tempfile.TemporaryDirectory(prefix="bench_overlap_cache_") as cache:
                        samples[prepare].append(run(command(cache), prepare))
            med = {p: (statistics.median(s["first_s"] for s in runs), statistics.median(s["first_cpu_s"] for s in runs))
                   for p, runs in samples.items()}  # fmt: skip
            rows.append((name, med))
            print(f"  {name}: background {med['1'][0] * 1e3:.0f} ms, on first use {med['0'][0] * 1e3:.0f} ms", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}\n")
    print(f"Cold first call, median of {repeats} fresh processes each (wall, CPU of all threads)\n")
    print("| workload | runtimes built in the background | built on first use | wall ratio | CPU ratio |")
    print("|---|---|---|---|---|")
    for name, med in rows:
        (w1, c1), (w0, c0) = med["1"], med["0"]
        print(f"| {name} | {w1 * 1e3:.0f} ms ({c1 * 1e3:.0f} CPU) | {w0 * 1e3:.0f} ms ({c0 * 1e3:.0f} CPU) | {w1 / w0:.2f} | {c1 / c0:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-reduction":
        print(json.dumps(reduction_child(sys.argv[2])))
    else:
        main()
