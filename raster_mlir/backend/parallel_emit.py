"""Emission of a loop marked `raster.parallel` (mixin of FunctionBodyEmitter).

The mark comes from the `parallelize-loops` pass, which checks that the
iterations touch disjoint elements and that every carried value is a
reduction. Here the loop is outlined and handed to the thread pool
(pool.py):

    body(captured..., lo, hi, inits..., workspace) -> results
        the loop itself over [lo, hi), emitted by a FunctionBodyEmitter of
        its own (constants are re-emitted inside, so LLVM still sees constant
        trip counts; buffers keep their noalias/align/dereferenceable facts)
    task(ctx, begin, end)
        loads the captured values from `ctx` and runs units [begin, end):
        a unit is `grain` consecutive iterations (reductions: a unit is a block)
    parent: ctx = {captured..., workspace[, blocks, partials...]} on the stack;
        dispatch(task, ctx, units), or task(ctx, 0, units) on this thread when
        the module was never given a pool (rm.parallel_runtime null)

The grain makes the result independent of how the units are shared out:
a loop that the backend unrolls-and-jams (jam.py) gets a grain of the jam
factor, so the same iterations are jammed for any split; an innermost loop,
which LLVM vectorises, a grain of `VECTOR_GRAIN`, so chunk boundaries fall on
vector-body boundaries. A reduction is cut into `blocks` blocks (one per
thread, or a fixed number in deterministic mode: pool.py); each block is
reduced from the operation's identity into `partials[b]`, and the parent
combines `init op partial[0] op partial[1] ...` in block order.

Loops stay serial where the mark cannot be honoured: in a function reached
through `func.call` (its buffers may alias), inside an outlined body, or when
`EmitOptions.threads` is off.
"""

from __future__ import annotations

import math

from llvmlite import ir
from xdsl.ir import Operation, SSAValue

from ..ir_walk import walk_ops
from .fast_builder import FastBuilder
from .jam import _constant, _defined_inside, jam_plan
from .llvm_ops import _suffix
from .llvm_types import I64, PTR, llvm_type, splat_constant
from .pool import DETERMINISTIC_BLOCKS, RUNTIME_GLOBAL

PARALLEL_ATTR = "raster.parallel"
MAX_UNITS = 1 << 24  # the pool counts units in 32 bits
VECTOR_GRAIN = 128  # iterations per unit of an innermost (vectorised) loop
IDENTITY = {"arith.addf": -0.0, "arith.mulf": 1.0, "arith.maximumf": -math.inf, "arith.minimumf": math.inf}


