"""`create_op`: what `cls.create(operands=..., result_types=..., properties=...)` makes, with the fields set directly.

xDSL's `Operation.create` runs `Operation.__init__`, whose generic setters rebuild and
re-validate what the caller already holds: the operand sequence twice, the successors
(none here) and regions (none) through their setters, and a fresh dict per argument.
`create_op` sets the same fields to the same values for an op without successors and
regions (every raster op built by the tracer, the AD rules and the canonicalize
patterns), then runs the op's `__post_init__` as `create` does (an IRDL op's fills in
default properties and attributes). `tests/test_ir_create.py` compares both field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import UNKNOWN_LOC
from xdsl.ir import Attribute, Operation, OpResult, SSAValue, Use
from xdsl.ir.core import SSAValues


def create_op(
    cls: type[Operation],
    operands: Sequence[SSAValue],
    result_types: Sequence[Attribute],
    properties: Mapping[str, Attribute] = {},
    attributes: Mapping[str, Attribute] = {},
) -> Operation:
    """`cls.create(operands=..., result_types=..., properties=..., attributes=...)`, faster."""
    op = cls.__new__(cls)
    uses = tuple(Use(op, index) for index in range(len(operands)))
    for operand, use in zip(operands, uses):
        operand.add_use(use)
    op._operands, op._operand_uses = SSAValues(operands), uses
    op.results = SSAValues([OpResult(t, op, index) for index, t in enumerate(result_types)])
    op.properties = dict(properties)
    op.attributes = dict(attributes)
    op.location = UNKNOWN_LOC
    op._successors = op._successor_uses = ()
    op.regions = ()
    op.__post_init__()
    return op
