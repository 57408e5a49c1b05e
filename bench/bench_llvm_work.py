"""LLVM's work per program against run time: the backend's LLVM-side choices A/B, in one process.

    python bench/bench_llvm_work.py [--quick] [--rounds R] [--compiles C] [--only TEXT]
    python bench/bench_llvm_work.py --parts 2,4,8 [--compiles C]

For each program (train steps, matrix products, row-wise softmax and logsumexp, small 3x3
programs, a stencil, the damped spring, a tanh RNN), the function is compiled twice in this
process with the compile cache off: "new" with today's backend, "old" with the choices
listed in `VARIANTS` reverted (each variant patches one module attribute for the duration
of its compiles). Columns:

- LLVM CPU: CPU seconds of all the process's threads spent in `jit.optimize_and_codegen`
  (LLVM's optimisation and code generation of every part of the module, both threads),
  median of the compiles;
- run: time per call, median of interleaved rounds (old and new alternate; each round makes
  as many calls as fit in a few ms), in us, and the ratio of the fastest rounds (which other
  processes on a shared machine inflate less than the median);
- ratios new / old (< 1: new is cheaper or faster); results of old and new are compared.

A shared machine inflates both columns; the ratios, measured side by side, are what counts.

`--parts L,...`: for the 784 -> 128 x (L-1) -> 10 train step, the LLVM IR emitted old and new,
split into the module's parts (module_split.py), each part compiled C times interleaved
(`jit._optimize_and_emit`, this thread's CPU time): LLVM CPU of all parts, of the heaviest, and
the 2-CPU path (two threads taking the parts heaviest estimate first: the wall time on two idle
cores), old and new.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ["RASTER_MLIR_CACHE"] = "0"
os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_llvm_work_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir.backend import cache, llvm_emit  # noqa: E402
from bench.workloads.raster_mlir_impl import sgd_train_step  # noqa: E402

# The LLVM-side choices under test: (module, attribute, the old value). "old" runs with all of them.
VARIANTS = [
    (llvm_emit, "rolls_over_a_long_reduction", lambda loop, ops=None: False),  # loops around dot products unrolled as LLVM likes
]


@contextmanager
def old_backend():
    saved = [getattr(mod, name) for mod, name, _ in VARIANTS]
    for mod, name, value in VARIANTS:
        setattr(mod, name, value)
    try:
        yield
    finally:
        for (mod, name, _), value in zip(VARIANTS, saved):
            setattr(mod, name, value)


class LLVMClock:
    """Process CPU seconds spent inside jit.optimize_and_codegen (both compile threads)."""

    def __init__(self):
        self.seconds = 0.0
        self._inner = cache.optimize_and_codegen  # as cache.py calls it

    def __enter__(self):
        def timed(*args, **kwargs):
            c0 = time.process_time()
            try:
                return self._inner(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - c0

        cache.optimize_and_codegen = timed
        return self

    def __exit__(self, *exc):
        cache.optimize_and_codegen = self._inner


def _train_step(layers: int, batch: int | None):
    def build():
        step, params, x, y = sgd_train_step(layers, batch, lr=1e-9)  # each variant updates its own copy
        step(*params, x, y)  # compiles
        return lambda: step(*params, x, y)

    return build


def _jit(make, *args):
    """`make()`: a fresh function to jit (rm.grad objects keep their own compiles)."""

    def build():
        f = rm.jit(make())
        f(*args)
        return lambda: f(*args)

    return build


def programs(quick: bool):
    rng = np.random.default_rng(0)
    a64, b64 = rng.random((64, 64)), rng.random((64, 64))
    a3, b3 = rng.random((3, 3)), rng.random((3, 3))
    rows = rng.random((64, 10))
    wide = rng.random((16, 1000))
    u = rng.random(10_000)
    w_rnn, xs = rng.standard_normal((16, 16)) * 0.3, rng.standard_normal((50, 16))

    def rnn(w, xs):
        h, _ = rm.scan(lambda h, x: (rm.tanh(rm.matmul(w, h) + x), 0.0), np.zeros(16), xs)
        return rm.sum(h * h)

    out = [
        ("train step, 2 layers", _train_step(2, None)),
        ("train step, 4 layers", _train_step(4, None)),
        ("train step, 2 layers, batch 64", _train_step(2, 64)),
        ("matmul 64x64", _jit(lambda: lambda a, b: rm.matmul(a, b), a64, b64)),
        ("tanh(A @ B) 3x3, grad", _jit(lambda: rm.grad(lambda a, b: rm.sum(rm.tanh(rm.matmul(a, b)))), a3, b3)),
        ("softmax rows 64x10", _jit(lambda: rm.nn.softmax, rows)),
        ("logsumexp rows 16x1000", _jit(lambda: lambda r: rm.logsumexp(r, axis=1), wide)),
        ("stencil 10^4", _jit(lambda: lambda u: u[1:-1] + 0.1 * (u[2:] - 2 * u[1:-1] + u[:-2]), u)),
        ("tanh RNN 50x16, grad", _jit(lambda: rm.grad(rnn), w_rnn, xs)),
    ]
    if not quick:
        out.insert(2, ("train step, 8 layers", _train_step(8, None)))
        from tests.helpers import damped_spring

        k, x0, v0 = rng.random(64) + 1.0, rng.standard_normal(64), rng.standard_normal(64)
        out.append(("damped spring N=100, grad", _jit(lambda: rm.grad(damped_spring(100)), k, x0, v0)))
    return out


def part_costs(layers: int, compiles: int) -> None:
    import llvmlite.binding as llvm

    from bench.bench_llvm_split import step_llvm_ir
    from raster_mlir.backend import jit
    from raster_mlir.backend.module_split import split_module
    from raster_mlir.backend.target import host_target

    with old_backend():
        old = split_module(step_llvm_ir(layers, llvm_emit.SEGMENT_OPS))
    new = split_module(step_llvm_ir(layers, llvm_emit.SEGMENT_OPS))
    costs = {"old": [[] for _ in old], "new": [[] for _ in new]}
    target = host_target()
    for _ in range(compiles):
        for which, parts in (("old", old), ("new", new)):
            for k, part in enumerate(parts):
                c0 = time.thread_time()
                module = llvm.parse_assembly(part.text, context=llvm.create_context())
                jit._optimize_and_emit(module, part.text, target, 3, entry_points_only=part.entry_points_only)
                costs[which][k].append(time.thread_time() - c0)
    row = [f"| {layers} layers"]
    for which, parts in (("old", old), ("new", new)):
        each = [1000 * statistics.median(c) for c in costs[which]]
        threads = [0.0, 0.0]
        for k in sorted(range(len(parts)), key=lambda k: (parts[k].entry_points_only, -parts[k].weight, k)):
            threads[threads.index(min(threads))] += each[k]
        row.append(f"{sum(each):.1f} / {max(each):.1f} / {max(threads):.1f}")
    print(" | ".join(row) + " |", flush=True)


def _calls_per_round(call, budget=0.003) -> int:
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < budget:
        call()
        n += 1
    return max(1, n)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--compiles", type=int, default=None)
    parser.add_argument("--only", default="", help="run the programs whose name contains this text")
    parser.add_argument("--parts", default="", help="train steps of these layer counts, part by part")
    args = parser.parse_args(argv)
    if args.parts:
        print("| train step | old: LLVM CPU ms / heaviest part / 2-CPU path | new |")
        print("| --- | --- | --- |")
        for layers in args.parts.split(","):
            part_costs(int(layers), args.compiles or 5)
        return
    rounds = args.rounds or (15 if args.quick else 41)
    compiles = args.compiles or (1 if args.quick else 3)
    _jit(lambda: lambda a: a * 2.0 + 1.0, np.ones(1000))()  # per-process runtimes and LLVM's first use, unmeasured
    print("| program | LLVM CPU old ms | new ms | new/old | run old us | new us | new/old | fastest new/old | same result |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, build in programs(args.quick):
        if args.only not in name:
            continue
        cost = {"old": [], "new": []}
        calls = {}
        for _ in range(compiles):
            for which in ("old", "new"):
                with LLVMClock() as clock:
                    if which == "old":
                        with old_backend():
                            calls[which] = build()
                    else:
                        calls[which] = build()
                cost[which].append(clock.seconds)
        same = _same(calls["old"](), calls["new"]())
        n = _calls_per_round(calls["new"])
        times = {"old": [], "new": []}
        for _ in range(rounds):
            for which in ("old", "new"):
                t0 = time.perf_counter()
                for _ in range(n):
                    calls[which]()
                times[which].append((time.perf_counter() - t0) / n)
        c_old, c_new = (1000 * statistics.median(cost[w]) for w in ("old", "new"))
        r_old, r_new = (1e6 * statistics.median(times[w]) for w in ("old", "new"))
        fastest = min(times["new"]) / min(times["old"])
        print(
            f"| {name} | {c_old:.1f} | {c_new:.1f} | {c_new / c_old:.2f} | {r_old:.2f} | {r_new:.2f} | {r_new / r_old:.2f} "
            f"| {fastest:.2f} | {same} |",
            flush=True,
        )


def _same(a, b) -> str:
    flat_a = [np.asarray(v) for v in (a if isinstance(a, (tuple, list)) else [a])]
    flat_b = [np.asarray(v) for v in (b if isinstance(b, (tuple, list)) else [b])]
    if all(np.array_equal(x, y) for x, y in zip(flat_a, flat_b)):
        return "bitwise"
    ok = all(np.allclose(x, y, rtol=1e-12, atol=1e-12) for x, y in zip(flat_a, flat_b))
    return "close" if ok else "DIFFERENT"


if __name__ == "__main__":
    main()
