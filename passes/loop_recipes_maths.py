"""Loop recipes of the maths ops (`dialects/raster_maths.py`), added to `loop_recipes.RECIPES`.

Elementwise ops are one loop nest over the result (the shared `elementwise`
recipe), each element computed by upstream `math` / `arith` ops, so
fuse-loops merges them with their neighbours and the backend picks the
scalar or vector code for `math.sin`, `math.erf`...:

- sign(x) = x > 0 ? 1 : (x < 0 ? -1 : (x == x ? 0 : x)), so NaN stays NaN and -0 gives 0;
- softplus(x) = max(x, 0) + log1p(exp(-|x|)), which never overflows;
- where(p, a, b) = select(p != 0, a, b) (`une`: a NaN mask selects a, as numpy);
- comparisons: select(cmpf(x, y), 1.0, 0.0).

min / prod reuse the reduction recipe of loop_recipes. logsumexp runs, per
output element, a max pass and a sum-of-exp pass over the reduced axes (m + log(sum(exp(x - m))),
m replaced by 0 where it is infinite). cumsum carries a running sum along
its axis; along an outer axis it adds whole rows (the inner loop stays on
the unit-stride last axis).
"""

from __future__ import annotations

import math as pymath

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import IntegerType

from raster_mlir.dialects import raster as R

from .loop_builder import LoopBuilder
from .loop_recipes import RECIPES, _mask, at, elementwise, full_index, reduction


def _sign(b: LoopBuilder, x):
    ft = x.type
    one, zero = b.float(1.0, ft), b.float(0.0, ft)
    not_nan = b.select(b.cmpf(x, x, "oeq"), zero, x)
    negative = b.select(b.cmpf(x, zero, "olt"), b.float(-1.0, ft), not_nan)
    return b.select(b.cmpf(x, zero, "ogt"), one, negative)


def _softplus(b: LoopBuilder, x):
    ft = x.type
    tail = b.add(math.Log1pOp(b.exp(b.negf(b.add(math.AbsFOp(x))))))
    return b.addf(b.maxf(x, b.float(0.0, ft)), tail)


def _where(b: LoopBuilder, p, on_true, on_false):
    if isinstance(p.type, IntegerType):  # traced integers
        return b.select(b.add(arith.CmpiOp(p, b.integer(0, p.type), "ne")), on_true, on_false)
    return b.select(b.cmpf(p, b.float(0.0, p.type), "une"), on_true, on_false)


def _unary(op_cls):
    return elementwise(lambda b, x: b.add(op_cls(x)))


# ---------------------------------------------------------------------------
# logsumexp and cumsum


def _kept_and_reduced(rank: int, axis):
    axes = list(range(rank)) if axis is None else [axis]
    return [k for k in range(rank) if k not in axes], axes


def logsumexp(b: LoopBuilder, op, ins, outs):
    x, out = ins[0], outs[0]
    params = op.params()
    rank, ft = len(x.shape), out.element_type
    kept, axes = _kept_and_reduced(rank, params["axis"])

    def per_output(kept_idx):
        def full(red_idx):
            return full_index(rank, kept, kept_idx, axes, red_idx)

        extents = [x.shape[a] for a in axes]
        peak = b.reduce_nest(extents, [b.float(-pymath.inf, ft)], lambda r, m: [b.maxf(m, at(b, x, full(r)))])[0]
        finite = b.cmpf(b.add(math.AbsFOp(peak)), b.float(pymath.inf, ft), "olt")
        shift = b.select(finite, peak, b.float(0.0, ft))  # as JAX: all -inf gives -inf, +inf gives +inf
        total = b.reduce_nest(
            extents, [b.float(0.0, ft)], lambda r, s: [b.addf(s, b.exp(b.subf(at(b, x, full(r)), shift)))]
        )[0]
        result = b.addf(b.log(total), shift)
        if params["keepdims"]:
            b.store(result, out.ref, full([b.index(0)] * len(axes)))
        else:
            b.store(result, out.ref, list(kept_idx))

    b.nest([x.shape[k] for k in kept], per_output)


def _position(b: LoopBuilder, i, n: int, reverse: bool):
    """i, or n - 1 - i when walking from the end."""
    return b.subi(b.index(n - 1), i) if reverse else i


def cumsum(b: LoopBuilder, op, ins, outs):
    x, out = ins[0], outs[0]
    params = op.params()
    axis, reverse = params["axis"], params["reverse"]
    shape, ft = x.shape, out.element_type
    n = shape[axis]
    before, after = list(shape[:axis]), list(shape[axis + 1 :])
    if not after:
        # Along the last axis: one running sum per row.
        def per_row(row):
            def step(i, acc):
                idx = [*row, _position(b, i, n, reverse)]
                total = b.addf(acc, at(b, x, idx))
                b.store(total, out.ref, idx)
                return [total]

            b.loop(n, [b.float(0.0, ft)], step)

        b.nest(before, per_row)
        return
    if n == 0:
        return

    # Along an outer axis: out[.., i, ..] = out[.., i -/+ 1, ..] + x[.., i, ..], row by row.
    def per_block(pre):
        first = b.index(n - 1 if reverse else 0)
        b.nest(after, lambda post: b.store(at(b, x, [*pre, first, *post]), out.ref, [*pre, first, *post]))

        def row(i):
            here = _position(b, i, n, reverse)
            prev = b.addi(here, b.index(1)) if reverse else b.subi(here, b.index(1))

            def element(post):
                total = b.addf(b.load(out.ref, [*pre, prev, *post]), at(b, x, [*pre, here, *post]))
                b.store(total, out.ref, [*pre, here, *post])

            b.nest(after, element)

        if n > 1:
            b.range_loop(b.index(1), b.index(n), b.index(1), body=row)

    b.nest(before, per_block)


MATHS_RECIPES = {
    R.SinOp: _unary(math.SinOp),
    R.CosOp: _unary(math.CosOp),
    R.TanOp: _unary(math.TanOp),
    R.Exp2Op: _unary(math.Exp2Op),
    R.Log1pOp: _unary(math.Log1pOp),
    R.Expm1Op: _unary(math.ExpM1Op),
    R.AbsOp: _unary(math.AbsFOp),
    R.ErfOp: _unary(math.ErfOp),
    R.SignOp: elementwise(_sign),
    R.SoftplusOp: elementwise(_softplus),
    R.MinimumOp: elementwise(lambda b, x, y: b.add(arith.MinimumfOp(x, y))),
    R.Atan2Op: elementwise(lambda b, y, x: b.add(math.Atan2Op(y, x))),
    R.WhereOp: elementwise(_where),
    R.MinOp: reduction("min"),
    R.ProdOp: reduction("prod"),
    R.LogSumExpOp: logsumexp,
    R.CumsumOp: cumsum,
}
MATHS_RECIPES.update({cls: elementwise(_mask(cls.PREDICATE)) for cls in (R.LessOp, R.LessEqualOp, R.GreaterEqualOp, R.NotEqualOp)})
RECIPES.update(MATHS_RECIPES)
