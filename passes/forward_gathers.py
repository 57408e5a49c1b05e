"""`forward-gathers`: read through temporaries that only copy a box of another buffer.

A slice (`u[1:]`, `x[::-1, 2]`) or a broadcast lowers to a loop nest that
copies elements of a source buffer into a temporary, `tmp[j] = src[f(j)]`,
with f affine per axis. fuse-loops removes such a temporary when its reader
walks the same index (`tmp[i]`), but not when the reader looks at a shifted
or guarded position: the piece of a concatenation read at `i - offset`
inside the concatenation's `scf.if`, the source of an `insert_slice`. This
pass replaces every load `tmp[idx]` by `src[f(idx)]` (the index arithmetic
of the copy is cloned at the load), so the copy loop and the temporary go
away whatever the reader's index.

A copy nest qualifies when:
1. it is a perfect nest of `scf.for` from 0 with step 1, whose innermost
   body is index arithmetic (`arith.constant/addi/subi/muli`), one
   `memref.load` from `src` and one `memref.store` of that value into `tmp`
   at the nest's induction variables, outermost first;
2. each index of `src` is an affine function of at most one induction
   variable, the variables appear in their nest order (no transposition: the
   forwarded reads keep the temporary's memory order), and the innermost one,
   if used, with step +-1 (the reads stay contiguous: vectorisable);
3. `tmp` is a `memref.alloc` of the same block, written only by this nest, and
   every other use is a `memref.load` in an op after the nest;
4. `src` is a function argument or a `memref.alloc`, used only by loads and
   stores (no views), and nothing after the nest in its block stores into it
   or is opaque: every forwarded read sees the values the copy would have seen.

Before:
    %tmp = memref.alloc() : memref<9xf64>
    scf.for %j = %c0 to %c9 step %c1 {
      %k = arith.addi %j, %c1 : index
      %v = memref.load %u[%k] : memref<10xf64>
      memref.store %v, %tmp[%j] : memref<9xf64>
    }
    ... %w = memref.load %tmp[%m] : memref<9xf64> ...
After:
    ... %k2 = arith.addi %m, %c1 : index
        %w = memref.load %u[%k2] : memref<10xf64> ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass

from .loop_analysis import is_opaque, loop_bounds
from raster_mlir.ir_walk import block_ops, walk_ops
from .pass_dataclass import pass_dataclass

INDEX_OPS = (arith.ConstantOp, arith.AddiOp, arith.SubiOp, arith.MuliOp)
INDEX_OP_NAMES = frozenset(cls.name for cls in INDEX_OPS)


@dataclass(eq=False, repr=False)
class CopyNest:
    """A qualifying copy loop nest (module docstring, conditions 1-2)."""

    loop: scf.ForOp
    ivs: list[SSAValue]
    load: memref.LoadOp
    store: memref.StoreOp
    index_ops: list[Operation]  # the innermost body's index arithmetic, in order


def _perfect_nest(loop: scf.ForOp) -> tuple[list[SSAValue], Block] | None:
    ivs, current = [], loop
    while True:
        bounds = loop_bounds(current)
        if bounds is None or bounds[0] != 0 or bounds[2] != 1 or current.results:
            return None
        ivs.append(current.body.block.args[0])
        body = block_ops(current.body.block)
        if len(body) == 2 and body[0].name == "scf.for":
            current = body[0]
            continue
        return ivs, current.body.block


def _ivs_of(value: SSAValue, ivs: list[SSAValue], inside: Block) -> set[SSAValue] | None:
    """The induction variables `value` depends on (through index ops of the body); None if non-affine."""
    if value in ivs:
        return {value}
    owner = value.owner
    if not isinstance(value, OpResult) or owner.parent_block() is not inside:  # (by the value's class: `isinstance(block, Operation)` walks every op class the first time a process asks, ~1 ms)
        return set()  # defined before the nest: invariant, and it dominates every later reader
    if not isinstance(owner, INDEX_OPS):
        return None
    found: set[SSAValue] = set()
    for operand in owner.operands:
        sub = _ivs_of(operand, ivs, inside)
        if sub is None:
            return None
        found |= sub
    if isinstance(owner, arith.MuliOp) and all(_ivs_of(o, ivs, inside) for o in owner.operands):
        return None  # iv * iv
    return found


def _unit_stride(value: SSAValue, iv: SSAValue, inside: Block) -> bool:
    """value = +-iv + constant (built with addi/subi only)."""
    if value is iv:
        return True
    owner = value.owner
    if isinstance(owner, (arith.AddiOp, arith.SubiOp)) and owner.parent_block() is inside:
        return any(_unit_stride(o, iv, inside) for o in owner.operands)
    return False


def match_copy_nest(loop: scf.ForOp) -> CopyNest | None:
    nest = _perfect_nest(loop)
    if nest is None:
        return None
    ivs, body = nest
    ops = block_ops(body)[:-1]  # the yield
    loads = [op for op in ops if op.name == "memref.load"]  # (by name: a failed isinstance against an op class costs 5x more)
    stores = [op for op in ops if op.name == "memref.store"]
    index_ops = [op for op in ops if op.name in INDEX_OP_NAMES]
    if len(loads) != 1 or len(stores) != 1 or len(index_ops) + 2 != len(ops):
        return None
    load, store = loads[0], stores[0]
    if store.value is not load.res or list(store.indices) != ivs or load.memref is store.memref:
        return None
    order = []
    for index in load.indices:
        used = _ivs_of(index, ivs, body)
        if used is None or len(used) > 1:
            return None
        order.extend(ivs.index(v) for v in used)
    if order != sorted(set(order)) or len(order) != len(set(order)):
        return None
    if order and order[-1] == len(ivs) - 1:
        inner = [x for x in load.indices if ivs[-1] in (_ivs_of(x, ivs, body) or set())][0]
        if not _unit_stride(inner, ivs[-1], body):
            return None
    return CopyNest(loop, ivs, load, store, index_ops)


def _position(op: Operation, block: Block) -> Operation | None:
    """The op of `block` that is `op` or contains it."""
    while op is not None and op.parent_block() is not block:
        op = op.parent_op()
    return op


@dataclass(eq=False, repr=False)
class BlockOrder:
    """Positions of a block's ops and, per position, whether an opaque op comes at or after it
    (computed once per block, so each candidate is checked in time proportional to its uses)."""

    block: Block
    position: dict[Operation, int]
    opaque_from: list[bool]

    @classmethod
    def of(cls, block: Block) -> BlockOrder:
        ops = block_ops(block)
        opaque_from = [False] * (len(ops) + 1)
        for k in range(len(ops) - 1, -1, -1):
            opaque_from[k] = opaque_from[k + 1] or any(is_opaque(inner) for inner in walk_ops(ops[k]))
        return cls(block, {op: k for k, op in enumerate(ops)}, opaque_from)

    def after(self, op: Operation, k: int) -> bool:
        """Whether `op` (or the op of the block containing it) comes after position k; ops added
        since the positions were taken (forwarded loads) count as after."""
        top = _position(op, self.block)
        return top is not None and self.position.get(top, len(self.opaque_from)) > k


def _forwardable(nest: CopyNest, order: BlockOrder, k: int) -> bool:
    tmp, src = nest.store.memref, nest.load.memref
    if not isinstance(tmp.owner, memref.AllocOp) or tmp.owner.parent_block() is not order.block:
        return False
    for use in tmp.uses:
        if use.operation is nest.store:
            continue
        if not isinstance(use.operation, memref.LoadOp) or not order.after(use.operation, k):
            return False
    is_argument = isinstance(src, BlockArgument) and isinstance(src.owner.parent_op(), func.FuncOp)
    if not is_argument and not isinstance(src.owner, memref.AllocOp):
        return False
    for use in src.uses:
        if not isinstance(use.operation, (memref.LoadOp, memref.StoreOp)):
            return False  # a view, a call, a copy: other names for the buffer
        if isinstance(use.operation, memref.StoreOp) and order.after(use.operation, k):
            return False
    return not order.opaque_from[k + 1]


def _forward(nest: CopyNest) -> int:
    """Rewrite the readers, erase the nest and the temporary; returns the temporary's bytes."""
    tmp = nest.store.memref
    for use in list(tmp.uses):
        reader = use.operation
        if reader is nest.store:
            continue
        mapping: dict[SSAValue, SSAValue] = dict(zip(nest.ivs, reader.indices))
        new_ops = []
        for op in nest.index_ops:
            clone = op.clone(value_mapper=mapping)
            for old, new in zip(op.results, clone.results):
                mapping[old] = new
            new_ops.append(clone)
        indices = [mapping.get(i, i) for i in nest.load.indices]
        load = memref.LoadOp.get(nest.load.memref, indices)
        reader.parent_block().insert_ops_before([*new_ops, load], reader)
        reader.res.replace_all_uses_with(load.res)
        reader.detach()
        reader.erase()
    alloc = tmp.owner
    nest.loop.detach()
    nest.loop.erase()
    alloc.detach()
    alloc.erase()
    return buffer_bytes(tmp.type)


def forward_block(block: Block) -> tuple[int, int]:
    """Forward every qualifying copy nest of `block` and of the blocks nested in it:
    (temporaries removed, their bytes)."""
    count = size = 0
    order = None  # (taken when the block has a copy nest: most loop bodies have none)
    for k, op in enumerate(block_ops(block)):
        if op.name == "scf.for":
            nest = match_copy_nest(op)
            if nest is not None and order is None:
                order = BlockOrder.of(block)
            if nest is not None and _forwardable(nest, order, k):
                size += _forward(nest)
                count += 1
                continue
        for region in op.regions:
            for inner in region.blocks:
                more, more_size = forward_block(inner)
                count, size = count + more, size + more_size
    return count, size


def buffer_bytes(t: MemRefType) -> int:
    width = t.element_type.bitwidth if hasattr(t.element_type, "bitwidth") else 64
    return int(np.prod(t.get_shape(), dtype=np.int64)) * width // 8


@pass_dataclass
class ForwardGathersPass(ModulePass):
    """Replace reads of copy-only temporaries (slices, broadcasts) by reads of their source."""

    name = "forward-gathers"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            forward_block(function.body.block)

