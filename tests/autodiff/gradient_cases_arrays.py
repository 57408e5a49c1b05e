"""Gradient cases of the maths and array ops (raster_maths.py, raster_array.py) for test_op_gradients.py.

Each case applies several ops at once (stacked or summed into one output),
so one random-direction check covers a whole family and the suite stays
fast; a wrong rule of any op in a case fails the check. Values stay away
from the ops' kinks: abs and min inputs are never 0 or tied, minimum's
operands never tie, atan2 is away from (0, 0), tan away from its poles.
Prod is smooth everywhere, so its case puts exact zeros into the input.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir.dialects import raster as R


def _row_or_matrix(draw, n):
    return draw(st.sampled_from([(n,), (draw(st.sampled_from([1, 3])), n)]))


def unary_maths(x):
    y = 0.4 * x
    return rm.stack([rm.sin(x), rm.cos(x), rm.tan(y), rm.exp2(y), rm.log1p(rm.abs(x)), rm.expm1(y),
                     rm.abs(x), rm.erf(x), rm.softplus(3.0 * x), rm.square(x), rm.reciprocal(2.0 + x)])  # fmt: skip


def binary_maths(a, b):
    return rm.stack([rm.minimum(a, b), rm.arctan2(a, b), rm.where(a > b, a * b, a - b), rm.clip(a + b, -1.1, 0.9)])


def _off_grid(rng, shape, offset):
    return rng.integers(-3, 4, shape) + offset


def _binary_args(draw, n, rng):
    m = draw(st.sampled_from([1, 3]))
    a, b = draw(st.sampled_from([((n,), (n,)), ((m, n), (n,)), ((m, 1), (1, n)), ((n,), ())]))
    return [_off_grid(rng, a, 0.25) * 0.5, _off_grid(rng, b, 0.75) * 0.5]


def reductions(x, axis, keepdims, cum_axis, reverse):
    red = rm.min(x, axis=axis, keepdims=keepdims) + rm.logsumexp(x, axis=axis, keepdims=keepdims)
    red = red + 0.1 * rm.max(x, axis=axis, keepdims=keepdims)
    cum = rm.cumsum(rm.flip(x, cum_axis) if reverse else x, axis=cum_axis)
    return rm.sum(red * red) + rm.sum(cum * cum) * 0.01


def _reduction_args(draw, n, rng):
    shape = _row_or_matrix(draw, n)
    size = int(np.prod(shape))
    values = (rng.permutation(size) * 0.25 + rng.uniform(0, 0.05, size)).reshape(shape) - size * 0.1
    axis = draw(st.sampled_from([None, *range(len(shape)), -1]))
    return [values, axis, draw(st.booleans()), draw(st.sampled_from(range(-len(shape), len(shape)))), draw(st.booleans())]


def prod_with_zeros(x, axis):
    return rm.prod(x, axis=axis)


def _prod_args(draw, n, rng):
    shape = _row_or_matrix(draw, n)
    x = rng.uniform(0.6, 1.4, shape) * rng.choice([-1.0, 1.0], shape)
    for _ in range(draw(st.integers(0, 2))):  # none, one or two exact zeros
        x[tuple(rng.integers(0, d) for d in shape)] = 0.0
    return [x, draw(st.sampled_from([None, -1]))]


def slicing(x):
    # Negative and stepped slices, an integer index, None, roll, edge and constant padding.
    y = rm.concatenate([x[..., ::-1] * 2.0, rm.roll(x, 1, -1), x[..., ::2] ** 2, x[..., -1:-3:-1], x[..., None, 0]], axis=-1)
    widths = ((0, 0),) * (y.ndim - 1) + ((1, 2),)
    return rm.pad(y, widths, mode="edge") * rm.pad(y, widths, constant_values=0.5)


def stencil(u, c):
    # A heat-equation step with fixed ends, and constant padding by a traced value (insert_slice into it).
    c = c[0]
    interior = u[1:-1] + c * (u[2:] - 2.0 * u[1:-1] + u[:-2])
    return rm.concatenate([u[:1], interior, u[-1:]]) * rm.pad(u[1:-1], 1, constant_values=c)


def _stencil_args(draw, n, rng):
    return [rng.standard_normal(n + 2), rng.uniform(0.1, 0.4, (1,))]


def cases(Case):
    """The cases, built with test_op_gradients' Case class."""
    _case = Case
    return [
        _case("maths_unary", (R.SinOp, R.CosOp, R.TanOp, R.Exp2Op, R.Log1pOp, R.Expm1Op, R.AbsOp, R.ErfOp, R.SoftplusOp),
              unary_maths, lambda draw, n, rng: [_nonzero(rng, _row_or_matrix(draw, n))]),
        _case("maths_binary", (R.MinimumOp, R.Atan2Op, R.WhereOp), binary_maths, _binary_args),
        _case("reductions", (R.MinOp, R.LogSumExpOp, R.CumsumOp), reductions, _reduction_args),
        _case("prod_with_zeros", (R.ProdOp,), prod_with_zeros, _prod_args),
        _case("slicing", (R.SliceOp, R.ConcatenateOp, R.InsertSliceOp), slicing, lambda draw, n, rng: [rng.standard_normal(_row_or_matrix(draw, n))]),
        _case("stencil", (R.SliceOp, R.ConcatenateOp, R.InsertSliceOp), stencil, _stencil_args),
    ]  # fmt: skip


def _nonzero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
