"""A large kernel as one function per group of top-level ops (mixin of FunctionBodyEmitter).

Why: LLVM's O3 pipeline and code generator take time superlinear in the size
of one function (from 4 to 16 dense layers, 4x the code of a train step's
kernel, LoopVectorizePass and GVNPass took 13x longer). Cut into functions of
bounded size, the same code costs about linear time, and the pieces can be
compiled separately (jit.py compiles them on two threads).

Algorithm: the top-level ops of an entry function's body (the kernel the
entry points call, with `noalias` buffers) are grouped, in order, into
segments of at least `EmitOptions.segment_ops` ops (counting nested ops;
where the ops repeat, the cuts follow the repeats: segment_repeats.py).
Each segment becomes an internal `noinline` function

    <name>.segment<k>(inputs..., workspace) -> {outputs...}

called from the kernel in the segment's place. Inputs are the values the
segment uses from before it (buffers keep their `noalias`, alignment and
`dereferenceable` facts: `_copy_buffer_facts` of parallel_emit.py, the same
facts an outlined parallel loop gets), outputs the values it defines that
later ops use. Constants are emitted again inside (trip counts stay
constant), and top-level `memref.alloc`/`memref.alloca`/`arith.constant`
stay in the kernel, ahead of every segment (they have no operands and no
effect, so moving them earlier changes nothing; a stack slot must live in
the kernel's frame, not in a segment's). The segment functions are emitted
heaviest first, then their calls in the block's order; the kernel, calls
only, is `optnone` (compiled with the entry points at O0). The workspace
accesses keep their scoped-noalias tags (one scope per buffer, shared by
all segments). Kernels below the threshold, functions reached through
`func.call`, outlined bodies and multi-block bodies are emitted as before.

Before (loop-level IR of a kernel @k)    After (LLVM IR)
    scf.for ... (forward, 60 ops)            define internal {i64} @k.segment1(ptr noalias %a0, ..., ptr %ws) noinline
    scf.for ... (backward, 80 ops)           define internal void @k.segment2(ptr noalias %a0, ..., i64 %n, ptr %ws)
                                                 noinline
                                             define void @k(...) {
                                                 %r = call @k.segment1(...); ... call @k.segment2(..., %n, ...) }
"""

from __future__ import annotations

from typing import NamedTuple

from llvmlite import ir
from xdsl.dialects.builtin import MemRefType
from xdsl.ir import Block, Operation, SSAValue

from ..ir_walk import walk_ops
from ..per_class import subclass_test
from .fast_builder import FastBuilder
from .llvm_print import function_text, prototype_text
from .llvm_types import PTR, llvm_type
from .segment_repeats import group_signature, plan_with_repeats

# Top-level ops that stay in the kernel (no operands, no effect: see the module docstring).
KERNEL_OPS = ("arith.constant", "memref.alloc", "memref.alloca")

# Verified copies of a repeat are not emitted (_Repeats); tests switch it off to compare.
SKIP_VERIFIED_REPEATS = True

# A cut kernel is `optnone`, compiled with the entry points (_emit_segmented_block); benchmarks
# switch it off to compare.
KERNEL_WITH_ENTRY_POINTS = True


def op_count(op: Operation) -> int:
    """The op and every op nested in it (the weight of a top-level op)."""
    return len(walk_ops(op))


class SegmentPlan(NamedTuple):
    segments: list[list[Operation]]  # consecutive top-level ops, each group one function
    copy_of: list[int | None]  # per segment: the first segment of the repeat it belongs to (segment_repeats.py)
    weights: list[int]  # per segment: its nested ops (emission_order)


def plan_segments(block: Block, segment_ops: int) -> SegmentPlan | None:
    """Groups of consecutive top-level ops of `block` to outline, or None to emit the block whole.

    Groups hold at least `segment_ops` nested ops, cut where the sequence of ops repeats
    (segment_repeats.py: repeats in groups of at least half of that); the last group is merged
    into the one before when smaller than half of that. Ops of KERNEL_OPS and the terminator
    belong to no group.
    """
    if segment_ops <= 0:
        return None
    ops = [op for op in block.ops if not (op.name in KERNEL_OPS and not op.operands or op is block.last_op)]
    weight = {op: op_count(op) for op in ops}
    segments, copy_of = plan_with_repeats(ops, list(weight.values()), segment_ops)
    if len(segments) < 2 or any(_defines_buffer(seg) for seg in segments):
        return None
    return SegmentPlan(segments, copy_of, [sum(weight[op] for op in seg) for seg in segments])


def _defines_buffer(ops: list[Operation]) -> bool:
    """Whether a top-level op of `ops` defines a memref (segments return scalars only)."""
    return any(isinstance(r.type, MemRefType) for op in ops for r in op.results)


