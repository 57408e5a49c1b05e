"""Work and CPU time of the tensor-level phases of the unrolled ODE, A/B between checkouts.

    python bench/bench_tensor_phases.py [--quick] [--steps 100 1000] [--modes grad value]
                                        [--repeats 3] [--against PYTHON ...]

For each (steps, mode), a child process traces the bench's unrolled damped spring (64-element
f64 vectors, `bench_compile.py`'s ODE rows) and runs the tensor pipeline (inline, autodiff,
forward-ad, inline, canonicalize, cse, dce) on a copy of the traced IR, once untimed (first uses),
then once counting the Python function calls of each phase (`sys.setprofile`: deterministic, so
it compares checkouts even on a loaded machine), then `--repeats` times timing each phase
(`time.thread_time`, minimum). `--against PYTHON` adds columns for other interpreters whose
`import raster_mlir` is another checkout (e.g. `/work/venvs/lead/bin/python`), with the ratio to
this one. Not the cold first call: `bench/bench_compile.py` and `timing_report()` show that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def child(steps: int, mode: str, repeats: int) -> dict:
    """Runs in the child: {phase: [calls, min CPU seconds]} for one program."""
    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp()
    from xdsl.dialects.builtin import TensorType, f64

    import raster_mlir as rm
    from raster_mlir.compiler import TENSOR_PIPELINE, make_context, parse_pipeline, pass_labels
    from raster_mlir.frontend.tracer import ModuleTrace
    from raster_mlir.ir_clone import clone_op

    sys.path.append(ROOT)  # (after raster_mlir: the interpreter's own checkout is the one measured)
    from bench.timing import count_calls
    from bench.workloads.spring import unrolled_spring

    spring = unrolled_spring(steps)
    fn = spring if mode == "value" else rm.grad(spring)
    arg = TensorType(f64, [64])

    def trace():
        t = ModuleTrace()
        t.trace_function(fn, "spring", [arg, arg])
        return t.module

    passes = parse_pipeline(TENSOR_PIPELINE).passes
    labels = pass_labels(p.name for p in passes)

    def phases(measure) -> None:
        traced = measure("trace", trace)
        module = measure("copy of the traced IR", lambda: clone_op(traced))
        ctx = make_context()
        for p, label in zip(passes, labels):
            measure(label, lambda: p.apply(ctx, module))

    phases(lambda name, f: f())  # first uses
    rows: dict[str, list] = {}

    def count(name, f):
        result = []
        rows[name] = [count_calls(lambda: result.append(f())), float("inf")]
        return result[0]

    phases(count)
    for _ in range(repeats):

        def timed(name, f):
            start = time.thread_time()
            result = f()
            rows[name][1] = min(rows[name][1], time.thread_time() - start)
            return result

        phases(timed)
    return rows


def run_child(python: str, steps: int, mode: str, repeats: int) -> dict:
    # Run as a script: sys.path[0] is bench/, so `import raster_mlir` is the interpreter's own checkout.
    command = [python, os.path.abspath(__file__), "--child", str(steps), mode, str(repeats)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10 steps, gradient only, one repeat")
    p.add_argument("--steps", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--modes", nargs="+", default=["grad", "value"], choices=["grad", "value"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--against", nargs="*", default=[], metavar="PYTHON")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        steps, mode, repeats = args.child
        print(json.dumps(child(int(steps), mode, int(repeats))))
        return
    if args.quick:
        args.steps, args.modes, args.repeats = [10], ["grad"], 1
    pythons = [sys.executable, *args.against]
    for steps in args.steps:
        for mode in args.modes:
            results = [run_child(py, steps, mode, args.repeats) for py in pythons]
            print(f"\nunrolled ODE, {steps} steps, {mode}: Python calls (CPU ms), columns: {', '.join(pythons)}")
            for phase in results[0]:
                cells = []
                for r in results:
                    calls, seconds = r.get(phase, [0, 0.0])
                    ratio = f" x{calls / results[0][phase][0]:.2f}" if r is not results[0] and results[0][phase][0] else ""
                    cells.append(f"{calls:>10,d} ({seconds * 1e3:7.1f}){ratio}")
                print(f"  {phase:24s} " + "  ".join(cells))
            totals = [sum(v[0] for v in r.values()) for r in results]
            print(f"  {'total':24s} " + "  ".join(f"{t:>10,d}" for t in totals))


if __name__ == "__main__":
    main()
