"""One core's fused multiply-add peak, measured: `python bench/fma_peak.py`.

A loop of 12 independent chains of vector FMAs (`llvm.fma` on 512-bit
vectors: <8 x double>, <16 x float>), JIT-compiled for the host by llvmlite,
runs long enough to hide the call; the best of 51 runs gives vector FMAs per
second, times the lanes gives scalar FMAs per second. Twelve chains cover
the FMA latency (4 cycles) times the FMA pipes on any current x86 core, so
the loop is bound by FMA throughput only. On Zen 4 (two 256-bit FMA pipes;
a 512-bit FMA occupies both) this gives 8 f64 / 16 f32 FMAs per cycle times
the clock; on Intel cores with two 512-bit FMA units, 16 / 32.

The peak of the whole process is this times the CPUs it may use.
"""

from __future__ import annotations

import ctypes
import time

import llvmlite.binding as llvm

CHAINS = 12
ITERATIONS = 200_000  # ~0.7 ms: short enough to fit between other processes on a busy machine


def _kernel_ir(element: str, lanes: int, target) -> str:
    v = f"<{lanes} x {element}>"
    suffix = f"v{lanes}{'f64' if element == 'double' else 'f32'}"
    phis = "\n".join(f"  %a{i} = phi {v} [ zeroinitializer, %entry ], [ %n{i}, %loop ]" for i in range(CHAINS))
    fmas = "\n".join(f"  %n{i} = call {v} @llvm.fma.{suffix}({v} %a{i}, {v} %x, {v} %y)" for i in range(CHAINS))
    sums = "\n".join(f"  %s{i} = fadd {v} %s{i - 1}, %n{i}" for i in range(1, CHAINS))
    return f"""
declare {v} @llvm.fma.{suffix}({v}, {v}, {v})
define {element} @fma_loop(i64 %n, {element} %seed) #0 {{
entry:
  %x0 = insertelement {v} poison, {element} %seed, i32 0
  %x = shufflevector {v} %x0, {v} poison, <{lanes} x i32> zeroinitializer
  %y = fadd {v} %x, %x
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
{phis}
{fmas}
  %i1 = add i64 %i, 1
  %more = icmp slt i64 %i1, %n
  br i1 %more, label %loop, label %exit
exit:
  %s0 = fadd {v} zeroinitializer, %n0
{sums}
  %r = extractelement {v} %s{CHAINS - 1}, i32 0
  ret {element} %r
}}
attributes #0 = {{ "target-cpu"="{target.cpu_name}" "target-features"="{target.features}" "prefer-vector-width"="512" }}
"""


def fma_peak_per_core(repeats: int = 51) -> dict[str, float]:
    """{"f64": FMAs/s, "f32": FMAs/s} of one core (see the module docstring)."""
    from raster_mlir.backend.target import host_target

    target = host_target()
    peaks = {}
    for dtype, element, lanes, ctype in (("f64", "double", 8, ctypes.c_double), ("f32", "float", 16, ctypes.c_float)):
        module = llvm.parse_assembly(_kernel_ir(element, lanes, target))
        module.triple = target.triple
        engine = llvm.create_mcjit_compiler(module, target.create_target_machine(3))  # owns the target machine
        engine.finalize_object()
        fn = ctypes.CFUNCTYPE(ctype, ctypes.c_int64, ctype)(engine.get_function_address("fma_loop"))
        fn(1000, 1e-9)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(ITERATIONS, 1e-9)
            best = min(best, time.perf_counter() - t0)
        peaks[dtype] = ITERATIONS * CHAINS * lanes / best
        del fn, engine
    return peaks


if __name__ == "__main__":
    for dtype, rate in fma_peak_per_core().items():
        print(f"{dtype}: {rate / 1e9:.2f} G FMA/s per core")
