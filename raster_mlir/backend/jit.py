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
   them in the O3 pipeline after it runs. The variants are then made
   internal and deleted where nothing calls them any more (they are
   external only to survive until the vectoriser): code generation of the
   unused ones cost 9 of the 19 ms of a train step's entry-point module.
   A module whose kernel was cut into segment functions (segment_emit.py)
   is first split into several modules (module_split.py), each compiled in
   its own LLVM context by this thread and one more (`_compile_parts`);
   the result is one object per part.
2. `JitModule`: an MCJIT execution engine built around an empty module into
   which the objects are loaded (`add_object_file`), so a cache hit skips
   optimisation and code generation entirely. External symbols (libm's
   `exp`, `tanh`, ...) are resolved by MCJIT in the running process.
   Host assembly (`asm`) is produced lazily, from the optimised IR, only
   when somebody asks for it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..errors import CompileError
from ..timing import NO_TIMER
from .fp_mode import register_symbol
from .llvm_remarks import capture_llvm_diagnostics, loops_not_vectorized
from .module_split import PART_SEPARATOR, ModulePart, split_module, vector_variants
from .vmath.fallback import VFABI_ATTRIBUTE
from .target import HostTarget, ensure_llvm_initialised

# Part of the object cache's key (cache.py): changed whenever what this module does to a given
# LLVM IR text changes (passes, their options, the module split), so that no cache serves old code.
PIPELINE_VERSION = 3  # 2: vector variants in every part that names them, deleted after inlining; 3: entry points at O0

# MCJIT creation and module parsing are not documented as thread-safe.
_llvm_lock = threading.RLock()


@dataclass(frozen=True)
class CompiledObject:
    """The cacheable result of compiling one IR module."""

    object_code: bytes
    llvm_ir_optimized: str  # of a split module: the parts' texts joined by module_split.PART_SEPARATOR
    llvm_remarks: tuple[str, ...] = ()  # LLVM's diagnostics during optimisation and codegen
    more_objects: tuple[bytes, ...] = ()  # the other parts of a split module, loaded beside object_code

    @property
    def objects(self) -> tuple[bytes, ...]:
        return (self.object_code, *self.more_objects)


def optimize_and_codegen(llvm_ir: str, target: HostTarget, opt_level: int = 3, timer=NO_TIMER) -> CompiledObject:
    """Optimise `llvm_ir` at `opt_level` and emit host object code (see module docstring)."""
    ensure_llvm_initialised()
    with _llvm_lock:
        with timer.phase("LLVM module split"):
            parts = split_module(llvm_ir)
        remarks: list[str] = []  # filled when the capture ends
        with capture_llvm_diagnostics(remarks):
            if parts is None:
                module = _parse_and_verify(llvm_ir, llvm.create_context(), timer)  # a context of its own: see _unlocked
                results = [_optimize_and_emit(module, llvm_ir, target, opt_level, timer)]
            else:
                results = _compile_parts(parts, target, opt_level, timer)
    objects = [obj for obj, _ in results]
    optimized = f"\n{PART_SEPARATOR}\n".join(text for _, text in results)
    return CompiledObject(objects[0], optimized, tuple(remarks), tuple(objects[1:]))


def _parse_and_verify(llvm_ir: str, context, timer=NO_TIMER):
    try:
        with timer.phase("LLVM IR parsing and verification"):
            module = llvm.parse_assembly(llvm_ir, context=context)
            module.verify()
    except RuntimeError as exc:
        raise CompileError(f"the LLVM backend produced invalid IR: {exc}") from exc
    return module


def _optimize_and_emit(
    module, llvm_ir: str, target: HostTarget, opt_level: int, timer=NO_TIMER, entry_points_only: bool = False
) -> tuple[bytes, str]:
    """Run the pipeline on `module` (parsed from `llvm_ir`) and emit its object: (object, optimised IR).

    A part of entry points only (`optnone` functions, module_split.py) skips the pipeline, which
    may not change them, and its code is generated at LLVM's O0 (fast instruction selection and
    register allocation): at O3, code generation of the 8-layer train step's entry points, 1,700
    straight-line instructions of argument checks, took 24 ms of CPU, at O0 8 ms."""
    if entry_points_only:
        with timer.phase("code generation"):
            return _emit_object(_thread_target_machine(target, 0), module), str(module)
    tm = _thread_target_machine(target, opt_level)
    pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
    vectorise = opt_level >= 2
    pto.loop_vectorization = vectorise
    pto.slp_vectorization = vectorise
    pto.loop_interleaving = vectorise
    pto.loop_unrolling = vectorise
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    with timer.phase("LLVM optimisation"):
        _unlocked("LLVMPY_RunNewModulePassManager")(pm, module, pb)
        if VFABI_ATTRIBUTE in llvm_ir:
            _inline_vector_variants(module, pb, vector_variants(llvm_ir))
    with timer.phase("code generation"):
        optimized = str(module)
        obj = _emit_object(tm, module)
    return obj, optimized


