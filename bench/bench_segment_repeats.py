"""Segment cuts at repeats, heaviest segments emitted first, the cut kernel at O0: LLVM's work and the 2-core path.

    python bench/bench_segment_repeats.py [--quick] [--repeats R] [--workloads mlp2,mlp8,batch8x32,ode100-grad,...]

For each workload (the 784 -> 128 x (L-1) -> 10 f64 SGD train step `mlpL`, the same
with a batch of B samples `batchLxB`, or the
bench's unrolled damped spring `odeN-value` / `odeN-grad`, 64 elements), the
loop-level module that reaches the backend is emitted to LLVM IR in this process
with the parts handed to LLVM during emission (part_handoff.py), R times per
variant, interleaved:

- before: segments cut every `segment_ops` nested ops (the cut before
  segment_repeats.py), emitted in the block's order, the kernel compiled at O3 in a
  part of segments;
- cuts: segments cut at repeats (segment_repeats.py; verified copies of a repeat not
  emitted), the rest as before;
- after: cuts at repeats, segment functions emitted heaviest first, verified copies
  of a repeat not emitted, the cut kernel `optnone` with the entry points (what a
  compile does now).

Every part of each variant is then optimised and compiled to object code on this
thread (R times, interleaved, medians of its CPU time). Columns: emission CPU ms
(until the rest is split), LLVM CPU ms (all parts), the 2-core path (the wall time
of emission plus LLVM on two idle cores: bench_compile_pipeline.two_core_path, the
worker thread's policy, from the measured arrival times and part costs), parts.
Ratios are against "before" in the same run. On a loaded machine only the CPU
columns and the model mean something.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_segment_repeats_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import raster_mlir as rm  # noqa: E402
import raster_mlir.backend as backend  # noqa: E402
from bench.bench_compile_pipeline import backend_input, emit_during, part_costs, two_core_path  # noqa: E402
from bench.workloads.raster_mlir_impl import sgd_train_step  # noqa: E402
from bench.workloads.spring import unrolled_spring  # noqa: E402
from raster_mlir.backend import segment_emit  # noqa: E402
from raster_mlir.backend.llvm_emit import emit_module  # noqa: E402
from raster_mlir.backend.target import host_target  # noqa: E402
from raster_mlir.compile_cache import clear_cache  # noqa: E402
from raster_mlir.gc_pause import paused_gc  # noqa: E402

REPEATS_PLAN, HEAVIEST_FIRST = segment_emit.plan_with_repeats, segment_emit.emission_order


def every_segment_ops(ops, weights, segment_ops):
    """The cut before segment_repeats.py: a group every `segment_ops` nested ops, a small tail joins the last."""
    groups, current, weight = [], [], 0
    for op, w in zip(ops, weights):
        current.append(op)
        weight += w
        if weight >= segment_ops:
            groups.append(current)
            current, weight = [], 0
    if current:
        if groups and weight < segment_ops // 2:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups, [None] * len(groups)


def in_block_order(weights):
    return list(range(len(weights)))


VARIANTS = {
    "before": (every_segment_ops, in_block_order, False),
    "cuts": (REPEATS_PLAN, in_block_order, False),
    "after": (REPEATS_PLAN, HEAVIEST_FIRST, True),
}


def use(variant: str) -> None:
    plan, order, kernel_at_o0 = VARIANTS[variant]
    segment_emit.plan_with_repeats, segment_emit.emission_order = plan, order
    segment_emit.KERNEL_WITH_ENTRY_POINTS = kernel_at_o0


def emit_input(first_call) -> tuple:
    """(module, entries, options) that `first_call()` (a compile from an empty cache) hands to emit_module."""
    seen = []

    def recording(module, entries, options=None, verified=False, *args, **kwargs):
        seen.append((module, entries, options))
        return emit_module(module, entries, options, verified, *args, **kwargs)

    clear_cache(memory=True, disk=True)
    backend.emit_module, saved = recording, backend.emit_module
    try:
        first_call()
    finally:
        backend.emit_module = saved
    return seen[0]


def ode_input(steps: int, mode: str):
    """(module, entries, options) that the first call of the unrolled damped spring hands to emit_module."""
    spring = unrolled_spring(steps)
    f = rm.jit(spring) if mode == "value" else rm.jit(rm.grad(spring))
    return emit_input(lambda: f(np.linspace(0.0, 1.0, 64), np.zeros(64)))


def batch_input(layers: int, batch: int):
    """(module, entries, options) that the first call of the `batch`-sample train step hands to emit_module."""
    step, params, x, y = sgd_train_step(layers, batch)
    return emit_input(lambda: step(*params, x, y))


def workload_input(name: str):
    if name.startswith("mlp"):
        return backend_input(int(name[3:]))
    if name.startswith("batch"):  # batchLxB: L layers, B samples
        layers, batch = name[5:].split("x")
        return batch_input(int(layers), int(batch))
    steps, mode = name[3:].split("-")
    return ode_input(int(steps), mode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="mlp2, mlp8 and ode100-grad, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--workloads", default=None)
    args = ap.parse_args()
    default = "mlp2,mlp8,ode100-grad" if args.quick else "mlp2,mlp4,mlp8,mlp16,batch8x32,ode100-value,ode100-grad"
    workloads = (args.workloads or default).split(",")
    repeats = args.repeats or (3 if args.quick else 5)
    target = host_target()
    print(f"emission + LLVM of each workload's module, medians of {repeats}; CPU ms of one thread; "
          "2-core path: model of two idle cores (module docstring); ratios against 'before'")  # fmt: skip
    print()
    print("| workload | " + " | ".join(f"{v}: emission / LLVM / 2-core path / parts" for v in VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    try:
        for name in workloads:
            module, entries, options = workload_input(name)
            runs = {v: [] for v in VARIANTS}
            for _ in range(repeats):
                for v in VARIANTS:
                    use(v)
                    with paused_gc():  # as during a compile
                        runs[v].append(emit_during(module, entries, options))
            costs = {v: [[] for _ in runs[v][0][1]] for v in VARIANTS}
            for _ in range(repeats):  # every variant's parts, interleaved
                for v in VARIANTS:
                    for k, c in enumerate(part_costs([p for _, p in runs[v][0][1]], target, 1)):
                        costs[v][k] += c
            cells, base = [], None
            for v in VARIANTS:
                end = statistics.median(r[0] for r in runs[v])
                arrivals = [(statistics.median(r[1][k][0] for r in runs[v]), p) for k, (_, p) in enumerate(runs[v][0][1])]
                cost = [statistics.median(c) for c in costs[v]]
                row = (end, sum(cost), two_core_path(end, arrivals, cost))
                base = base or row
                cells.append(" / ".join(f"{1e3 * x:.0f} ms ({x / b:.2f})" for x, b in zip(row, base)) + f" / {len(cost)}")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    finally:
        use("after")


if __name__ == "__main__":
    main()
