"""Lists of ops without xDSL's generator chains, for the passes and the emitter.

xDSL's walk is a chain of generators, one per level of nesting, that each op
is passed up through, and `block.ops` is a view whose iterator is an object per
walk and whose `len()` counts the block's ops one by one. The loop passes
(analyses, fuse-loops' sweeps and clean-up) and the emitter (analysis,
segments, loop hints, jam) ask these questions many times per compile: the
walks were a tenth to a sixth of emission on deep loop nests, and fuse-loops
asked `len(body.ops) == 1` of every loop in every round. The walks follow xDSL's
`_next_op` field directly (below: 4x faster than its `next_op` property).
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


# The link from an op to the next one of its block: xDSL's dataclass field behind the `next_op`
# property. Read directly, a walk is about 4x faster (a property call per op was most of it: 0.5 us
# per op, 1,500 ops of an unrolled ODE's loop nest walked several times per emission); through the
# property where an xDSL version stores it otherwise.
_HAS_NEXT_OP_FIELD: bool = "_next_op" in getattr(Operation, "__dataclass_fields__", {})


def _collect(regions, append) -> None:
    for region in regions:
        for block in region.blocks:
            op = block.first_op
            while op is not None:
                append(op)
                if op.regions:
                    _collect(op.regions, append)
                op = op._next_op


def _collect_by_property(regions, append) -> None:
    for region in regions:
        for block in region.blocks:
            for op in block.ops:
                append(op)
                if op.regions:
                    _collect_by_property(op.regions, append)


if not _HAS_NEXT_OP_FIELD:
    _collect = _collect_by_property  # noqa: F811


def block_ops(block: Block) -> list[Operation]:
    """`list(block.ops)`."""
    ops = []
    op = block.first_op
    if not _HAS_NEXT_OP_FIELD:
        while op is not None:
            ops.append(op)
            op = op.next_op
        return ops
    while op is not None:
        ops.append(op)
        op = op._next_op
    return ops


def has_one_op(block: Block) -> bool:
    """`len(block.ops) == 1`, without counting them."""
    first = block.first_op
    return first is not None and first is block.last_op
