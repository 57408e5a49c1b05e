"""Reverse and tangent rules of the traced-integer ops (raster_index.py), and cotangent accumulation.

Indices are integers: they get no cotangent (None). The data operands:

- convert: between float types the cotangent converts back; to or from an
  integer there is no derivative;
- dynamic_index x[i]: the cotangent is scattered into zeros of x's shape,
  `dynamic_update_add(zeros, i, ct)`;
- dynamic_update (x[i] = v): x gets ct with the slice zeroed, v gets ct[i];
- dynamic_update_add (x[i] += v): x gets ct, v gets ct[i].

The clamping of run-time indices is the same in the forward and the reverse
ops, so a clamped read scatters its cotangent to the element it read.

`accumulate(b, total, ct)` sums two cotangents of one value. When one of
them is a scatter into zeros (a chain of `dynamic_update_add` on a zero
fill: the cotangent of `xs[i]`), the scatter is applied to the other one
instead of materialising the zeros and adding: inside a loop's reverse
sweep the cotangent of a closed-over `xs` then costs one slice per
iteration, not the whole array.
"""

from __future__ import annotations

from xdsl.ir import SSAValue

from raster_mlir.dialects import raster as R

from .raster_index import ConvertOp, DynamicIndexOp, DynamicUpdateAddOp, DynamicUpdateOp, EmptyOp, FloorDivOp, ModOp
from .raster_rules_core import ReverseBuilder, RuleBuilder, RuleSet, TangentBuilder

INDEX_RULES = RuleSet("index")
INDEX_RULES.mark_nondifferentiable(EmptyOp, FloorDivOp, ModOp)  # integer results: no derivative


def _is_zero_fill(v: SSAValue) -> bool:
    owner = getattr(v, "owner", None)
    return isinstance(owner, R.FillOp) and owner.value.value.data == 0


def accumulate(b: RuleBuilder, total: SSAValue, ct: SSAValue) -> SSAValue:
    """total + ct, scattering instead of adding when one side is a scatter into zeros (module docstring)."""
    for dense, sparse in ((total, ct), (ct, total)):
        chain, base = [], sparse
        while isinstance(base.owner, DynamicUpdateAddOp):
            chain.append(base.owner)
            base = base.owner.input
        if chain and _is_zero_fill(base):
            out = dense
            for op in reversed(chain):
                out = b.emit(DynamicUpdateAddOp, [out, op.value, *op.indices])
            return out
    return b.add(total, ct)


# ---------------------------------------------------------------------------
# Reverse rules


@INDEX_RULES.register(ConvertOp)
def convert_rule(b: ReverseBuilder, op: ConvertOp, cts):
    if not (R.is_float_type(op.input.type) and R.is_float_type(op.result.type)):
        return [None]
    return [b.emit(ConvertOp, [cts[0]], dtype=b.dtype(op.input))]


@INDEX_RULES.register(DynamicIndexOp)
def dynamic_index_rule(b: ReverseBuilder, op: DynamicIndexOp, cts):
    ct_x = b.emit(DynamicUpdateAddOp, [b.zeros_like(op.input), cts[0], *op.indices])
    return [ct_x] + [None] * len(op.indices)


@INDEX_RULES.register(DynamicUpdateOp)
def dynamic_update_rule(b: ReverseBuilder, op: DynamicUpdateOp, cts):
    (ct,) = cts
    # The row is read before it is zeroed: in a reverse loop `ct` is a carry, and the zeroing can then
    # update it in place (lower-to-loops writes a carry in place only if nothing reads the old value
    # after the op producing the new one; in the other order every step copied the whole carry twice).
    ct_v = b.emit(DynamicIndexOp, [ct, *op.indices]) if b.needs(1) else None
    ct_x = b.emit(DynamicUpdateOp, [ct, b.zeros_like(op.value), *op.indices]) if b.needs(0) else None
    return [ct_x, ct_v] + [None] * len(op.indices)


@INDEX_RULES.register(DynamicUpdateAddOp)
def dynamic_update_add_rule(b: ReverseBuilder, op: DynamicUpdateAddOp, cts):
    (ct,) = cts
    ct_v = b.emit(DynamicIndexOp, [ct, *op.indices]) if b.needs(1) else None
    return [ct, ct_v] + [None] * len(op.indices)


# ---------------------------------------------------------------------------
# Tangent rules


@INDEX_RULES.register_tangent(ConvertOp)
def convert_tangent(b: TangentBuilder, op: ConvertOp, tangents):
    (dx,) = tangents
    if dx is None or not (R.is_float_type(op.input.type) and R.is_float_type(op.result.type)):
        return [None]
    return [b.emit(ConvertOp, [dx], dtype=b.dtype(op.result))]


@INDEX_RULES.register_tangent(DynamicIndexOp)
def dynamic_index_tangent(b: TangentBuilder, op: DynamicIndexOp, tangents):
    dx = tangents[0]
    return [None if dx is None else b.emit(DynamicIndexOp, [dx, *op.indices])]


def _update_tangent(op_cls):
    def rule(b: TangentBuilder, op, tangents):
        dx, dv = tangents[0], tangents[1]
        if dx is None and dv is None:
            return [None]
        dx = dx if dx is not None else b.zeros_like(op.input)
        dv = dv if dv is not None else b.zeros_like(op.value)
        return [b.emit(op_cls, [dx, dv, *op.indices])]

    return rule


INDEX_RULES.register_tangent(DynamicUpdateOp)(_update_tangent(DynamicUpdateOp))
INDEX_RULES.register_tangent(DynamicUpdateAddOp)(_update_tangent(DynamicUpdateAddOp))
