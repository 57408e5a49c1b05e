"""Reverse and tangent rules of the neural-network raster ops: dense, softmax, log_softmax, the losses.

The tangent rules are direct: softmax's tangent is y * (dx - sum(y * dx)),
O(n) per row, never its n x n Jacobian; the losses' tangents are one
reduction.

Shapes: W (out, in), x (in,) or (batch, in), b (out,); the losses are batch
means for 2-D inputs, so their cotangents are divided by the batch size.

cross_entropy clamps p at the smallest normal number `tiny` of its dtype.
Its rule returns -y / max(p, tiny) for p, that is the derivative of -y log p
evaluated at the clamped p: where the clamp is active (p < tiny) the true
derivative of the clamped loss would be 0, which would stop training on the
examples that need it most, so the rule keeps the large, finite, correctly
signed gradient instead (the clamp is treated as the identity). The tangent
rule makes the same choice, so forward and reverse mode agree, and the
second derivative of the loss in p is y / max(p, tiny)**2 where p > tiny
and 0 where the clamp is active (the derivative of the rule's maximum).
"""

from __future__ import annotations

import numpy as np

from raster_mlir.dialects import raster as R

from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder

NN_RULES = RuleSet("nn")
register = NN_RULES.register
tangent = NN_RULES.register_tangent


@register(R.DenseOp)
def dense_rule(b: ReverseBuilder, op, cts):
    # y = W x + b.  1-D: dW = outer(dy, x), dx = dy @ W, db = dy.
    #               2-D: dW = dy^T @ x,    dx = dy @ W, db = sum over the batch of dy.
    dy, w, x = cts[0], op.weight, op.input
    batched = len(b.shape(x)) == 2
    d_weight = d_input = d_bias = None
    if b.needs(0):
        if batched:
            d_weight = b.matmul(b.transpose(dy, (1, 0)), x)
        else:
            d_weight = b.mul(b.reshape(dy, (b.shape(dy)[0], 1)), x)
    if b.needs(1):
        d_input = b.matmul(dy, w)
    if b.needs(2):
        d_bias = b.sum(dy, axis=0) if batched else dy
    return [d_weight, d_input, d_bias]


@tangent(R.DenseOp)
def dense_tangent(b: TangentBuilder, op, ts):
    # dy = dW x + W dx + db, each product a dense op (whose lowering knows sparse and batched x)
    d_weight, d_input, d_bias = ts
    w, x = op.weight, op.input
    zero_bias = None
    terms = []
    if d_weight is not None:
        bias = d_bias if d_bias is not None else (zero_bias := b.zeros_like(op.bias))
        terms.append(b.emit(R.DenseOp, [d_weight, x, bias]))
    elif d_bias is not None:
        terms.append(d_bias)
    if d_input is not None:
        terms.append(b.emit(R.DenseOp, [w, d_input, zero_bias or b.zeros_like(op.bias)]))
    return [b.sum_terms(*terms, like=op.result)]


def _softmax_jacobian_times(b: ReverseBuilder | TangentBuilder, y, v):
    """J v for y = softmax(x) over the last axis: y * (v - sum(v * y)). J is symmetric, so also J^T v."""
    last = len(b.shape(y)) - 1
    return b.mul(y, b.sub(v, b.sum(b.mul(v, y), axis=last, keepdims=True)))


@register(R.SoftmaxOp)
def softmax_rule(b: ReverseBuilder, op, cts):
    return [_softmax_jacobian_times(b, op.result, cts[0])]


@tangent(R.SoftmaxOp)
def softmax_tangent(b: TangentBuilder, op, ts):
    return [_softmax_jacobian_times(b, op.result, ts[0])]


@register(R.LogSoftmaxOp)
def log_softmax_rule(b: ReverseBuilder, op, cts):
    # dx = ct - softmax(x) * sum(ct) over the last axis, with softmax(x) = exp(y)
    ct, y = cts[0], op.result
    last = len(b.shape(y)) - 1
    total = b.sum(ct, axis=last, keepdims=True)
    return [b.sub(ct, b.mul(b.emit(R.ExpOp, [y]), total))]


@tangent(R.LogSoftmaxOp)
def log_softmax_tangent(b: TangentBuilder, op, ts):
    # dy = dx - sum(softmax(x) * dx) over the last axis
    dx, y = ts[0], op.result
    last = len(b.shape(y)) - 1
    return [b.sub(dx, b.sum(b.mul(b.emit(R.ExpOp, [y]), dx), axis=last, keepdims=True))]


