"""Inline vector maths (raster_mlir's vmath) against Intel SVML and numpy, in one process.

    pip install intel-cmplr-lib-rt      # optional: provides libsvml.so (~30 MB); without it only vmath/numpy run
    python bench/bench_vector_library.py [--quick] [--svml-dir DIR]

For exp, log and tanh in f64 and f32 over 10^6 elements (10^3 too), times
(medians of interleaved repetitions): the vmath loop as raster_mlir compiles
it; the same loop with the generic kernels (exp.py, log.py; on an AVX-512 host
f64 exp and log run avx512.py's instead, so this column is the A/B of those); a loop calling SVML's vector function (`__svml_exp8` for 8 doubles,
`__svml_expf16` for 16 floats...) directly from emitted LLVM IR, the way
llvmlite would use SVML as a vector library; numpy's ufunc writing into an
existing array (loading libsvml slows numpy's own exp down in this process,
so the numpy column is only meaningful without SVML); and the vector
instructions per 8 elements of the vmath loop, counted in its assembly (the
loops' time follows this count on Zen 4: docs/vector-math.md). Also the maximum ulp error of SVML on the same samples as
the vmath tables (raster_mlir.backend.vmath.accuracy). docs/vector-math.md
quotes the results and the choice made from them.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import re
import sys
import time

import numpy as np

SVML_NAMES = {"exp": "exp", "log": "log", "tanh": "tanh"}
NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh}


def find_svml(directory: str | None) -> str | None:
    candidates = [directory] if directory else []
    candidates += [os.path.join(sys.prefix, "lib"), os.path.join(os.path.dirname(sys.executable), "..", "lib")]
    for d in candidates:
        if d and glob.glob(os.path.join(d, "libsvml.so")):
            return d
    return None


class SvmlLoops:
    """y[i] = svml_f(x[i]) over whole vectors, compiled with llvmlite's MCJIT."""

    def __init__(self, directory: str):
        import llvmlite.binding as llvm

        from raster_mlir.backend.target import ensure_llvm_initialised, host_target

        ensure_llvm_initialised()
        llvm.load_library_permanently(os.path.join(directory, "libintlc.so.5"))
        llvm.load_library_permanently(os.path.join(directory, "libsvml.so"))
        t = host_target()
        lines = [f'target triple = "{t.triple}"']
        for fn in SVML_NAMES.values():
            for T, lanes, suffix in (("double", 8, ""), ("float", 16, "f")):
                v = f"<{lanes} x {T}>"
                name = f"__svml_{fn}{suffix}{lanes}"
                lines.append(f"declare {v} @{name}({v})")
                lines.append(
                    f"""define void @loop_{fn}{suffix}(ptr %x, ptr %y, i64 %n) #0 {{
entry:
  br label %head
head:
  %i = phi i64 [0, %entry], [%next, %body]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %done
body:
  %px = getelementptr {T}, ptr %x, i64 %i
  %v = load {v}, ptr %px, align 8
  %r = call {v} @{name}({v} %v)
  %py = getelementptr {T}, ptr %y, i64 %i
  store {v} %r, ptr %py, align 8
  %next = add i64 %i, {lanes}
  br label %head
done:
  ret void
}}"""
                )
        lines.append(f'attributes #0 = {{ "target-cpu"="{t.cpu_name}" "target-features"="{t.features}" }}')
        module = llvm.parse_assembly("\n".join(lines))
        tm = t.create_target_machine(3)
        self._engine = llvm.create_mcjit_compiler(module, tm)
        self._engine.finalize_object()
        proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        self.loops = {}
        for fn in SVML_NAMES:
            for suffix, dt in (("", np.float64), ("f", np.float32)):
                self.loops[(fn, dt)] = proto(self._engine.get_function_address(f"loop_{fn}{suffix}"))

    def __call__(self, fn: str, x: np.ndarray, y: np.ndarray) -> None:
        lanes = 8 if x.dtype == np.float64 else 16
        assert len(x) % lanes == 0
        self.loops[(fn, x.dtype.type)](x.ctypes.data, y.ctypes.data, len(x))


