"""LLVM IR text -> optimised object code -> code loaded in this process.

Algorithm:
1. `optimize_and_codegen`: parse and verify the IR, run LLVM's default
   per-module pipeline at `opt_level` through the new pass manager
   (`create_pipeline_tuning_options` + `create_pass_builder`), with loop
   vectorisation, SLP vectorisation, loop interleaving and unrolling switched
   on from O2 (at O1 LLVM's default pipeline does not run the vectorisers),
   then emit an ELF object for the host with the same target machine.
   The object, the optimised IR text and LLVM's diagnostics (captured, never
   printed: llvm_remarks.py) are what `cache.py` stores. Modules with vector
   maths variants (vmath/fallback.py) get an always-inline pass after the
   pipeline: the loop vectoriser calls those variants, and nothing inlines
   them in the O3 pipeline after it runs.
2. `JitModule`: an MCJIT execution engine built around an empty module into
   which the object is loaded (`add_object_file`), so a cache hit skips
   optimisation and code generation entirely. External symbols (libm's
   `exp`, `tanh`, ...) are resolved by MCJIT in the running process.
   Host assembly (`asm`) is produced lazily, from the optimised IR, only
   when somebody asks for it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..errors import CompileError
from ..timing import NO_TIMER
from .fp_mode import register_symbol
from .llvm_remarks import capture_llvm_diagnostics, loops_not_vectorized
from .vmath.fallback import VFABI_ATTRIBUTE
from .target import HostTarget, ensure_llvm_initialised

# MCJIT creation and module parsing are not documented as thread-safe.
_llvm_lock = threading.RLock()


@dataclass(frozen=True)
class CompiledObject:
    """The cacheable result of compiling one IR module."""

    object_code: bytes
    llvm_ir_optimized: str
    llvm_remarks: tuple[str, ...] = ()  # LLVM's diagnostics during optimisation and codegen


def optimize_and_codegen(llvm_ir: str, target: HostTarget, opt_level: int = 3, timer=NO_TIMER) -> CompiledObject:
    """Optimise `llvm_ir` at `opt_level` and emit host object code (see module docstring)."""
    ensure_llvm_initialised()
    with _llvm_lock:
        try:
            with timer.phase("LLVM IR parsing and verification"):
                module = llvm.parse_assembly(llvm_ir)
                module.verify()
        except RuntimeError as exc:
            raise CompileError(f"the LLVM backend produced invalid IR: {exc}") from exc
        tm = target.create_target_machine(opt_level)
        pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        vectorise = opt_level >= 2
        pto.loop_vectorization = vectorise
        pto.slp_vectorization = vectorise
        pto.loop_interleaving = vectorise
        pto.loop_unrolling = vectorise
        pb = llvm.create_pass_builder(tm, pto)
        pm = pb.getModulePassManager()
        remarks: list[str] = []
        with capture_llvm_diagnostics(remarks):
            with timer.phase("LLVM optimisation"):
                pm.run(module, pb)
                if VFABI_ATTRIBUTE in llvm_ir:
                    _inline_vector_variants(module, pb)
            with timer.phase("code generation"):
                optimized = str(module)
                obj = tm.emit_object(module)
    return CompiledObject(object_code=bytes(obj), llvm_ir_optimized=optimized, llvm_remarks=tuple(remarks))


def _inline_vector_variants(module, pb) -> None:
    """Inline the vector maths variants the loop vectoriser called (vmath/fallback.py), then tidy up."""
    pm = llvm.create_new_module_pass_manager()
    pm.add_always_inliner_pass()
    pm.add_instruction_combine_pass()
    pm.add_simplify_cfg_pass()
    pm.run(module, pb)


class JitModule:
    """Object code loaded into this process, with symbol lookup and inspection text."""

    def __init__(self, compiled: CompiledObject, target: HostTarget, opt_level: int, llvm_ir: str | Callable[[], str]):
        """`llvm_ir`: the module's IR text, or a function producing it on first use (a cache hit
        taken before the pass pipeline has no IR text; it is regenerated only if asked for)."""
        ensure_llvm_initialised()
        register_symbol()  # the flush-to-zero switch the entry points read (fp_mode.py)
        self._llvm_ir = llvm_ir
        self.llvm_ir_optimized = compiled.llvm_ir_optimized
        self.llvm_remarks = compiled.llvm_remarks
        self._compiled = compiled
        self._target = target
        self._opt_level = opt_level
        self._asm: str | None = None
        # Per-entry runtime state (workspace, filled runtime table), owned
        # here because every NativeFunction sharing this code shares it.
        self.entry_state: dict[str, object] = {}
        self.state_lock = threading.Lock()
        with _llvm_lock:
            tm = target.create_target_machine(opt_level)
            shell = llvm.parse_assembly(f'target triple = "{target.triple}"\n')
            self._engine = llvm.create_mcjit_compiler(shell, tm)
            self._object = llvm.ObjectFileRef.from_data(compiled.object_code)
            self._engine.add_object_file(self._object)
            self._engine.finalize_object()

    @property
    def llvm_ir(self) -> str:
        """LLVM IR of the module before optimisation."""
        if callable(self._llvm_ir):
            self._llvm_ir = self._llvm_ir()
        return self._llvm_ir

    def offer_llvm_ir(self, text: str) -> None:
        """The IR text, from a caller that has it (saves regenerating it later)."""
        if callable(self._llvm_ir):
            self._llvm_ir = text

    def function_address(self, name: str) -> int:
        with _llvm_lock:
            addr = self._engine.get_function_address(name)
        if not addr:
            raise CompileError(f"symbol {name!r} not found in the compiled object")
        return addr

    def global_address(self, name: str) -> int:
        with _llvm_lock:
            addr = self._engine.get_global_value_address(name)
        if not addr:
            raise CompileError(f"global {name!r} not found in the compiled object")
        return addr

    @functools.cached_property
    def loops_not_vectorized(self) -> list[str]:
        return loops_not_vectorized(self.llvm_ir_optimized)

    def global_address_or_none(self, name: str) -> int | None:
        """Address of global `name`, or None when the object does not define it."""
        with _llvm_lock:
            return self._engine.get_global_value_address(name) or None

    @property
    def asm(self) -> str:
        """Host assembly of the optimised module (generated on first access)."""
        if self._asm is None:
            with _llvm_lock:
                module = llvm.parse_assembly(self.llvm_ir_optimized)
                tm = self._target.create_target_machine(self._opt_level)
                tm.set_asm_verbosity(True)
                self._asm = tm.emit_assembly(module)
        return self._asm
