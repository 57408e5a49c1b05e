"""Reverse and tangent rules of the maths ops of `raster_maths.py`.

Each op's derivative is written once, as its partial derivatives (`slope`
functions), and both rules are built from it: the reverse rule multiplies the
cotangent by the partials (and unbroadcasts), the tangent rule multiplies the
operand tangents by them and sums. Reductions send the cotangent back along
the reduced axis and their tangents are sums of slope * tangent over it.

Conventions at points without a derivative (documented choices, all finite
unless the function itself is not):
- abs'(0) = 0 (the slope is sign(x)), as JAX;
- minimum(x, y) at ties x == y gives each side half, like maximum;
- min over an axis shares the derivative equally among tied minima, like max;
- prod's derivative is exact with zeros in the input: with no zero it is
  prod / x_i; with exactly one zero only that element gets the product of the
  others; with two or more zeros it is 0 everywhere;
- atan2(y, x) at (0, 0) has no derivative: the rules give NaN there (0 / 0);
- sign and the comparisons are marked non-differentiable (zero derivative).
"""

from __future__ import annotations

import math

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder
from .raster_rules_linalg import _keepdims, _max_shares

MATHS_RULES = RuleSet("maths")
register = MATHS_RULES.register
tangent = MATHS_RULES.register_tangent
MATHS_RULES.mark_nondifferentiable(R.SignOp, R.LessOp, R.LessEqualOp, R.GreaterEqualOp, R.NotEqualOp)

Builder = ReverseBuilder | TangentBuilder


def _where(b: Builder, pred, on_true, on_false):
    return b.emit(R.WhereOp, [pred, on_true, on_false])


# ---------------------------------------------------------------------------
# Unary: y = f(x); both rules multiply by the slope f'(x).


def _register_both(op_classes, name: str, reverse_rule, tangent_rule) -> None:
    reverse_rule.__name__, tangent_rule.__name__ = f"{name}_rule", f"{name}_tangent"
    register(*op_classes)(reverse_rule)
    tangent(*op_classes)(tangent_rule)


def unary(*op_classes):
    """Decorator: `slope(b, op) = f'(x)` becomes the reverse rule (ct * slope) and the tangent rule (dx * slope)."""

    def decorate(slope):
        _register_both(
            op_classes, slope.__name__,
            lambda b, op, cts: [b.mul(cts[0], slope(b, op))],
            lambda b, op, ts: [b.mul(ts[0], slope(b, op))],
        )  # fmt: skip
        return slope

    return decorate


@unary(R.SinOp)
def sin_slope(b, op):
    return b.emit(R.CosOp, [op.input])


@unary(R.CosOp)
def cos_slope(b, op):
    return b.neg(b.emit(R.SinOp, [op.input]))


@unary(R.TanOp)
def tan_slope(b, op):
    y = op.result  # tan' = 1 + tan^2
    return b.add(b.scalar(1.0, y), b.mul(y, y))


@unary(R.Exp2Op)
def exp2_slope(b, op):
    y = op.result
    return b.mul(y, b.scalar(math.log(2.0), y))


@unary(R.Log1pOp)
def log1p_slope(b, op):
    x = op.input
    return b.div(b.scalar(1.0, x), b.add(x, b.scalar(1.0, x)))


@unary(R.Expm1Op)
def expm1_slope(b, op):
    y = op.result  # (e^x - 1)' = e^x = y + 1
    return b.add(y, b.scalar(1.0, y))


@unary(R.AbsOp)
def abs_slope(b, op):
    return b.emit(R.SignOp, [op.input])  # abs'(0) = sign(0) = 0


@unary(R.ErfOp)
def erf_slope(b, op):
    x = op.input  # erf' = 2 / sqrt(pi) * exp(-x^2)
    return b.mul(b.scalar(2.0 / math.sqrt(math.pi), x), b.emit(R.ExpOp, [b.neg(b.mul(x, x))]))


@unary(R.SoftplusOp)
def softplus_slope(b, op):
    return b.emit(R.SigmoidOp, [op.input])


# ---------------------------------------------------------------------------
# Binary with broadcasting: z = f(x, y) with partials (dz/dx, dz/dy) of the result's shape.


def binary(*op_classes):
    """Decorator: `partials(b, op) = (dz/dx, dz/dy)` becomes both rules of z = f(x, y)."""

    def decorate(partials):
        def reverse_rule(b: ReverseBuilder, op, cts):
            d_lhs, d_rhs = partials(b, op)
            return [
                b.unbroadcast(b.mul(cts[0], d_lhs), b.shape(op.lhs)) if b.needs(0) else None,
                b.unbroadcast(b.mul(cts[0], d_rhs), b.shape(op.rhs)) if b.needs(1) else None,
            ]

        def tangent_rule(b: TangentBuilder, op, ts):
            terms = [b.mul(t, d) if t is not None else None for t, d in zip(ts, partials(b, op))]
            return [b.sum_terms(*terms, like=op.result)]

        _register_both(op_classes, partials.__name__, reverse_rule, tangent_rule)
        return partials

    return decorate


