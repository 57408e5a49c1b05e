"""A/B of one vmath kernel against its version at a git revision, in one process, interleaved.

    python bench/bench_vmath_ab.py --rev 8b969c0 [--op math.tanh] [--module hyperbolic] [--emitter emit_tanh] [--quick]
    python bench/bench_vmath_ab.py --rev cb5e9b6 --op math.log --module avx512 --emitter emit_log_avx512 --sizes 1000,1048576

The old emitter is read from `git show REV:raster_mlir/backend/vmath/MODULE.py`
and loaded as a sibling of the current modules (its relative imports resolve
to today's builder, exp.py..., except coefficients.py, also read at REV), so
the two loops differ only by that module and its coefficients. With
`--module avx512` the AVX-512 f64 kernel is swapped (f64 rows only; the host
needs AVX-512). For f32 and f64 at 1024 and 2^20 elements: time per call of the loop
`y[i] = op(x[i])` with the old and the new kernel and numpy's ufunc (medians
of interleaved repetitions, one thread), ratios, vector instructions per 8
elements of each loop (bench_vector_library.py's count), and how many
results differ bitwise between old and new. Default revision: the last one
with the -e/(e+2) tanh kernel.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_vector_library import median_times, vector_instructions_per_8  # noqa: E402

from raster_mlir.backend import compile_module, vmath  # noqa: E402
from raster_mlir.backend.vmath.accuracy import loop_program  # noqa: E402

NUMPY = {"math.tanh": np.tanh, "math.exp": np.exp, "math.log": np.log, "math.expm1": np.expm1, "math.log1p": np.log1p}


def old_emitter(rev: str, module: str, emitter: str):
    """`emitter` from vmath/`module`.py as of git revision `rev`."""
    _load_at(rev, "coefficients")  # the old kernel with its own coefficients
    return getattr(_load_at(rev, module), emitter)


def _load_at(rev: str, module: str):
    """vmath/`module`.py as of `rev`, as the module `_ab_<module>` beside today's."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = f"raster_mlir/backend/vmath/{module}.py"
    source = subprocess.run(["git", "-C", root, "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
    source = source.replace("from .coefficients import", "from ._ab_coefficients import")
    name = f"raster_mlir.backend.vmath._ab_{module}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "raster_mlir.backend.vmath"
    sys.modules[name] = mod
    exec(compile(source, f"{rev}:{path}", "exec"), mod.__dict__)
    return mod


def compile_with(op: str, emit, T: str, n: int, avx512: bool = False):
    """The loop `y[i] = op(x[i])` compiled with `emit` as op's generic (or, `avx512`, AVX-512 f64) kernel."""
    table, key = (vmath.AVX512_F64, op) if avx512 else (vmath.FUNCTIONS, op)
    current = table[key]
    table[key] = emit if avx512 else (emit, current[1])
    try:
        return compile_module(loop_program(op, T, n), "f", use_cache=False)
    finally:
        table[key] = current


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="8b969c0")
    parser.add_argument("--op", default="math.tanh")
    parser.add_argument("--module", default="hyperbolic")
    parser.add_argument("--emitter", default="emit_tanh")
    parser.add_argument("--sizes", default="1024,1048576")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    avx512 = args.module == "avx512"
    old = old_emitter(args.rev, args.module, args.emitter)
    new = vmath.AVX512_F64[args.op] if avx512 else vmath.FUNCTIONS[args.op][0]
    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"{args.op}: {args.rev} (old) against the working tree (new); times in us, one thread")
    print("| T | n | old us | new us | numpy us | old / new | numpy / new | instr. per 8 old | new | bitwise diffs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for T, dt in (("f64", np.float64),) if avx512 else (("f32", np.float32), ("f64", np.float64)):
        for n in sizes[:1] if args.quick else sizes:
            rng = np.random.default_rng(0)
            x = (rng.uniform(0.01, 10, n) if args.op in ("math.log", "math.log1p") else rng.uniform(-5, 5, n)).astype(dt)
            y_old, y_new = np.empty_like(x), np.empty_like(x)
            f_old, f_new = (compile_with(args.op, emit, T, n, avx512) for emit in (old, new))
            f_old(x, y_old)
            f_new(x, y_new)
            bits = np.int32 if T == "f32" else np.int64
            diffs = int(np.count_nonzero(y_old.view(bits) != y_new.view(bits)))
            y = np.empty_like(x)
            reps = 3 if args.quick else (2000 if n <= 4096 else 60)
            t = median_times({"old": lambda: f_old(x, y), "new": lambda: f_new(x, y), "numpy": lambda: NUMPY[args.op](x, out=y)}, reps)
            o, w, p = (t[k] * 1e6 for k in ("old", "new", "numpy"))
            print(
                f"| {T} | {n} | {o:.2f} | {w:.2f} | {p:.2f} | {o / w:.2f} | {p / w:.2f} "
                f"| {vector_instructions_per_8(f_old):.1f} | {vector_instructions_per_8(f_new):.1f} | {diffs} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
