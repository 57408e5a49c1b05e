"""Reverse and tangent rules of the elementwise raster ops (unary, and binary with broadcasting).

Each reverse rule gets the cotangent `ct` of the result and returns one
cotangent per operand. Binary ops broadcast, so each operand's cotangent is
reduced back to its own shape with `unbroadcast`. Each tangent rule gets one
tangent per operand (None: zero) and returns the result's tangent; an
operand's tangent broadcasts like the operand (`sum_terms(..., like=z)`).

Second derivatives: every rule is written in differentiable raster ops, so
the IR the AD passes emit can be differentiated again. The comparison masks
(relu's x > 0, maximum's x > y / x == y, pow's x == 0) are constants to the
next derivative, which is exact wherever the function is twice
differentiable (away from the kinks, where the true second derivative of
the mask is zero almost everywhere).

Conventions at kinks (documented choices, all finite):
- relu'(0) = 0 (the mask is x > 0), as in JAX and PyTorch;
- maximum(x, y) at ties x == y gives each side half the cotangent, as JAX does,
  so maximum(x, x) has derivative 1;
- pow(x, y) w.r.t. y is z * log(x), taken as 0 where x == 0 (as JAX); it is
  NaN for x < 0, where x ** y itself is NaN for non-integer y.
"""

from __future__ import annotations

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder

ELEMENTWISE_RULES = RuleSet("elementwise")
register = ELEMENTWISE_RULES.register
tangent = ELEMENTWISE_RULES.register_tangent


# ---------------------------------------------------------------------------
# Unary: y = f(x) has the diagonal Jacobian f'(x), its own transpose, so one
# function `v -> v * f'(x)` is both rules: dx = ct * f'(x) and dy = dx * f'(x).
# It is written with y where that is cheaper.


def diagonal(*op_classes):
    """Decorator: `scale(b, op, v) = v * f'(x)` becomes the reverse and the tangent rule of y = f(x)."""

    def decorate(scale):
        def reverse_rule(b: ReverseBuilder, op, cts):
            return [scale(b, op, cts[0])]

        def tangent_rule(b: TangentBuilder, op, ts):
            return [scale(b, op, ts[0])]

        reverse_rule.__name__, tangent_rule.__name__ = f"{scale.__name__}_rule", f"{scale.__name__}_tangent"
        register(*op_classes)(reverse_rule)
        tangent(*op_classes)(tangent_rule)
        return scale

    return decorate


@diagonal(R.NegOp)
def neg(b, op, v):
    return b.neg(v)


@diagonal(R.ExpOp)
def exp(b, op, v):
    return b.mul(v, op.result)


@diagonal(R.LogOp)
def log(b, op, v):
    return b.div(v, op.input)


@diagonal(R.TanhOp)
def tanh(b, op, v):
    y = op.result
    return b.mul(v, b.sub(b.scalar(1.0, y), b.mul(y, y)))


@diagonal(R.SigmoidOp)
def sigmoid(b, op, v):
    y = op.result
    return b.mul(v, b.mul(y, b.sub(b.scalar(1.0, y), y)))


@diagonal(R.SqrtOp)
def sqrt(b, op, v):
    y = op.result  # d sqrt(x) = 1 / (2 sqrt(x))
    return b.div(b.mul(v, b.scalar(0.5, y)), y)


@diagonal(R.ReluOp)
def relu(b, op, v):
    x = op.input
    return b.mul(v, b.emit(R.GreaterOp, [x, b.scalar(0.0, x)]))  # relu'(0) = 0


# ---------------------------------------------------------------------------
# Binary with broadcasting: compute the full-shape cotangent, then unbroadcast.


def _to_operands(b: ReverseBuilder, op, lhs_ct, rhs_ct):
    lhs, rhs = op.operands  # (by position: an IRDL accessor recomputes the operand segments)
    return [
        b.unbroadcast(lhs_ct(), b.shape(lhs)) if b.needs(0) else None,
        b.unbroadcast(rhs_ct(), b.shape(rhs)) if b.needs(1) else None,
    ]


@register(R.AddOp)
def add_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    return _to_operands(b, op, lambda: ct, lambda: ct)


@tangent(R.AddOp)
def add_tangent(b: TangentBuilder, op, ts):
    return [b.sum_terms(ts[0], ts[1], like=op.result)]


@register(R.SubOp)
def sub_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    return _to_operands(b, op, lambda: ct, lambda: b.neg(ct))


