"""Reverse rules of the maths ops of `raster_maths.py` (unary, binary, where, reductions, cumsum).

Conventions at points without a derivative (documented choices, all finite
unless the function itself is not):
- abs'(0) = 0 (the rule multiplies by sign(x)), as JAX;
- minimum(x, y) at ties x == y gives each side half the cotangent, like maximum;
- min over an axis shares the cotangent equally among tied minima, like max;
- prod's gradient is exact with zeros in the input: with no zero it is
  prod / x_i; with exactly one zero only that element gets the product of the
  others; with two or more zeros it is 0 everywhere;
- atan2(y, x) at (0, 0) has no derivative: the rule gives NaN there (0 / 0);
- sign and the comparisons are marked non-differentiable (zero gradient).
"""

from __future__ import annotations

import math

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet

MATHS_RULES = RuleSet("maths")
register = MATHS_RULES.register
MATHS_RULES.mark_nondifferentiable(R.SignOp, R.LessOp, R.LessEqualOp, R.GreaterEqualOp, R.NotEqualOp)


def _where(b: ReverseBuilder, pred, on_true, on_false):
    return b.emit(R.WhereOp, [pred, on_true, on_false])


# ---------------------------------------------------------------------------
# Unary: dx = ct * f'(x)


@register(R.SinOp)
def sin_rule(b: ReverseBuilder, op, cts):
    return [b.mul(cts[0], b.emit(R.CosOp, [op.input]))]


@register(R.CosOp)
def cos_rule(b: ReverseBuilder, op, cts):
    return [b.neg(b.mul(cts[0], b.emit(R.SinOp, [op.input])))]


@register(R.TanOp)
def tan_rule(b: ReverseBuilder, op, cts):
    y = op.result  # tan' = 1 + tan^2
    return [b.mul(cts[0], b.add(b.scalar(1.0, y), b.mul(y, y)))]


@register(R.Exp2Op)
def exp2_rule(b: ReverseBuilder, op, cts):
    y = op.result
    return [b.mul(cts[0], b.mul(y, b.scalar(math.log(2.0), y)))]


@register(R.Log1pOp)
def log1p_rule(b: ReverseBuilder, op, cts):
    x = op.input
    return [b.div(cts[0], b.add(x, b.scalar(1.0, x)))]


@register(R.Expm1Op)
def expm1_rule(b: ReverseBuilder, op, cts):
    y = op.result  # (e^x - 1)' = e^x = y + 1
    return [b.mul(cts[0], b.add(y, b.scalar(1.0, y)))]


@register(R.AbsOp)
def abs_rule(b: ReverseBuilder, op, cts):
    return [b.mul(cts[0], b.emit(R.SignOp, [op.input]))]  # abs'(0) = sign(0) = 0


@register(R.ErfOp)
def erf_rule(b: ReverseBuilder, op, cts):
    x = op.input  # erf' = 2 / sqrt(pi) * exp(-x^2)
    slope = b.mul(b.scalar(2.0 / math.sqrt(math.pi), x), b.emit(R.ExpOp, [b.neg(b.mul(x, x))]))
    return [b.mul(cts[0], slope)]


@register(R.SoftplusOp)
def softplus_rule(b: ReverseBuilder, op, cts):
    return [b.mul(cts[0], b.emit(R.SigmoidOp, [op.input]))]


# ---------------------------------------------------------------------------
# Binary with broadcasting


def _to_operands(b: ReverseBuilder, op, lhs_ct, rhs_ct):
    return [
        b.unbroadcast(lhs_ct(), b.shape(op.lhs)) if b.needs(0) else None,
        b.unbroadcast(rhs_ct(), b.shape(op.rhs)) if b.needs(1) else None,
    ]


