"""The array primitives: each works eagerly on numpy arrays and builds IR when traced.

`apply(OpClass, operands, **params)` is the single dispatch point. Inside a
trace (any operand is a `TracedArray`) it appends the raster op to the
function being traced. Outside, it checks shapes and dtypes with the same
rule the op's verifier uses and computes the result with the numpy kernel
the reference interpreter uses, so eager and compiled results agree.

Eager dtype policy: float32 / float64 arrays keep their dtype; Python
numbers and integer arrays or lists become float64, or the dtype of the
other float operand (weak typing, as in JAX). Mixing float32 and float64
arrays is a DTypeError rather than a silent promotion.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.shapes import normalize_axis, same_dtype
from raster_mlir.errors import DTypeError, RasterError, ShapeError, with_location
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.trace_state import NUMPY_DTYPES, Traced, active_scope, typed_dtype
from raster_mlir.runtime.reference import run_kernel


def apply(op_cls: type[R.RasterOp], operands: Sequence[Any], **params) -> Any:
    """Apply a raster op to traced values (building IR) or to numpy arrays (computing)."""
    traced = [o for o in operands if isinstance(o, Traced)]
    if traced:
        scope = active_scope() or traced[0].scope
        return scope.emit(op_cls, operands, params)
    return _eager(op_cls, operands, params)


def fail(error: RasterError):
    """Raise `error` at the user's source line (for checks made before any op is built)."""
    raise with_location(error, user_location())


def _eager(op_cls, operands, params):
    loc = user_location()
    where = loc
    try:
        arrays, dtype = _eager_arrays(op_cls.name, operands)
        shapes = [a.shape for a in arrays]
        params = op_cls.canonical_params(shapes, **params)
        op_cls.infer_types([R.tensor(s, dtype) for s in shapes], dtype=dtype, **params)
    except RasterError as e:
        raise with_location(e, where) from None
    outs = run_kernel(op_cls.name, arrays, params, NUMPY_DTYPES[dtype])
    outs = tuple(o[()] if o.ndim == 0 else o for o in outs)  # 0-d results as numpy scalars
    return outs[0] if len(outs) == 1 else outs


def _eager_arrays(name: str, operands) -> tuple[list[np.ndarray], str]:
    converted = []
    for o in operands:
        if isinstance(o, (bool, np.bool_)) or o is None or isinstance(o, str):
            raise DTypeError(f"{name}: {o!r} is not an array operand")
        try:
            a = np.asarray(o)
        except Exception as e:  # ragged lists and foreign objects
            raise DTypeError(f"{name}: cannot convert {type(o).__name__} to an array ({e})") from None
        if a.dtype.kind not in "iuf" or a.dtype == np.float16:
            raise DTypeError(f"{name}: arrays of dtype {a.dtype} are not supported (use float32 or float64)")
        converted.append(a)
    typed = [d for d in map(typed_dtype, operands) if d is not None]
    dtype = same_dtype(name, typed) if typed else "f64"  # the verifier's rule: mixing is refused
    arrays = [np.asarray(a, dtype=NUMPY_DTYPES[dtype], order="C") for a in converted]
    return arrays, dtype


# ---------------------------------------------------------------------------
# Elementwise


def negative(x):
    """-x elementwise."""
    return apply(R.NegOp, [x])


def exp(x):
    """e**x elementwise."""
    return apply(R.ExpOp, [x])


