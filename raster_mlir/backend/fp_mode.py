"""Flush-to-zero / denormals-are-zero while native code runs (x86-64), on by default.

Why: arithmetic on subnormal numbers is microcoded on x86 and costs ~100
cycles per operation. Training produces them without anyone asking: Adam's
moment estimates of parameters whose gradients are mostly zero decay
geometrically (m <- 0.9 m) through the subnormal range, and a train step
that touched 18k of them ran 3.5x slower. With FTZ (MXCSR bit 15: subnormal
results become +-0) and DAZ (bit 6: subnormal inputs read as +-0) they cost
nothing, and they change results only below the smallest normal number
(2.2e-308 in f64, 1.2e-38 in f32). XLA runs CPU code the same way.

How: every native entry point (llvm_entry.py: `<name>_packed` and
`<name>_checked`) saves MXCSR, ORs in the bits held by the process-wide
variable `raster_mlir_mxcsr_or` (exported to MCJIT with `llvm.add_symbol`),
calls the kernel and restores MXCSR, so the caller's floating-point mode
(Python, numpy) is untouched and switching costs no Python work per call:

    %saved = stmxcsr; ldmxcsr(%saved | load @raster_mlir_mxcsr_or)
    call @kernel(...)              ; noinline: no FP op can move above the ldmxcsr
    ldmxcsr(%saved)

`set_flush_denormal(False)` (or RASTER_MLIR_FLUSH_DENORMAL=0 in the
environment at import) gives gradual underflow back, for users who need
IEEE subnormals; it takes effect at the next call of any compiled function,
already compiled ones included. The setting is process-wide, like
`torch.set_flush_denormal`. Worker threads that run parts of a call must
run with the caller's MXCSR. On other architectures nothing is emitted and subnormals stay gradual.
"""

from __future__ import annotations

import ctypes
import os
import threading

from llvmlite import ir

from .llvm_types import I32, PTR

FTZ = 1 << 15
DAZ = 1 << 6
SYMBOL = "raster_mlir_mxcsr_or"

_bits = ctypes.c_uint32(0 if os.environ.get("RASTER_MLIR_FLUSH_DENORMAL", "1") == "0" else FTZ | DAZ)
_registered = False
_lock = threading.Lock()


def register_symbol() -> None:
    """Make `raster_mlir_mxcsr_or` resolvable by MCJIT (idempotent; before any object is loaded)."""
    global _registered
    with _lock:
        if not _registered:
            import llvmlite.binding as llvm

            llvm.add_symbol(SYMBOL, ctypes.addressof(_bits))
            _registered = True


def supported(triple: str) -> bool:
    return triple.startswith("x86_64")


def set_flush_denormal(enabled: bool) -> bool:
    """Flush subnormals to zero in compiled code (default) or keep gradual underflow.

    Returns True when the host supports the mode (x86-64), like torch.set_flush_denormal.
    """
    from .target import host_target

    _bits.value = FTZ | DAZ if enabled else 0
    return supported(host_target().triple)


def get_flush_denormal() -> bool:
    """True when compiled code flushes subnormals to zero."""
    return _bits.value != 0


def call_in_fp_mode(mctx, builder: ir.IRBuilder, kernel: ir.Function, args: list) -> None:
    """Emit `call kernel(args)` wrapped in the MXCSR save / set / restore of the module docstring."""
    if not supported(mctx.options.target.triple):
        builder.call(kernel, args)
        return
    void = ir.VoidType()
    stmxcsr = mctx.declare("llvm.x86.sse.stmxcsr", void, [PTR])
    ldmxcsr = mctx.declare("llvm.x86.sse.ldmxcsr", void, [PTR])
    mode = mctx.llmod.globals.get(SYMBOL)
    if mode is None:
        mode = ir.GlobalVariable(mctx.llmod, I32, name=SYMBOL)
        mode.linkage = "external"
    with builder.goto_entry_block():
        saved_slot = builder.alloca(I32, name="mxcsr.saved")
        mode_slot = builder.alloca(I32, name="mxcsr.mode")
    builder.call(stmxcsr, [saved_slot])
    saved = builder.load(saved_slot, typ=I32)
    builder.store(builder.or_(saved, builder.load(mode, typ=I32)), mode_slot)
    builder.call(ldmxcsr, [mode_slot])
    builder.call(kernel, args, attrs=("noinline",))
    builder.call(ldmxcsr, [saved_slot])
