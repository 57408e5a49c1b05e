"""`create_op`: what `cls.create(operands=..., result_types=..., properties=..., regions=...)` makes, with the fields set directly.

xDSL's `Operation.create` runs `Operation.__init__`, whose generic setters rebuild and
re-validate what the caller already holds: the operand sequence twice, the successors
(none here) through their setter, the unknown location looked up through a function that
imports, and a fresh dict per argument; an IRDL constructor (`arith.AddfOp(a, b)`) also
checks every argument against the op definition, another 2x. `create_op` sets the same fields
to the same values for an op without successors (every raster op built by the tracer, the AD
rules and the canonicalize patterns; the loops, loads, stores and vector ops of lower-to-loops,
LoopBuilder and skip-zero-chunks), then runs the op's `__post_init__` as `create` does where it
does something (an IRDL op's fills in default properties and attributes: `fills_defaults`).
`tests/test_ir_create.py` compares both field by field, and with the IRDL constructors of the
op classes the chunk passes build.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import UNKNOWN_LOC
from xdsl.ir import Attribute, Operation, OpResult, Region, SSAValue, Use
from xdsl.ir.core import SSAValues
from xdsl.irdl import IRDLOperation, OptionalDef


def create_op(
    cls: type[Operation],
    operands: Sequence[SSAValue] = (),
    result_types: Sequence[Attribute] = (),
    properties: Mapping[str, Attribute] = {},
    attributes: Mapping[str, Attribute] = {},
    regions: Sequence[Region] = (),
) -> Operation:
    """`cls.create(operands=..., result_types=..., properties=..., attributes=..., regions=...)`, faster."""
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
    for region in regions:
        op.add_region(region)
    if fills_defaults(cls):
        op.__post_init__()
    return op


@functools.cache
def fills_defaults(cls: type[Operation]) -> bool:
    """Whether `cls.__post_init__` does anything: fill in default properties or attributes.

    IRDLOperation's `__post_init__` only fills in the defaults of the op definition (and checks
    that the class has a name); most op classes have none, and the loop over their definition
    cost a tenth of building a load or a store. Any other `__post_init__` runs.
    """
    if cls.__post_init__ is not IRDLOperation.__post_init__:
        return True
    op_def = cls.get_irdl_definition()
    return any(
        not isinstance(d, OptionalDef) and d.default_value is not None
        for d in (*op_def.properties.values(), *op_def.attributes.values())
    )