def log(x):
    """Natural logarithm elementwise (-inf at 0, NaN below 0, as numpy)."""
    return apply(R.LogOp, [x])


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return apply(R.TanhOp, [x])


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise, without overflow."""
    return apply(R.SigmoidOp, [x])


def sqrt(x):
    """Square root elementwise."""
    return apply(R.SqrtOp, [x])


def relu(x):
    """max(x, 0) elementwise."""
    return apply(R.ReluOp, [x])


def add(a, b):
    """a + b with numpy broadcasting."""
    return apply(R.AddOp, [a, b])


def subtract(a, b):
    """a - b with numpy broadcasting."""
    return apply(R.SubOp, [a, b])


def multiply(a, b):
    """a * b with numpy broadcasting."""
    return apply(R.MulOp, [a, b])


def divide(a, b):
    """a / b with numpy broadcasting."""
    return apply(R.DivOp, [a, b])


def power(a, b):
    """a ** b with numpy broadcasting."""
    return apply(R.PowOp, [a, b])


def maximum(a, b):
    """Elementwise maximum with numpy broadcasting."""
    return apply(R.MaximumOp, [a, b])


def minimum(a, b):
    """Elementwise minimum with numpy broadcasting (NaN if either is NaN)."""
    return apply(R.MinimumOp, [a, b])


def sin(x):
    """Sine elementwise."""
    return apply(R.SinOp, [x])


def cos(x):
    """Cosine elementwise."""
    return apply(R.CosOp, [x])


def tan(x):
    """Tangent elementwise."""
    return apply(R.TanOp, [x])


def exp2(x):
    """2**x elementwise."""
    return apply(R.Exp2Op, [x])


def log1p(x):
    """log(1 + x) elementwise, accurate for small x."""
    return apply(R.Log1pOp, [x])


def expm1(x):
    """exp(x) - 1 elementwise, accurate for small x."""
    return apply(R.Expm1Op, [x])


def abs(x):  # noqa: A001 - numpy's name
    """|x| elementwise; its gradient at 0 is 0 (as JAX)."""
    return apply(R.AbsOp, [x])


absolute = abs


def sign(x):
    """-1, 0 or 1 by the sign of x elementwise (NaN stays NaN); zero gradient."""
    return apply(R.SignOp, [x])


def floor(x):
    """The largest integer <= x elementwise (as floats); zero gradient."""
    return apply(R.FloorOp, [x])


def ceil(x):
    """The smallest integer >= x elementwise (as floats); zero gradient."""
    return apply(R.CeilOp, [x])


def trunc(x):
    """x rounded toward zero elementwise (as floats); zero gradient."""
    return apply(R.TruncOp, [x])


def rint(x):
    """x rounded to the nearest integer elementwise, halves to even (as numpy); zero gradient."""
    return apply(R.RintOp, [x])


def round(x, decimals=0):  # noqa: A001 - numpy's name
    """numpy's round: to `decimals` decimal places, halves to even, via rint(x * 10**decimals) / 10**decimals
    (negative decimals: rint(x / 10**-decimals) * 10**-decimals), the same arithmetic as numpy's."""
    decimals = operator.index(decimals)
    if decimals == 0:
        return rint(x)
    if decimals > 0:
        scale = 10.0**decimals
        return divide(rint(multiply(x, scale)), scale)
    scale = 10.0**-decimals
    return multiply(rint(divide(x, scale)), scale)


around = round


def erf(x):
    """The error function elementwise."""
    return apply(R.ErfOp, [x])


def softplus(x):
    """log(1 + exp(x)) elementwise, without overflow; its derivative is sigmoid(x)."""
    return apply(R.SoftplusOp, [x])


def square(x):
    """x * x elementwise."""
    return multiply(x, x)


def reciprocal(x):
    """1 / x elementwise."""
    return divide(1.0, x)


def arctan2(y, x):
    """The angle of the point (x, y) in (-pi, pi], with numpy broadcasting (no gradient at (0, 0))."""
    return apply(R.Atan2Op, [y, x])


def clip(x, a_min, a_max):
    """minimum(maximum(x, a_min), a_max) as numpy's clip (a bound may be None); at a bound the gradient is halved."""
    if a_min is None and a_max is None:
        fail(DTypeError("clip: give a_min, a_max or both (both are None)"))
    if a_min is not None:
        x = maximum(x, a_min)
    return x if a_max is None else minimum(x, a_max)


def greater(a, b):
    """1.0 where a > b, else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.GreaterOp, [a, b])


def equal(a, b):
    """1.0 where a == b, else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.EqualOp, [a, b])


def less(a, b):
    """1.0 where a < b, else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.LessOp, [a, b])


def less_equal(a, b):
    """1.0 where a <= b, else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.LessEqualOp, [a, b])


def greater_equal(a, b):
    """1.0 where a >= b, else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.GreaterEqualOp, [a, b])


def not_equal(a, b):
    """1.0 where a != b (or either is NaN), else 0.0 (a float mask; its gradient is zero)."""
    return apply(R.NotEqualOp, [a, b])


def where(condition, x, y):
    """x where condition is non-zero (a mask, a bool array or a number), else y; numpy broadcasting.

    Gradients flow to x and y, never to the condition.
    """
    if isinstance(condition, (bool, np.bool_)) or (isinstance(condition, np.ndarray) and condition.dtype == bool):
        condition = np.asarray(condition, dtype=np.int8)  # an integer array takes the others' dtype
    return apply(R.WhereOp, [condition, x, y])


# ---------------------------------------------------------------------------
# Reductions


def axis_argument(op: str, axis):
    """None, an int or a tuple of ints, as given to numpy; anything else is a DTypeError at the user's line."""
    try:
        if axis is None:
            return None
        if isinstance(axis, (tuple, list)):
            return tuple(operator.index(a) for a in axis)
        return operator.index(axis)
    except TypeError:
        fail(DTypeError(f"{op}: axis must be an int, a tuple of ints or None, got {axis!r}"))


