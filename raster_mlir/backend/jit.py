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
   is compiled as several modules, each in its own LLVM context, by this
   thread and a persistent worker thread (llvm_worker.py): groups of
   segments are handed over while the rest is still being emitted
   (part_handoff.py, `pipelined_compile`), the rest is split when emission
   ends (module_split.py); the result is one object per part.
2. `JitModule`: an MCJIT execution engine built around an empty module into
   which the objects are loaded (`add_object_file`), so a cache hit skips
   optimisation and code generation entirely. External symbols (libm's
   `exp`, `tanh`, ...) are resolved by MCJIT in the running process.
   Host assembly (`asm`) is produced lazily, from the optimised IR, only
   when somebody asks for it.
"""

from __future__ import annotations

import contextlib
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
from . import llvm_worker
from .llvm_worker import PartQueue
from .module_split import PART_SEPARATOR, ModulePart, split_module, vector_variants, whole_module_part
from .part_handoff import SegmentHandOff
from .vmath.fallback import VFABI_ATTRIBUTE
from .target import HostTarget, ensure_llvm_initialised

# Part of the object cache's key (cache.py): changed whenever what this module does to a given
# LLVM IR text changes (passes, their options, the module split), so that no cache serves old code.
# 2: vector variants in every part that names them, deleted after inlining; 3: entry points at O0;
# 4: groups of kernel segments as parts of their own, handed to LLVM during emission (part_handoff.py);
# 5: the split packs functions by module_split.llvm_cost instead of text size; 6: the hand-off groups
# small segments by llvm_cost too (part_handoff.SMALL_SEGMENT)
PIPELINE_VERSION = 6

class _LLVMLock:
    """Who may call into LLVM at the same time.

    Held exclusively (`with _llvm_lock:`, re-entrant) around MCJIT engines, the global LLVM
    context and symbol lookups, which LLVM does not document as thread-safe; held shared
    (`_llvm_lock.shared()`, re-entrant) by each module part's parsing, optimisation and code
    generation, in a context and with a target machine of the thread's own, which LLVM allows on
    several threads at once (what its parallel code generation relies on). Part compiles overlap
    each other (the LLVM worker thread compiles parts while the calling thread emits,
    llvm_worker.py), never an exclusive holder: as before the worker, when one lock serialised all
    of it.

    An exclusive request goes first: while one waits, no thread starts a new shared hold (a thread
    already holding it shared may nest), so the parts being compiled finish and the exclusive holder
    (loading a module, looking up a symbol of a new function) runs before the next part starts.
    Without this, the LLVM worker taking part after part of other compiles kept a symbol lookup
    waiting for whole compiles. Shared holders still overlap each other whenever nobody waits.
    A thread holding it shared may not ask for it exclusively (RuntimeError: no upgrade)."""

    def __init__(self):
        self._cv = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._shared: dict[int, int] = {}  # thread -> depth of its shared holds
        self._exclusive_waiting = 0

    def __enter__(self):
        me = threading.get_ident()
        with self._cv:
            if self._owner != me:
                if me in self._shared:
                    # it would wait for its own shared hold for ever, and its queued request would
                    # stop every other thread's new shared holds: every LLVM user frozen
                    raise RuntimeError("the LLVM lock cannot be taken exclusively by a thread holding it shared")
                self._exclusive_waiting += 1
                try:
                    while self._owner is not None or self._shared:
                        self._cv.wait()
                finally:
                    self._exclusive_waiting -= 1
                self._owner = me
            self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._cv:
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._cv.notify_all()

    @contextlib.contextmanager
    def shared(self):
        me = threading.get_ident()
        with self._cv:
            if me not in self._shared:
                while self._owner != me and (self._owner is not None or self._exclusive_waiting):
                    self._cv.wait()
            self._shared[me] = self._shared.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cv:
                depth = self._shared.pop(me) - 1
                if depth:
                    self._shared[me] = depth
                else:
                    self._cv.notify_all()


_llvm_lock = _LLVMLock()


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


def optimize_and_codegen(
    llvm_ir: str, target: HostTarget, opt_level: int = 3, timer=NO_TIMER, handoff: SegmentHandOff | None = None
) -> CompiledObject:
    """Optimise `llvm_ir` at `opt_level` and emit host object code (see module docstring).

    `handoff`: the pipelined compile whose emission produced `llvm_ir` (`pipelined_compile`);
    its parts handed off during emission are compiled already or being compiled."""
    ensure_llvm_initialised()
    if handoff is None:
        handoff = pipelined_compile(target, opt_level)
    queue = handoff.queue
    try:
        with timer.phase("LLVM module split"):
            text = handoff.rest_text() if handoff.handed_off else llvm_ir
            parts = split_module(text)
        if parts is None and not handoff.handed_off:  # one module, on this thread
            queue.cancel()
            remarks: list[str] = []
            with capture_llvm_diagnostics(remarks):
                results = [_compile_part(ModulePart(llvm_ir, len(llvm_ir)), timer, target, opt_level)]
        else:
            results = queue.finish(timer, parts or [whole_module_part(text)])
            remarks = queue.remarks
    finally:
        queue.cancel()  # no-op after finish(); after an error, no part is started any more
    objects = [obj for obj, _ in results]
    optimized = f"\n{PART_SEPARATOR}\n".join(text for _, text in results)
    return CompiledObject(objects[0], optimized, tuple(remarks), tuple(objects[1:]))


def pipelined_compile(target: HostTarget, opt_level: int) -> SegmentHandOff:
    """A compile whose parts LLVM may start on while the module is still being emitted: give it
    to emit_module (`hand_off`), then to optimize_and_codegen, or `cancel()` its queue."""
    ensure_llvm_initialised()
    compile_part = functools.partial(_compile_part, target=target, opt_level=opt_level)
    return SegmentHandOff(PartQueue(compile_part, _compile_threads() > 1))


def warm_up(target: HostTarget, opt_level: int) -> None:
    """Start the LLVM worker thread (when compiles use two threads) and let it pay LLVM's one-time
    costs now: its target machines (O`opt_level` and O0) and a first optimisation and code
    generation (LLVM's process-wide set-up): about 8 ms of CPU, which the worker's first part
    paid during the compile before. It also makes the calling thread's two target machines and
    runs their first code generation (about 1.2 ms each: `_spare_machines`), which that
    thread paid on its first part, after emission, and the execution engine the compiled module
    is loaded into (`_spare_engines`). Called once per process, by the first compile
    that misses the cache, before its pass pipeline runs (Python on the calling thread for tens
    of ms). The spares are for the calling thread only (`_take_spare`): another thread asking
    first (the pool runtime's preparation, a second compile) would leave this one without."""
    if _compile_threads() > 1:
        llvm_worker.warm_up(functools.partial(_warm_up, target, opt_level, threading.get_ident()))


def _warm_up(target: HostTarget, opt_level: int, requester: int) -> None:
    tiny = (
        f'target triple = "{target.triple}"\ntarget datalayout = "{target.data_layout}"\n'
        "define double @warm_up(double %x) {\n  %y = fmul double %x, %x\n  ret double %y\n}\n"
    )
    try:
        ensure_llvm_initialised()
        _compile_part(ModulePart(tiny, 1), NO_TIMER, target, opt_level)
        _compile_part(ModulePart(tiny, 1, entry_points_only=True), NO_TIMER, target, opt_level)
        for level in (opt_level, 0):  # for the calling thread, which compiles parts after emission
            tm = target.create_target_machine(level)
            with _llvm_lock.shared():
                _emit_object(tm, _parse_and_verify(tiny, llvm.create_context()))
            with _spare_lock:
                _spare_machines.setdefault((requester, target, level), []).append(tm)
        with _llvm_lock:  # the first module loaded in this process: JitModule
            engine = _new_engine(target, opt_level)
        with _spare_lock:
            _spare_engines.setdefault((requester, target, opt_level), []).append(engine)
    except Exception:  # noqa: S110  (only a head start: the compile itself reports any error)
        pass


def _compile_part(part: ModulePart, timer, target: HostTarget, opt_level: int) -> tuple[bytes, str]:
    with _llvm_lock.shared():
        module = _parse_and_verify(part.text, llvm.create_context(), timer)  # a context of its own: see _unlocked
        return _optimize_and_emit(module, part.text, target, opt_level, timer, part.entry_points_only)


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


_per_thread = threading.local()
# Target machines made (and used once) by the LLVM worker's warm-up for the thread that asked for it
# (`warm_up`): (that thread's id, target, opt level) -> machines it has not taken yet.
_spare_machines: dict[tuple[int, HostTarget, int], list] = {}
_spare_engines: dict[tuple[int, HostTarget, int], list] = {}  # and an engine for its first JitModule
_spare_lock = threading.Lock()


def _thread_target_machine(target: HostTarget, opt_level: int):
    """This thread's target machine for `target` at `opt_level`, made once: making one and its first
    code generation cost about 1.2 ms, once per module part otherwise. One per thread, since LLVM
    does not promise that a target machine may generate code for two modules at once; a thread's
    first one is a spare made by the warm-up when there is one (never used by two threads at once:
    the warm-up is done with it before it is handed over)."""
    machines = getattr(_per_thread, "machines", None)
    if machines is None:
        machines = _per_thread.machines = {}
    tm = machines.get((target, opt_level))
    if tm is None:
        spare = _take_spare(_spare_machines, target, opt_level)
        tm = machines[(target, opt_level)] = spare or target.create_target_machine(opt_level)
    return tm


def _new_engine(target: HostTarget, opt_level: int):
    """An MCJIT engine around an empty module (JitModule loads objects into it); under _llvm_lock."""
    tm = target.create_target_machine(opt_level)  # the engine owns it
    shell = llvm.parse_assembly(f'target triple = "{target.triple}"\n')
    return llvm.create_mcjit_compiler(shell, tm)


def _take_spare(pool: dict, target: HostTarget, opt_level: int):
    """A target machine or engine (`pool`: _spare_machines, _spare_engines) the warm-up made for this
    thread, or None. An engine saves `_new_engine` (about 0.5 ms) on the first load."""
    with _spare_lock:
        spares = pool.get((threading.get_ident(), target, opt_level))
        return spares.pop() if spares else None


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
            self._engine = _take_spare(_spare_engines, target, opt_level) or _new_engine(target, opt_level)
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