class SegmentEmitter:
    """Mixin: needs `values`, `buffers`, `builder`, `_emit_op`, `mctx`, `info`, `llfn`, `workspace`."""

    segmented = False  # set by emit(): the body was cut into segment functions

    def _segments(self, block: Block) -> SegmentPlan | None:
        if getattr(self, "outlined", False) or self.info.name not in self.mctx.noalias_functions:
            return None
        return plan_segments(block, self.mctx.options.segment_ops)

    def _emit_segmented_block(self, block: Block, plan: SegmentPlan) -> None:
        """Emit `block` with each segment of `plan` as a call to its own function.

        The kernel's own ops (KERNEL_OPS: no operands, no effect) are emitted first, then the
        segment functions, heaviest first (`emission_order`: LLVM may start on each as soon as
        it is done, part_handoff.py, so the longest compile starts earliest), then the calls,
        in the block's order."""
        # What remains of the kernel is segment calls and workspace addresses: compiled with the
        # entry points, without LLVM's pipeline and at O0 (module_split.py), as a module of its own
        # it cost 5-9 ms of LLVM's time (code generation of calls passing many arguments at O3).
        if KERNEL_WITH_ENTRY_POINTS:
            self.llfn.attributes.add("noinline")
            self.llfn.attributes.add("optnone")
        segments = plan.segments
        in_segment = {op for seg in segments for op in seg}
        ops = list(block.ops)
        for op in ops[:-1]:
            if op not in in_segment:
                self._emit_op(op)
        hand_off = self.mctx.hand_off
        first = self.mctx.segment_functions + 1  # numbered in the block's order, whatever the emission order
        self.mctx.segment_functions += len(segments)
        repeats = _Repeats(plan) if self.mctx.segment_dedup is not None and SKIP_VERIFIED_REPEATS else None
        emitted = {}
        order = emission_order(plan.weights)
        for k in order:
            fn, new, text, interface = self._emit_segment_function(segments[k], first + k, repeats, k)
            emitted[k] = (fn, interface)
            if hand_off is not None and new:  # LLVM may start on it now (part_handoff.py)
                hand_off.segment_done(self.mctx.llmod, fn, last=k == order[-1], text=text)
        for k in range(len(segments)):
            self._emit_segment_call(*emitted[k])
        self._emit_top_op(ops[-1])

    def _emit_top_op(self, op: Operation) -> None:
        if op.name == "func.return":
            self._emit_return(op)
        else:
            self._emit_op(op)

    def _segment_interface(self, ops: list[Operation]) -> tuple[list, list, list]:
        """(inputs, constants re-emitted inside, outputs) of the segment `ops`, in a fixed order."""
        # One walk; sets of ids, as SSA values and ops compare by identity (their Python-level
        # __hash__ was most of this function's time).
        nested = [inner for op in ops for inner in walk_ops(op)]
        inside = set(map(id, nested))
        inputs: list[SSAValue] = []
        constants: list[Operation] = []
        seen: set[int] = set()
        for inner in nested:
            for v in inner.operands:
                if id(v) in seen:
                    continue
                owner = v.owner
                if _IS_OPERATION[owner.__class__]:  # isinstance on xDSL's ABCs was a fifth of this function's time
                    if id(owner) in inside:
                        continue
                else:  # a block argument: of a region nested in the segment (an induction variable...)?
                    parent = owner.parent_op()
                    if parent is not None and id(parent) in inside:
                        continue
                    owner = None
                seen.add(id(v))
                if owner is not None and owner.name == "arith.constant":
                    constants.append(owner)
                else:
                    inputs.append(v)
        outputs: list[SSAValue] = []
        for op in ops:
            block = op.parent_block()
            for r in op.results:
                if any(id(_top_level(use.operation, block)) not in inside for use in r.uses):
                    outputs.append(r)
        return inputs, constants, outputs

    def _emit_segment_function(
        self, ops: list[Operation], number: int, repeats: _Repeats | None = None, position: int = 0
    ) -> tuple[ir.Function, bool, str | None, tuple]:
        """Emit `ops` as segment function number `number`: (the function its call calls, whether
        that is this new one, its text when printed, its interface). A duplicate of a segment
        emitted before is deleted; its call calls that one (segment_dedup.py). `repeats`: the
        plan's repeats, whose verified copies are not emitted at all (`_Repeats`)."""
        inputs, constants, outputs = self._segment_interface(ops)
        output_types = [llvm_type(v.type) for v in outputs]
        ret = ir.LiteralStructType(output_types) if output_types else ir.VoidType()
        # An input an earlier segment computes has no value in the kernel yet: its type is the value's.
        params = [self.values[v].type if v in self.values else llvm_type(v.type) for v in inputs] + [PTR]
        name = self.mctx.symbol(f"{self.info.name}.segment{number}")
        fn = ir.Function(self.mctx.llmod, ir.FunctionType(ret, params), name=name)
        fn.linkage = "internal"
        self.mctx.set_target_attributes(fn)
        fn.attributes.add("noinline")  # the point is a function LLVM optimises on its own
        for arg, v in zip(fn.args, inputs):
            self._copy_buffer_facts(arg, v)
        workspace = fn.args[-1]
        workspace.name = "workspace"
        for attr in ("noalias", "noundef"):
            workspace.add_attribute(attr)
        workspace.attributes.align = 64
        kept = repeats.verified_copy(position, fn, ops) if repeats is not None else None
        if kept is not None:
            self.mctx.segment_dedup.drop(fn)
            return kept, False, None, (inputs, outputs)

        sub = type(self)(self.mctx, self.info, fn)
        sub._alias_tags = self._workspace_alias_tags()  # one scope per buffer across all segments
        entry = fn.append_basic_block("entry")
        start = fn.append_basic_block("body")
        sub._alloca_builder = FastBuilder(entry)
        sub.builder = FastBuilder(start)
        for v, arg in zip(inputs, fn.args):
            sub.values[v] = arg
            if v in self.buffers:
                sub.buffers[v] = self.buffers[v]
        for const in constants:
            sub._emit_op(const)
        for op in ops:
            sub._emit_op(op)
        if outputs:
            packed = ir.Constant(ret, ir.Undefined)
            for k, v in enumerate(outputs):
                packed = sub.builder.insert_value(packed, sub.value(v), k)
            sub.builder.ret(packed)
        else:
            sub.builder.ret_void()
        sub._alloca_builder.branch(start)
        text = kept = None
        if self.mctx.segment_dedup is not None:
            text = function_text(fn)
            kept = self.mctx.segment_dedup.same_as(fn, text)
        if repeats is not None:
            repeats.emitted(position, kept or fn)
        return (kept or fn), kept is None, text, (inputs, outputs)

    def _emit_segment_call(self, fn: ir.Function, interface: tuple) -> None:
        inputs, outputs = interface
        result = self.builder.call(fn, [self.value(v) for v in inputs] + [self.workspace])
        for k, v in enumerate(outputs):
            self.values[v] = self.builder.extract_value(result, k)


