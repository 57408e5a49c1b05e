"""Loop-level module (func/scf/arith/math/memref) -> one llvmlite `ir.Module`.

Algorithm:
1. `analyse_module` (analysis.py) checks buffer types, finds the written
   arguments and lays out each function's workspace.
2. Every `func.func` becomes an LLVM function taking its buffers as `ptr`
   (scalars as themselves) plus a trailing workspace `ptr`; private functions
   get internal linkage so that LLVM may inline and drop them.
3. Bodies are translated by `FunctionBodyEmitter` (llvm_body.py).
4. Each requested entry gets two entry points (llvm_entry.py): the packed
   wrapper `void <name>_packed(ptr args)` and the validating
   `i64 <name>_checked(ptr args_tuple)` used by the fast call path.
5. The text is printed by llvm_print.py (llvmlite's text, printed faster).

Vectorisation hints, each on purpose:
- Fast-math flags `reassoc contract` on float arithmetic by default
  (`EmitOptions.fastmath`). `reassoc` is what lets the loop vectoriser
  reorder a float reduction (the matvec's inner sum); `contract` lets the
  backend fuse `a*b+c` into FMA. Not `nnan`/`ninf`: we keep NaN and inf
  semantics (a NaN loss must stay visible). Not `nsz`: no reduction we emit
  needs it (the vectoriser starts an fadd reduction from the scalar start
  value) and `-0.0` results stay exact. Not `arcp`/`afn`: they change
  results by more than a re-association.
- `llvm.loop` metadata `llvm.loop.vectorize.enable` on the loops that
  `loop_hints.should_force_vectorize` accepts (innermost, no calls, no libm
  maths, no loop-carried memory dependence): it overrides the cost model's
  hesitation (runtime alias checks, short trip counts) and, like
  `reassoc`, licenses reordering a float reduction. It is not put on every
  loop because LLVM prints a "loop not vectorized" warning on stderr for
  each forced loop it cannot vectorise, and because loops calling
  exp/log/tanh gain nothing (x86 lowers a vector `llvm.exp` back to one
  scalar libm call per lane). Outer loops get nothing: LLVM vectorises
  innermost loops only.
- Buffer arguments: `noundef captures(none) dereferenceable(<nbytes>)
  align(<alignment>)`, plus `noalias` on the entry functions' buffers. The
  `noalias` promise holds because the call path (call.py) refuses a call in
  which a written buffer overlaps any other argument (read-only buffers may
  overlap each other: LLVM's `noalias` only constrains memory that is
  modified). Functions also called through `func.call` get no `noalias`: a
  caller may pass one buffer twice; LLVM inlines them into the entry, where
  the entry's promises apply. Alignment is the element size by default: a
  numpy array is only guaranteed that (`align 64` on a 16-byte-aligned array
  would be undefined behaviour); an `ArgSpec.align` of 64 is honoured when
  the caller guarantees and the call path checks it. The workspace pointer
  is always `noalias align 64`.
- Unroll-and-jam by 4 of reduction nests whose inner loop shares a load
  across outer iterations (`EmitOptions.jam`, jam.py): register blocking
  that LLVM's own unroll-and-jam cannot do in the O3 pipeline. It takes a
  128x784 f64 matvec from about numpy's time to about 0.8 of it.
- Function attributes `"target-cpu"`/`"target-features"` from the host and
  `"prefer-vector-width"="512"` when the host has avx512f (LLVM otherwise
  limits the vectoriser to 256-bit vectors on such CPUs).
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from llvmlite import ir
from xdsl.dialects.builtin import ModuleOp

from ..errors import CompileError
from .analysis import BufferType, ModuleInfo, analyse_module
from .entry_abi import EntryABI
from .llvm_body import FunctionBodyEmitter
from .llvm_entry import emit_entry_points
from .llvm_print import module_text
from .llvm_remarks import LOOP_NAME_KEY
from . import segment_dedup
from .loop_hints import describe_loop, nested_ops, rolls_over_a_long_reduction, trip_count, vectorize_hint
from .llvm_types import PTR, llvm_type
from .specs import ArgSpec, reconcile_specs
from .target import HostTarget, host_target

DEFAULT_FASTMATH = ("contract", "reassoc")
SEGMENT_OPS = 40  # the default of EmitOptions.segment_ops
ALLOWED_FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp", "afn", "nnan", "ninf"})


@dataclass(frozen=True)
class EmitOptions:
    """Choices the emitter makes; all of them are part of the emitted IR text."""

    fastmath: tuple[str, ...] = DEFAULT_FASTMATH
    loop_vectorize_hints: bool = True
    # None: 512 on avx512f hosts, else LLVM's own choice; 0: never set.
    prefer_vector_width: int | None = None
    # Unroll-and-jam factor for reduction nests (jam.py); 0 or 1 disables.
    jam: int = 4
    # Run loops marked `raster.parallel` on the thread pool (parallel_emit.py); False: serially.
    threads: bool = True
    # Transcendental math ops as inline vectorisable code (vmath/); False: libm calls.
    vector_math: bool = True
    # Kernels larger than this (ops, nested ones counted) become one function per group of
    # top-level ops of about this size (segment_emit.py); 0: one function.
    segment_ops: int = field(default_factory=lambda: SEGMENT_OPS)
    # Segments with the same code compiled once (segment_dedup.py); False: each its own function.
    merge_identical_segments: bool = field(default_factory=lambda: segment_dedup.MERGE_IDENTICAL_SEGMENTS)
    target: HostTarget = field(default_factory=host_target)

    def __post_init__(self):
        bad = set(self.fastmath) - ALLOWED_FASTMATH
        if bad:
            raise CompileError(f"unknown fast-math flag(s) {sorted(bad)}; allowed: {sorted(ALLOWED_FASTMATH)}")

    @property
    def vector_width(self) -> int | None:
        if self.prefer_vector_width is None:
            return self.target.prefer_vector_width
        return self.prefer_vector_width or None


@dataclass(frozen=True)
class EmittedModule:
    llvm_ir: str
    entries: dict[str, EntryABI]
    llmod: ir.Module | None = None  # the module printed (llvm_release.py frees it once compiled)


class _FunctionAttributes(ir.values.FunctionAttributes):
    """llvmlite's function attribute set plus `"key"="value"` string attributes."""

    def __init__(self, args=()):
        super().__init__(args)
        self.strings: dict[str, str] = {}

    def _to_list(self, ret_type):
        return super()._to_list(ret_type) + [f'"{k}"="{v}"' for k, v in sorted(self.strings.items())]

    def __bool__(self):
        # llvmlite prints the attribute list only if the set is truthy.
        return bool(self.strings) or len(self) > 0


