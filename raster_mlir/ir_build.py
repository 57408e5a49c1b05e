"""Ops built field by field: what `Operation.create` builds, for the passes that build thousands.

`Operation.create` runs `Operation.__init__`, whose setters rebuild the operand and successor
sequences twice, look the unknown location up through a function that imports, and walk
empty successor lists; an IRDL constructor (`arith.AddfOp(a, b)`) also checks every argument
against the op definition, another 2x. `new_op` sets the same fields directly (as
`ir_clone.clone_op` does for copies) and then runs the class's `__post_init__` where it fills in
default properties or attributes, as `create` does: the same op, printed and verified the
same, in about half the time of `create` (lower-to-loops, `LoopBuilder`, skip-zero-chunks build every op
of a loop nest; `tests/test_ir_build.py` compares with `create`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TypeVar

from xdsl.dialects.builtin import UNKNOWN_LOC
from xdsl.ir import Attribute, Operation, OpResult, Region, SSAValue, Use
from xdsl.ir.core import SSAValues
from xdsl.irdl import IRDLOperation, OptionalDef

OpT = TypeVar("OpT", bound=Operation)


def new_op(
    cls: type[OpT],
    operands: Sequence[SSAValue] = (),
    result_types: Iterable[Attribute] = (),
    properties: dict[str, Attribute] | None = None,
    attributes: dict[str, Attribute] | None = None,
    regions: Sequence[Region] = (),
) -> OpT:
    """`cls.create(operands=..., result_types=..., properties=..., attributes=..., regions=...)`.

    `properties` and `attributes` become the op's own dictionaries (not copied: pass new ones).
    """
    op = cls.__new__(cls)
    operands = SSAValues(operands)
    uses = tuple(Use(op, index) for index in range(len(operands)))
    for operand, use in zip(operands, uses):
        operand.add_use(use)
    op._operands, op._operand_uses = operands, uses
    op.results = SSAValues(OpResult(t, op, index) for index, t in enumerate(result_types))
    op.properties = {} if properties is None else properties
    op.attributes = {} if attributes is None else attributes
    op.location = UNKNOWN_LOC
    op._successors = op._successor_uses = ()
    op.regions = ()
    for region in regions:
        op.add_region(region)
    if _fills_defaults(cls):
        op.__post_init__()
    return op


@functools.cache
def _fills_defaults(cls: type[Operation]) -> bool:
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
