"""Lists of ops without xDSL's generator chains, for the passes and the emitter.

xDSL's walk is a chain of generators, one per level of nesting, that each op
is passed up through, and `block.ops` is a view whose iterator is an object per
walk and whose `len()` counts the block's ops one by one. The loop passes
(analyses, fuse-loops' sweeps and clean-up) and the emitter (analysis,
segments, loop hints, jam) ask these questions many times per compile: the
walks were a tenth to a sixth of emission on deep loop nests, and fuse-loops
asked `len(body.ops) == 1` of every loop in every round.
"""

from __future__ import annotations

from xdsl.ir import Block, Operation, Region


def walk_ops(op: Operation) -> list[Operation]:
    """`list(op.walk())`: `op`, then every op nested in it, in the same (pre-)order."""
    ops = [op]
    _collect(op.regions, ops.append)
    return ops


def region_ops(region: Region) -> list[Operation]:
    """`list(region.walk())`: every op of the region's blocks and everything nested in them."""
    ops: list[Operation] = []
    _collect((region,), ops.append)
    return ops


def _collect(regions, append) -> None:
    for region in regions:
        for block in region.blocks:
            for op in block.ops:
                append(op)
                if op.regions:
                    _collect(op.regions, append)


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
