"""`fuse-epilogues`: apply an elementwise consumer of a tiled product at the product's tile stores.

Why: a batch's weight gradient dW = dzᵀx is computed in register tiles
(matmul_tiles.py) and stored, then an SGD update loop reads it back:
`W[i, j] = W[i, j] - lr * dW[i, j]`. Applying the update where the tile
stores dW saves writing and re-reading dW (800 KB for a 128x784 f64 layer)
and dW never exists, as in the per-sample step.

Pattern, in the entry block of a function:
- T is a `memref.alloc` (rank 2) whose every store carries `raster.final_store`
  (the producer's promise: each element is stored once, with its final value;
  matmul_tiles.py makes it) and which nothing loads except one loop E;
- E is `scf.for %j` over all of T's columns, directly in the body of a
  top-level `scf.for %i` over all of T's rows (C, which may hold other loops,
  as after sibling fusion), and E's body is straight-line elementwise code:
  loads at `[i, j]`, `[i]`, `[j]` or loop-invariant indices, float arithmetic
  (`addf subf mulf divf maximumf minimumf negf`, `math.sqrt`, `math.absf`), and stores at `[i, j]` (with
  the same index list wherever the stored buffers are read in E). Values E
  uses from outside itself are defined outside C.
- Legality: from the first op that stores T to C, nothing but E touches a
  buffer E stores, nor writes a buffer E loads, and nothing calls a function
  or copies a buffer: running E's body for element (r, c) when the tile
  stores T[r, c] then reads and writes exactly what E read and wrote.

Rewrite: at each store `T[r, c] = v` (a vector of L lanes or a scalar), emit
E's body for (r, c): T[i, j] is v, a load whose last index is j becomes a
vector load of L lanes, other loads are broadcast, stores become vector
stores. Then E is deleted (and C, if nothing is left in it), and T with its
stores.

Before:
    scf.for %i0 = %c0 to %c128 step %c4 {                        // tiles of dW
      scf.for %j0 = ... { %acc = scf.for ...; vector.store %acc, %dW[%i0, %j0] {raster.final_store} ... }
    }
    scf.for %i = %c0 to %c128 step %c1 {
      scf.for %j = %c0 to %c784 step %c1 {
        %g = memref.load %dW[%i, %j]; %u = arith.mulf %lr, %g
        %w = memref.load %W[%i, %j]; %n = arith.subf %w, %u; memref.store %n, %W[%i, %j]
      }
    }
After:
    scf.for %i0 = %c0 to %c128 step %c4 {
      scf.for %j0 = ... {
        %acc = scf.for ...
        %lrv = vector.broadcast %lr; %u = arith.mulf %lrv, %acc
        %w = vector.load %W[%i0, %j0]; %n = arith.subf %w, %u; vector.store %n, %W[%i0, %j0]
      }
    }
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, math, memref, scf, vector
from xdsl.dialects.builtin import ModuleOp, VectorType
from xdsl.ir import Block, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from .loop_analysis import is_inside, loop_bounds
from .matmul_tiles import FINAL_STORE_ATTR
from raster_mlir.ir_walk import block_ops, walk_ops
from .pass_dataclass import pass_dataclass

ELEMENTWISE = {
    "arith.addf": arith.AddfOp,
    "arith.subf": arith.SubfOp,
    "arith.mulf": arith.MulfOp,
    "arith.divf": arith.DivfOp,
    "arith.maximumf": arith.MaximumfOp,
    "arith.minimumf": arith.MinimumfOp,
}
UNARY = {"arith.negf": arith.NegfOp, "math.sqrt": math.SqrtOp, "math.absf": math.AbsFOp}
LOADS, STORES = ("memref.load", "vector.load"), ("memref.store", "vector.store")


def _buffer(op: Operation) -> SSAValue | None:
    if op.name in LOADS:
        return op.operands[0]
    if op.name in STORES:
        return op.operands[1]
    return None


def _indices(op: Operation) -> tuple[SSAValue, ...]:
    return tuple(op.operands[1:] if op.name in LOADS else op.operands[2:])


def _top_level(op: Operation, block: Block) -> Operation:
    while op.parent_block() is not block:
        op = op.parent_op()
    return op


@dataclass(eq=False, repr=False)
class Epilogue:
    temp: Operation  # the memref.alloc T
    stores: list[Operation]  # the final stores of T
    consumer: Operation  # C, the loop over rows
    loop: Operation  # E, the loop over columns


def find_epilogue(temp: Operation, block: Block) -> Epilogue | None:
    """The Epilogue of `temp` if the pattern and legality of the module docstring hold."""
    buffer = temp.results[0]
    if len(buffer.type.get_shape()) != 2:
        return None
    stores, loads = [], []
    for use in buffer.uses:
        user = use.operation
        if user.name in STORES and user.operands[1] is buffer:
            stores.append(user)
        elif user.name in LOADS:
            loads.append(user)
        else:
            return None
    if not stores or not loads or not all(FINAL_STORE_ATTR in s.attributes for s in stores):
        return None
    loop = loads[0].parent_op()
    if not isinstance(loop, scf.ForOp) or any(load.parent_op() is not loop for load in loads):
        return None
    consumer = loop.parent_op()
    if not isinstance(consumer, scf.ForOp) or consumer.parent_block() is not block:
        return None
    rows, cols = buffer.type.get_shape()
    if loop_bounds(consumer) != (0, rows, 1) or loop_bounds(loop) != (0, cols, 1) or loop.iter_args:
        return None
    i, j = consumer.body.block.args[0], loop.body.block.args[0]
    if any(_indices(load) != (i, j) for load in loads):
        return None
    if not _elementwise_body(loop, consumer, i, j):
        return None
    epilogue = Epilogue(temp, stores, consumer, loop)
    return epilogue if _legal(epilogue, block) and _available_at_stores(epilogue, block) else None


def _elementwise_body(loop: Operation, consumer: Operation, i: SSAValue, j: SSAValue) -> bool:
    stored: dict[SSAValue, tuple] = {}
    for op in loop.body.block.ops:
        if op.name == "scf.yield":
            continue
        if op.name not in ("memref.load", "memref.store") and op.name not in ELEMENTWISE and op.name not in UNARY:
            return False
        for v in op.operands:
            owner = v.owner if isinstance(v, OpResult) else v.block.parent_op()  # (by the value's class: `isinstance(block, Operation)` walks every op class the first time a process asks, ~1 ms)
            if v in (i, j) or is_inside(owner, loop) or not is_inside(owner, consumer):
                continue
            return False  # a value computed per row of C: it would have to be recomputed at the store
        if op.name == "memref.store":
            if _indices(op) != (i, j):
                return False
            stored[op.operands[1]] = (i, j)
        elif op.name == "memref.load" and any(idx is j for idx in _indices(op)[:-1]):
            return False  # strided along j: not a vector load
    for op in loop.body.block.ops:
        if op.name == "memref.load" and op.operands[0] in stored and _indices(op) != (i, j):
            return False
    return True


def _available_at_stores(e: Epilogue, block: Block) -> bool:
    """Every value E uses from outside C is defined before the first op that stores T."""
    ops = block_ops(block)
    first = min(ops.index(_top_level(s, block)) for s in e.stores)
    for op in e.loop.body.block.ops:
        for v in op.operands:
            owner = v.owner
            if isinstance(v, OpResult) and owner.parent_block() is block and ops.index(owner) >= first:
                return False
    return True


def _legal(e: Epilogue, block: Block) -> bool:
    tops = [_top_level(s, block) for s in e.stores]
    ops = block_ops(block)
    first = min(ops.index(t) for t in tops)
    last = ops.index(e.consumer)
    if max(ops.index(t) for t in tops) > last:
        return False
    stored = {op.operands[1] for op in e.loop.body.block.ops if op.name == "memref.store"}
    loaded = {op.operands[0] for op in e.loop.body.block.ops if op.name == "memref.load"} - {e.temp.results[0]}
    for top in ops[first : last + 1]:
        for op in walk_ops(top):
            if is_inside(op, e.loop):
                continue
            if op.name in ("func.call", "memref.copy"):
                return False
            buffer = _buffer(op)
            if buffer is None:
                continue
            if buffer in stored or (op.name in STORES and buffer in loaded):
                return False
    return True


class _EpilogueEmitter:
    """E's body for one store of T: `value` at [row, col], `lanes` wide (1: scalar)."""

    def __init__(self, e: Epilogue, store: Operation):
        self.e, self.store = e, store
        self.value = store.operands[0]
        self.row, self.col = _indices(store)
        vtype = self.value.type
        self.wide = vtype if isinstance(vtype, VectorType) else None
        self.i, self.j = e.consumer.body.block.args[0], e.loop.body.block.args[0]
        self.mapped: dict[SSAValue, SSAValue] = {}

    def add(self, op: Operation) -> SSAValue | None:
        Rewriter.insert_op(op, InsertPoint.before(self.store))
        return op.results[0] if op.results else None

    def index(self, v: SSAValue) -> SSAValue:
        return self.row if v is self.i else self.col if v is self.j else v

    def operand(self, v: SSAValue) -> SSAValue:
        """The value of E's operand `v` here, broadcast to the tile's vector type."""
        value = self.mapped.get(v, v)
        if self.wide is not None and not isinstance(value.type, VectorType):
            value = self.add(vector.BroadcastOp(value, self.wide))
            self.mapped[v] = value
        return value

    def emit(self) -> None:
        temp = self.e.temp.results[0]
        for op in self.e.loop.body.block.ops:
            if op.name == "scf.yield":
                continue
            if op.name == "memref.load":
                buffer, indices = op.operands[0], [self.index(v) for v in _indices(op)]
                if buffer is temp:
                    self.mapped[op.results[0]] = self.value
                elif self.wide is not None and _indices(op) and _indices(op)[-1] is self.j:
                    self.mapped[op.results[0]] = self.add(vector.LoadOp(buffer, indices, self.wide))
                else:
                    self.mapped[op.results[0]] = self.add(memref.LoadOp.get(buffer, indices))
            elif op.name == "memref.store":
                indices = [self.index(v) for v in _indices(op)]
                value = self.operand(op.operands[0])
                if self.wide is not None:
                    self.add(vector.StoreOp(value, op.operands[1], indices))
                else:
                    self.add(memref.StoreOp.get(value, op.operands[1], indices))
            elif op.name in UNARY:
                self.mapped[op.results[0]] = self.add(UNARY[op.name](self.operand(op.operands[0]), op.fastmath))
            else:
                lhs, rhs = (self.operand(v) for v in op.operands)
                self.mapped[op.results[0]] = self.add(ELEMENTWISE[op.name](lhs, rhs, op.fastmath))


def fuse(e: Epilogue) -> None:
    for store in e.stores:
        _EpilogueEmitter(e, store).emit()
        Rewriter.erase_op(store)
    consumer_body = e.consumer.body.block
    Rewriter.erase_op(e.loop)
    if all(op.name == "scf.yield" for op in consumer_body.ops):
        Rewriter.erase_op(e.consumer)
    Rewriter.erase_op(e.temp)


@pass_dataclass
class FuseEpiloguesPass(ModulePass):
    """Apply elementwise consumers of tiled products at the tile stores (module docstring)."""

    name = "fuse-epilogues"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in op.ops:
            if not isinstance(function, func.FuncOp) or not function.body.blocks:
                continue
            block = function.body.block
            for temp in [o for o in block.ops if isinstance(o, memref.AllocOp)]:
                e = find_epilogue(temp, block)
                if e is not None:
                    fuse(e)
