"""Reverse rules of reductions, matmul and the layout ops.

Reductions send the cotangent back along the reduced axis: reshape it to the
keepdims shape, then broadcast it to the input shape. `max` sends it to the
positions equal to the maximum; when several positions tie, each gets an
equal share (ct / count), as JAX does, so the directional derivative along
any direction that keeps the tie is exact.
"""

from __future__ import annotations

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet

LINALG_RULES = RuleSet("linalg")
register = LINALG_RULES.register


def _keepdims(b: ReverseBuilder, v, input_shape, axis):
    """A reduction's cotangent or result reshaped to the keepdims shape of `input_shape`."""
    return b.reshape(v, b.keepdims_shape(input_shape, axis))


@register(R.SumOp)
def sum_rule(b: ReverseBuilder, op, cts):
    shape, axis = b.shape(op.input), op.params()["axis"]
    ct = cts[0] if axis is None else _keepdims(b, cts[0], shape, axis)
    return [b.broadcast_to(ct, shape)]


@register(R.MeanOp)
def mean_rule(b: ReverseBuilder, op, cts):
    shape, axis = b.shape(op.input), op.params()["axis"]
    count = 1
    for d in shape if axis is None else (shape[axis],):
        count *= d
    ct = b.div(cts[0], b.scalar(float(count), cts[0]))
    ct = ct if axis is None else _keepdims(b, ct, shape, axis)
    return [b.broadcast_to(ct, shape)]


@register(R.MaxOp)
def max_rule(b: ReverseBuilder, op, cts):
    # dx = [x == max] * ct / (number of positions equal to the max)
    x, shape, axis = op.input, b.shape(op.input), op.params()["axis"]
    peak = _keepdims(b, op.result, shape, axis)
    at_peak = b.emit(R.EqualOp, [x, peak])
    count = b.sum(at_peak, axis=axis, keepdims=True)
    share = b.div(_keepdims(b, cts[0], shape, axis), count)
    return [b.mul(at_peak, share)]


@register(R.MatmulOp)
def matmul_rule(b: ReverseBuilder, op, cts):
    # C = A @ B for 1-D / 2-D operands; each case is the textbook transpose product.
    ct, a, m = cts[0], op.lhs, op.rhs
    rank_a, rank_b = len(b.shape(a)), len(b.shape(m))

    def outer(u, v):  # u (p,), v (q,) -> (p, q)
        return b.mul(b.reshape(u, (b.shape(u)[0], 1)), v)

    def d_lhs():
        if rank_a == 2 and rank_b == 2:  # (m,k)@(k,n): dA = C' @ B^T
            return b.matmul(ct, b.transpose(m, (1, 0)))
        if rank_a == 2:  # (m,k)@(k,): dA = outer(c', b)
            return outer(ct, m)
        if rank_b == 2:  # (k,)@(k,n): dA = B @ c'
            return b.matmul(m, ct)
        return b.mul(ct, m)  # (k,)@(k,): dA = c' b

    def d_rhs():
        if rank_a == 2 and rank_b == 2:  # dB = A^T @ C'
            return b.matmul(b.transpose(a, (1, 0)), ct)
        if rank_a == 2:  # dB = c' @ A
            return b.matmul(ct, a)
        if rank_b == 2:  # dB = outer(a, c')
            return outer(a, ct)
        return b.mul(ct, a)

    return [d_lhs() if b.needs(0) else None, d_rhs() if b.needs(1) else None]


@register(R.TransposeOp)
def transpose_rule(b: ReverseBuilder, op, cts):
    perm = op.params()["perm"]
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return [b.transpose(cts[0], inverse)]


@register(R.ReshapeOp)
def reshape_rule(b: ReverseBuilder, op, cts):
    return [b.reshape(cts[0], b.shape(op.input))]


@register(R.BroadcastToOp)
def broadcast_to_rule(b: ReverseBuilder, op, cts):
    return [b.unbroadcast(cts[0], b.shape(op.input))]