def _compile_parts(parts: list[ModulePart], target: HostTarget, opt_level: int, timer) -> list[tuple[bytes, str]]:
    """Each part in its own LLVM context, on this thread and one more (`_compile_threads`): each
    thread takes the heaviest part nobody took yet, this thread first (so that its timing report
    shows an optimised part), the entry points last (cheap at O0). Results are in the parts' order."""
    results: list = [None] * len(parts)
    errors: list[BaseException] = []
    queue = sorted(range(len(parts)), key=lambda k: (parts[k].entry_points_only, -parts[k].weight, k))
    take = threading.Lock()

    def work(part_timer, k: int | None = None) -> None:
        while True:
            if k is None:
                with take:
                    if errors or not queue:
                        return
                    k = queue.pop(0)
            try:
                module = _parse_and_verify(parts[k].text, llvm.create_context(), part_timer)
                results[k] = _optimize_and_emit(
                    module, parts[k].text, target, opt_level, part_timer, parts[k].entry_points_only
                )
            except Exception as exc:  # re-raised on the calling thread
                errors.append(exc)
                return
            k = None

    # The calling thread takes the heaviest part before the other thread starts: only its phases
    # reach the timing report, which would otherwise show no LLVM optimisation at all whenever the
    # other thread happened to take the one part that has some (a kernel beside its entry points).
    first = queue.pop(0) if queue else None
    worker = threading.Thread(target=work, args=(NO_TIMER,), name="raster-mlir-llvm") if _compile_threads() > 1 else None
    if worker is not None:
        worker.start()
    try:
        work(timer, first)
    finally:
        if worker is not None:
            with take:
                queue.clear()  # after an interrupt here, the other thread finishes its part and stops
            with timer.phase("LLVM, waiting for the other thread"):
                worker.join()
    if errors:
        if isinstance(errors[0], CompileError):
            raise errors[0]
        raise CompileError(f"LLVM failed on a part of a split module: {errors[0]}") from errors[0]
    return results


_per_thread = threading.local()


def _thread_target_machine(target: HostTarget, opt_level: int):
    """This thread's target machine for `target` at `opt_level`, made once: making one and its first
    code generation cost about 0.8 ms, once per module part otherwise. One per thread, since LLVM
    does not promise that a target machine may generate code for two modules at once."""
    machines = getattr(_per_thread, "machines", None)
    if machines is None:
        machines = _per_thread.machines = {}
    tm = machines.get((target, opt_level))
    if tm is None:
        tm = machines[(target, opt_level)] = target.create_target_machine(opt_level)
    return tm


def _compile_threads() -> int:
    """Threads for compiling the parts of a module: two when the process may use two CPUs and
    `rm.set_num_threads` / RASTER_MLIR_NUM_THREADS allow two threads, else one."""
    from .pool import get_num_threads

    return min(2, _usable_cpus(), get_num_threads())


@functools.lru_cache(maxsize=1)
def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _unlocked(name: str):
    """llvmlite's C function `name` without llvmlite's process-wide lock, where that is possible.

    llvmlite serialises every call into LLVM on one lock; optimising and
    generating code for modules of distinct LLVM contexts is thread-safe in
    LLVM itself (what parallel LTO code generation relies on): these long
    calls are made without the lock, on modules of a context of their own
    (never llvmlite's global context, which other code may be using).
    On an llvmlite without the wrapper this relies on, the locked call.
    """
    wrapped = getattr(llvm.ffi.lib, name)
    return getattr(wrapped, "_cfn", wrapped)


def _emit_object(tm, module) -> bytes:
    """`tm.emit_object(module)`, with the code generation itself made without llvmlite's lock."""
    with llvm.ffi.OutputString() as error:
        buffer = _unlocked("LLVMPY_TargetMachineEmitToMemory")(tm, module, 1, error)
        if not buffer:
            raise CompileError(f"LLVM code generation failed: {error}")
    lib = llvm.ffi.lib
    try:
        return ctypes.string_at(lib.LLVMPY_GetBufferStart(buffer), lib.LLVMPY_GetBufferSize(buffer))
    finally:
        lib.LLVMPY_DisposeMemoryBuffer(buffer)


def _inline_vector_variants(module, pb, variants: set[str]) -> None:
    """Inline the vector maths variants the loop vectoriser called (vmath/fallback.py), tidy up, and
    delete the variants (internal from now on: several parts of a split module may hold a copy)."""
    pm = llvm.create_new_module_pass_manager()
    pm.add_always_inliner_pass()
    pm.add_instruction_combine_pass()
    pm.add_simplify_cfg_pass()
    pm.run(module, pb)
    for name in sorted(variants):
        try:
            fn = module.get_function(name)
        except NameError:
            continue
        if not fn.is_declaration:
            fn.linkage = llvm.Linkage.internal
    cleanup = llvm.create_new_module_pass_manager()
    cleanup.add_global_dead_code_eliminate_pass()
    cleanup.run(module, pb)


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
            self._objects = [llvm.ObjectFileRef.from_data(obj) for obj in compiled.objects]
            for obj in self._objects:
                self._engine.add_object_file(obj)
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
        return [name for part in self.llvm_ir_optimized.split(PART_SEPARATOR) for name in loops_not_vectorized(part)]

    def global_address_or_none(self, name: str) -> int | None:
        """Address of global `name`, or None when the object does not define it."""
        with _llvm_lock:
            return self._engine.get_global_value_address(name) or None

    @property
    def asm(self) -> str:
        """Host assembly of the optimised module (generated on first access)."""
        if self._asm is None:
            with _llvm_lock:
                tm = self._target.create_target_machine(self._opt_level)
                tm.set_asm_verbosity(True)
                parts = self.llvm_ir_optimized.split(PART_SEPARATOR)
                self._asm = "".join(tm.emit_assembly(llvm.parse_assembly(part)) for part in parts)
        return self._asm