@binary(R.MinimumOp)
def minimum_partials(b, op):
    # The lhs's share is 1 where x < y, 1/2 where x == y, else 0; the rhs gets the rest.
    x, y = op.lhs, op.rhs
    ties = b.emit(R.EqualOp, [x, y])
    lhs_share = b.add(b.emit(R.LessOp, [x, y]), b.mul(ties, b.scalar(0.5, ties)))
    return lhs_share, b.sub(b.scalar(1.0, lhs_share), lhs_share)


@binary(R.Atan2Op)
def atan2_partials(b, op):
    # z = atan2(y, x): dz/dy = x / (x^2 + y^2), dz/dx = -y / (x^2 + y^2)
    y, x = op.lhs, op.rhs
    r2 = b.add(b.mul(x, x), b.mul(y, y))
    return b.div(x, r2), b.neg(b.div(y, r2))


@register(R.WhereOp)
def where_rule(b: ReverseBuilder, op, cts):
    ct, pred = cts[0], op.pred
    zero = b.scalar(0.0, ct)
    return [
        None,  # the mask gets no gradient
        b.unbroadcast(_where(b, pred, ct, zero), b.shape(op.on_true)) if b.needs(1) else None,
        b.unbroadcast(_where(b, pred, zero, ct), b.shape(op.on_false)) if b.needs(2) else None,
    ]


@tangent(R.WhereOp)
def where_tangent(b: TangentBuilder, op, ts):
    _, d_true, d_false = ts
    if d_true is None and d_false is None:
        return [None]
    zero = b.scalar(0.0, op.result)
    return [b.broadcast_to(
        _where(b, op.pred, d_true if d_true is not None else zero, d_false if d_false is not None else zero),
        b.shape(op.result),
    )]  # fmt: skip


# ---------------------------------------------------------------------------
# Reductions: dy = sum over the axis of slope * dx; dx = slope * ct (ct along the axis).


def reduction(*op_classes):
    """Decorator: `slope(b, op)` (dy/dx, in x's shape) becomes both rules of a reduction y = r(x)."""

    def decorate(slope):
        def reverse_rule(b: ReverseBuilder, op, cts):
            shape, axis = b.shape(op.input), op.params()["axis"]
            return [b.mul(_keepdims(b, cts[0], shape, axis), slope(b, op))]

        def tangent_rule(b: TangentBuilder, op, ts):
            total = b.sum(b.mul(slope(b, op), ts[0]), axis=op.params()["axis"], keepdims=True)
            return [b.reshape(total, b.shape(op.result))]

        _register_both(op_classes, slope.__name__, reverse_rule, tangent_rule)
        return slope

    return decorate


@reduction(R.MinOp)
def min_slope(b, op):
    return _max_shares(b, op)  # [x == min] / (number of tied minima): the same rule as max


@reduction(R.ProdOp)
def prod_slope(b, op):
    # d prod / dx_i = (product of the slice's other elements), without dividing by a zero:
    # (product of its non-zero elements) / x_i (x_i read as 1 where it is 0), times the product of
    # the slice's other zeros: 1 if none, that zero's value if one (0, but it moves with it, so the
    # slope's own derivative, the Hessian, is exact), 0 if two or more (value and slope 0).
    x, axis = op.input, op.params()["axis"]
    zero, one = b.scalar(0.0, x), b.scalar(1.0, x)
    is_zero = b.emit(R.EqualOp, [x, zero])
    safe = _where(b, is_zero, one, x)
    others = b.emit(R.ProdOp, [safe], axis=axis, keepdims=True)  # product of the non-zero elements
    other_zeros = b.sub(b.sum(is_zero, axis=axis, keepdims=True), is_zero)  # zeros of the slice besides x_i
    zero_values = b.sub(b.sum(b.mul(is_zero, x), axis=axis, keepdims=True), b.mul(is_zero, x))
    factor = _where(b, b.emit(R.EqualOp, [other_zeros, zero]), one,
                    _where(b, b.emit(R.EqualOp, [other_zeros, one]), zero_values, zero))  # fmt: skip
    return b.broadcast_to(b.mul(b.div(others, safe), factor), b.shape(x))


@reduction(R.LogSumExpOp)
def logsumexp_slope(b, op):
    # d lse / dx = exp(x - lse) (the softmax along the axis)
    x, axis = op.input, op.params()["axis"]
    return b.emit(R.ExpOp, [b.sub(x, _keepdims(b, op.result, b.shape(x), axis))])


@register(R.CumsumOp)
def cumsum_rule(b: ReverseBuilder, op, cts):
    # x[j] feeds y[i] for every i >= j (i <= j when reversed): the cotangent is summed the other way.
    params = op.params()
    return [b.emit(R.CumsumOp, [cts[0]], axis=params["axis"], reverse=not params["reverse"])]


@tangent(R.CumsumOp)
def cumsum_tangent(b: TangentBuilder, op, ts):
    return [b.emit(R.CumsumOp, [ts[0]], **op.params())]
