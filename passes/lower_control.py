"""Lowering of the region ops (raster.for / scan / while / if) to scf.for / scf.while / scf.if on buffers.

Part of `lower-to-loops` (lower_to_loops.py calls these through
`REGION_LOWERINGS`; each gets the `BlockLowering` of the enclosing block).

Carries live in memory, in the op's result buffers, for the whole loop:
1. before the loop, each init is copied into its result buffer (nothing is
   copied when the init is a `raster.empty`, a tape);
2. the body is lowered once, inside the scf loop, with its carry arguments
   stored in those buffers, its captures where the enclosing block keeps
   them, and the loop index as an i64 SSA scalar;
3. a yielded value is computed straight into its carry's buffer when that is
   safe (`yield_destinations`: nothing reads the old carry after the op that
   produces the new one, and that op reads the old carry only at the element
   it writes: elementwise ops, `dynamic_update` of the carry itself, a
   nested loop continuing the carry); any other yielded value is copied into
   the buffer at the end of the body (through a temporary when it is another
   carry's old value, so that swaps are right).

So an iteration allocates nothing: every temporary of the body is a
`memref.alloc` in the function's entry block (one workspace slice, reused
by every iteration), and element-wise bodies update their carries in place;
fuse-loops then merges the body's loop nests inside the time loop.

    raster.for %i = %lb to %ub iter_args(%x = %x0 : tensor<64xf64>) ...   (tensor level)
becomes
    <copy %x0 into %r>
    scf.for %iv = %lb to %ub step %c1 {                                     (loop level)
      %i = arith.index_cast %iv : index to i64
      <the body, reading and writing %r>
    } {raster.loop = "for"}

`raster.while` becomes `scf.while` (the `cond` region's ops, then
`scf.condition` on pred != 0; the `do` region's ops); `raster.if` becomes
`scf.if` on pred != 0, each branch writing the op's result buffers;
`raster.scan` is a `raster.for` that copies xs[k] into a slice buffer
before the body and the body's ys slices into ys[k] after it. The scf
loops carry the attribute `raster.loop` (for / scan / while), so loop passes
can tell a time loop from an element loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import IndexType, IntegerType, MemRefType, StringAttr
from xdsl.ir import Block, OpResult, Region, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_control as C
from raster_mlir.dialects import raster_index as X
from raster_mlir.dialects.raster_loop_transforms import TAPE_ATTR, TAPE_LOOP_ATTR
from raster_mlir.ir_walk import block_ops

from .loop_builder import LoopBuilder
from .loop_recipes import Buffer, Scalar, Storage, copy_into, read
from .loop_recipes_index import scalar_of

LOOP_KIND_ATTR = "raster.loop"

# Ops that read an operand only at the element they write (same shape in and out).
_ELEMENTWISE = (R.ElementwiseUnaryOp, R.ElementwiseBinaryOp, X.ConvertOp)


def _memref(t) -> MemRefType:
    return MemRefType(t.element_type, t.get_shape())


def as_index(b: LoopBuilder, s: Storage) -> SSAValue:
    """A 0-d i64 bound or index as an `index` value."""
    return b.add(arith.IndexCastOp(scalar_of(b, s), IndexType()))


def as_condition(b: LoopBuilder, s: Storage) -> SSAValue:
    """pred != 0 as an i1, for a 0-d predicate of any element type (NaN counts as true, as in C)."""
    p = scalar_of(b, s)
    if isinstance(p.type, IntegerType):
        return b.add(arith.CmpiOp(p, b.integer(0, p.type), "ne"))
    return b.cmpf(p, b.float(0.0, p.type), "une")


# ---------------------------------------------------------------------------
# Which yielded values may be computed in place


def _reads_in_place(producer, operand_index: int, result: SSAValue, arg: SSAValue) -> bool:
    """Does `producer` read operand `operand_index` (= arg) only where it writes `result`?"""
    if isinstance(producer, _ELEMENTWISE):
        return R.shape_of(arg.type) == R.shape_of(result.type)
    if isinstance(producer, (X.DynamicUpdateOp, X.DynamicUpdateAddOp)):
        return operand_index == 0
    if isinstance(producer, (C.ForOp, C.ScanOp, C.WhileOp)):
        inits_start = 2 if isinstance(producer, C.ForOp) else 0
        position = operand_index - inits_start
        return 0 <= position < len(producer.inits) and producer.res[position] is result
    return False


def _in_place_ok(block: Block, producer, result: SSAValue, arg: SSAValue) -> bool:
    position = {op: n for n, op in enumerate(block.ops)}
    for use in arg.uses:
        user = use.operation
        if user is producer:
            if not _reads_in_place(producer, use.index, result, arg):
                return False
        elif user is block.last_op or position.get(user, -1) > position[producer]:
            return False  # read after the new value overwrote it (the yield itself included)
    return True


def yield_destinations(block: Block, yielded: Sequence[SSAValue], args: Sequence[SSAValue | None], buffers: Sequence[SSAValue]) -> dict[SSAValue, SSAValue]:
    """The yielded values that may be computed straight into their carry's buffer (module docstring).

    `args[k]` is the old value of carry k (None for a branch result, whose
    buffer nothing in the block reads).
    """
    counts = Counter(yielded)
    destination: dict[SSAValue, SSAValue] = {}
    for value, arg, buffer in zip(yielded, args, buffers):
        if counts[value] != 1 or not isinstance(value, OpResult) or value.owner.parent_block() is not block:
            continue
        producer = value.owner
        if isinstance(producer, (R.FillOp, R.ConstantOp, X.EmptyOp)):
            continue
        if arg is not None and not _in_place_ok(block, producer, value, arg):
            continue
        destination[value] = buffer
    return destination


# ---------------------------------------------------------------------------
# Bodies


def lower_body(
    lowering,
    block: Block,
    arg_storage: Sequence[Storage],
    carry_args: Sequence[SSAValue | None],
    buffers: Sequence[Buffer],
    place_rest: Callable[[list[Storage]], None] | None = None,
) -> list[Storage]:
    """Lower `block` at the builder's position; the first len(buffers) yielded values end in `buffers`.

    `place_rest` gets the storage of the other yielded values (a scan's ys
    slices) and stores them before the carries are overwritten (a y may be
    an old carry). Returns the storage of every yielded value.
    """
    b = lowering.b
    storage = lowering.storage
    for arg, s in zip(block.args, arg_storage):
        storage[arg] = s
    yielded = list(block.last_op.operands)
    destination = yield_destinations(block, yielded[: len(buffers)], carry_args, [buf.ref for buf in buffers])
    lowering.nested().lower(block_ops(block)[:-1], destination)
    if place_rest is not None:
        place_rest([storage[v] for v in yielded[len(buffers) :]])
    _copy_yields(b, [storage[v] for v in yielded[: len(buffers)]], buffers)
    return [storage[v] for v in yielded]


def _copy_yields(b: LoopBuilder, sources: Sequence[Storage], buffers: Sequence[Buffer]) -> None:
    """buffers[k] = sources[k] for all k at once (a source may be another carry's old value)."""
    carry_refs = {buf.ref for buf in buffers}
    pending = []
    for src, dst in zip(sources, buffers):
        if isinstance(src, Buffer) and src.ref is dst.ref:
            continue
        if isinstance(src, Buffer) and src.ref in carry_refs:  # overwritten by another copy: save it first
            tmp = Buffer(b.alloc(src.ref.type), src.shape)
            copy_into(b, src, tmp)
            src = tmp
        pending.append((src, dst))
    for src, dst in pending:
        copy_into(b, src, dst)


def _init_carries(b: LoopBuilder, inits: Sequence[SSAValue], init_storage: Sequence[Storage], buffers: Sequence[Buffer]) -> None:
    for value, src, dst in zip(inits, init_storage, buffers):
        if isinstance(src, Buffer) and src.ref is dst.ref:
            continue
        if isinstance(value, OpResult) and isinstance(value.owner, X.EmptyOp):
            # A tape: written before it is read. Its buffer keeps the marks (CompiledFunction.tape_report).
            for name in (TAPE_ATTR, TAPE_LOOP_ATTR):
                if name in value.owner.attributes and isinstance(dst.ref, OpResult):
                    dst.ref.owner.attributes[name] = value.owner.attributes[name]
            continue
        copy_into(b, src, dst)


def _mark(b: LoopBuilder, kind: str) -> None:
    b.block.last_op.attributes[LOOP_KIND_ATTR] = StringAttr(kind)


def _index_i64(b: LoopBuilder, i: SSAValue) -> Scalar:
    return Scalar(b.add(arith.IndexCastOp(i, R.element_type("i64"))), ())


def _loop(b: LoopBuilder, lb: SSAValue, ub: SSAValue, reverse: bool, body) -> None:
    """scf.for over [lb, ub); body gets the index (ub - 1 - (iv - lb) when reverse)."""
    if not reverse:
        b.range_loop(lb, ub, b.index(1), body=body)
        return
    top = b.subi(b.addi(lb, ub), b.index(1))
    b.range_loop(lb, ub, b.index(1), body=lambda iv: body(b.subi(top, iv)))


# ---------------------------------------------------------------------------
# The ops


def lower_for(lowering, op: C.ForOp, ins: Sequence[Storage], outs: Sequence[Buffer]) -> None:
    b = lowering.b
    n = len(op.inits)
    lb, ub = as_index(b, ins[0]), as_index(b, ins[1])
    _init_carries(b, op.inits, ins[2 : 2 + n], outs)
    captures = ins[2 + n :]
    block = op.body_block()

    def body(i):
        lower_body(lowering, block, [_index_i64(b, i), *outs, *captures], op.carry_args(), outs)

    _loop(b, lb, ub, op.is_reverse, body)
    _mark(b, "for")


def lower_scan(lowering, op: C.ScanOp, ins: Sequence[Storage], outs: Sequence[Buffer]) -> None:
    b = lowering.b
    n, m = len(op.inits), len(op.xs)
    carries, ys = outs[:n], outs[n:]
    xs, captures = ins[n : n + m], ins[n + m :]
    _init_carries(b, op.inits, ins[:n], carries)
    block = op.body_block()

    def body(k):
        slices = [_row_of(b, x, k) for x in xs]

        def place_ys(values):
            for y, out in zip(values, ys):
                b.nest(y.shape, lambda idx, y=y, out=out: b.store(read(b, y, idx, y.shape), out.ref, [k, *idx]))

        lower_body(lowering, block, [_index_i64(b, k), *carries, *slices, *captures], op.carry_args(), carries, place_ys)

    _loop(b, b.index(0), b.index(op.trip_count), op.is_reverse, body)
    _mark(b, "scan")


def _row_of(b: LoopBuilder, x: Storage, k: SSAValue) -> Storage:
    """xs[k] in a slice buffer (fuse-loops usually folds the copy into its reader)."""
    shape = x.shape[1:]
    if isinstance(x, Scalar):
        return Scalar(x.value, shape)
    row = Buffer(b.alloc(MemRefType(x.element_type, list(shape))), shape)
    b.nest(shape, lambda idx: b.store(b.load(x.ref, [k, *idx]), row.ref, idx))
    return row


def lower_while(lowering, op: C.WhileOp, ins: Sequence[Storage], outs: Sequence[Buffer]) -> None:
    b = lowering.b
    n = len(op.inits)
    _init_carries(b, op.inits, ins[:n], outs)
    captures = ins[n:]
    before, after = Block(), Block()

    def cond():
        pred = lower_body(lowering, op.cond_block(), [*outs, *captures], [], [])[0]
        b.add(scf.ConditionOp(as_condition(b, pred)))

    def step():
        lower_body(lowering, op.body_block(), [*outs, *captures], op.carry_args(), outs)
        b.add(scf.YieldOp())

    b.inside(before, cond)
    b.inside(after, step)
    b.add(scf.WhileOp([], [], Region(before), Region(after)))
    _mark(b, "while")


def lower_if(lowering, op: C.IfOp, ins: Sequence[Storage], outs: Sequence[Buffer]) -> None:
    b = lowering.b
    captures = ins[1:]
    then_block, else_block = op.branches()

    def branch(block: Block):
        return lambda: lower_body(lowering, block, captures, [None] * len(outs), outs) and None

    b.if_else(as_condition(b, ins[0]), branch(then_block), branch(else_block))


REGION_LOWERINGS = {C.ForOp: lower_for, C.ScanOp: lower_scan, C.WhileOp: lower_while, C.IfOp: lower_if}
