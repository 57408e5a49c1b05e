"""Freeing erased IR by reference counting instead of leaving it to the garbage collector.

xDSL's IR is made of reference cycles: an op and its results point at each
other, as do an op and its regions, a region and its blocks, a block and its
ops and arguments. An erased op tree is therefore freed only when Python's
cyclic collector walks it, after the compile (compile-time.md, "No garbage
collection pauses"). When a pass drops a large tree at once, clearing the
instance dictionaries of its ops, results, regions, blocks and block
arguments cuts every cycle, and the tree is freed right away. Only objects
of the erased tree are touched (attributes, which live IR may share, are
left alone).

The caller promises that nothing reads the ops again: they are erased
(detached, their operands' uses dropped) and no map of the caller's still
looks at them.
"""

from __future__ import annotations

from xdsl.ir import Operation


def release_erased(ops: list[Operation]) -> None:
    """Cut the reference cycles of `ops`, an erased op and everything nested in it (e.g. `ir_walk.walk_ops(op)`
    taken before erasing it); the objects are unusable afterwards."""
    regions = [region for op in ops for region in op.regions]
    blocks = [block for region in regions for block in region.blocks]
    for block in blocks:
        for argument in block.args:
            argument.__dict__.clear()
        block.__dict__.clear()
    for region in regions:
        region.__dict__.clear()
    for op in ops:
        for result in op.results:
            result.__dict__.clear()
        op.__dict__.clear()