@register(R.MinimumOp)
def minimum_rule(b: ReverseBuilder, op, cts):
    # The lhs gets ct where x < y, half of it where x == y; the rhs gets the rest.
    ct, x, y = cts[0], op.lhs, op.rhs
    ties = b.emit(R.EqualOp, [x, y])
    lhs_share = b.add(b.emit(R.LessOp, [x, y]), b.mul(ties, b.scalar(0.5, ties)))
    return _to_operands(
        b, op,
        lambda: b.mul(ct, lhs_share),
        lambda: b.mul(ct, b.sub(b.scalar(1.0, lhs_share), lhs_share)),
    )  # fmt: skip


@register(R.Atan2Op)
def atan2_rule(b: ReverseBuilder, op, cts):
    # z = atan2(y, x): dz/dy = x / (x^2 + y^2), dz/dx = -y / (x^2 + y^2)
    ct, y, x = cts[0], op.lhs, op.rhs
    scaled = b.div(ct, b.add(b.mul(x, x), b.mul(y, y)))
    return _to_operands(b, op, lambda: b.mul(scaled, x), lambda: b.neg(b.mul(scaled, y)))


@register(R.WhereOp)
def where_rule(b: ReverseBuilder, op, cts):
    ct, pred = cts[0], op.pred
    zero = b.scalar(0.0, ct)
    return [
        None,  # the mask gets no gradient
        b.unbroadcast(_where(b, pred, ct, zero), b.shape(op.on_true)) if b.needs(1) else None,
        b.unbroadcast(_where(b, pred, zero, ct), b.shape(op.on_false)) if b.needs(2) else None,
    ]


# ---------------------------------------------------------------------------
# Reductions: the cotangent goes back along the reduced axis (see raster_rules_linalg).


def _keepdims(b: ReverseBuilder, v, shape, axis):
    return b.reshape(v, b.keepdims_shape(shape, axis))


def _reduce(b: ReverseBuilder, op_cls, x, axis):
    return b.emit(op_cls, [x], axis=axis, keepdims=True)


@register(R.MinOp)
def min_rule(b: ReverseBuilder, op, cts):
    # dx = [x == min] * ct / (number of positions equal to the min)
    x, shape, axis = op.input, b.shape(op.input), op.params()["axis"]
    at_low = b.emit(R.EqualOp, [x, _keepdims(b, op.result, shape, axis)])
    share = b.div(_keepdims(b, cts[0], shape, axis), b.sum(at_low, axis=axis, keepdims=True))
    return [b.mul(at_low, share)]


@register(R.ProdOp)
def prod_rule(b: ReverseBuilder, op, cts):
    x, shape, axis = op.input, b.shape(op.input), op.params()["axis"]
    zero, one = b.scalar(0.0, x), b.scalar(1.0, x)
    is_zero = b.emit(R.EqualOp, [x, zero])
    zeros = b.sum(is_zero, axis=axis, keepdims=True)  # zeros per reduced slice
    safe = _where(b, is_zero, one, x)
    others = _reduce(b, R.ProdOp, safe, axis)  # product of the non-zero elements
    lone_zero = b.mul(b.emit(R.EqualOp, [zeros, one]), is_zero)  # the only zero of its slice
    slope = _where(b, b.emit(R.EqualOp, [zeros, zero]), b.div(others, safe), _where(b, lone_zero, others, zero))
    return [b.mul(_keepdims(b, cts[0], shape, axis), slope)]


@register(R.LogSumExpOp)
def logsumexp_rule(b: ReverseBuilder, op, cts):
    # d lse / dx = exp(x - lse) (the softmax along the axis)
    x, shape, axis = op.input, b.shape(op.input), op.params()["axis"]
    weights = b.emit(R.ExpOp, [b.sub(x, _keepdims(b, op.result, shape, axis))])
    return [b.mul(_keepdims(b, cts[0], shape, axis), weights)]


@register(R.CumsumOp)
def cumsum_rule(b: ReverseBuilder, op, cts):
    # x[j] feeds y[i] for every i >= j (i <= j when reversed): the cotangent is summed the other way.
    params = op.params()
    return [b.emit(R.CumsumOp, [cts[0]], axis=params["axis"], reverse=not params["reverse"])]
