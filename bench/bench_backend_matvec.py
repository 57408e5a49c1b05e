"""Benchmark of the native backend on hand-written loop-level IR (a script, not a test).

Measures, in one run on this machine:
1. y = W x + b with W of shape 128x784, f64 and f32: the backend's native
   function (called through its checked fast path, argument validation
   included) against numpy's `W @ x + b`; medians over many repetitions
   after warm-up, timed in alternation, and the median per-pair ratio
   (target: native <= 1.2 x numpy), once with
   W where numpy put it and once with W 64-byte aligned (512-bit loads from
   a 16-byte aligned W straddle two cache lines; both codes feel it);
2. per-call overhead of a trivial 6-argument function (each argument a
   1-element buffer; the body stores one value), through the checked fast
   path and through the Python-validated slow path;
3. compile times: cold (empty cache, LLVM O3 + code generation), warm from
   disk in a fresh process, and warm from the in-process cache.

Run it with OpenBLAS' tuning variables unset, so numpy uses its defaults:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_backend_matvec.py
"""

from __future__ import annotations

import os
import statistics
import string
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf
from xdsl.parser import Parser

MATVEC = """
builtin.module {
  func.func @matvec(%W: memref<${M}x${K}x${T}>, %x: memref<${K}x${T}>, %b: memref<${M}x${T}>, %y: memref<${M}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %k = arith.constant ${K} : index
    scf.for %i = %c0 to %m step %c1 {
      %b_i = memref.load %b[%i] : memref<${M}x${T}>
      %acc = scf.for %j = %c0 to %k step %c1 iter_args(%a = %b_i) -> (${T}) {
        %w = memref.load %W[%i, %j] : memref<${M}x${K}x${T}>
        %xv = memref.load %x[%j] : memref<${K}x${T}>
        %p = arith.mulf %w, %xv : ${T}
        %s = arith.addf %a, %p : ${T}
        scf.yield %s : ${T}
      }
      memref.store %acc, %y[%i] : memref<${M}x${T}>
    }
    func.return
  }
}
"""

TRIVIAL6 = """
builtin.module {
  func.func @six(%a: memref<1xf64>, %b: memref<1xf64>, %c: memref<1xf64>,
                 %d: memref<1xf64>, %e: memref<1xf64>, %out: memref<1xf64>) {
    %c0 = arith.constant 0 : index
    %v = memref.load %a[%c0] : memref<1xf64>
    memref.store %v, %out[%c0] : memref<1xf64>
    func.return
  }
}
"""


def parse(text: str):
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, scf.Scf, arith.Arith, math.Math, memref.MemRef):
        ctx.load_dialect(dialect)
    return Parser(ctx, text).parse_module()


def matvec_module(T: str, M: int = 128, K: int = 784):
    return parse(string.Template(MATVEC).substitute(T=T, M=M, K=K))


def median_seconds(fn, *, number: int, repeat: int) -> float:
    """Median over `repeat` samples of the mean time of `number` calls."""
    for _ in range(number):  # warm-up: caches, branch predictors, lazy init
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


def paired_medians(fa, fb, *, number: int, repeat: int) -> tuple[float, float, float]:
    """Median times of `fa` and `fb` and the median of their per-pair ratio.

    The two are timed in alternation, sample by sample, so that load from
    other processes on this 2-core machine hits both alike; the median of
    the per-pair ratios is the robust comparison.
    """
    for _ in range(number):
        fa()
        fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - t0) / number)
    ratios = [a / b for a, b in zip(ta, tb)]
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def compare_with_numpy(f, W, x, b, y) -> tuple[float, float, float]:
    return paired_medians(lambda: f(W, x, b, y), lambda: W @ x + b, number=200, repeat=201)


def bench_matvec(compile_module, aligned_empty) -> None:
    rng = np.random.default_rng(0)
    for T, dtype in (("f64", np.float64), ("f32", np.float32)):
        f = compile_module(matvec_module(T), "matvec")
        # numpy's own placement (large arrays are 16 bytes past a cache
        # line on glibc) and a 64-byte aligned copy of the same matrix.
        W_default = rng.standard_normal((128, 784)).astype(dtype)
        W_aligned = aligned_empty((128, 784), dtype)
        W_aligned[...] = W_default
        x = rng.standard_normal(784).astype(dtype)
        b = rng.standard_normal(128).astype(dtype)
        y = np.empty(128, dtype=dtype)
        for label, W in (("numpy-allocated W", W_default), ("64-byte aligned W", W_aligned)):
            f(W, x, b, y)
            err = np.abs(y - (W @ x + b)).max()
            native, numpy_t, ratio = compare_with_numpy(f, W, x, b, y)
            offset = W.__array_interface__["data"][0] % 64
            print(
                f"matvec 128x784 {T}, {label} (address mod 64 = {offset:2d}): native {native * 1e6:6.2f} us   "
                f"numpy W@x+b {numpy_t * 1e6:6.2f} us   median ratio native/numpy {ratio:4.2f}   "
                f"max|diff| {err:.1e}"
            )


def bench_call_overhead(compile_module) -> None:
    f = compile_module(parse(TRIVIAL6), "six")
    args = [np.full(1, float(i)) for i in range(6)]
    fast = median_seconds(lambda: f(*args), number=20000, repeat=31)
    slow = median_seconds(lambda: f._call_checked_in_python(tuple(args)), number=5000, repeat=15)
    empty = median_seconds(lambda: None, number=20000, repeat=31)
    print(
        f"per-call, 6 arguments: checked fast path {fast * 1e9:6.0f} ns   "
        f"Python-validated slow path {slow * 1e9:6.0f} ns   (an empty Python lambda call: {empty * 1e9:.0f} ns)"
    )
    print(f"  fast path active: {f.native_checks}")


WARM_CHILD = textwrap.dedent(
    """
    import sys, time
    t0 = time.perf_counter()
    sys.path.insert(0, {bench_dir!r})
    from bench_backend_matvec import matvec_module
    from raster_mlir.backend import compile_module
    module = matvec_module("f64")
    t1 = time.perf_counter()
    f = compile_module(module, "matvec")
    print(f.cache_source, f.compile_seconds, time.perf_counter() - t1)
    """
)


def bench_compile_times(compile_module) -> None:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RASTER_MLIR_CACHE_DIR"] = cache
        from raster_mlir.backend import clear_memory_cache

        clear_memory_cache()
        module = matvec_module("f64")
        cold = compile_module(module, "matvec")
        memory = compile_module(module, "matvec")
        child = subprocess.run(
            [sys.executable, "-c", WARM_CHILD.format(bench_dir=str(Path(__file__).parent))],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        source, seconds, _ = child.stdout.split()
        print(
            f"compile matvec f64: cold {cold.compile_seconds * 1e3:6.1f} ms (cache: {cold.cache_source})   "
            f"fresh process {float(seconds) * 1e3:6.1f} ms (cache: {source})   "
            f"same process {memory.compile_seconds * 1e3:6.2f} ms (cache: {memory.cache_source})"
        )
        cold_o0 = compile_module(module, "matvec", opt_level=0, use_cache=False)
        print(f"  uncached compile at O0 for comparison: {cold_o0.compile_seconds * 1e3:.1f} ms")


def main() -> None:
    from raster_mlir.backend import aligned_empty, compile_module, host_target

    t = host_target()
    print(f"host: {t.cpu_name}, avx512f={t.has_avx512f}, LLVM {t.llvm_version}, numpy {np.__version__}")
    bench_matvec(compile_module, aligned_empty)
    bench_call_overhead(compile_module)
    bench_compile_times(compile_module)


if __name__ == "__main__":
    main()
