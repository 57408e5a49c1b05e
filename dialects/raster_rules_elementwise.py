"""Reverse rules of the elementwise raster ops (unary, and binary with broadcasting).

Each rule gets the cotangent `ct` of the result and returns one cotangent per
operand. Binary ops broadcast, so each operand's cotangent is reduced back to
its own shape with `unbroadcast`.

Conventions at kinks (documented choices, all finite):
- relu'(0) = 0 (the mask is x > 0), as in JAX and PyTorch;
- maximum(x, y) at ties x == y gives each side half the cotangent, as JAX does,
  so maximum(x, x) has derivative 1;
- pow(x, y) w.r.t. y is z * log(x), taken as 0 where x == 0 (as JAX); it is
  NaN for x < 0, where x ** y itself is NaN for non-integer y.
"""

from __future__ import annotations

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet

ELEMENTWISE_RULES = RuleSet("elementwise")
register = ELEMENTWISE_RULES.register


# ---------------------------------------------------------------------------
# Unary: y = f(x), dx = ct * f'(x), written with y where that is cheaper.


@register(R.NegOp)
def neg_rule(b: ReverseBuilder, op, cts):
    return [b.neg(cts[0])]


@register(R.ExpOp)
def exp_rule(b: ReverseBuilder, op, cts):
    return [b.mul(cts[0], op.result)]


@register(R.LogOp)
def log_rule(b: ReverseBuilder, op, cts):
    return [b.div(cts[0], op.input)]


@register(R.TanhOp)
def tanh_rule(b: ReverseBuilder, op, cts):
    y = op.result
    one_minus_y2 = b.sub(b.scalar(1.0, y), b.mul(y, y))
    return [b.mul(cts[0], one_minus_y2)]


@register(R.SigmoidOp)
def sigmoid_rule(b: ReverseBuilder, op, cts):
    y = op.result
    slope = b.mul(y, b.sub(b.scalar(1.0, y), y))
    return [b.mul(cts[0], slope)]


@register(R.SqrtOp)
def sqrt_rule(b: ReverseBuilder, op, cts):
    y = op.result  # d sqrt(x) = 1 / (2 sqrt(x))
    return [b.div(b.mul(cts[0], b.scalar(0.5, y)), y)]


@register(R.ReluOp)
def relu_rule(b: ReverseBuilder, op, cts):
    x = op.input
    mask = b.emit(R.GreaterOp, [x, b.scalar(0.0, x)])  # relu'(0) = 0
    return [b.mul(cts[0], mask)]


# ---------------------------------------------------------------------------
# Binary with broadcasting: compute the full-shape cotangent, then unbroadcast.


def _to_operands(b: ReverseBuilder, op, lhs_ct, rhs_ct):
    return [
        b.unbroadcast(lhs_ct(), b.shape(op.lhs)) if b.needs(0) else None,
        b.unbroadcast(rhs_ct(), b.shape(op.rhs)) if b.needs(1) else None,
    ]


@register(R.AddOp)
def add_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    return _to_operands(b, op, lambda: ct, lambda: ct)


@register(R.SubOp)
def sub_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    return _to_operands(b, op, lambda: ct, lambda: b.neg(ct))


@register(R.MulOp)
def mul_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    return _to_operands(b, op, lambda: b.mul(ct, op.rhs), lambda: b.mul(ct, op.lhs))


@register(R.DivOp)
def div_rule(b: ReverseBuilder, op, cts):
    # z = x / y: dx = ct / y, dy = -ct * x / y**2 = -(ct * z) / y
    ct, z = cts[0], op.result
    return _to_operands(b, op, lambda: b.div(ct, op.rhs), lambda: b.neg(b.div(b.mul(ct, z), op.rhs)))


@register(R.PowOp)
def pow_rule(b: ReverseBuilder, op, cts):
    # z = x ** y: dx = ct * y * x ** (y - 1), dy = ct * z * log(x) (0 where x == 0)
    ct, x, y, z = cts[0], op.lhs, op.rhs, op.result

    def d_base():
        y_minus_1 = b.sub(y, b.scalar(1.0, y))
        return b.mul(ct, b.mul(y, b.emit(R.PowOp, [x, y_minus_1])))

    def d_exponent():
        # log(x + [x == 0]) is log(x) except 0 where x == 0.
        is_zero = b.emit(R.EqualOp, [x, b.scalar(0.0, x)])
        safe_log = b.emit(R.LogOp, [b.add(x, is_zero)])
        return b.mul(ct, b.mul(z, safe_log))

    return _to_operands(b, op, d_base, d_exponent)


@register(R.MaximumOp)
def maximum_rule(b: ReverseBuilder, op, cts):
    # The lhs gets ct where x > y, half of it where x == y; the rhs gets the rest.
    ct, x, y = cts[0], op.lhs, op.rhs
    greater = b.emit(R.GreaterOp, [x, y])
    ties = b.emit(R.EqualOp, [x, y])
    lhs_share = b.add(greater, b.mul(ties, b.scalar(0.5, ties)))
    return _to_operands(
        b, op,
        lambda: b.mul(ct, lhs_share),
        lambda: b.mul(ct, b.sub(b.scalar(1.0, lhs_share), lhs_share)),
    )  # fmt: skip
