"""Translate the body of one loop-level `func.func` into llvmlite IR.

Algorithm: walk the ops of the function's block in order with one
`ir.IRBuilder`, keeping a map from xDSL SSA values to llvmlite values.
Straight-line ops become one LLVM instruction each (see `llvm_ops.py`).
Structured control flow is expanded into basic blocks:

    scf.for   pre ─► header: iv = phi [lb, pre], [iv+step, latch]
                             acc_k = phi [init_k, pre], [yield_k, latch]
                             br (iv <s ub), body, exit
              body ... latch: br header  !llvm.loop (loops chosen by loop_hints.py)
              exit: the loop's results are the header's acc phis
    scf.if    br cond, then, else ─► merge: result_k = phi [then_k], [else_k]

A function of several blocks (cf.br / cf.cond_br, e.g. after upstream
`convert-scf-to-cf`) is emitted block by block; see `llvm_cf.py`.

The header-test shape is what `scf.for` means (zero trips when lb >= ub);
LLVM's loop-rotate turns it into a guarded do-while at O1+, so there is no
reason to emit the rotated form ourselves.

Memory: a memref value is a plain pointer (`ptr`) plus its static
`BufferType`. `memref.load/store %m[%i, %j]` becomes one `getelementptr
inbounds` on the element type with the row-major linear index
`i*stride_0 + j*stride_1` (multiplies and adds carry `nsw`: an in-bounds
linear index of a static buffer cannot overflow i64, and out-of-bounds
access is already undefined). `memref.alloc` is a fixed slice of the
workspace argument, `memref.alloca` an `alloca` hoisted into the entry block
(hoisting is sound: shapes are static and the contents are undefined at
allocation anyway).
"""

from __future__ import annotations

from llvmlite import ir
from xdsl.dialects.builtin import MemRefType
from xdsl.ir import Block, Operation, SSAValue

from ..errors import CompileError
from .analysis import BufferType, FunctionInfo, buffer_type
from .fast_builder import FastBuilder
from .jam import jam_plan
from .jam_emit import JamEmitter
from .llvm_cf import BranchEmitter
from .llvm_control import ControlTranslator
from .llvm_tape import TapeTranslator
from .llvm_ops import OpTranslator
from .llvm_vector import VECTOR_HANDLERS, VectorTranslator
from .parallel_emit import ParallelEmitter
from .segment_emit import SegmentEmitter
from .llvm_types import I1, I8, I64, PTR, element_llvm_type, llvm_type, shared_constant
from .vmath import vector_math_handlers


class _ScopeNode(ir.values.MDValue):
    """An alias scope node (`!{!"<name> buffer k", !domain}`) that hashes its operands once.

    Each of a function's n scopes is an operand of n - 1 `noalias` lists, and llvmlite's
    `add_metadata` hashes a list's operands to deduplicate it, an MDValue recursively
    through its operands every time: O(n^2) Python calls (8 layers, 44 buffers: 4% of emission).
    The hash is that of MDValue (its operands), which never change; the node prints as an MDValue.
    """

    def __hash__(self):
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = self._hash = hash(self.operands)
        return cached


def _metadata_node(module: ir.Module, operands: list, cls=ir.values.MDValue) -> ir.values.MDValue:
    """`module.add_metadata(operands)` for operands that are metadata values already (llvmlite's
    `_fix_metadata_operands` leaves them as they are, after an isinstance test per operand: the n
    `noalias` lists of n - 1 scopes made that O(n^2)), making a `cls` node."""
    key = tuple(operands)
    node = module._metadatacache.get(key)
    if node is None:
        node = module._metadatacache[key] = cls(module, operands, name=str(len(module.metadata)))
    return node


