"""Reverse and tangent rules of reductions, matmul and the layout ops.

The tangent of a linear op is the op applied to the tangent (sum, mean,
transpose, reshape, broadcast_to); matmul's is dA @ B + A @ dB; max's is
the tangent at the maximum (the mean over tied positions, matching the
reverse rule's equal shares).

Reductions send the cotangent back along the reduced axis: reshape it to the
keepdims shape, then broadcast it to the input shape. `max` sends it to the
positions equal to the maximum; when several positions tie, each gets an
equal share (ct / count), as JAX does, so the directional derivative along
any direction that keeps the tie is exact.
"""

from __future__ import annotations

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder

LINALG_RULES = RuleSet("linalg")
register = LINALG_RULES.register
tangent = LINALG_RULES.register_tangent


def _keepdims(b: ReverseBuilder, v, input_shape, axis):
    """A reduction's cotangent or result reshaped to the keepdims shape of `input_shape`."""
    return b.reshape(v, b.keepdims_shape(input_shape, axis))


@register(R.SumOp)
def sum_rule(b: ReverseBuilder, op, cts):
    shape, axis = b.shape(op.input), op.params()["axis"]
    ct = cts[0] if axis is None else _keepdims(b, cts[0], shape, axis)
    return [b.broadcast_to(ct, shape)]


@tangent(R.SumOp, R.MeanOp)
def reduction_tangent(b: TangentBuilder, op, ts):
    return [b.emit(type(op), [ts[0]], **op.params())]


@register(R.MeanOp)
def mean_rule(b: ReverseBuilder, op, cts):
    shape, axis = b.shape(op.input), op.params()["axis"]
    count = 1
    for d in shape if axis is None else (shape[axis],):
        count *= d
    ct = b.div(cts[0], b.scalar(float(count), cts[0]))
    ct = ct if axis is None else _keepdims(b, ct, shape, axis)
    return [b.broadcast_to(ct, shape)]


def _max_shares(b: ReverseBuilder | TangentBuilder, op):
    """[x == max] / (number of positions equal to the max), in the keepdims shape of the reduction."""
    x, shape, axis = op.input, b.shape(op.input), op.params()["axis"]
    peak = _keepdims(b, op.result, shape, axis)
    at_peak = b.emit(R.EqualOp, [x, peak])
    return b.div(at_peak, b.sum(at_peak, axis=axis, keepdims=True))


@register(R.MaxOp)
def max_rule(b: ReverseBuilder, op, cts):
    # dx = [x == max] * ct / (number of positions equal to the max)
    shape, axis = b.shape(op.input), op.params()["axis"]
    return [b.mul(_max_shares(b, op), _keepdims(b, cts[0], shape, axis))]


@tangent(R.MaxOp)
def max_tangent(b: TangentBuilder, op, ts):
    axis = op.params()["axis"]
    shared = b.sum(b.mul(_max_shares(b, op), ts[0]), axis=axis, keepdims=True)
    return [b.reshape(shared, b.shape(op.result))]


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


@tangent(R.MatmulOp)
def matmul_tangent(b: TangentBuilder, op, ts):
    da, dm = ts
    return [b.sum_terms(
        b.matmul(da, op.rhs) if da is not None else None,
        b.matmul(op.lhs, dm) if dm is not None else None,
        like=op.result,
    )]  # fmt: skip


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


@tangent(R.TransposeOp, R.ReshapeOp, R.BroadcastToOp)
def layout_tangent(b: TangentBuilder, op, ts):
    # Linear ops: the same op moves the tangent's elements as it moves the primal's.
    return [b.emit(type(op), [ts[0]], **op.params())]
