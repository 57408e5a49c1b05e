"""`create_op` (raster_mlir/ir_create.py) makes the op `Operation.create` makes: the same fields,
operand uses in the same order, result types and indices, properties, attributes and defaults."""

from __future__ import annotations

import pytest
from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, TensorType, f64, i64
from xdsl.ir import Block

from raster_mlir.dialects import raster as R
from raster_mlir.ir_create import create_op


def _fields(op) -> dict:
    fields = dict(vars(op))
    fields["_operand_uses"] = [(u.operation is op, u.index) for u in op._operand_uses]
    fields["results"] = [(r.type, r.index, r.op is op, r.name_hint, r.first_use) for r in op.results]
    return fields


def _uses(value) -> list:
    return [(use.operation.name, use.index) for use in value.uses]


@pytest.mark.parametrize(
    "cls, types, properties, attributes",
    [
        (R.AddOp, [TensorType(f64, [3]), TensorType(f64, [3])], {}, {}),
        (R.SumOp, [TensorType(f64, [2, 3])], R.SumOp.properties_for(axis=1, keepdims=False), {}),
        (arith.AddiOp, [i64, i64], {}, {"tag": IntegerAttr(1, i64)}),  # (default properties filled in)
    ],
)
def test_the_same_op_as_create(cls, types, properties, attributes):
    made = {}
    for how in ("create", "create_op"):
        block = Block(arg_types=types)
        operands = list(block.args) + [block.args[0]]  # a value used twice
        result_types = [types[0]]
        if how == "create":
            op = cls.create(operands=operands, result_types=result_types, properties=properties, attributes=attributes)
        else:
            op = create_op(cls, operands, result_types, properties, attributes)
        made[how] = (op, block)
    (a, block_a), (b, block_b) = made["create"], made["create_op"]
    assert type(a) is type(b)
    fields_a, fields_b = _fields(a), _fields(b)
    assert fields_a.keys() == fields_b.keys()
    for key in fields_a:
        if key != "_operands":
            assert fields_a[key] == fields_b[key], key
    assert type(a._operands) is type(b._operands)
    assert [block_a.args.index(v) for v in a.operands] == [block_b.args.index(v) for v in b.operands]
    assert [_uses(v) for v in block_a.args] == [_uses(v) for v in block_b.args]
    assert a.properties is not properties and b.properties is not properties
    assert str(a) == str(b)
