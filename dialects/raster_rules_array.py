"""Reverse and tangent rules of static slicing, slice insertion and concatenation (`raster_array.py`).

All three ops are linear, so each tangent rule is the op applied to the
tangents (zeros standing in for operands without one). Reverse rules:
- slice: the cotangent is inserted into zeros of the input's shape at the
  same box (every other input element did not reach the output);
- insert_slice: the source gets the box of the cotangent; the destination
  gets the cotangent with that box zeroed (those elements were overwritten);
- concatenate: each operand gets its own piece of the cotangent.
"""

from __future__ import annotations

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder

ARRAY_RULES = RuleSet("array")
register = ARRAY_RULES.register
tangent = ARRAY_RULES.register_tangent


@register(R.SliceOp)
def slice_rule(b: ReverseBuilder, op, cts):
    params = op.params()
    zeros = b.zeros_like(op.input)
    return [b.emit(R.InsertSliceOp, [cts[0], zeros], start=params["start"], step=params["step"])]


@register(R.InsertSliceOp)
def insert_slice_rule(b: ReverseBuilder, op, cts):
    ct, params = cts[0], op.params()
    box = {"start": params["start"], "step": params["step"]}
    d_source = b.emit(R.SliceOp, [ct], shape=b.shape(op.source), **box) if b.needs(0) else None
    d_dest = b.emit(R.InsertSliceOp, [b.zeros_like(op.source), ct], **box) if b.needs(1) else None
    return [d_source, d_dest]


@register(R.ConcatenateOp)
def concatenate_rule(b: ReverseBuilder, op, cts):
    ct, axis = cts[0], op.params()["axis"]
    rank = len(b.shape(ct))
    pieces, offset = [], 0
    for k, operand in enumerate(op.inputs):
        if b.needs(k):
            start = tuple(offset if d == axis else 0 for d in range(rank))
            pieces.append(b.emit(R.SliceOp, [ct], start=start, step=(1,) * rank, shape=b.shape(operand)))
        else:
            pieces.append(None)
        offset += b.shape(operand)[axis]
    return pieces


@tangent(R.SliceOp, R.InsertSliceOp, R.ConcatenateOp)
def linear_tangent(b: TangentBuilder, op, ts):
    return [b.emit(type(op), b.zeros_for(ts, op.operands), **op.params())]
