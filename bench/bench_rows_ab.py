"""Timing-report rows of a cold first call, in CPU time, this checkout against another one.

    python bench/bench_rows_ab.py --base-tree DIR --base-venv VENV [--layers 2] [--pairs 8] [--raw ROW,...]

Each pair runs the cold first call of the 784-128..-10 f64 SGD train step
(`bench.workloads.raster_mlir_impl`, empty cache, a fresh process, bytecode
precompiled into a private PYTHONPYCACHEPREFIX per side) once with the other
checkout (its tree and a virtual environment whose raster_mlir is that tree, e.g.
/work/wt/lead and /work/venvs/lead) and once with this one, alternating which
goes first. Every phase timer of raster_mlir reads the calling thread's CPU
time instead of the wall clock (on a loaded machine wall time says little), so
each report row is the CPU its phase took on the calling thread; rows marked
"(other thread)" are the LLVM worker's own CPU. Printed: medians per row, both
sides, and the ratio this/other; with --raw, every sample of the rows named.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.own_tree import OWN_TREE_CHECK  # noqa: E402  (each side's child checks it runs its own tree)

CHILD = textwrap.dedent(
    """
    import os, sys, tempfile, time
    os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp()
    sys.path.insert(0, os.getcwd())
    """
) + OWN_TREE_CHECK + textwrap.dedent(
    """
    from bench.workloads import model, raster_mlir_impl as R
    import numpy as np, raster_mlir as rm

    class CPUTime:  # the time module, but perf_counter is the calling thread's CPU time
        perf_counter = staticmethod(time.thread_time)
        def __getattr__(self, name):
            return getattr(time, name)

    layers = int(sys.argv[1])
    spec = model.Spec(model.mlp_sizes(128, layers), "f64")
    params = [rm.aligned(p) for p in model.init_params(spec)]
    step = rm.compile_train_step(R.mlp_loss, params=tuple(range(len(params))), optimizer=rm.optim.SGD(lr=0.01))
    x = model.aligned_copy(np.random.default_rng(1).random(model.N_IN))
    y = np.eye(10)[3]
    import raster_mlir.passes.registry, raster_mlir.compiler, raster_mlir.gc_pause  # noqa: E401
    for name, module in list(sys.modules.items()):
        if name.startswith("raster_mlir") and getattr(module, "time", None) is time:
            module.time = CPUTime()
    cpu, wall = time.thread_time(), time.perf_counter()
    step(*params, x, y)
    print(f"ROW first call, calling thread CPU|{(time.thread_time() - cpu) * 1e3:.3f}")
    print(f"ROW first call, wall|{(time.perf_counter() - wall) * 1e3:.3f}")
    for line in step.timing_report().splitlines():
        parts = line.split("%  ", 1)
        if len(parts) == 2 and parts[0].split():
            print(f"ROW {parts[1].strip()}|{float(parts[0].split()[0]) * 1e3:.3f}")
    """
)


def run(tree: str, python: str, layers: int, prefix: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=prefix)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([python, "-c", CHILD, str(layers)], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode:
        sys.exit(f"{tree}: {out.stderr[-3000:]}")
    rows = {}
    for line in out.stdout.splitlines():
        if line.startswith("ROW "):
            name, value = line[4:].rsplit("|", 1)
            rows[name] = float(value)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-tree", required=True, help="the other checkout (its bench/ is used for its side)")
    ap.add_argument("--base-venv", required=True, help="a virtual environment whose raster_mlir is --base-tree")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--raw", default="", help="comma-separated row names (substrings) to print every sample of")
    args = ap.parse_args()
    prefixes = tempfile.mkdtemp(prefix="rows_ab_pyc_")
    sides = {
        "other": (args.base_tree, os.path.join(args.base_venv, "bin", "python"), os.path.join(prefixes, "other")),
        "this": (ROOT, sys.executable, os.path.join(prefixes, "this")),
    }
    for tree, python, prefix in sides.values():  # fills each side's bytecode
        run(tree, python, args.layers, prefix)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
    for i in range(args.pairs):
        order = list(sides) if i % 2 == 0 else list(sides)[::-1]
        for name in order:
            for row, value in run(*sides[name][:2], args.layers, sides[name][2]).items():
                samples[name].setdefault(row, []).append(value)
    rows = list(dict.fromkeys([*samples["this"], *samples["other"]]))
    print(f"{args.layers}-layer cold first call, medians of {args.pairs} pairs (ms; CPU of the calling thread)")
    print(f"{'row':66s} {'other':>8s} {'this':>8s}  this/other")
    raw = [r for r in args.raw.split(",") if r]
    for row in rows:
        a, b = (statistics.median(samples[s].get(row) or [float("nan")]) for s in ("other", "this"))
        print(f"{row[:66]:66s} {a:8.2f} {b:8.2f}  {b / a if a else float('nan'):.2f}")
        if any(r in row for r in raw):
            print(f"    other {samples['other'].get(row)}\n    this  {samples['this'].get(row)}")


if __name__ == "__main__":
    main()
