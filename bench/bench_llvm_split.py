"""LLVM's share of a cold compile: one kernel function against segments compiled as several modules on two threads.

    python bench/bench_llvm_split.py [--quick] [--repeats R] [--layers 2,4,8,16]

For the 784 -> 128 x (L-1) -> 10 MLP train step (f64, one sample), the LLVM IR
is emitted twice in this process: as one kernel function (`segment_ops` 0)
and cut into segment functions (the default, backend/segment_emit.py); in
both, the entry points are a module of their own (module_split.py). Each
is then optimised and compiled to object code R times, interleaved (jit.py's
`optimize_and_codegen`, no cache), and the table gives medians of:

- wall: what a cold compile waits for (two threads for the segments when the
  process may use two CPUs: on a loaded machine the second thread may get no
  core, and this column shows it);
- CPU: all threads of the process (the work; splitting adds a little);
- 2-CPU path: the work of the busier of the two threads, from the CPU time of
  each part measured alone and the scheduler's order (heaviest estimate
  first, each thread takes the next part): the wall time on two idle cores,
  which a loaded machine cannot show directly.

Ratios are against the one-function compile of the same step in the same run. A first line
checks whether the process gets two cores: two sha256 jobs (C code without the GIL) and two LLVM
compiles, on two threads against one after the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_llvm_split_"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import llvmlite.binding as llvm  # noqa: E402
from raster_mlir.backend import jit, llvm_emit  # noqa: E402
from raster_mlir.backend.module_split import split_module  # noqa: E402
from raster_mlir.backend.target import host_target  # noqa: E402
from raster_mlir.compile_cache import clear_cache  # noqa: E402
from bench.workloads.raster_mlir_impl import sgd_train_step  # noqa: E402


def step_llvm_ir(layers: int, segment_ops: int) -> str:
    """The LLVM IR of the train step with `layers` dense layers, kernels cut at `segment_ops`."""
    clear_cache(memory=True, disk=True)
    default = llvm_emit.SEGMENT_OPS
    llvm_emit.SEGMENT_OPS = segment_ops
    try:
        step, params, x, y = sgd_train_step(layers)
        return step.lower(*params, x, y).native.function.llvm_ir
    finally:
        llvm_emit.SEGMENT_OPS = default


def two_cpu_path(llvm_ir: str, target) -> float:
    """CPU seconds of the busier thread when two threads share the parts (see the module docstring)."""
    parts = split_module(llvm_ir)
    if parts is None:
        return float("nan")
    cost = []
    for part in parts:
        c0 = time.thread_time()
        module = llvm.parse_assembly(part.text, context=llvm.create_context())
        jit._optimize_and_emit(module, part.text, target, 3, entry_points_only=part.entry_points_only)
        cost.append(time.thread_time() - c0)
    threads = [0.0, 0.0]
    for k in sorted(range(len(parts)), key=lambda k: (parts[k].entry_points_only, -parts[k].weight, k)):
        threads[threads.index(min(threads))] += cost[k]
    return max(threads)


def two_thread_ratios(llvm_ir: str, target) -> tuple[float, float]:
    """Wall time of two jobs on two threads over the same jobs one after the other: sha256 of 64 MB
    (C code without the GIL: 0.5 when two cores are free, 1.0 when they are not) and compiling
    `llvm_ir` (the same for LLVM: its two threads do not wait for each other)."""
    import hashlib
    import threading

    data = b"x" * (64 << 20)

    def digest():
        hashlib.sha256(data).digest()

    def compile_once():
        module = llvm.parse_assembly(llvm_ir, context=llvm.create_context())
        jit._optimize_and_emit(module, llvm_ir, target, 3)

    ratios = []
    for job in (digest, compile_once):
        job()
        serial, parallel = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            job()
            job()
            serial.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            other = threading.Thread(target=job)
            other.start()
            job()
            other.join()
            parallel.append(time.perf_counter() - t0)
        ratios.append(statistics.median(parallel) / statistics.median(serial))
    return ratios[0], ratios[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 and 4 layers, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--layers", default=None, help="comma-separated layer counts (default 2,4,8,16)")
    args = ap.parse_args()
    layers = [int(v) for v in (args.layers or ("2,4" if args.quick else "2,4,8,16")).split(",")]
    repeats = args.repeats or (3 if args.quick else 5)
    target = host_target()
    print(f"LLVM optimisation + code generation of the train step, medians of {repeats}; "
          f"segment_ops = {llvm_emit.SEGMENT_OPS}; CPUs usable: {jit._usable_cpus()}")
    sha, compile_ratio = two_thread_ratios(step_llvm_ir(2, 0), target)
    print(f"two threads over one (wall): sha256 {sha:.2f}, LLVM {compile_ratio:.2f} "
          "(0.5: two free cores; near 1.0 for sha256: the machine is busy and the wall columns cannot show threads)")
    print()
    print("| layers | one function: wall | CPU | segments: wall | CPU | 2-CPU path | parts |")
    print("|---|---|---|---|---|---|---|")
    for n in layers:
        whole, cut = step_llvm_ir(n, 0), step_llvm_ir(n, llvm_emit.SEGMENT_OPS)
        jit.optimize_and_codegen(whole, target, 3)  # warm LLVM up once
        rows = {"whole": [], "cut": []}
        for _ in range(repeats):
            for name, text in (("whole", whole), ("cut", cut)):
                w0, c0 = time.perf_counter(), time.process_time()
                jit.optimize_and_codegen(text, target, 3)
                rows[name].append((time.perf_counter() - w0, time.process_time() - c0))
        path = statistics.median(two_cpu_path(cut, target) for _ in range(max(1, repeats // 2)))
        med = {k: [statistics.median(r[i] for r in v) for i in range(2)] for k, v in rows.items()}
        (ww, wc), (cw, cc) = med["whole"], med["cut"]
        parts = split_module(cut)
        print(
            f"| {n} | {1e3 * ww:.0f} ms | {1e3 * wc:.0f} ms | {1e3 * cw:.0f} ms ({cw / ww:.2f}) | "
            f"{1e3 * cc:.0f} ms ({cc / wc:.2f}) | {1e3 * path:.0f} ms ({path / wc:.2f}) | {len(parts) if parts else 1} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
