"""What one parallel loop costs to start: raster_mlir's pool against OpenMP runtimes, same process.

    python bench/bench_dispatch.py [--quick]

A job is `units` units of about `work` ns of integer work each (a dependent
multiply-add chain, so it neither vectorises nor touches memory), run:
serially; on raster_mlir's pool (backend/pool.py) through
`raster_mlir_parallel_for`; and through `GOMP_parallel` of each OpenMP
runtime found (the system's libgomp, the `intel-openmp` wheel's libiomp5,
which exports the same entry point), one unit per thread. All jobs are
launched from JIT-compiled loops (no Python between jobs) and interleaved
in rounds. Reported per job: the median and the best round, and the
overhead over the ideal (serial time / threads).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import glob
import os
import sys
import time

import llvmlite.binding as llvm
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from raster_mlir.backend import pool  # noqa: E402
from raster_mlir.backend.target import host_target  # noqa: E402


def openmp_runtimes() -> dict[str, str]:
    found = {}
    gomp = ctypes.util.find_library("gomp")
    if gomp:
        found["libgomp (system)"] = gomp
    for path in glob.glob(os.path.join(sys.prefix, "lib", "libiomp5.so*")):
        found["libiomp5 (intel-openmp wheel)"] = path
        break
    return found


def kernels_ir(work_iterations: int, omp: bool) -> str:
    omp_part = """
declare void @GOMP_parallel(ptr, ptr, i32, i32)
define void @omp_body(ptr %ctx) {
  call void @work(ptr %ctx)
  ret void
}
define void @omp_jobs(ptr %ctx, i64 %jobs, i32 %threads) {
entry: br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  call void @GOMP_parallel(ptr @omp_body, ptr %ctx, i32 %threads, i32 0)
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %jobs
  br i1 %c, label %loop, label %exit
exit: ret void
}""" if omp else ""
    return f"""
define internal void @work(ptr %ctx) noinline {{
entry: br label %l
l:
  %i = phi i64 [0, %entry], [%i1, %l]
  %x = phi i64 [1, %entry], [%x1, %l]
  %sq = mul i64 %x, %x
  %x1 = add i64 %sq, %i
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, {work_iterations}
  br i1 %c, label %l, label %e
e:
  %o = atomicrmw add ptr %ctx, i64 %x1 monotonic
  ret void
}}
define void @task(ptr %ctx, i64 %b, i64 %e) {{
entry:
  %none = icmp sge i64 %b, %e
  br i1 %none, label %x, label %l
l:
  %i = phi i64 [%b, %entry], [%i1, %l]
  call void @work(ptr %ctx)
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %e
  br i1 %c, label %l, label %x
x: ret void
}}
define void @serial_jobs(ptr %ctx, i64 %jobs, i64 %units) {{
entry: br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  call void @task(ptr %ctx, i64 0, i64 %units)
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %jobs
  br i1 %c, label %loop, label %exit
exit: ret void
}}
define void @pool_jobs(ptr %dispatch, ptr %ctx, i64 %jobs, i64 %units) {{
entry: br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  call void %dispatch(ptr @task, ptr %ctx, i64 %units)
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %jobs
  br i1 %c, label %loop, label %exit
exit: ret void
}}
{omp_part}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work-ns", type=float, default=2000.0, help="work per unit (default 2 us)")
    args = parser.parse_args(argv)
    threads = len(os.sched_getaffinity(0))
    runtimes = openmp_runtimes()
    target = host_target()
    for path in runtimes.values():
        llvm.load_library_permanently(path)  # first one found provides GOMP_parallel
    iterations = max(1, int(args.work_ns))  # ~1 ns per step of the chain (a multiply and an add: 4 cycles)
    module = llvm.parse_assembly(kernels_ir(iterations, bool(runtimes)))
    module.triple = target.triple
    engine = llvm.create_mcjit_compiler(module, target.create_target_machine(2))
    engine.finalize_object()
    i64, vp = ctypes.c_int64, ctypes.c_void_p
    serial = ctypes.CFUNCTYPE(None, vp, i64, i64)(engine.get_function_address("serial_jobs"))
    pooled = ctypes.CFUNCTYPE(None, vp, vp, i64, i64)(engine.get_function_address("pool_jobs"))
    omp = ctypes.CFUNCTYPE(None, vp, i64, ctypes.c_int32)(engine.get_function_address("omp_jobs")) if runtimes else None
    p = pool.pool()
    ctx = np.zeros(8, np.int64)
    c = ctx.ctypes.data
    jobs = 200 if args.quick else 2000
    rounds = 5 if args.quick else 15
    variants = {f"serial, {threads} units": lambda: serial(c, jobs, threads)}
    for n in range(1, threads + 1):
        variants[f"raster_mlir pool, {n} thread(s), {threads} units"] = lambda n=n: (pool.set_num_threads(n), pooled(p.dispatch, c, jobs, threads))
    if omp is not None:
        label = next(iter(runtimes))
        variants[f"GOMP_parallel ({label}), {threads} threads"] = lambda: omp(c, jobs, threads)
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, run in variants.items():
            t0 = time.perf_counter()
            run()
            times[k].append((time.perf_counter() - t0) / jobs * 1e6)
    base = np.median(times[f"serial, {threads} units"])
    print(f"{threads} CPUs; a unit is {base / threads:.2f} us of work (measured); µs per job (median, best round)")
    print(f"{'':55s} {'median':>8s} {'best':>8s}  overhead vs serial/threads")
    for k, v in times.items():
        ideal = base / (threads if "serial" not in k and "1 thread" not in k else 1)
        print(f"{k:55s} {np.median(v):8.2f} {min(v):8.2f}  {np.median(v) - ideal:+8.2f}")
    print("OpenMP runtimes found:", ", ".join(f"{k}: {v}" for k, v in runtimes.items()) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