class _Repeats:
    """Copies of a repeat (segment_repeats.py) that need not be emitted: once one copy was emitted
    and found the same code as the repeat's first (segment_dedup.py's key on the LLVM IR), a later
    copy with the same structure (`group_signature`: the same ops, types, constants and sharing of
    outside values) and the same prototype (argument types and buffer facts) would be the same code
    too: the emitter's output depends on nothing else. Such a copy calls the first's function
    without being emitted (a 16-layer step emitted 20 copies and dropped them: a third of its
    emission). Copies allocating buffers (workspace offsets of their own) are always emitted."""

    def __init__(self, plan: SegmentPlan):
        self.copy_of = plan.copy_of
        self.segments = plan.segments
        self._callee: dict[int, ir.Function] = {}  # first of a repeat -> the function its calls call
        self._verified: set[int] = set()  # repeats of which a copy was the first's code
        self._prototype: dict[int, str] = {}
        self._signature: dict[int, tuple] = {}

    def verified_copy(self, k: int, fn: ir.Function, ops: list[Operation]) -> ir.Function | None:
        """The function segment `k` (`fn`, its prototype made, body not yet) may call instead, or None."""
        first = self.copy_of[k]
        if first is None or first == k or first not in self._verified:
            return None
        if _prototype_text(fn) != self._prototype[first] or any(
            inner.name in ("memref.alloc", "memref.alloca") for op in ops for inner in walk_ops(op)
        ):
            return None
        if first not in self._signature:
            self._signature[first] = group_signature(self.segments[first])
        if group_signature(ops) != self._signature[first]:
            return None
        return self._callee[first]

    def emitted(self, k: int, callee: ir.Function) -> None:
        """Segment `k` was emitted; its calls call `callee` (itself, or the same code emitted before)."""
        first = self.copy_of[k]
        if first is None:
            return
        if first == k:
            self._callee[k] = callee
            self._prototype[k] = _prototype_text(callee)
        elif self._callee.get(first) is callee:
            self._verified.add(first)


def _prototype_text(fn: ir.Function) -> str:
    """`fn`'s prototype without its name (nor `define` / `declare`: whether it has a body yet)."""
    return prototype_text(fn).split(" ", 1)[1].replace(f'@"{fn.name}"(', "@SELF(", 1)


def emission_order(weights: list[int]) -> list[int]:
    """The positions of the segments weighing `weights` (nested ops), heaviest first (ties: the block's order).

    Why: the worker thread compiles each segment's part while Python emits the rest
    (part_handoff.py); the heaviest emitted first is the longest compile started earliest, so
    that when emission ends the remaining work splits evenly over the two threads."""
    return sorted(range(len(weights)), key=lambda k: (-weights[k], k))


def _top_level(op: Operation, block: Block) -> Operation:
    """The ancestor of `op` (or `op` itself) that is an op of `block`."""
    while op.parent is not block:  # `parent_block()`, without the call
        op = op.parent_op()
    return op


# class of an SSA value's owner -> whether it is an Operation (else a Block)
_IS_OPERATION = subclass_test(Operation)
