"""The maths ops of raster_maths.py against numpy: eager, interpreted and native, f32 and f64.

One property test per kind of op (unary, binary with broadcasting,
reductions over an axis or all, cumsum); each example compiles one function
that applies every op of the kind, so the suite stays fast. Expected values
are numpy's (scipy's erf when scipy is installed, else Python's math.erf),
computed in float64 from the same inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_checks import DTYPES, NATIVE, SIZES, assert_close, draw_array, draw_shape, three_ways
from hypothesis import given
from hypothesis import strategies as st

import raster_mlir as rm

try:
    from scipy.special import erf as _erf
except ImportError:  # scipy is optional: the reference kernel's math.erf is still an independent check
    _erf = np.vectorize(math.erf, otypes=[np.float64])


def _softplus(x):
    return np.logaddexp(0.0, x)


# name: (raster_mlir function, numpy expectation in float64, input range)
UNARY = {
    "sin": (rm.sin, np.sin, (-6.0, 6.0)),
    "cos": (rm.cos, np.cos, (-6.0, 6.0)),
    "tan": (rm.tan, np.tan, (-1.2, 1.2)),
    "exp2": (rm.exp2, np.exp2, (-10.0, 10.0)),
    "log1p": (rm.log1p, np.log1p, (-0.9, 5.0)),
    "expm1": (rm.expm1, np.expm1, (-3.0, 3.0)),
    "abs": (rm.abs, np.abs, (-3.0, 3.0)),
    "sign": (rm.sign, np.sign, (-3.0, 3.0)),
    "erf": (rm.erf, _erf, (-3.0, 3.0)),
    "softplus": (rm.softplus, _softplus, (-30.0, 30.0)),
    "square": (rm.square, np.square, (-3.0, 3.0)),
    "reciprocal": (rm.reciprocal, lambda x: 1.0 / x, (0.5, 3.0)),
    "clip": (lambda x: rm.clip(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), (-3.0, 3.0)),
}


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_unary_ops(dtype, data):
    shape = draw_shape(data, 0, 2)
    names = list(UNARY)
    args = [draw_array(data, shape, dtype, *UNARY[n][2], label=n) for n in names]
    args[names.index("sign")].flat[0] = 0.0  # sign(0) = 0

    def all_unary(*xs):
        return tuple(UNARY[n][0](x) for n, x in zip(names, xs))

    want = tuple(UNARY[n][1](x.astype(np.float64)) for n, x in zip(names, args))
    three_ways(all_unary, args, want, dtype)


def test_unary_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 800.0, -800.0])

    def specials(x):
        return rm.sign(x), rm.abs(x), rm.softplus(x), rm.log1p(rm.abs(x)), rm.expm1(-rm.abs(x))

    with np.errstate(all="ignore"):
        want = np.sign(x), np.abs(x), _softplus(x), np.log1p(np.abs(x)), np.expm1(-np.abs(x))
    three_ways(specials, [x], want, np.float64)


BINARY = {
    "minimum": (rm.minimum, np.minimum),
    "arctan2": (rm.arctan2, np.arctan2),
    "greater": (rm.greater, np.greater),
    "less": (rm.less, np.less),
    "greater_equal": (rm.greater_equal, np.greater_equal),
    "less_equal": (rm.less_equal, np.less_equal),
    "equal": (rm.equal, np.equal),
    "not_equal": (rm.not_equal, np.not_equal),
    "where": (lambda a, b: rm.where(a > b, a, b * 2.0), lambda a, b: np.where(a > b, a, b * 2.0)),
}


@st.composite
def broadcast_shapes(draw):
    full = draw(st.lists(SIZES, min_size=0, max_size=2).map(tuple))

    def variant():
        keep = draw(st.integers(0, len(full)))
        return tuple(d if draw(st.booleans()) else 1 for d in full[len(full) - keep :])

    return variant(), variant()


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_binary_ops_with_broadcasting(dtype, data):
    a_shape, b_shape = data.draw(broadcast_shapes(), label="shapes")
    # Values on a coarse grid, so that ties (==, <=, minimum) happen.
    a = np.round(draw_array(data, a_shape, dtype, label="a")).astype(dtype)
    b = np.round(draw_array(data, b_shape, dtype, label="b")).astype(dtype)
    names = list(BINARY)

    def all_binary(a, b):
        return tuple(BINARY[n][0](a, b) for n in names)

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = tuple(np.asarray(BINARY[n][1](a64, b64), dtype=np.float64) for n in names)
    three_ways(all_binary, [a, b], want, dtype)


def test_comparison_operators_on_traced_arrays_with_nan():
    a = np.array([np.nan, 1.0, np.nan, 2.0, 3.0])
    b = np.array([1.0, np.nan, np.nan, 2.0, 1.0])

    def compare(a, b):  # the Python operators (on traced arrays they build masks)
        return (a < b, a <= b, a > b, a >= b, a == b, a != b, 2.0 < a, rm.minimum(a, b), rm.where(a - b, a, b))

    expected = [np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal]
    want = tuple(np.asarray(f(a, b), dtype=np.float64) for f in expected)
    want += (np.asarray(2.0 < a, dtype=np.float64), np.minimum(a, b), np.where(a - b != 0, a, b))
    compiled = rm.compile(compare, a, b)
    for name, got in (("interpreted", compiled.run_reference(a, b)), ("native", compiled(a, b))):
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, np.float64, what=f"{name} output {k}")


def test_where_takes_bool_arrays_and_numbers():
    x = np.array([-1.0, 2.0, -3.0], dtype=np.float32)
    out = rm.where(x > 0, x, 0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0.0, 2.0, 0.0])
    compiled = rm.compile(lambda x: rm.where(np.array([True, False, True]), x, -1.0), x)
    np.testing.assert_array_equal(compiled(x), [-1.0, -1.0, -3.0])


REDUCTIONS = {
    "min": (rm.min, np.min),
    "prod": (rm.prod, np.prod),
    "logsumexp": (rm.logsumexp, lambda x, axis, keepdims: _logsumexp(x, axis, keepdims)),
    "max": (rm.max, np.max),
}


def _logsumexp(x, axis, keepdims):
    from scipy.special import logsumexp

    return logsumexp(x, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_reductions_and_cumsum(dtype, data):
    pytest.importorskip("scipy")
    shape = draw_shape(data, 1, 3)
    axes = st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape)).filter(
        lambda a: len({x % len(shape) for x in a}) == len(a)
    )
    axis = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]) | axes.map(tuple), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    reverse = data.draw(st.booleans(), label="reverse")
    cum_axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="cumsum axis")
    x = draw_array(data, shape, dtype, 0.5, 1.5)  # products of up to 129 factors stay finite
    x.flat[0] = 0.0 if data.draw(st.booleans(), label="a zero") else x.flat[0]
    names = list(REDUCTIONS)

    def reduce_all(x):
        outs = tuple(REDUCTIONS[n][0](x, axis=axis, keepdims=keepdims) for n in names)
        flow = rm.cumsum(x, axis=cum_axis)
        back = rm.cumsum(rm.flip(x, cum_axis), axis=cum_axis) if reverse else rm.cumsum(x)
        return (*outs, flow, back)

    x64 = x.astype(np.float64)
    want = tuple(np.asarray(REDUCTIONS[n][1](x64, axis=axis, keepdims=keepdims)) for n in names)
    back = np.cumsum(np.flip(x64, cum_axis), axis=cum_axis) if reverse else np.cumsum(x64)
    want = (*want, np.cumsum(x64, axis=cum_axis), back)
    # A sum of n terms carries n roundings: scale the tolerance by the element count.
    three_ways(reduce_all, [x], want, dtype, scale=float(x.size))


def test_logsumexp_is_stable():
    x = np.array([[1000.0, 1000.0, -np.inf], [-np.inf, -np.inf, -np.inf], [-1000.0, -1001.0, -1002.0]])

    def lse(x):
        return rm.logsumexp(x, axis=1), rm.logsumexp(x)

    with np.errstate(all="ignore"):
        row = np.array([1000.0 + np.log(2.0), -np.inf, -1000.0 + np.log1p(np.exp(-1.0) + np.exp(-2.0))])
    three_ways(lse, [x], (row, 1000.0 + np.log(2.0)), np.float64)


def test_cumsum_reverse_op_in_the_ir():
    x = np.arange(12.0).reshape(3, 4)
    compiled = rm.compile(lambda x: rm.sum(rm.cumsum(x, axis=1) ** 2.0), x)
    grad = rm.compile(rm.grad(lambda x: rm.sum(rm.cumsum(x, axis=1) ** 2.0)), x)
    assert "raster.cumsum" in compiled.ir("traced")
    assert "reverse" in grad.ir("after:autodiff")
    c = np.cumsum(x, axis=1)
    assert_close(grad(x)[0], np.flip(np.cumsum(np.flip(2 * c, 1), axis=1), 1), np.float64)


def test_norm():
    x = np.array([[3.0, -4.0], [1.0, 2.0]])
    for kwargs, want in [
        ({}, np.linalg.norm(x)),
        ({"axis": 1}, np.linalg.norm(x, axis=1)),
        ({"ord": 1, "axis": 0}, np.linalg.norm(x, ord=1, axis=0)),
        ({"ord": np.inf, "axis": 1, "keepdims": True}, np.linalg.norm(x, ord=np.inf, axis=1, keepdims=True)),
        ({"ord": "fro"}, np.linalg.norm(x, "fro")),
    ]:
        three_ways(lambda x, kw=kwargs: rm.norm(x, **kw), [x], want, np.float64, native=False)
    with pytest.raises(rm.ShapeError, match="ord=2"):
        rm.norm(x, ord=2)
    assert_close(rm.compile(lambda v: np.linalg.norm(v), x[0])(x[0]), 5.0, np.float64)