@tangent(R.SubOp)
def sub_tangent(b: TangentBuilder, op, ts):
    dx, dy = ts
    return [b.sum_terms(dx, b.neg(dy) if dy is not None else None, like=op.result)]


@register(R.MulOp)
def mul_rule(b: ReverseBuilder, op, cts):
    ct = cts[0]
    lhs, rhs = op.operands
    return _to_operands(b, op, lambda: b.mul(ct, rhs), lambda: b.mul(ct, lhs))


@tangent(R.MulOp)
def mul_tangent(b: TangentBuilder, op, ts):
    dx, dy = ts
    return [b.sum_terms(
        b.mul(dx, op.rhs) if dx is not None else None,
        b.mul(op.lhs, dy) if dy is not None else None,
        like=op.result,
    )]  # fmt: skip


@register(R.DivOp)
def div_rule(b: ReverseBuilder, op, cts):
    # z = x / y: dx = ct / y, dy = -ct * x / y**2 = -(ct * z) / y
    ct, z = cts[0], op.result
    return _to_operands(b, op, lambda: b.div(ct, op.rhs), lambda: b.neg(b.div(b.mul(ct, z), op.rhs)))


@tangent(R.DivOp)
def div_tangent(b: TangentBuilder, op, ts):
    # dz = dx / y - z * dy / y = (dx - z dy) / y
    dx, dy = ts
    numerator = b.sum_terms(dx, b.neg(b.mul(op.result, dy)) if dy is not None else None, like=op.result)
    return [b.div(numerator, op.rhs)]


def _pow_partials(b: ReverseBuilder | TangentBuilder, op):
    """(dz/dx, dz/dy) of z = x ** y as thunks: y * x ** (y - 1) and z * log(x), 0 where x == 0."""
    x, y, z = op.lhs, op.rhs, op.result

    def d_base():
        return b.mul(y, b.emit(R.PowOp, [x, b.sub(y, b.scalar(1.0, y))]))

    def d_exponent():
        # log(x + [x == 0]) is log(x) except 0 where x == 0.
        is_zero = b.emit(R.EqualOp, [x, b.scalar(0.0, x)])
        return b.mul(z, b.emit(R.LogOp, [b.add(x, is_zero)]))

    return d_base, d_exponent


@register(R.PowOp)
def pow_rule(b: ReverseBuilder, op, cts):
    # z = x ** y: dx = ct * y * x ** (y - 1), dy = ct * z * log(x) (0 where x == 0)
    d_base, d_exponent = _pow_partials(b, op)
    return _to_operands(b, op, lambda: b.mul(cts[0], d_base()), lambda: b.mul(cts[0], d_exponent()))


@tangent(R.PowOp)
def pow_tangent(b: TangentBuilder, op, ts):
    d_base, d_exponent = _pow_partials(b, op)
    dx, dy = ts
    return [b.sum_terms(
        b.mul(dx, d_base()) if dx is not None else None,
        b.mul(dy, d_exponent()) if dy is not None else None,
        like=op.result,
    )]  # fmt: skip


def _maximum_lhs_share(b: ReverseBuilder | TangentBuilder, op):
    """1 where x > y, 1/2 where x == y, else 0: the lhs's share of the derivative."""
    x, y = op.lhs, op.rhs
    greater = b.emit(R.GreaterOp, [x, y])
    ties = b.emit(R.EqualOp, [x, y])
    return b.add(greater, b.mul(ties, b.scalar(0.5, ties)))


@register(R.MaximumOp)
def maximum_rule(b: ReverseBuilder, op, cts):
    # The lhs gets ct where x > y, half of it where x == y; the rhs gets the rest.
    ct = cts[0]
    lhs_share = _maximum_lhs_share(b, op)
    return _to_operands(
        b, op,
        lambda: b.mul(ct, lhs_share),
        lambda: b.mul(ct, b.sub(b.scalar(1.0, lhs_share), lhs_share)),
    )  # fmt: skip


@tangent(R.MaximumOp)
def maximum_tangent(b: TangentBuilder, op, ts):
    dx, dy = ts
    lhs_share = _maximum_lhs_share(b, op)
    return [b.sum_terms(
        b.mul(dx, lhs_share) if dx is not None else None,
        b.mul(dy, b.sub(b.scalar(1.0, lhs_share), lhs_share)) if dy is not None else None,
        like=op.result,
    )]  # fmt: skip