class FunctionBodyEmitter(
    SegmentEmitter, JamEmitter, ParallelEmitter, OpTranslator, VectorTranslator, BranchEmitter, ControlTranslator, TapeTranslator
):
    """Emits one function body; `emit()` fills `llfn`, which must be empty.

    `module_ctx` is the `ModuleEmitter` (see `llvm_emit.py`): it owns the
    llvmlite module, the other functions, the options and the loop metadata.
    """

    def __init__(self, module_ctx, info: FunctionInfo, llfn: ir.Function):
        self.mctx = module_ctx
        self.info = info
        self.llfn = llfn
        self.values: dict[SSAValue, ir.Value] = {}
        self.buffers: dict[SSAValue, BufferType] = {}
        self.builder: ir.IRBuilder | None = None
        self.workspace: ir.Value = llfn.args[-1]

    # ---- driver -----------------------------------------------------------

    def emit(self) -> None:
        # Stack slots live in their own entry block; the body starts in the
        # next one. Two builders never insert into the same block, so
        # neither sees a stale insertion point.
        entry = self.llfn.append_basic_block("entry")
        start = self.llfn.append_basic_block("body")
        self._alloca_builder = FastBuilder(entry)
        self.builder = FastBuilder(start)
        block: Block = self.info.op.body.blocks.first
        for arg, llarg in zip(block.args, self.llfn.args):
            self.values[arg] = llarg
            if isinstance(arg.type, MemRefType):
                self.buffers[arg] = self.info.arg_types[arg.index]
        blocks = list(self.info.op.body.blocks)
        segments = self._segments(blocks[0]) if len(blocks) == 1 else None
        self.segmented = segments is not None  # cut into segment functions (segment_emit.py)
        if segments is not None:
            self._emit_segmented_block(blocks[0], segments)
        else:
            self._emit_region_body(self.info.op.body)
        self._alloca_builder.branch(start)
        if not self.builder.block.is_terminated:
            raise CompileError(f"@{self.info.name}: the function body does not end with func.return")

    def _emit_block(self, block: Block) -> list[ir.Value] | None:
        """Emit every op of `block`; return the mapped operands of its scf.yield."""
        for op in block.ops:
            if op.name == "scf.yield":
                return [self.value(v) for v in op.operands]
            if op.name == "func.return":
                self._emit_return(op)
                return None
            self._emit_op(op)
        return None

    def _emit_op(self, op: Operation) -> None:
        name = op.name
        handler = self.HANDLERS.get(name)
        if handler is None:
            raise CompileError(
                f"@{self.info.name}: op {name} is not part of the loop-level IR the LLVM backend accepts"
            )
        try:
            handler(self, op)
        except CompileError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            # llvmlite's builder checks (operand types...) on IR the
            # verifier let through: report it as a compile error on the op.
            raise CompileError(f"@{self.info.name}: cannot translate {name}: {exc}") from exc

    def value(self, v: SSAValue) -> ir.Value:
        try:
            return self.values[v]
        except KeyError:
            raise CompileError(f"@{self.info.name}: value %{v.name_hint or '?'} is used before it is defined") from None

    def define(self, op: Operation, *results: ir.Value) -> None:
        for res, llv in zip(op.results, results, strict=True):
            self.values[res] = llv

    # ---- functions and calls ----------------------------------------------

    def _emit_return(self, op: Operation) -> None:
        operands = [self.value(v) for v in op.operands]
        if len(operands) > 1:
            raise CompileError(f"@{self.info.name}: functions may return at most one scalar")
        if operands:
            self.builder.ret(operands[0])
        else:
            self.builder.ret_void()

    def _emit_call(self, op: Operation) -> None:
        callee_name = op.callee.string_value()
        callee_info = self.mctx.info.functions[callee_name]
        callee = self.mctx.llvm_functions[callee_name]
        args = [self.value(v) for v in op.operands]
        scratch = self.info.callee_scratch_offset
        ws = self.builder.gep(self.workspace, [ir.Constant(I64, scratch)], inbounds=True, source_etype=I8)
        result = self.builder.call(callee, args + [ws])
        if len(op.results) > 1:
            raise CompileError(f"@{self.info.name}: call to @{callee_info.name} with more than one result")
        if op.results:
            self.define(op, result)

    # ---- memory -----------------------------------------------------------

    def _emit_alloc(self, op: Operation) -> None:
        buf = buffer_type(op.results[0].type, f"@{self.info.name} {op.name}")
        if op in self.info.workspace_offsets:
            offset = ir.Constant(I64, self.info.workspace_offsets[op])
            ptr = self.builder.gep(self.workspace, [offset], inbounds=True, source_etype=I8)
        else:
            # Allocas go to the entry block so LLVM treats them as static
            # stack slots (an alloca inside a loop would grow the stack on
            # every iteration).
            arr = ir.ArrayType(element_llvm_type(buf), max(buf.numel, 1))
            ptr = self._alloca_builder.alloca(arr)
            ptr.align = 64
        self.buffers[op.results[0]] = buf
        self.define(op, ptr)

    def _emit_dealloc(self, op: Operation) -> None:
        # Workspace slices and stack slots are not freed (module docstring).
        return None

    def _address(self, memref: SSAValue, indices, inbounds: bool = True) -> tuple[ir.Value, BufferType]:
        """The element's pointer; `inbounds=False` for a masked access, whose masked-off lanes may lie
        outside the buffer (an `inbounds` GEP to such an address would be poison)."""
        buf = self.buffers.get(memref)
        if buf is None:
            raise CompileError(f"@{self.info.name}: memref %{memref.name_hint or '?'} has no known buffer")
        if len(indices) != len(buf.shape):
            raise CompileError(f"@{self.info.name}: {len(indices)} indices for a rank-{len(buf.shape)} memref")
        base = self.value(memref)
        if not indices:
            return base, buf
        b = self.builder
        linear = None
        for idx, stride in zip(indices, buf.strides):
            term = self.value(idx)
            if stride != 1:
                term = b.mul(term, shared_constant(term.type, stride), flags=("nsw",))
            linear = term if linear is None else b.add(linear, term, flags=("nsw",))
        ptr = b.gep(base, [linear], inbounds=inbounds, source_etype=element_llvm_type(buf))
        return ptr, buf

    def _emit_load(self, op: Operation) -> None:
        memref, *indices = op.operands  # one pass over xDSL's operand view (each `operands[k]` makes one)
        ptr, buf = self._address(memref, indices)
        # Natural alignment only: user arrays are checked for element
        # alignment; larger alignment of the bases is carried by the
        # argument/alloca attributes and propagated by LLVM where it holds.
        load = self.builder.load(ptr, typ=element_llvm_type(buf), align=buf.itemsize)
        self.tag_workspace_access(load, memref)
        self.define(op, load)

    def _emit_store(self, op: Operation) -> None:
        stored, memref, *indices = op.operands
        value = self.value(stored)
        ptr, buf = self._address(memref, indices)
        self.tag_workspace_access(self.builder.store(value, ptr, align=buf.itemsize), memref)

    def tag_workspace_access(self, instruction: ir.Instruction, memref: SSAValue) -> None:
        """Mark a load/store of a workspace buffer as not aliasing the function's other workspace buffers.

        The buffers are disjoint slices of one workspace pointer, so LLVM
        cannot always tell them apart: with an index it cannot bound (a
        clamped run-time row of a loop's tape), it keeps a loop's carries in
        memory and versions the loop on run-time overlap checks. LLVM's
        scoped-noalias metadata states the fact: one scope per buffer
        (`alias.scope`), the others' scopes as `noalias`. Only accesses
        whose memref is the `memref.alloc` itself are tagged (a view or a
        pointer passed to a callee is not), and every slice has its own
        offset (analysis.py never reuses one), so the statement is true.
        Functions with more than `MAX_TAGGED_BUFFERS` buffers are not
        tagged: the metadata grows with the square of their number.
        """
        owner = getattr(memref, "op", None)
        if owner is None or owner not in self.info.workspace_offsets:
            return
        tags = self._workspace_alias_tags()
        if owner in tags:
            scope, others = tags[owner]
            instruction.set_metadata("alias.scope", scope)
            instruction.set_metadata("noalias", others)

    MAX_TAGGED_BUFFERS = 96

    def _workspace_alias_tags(self) -> dict:
        tags = getattr(self, "_alias_tags", None)
        if tags is not None:
            return tags
        self._alias_tags = tags = {}
        buffers = [op for op, _ in sorted(self.info.workspace_offsets.items(), key=lambda item: item[1])]
        if not 2 <= len(buffers) <= self.MAX_TAGGED_BUFFERS:
            return tags
        module = self.llfn.module
        name = f"raster.workspace @{self.info.name}"
        domain = module.add_metadata([ir.MetaDataString(module, name)])
        scopes = [
            _metadata_node(module, [ir.MetaDataString(module, f"{name} buffer {k}"), domain], _ScopeNode)
            for k in range(len(buffers))
        ]
        for k, op in enumerate(buffers):
            others = _metadata_node(module, scopes[:k] + scopes[k + 1 :])
            tags[op] = (_metadata_node(module, [scopes[k]]), others)
        return tags

    def _emit_copy(self, op: Operation) -> None:
        src, dst = op.operands
        src_buf, dst_buf = self.buffers.get(src), self.buffers.get(dst)
        if src_buf is None or dst_buf is None or src_buf != dst_buf:
            raise CompileError(f"@{self.info.name}: memref.copy needs two known buffers of the same type")
        self.emit_memcpy(self.value(dst), self.value(src), ir.Constant(I64, src_buf.nbytes))

    def emit_memcpy(self, dst: ir.Value, src: ir.Value, nbytes: ir.Value) -> None:
        memcpy = self.mctx.declare("llvm.memcpy.p0.p0.i64", ir.VoidType(), [PTR, PTR, I64, I1])
        self.builder.call(memcpy, [dst, src, nbytes, ir.Constant(I1, 0)])

    def _emit_pointer_as_index(self, op: Operation) -> None:
        # The buffer's address as an integer: passes compute its alignment from it (skip-zero-chunks).
        self.define(op, self.builder.ptrtoint(self.value(op.operands[0]), I64))

    # ---- structured control flow -----------------------------------------

    def _build_loop(self, lb, ub, step, inits, emit_body, loop_md=None) -> list[ir.Value]:
        """Emit `for (iv = lb; iv < ub; iv += step)` with loop-carried `inits`.

        `emit_body(iv, accs)` emits the body at the builder's position and
        returns the values carried to the next iteration; the result is the
        list of carried values after the loop (the header phis).
        """
        b = self.builder
        pre = b.block
        header = self.llfn.append_basic_block("for.header")
        body = self.llfn.append_basic_block("for.body")
        exit_ = self.llfn.append_basic_block("for.exit")
        b.branch(header)

        b.position_at_end(header)
        iv = b.phi(lb.type, name="iv")
        iv.add_incoming(lb, pre)
        accs = []
        for init in inits:
            phi = b.phi(init.type, name="acc")
            phi.add_incoming(init, pre)
            accs.append(phi)
        b.cbranch(b.icmp_signed("<", iv, ub), body, exit_)

        b.position_at_end(body)
        yielded = emit_body(iv, accs)
        latch = b.block
        nxt = b.add(iv, step, flags=("nsw",))
        back = b.branch(header)
        if loop_md is not None:
            back.set_metadata("llvm.loop", loop_md)
        iv.add_incoming(nxt, latch)
        for phi, y in zip(accs, yielded, strict=True):
            phi.add_incoming(y, latch)
        b.position_at_end(exit_)
        return accs

    def _emit_for(self, op: Operation, lb=None, ub=None, inits=None, allow_jam: bool = True) -> None:
        """Emit one scf.for; `lb`/`ub`/`inits` replace its own (the remainder of a jam, an outlined
        parallel loop's share), and only a loop emitted with its own bounds may go to the thread pool."""
        if lb is None and ub is None:
            kinds = self._parallel_kinds(op)
            if kinds is not None:
                self._emit_parallel_for(op, kinds)
                return
        if allow_jam:
            plan = jam_plan(op, self.info.name, self.info.name in self.mctx.noalias_functions, self.mctx.options.jam)
            if plan is not None:
                self._emit_jammed(op, plan, lb, ub)
                return
        block = op.body.blocks.first

        def body(iv, accs):
            self.values[block.args[0]] = iv
            for arg, phi in zip(block.args[1:], accs):
                self.values[arg] = phi
            return self._emit_block(block) or []

        lb = lb if lb is not None else self.value(op.lb)
        ub = ub if ub is not None else self.value(op.ub)
        if op is self.sequential_loop:
            md = self.mctx.sequential_loop_metadata()
        else:
            md = self.mctx.loop_metadata(op, self.info.name)
        inits = inits if inits is not None else [self.value(v) for v in op.iter_args]
        results = self._build_loop(lb, ub, self.value(op.step), inits, body, md)
        self.define(op, *results)

    def _emit_if(self, op: Operation) -> None:
        b = self.builder
        cond = self.value(op.cond)
        then_bb = self.llfn.append_basic_block("if.then")
        has_else = bool(op.false_region.blocks)
        else_bb = self.llfn.append_basic_block("if.else") if has_else else None
        merge = self.llfn.append_basic_block("if.end")
        b.cbranch(cond, then_bb, else_bb or merge)

        incoming = []
        for bb, region in ((then_bb, op.true_region), (else_bb, op.false_region)):
            if bb is None:
                continue
            b.position_at_end(bb)
            vals = self._emit_block(region.blocks.first) or []
            incoming.append((vals, b.block))
            b.branch(merge)

        b.position_at_end(merge)
        results = []
        for k, res in enumerate(op.results):
            phi = b.phi(llvm_type(res.type))
            for vals, bb in incoming:
                phi.add_incoming(vals[k], bb)
            results.append(phi)
        self.define(op, *results)

    HANDLERS = dict(OpTranslator.HANDLERS)
    HANDLERS.update(VECTOR_HANDLERS)
    HANDLERS.update(BranchEmitter.BRANCH_HANDLERS)
    HANDLERS.update(ControlTranslator.CONTROL_HANDLERS)
    HANDLERS.update(TapeTranslator.TAPE_HANDLERS)
    HANDLERS.update(vector_math_handlers(HANDLERS))
    HANDLERS.update(
        {
            "func.call": _emit_call,
            "memref.alloc": _emit_alloc,
            "memref.alloca": _emit_alloc,
            "memref.dealloc": _emit_dealloc,
            "memref.load": _emit_load,
            "memref.store": _emit_store,
            "memref.copy": _emit_copy,
            "memref.extract_aligned_pointer_as_index": _emit_pointer_as_index,
            "scf.for": _emit_for,
            "scf.if": _emit_if,
        }
    )
