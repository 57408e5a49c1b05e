"""CPU time of each pass of the default pipeline (and of verification) on the train step, A/B between checkouts.

    python bench/bench_pass_phases.py [--quick] [--layers 2 8] [--repeats 9] [--processes 3]
                                      [--against PYTHON ...]

What it measures: the Python before LLVM IR emission. For each layer count, a child process
builds the 784→128×(L-1)→10 f64 SGD train step, compiles it once (the first compile of the
process: imports, first uses), then runs the pipeline `--repeats` more times on copies of the
traced IR and reports, per phase, the minimum CPU time of the calling thread
(`time.thread_time`, which a loaded machine inflates less than wall time): the copy of the
traced IR, every pass (skip-zero-chunks' row holds the snapshot taken before it) and
verification. `--against PYTHON` adds columns for other interpreters whose `import
raster_mlir` is another checkout (e.g. `/work/venvs/lead/bin/python` for main); the children
alternate (this tree, then each other one) `--processes` times and the table shows medians
of the children's minima, with the ratio to the first column.

Not the cold first call (LLVM, emission, imports): `bench/bench_compile.py` and
`timing_report()` show those.
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


def child(layers: int, repeats: int) -> dict[str, float]:
    """Per-phase minimum CPU ms over `repeats` runs of the pipeline (run in a fresh process)."""
    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_pass_phases_")
    import raster_mlir.compiler as compiler  # (the interpreter's own checkout: imported before ROOT joins sys.path)
    from raster_mlir.gc_pause import paused_gc

    try:
        from raster_mlir.ir_clone import clone_op
    except ImportError:  # a checkout without it
        clone_op = lambda module: module.clone()  # noqa: E731
    sys.path.append(str(ROOT))
    from bench.workloads.raster_mlir_impl import sgd_train_step

    step, params, x, y = sgd_train_step(layers)
    compiled = step.lower(*params, x, y)

    seconds: dict[str, float] = {}
    run_pass, verify = compiler.StagedPipeline._run_pass, compiler.StagedPipeline._verify

    def timed(label: str, fn, *args) -> None:
        start = time.thread_time()
        fn(*args)
        seconds[label] = seconds.get(label, 0.0) + time.thread_time() - start

    compiler.StagedPipeline._run_pass = lambda self, ctx, p, label, module, verify: timed(
        label, run_pass, self, ctx, p, label, module, verify
    )
    compiler.StagedPipeline._verify = lambda self, module, after: timed("verification", verify, self, module, after)
    best: dict[str, float] = {}
    for _ in range(repeats):
        seconds.clear()
        with paused_gc():
            start = time.thread_time()
            module = clone_op(compiled.traced)
            seconds["copy of the traced IR"] = time.thread_time() - start
            pipeline = compiler.StagedPipeline(compiled.pipeline_spec, snapshot_before=("skip-zero-chunks",))
            pipeline.run(module, fresh_input=lambda: clone_op(compiled.traced))
            seconds["total"] = time.thread_time() - start
        for label, s in seconds.items():
            best[label] = min(best.get(label, s), s)
    return {label: 1e3 * s for label, s in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--against", nargs="*", default=[], help="other Python interpreters (other checkouts)")
    parser.add_argument("--quick", action="store_true", help="2 layers, 3 repeats, 1 process each")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.quick:
        args.layers, args.repeats, args.processes = [2], 3, 1
    pythons = [sys.executable, *args.against]
    env = dict(os.environ)
    env.pop("RASTER_MLIR_VERIFY_EACH", None)  # the default policy (verification before lower-to-loops and at the end)
    for layers in args.layers:
        runs: list[list[dict[str, float]]] = [[] for _ in pythons]
        for _ in range(args.processes):
            for k, python in enumerate(pythons):
                out = subprocess.run(
                    [python, __file__, "--child", str(layers), str(args.repeats)],
                    cwd=ROOT, env=env, capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                runs[k].append(json.loads(out.strip().splitlines()[-1]))
        labels = list(dict.fromkeys(label for r in runs[0] for label in r))
        header = ["this tree", *(f"#{k}" for k in range(1, len(pythons)))]
        print(f"\n{layers} layers: CPU ms per phase, medians of {args.processes} processes' minima of {args.repeats} runs")
        print(f"{'phase':<28}" + "".join(f"{h:>12}" for h in header) + "".join(f"{'#' + str(k) + '/this':>10}" for k in range(1, len(pythons))))
        for label in labels:
            values = [statistics.median(r[label] for r in run if label in r) if any(label in r for r in run) else float("nan") for run in runs]
            ratios = "".join(f"{v / values[0]:>10.2f}" for v in values[1:])
            print(f"{label:<28}" + "".join(f"{v:>12.2f}" for v in values) + ratios)
    for k, python in enumerate(pythons[1:], 1):
        print(f"#{k}: {python}")


if __name__ == "__main__":
    main()