def vector_instructions_per_8(native) -> float:
    """Vector instructions per 8 elements in the vectorised loop of `native` (its main loop, from the assembly).

    The loop runs from the `%vector.body` label to the branch back to it; a cold
    block it jumps to (log's complete path) is laid out after it and not counted.
    """
    asm = native.asm
    head = re.search(r"^(\.LBB\d+_\d+):\s+# %vector\.body", asm, re.M)
    if head is None:
        return float("nan")
    body = asm[head.end() :].split(f"\t{head.group(1)}\n")[0]
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith(("#", "."))]
    step = next((int(m.group(1)) for ln in lines if (m := re.match(r"(?:addq|subq)\s+\$(\d+), %r", ln))), 0)
    vector = [ln for ln in lines if "mm" in ln or ln.startswith("k")]
    return 8 * len(vector) / step if step else float("nan")


def compile_generic(program):
    """`program` compiled with the generic kernels (exp.py, log.py) where the host would run avx512.py's."""
    from raster_mlir.backend import compile_module, vmath

    host_choice = vmath.uses_avx512_kernel
    vmath.uses_avx512_kernel = lambda target, ty: False
    try:
        return compile_module(program, "f", use_cache=False)
    finally:
        vmath.uses_avx512_kernel = host_choice


def median_times(callables: dict, repeats: int) -> dict:
    times = {k: [] for k in callables}
    for _ in range(repeats):
        for k, f in callables.items():  # interleaved: the same machine state for every contender
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> None:
    from raster_mlir.backend import compile_module
    from raster_mlir.backend.vmath.accuracy import loop_program, max_ulp_error, unary_samples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--svml-dir", default=None)
    args = parser.parse_args(argv)
    directory = find_svml(args.svml_dir)
    svml = SvmlLoops(directory) if directory else None
    if svml is None:
        print("libsvml.so not found (pip install intel-cmplr-lib-rt, or --svml-dir): SVML columns skipped")
    sizes = (1024,) if args.quick else (1024, 1 << 20)  # whole vectors for the SVML loop
    print("| function | n | vmath us | generic us | SVML us | numpy us | generic / vmath | SVML / vmath | numpy / vmath "
          "| vmath instr. per 8 | generic instr. per 8 |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for fn in SVML_NAMES:
        for T, dt in (("f64", np.float64), ("f32", np.float32)):
            for n in sizes:
                rng = np.random.default_rng(0)
                x = (rng.uniform(0.01, 10, n) if fn == "log" else rng.uniform(-5, 5, n)).astype(dt)
                y = np.empty_like(x)
                vm = compile_module(loop_program(f"math.{fn}", T, n), "f")
                generic = compile_generic(loop_program(f"math.{fn}", T, n))
                contenders = {"vmath": lambda: vm(x, y), "generic": lambda: generic(x, y), "numpy": lambda: NUMPY[fn](x, out=y)}
                if svml:
                    contenders["svml"] = lambda: svml(fn, x, y)
                reps = 3 if args.quick else (2000 if n == 1024 else 40)
                t = median_times(contenders, reps)
                s = t.get("svml", float("nan"))
                v, g = t["vmath"], t["generic"]
                print(
                    f"| {fn} {T} | {n} | {v * 1e6:.1f} | {g * 1e6:.1f} | {s * 1e6:.1f} | {t['numpy'] * 1e6:.1f} "
                    f"| {g / v:.2f} | {s / v:.2f} | {t['numpy'] / v:.2f} "
                    f"| {vector_instructions_per_8(vm):.1f} | {vector_instructions_per_8(generic):.1f} |",
                    flush=True,
                )
    if svml and not args.quick:
        print("\nSVML accuracy on the vmath table's samples (max ulp, worst input):")
        for fn in SVML_NAMES:
            for T, dt in (("f32", np.float32), ("f64", np.float64)):
                x = unary_samples(f"math.{fn}", T, 20000)
                lanes = 8 if T == "f64" else 16
                x = np.concatenate([x, np.ones((-len(x)) % lanes, dtype=dt)])
                y = np.empty_like(x)
                svml(fn, x, y)
                err, where = max_ulp_error(f"math.{fn}", T, (x,), y)
                print(f"  {fn} {T}: {err:.2f} ulp at {where}")


if __name__ == "__main__":
    main()
