"""A cold first call's work outside the passes: the cuts of issue 13's "firstcall" work switched off and on.

    python bench/bench_first_call.py [--quick] [--pairs N]

Each workload's cold first call (empty cache, a fresh process, bytecode
precompiled into a private PYTHONPYCACHEPREFIX) runs in alternating child
processes of this checkout, with the cuts switched off ("off": pass classes
made by `dataclass(frozen=True)`, the llvmlite module and lower-to-loops'
replaced tensor-level function left to the garbage collector) and on ("on":
`@pass_dataclass`, `backend/llvm_release.py`, `raster_mlir/ir_release.py`).
Printed per workload: medians of the first call's wall time and of the
calling thread's CPU time, the ratio on/off, and the part of the first call
that its timing report does not account for (wall). Workloads: the
784-128..-10 f64 SGD train step with 2 and 8 layers, the 100-step unrolled
damped spring's gradient (`--quick`: 2 layers and a 20-step gradient).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent(
    """
    import os, sys, tempfile, time, importlib
    from dataclasses import dataclass
    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp()
    sys.path.insert(0, ROOT)
    import numpy as np, raster_mlir as rm
    if CUTS == "off":
        importlib.import_module("raster_mlir.passes.pass_dataclass").pass_dataclass = dataclass(frozen=True)
        importlib.import_module("raster_mlir.backend").release_module = lambda llmod: None
        importlib.import_module("raster_mlir.ir_release").release_erased = lambda ops: None
    if KIND == "mlp":
        from bench.workloads import model, raster_mlir_impl as R
        spec = model.Spec(model.mlp_sizes(128, SIZE), "f64")
        params = [rm.aligned(p) for p in model.init_params(spec)]
        step = rm.compile_train_step(R.mlp_loss, params=tuple(range(len(params))), optimizer=rm.optim.SGD(lr=0.01))
        rng = np.random.default_rng(1)
        args = (*params, model.aligned_copy(rng.random(model.N_IN)), np.eye(10)[3])
        call, report = (lambda: step(*args)), (lambda: step._last.timer.total)
    else:
        from bench.workloads.spring import unrolled_spring
        f = rm.jit(rm.grad(unrolled_spring(SIZE)))
        args = (np.linspace(0.0, 1.0, 64), np.zeros(64))
        call, report = (lambda: f(*args)), (lambda: f.lower(*args).timer.total)
    w, c = time.perf_counter(), time.thread_time()
    call()
    w, c = time.perf_counter() - w, time.thread_time() - c
    print(f"RESULT {1000 * w:.2f} {1000 * c:.2f} {1000 * (w - report()):.2f}")
    """
)


def child(kind: str, size: int, cuts: str, env: dict) -> tuple[float, float, float]:
    code = f"ROOT, KIND, SIZE, CUTS = {ROOT!r}, {kind!r}, {size}, {cuts!r}\n" + CHILD
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    found = re.search(r"RESULT ([\d.]+) ([\d.]+) (-?[\d.]+)", out.stdout)
    if found is None:
        raise SystemExit(f"child failed ({kind} {size} {cuts}):\n{out.stderr[-3000:]}")
    wall, cpu, outside = map(float, found.groups())
    return wall, cpu, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=None)
    args = parser.parse_args()
    workloads = [("mlp", 2)] if args.quick else [("mlp", 2), ("mlp", 8), ("ode-grad", 100)]
    if args.quick:
        workloads.append(("ode-grad", 20))
    pairs = args.pairs or (2 if args.quick else 8)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="raster_mlir_first_call_pyc_")
    for kind, size in workloads:  # one untimed child per workload fills the bytecode cache
        child(kind, size, "on", env)
    print(f"{'workload':<22} {'cuts':<4} {'wall ms':>9} {'CPU ms':>9} {'outside report ms':>18}   on/off (wall, CPU)")
    for kind, size in workloads:
        runs = {"off": [], "on": []}
        for _ in range(pairs):
            for cuts in ("off", "on"):
                runs[cuts].append(child(kind, size, cuts, env))
        medians = {cuts: [statistics.median(r[i] for r in rows) for i in range(3)] for cuts, rows in runs.items()}
        name = f"MLP {size} layers" if kind == "mlp" else f"ODE {size} steps, grad"
        for cuts in ("off", "on"):
            wall, cpu, outside = medians[cuts]
            ratio = ""
            if cuts == "on":
                ratio = f"   {wall / medians['off'][0]:.3f}, {cpu / medians['off'][1]:.3f}"
            print(f"{name:<22} {cuts:<4} {wall:9.1f} {cpu:9.1f} {outside:18.1f}{ratio}")
    print(f"(medians of {pairs} alternating fresh processes per row; CPU: the calling thread's)")


if __name__ == "__main__":
    main()