class ParallelEmitter:
    """Mixin: needs `builder`, `values`, `buffers`, `value`, `_emit_op`, `_emit_for`, `mctx`, `info`, `llfn`."""

    outlined = False  # True in the emitter of an outlined body: no nested parallel loops
    sequential_loop = None  # the outlined loop when it holds other loops (see _emit_outlined)

    def _parallel_kinds(self, op: Operation) -> list[str] | None:
        attr = op.attributes.get(PARALLEL_ATTR)
        if attr is None or self.outlined or not self.mctx.options.threads:
            return None
        if self.info.name not in self.mctx.noalias_functions:
            return None
        lb, ub, step = _constant(op.lb), _constant(op.ub), _constant(op.step)
        if lb is None or ub is None or step is None or step <= 0 or ub - lb < 2:
            return None
        kinds = [k.data for k in attr.data]
        if len(kinds) != len(op.iter_args) or any(k not in IDENTITY for k in kinds):
            return None
        return kinds

    def _grain(self, op: Operation) -> int:
        plan = jam_plan(op, self.info.name, True, self.mctx.options.jam)
        if plan is not None:
            return plan.factor
        if not any(inner.name == "scf.for" for inner in walk_ops(op) if inner is not op):
            return VECTOR_GRAIN
        return 1

    def _emit_parallel_for(self, op: Operation, kinds: list[str]) -> None:
        lb, ub, step = _constant(op.lb), _constant(op.ub), _constant(op.step)
        trip = -(-(ub - lb) // step)
        grain = self._grain(op)
        units = -(-trip // grain)
        if units > MAX_UNITS:
            grain *= -(-units // MAX_UNITS)
            units = -(-trip // grain)
        captured, constants = self._captured(op)
        body = self._outline(op, captured, constants)
        task = self._emit_task(op, body, captured, kinds, (lb, ub, step, grain, units))
        self._dispatch(op, task, captured, kinds, units)

    # -- the loop body as a function ---------------------------------------------------

    def _captured(self, op: Operation) -> tuple[list[SSAValue], list[Operation]]:
        """Values the loop uses from outside (constants apart: they are emitted again inside)."""
        captured: list[SSAValue] = []
        constants: list[Operation] = []
        seen: set[SSAValue] = set()
        for inner in walk_ops(op):
            # The loop's own bounds are constants; its inits are the body's parameters.
            for v in (op.lb, op.ub, op.step) if inner is op else inner.operands:
                if v in seen or _defined_inside(v, op):
                    continue
                seen.add(v)
                owner = v.owner if isinstance(v.owner, Operation) else None
                if owner is not None and owner.name == "arith.constant":
                    constants.append(owner)
                else:
                    captured.append(v)
        return captured, constants

    def _outline(self, op: Operation, captured: list[SSAValue], constants: list[Operation]) -> ir.Function:
        result_types = [llvm_type(r.type) for r in op.results]
        params = [self.value(v).type for v in captured] + [I64, I64] + result_types + [PTR]
        ret = ir.VoidType() if not result_types else ir.LiteralStructType(result_types)
        self.mctx.parallel_loops += 1
        name = self.mctx.symbol(f"{self.info.name}.parallel{self.mctx.parallel_loops}")
        fn = ir.Function(self.mctx.llmod, ir.FunctionType(ret, params), name=name)
        fn.linkage = "internal"
        self.mctx.set_target_attributes(fn)
        for arg, v in zip(fn.args, captured):
            self._copy_buffer_facts(arg, v)
        workspace = fn.args[-1]
        for attr in ("noalias", "noundef"):
            workspace.add_attribute(attr)
        workspace.attributes.align = 64
        sub = type(self)(self.mctx, self.info, fn)
        sub.outlined = True
        sub._emit_outlined(op, captured, constants, self.buffers)
        return fn

    def _copy_buffer_facts(self, arg: ir.Argument, v: SSAValue) -> None:
        buf = self.buffers.get(v)
        if buf is None:
            return
        parent = self.value(v)
        arg.add_attribute("noundef")
        if isinstance(parent, ir.Argument):
            for attr in ("noalias",):
                if attr in parent.attributes:
                    arg.add_attribute(attr)
            arg.attributes.align = parent.attributes.align or buf.itemsize
        else:  # a workspace slice or stack slot: 64-byte aligned, distinct from every other buffer
            arg.add_attribute("noalias")
            arg.attributes.align = 64
        if buf.nbytes:
            arg.attributes.dereferenceable = buf.nbytes

    def _emit_outlined(self, op: Operation, captured, constants, parent_buffers) -> None:
        entry = self.llfn.append_basic_block("entry")
        start = self.llfn.append_basic_block("body")
        self._alloca_builder = FastBuilder(entry)
        self.builder = FastBuilder(start)
        args = self.llfn.args
        for v, arg in zip(captured, args):
            self.values[v] = arg
            if v in parent_buffers:
                self.buffers[v] = parent_buffers[v]
        n = len(captured)
        lo, hi = args[n], args[n + 1]
        inits = list(args[n + 2 : n + 2 + len(op.results)])
        for const in constants:
            self._emit_op(const)
        if any(inner.name == "scf.for" for inner in walk_ops(op) if inner is not op):
            # Once LLVM unrolls small inner loops, it could vectorise this loop across iterations:
            # then which iterations ran in the vector body would depend on the share (llvm_emit.py).
            self.sequential_loop = op
        self._emit_for(op, lb=lo, ub=hi, inits=inits)
        if op.results:
            packed = ir.Constant(self.llfn.return_value.type, ir.Undefined)
            for k, r in enumerate(op.results):
                packed = self.builder.insert_value(packed, self.values[r], k)
            self.builder.ret(packed)
        else:
            self.builder.ret_void()
        self._alloca_builder.branch(start)

    # -- the task the pool runs ---------------------------------------------------------

    def _ctx_type(self, captured, kinds) -> ir.LiteralStructType:
        fields = [self.value(v).type for v in captured] + [PTR]  # the workspace last
        if kinds:
            fields += [I64] + [PTR] * len(kinds)  # blocks, then one partials array per result
        return ir.LiteralStructType(fields)

    def _emit_task(self, op, body: ir.Function, captured, kinds, shape) -> ir.Function:
        lb, ub, step, grain, units = shape
        ctx_type = self._ctx_type(captured, kinds)
        name = self.mctx.symbol(f"{body.name}.task")
        fn = ir.Function(self.mctx.llmod, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]), name=name)
        fn.linkage = "internal"
        self.mctx.set_target_attributes(fn)
        ctx, begin, end = fn.args
        b = FastBuilder(fn.append_basic_block("entry"))
        i32 = ir.IntType(32)

        def field(k):
            return b.gep(ctx, [ir.Constant(i32, 0), ir.Constant(i32, k)], inbounds=True, source_etype=ctx_type)

        n = len(captured)
        values = [b.load(field(k), typ=ctx_type.elements[k]) for k in range(n)]
        workspace = b.load(field(n), typ=PTR)
        span = step * grain

        def iteration_range(u0, u1):
            lo = b.add(ir.Constant(I64, lb), b.mul(u0, ir.Constant(I64, span)))
            hi0 = b.add(ir.Constant(I64, lb), b.mul(u1, ir.Constant(I64, span)))
            hi = b.select(b.icmp_signed("<", hi0, ir.Constant(I64, ub)), hi0, ir.Constant(I64, ub))
            return lo, hi

        if not kinds:
            lo, hi = iteration_range(begin, end)
            b.call(body, [*values, lo, hi, workspace])
            b.ret_void()
            return fn
        blocks = b.load(field(n + 1), typ=I64)
        partials = [b.load(field(n + 2 + k), typ=PTR) for k in range(len(kinds))]
        identities = [_identity(kind, llvm_type(r.type)) for kind, r in zip(kinds, op.results)]
        loop = fn.append_basic_block("block")
        done = fn.append_basic_block("done")
        pre = b.block
        b.branch(loop)
        b.position_at_end(loop)
        blk = b.phi(I64)
        blk.add_incoming(begin, pre)
        u0 = b.sdiv(b.mul(blk, ir.Constant(I64, units)), blocks)
        u1 = b.sdiv(b.mul(b.add(blk, ir.Constant(I64, 1)), ir.Constant(I64, units)), blocks)
        lo, hi = iteration_range(u0, u1)
        result = b.call(body, [*values, lo, hi, *identities, workspace])
        for k, (partial, r) in enumerate(zip(partials, op.results)):
            slot = b.gep(partial, [blk], inbounds=True, source_etype=llvm_type(r.type))
            b.store(b.extract_value(result, k), slot)
        nxt = b.add(blk, ir.Constant(I64, 1))
        blk.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, end), loop, done)
        b.position_at_end(done)
        b.ret_void()
        return fn

    # -- the call in the parent ----------------------------------------------------------

    def _dispatch(self, op, task: ir.Function, captured, kinds, units: int) -> None:
        b = self.builder
        ctx_type = self._ctx_type(captured, kinds)
        ctx = self._alloca_builder.alloca(ctx_type)
        i32 = ir.IntType(32)

        def field(k):  # typed by the alloca, so llvmlite checks the stores' types
            return b.gep(ctx, [ir.Constant(i32, 0), ir.Constant(i32, k)], inbounds=True)

        n = len(captured)
        for k, v in enumerate(captured):
            b.store(self.value(v), field(k))
        b.store(self.workspace, field(n))
        runtime = self.mctx.parallel_runtime()
        count = ir.Constant(I64, units)
        partials = []
        if kinds:
            blocks_type = ir.FunctionType(I64, [I64]).as_pointer()  # typed: llvmlite calls through it
            blocks_fn = b.load(b.gep(runtime, [ir.Constant(I64, 0), ir.Constant(I64, 1)], inbounds=True), typ=blocks_type)
            count = self._call_or(blocks_fn, [ir.Constant(I64, units)], ir.Constant(I64, 1))
            b.store(count, field(n + 1))
            for k, r in enumerate(op.results):
                array = self._alloca_builder.alloca(ir.ArrayType(llvm_type(r.type), DETERMINISTIC_BLOCKS))
                array.align = 64
                partials.append(array)
                b.store(array, field(n + 2 + k))
        dispatch_type = ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]).as_pointer()
        dispatch = b.load(b.gep(runtime, [ir.Constant(I64, 0), ir.Constant(I64, 0)], inbounds=True), typ=dispatch_type)
        with b.if_else(b.icmp_unsigned("==", dispatch, ir.Constant(dispatch_type, None))) as (serial, pooled):
            with serial:
                b.call(task, [ctx, ir.Constant(I64, 0), count])
            with pooled:
                b.call(dispatch, [task, ctx, count])
        if kinds:
            self._combine(op, kinds, partials, count)

    def _call_or(self, fn_ptr, args, fallback):
        """fn_ptr(args) if fn_ptr (a typed function pointer) is not null, else `fallback`."""
        b = self.builder
        ret_type = fn_ptr.type.pointee.return_type
        is_null = b.icmp_unsigned("==", fn_ptr, ir.Constant(fn_ptr.type, None))
        before = b.block
        call_bb = self.llfn.append_basic_block("call")
        merge = self.llfn.append_basic_block("merged")
        b.cbranch(is_null, merge, call_bb)
        b.position_at_end(call_bb)
        value = b.call(fn_ptr, args)
        after = b.block
        b.branch(merge)
        b.position_at_end(merge)
        phi = b.phi(ret_type)
        phi.add_incoming(fallback, before)
        phi.add_incoming(value, after)
        return phi

    def _combine(self, op, kinds, partials, blocks) -> None:
        inits = [self.value(v) for v in op.iter_args]

        def body(blk, accs):
            out = []
            for kind, acc, partial, r in zip(kinds, accs, partials, op.results):
                ty = llvm_type(r.type)
                slot = self.builder.gep(partial, [ir.Constant(I64, 0), blk], inbounds=True)
                out.append(self._reduce(kind, acc, self.builder.load(slot, typ=ty)))
            return out

        results = self._build_loop(ir.Constant(I64, 0), blocks, ir.Constant(I64, 1), inits, body)
        self.define(op, *results)

    def _reduce(self, kind: str, acc, value):
        b = self.builder
        flags = tuple(sorted(self.mctx.options.fastmath))
        if kind == "arith.addf":
            return b.fadd(acc, value, flags=flags)
        if kind == "arith.mulf":
            return b.fmul(acc, value, flags=flags)
        stem = "llvm.maximum" if kind == "arith.maximumf" else "llvm.minimum"
        fn = self.mctx.declare(f"{stem}.{_suffix(acc.type)}", acc.type, [acc.type, acc.type])
        return b.call(fn, [acc, value], fastmath=flags)


def _identity(kind: str, ty: ir.Type) -> ir.Constant:
    value = IDENTITY[kind]
    if isinstance(ty, ir.VectorType):
        return splat_constant(ty, value)
    return ir.Constant(ty, value)