class _LoopID(ir.values.NamedValue):
    """A distinct, self-referencing loop ID node: `!7 = distinct !{!7, !props...}`.

    LLVM only recognises loop metadata whose first operand is the node
    itself; llvmlite's MDValue cannot express that, hence this class.
    """

    name_prefix = "!"

    def __init__(self, module: ir.Module, properties: list):
        super().__init__(module, ir.MetaDataType(), name=str(len(module.metadata)))
        self.properties = properties
        module.metadata.append(self)

    def descr(self, buf):
        refs = ", ".join([self.get_reference()] + [p.get_reference() for p in self.properties])
        buf += (f"distinct !{{ {refs} }}", "\n")

    def _get_reference(self):
        return f"!{self.name}"


# The attribute lower-to-loops puts on the scf loops of raster.for / scan / while
# (passes/lower_control.py LOOP_KIND_ATTR; the backend does not import the passes).
TIME_LOOP_ATTR = "raster.loop"
# Forced loops of at most this many iterations that call vector maths are vectorised before LLVM may
# unroll them (loop_metadata).
SHORT_LOOP = 32

_PROCESS = ctypes.CDLL(None)


def _process_has_symbol(name: str) -> bool:
    try:
        _PROCESS[name]  # dlsym in the running process (libc, libm, Python, numpy...)
    except AttributeError:
        return False
    return True


