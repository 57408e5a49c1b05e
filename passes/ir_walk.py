"""Cheap questions about a block's ops, for the loop passes' clean-up.

`block.ops` is a view whose iterator is an object per walk and whose `len()`
counts the block's ops one by one; fuse-loops asked `len(body.ops) == 1` of
every loop in every round. (A whole nest as a list, in `op.walk()`'s order:
`raster_mlir.backend.analysis.walk_ops`.)
"""

from __future__ import annotations

from xdsl.ir import Block, Operation


def block_ops(block: Block) -> list[Operation]:
    """`list(block.ops)`."""
    ops = []
    op = block.first_op
    while op is not None:
        ops.append(op)
        op = op.next_op
    return ops


def has_one_op(block: Block) -> bool:
    """`len(block.ops) == 1`, without counting them."""
    first = block.first_op
    return first is not None and first is block.last_op
