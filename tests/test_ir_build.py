"""`ir_build.new_op` builds the op `Operation.create` builds (raster_mlir/ir_build.py).

For ops with and without operands, results, properties (given, and the defaults an IRDL class
fills in), attributes and regions, both print the same (generic form, with locations), verify,
have the same fields, and every operand gains the same use.
"""

from __future__ import annotations

import io

from xdsl.dialects import arith, memref, scf, vector
from xdsl.dialects.builtin import Float64Type, FloatAttr, IndexType, IntegerAttr, MemRefType, VectorType
from xdsl.ir import Block, Region
from xdsl.printer import Printer

from raster_mlir.ir_build import new_op

F64, INDEX = Float64Type(), IndexType()
INDEX_3 = arith.ConstantOp(IntegerAttr(3, INDEX)).result
X = arith.ConstantOp(FloatAttr(1.5, F64)).result
BUFFER = memref.AllocOp([], [], MemRefType(F64, [8])).results[0]


def _text(op) -> str:
    stream = io.StringIO()
    Printer(stream=stream, print_generic_format=True, print_debuginfo=True).print_op(op)
    return stream.getvalue()


def _ops(make):
    """The same ops, built by `make` (create or new_op)."""
    yield make(arith.AddfOp, [X, X], [F64], {})  # (fastmath: the default property, filled in)
    yield make(arith.AddiOp, [INDEX_3, INDEX_3], [INDEX], {}, {"tag": IntegerAttr(1, INDEX)})
    yield make(memref.LoadOp, [BUFFER, INDEX_3], [F64])
    yield make(memref.StoreOp, [X, BUFFER, INDEX_3], [])
    yield make(vector.BroadcastOp, [X], [VectorType(F64, [8])])
    alloc = memref.AllocOp([], [], MemRefType(F64, [4]), IntegerAttr(64, 64))  # (its properties: alignment, segments)
    yield make(memref.AllocOp, [], [MemRefType(F64, [4])], dict(alloc.properties))
    body = Block(arg_types=[INDEX])
    body.add_op(make(scf.YieldOp, [], []))
    yield make(scf.ForOp, [INDEX_3, INDEX_3, INDEX_3], [], regions=(Region(body),))


def _create(cls, operands, result_types, properties=None, attributes=None, regions=()):
    return cls.create(
        operands=operands, result_types=result_types, properties=properties or {}, attributes=attributes or {}, regions=regions
    )


def _new(cls, operands, result_types, properties=None, attributes=None, regions=()):
    return new_op(cls, operands, result_types, dict(properties or {}), dict(attributes or {}), regions)


def test_new_op_builds_what_create_builds():
    for theirs, ours in zip(_ops(_create), _ops(_new), strict=True):
        assert _text(ours) == _text(theirs)
        assert type(ours) is type(theirs)
        assert ours.properties == theirs.properties and ours.attributes == theirs.attributes
        assert ours.location == theirs.location and tuple(ours.successors) == tuple(theirs.successors) == ()
        assert [r.type for r in ours.results] == [r.type for r in theirs.results]
        assert all(r.owner is ours and r.index == k for k, r in enumerate(ours.results))
        for k, operand in enumerate(ours.operands):
            assert operand is theirs.operands[k]
            assert any(use.operation is ours and use.index == k for use in operand.uses)
        ours.verify()


def test_new_op_builds_what_the_irdl_constructors_of_the_chunk_passes_build():
    # skip-zero-chunks and chunk_vectorise build these with `new_op` and no properties: the
    # defaults `__post_init__` fills in are what the IRDL constructors set.
    from xdsl.dialects import math
    from xdsl.dialects.builtin import IntegerType, i1

    lanes = VectorType(F64, [8])
    splat = vector.BroadcastOp(X, lanes)
    mask = vector.CreateMaskOp([INDEX_3], VectorType(i1, [8]))
    v, m = splat.results[0], mask.results[0]
    condition = arith.CmpiOp(INDEX_3, INDEX_3, "ne").result
    for irdl in [
        splat, mask, vector.LoadOp(BUFFER, [INDEX_3], lanes), vector.MaskedLoadOp(BUFFER, [INDEX_3], m, v),
        vector.StoreOp(v, BUFFER, [INDEX_3]), vector.BitcastOp(v, VectorType(IntegerType(64), [8])),
        math.FmaOp(v, v, v), arith.NegfOp(v), arith.AddiOp(INDEX_3, INDEX_3), arith.OrIOp(INDEX_3, INDEX_3),
        arith.SelectOp(condition, INDEX_3, INDEX_3), arith.IndexCastOp(INDEX_3, IntegerType(64)), scf.YieldOp(v),
        scf.IfOp(condition, [], Region(Block([scf.YieldOp()]))),
    ]:  # fmt: skip
        regions = [Region(Block([scf.YieldOp()])), Region()] if isinstance(irdl, scf.IfOp) else []
        ours = new_op(type(irdl), list(irdl.operands), [r.type for r in irdl.results], regions=regions)
        assert _text(ours) == _text(irdl)
        assert ours.properties == irdl.properties and ours.attributes == irdl.attributes
