"""Logical operations on masks (`&`, `|`, `^`, `~`, numpy.logical_*) and numpy.var / std / outer.

Each against numpy: eager, interpreted and native, f32 and f64, on
hypothesis-chosen shapes (sizes 1, 3, 7, 129); gradients of var / std /
outer by the random-direction check; errors at the user's line.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from array_checks import DTYPES, NATIVE, draw_array, draw_shape, three_ways
from helpers import marker_line
from hypothesis import given
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir.compiler import TENSOR_PIPELINE

THIS_FILE = os.path.abspath(__file__)


def _mask(m):
    return np.asarray(m, dtype=np.float64)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_logical_operations_on_masks(dtype, data):
    shape = draw_shape(data, 0, 2)
    # A coarse grid, so that zeros (false) happen; b is also used as a truth value itself.
    a = np.round(draw_array(data, shape, dtype, label="a")).astype(dtype)
    b = np.round(draw_array(data, shape, dtype, label="b")).astype(dtype)

    def logical(a, b):
        return rm.logical_and(a, b), rm.logical_or(rm.greater(a, 0), b), rm.logical_xor(a, rm.less(b, 1)), rm.logical_not(b)

    want = tuple(_mask(w) for w in (np.logical_and(a, b), np.logical_or(a > 0, b), np.logical_xor(a, b < 1), np.logical_not(b)))
    three_ways(logical, [a, b], want, dtype)

    def operators(a, b):  # on traced arrays only (numpy's own operators apply to numpy arrays)
        return (a > 0) & (b < 1), (a > 0) | (b == 0), (a >= 1) ^ (b != 0), ~(a < 0)

    compiled = rm.compile(operators, a, b)
    want = tuple(_mask(w) for w in operators(a, b))
    for got in (compiled(a, b), compiled.run_reference(a, b)):
        for g, w in zip(got, want):
            assert np.ndim(g) == 0 or g.dtype == dtype  # 0-d results come back as Python floats
            np.testing.assert_array_equal(g, w)


def test_numpy_logical_ufuncs_and_bool_arrays_meet_traced_masks():
    x = np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32)
    flags = np.array([True, True, False, True])

    def f(x):
        return (np.logical_and(x > -1, x), np.logical_or(x, flags), np.logical_not(x), np.logical_xor(x, 1.0),
                flags & (x >= 0), flags | (x > 0), flags ^ (x > 0), np.sum(((x > -2) & (x < 1)) * x))  # fmt: skip

    with np.errstate(invalid="ignore"):
        want = (np.logical_and(x > -1, x), np.logical_or(x, flags), np.logical_not(x), np.logical_xor(x, 1.0),
                flags & (x >= 0), flags | (x > 0), flags ^ (x > 0), np.sum(((x > -2) & (x < 1)) * x))  # fmt: skip
    compiled = rm.compile(f, x)
    for got in (compiled(x), compiled.run_reference(x)):
        for g, w in zip(got, want):
            assert np.ndim(g) == 0 or g.dtype == np.float32  # 0-d results come back as Python floats
            np.testing.assert_array_equal(g, np.asarray(w, dtype=np.float32))


def test_masks_carry_no_gradient():
    x = np.array([-1.0, 0.5, 2.0])
    g = rm.compile(rm.grad(lambda x: np.sum(((x > 0) & (x < 1)) * x * x + ~(x > 0))), x)(x)
    np.testing.assert_array_equal(g[0] if isinstance(g, tuple) else g, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@NATIVE
@given(data=st.data())
def test_var_std_outer(dtype, data):
    shape = draw_shape(data, 1, 3)
    rank = len(shape)
    axis = data.draw(st.sampled_from([None, *range(-rank, rank), tuple(range(rank))]), label="axis")
    n = int(np.prod(shape if axis is None else np.array(shape)[np.atleast_1d(axis)]))
    ddof = data.draw(st.integers(0, 1 if n > 1 else 0), label="ddof")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = draw_array(data, shape, dtype, 5.0, 7.0)  # a mean far from 0: the two-pass form stays accurate
    y = draw_array(data, shape[-1:], dtype, label="y")

    def moments(x, y):
        return (rm.var(x, axis=axis, ddof=ddof, keepdims=keepdims), rm.std(x, axis=axis, ddof=ddof, keepdims=keepdims),
                np.std(x, axis=axis, ddof=ddof, keepdims=keepdims), x.var(axis=axis, ddof=ddof), rm.outer(x, y))  # fmt: skip

    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    want = (np.var(x64, axis=axis, ddof=ddof, keepdims=keepdims), np.std(x64, axis=axis, ddof=ddof, keepdims=keepdims),
            np.std(x64, axis=axis, ddof=ddof, keepdims=keepdims), np.var(x64, axis=axis, ddof=ddof), np.outer(x64, y64))  # fmt: skip
    three_ways(moments, [x, y], want, dtype, scale=float(x.size) * 4.0)


@given(data=st.data())
@NATIVE
def test_var_std_outer_gradients(data):
    shape = draw_shape(data, 1, 2)
    shape = (*shape[:-1], max(shape[-1], 3))  # std over one element is 0, where its gradient is NaN
    x = draw_array(data, shape, np.float64)
    axis = data.draw(st.sampled_from([None, -1]), label="axis")

    def f(x):
        return rm.sum(rm.std(x, axis=axis, ddof=0) ** 3) + rm.sum(np.var(x, axis=0) * 0.5) + rm.sum(np.outer(x, x[..., ::-1]) ** 2)

    report = rm.check_grads(f, x, seed=data.draw(st.integers(0, 999), label="seed"))
    assert report.ok, report


def var_too_few(x):
    return np.var(x, ddof=3)  # <ddof>


def std_bad_axis(x):
    return rm.std(x, axis=2)  # <axis>


def integer_bits(x):
    return rm.fori_loop(0, 3, lambda i, s: s + (i & 1), x)  # <bits>


def not_a_supported_numpy_function(x):
    return np.median(x)  # <median>


@pytest.mark.parametrize("fn,error,marker,words", [
    (var_too_few, rm.ShapeError, "ddof", ["var", "ddof=3", "degrees of freedom"]),
    (std_bad_axis, rm.ShapeError, "axis", ["std", "axis 2", "(3,)"]),
    (integer_bits, rm.TraceError, "bits", ["logical_and", "traced integer", "not supported"]),
    (not_a_supported_numpy_function, rm.TraceError, "median", ["numpy.median", "not supported"]),
], ids=["ddof", "axis", "bits", "median"])  # fmt: skip
def test_errors_name_the_line(fn, error, marker, words):
    with pytest.raises(error) as info:
        rm.compile(fn, np.ones(3), pipeline=TENSOR_PIPELINE)
    head, _, where = str(info.value).partition("\n  at ")
    assert f"test_logical_and_moments.py:{marker_line(THIS_FILE, marker)}" in where, str(info.value)
    assert all(w in head for w in words), head
