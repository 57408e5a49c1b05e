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


def _generic_text(op) -> str:
    import io

    from xdsl.printer import Printer

    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=True, print_debuginfo=True).print_op(op)
    return stream.getvalue()


def test_loop_level_ops_with_regions_as_create_makes_them():
    # LoopBuilder's loops, loads, stores and allocs (no properties, or the alloc's).
    from xdsl.dialects import memref, scf
    from xdsl.dialects.builtin import IndexType, MemRefType
    from xdsl.ir import Region

    index, f64_buffer = IndexType(), MemRefType(f64, [8])
    alloc_properties = dict(memref.AllocOp([], [], f64_buffer, IntegerAttr(64, 64)).properties)
    for how in ("create", "create_op"):
        entry = Block(arg_types=[index, f64])
        i, x = entry.args

        def make(cls, operands=(), result_types=(), properties={}, regions=()):
            if how == "create":
                return cls.create(operands=operands, result_types=result_types, properties=properties, regions=regions)
            return create_op(cls, operands, result_types, properties, regions=regions)

        buffer = make(memref.AllocOp, (), [f64_buffer], alloc_properties)
        body = Block(arg_types=[index])
        body.add_ops([make(memref.StoreOp, [x, buffer.results[0], body.args[0]]), make(scf.YieldOp)])
        loop = make(scf.ForOp, [i, i, i], regions=(Region(body),))
        load = make(memref.LoadOp, [buffer.results[0], i], [f64])
        entry.add_ops([buffer, loop, load])
        text = "".join(_generic_text(op) for op in entry.ops)
        if how == "create":
            expected = text
    assert text == expected
    for op in (buffer, loop, load):
        op.verify()


def test_the_irdl_constructors_of_the_chunk_passes():
    # skip-zero-chunks and chunk_vectorise build these with `create_op` and no properties: the
    # defaults `__post_init__` fills in are what the IRDL constructors set (`fills_defaults`).
    from xdsl.dialects import math, memref, scf, vector
    from xdsl.dialects.builtin import IndexType, MemRefType, VectorType, i1
    from xdsl.ir import Region

    entry = Block(arg_types=[IndexType(), f64, MemRefType(f64, [8])])
    i, x, buffer = entry.args
    lanes = VectorType(f64, [8])
    splat, mask = vector.BroadcastOp(x, lanes), vector.CreateMaskOp([i], VectorType(i1, [8]))
    v, m = splat.results[0], mask.results[0]
    condition = arith.CmpiOp(i, i, "ne").result
    for irdl in [
        splat, mask, vector.LoadOp(buffer, [i], lanes), vector.MaskedLoadOp(buffer, [i], m, v),
        vector.StoreOp(v, buffer, [i]), vector.BitcastOp(v, VectorType(i64, [8])), math.FmaOp(v, v, v),
        arith.NegfOp(v), arith.AddiOp(i, i), arith.OrIOp(i, i), arith.SelectOp(condition, i, i),
        arith.IndexCastOp(i, i64), memref.LoadOp.get(buffer, [i]), scf.YieldOp(v),
        scf.IfOp(condition, [], Region(Block([scf.YieldOp()]))),
    ]:  # fmt: skip
        regions = [Region(Block([scf.YieldOp()])), Region()] if isinstance(irdl, scf.IfOp) else []
        ours = create_op(type(irdl), list(irdl.operands), [r.type for r in irdl.results], regions=regions)
        assert _generic_text(ours) == _generic_text(irdl)
        assert ours.properties == irdl.properties and ours.attributes == irdl.attributes