class ModuleEmitter:
    """Holds the state shared by the function emitters of one module.

    Symbol names: an LLVM function keeps its xDSL name (the entry points are
    `<name>_packed`, `<name>_checked`, the table `<name>_rt`) unless that
    name is already a symbol of the running process or an `llvm.` name.
    Then it becomes `rm.<name>`: MCJIT binds the object's undefined
    references (the `exp` that `llvm.exp` lowers to, `memcpy`...) to symbols
    of the object first, so a user function called `exp` or `log` would
    otherwise hijack every such call. A remaining clash is a CompileError.
    """

    def __init__(
        self, module: ModuleOp, options: EmitOptions, verified: bool = False, on_parallel_loops=None, hand_off=None
    ):
        self.options = options
        # Receives each finished group of kernel segments, for LLVM to start on (part_handoff.py).
        self.hand_off = hand_off
        # Called once when the first parallel loop is emitted (runtime_prep.py starts the pool's build).
        self.on_parallel_loops = on_parallel_loops
        self.info: ModuleInfo = analyse_module(module, verified)
        self.llmod = ir.Module(name="raster_mlir")
        self.llmod.triple = options.target.triple
        self.llmod.data_layout = options.target.data_layout
        self.llvm_functions: dict[str, ir.Function] = {}
        self._vectorize_enable = None
        self._unroll_after_vectorising = None
        self._vectorize_width_1 = None
        self._forced_loops: dict[str, int] = {}  # per function, to name each forced loop
        self._sequential = None
        self._unroll_disable = None
        self._symbols: set[str] = set()
        # Functions whose buffer arguments carry `noalias` (jam.py relies on it).
        self.noalias_functions: set[str] = set()
        self.parallel_loops = 0  # outlined so far (their names are numbered)
        self.segment_functions = 0  # kernel segments so far (segment_emit.py; numbered the same way)
        # Finds the segments that duplicate one emitted before (segment_dedup.py).
        self.segment_dedup = segment_dedup.SegmentDedup(self.llmod) if options.merge_identical_segments else None
        self._parallel_runtime: ir.GlobalVariable | None = None
        # (math op, type) -> its vmath function (vmath/__init__.py)
        self.vector_math_functions: dict = {}

    @property
    def scalar_call_ops(self) -> frozenset[str]:
        """Math ops that become scalar libm calls (loop_hints does not force loops calling them)."""
        from .llvm_ops import LIBM_OPS
        from .vmath import VECTOR_MATH_OPS

        return LIBM_OPS - VECTOR_MATH_OPS if self.options.vector_math else LIBM_OPS

    def _calls_vector_maths(self, ops) -> bool:
        """True when `ops` (a loop's nested ops) compute a math op that vmath/ emits as inlined polynomial code."""
        if not self.options.vector_math:
            return False
        from .vmath import VECTOR_MATH_OPS

        return any(op.name in VECTOR_MATH_OPS for op in ops)

    def symbol(self, wanted: str) -> str:
        """A free LLVM symbol name for `wanted` (policy in the class docstring)."""
        name = wanted
        if name.startswith("llvm.") or name in self._symbols or _process_has_symbol(name):
            name = f"rm.{wanted}"
        if name in self._symbols:
            raise CompileError(f"symbol {wanted!r} is needed twice in one module (rename the function)")
        self._symbols.add(name)
        return name

    # ---- services used by the body emitters -------------------------------

    def declare(self, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
        """Declare (once) an external function or intrinsic."""
        existing = self.llmod.globals.get(name)
        if existing is not None:
            if existing in self.llvm_functions.values():
                raise CompileError(f"internal error: external symbol {name!r} clashes with a module function")
            return existing
        fn = ir.Function(self.llmod, ir.FunctionType(ret, args), name=name)
        fn.attributes.add("nounwind")
        return fn

    def loop_metadata(self, loop, fn_name: str):
        """A fresh loop ID for one scf.for `loop` of @fn_name, or None (policy in the module docstring).

        The hint comes from loop_hints.vectorize_hint: "force" adds
        `llvm.loop.vectorize.enable` and the loop's name (`raster.loop`, which
        LLVM ignores and keeps), so a loop LLVM then fails to vectorise can be
        named (llvm_remarks.loops_not_vectorized); "off" (a loop indexed through
        memory) asks for vector width 1, since the loop vectoriser would need
        gathers and the SLP vectoriser still packs the lanes of one iteration.

        A forced loop of at most SHORT_LOOP iterations that computes a vector maths
        function (inlined polynomial code, vmath/) is also vectorised before it
        may be unrolled: `llvm.loop.unroll.disable` keeps O3's early full unrolling
        (which runs before the loop vectoriser) away from it, and
        `llvm.loop.vectorize.followup_all` gives the vectorised loop and its
        remainder fresh properties (`llvm.loop.isvectorized` only), so the late
        unroller may still unroll them. Unrolled first, a 10-class softmax was 10
        inlined copies of exp and 10 scalar calls of log, which the SLP vectoriser
        then re-packed into vectors of 4, 2 and 2: the heaviest segment of the 2-layer
        train step cost LLVM 62 ms instead of 54, and the gradient of a 16-wide tanh RNN
        ran 1.5x slower. Not for longer loops: unroll.disable also sets the
        vectoriser's interleave count to 1 (logsumexp over 1,000 elements ran 1.4x slower);
        not for loops of plain arithmetic, which unroll cheaply and whose sums keep the
        rounding they had (a test compares a 7-element f32 sum with the reference bitwise).

        A time loop (rm.fori_loop / scan / while, marked `raster.loop` by
        lower-to-loops) is never unrolled: each step depends on the one before, so
        unrolling gains little at run time, while fully unrolling a short one (10
        steps of a vectorised body) tripled LLVM's optimisation and code generation
        time (damped spring, N = 10: 86 against 41 ms).

        Nor is a loop around a reduction loop that LLVM's early full unrolling cannot remove
        (loop_hints.rolls_over_a_long_reduction): O3's late unroller fully unrolled the 10-row
        loop around a vectorised 128-element dot product (the 2-layer train step's output
        layer) into 1,238 straight-line instructions, a third of the step's LLVM time (its
        heaviest part 52 -> 28 ms), for no measurable gain at run time (bench_llvm_work.py).
        Loops around short loops (3x3 and 4x4 programs) are still unrolled, and so is a loop
        whose inner loop LLVM may unroll before vectorising: it may become the vectorised loop,
        whose interleave count unroll.disable would set to 1 (a batch-64 train step ran 1.8x
        slower). Like the vectorisation hints, only with `loop_vectorize_hints`.
        """
        hints = self.options.loop_vectorize_hints  # off: LLVM's own choices, except for time loops
        ops = nested_ops(loop) if hints else None  # walked once for every question below
        properties = self._vectorize_properties(loop, fn_name, ops) if hints else []
        if TIME_LOOP_ATTR in loop.attributes or (hints and rolls_over_a_long_reduction(loop, ops)):
            properties.append(self._unroll_disable_property())
        return _LoopID(self.llmod, properties) if properties else None

    def _unroll_disable_property(self):
        if self._unroll_disable is None:
            self._unroll_disable = self.llmod.add_metadata([ir.MetaDataString(self.llmod, "llvm.loop.unroll.disable")])
        return self._unroll_disable

    def _vectorize_properties(self, loop, fn_name: str, ops) -> list:
        hint = vectorize_hint(loop, fn_name, self.scalar_call_ops, ops)
        if hint is None:
            return []
        if hint == "off":
            if self._vectorize_width_1 is None:
                self._vectorize_width_1 = self.llmod.add_metadata(
                    [ir.MetaDataString(self.llmod, "llvm.loop.vectorize.width"), ir.Constant(ir.IntType(32), 1)]
                )
            return [self._vectorize_width_1]
        md, i32 = self.llmod.add_metadata, ir.IntType(32)
        if self._vectorize_enable is None:
            self._vectorize_enable = md(
                [ir.MetaDataString(self.llmod, "llvm.loop.vectorize.enable"), ir.Constant(ir.IntType(1), 1)]
            )
        short = (trip_count(loop) or SHORT_LOOP + 1) <= SHORT_LOOP and self._calls_vector_maths(ops)
        if short and self._unroll_after_vectorising is None:
            self._unroll_after_vectorising = [
                self._unroll_disable_property(),
                md([
                    ir.MetaDataString(self.llmod, "llvm.loop.vectorize.followup_all"),
                    md([ir.MetaDataString(self.llmod, "llvm.loop.isvectorized"), ir.Constant(i32, 1)]),
                ]),
            ]
        ordinal = self._forced_loops[fn_name] = self._forced_loops.get(fn_name, 0) + 1
        name = f"@{fn_name} forced loop {ordinal}: {describe_loop(loop, fn_name, ops)}"
        name_property = self.llmod.add_metadata(
            [ir.MetaDataString(self.llmod, LOOP_NAME_KEY), ir.MetaDataString(self.llmod, name)]
        )
        return [self._vectorize_enable, name_property] + (self._unroll_after_vectorising if short else [])

    def sequential_loop_metadata(self):
        """A fresh loop ID forbidding LLVM to vectorise, interleave or unroll the loop itself.

        For the iterations of a parallel loop's share (parallel_emit.py): whether an
        iteration ran in a vector body or a remainder would otherwise depend on where
        the share starts, and so would the rounding of its reductions. Set whatever
        `loop_vectorize_hints` says.
        """
        if self._sequential is None:
            i32 = ir.IntType(32)
            self._sequential = [
                self.llmod.add_metadata([ir.MetaDataString(self.llmod, "llvm.loop.vectorize.width"), ir.Constant(i32, 1)]),
                self.llmod.add_metadata([ir.MetaDataString(self.llmod, "llvm.loop.interleave.count"), ir.Constant(i32, 1)]),
                self._unroll_disable_property(),
            ]
        return _LoopID(self.llmod, list(self._sequential))

    def parallel_runtime(self) -> ir.GlobalVariable:
        """The module's `[dispatch, reduction_blocks]` pointers, filled by pool.install at load time."""
        if self._parallel_runtime is None:
            from .pool import RUNTIME_GLOBAL

            if self.on_parallel_loops is not None:
                self.on_parallel_loops()
            table = ir.GlobalVariable(self.llmod, ir.ArrayType(PTR, 2), name=self.symbol(RUNTIME_GLOBAL))
            table.initializer = ir.Constant(ir.ArrayType(PTR, 2), [ir.Constant(PTR, None)] * 2)
            table.align = 16
            self._parallel_runtime = table
        return self._parallel_runtime

    def set_target_attributes(self, fn: ir.Function) -> None:
        attrs = _FunctionAttributes()
        attrs.add("nounwind")
        attrs.strings["target-cpu"] = self.options.target.cpu_name
        if self.options.target.features:
            attrs.strings["target-features"] = self.options.target.features
        if self.options.vector_width:
            attrs.strings["prefer-vector-width"] = str(self.options.vector_width)
        fn.attributes = attrs

    # ---- emission ---------------------------------------------------------

    def emit(self, entries: Mapping[str, Sequence[ArgSpec] | None]) -> EmittedModule:
        specs: dict[str, list[ArgSpec]] = {}
        for name in entries:
            info = self.info.functions.get(name)
            if info is None:
                raise CompileError(f"entry function @{name} is not defined in the module")
            if info.op.function_type.outputs.data:
                raise CompileError(
                    f"entry function @{name} returns values; entries must write results into argument buffers"
                )
            if len(info.buffer_arg_indices()) != len(info.arg_types):
                raise CompileError(f"entry function @{name} takes non-memref arguments; entries take buffers only")
            specs[name] = reconcile_specs(info, entries[name])
        for name in self.info.order:
            self._declare_function(name, specs.get(name))
        for name in self.info.order:
            info = self.info.functions[name]
            body = FunctionBodyEmitter(self, info, self.llvm_functions[name])
            body.emit()
            if self.hand_off is not None and body.segmented:  # its part may start now (part_handoff.py)
                self.hand_off.kernel_done(self.llmod, self.llvm_functions[name])
        abis = {name: emit_entry_points(self, self.info.functions[name], specs[name]) for name in entries}
        text = module_text(self.llmod) if self.hand_off is None else self.hand_off.module_text(self.llmod)
        return EmittedModule(llvm_ir=text, entries=abis, llmod=self.llmod)

    def _declare_function(self, name: str, specs: list[ArgSpec] | None) -> None:
        """Declare `name`; `specs` is given for entry functions only."""
        info = self.info.functions[name]
        entry = specs is not None
        outputs = info.op.function_type.outputs.data
        if len(outputs) > 1:
            raise CompileError(f"@{name} returns {len(outputs)} values; at most one scalar is supported")
        ret = llvm_type(outputs[0]) if outputs else ir.VoidType()
        params = [llvm_type(t) if not isinstance(t, BufferType) else PTR for t in info.arg_types]
        fn = ir.Function(self.llmod, ir.FunctionType(ret, params + [PTR]), name=self.symbol(name))
        if info.is_private and not entry:
            fn.linkage = "internal"
        self.set_target_attributes(fn)
        # noalias only where the call path guarantees it (module docstring).
        promise_noalias = entry and not info.called_internally
        if promise_noalias:
            self.noalias_functions.add(name)
        for i, t in enumerate(info.arg_types):
            if not isinstance(t, BufferType):
                continue
            arg = fn.args[i]
            arg.add_attribute("noundef")
            arg.add_attribute("captures(none)")
            if promise_noalias:
                arg.add_attribute("noalias")
            if t.nbytes:
                arg.attributes.dereferenceable = t.nbytes
            arg.attributes.align = (specs[i].align if entry else None) or t.itemsize
            arg.name = info.op.body.blocks.first.args[i].name_hint or f"arg{i}"
        ws = fn.args[-1]
        ws.name = "workspace"
        for attr in ("noalias", "noundef", "captures(none)"):
            ws.add_attribute(attr)
        ws.attributes.align = 64
        if info.workspace_bytes:
            ws.attributes.dereferenceable = info.workspace_bytes
        self.llvm_functions[name] = fn


def emit_module(
    module: ModuleOp,
    entries: Mapping[str, Sequence[ArgSpec] | None] | Sequence[str],
    options: EmitOptions | None = None,
    verified: bool = False,
    on_parallel_loops=None,
    hand_off=None,
) -> EmittedModule:
    """Translate `module` to LLVM IR text with entry points for `entries`.

    `entries` maps each entry function's name to its ArgSpecs (or None to
    derive them from the IR); a plain list of names means None for each.
    `verified`: the caller has just verified `module` (it is not verified again).
    `on_parallel_loops`: called when the module turns out to have parallel loops.
    `hand_off`: a part_handoff.SegmentHandOff that gets each finished group of kernel segments.
    """
    if not isinstance(entries, Mapping):
        entries = dict.fromkeys(entries)
    return ModuleEmitter(module, options or EmitOptions(), verified, on_parallel_loops, hand_off).emit(entries)