def normalize_axes(op: str, axis, rank: int, shape) -> tuple[int, ...]:
    """axis (None = all, int or tuple) as sorted non-negative axes; repeats are refused (ShapeError)."""
    axis = axis_argument(op, axis)
    if axis is None:
        return tuple(range(rank))
    raw = axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(normalize_axis(op, a, rank, shape) for a in raw)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(axes))


def reduce(op_cls, x, axis, keepdims):
    """A reduction op over `axis`: None (everything), an int, or a tuple of ints (one op per axis).

    Over several axes the op is applied axis by axis, last axis first, keeping
    dims until the end: sum, max, min, prod, logsumexp and (with equal counts)
    mean of the partial results equal the reduction over all of them at once.
    """
    axis = axis_argument(op_cls.name, axis)
    if not isinstance(axis, tuple):
        return apply(op_cls, [x], axis=axis, keepdims=keepdims)
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    try:
        axes = normalize_axes(op_cls.name, axis, len(shape), shape)
    except RasterError as e:
        fail(e)
    if not axes:
        return x
    for a in reversed(axes):
        x = apply(op_cls, [x], axis=a, keepdims=True)
    return x if keepdims else reshape(x, tuple(d for k, d in enumerate(shape) if k not in axes))


def sum(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """Sum over an axis (an int or a tuple of ints), or over all elements when axis is None."""
    return reduce(R.SumOp, x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over an axis (an int or a tuple of ints), or over all elements when axis is None."""
    return reduce(R.MeanOp, x, axis, keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """Maximum over an axis (an int or a tuple of ints), or over all elements when axis is None."""
    return reduce(R.MaxOp, x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """Minimum over an axis (an int or a tuple of ints), or over all elements when axis is None."""
    return reduce(R.MinOp, x, axis, keepdims)


def prod(x, axis=None, keepdims=False):
    """Product over an axis (int or tuple), or over all elements when axis is None (exact gradients with zeros)."""
    return reduce(R.ProdOp, x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over an axis (int or tuple) or all, computed stably (max subtracted first)."""
    return reduce(R.LogSumExpOp, x, axis, keepdims)


def cumsum(x, axis=None):
    """Running sum along `axis`; over the flattened array when axis is None (as numpy)."""
    axis = axis_argument(R.CumsumOp.name, axis)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    elif isinstance(axis, tuple):
        fail(DTypeError(f"{R.CumsumOp.name}: axis must be one int or None, got {axis}"))
    return apply(R.CumsumOp, [x], axis=axis)


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 - numpy's name
    """numpy.linalg.norm for vector norms: 2 (default; Frobenius over a whole matrix), 1 and inf.

    The 2-norm is sqrt(sum(x * x)); its gradient x / norm is NaN at x = 0.
    Matrix norms other than Frobenius (ord=1, 2, inf of a 2-D array without
    axis) are not supported.
    """
    ndim = x.ndim if isinstance(x, Traced) else np.ndim(x)
    vector = axis is not None or ndim <= 1
    if ord in (None, "fro") or (ord == 2 and vector):
        if ord == "fro" and (axis is not None or ndim != 2):
            fail(ShapeError(f"norm: ord='fro' needs a 2-D array without axis, got ndim {ndim}, axis {axis}"))
        return sqrt(sum(multiply(x, x), axis=axis, keepdims=keepdims))
    if vector and ord == 1:
        return sum(abs(x), axis=axis, keepdims=keepdims)
    if vector and ord == np.inf:
        return max(abs(x), axis=axis, keepdims=keepdims)
    fail(ShapeError(
        f"norm: ord={ord!r} of an array with ndim {ndim} and axis {axis} is not supported "
        "(vector norms 1, 2, inf over one axis or a 1-D array, and 2 / 'fro' over all elements are)"
    ))


# ---------------------------------------------------------------------------
# Linear algebra and layout


def matmul(a, b):
    """numpy matmul for 1-D and 2-D operands (also the `@` operator)."""
    return apply(R.MatmulOp, [a, b])


def dot(a, b):
    """numpy's dot: the product of two 1-D or 2-D operands (as matmul), or a product by a scalar."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return multiply(a, b)
    return matmul(a, b)


def transpose(x, axes=None):
    """Permute axes (reverse them by default); `x.T` for 2-D arrays."""
    return apply(R.TransposeOp, [x], perm=None if axes is None else tuple(axes))


def reshape(x, shape):
    """Same elements in row-major order with a new shape (one dimension may be -1)."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return apply(R.ReshapeOp, [x], shape=shape)


def broadcast_to(x, shape):
    """Stretch size-1 and missing leading axes to `shape`."""
    return apply(R.BroadcastToOp, [x], shape=tuple(shape))
