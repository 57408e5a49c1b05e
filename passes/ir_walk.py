"""`walk_ops(op)`: the ops of `op.walk()`, in the same order, as a list made without generators.

xDSL's `walk()` is a generator per op, region and block, nested: each op it
yields passes through one frame per level above it, and each op of a block is
reached through the block's iterator object. The analyses of the loop passes
(footprints, accesses, defined values) walk every loop nest once per round,
so that cost is paid on every op of a compile: the list below takes half the
time (484 ops of an 8-layer train step's loop-level IR: 0.69 -> 0.36 ms with
the operands read), for the same ops in the same order (pre-order: an op, then
its regions, blocks and ops in order).
"""

from __future__ import annotations

from xdsl.ir import Block, Operation


def walk_ops(op: Operation) -> list[Operation]:
    """`list(op.walk())`: `op` and every op nested in it, in pre-order."""
    found = [op]
    if op.regions:
        _append_nested(op, found)
    return found


def _append_nested(op: Operation, found: list[Operation]) -> None:
    for region in op.regions:
        for block in region.blocks:
            inner = block.first_op
            while inner is not None:
                found.append(inner)
                if inner.regions:
                    _append_nested(inner, found)
                inner = inner.next_op


def block_ops(block: Block) -> list[Operation]:
    """`list(block.ops)` (without the block's iterator object)."""
    ops = []
    op = block.first_op
    while op is not None:
        ops.append(op)
        op = op.next_op
    return ops


def has_one_op(block: Block) -> bool:
    """`len(block.ops) == 1`, without counting them (BlockOps.__len__ walks the whole block)."""
    first = block.first_op
    return first is not None and first is block.last_op
