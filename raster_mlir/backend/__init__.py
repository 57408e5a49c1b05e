"""Native backend: loop-level xDSL IR -> LLVM IR -> host machine code -> callable.

Public facade (what the compile API calls):

    compile_module(
        module: xdsl.dialects.builtin.ModuleOp,   # loop-level IR (contract below)
        entry: str,                               # name of the func.func to expose
        arg_specs: Sequence[ArgSpec] | None = None,   # None: derived from the IR
        *,
        opt_level: int = 3,                       # LLVM -O level, 0..3
        use_cache: bool = True,                   # memory + disk object cache
        fastmath: Sequence[str] = ("contract", "reassoc"),
        loop_vectorize_hints: bool = True,
        prefer_vector_width: int | None = None,   # None: 512 on avx512f hosts
        jam: int = 4,                             # unroll-and-jam factor of reduction nests; <2: off
        vector_math: bool = True,                 # exp/log/tanh... as inline vector code (vmath/); False: libm
    ) -> NativeFunction

    ArgSpec(shape, dtype, written=False, name=None, align=None)

    emit_llvm(module, *, opt_level=3, use_cache=True) -> CompiledModule
        # inspection (the CLI's --emit=llvm|llvm-opt|asm): every public function
        # that qualifies as an entry gets entry points; .llvm_ir,
        # .llvm_ir_optimized, .asm, .entries (names), .cache_hit

`NativeFunction(*arrays)` runs the entry on numpy arrays (one per buffer
argument, in order) and returns None; results are in the written buffers.
It refuses, never coerces, bad arguments (see `call.py`). Attributes:
`.llvm_ir`, `.llvm_ir_optimized`, `.asm`, `.workspace_bytes`, `.cache_hit`,
`.cache_source`, `.compile_seconds`, `.arg_specs`, `.native_checks`.

`aligned_empty(shape, dtype)` / `aligned_zeros` allocate 64-byte aligned
arrays, the fastest case for 512-bit loads (arrays.py).

The loop-level IR contract: `func.func` ops whose arguments are static,
row-major memrefs of f64/f32 (i64/i32 accepted too), returning nothing
(results written into arguments); bodies made of scf.for/yield/if, arith,
math, memref.load/store/alloc/alloca/dealloc/copy, func.call/return.
Non-entry functions may take scalars and return one scalar. Every
`memref.alloc` (in any function) is a slice of one workspace buffer per
entry, allocated once by the Python side (64-byte aligned offsets; callees
get a slice after their caller's own allocs); `memref.dealloc` is a no-op.

Requirement on the caller, checked on every call: a buffer the function
writes must not overlap any other argument (the kernels are compiled with
`noalias`). Calls hold the GIL while native code runs (the workspace of an
entry is shared), so one NativeFunction is thread-safe but serialised.

Caching: compiled objects are cached in memory and on disk in
`$RASTER_MLIR_CACHE_DIR`, else `$XDG_CACHE_HOME/raster_mlir`, else
`~/.cache/raster_mlir`, at most `$RASTER_MLIR_CACHE_MAX_MB` (default 512;
least recently used entries go first); `RASTER_MLIR_CACHE=0` turns both
off (cache.py, cache_store.py).

Modules, in pipeline order: `analysis.py` (buffer types, written arguments,
workspace layout), `specs.py` (ArgSpec), `llvm_emit.py` with
`llvm_body.py`, `llvm_ops.py`, `llvm_types.py`, `loop_hints.py`,
`vmath/` (transcendental functions as inline vector code) and
`llvm_entry.py` with `fp_mode.py` (LLVM IR; flush-to-zero around each
native call), `segment_emit.py` (a large kernel as segment functions),
`module_split.py` (one module as several, compiled on two threads),
`target.py` (host CPU), `jit.py` (O3 + MCJIT),
`cache.py` (object cache), `numpy_abi.py` + `call.py` (per-call path),
`arrays.py` (aligned allocation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from xdsl.dialects.builtin import ModuleOp

from . import runtime_prep
from .arrays import aligned_copy, aligned_empty, aligned_zeros
from .cache import cache_dir, cache_enabled, clear_memory_cache, load_or_compile
from ..timing import NO_TIMER
from .call import AliasingError, AlignmentError, NativeFunction, NotContiguousError, ReadOnlyError
from .llvm_emit import DEFAULT_FASTMATH, EmitOptions, emit_module
from .llvm_release import release_module
from .inspect import LLVMInspection
from .jit import pipelined_compile
from .specs import ArgSpec
from .target import host_target

__all__ = [
    "aligned_copy",
    "aligned_empty",
    "aligned_zeros",
    "AlignmentError",
    "AliasingError",
    "ArgSpec",
    "NativeFunction",
    "NotContiguousError",
    "ReadOnlyError",
    "cache_dir",
    "cache_enabled",
    "clear_memory_cache",
    "compile_module",
    "emit_llvm",
    "emit_module",
    "host_target",
]


def compile_module(
    module: ModuleOp,
    entry: str,
    arg_specs: Sequence[ArgSpec] | None = None,
    *,
    opt_level: int = 3,
    use_cache: bool = True,
    fastmath: Sequence[str] = DEFAULT_FASTMATH,
    loop_vectorize_hints: bool = True,
    prefer_vector_width: int | None = None,
    jam: int = 4,
    vector_math: bool = True,
    timer=NO_TIMER,
    verified: bool = False,
) -> NativeFunction:
    """Compile `entry` of the loop-level `module` for this host; see the module docstring.

    `timer` (a `raster_mlir.timing.CompileTimer`) gets the rows of LLVM IR
    emission, the cache lookup, LLVM optimisation, code generation and loading.
    `verified`: the caller verified `module` just before (it is not verified again).
    """
    from ..errors import CompileError

    t0 = time.perf_counter()
    if opt_level not in (0, 1, 2, 3):
        raise CompileError(f"opt_level must be 0, 1, 2 or 3, got {opt_level!r}")
    options = EmitOptions(
        fastmath=tuple(sorted(set(fastmath))),
        loop_vectorize_hints=loop_vectorize_hints,
        prefer_vector_width=prefer_vector_width,
        jam=jam,
        vector_math=vector_math,
        target=host_target(),
    )
    # LLVM compiles groups of kernel segments while the rest is emitted (part_handoff.py).
    handoff = pipelined_compile(options.target, opt_level)
    try:
        with timer.phase("LLVM IR emission"):
            # A module with parallel loops needs the thread pool's runtime when it is loaded:
            # built on another thread meanwhile (runtime_prep.py).
            emitted = emit_module(module, {entry: arg_specs}, options, verified, runtime_prep.prepare_pool, handoff)
        # The llvmlite IR is freed by refcounting, not by the collector (llvm_release.py): while this
        # thread waits for the LLVM worker's last part if it does, else now.
        handoff.queue.when_idle("freeing the llvmlite IR", lambda: release_module(emitted.llmod))
        result = load_or_compile(
            emitted.llvm_ir, options.target, opt_level, use_cache=use_cache, timer=timer, handoff=handoff
        )
        handoff.queue.run_idle_tasks(timer)
        with timer.phase("loading"):
            return NativeFunction(
                result.module,
                emitted.entries[entry],
                cache_source=result.source,
                compile_seconds=time.perf_counter() - t0,  # emission + cache lookup/compile + load
                cache_key=result.key,
            )
    except BaseException:
        runtime_prep.join()  # no build outlives a failed compile (runtime_prep.py)
        raise
    finally:
        handoff.queue.cancel()  # a cache hit or an error: the parts not started are dropped


class CompiledModule(LLVMInspection):
    """A whole module compiled for inspection: IR before/after optimisation and assembly."""

    def __init__(self, jit, entries: list[str], cache_source: str | None):
        self._jit = jit
        self.entries = entries
        self.cache_source = cache_source
        self.cache_hit = cache_source is not None

    def _llvm_source(self):
        return self._jit


def emit_llvm(module: ModuleOp, *, opt_level: int = 3, use_cache: bool = True, timer=NO_TIMER) -> CompiledModule:
    """Compile every function of `module` (entry points for each public, buffer-only,
    result-less function) and return the inspection texts."""
    from xdsl.dialects.builtin import MemRefType
    from xdsl.dialects.func import FuncOp

    entries = [
        op.sym_name.data
        for op in module.ops
        if isinstance(op, FuncOp)
        and (op.sym_visibility is None or op.sym_visibility.data == "public")
        and not op.function_type.outputs.data
        and all(isinstance(t, MemRefType) for t in op.function_type.inputs.data)
    ]
    options = EmitOptions(target=host_target())
    handoff = pipelined_compile(options.target, opt_level)
    try:
        with timer.phase("LLVM IR emission"):
            emitted = emit_module(module, entries, options, hand_off=handoff)
        result = load_or_compile(
            emitted.llvm_ir, options.target, opt_level, use_cache=use_cache, timer=timer, handoff=handoff
        )
    finally:
        handoff.queue.cancel()
    return CompiledModule(result.module, entries, result.source)
