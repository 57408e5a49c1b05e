"""Thread CPU of the loop-level passes in a cold first call of the train step, A/B between checkouts.

    python bench/bench_loop_passes.py [--layers 2 8] [--pairs 5] [--against PYTHON ...]

Each child process is fresh (a new compile cache, the first compile of the process: what a user's
first call pays, first uses included) and times, with `time.thread_time` (CPU of the calling
thread, which a loaded machine inflates less than wall time), every pass of the 784→128×(L-1)→10
f64 SGD train step's first call (the skip-zero-chunks row holds the snapshot taken before it),
the first call's thread CPU and wall time, and the sum of the loop passes' rows. The children
alternate between this tree and each `--against` interpreter (whose `import raster_mlir` is
another checkout, e.g. `/work/venvs/lead/bin/python`), `--pairs` times; the table shows medians
and the ratio to this tree. Bytecode is compiled once per checkout into a private prefix (the
children run with PYTHONDONTWRITEBYTECODE unset, as an installed package would) by one discarded
warm-up child per interpreter, so no timed child compiles the modules from source. A pass that
runs twice (`fuse-loops#2`) counts in its pass's row.

`bench/bench_pass_phases.py` times the passes after a process's first compile (warm code).
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

ROOT = Path(__file__).resolve().parent.parent
LOOP_PASSES = (
    "lower-to-loops", "fuse-loops", "fuse-epilogues", "skip-zero-updates", "skip-zero-chunks",
    "skip-masked-terms", "parallelize-loops",
)  # fmt: skip


def child(layers: int) -> dict[str, float]:
    """CPU ms per pass of a cold first call (run in a fresh process)."""
    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_loop_passes_")
    import raster_mlir.compiler as compiler  # (the interpreter's own checkout: imported before ROOT joins sys.path)

    sys.path.append(str(ROOT))
    from bench.workloads.raster_mlir_impl import sgd_train_step

    rows: dict[str, float] = {}
    run_pass = compiler.StagedPipeline._run_pass

    def timed(self, ctx, p, label, module, verify):
        start = time.thread_time()
        run_pass(self, ctx, p, label, module, verify)
        # keyed by pass name, not stage label: a second run (`fuse-loops#2`) adds to its pass's row
        rows[p.name] = rows.get(p.name, 0.0) + 1e3 * (time.thread_time() - start)

    compiler.StagedPipeline._run_pass = timed
    step, params, x, y = sgd_train_step(layers)
    cpu, wall = time.thread_time(), time.perf_counter()
    step(*params, x, y)
    rows["first call, wall"] = 1e3 * (time.perf_counter() - wall)
    rows["first call, thread CPU"] = 1e3 * (time.thread_time() - cpu)
    rows["loop passes"] = sum(rows.get(name, 0.0) for name in LOOP_PASSES)
    return rows


def run_child(python: str, pycache_prefix: str, layers: int) -> dict[str, float]:
    """One fresh child's rows; a failing child's stderr is printed before the error is raised."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    done = subprocess.run([python, __file__, "--child", str(layers)], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        done.check_returncode()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--against", nargs="*", default=[], help="other Python interpreters (other checkouts)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    pythons = [sys.executable, *args.against]
    prefixes = [tempfile.mkdtemp(prefix="bench_loop_passes_pyc_") for _ in pythons]
    for python, prefix in zip(pythons, prefixes):  # (writes each checkout's bytecode; not timed)
        run_child(python, prefix, args.layers[0])
    for layers in args.layers:
        runs: list[list[dict[str, float]]] = [[] for _ in pythons]
        for _ in range(args.pairs):
            for k, python in enumerate(pythons):
                runs[k].append(run_child(python, prefixes[k], layers))
        header = ["this tree", *(f"#{k}" for k in range(1, len(pythons)))]
        print(f"\n{layers} layers: cold first call, CPU ms of the calling thread, medians of {args.pairs} processes each")
        print(f"{'phase':<26}" + "".join(f"{h:>11}" for h in header) + "".join(f"{'#' + str(k) + '/this':>9}" for k in range(1, len(pythons))))
        for label in [*LOOP_PASSES, "loop passes", "first call, thread CPU", "first call, wall"]:
            values = [statistics.median(r.get(label, 0.0) for r in run) for run in runs]
            ratios = "".join(f"{v / values[0]:>9.2f}" if values[0] else f"{'-':>9}" for v in values[1:])
            print(f"{label:<26}" + "".join(f"{v:>11.2f}" for v in values) + ratios)
    for k, python in enumerate(pythons[1:], 1):
        print(f"#{k}: {python}")


if __name__ == "__main__":
    main()
