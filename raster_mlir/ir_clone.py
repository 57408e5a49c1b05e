"""A copy of an op and everything nested in it, the same as xDSL's `Operation.clone()`, made in one walk.

xDSL's `clone()` creates every op without operands, then walks the original and
the copy side by side (two nested generators, a cost per op that grows with its
depth) and sets every op's operands a second time. Here each op is created with
its operands already mapped; the rare operand defined later in region order
than its use (a block that comes after a block it dominates) is not mapped yet
when its user is copied, and is fixed up at the end, as xDSL does for all.

The copy is the same as xDSL's: op classes, operands (values defined inside
the copied op map to their copies, others stay), result types and name hints,
properties and attributes (the same immutable objects in new dictionaries),
locations, successors (blocks of the copy), block arguments with their types,
locations and name hints. `tests/test_ir_clone.py` compares both on modules of
every stage of several programs, printed generic with locations, and their
use lists.

A compile copies whole modules: the traced IR before the pipeline, and a train
step's loop-level IR before skip-zero-chunks (the snapshot its data loops are
built from). Measured (same process, interleaved medians, loaded machine): the
8-layer train step's snapshot (484 ops) 7.1 -> 4.7 ms.
"""

from __future__ import annotations

from xdsl.ir import Block, Operation, Region, SSAValue


def clone_op(
    op: Operation,
    value_mapper: dict[SSAValue, SSAValue] | None = None,
    block_mapper: dict[Block, Block] | None = None,
) -> Operation:
    """A copy of `op` with its regions; `value_mapper` / `block_mapper` get the copies of its values and blocks."""
    values = {} if value_mapper is None else value_mapper
    blocks = {} if block_mapper is None else block_mapper
    late: list[tuple[Operation, Operation]] = []  # (original, copy) with an operand copied after its user
    copy = _copy(op, values, blocks, late)
    for original, new in late:
        operands = [values.get(operand, operand) for operand in original.operands]
        if any(a is not b for a, b in zip(operands, new.operands)):
            new.operands = operands
    return copy


def _copy(
    op: Operation, values: dict[SSAValue, SSAValue], blocks: dict[Block, Block], late: list[tuple[Operation, Operation]]
) -> Operation:
    operands = []
    unmapped = False
    for operand in op.operands:
        mapped = values.get(operand)
        if mapped is None:
            mapped = operand
            unmapped = True  # defined outside `op` (stays), or inside but not copied yet (fixed up at the end)
        operands.append(mapped)
    regions = [_copy_region(region, values, blocks, late) for region in op.regions] if op.regions else ()
    new = op.create(
        operands=operands,
        result_types=[result.type for result in op.results],
        properties=op.properties.copy(),
        attributes=op.attributes.copy(),
        location=op.location,
        successors=[blocks.get(successor, successor) for successor in op.successors],
        regions=regions,
    )
    if unmapped:
        late.append((op, new))
    for result, new_result in zip(op.results, new.results, strict=True):
        values[result] = new_result
        new_result.name_hint = result.name_hint
    return new


def _copy_region(
    region: Region, values: dict[SSAValue, SSAValue], blocks: dict[Block, Block], late: list[tuple[Operation, Operation]]
) -> Region:
    new_region = Region()
    pairs = []
    # Every block (and its arguments) first: ops may branch to, or use the arguments of, a later block.
    for block in region.blocks:
        new_block = Block(arg_types=[arg.type for arg in block.args])
        for arg, new_arg in zip(block.args, new_block.args, strict=True):
            new_arg.location = arg.location
            new_arg.name_hint = arg.name_hint
            values[arg] = new_arg
        blocks[block] = new_block
        new_region.add_block(new_block)
        pairs.append((block, new_block))
    for block, new_block in pairs:
        for inner in block.ops:
            new_block.add_op(_copy(inner, values, blocks, late))
    return new_region
