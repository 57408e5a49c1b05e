"""Gradient cases of the maths and array ops (raster_maths.py, raster_array.py) for test_op_gradients.py.

Each case applies several ops at once (stacked or summed into one output),
so one random-direction check covers a whole family and the suite stays
fast; a wrong rule of any op in a case fails the check. Values stay away
from the ops' kinks: abs and min inputs are never 0 or tied, minimum's
operands never tie, atan2 is away from (0, 0), tan away from its poles.
Prod is smooth everywhere, so its input gets exact zeros.
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
                     rm.abs(x), rm.erf(x), rm.softplus(3.0 * x), rm.square(x), rm.reciprocal(3.0 + x)])  # fmt: skip


def binary_maths(a, b):
    return rm.stack([rm.minimum(a, b), rm.arctan2(a, b), rm.where(a > b, a * b, a - b), rm.clip(a + b, -1.1, 0.9)])


def _off_grid(rng, shape, offset):
    return rng.integers(-3, 4, shape) + offset


def _binary_args(draw, n, rng):
    m = draw(st.sampled_from([1, 3]))
    a, b = draw(st.sampled_from([((n,), (n,)), ((m, n), (n,)), ((m, 1), (1, n)), ((n,), ())]))
    return [_off_grid(rng, a, 0.25) * 0.5, _off_grid(rng, b, 0.75) * 0.5]


def reductions(x, z, axis, keepdims, cum_axis, reverse):
    red = rm.min(x, axis=axis, keepdims=keepdims) + rm.logsumexp(x, axis=axis, keepdims=keepdims)
    red = red + 0.1 * rm.max(x, axis=axis, keepdims=keepdims) + rm.prod(z, axis=axis, keepdims=keepdims)
    cum = rm.cumsum(rm.flip(x, cum_axis) if reverse else x, axis=cum_axis)
    return rm.sum(red * red) + rm.sum(cum * cum) * 0.01


def _reduction_args(draw, n, rng):
    shape = _row_or_matrix(draw, n)
    size = int(np.prod(shape))
    distinct = (rng.permutation(size) * 0.25 + rng.uniform(0, 0.05, size)).reshape(shape) - size * 0.1
    # prod is smooth everywhere: its input gets exact zeros (none, one or two per slice)
    z = rng.uniform(0.6, 1.4, shape) * rng.choice([-1.0, 1.0], shape)
    for _ in range(draw(st.integers(0, 2))):
        z[tuple(rng.integers(0, d) for d in shape)] = 0.0
    axis = draw(st.sampled_from([None, *range(len(shape)), -1]))
    cum_axis = draw(st.sampled_from(range(-len(shape), len(shape))))
    return [distinct, z, axis, draw(st.booleans()), cum_axis, draw(st.booleans())]


def slicing(x, c):
    # Negative and stepped slices, an integer index, None, roll, concatenation, edge padding,
    # and constant padding by a traced value (an insert_slice into a broadcast of it).
    c = c[0]
    y = rm.concatenate([x[..., ::-2] * x[..., ::2], rm.roll(x, 1, -1), x[..., -1:-3:-1], x[..., None, 0] * c], axis=-1)
    widths = ((0, 0),) * (y.ndim - 1) + ((1, 2),)
    return rm.pad(y, widths, mode="edge") * rm.pad(y, widths, constant_values=c)


def _slicing_args(draw, n, rng):
    return [rng.standard_normal(_row_or_matrix(draw, n)), rng.uniform(0.1, 0.4, (1,))]


def cases(Case):
    """The cases, built with test_op_gradients' Case class."""
    return [
        Case("maths_unary", (R.SinOp, R.CosOp, R.TanOp, R.Exp2Op, R.Log1pOp, R.Expm1Op, R.AbsOp, R.ErfOp, R.SoftplusOp),
             unary_maths, lambda draw, n, rng: [_nonzero(rng, _row_or_matrix(draw, n))]),
        Case("maths_binary", (R.MinimumOp, R.Atan2Op, R.WhereOp), binary_maths, _binary_args),
        Case("reductions", (R.MinOp, R.ProdOp, R.LogSumExpOp, R.CumsumOp), reductions, _reduction_args),
        Case("slicing", (R.SliceOp, R.ConcatenateOp, R.InsertSliceOp), slicing, _slicing_args),
    ]  # fmt: skip


def _nonzero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