def _loss_scale(b: ReverseBuilder, ct, operand):
    """The loss cotangent divided by the batch size for 2-D (batch-mean) losses."""
    shape = b.shape(operand)
    return b.div(ct, b.scalar(float(shape[0]), ct)) if len(shape) == 2 else ct


def _clamped_probs(b: ReverseBuilder | TangentBuilder, p):
    tiny = float(np.finfo(np.float32 if b.dtype(p) == "f32" else np.float64).tiny)
    return b.emit(R.MaximumOp, [p, b.scalar(tiny, p)])


@register(R.CrossEntropyOp)
def cross_entropy_rule(b: ReverseBuilder, op, cts):
    # L = -sum(y * log(max(p, tiny))) [/ batch]
    p, y = op.probs, op.target
    scale = _loss_scale(b, cts[0], p)
    clamped = _clamped_probs(b, p)
    d_probs = b.neg(b.mul(b.div(y, clamped), scale)) if b.needs(0) else None
    d_target = b.neg(b.mul(b.emit(R.LogOp, [clamped]), scale)) if b.needs(1) else None
    return [d_probs, d_target]


@tangent(R.CrossEntropyOp)
def cross_entropy_tangent(b: TangentBuilder, op, ts):
    # dL = -sum(dp * y / max(p, tiny) + dy * log(max(p, tiny))) [/ batch]
    d_probs, d_target = ts
    p, y = op.probs, op.target
    clamped = _clamped_probs(b, p)
    terms = b.sum_terms(
        b.mul(d_probs, b.div(y, clamped)) if d_probs is not None else None,
        b.mul(d_target, b.emit(R.LogOp, [clamped])) if d_target is not None else None,
        like=p,
    )
    return [b.neg(_loss_scale(b, b.sum(terms), p))]


@register(R.SoftmaxCrossEntropyOp)
def softmax_cross_entropy_rule(b: ReverseBuilder, op, cts):
    # (L, s) = (-sum(y * log_softmax(z)) [/ batch], softmax(z))
    # dz from L: (s * sum(y) - y) * ct_L  (= (s - y) * ct_L for one-hot rows)
    # dz from s: the softmax rule, s * (ct_s - sum(ct_s * s))
    # dy from L: -log_softmax(z) * ct_L; s does not depend on y.
    ct_loss, ct_softmax = cts
    z, y, s = op.logits, op.target, op.softmax
    last = len(b.shape(z)) - 1
    scale = _loss_scale(b, ct_loss, z) if ct_loss is not None else None
    d_logits = d_target = None
    if b.needs(0):
        parts = []
        if scale is not None:
            row_mass = b.sum(y, axis=last, keepdims=True)
            parts.append(b.mul(b.sub(b.mul(s, row_mass), y), scale))
        if ct_softmax is not None:
            dot = b.sum(b.mul(ct_softmax, s), axis=last, keepdims=True)
            parts.append(b.mul(s, b.sub(ct_softmax, dot)))
        for part in parts:
            d_logits = part if d_logits is None else b.add(d_logits, part)
    if b.needs(1) and scale is not None:
        d_target = b.neg(b.mul(b.emit(R.LogSoftmaxOp, [z]), scale))
    return [d_logits, d_target]


@tangent(R.SoftmaxCrossEntropyOp)
def softmax_cross_entropy_tangent(b: TangentBuilder, op, ts):
    # dL = sum(dz * (s * sum(y) - y) - dy * log_softmax(z)) [/ batch]; ds = softmax's tangent of dz
    d_logits, d_target = ts
    z, y, s = op.logits, op.target, op.softmax
    last = len(b.shape(z)) - 1
    loss_terms = []
    if d_logits is not None:
        row_mass = b.sum(y, axis=last, keepdims=True)
        loss_terms.append(b.mul(d_logits, b.sub(b.mul(s, row_mass), y)))
    if d_target is not None:
        loss_terms.append(b.neg(b.mul(d_target, b.emit(R.LogSoftmaxOp, [z]))))
    d_loss = _loss_scale(b, b.sum(b.sum_terms(*loss_terms, like=z)), z)
    d_softmax = _softmax_jacobian_times(b, s, d_logits) if d_logits is not None else None
    return [d_loss, d_softmax]
