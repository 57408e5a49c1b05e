"""LLVM IR emission and LLVM's work on two cores: parts handed to LLVM during emission, against after it.

    python bench/bench_compile_pipeline.py [--quick] [--repeats R] [--layers 2,4,8,16]

For the 784 -> 128 x (L-1) -> 10 MLP train step (f64, one sample), the loop-level
module that reaches the backend is emitted to LLVM IR in this process twice per
repeat, interleaved:

- after: the whole module emitted, printed, then split (module_split.py), every part
  compiled once emission is over (how a compile worked before part_handoff.py);
- during: groups of kernel segments handed off as soon as they are emitted
  (part_handoff.py), the rest split when emission ends (what a compile does now).

The "during, by size" column is the same parts and CPU times ordered by text size,
the estimate of LLVM's work used before module_split.llvm_cost (its ratio: llvm_cost's
path over it).

Every part of both is then optimised and compiled to object code on this thread
(R times, medians of its CPU time). The table gives CPU times (this thread) and the
"2-core path": the wall time of emission plus LLVM on two idle cores, from the
measured CPU times and the policy of llvm_worker.py (the worker takes the heaviest
part that has arrived whenever it is free; the calling thread joins when emission
and the split are done, taking the heaviest left). A loaded machine cannot show it
directly (the second core is busy); the model leaves out the GIL hand-overs of the
worker's short Python steps between LLVM calls (about a tenth of a part's time when
the calling thread runs Python, measured on a loaded machine). Ratios are against
"after" in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_compile_pipeline_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import raster_mlir.backend as backend  # noqa: E402
from raster_mlir.backend import jit  # noqa: E402
from raster_mlir.backend.llvm_emit import emit_module  # noqa: E402
from raster_mlir.backend.module_split import ModulePart, split_module, whole_module_part  # noqa: E402
from raster_mlir.backend.part_handoff import SegmentHandOff  # noqa: E402
from raster_mlir.backend.target import host_target  # noqa: E402
from raster_mlir.compile_cache import clear_cache  # noqa: E402
from raster_mlir.gc_pause import paused_gc  # noqa: E402
from bench.workloads.raster_mlir_impl import sgd_train_step  # noqa: E402


def backend_input(layers: int):
    """(module, entries, options) that the train step's compile hands to emit_module (verified)."""
    seen = []

    def recording(module, entries, options=None, verified=False, *args, **kwargs):
        assert verified  # as the compile just verified it, emission does not verify again (below)
        seen.append((module, entries, options))
        return emit_module(module, entries, options, verified, *args, **kwargs)

    clear_cache(memory=True, disk=True)
    backend.emit_module, saved = recording, backend.emit_module
    try:
        step, params, x, y = sgd_train_step(layers)
        step(*params, x, y)
    finally:
        backend.emit_module = saved
    return seen[0]


class _Arrivals:
    """A PartQueue stand-in that records each part and the emitting thread's CPU time at its arrival."""

    def __init__(self, start: float):
        self.start = start
        self.parts: list[tuple[float, ModulePart]] = []

    def submit(self, part: ModulePart) -> None:
        self.parts.append((time.thread_time() - self.start, part))


def emit_after(module, entries, options) -> tuple[float, list[tuple[float, ModulePart]]]:
    """Emission then split, as before: (CPU seconds, parts all arriving at the end)."""
    c0 = time.thread_time()
    text = emit_module(module, entries, options, verified=True).llvm_ir
    parts = split_module(text) or [ModulePart(text, len(text))]
    end = time.thread_time() - c0
    return end, [(end, p) for p in parts]


def emit_during(module, entries, options) -> tuple[float, list[tuple[float, ModulePart]]]:
    """Emission with hand-off: (CPU seconds until the rest is split, parts with their arrival times)."""
    c0 = time.thread_time()
    arrivals = _Arrivals(c0)
    handoff = SegmentHandOff(arrivals)
    emit_module(module, entries, options, verified=True, hand_off=handoff)
    text = handoff.rest_text() if handoff.handed_off else None
    if text is None:
        return emit_after(module, entries, options)
    rest = split_module(text) or [whole_module_part(text)]
    end = time.thread_time() - c0
    return end, arrivals.parts + [(end, p) for p in rest]


