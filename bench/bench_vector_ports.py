"""Which pipes zmm instructions use on this CPU, from loops of inline assembly (x86 with AVX-512).

    python bench/bench_vector_ports.py [--quick]

Each loop iteration runs 12 independent `vfmadd231pd` (or 12 `vaddpd`) and 6
(or 1-2) independent copies of the instruction under test; the extra time over
the 12 alone, in cycles per instruction, tells whether it competes with the
multiply-add pipes or the add pipes (Zen 4: FP0/FP1 and FP2/FP3; a 512-bit
instruction occupies a 256-bit pipe for two cycles, so 12 zmm multiply-adds
take 12 cycles). The cycle is measured as a twelfth of the 12-multiply-add
loop. docs/vector-math.md (fifth pass) explains what the table meant for the
f64 log kernel.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import llvmlite.binding as llvm
from llvmlite import ir

REGS = [f"%zmm{i}" for i in range(32)]
FMA, ADD = "vfmadd231pd {s}, %zmm2, {d}", "vaddpd {s}, {d}, {d}"
UNDER_TEST = {
    "vfmadd231pd": FMA,
    "vaddpd": ADD,
    "vgetexppd": "vgetexppd {s}, {d}",
    "vgetmantpd": "vgetmantpd $$11, {s}, {d}",
    "vrndscalepd": "vrndscalepd $$48, {s}, {d}",
    "vreducepd": "vreducepd $$48, {s}, {d}",
    "vmaxpd": "vmaxpd {s}, %zmm2, {d}",
    "vscalefpd": "vscalefpd {s}, %zmm2, {d}",
    "vpsrlq": "vpsrlq $$48, {s}, {d}",
    "vpaddq": "vpaddq {s}, %zmm2, {d}",
    "vpermpd": "vpermpd {s}, %zmm4, {d}",
    "vpermt2pd": "vpermt2pd %zmm3, %zmm4, {d}",
    "vdivpd": "vdivpd {s}, %zmm30, {d}",
    "vmovupd (store)": "vmovupd {d}, -{off}(%rsp)",
}


def _machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten())


def _loop(tm, lines: list[str]):
    """A native function f(n) running `lines` n times, with its execution engine (keep both alive)."""
    mod = ir.Module()
    mod.triple = llvm.get_default_triple()
    fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(64)])
    fn = ir.Function(mod, fnty, name="f")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    setup = ["vxorpd %zmm0, %zmm0, %zmm0"] + [f"vmovapd %zmm0, {r}" for r in REGS[1:]]
    asm = "\n".join(setup + ["1:"] + lines + ["dec $0", "jnz 1b"])
    clobbers = "".join(f",~{{xmm{i}}}" for i in range(32))
    b.call(ir.InlineAsm(fnty, asm, "r,~{dirflag},~{fpsr},~{flags},~{memory}" + clobbers, side_effect=True), [fn.args[0]])
    b.ret_void()
    module = llvm.parse_assembly(str(mod))
    engine = llvm.create_mcjit_compiler(module, tm)
    engine.finalize_object()
    return ctypes.CFUNCTYPE(None, ctypes.c_int64)(engine.get_function_address("f")), engine


def _copies(template: str, count: int, first: int) -> list[str]:
    return [template.format(d=REGS[first + i], s=REGS[1 + i % 4], off=64 * (i + 2)) for i in range(count)]


_ENGINES = []  # an MCJIT engine owns the target machine it was given: none may be freed before the end


def _ns_per_iteration(tm, lines, iterations: int, repeats: int) -> float:
    f, engine = _loop(tm, lines)
    _ENGINES.append(engine)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(iterations)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] / iterations * 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if "avx512f" not in llvm.get_host_cpu_features().flatten():
        print("needs AVX-512F")
        return
    tm = _machine()
    iterations, repeats = (20_000, 5) if args.quick else (200_000, 15)
    cycle = _ns_per_iteration(tm, _copies(FMA, 12, 8), iterations, repeats) / 12
    print(f"cycle ~ {cycle:.3f} ns; extra cycles per instruction beside 12 zmm multiply-adds / 12 zmm adds")
    print("| instruction | beside 12 vfmadd231pd | beside 12 vaddpd |")
    print("| --- | --- | --- |")
    for name, template in UNDER_TEST.items():
        count = 1 if name == "vdivpd" else 6
        cells = []
        for base in (FMA, ADD):
            t = _ns_per_iteration(tm, _copies(base, 12, 8) + _copies(template, count, 20), iterations, repeats)
            cells.append(f"{(t / cycle - 12) / count:.2f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