def two_core_path(emission_end: float, arrivals: list[tuple[float, ModulePart]], cost: list[float]) -> float:
    """When the last part is compiled, two idle cores, llvm_worker.py's policy (module docstring)."""
    order = lambda k: (arrivals[k][1].entry_points_only, -arrivals[k][1].weight, k)  # noqa: E731
    left = set(range(len(arrivals)))
    free = {"worker": 0.0, "main": emission_end}
    done = emission_end
    while left:
        who = "worker" if free["worker"] < free["main"] else "main"  # main first on a tie
        now = free[who]
        ready = [k for k in left if arrivals[k][0] <= now]
        if not ready:  # only the worker can be early: it waits for the next part
            free[who] = min(arrivals[k][0] for k in left)
            continue
        k = min(ready, key=order)
        left.remove(k)
        free[who] = now + cost[k]
        done = max(done, free[who])
    return done


def by_text_size(arrivals: list[tuple[float, ModulePart]]) -> list[tuple[float, ModulePart]]:
    """The parts weighed by their text size (an eighth for entry points only), as before llvm_cost."""
    size = lambda p: len(p.text) // 8 if p.entry_points_only else len(p.text)  # noqa: E731
    return [(t, dataclasses.replace(p, weight=size(p))) for t, p in arrivals]


def part_costs(parts: list[ModulePart], target, repeats: int) -> list[list[float]]:
    runs = [[] for _ in parts]
    for _ in range(repeats):
        for k, part in enumerate(parts):
            c0 = time.thread_time()
            jit._compile_part(part, jit.NO_TIMER, target=target, opt_level=3)
            runs[k].append(time.thread_time() - c0)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 and 8 layers, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--layers", default=None, help="comma-separated layer counts (default 2,4,8,16)")
    args = ap.parse_args()
    layers = [int(v) for v in (args.layers or ("2,8" if args.quick else "2,4,8,16")).split(",")]
    repeats = args.repeats or (3 if args.quick else 5)
    target = host_target()
    print(f"train step 784-128x(L-1)-10, f64: emission + LLVM, medians of {repeats}; CPU ms of one thread; "
          "2-core path: model of two idle cores (module docstring)")  # fmt: skip
    print()
    print("| layers | emission+split: after | during | LLVM CPU: after | during "
          "| 2-core path: after | during | during, by size | parts |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n in layers:
        module, entries, options = backend_input(n)
        emitted = {"after": [], "during": []}
        for _ in range(repeats):
            for name, emit in (("after", emit_after), ("during", emit_during)):
                with paused_gc():  # as during a compile
                    emitted[name].append(emit(module, entries, options))
        row = {}
        costs = {name: [[] for _ in runs[0][1]] for name, runs in emitted.items()}
        for _ in range(repeats):  # both compiles' parts, interleaved
            for name, runs in emitted.items():
                for k, c in enumerate(part_costs([p for _, p in runs[0][1]], target, 1)):
                    costs[name][k] += c
        for name, runs in emitted.items():
            end = statistics.median(r[0] for r in runs)
            # arrival times: medians over the repeats (the same parts arrive in the same order each time)
            arrivals = [(statistics.median(r[1][k][0] for r in runs), p) for k, (_, p) in enumerate(runs[0][1])]
            cost = [statistics.median(c) for c in costs[name]]
            row[name] = (end, sum(cost), two_core_path(end, arrivals, cost), len(arrivals))
            if name == "during":
                by_size = two_core_path(end, by_text_size(arrivals), cost)
        (ea, la, pa, na), (ed, ld, pd, nd) = row["after"], row["during"]
        print(
            f"| {n} | {1e3 * ea:.0f} ms | {1e3 * ed:.0f} ms ({ed / ea:.2f}) | {1e3 * la:.0f} ms | "
            f"{1e3 * ld:.0f} ms ({ld / la:.2f}) | {1e3 * pa:.0f} ms | {1e3 * pd:.0f} ms ({pd / pa:.2f}) "
            f"| {1e3 * by_size:.0f} ms ({pd / by_size:.2f}) | {na} / {nd} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
