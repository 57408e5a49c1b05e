"""Elementwise ops against plain numpy: eager, and traced then run by the reference interpreter.

Every op is checked three ways for hypothesis-chosen shapes and values:
the eager call on numpy arrays, `rm.compile(f, *args).run_reference(*args)`
on the traced IR, and (for the ones with an operator) the Python operator
inside a traced function. Expected values are independent numpy expressions
computed in float64 from the same inputs; the tolerance is rel 1e-12 (f64)
or 1e-5 (f32).
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
# Sizes the issue asks for (1, 2, 3, 7, 129) plus a few others.
SIZES = st.sampled_from([1, 2, 3, 7, 129]) | st.integers(1, 10)


def shapes(min_rank=0, max_rank=2):
    return st.lists(SIZES, min_size=min_rank, max_size=max_rank).map(tuple)


def floats(dtype, lo, hi):
    return st.floats(lo, hi, width=32 if np.dtype(dtype) == np.float32 else 64, allow_subnormal=False)


def arrays(dtype, shape, lo=-10.0, hi=10.0, elements=None):
    return hnp.arrays(dtype, shape, elements=elements if elements is not None else floats(dtype, lo, hi))


def assert_close(got, want, dtype, scale=0.0):
    """|got - want| <= rtol * (|want| + scale) + tiny elementwise, NaN matching NaN; shapes must agree.

    `tiny` (the smallest normal number of dtype) only matters for results in
    the subnormal range, which no float arithmetic gets to relative accuracy.
    """
    got64 = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got64.shape == want.shape, f"shape {got64.shape} != expected {want.shape}"
    with np.errstate(invalid="ignore"):
        ok = (got64 == want) | (np.isnan(got64) & np.isnan(want))
        ok |= np.abs(got64 - want) <= RTOL[np.dtype(dtype)] * (np.abs(want) + scale) + np.finfo(dtype).tiny
    assert ok.all(), f"max abs error {np.nanmax(np.abs(got64 - want))}\ngot  {got64}\nwant {want}"


def check_dtype(result, dtype):
    if isinstance(result, np.ndarray):
        assert result.dtype == dtype, f"result dtype {result.dtype}, expected {np.dtype(dtype)}"
        assert result.flags.c_contiguous


def run_both(fn, args, want, dtype, scale=0.0):
    """fn eagerly and through the traced IR + reference interpreter, both against `want`."""
    eager = fn(*args)
    check_dtype(eager, dtype)
    assert_close(eager, want, dtype, scale)
    compiled = compile_ref(fn, *args)
    ref = compiled.run_reference(*args)
    check_dtype(ref, dtype)
    assert_close(ref, want, dtype, scale)
    return compiled


def compile_ref(fn, *args):
    """rm.compile at tensor level: run_reference needs no native code, so skip its compile time."""
    return rm.compile(fn, *args, pipeline=TENSOR_PIPELINE)


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------------------
# Unary

UNARY = {
    # name: (public function, independent numpy expression, input range)
    "negative": (rm.negative, lambda x: 0.0 - x, (-10, 10)),
    "exp": (rm.exp, np.exp, (-10, 10)),
    "log": (rm.log, np.log, (2.0**-10, 100)),
    "tanh": (rm.tanh, lambda x: np.sinh(x) / np.cosh(x), (-10, 10)),
    "sqrt": (rm.sqrt, lambda x: x**0.5, (0, 100)),
    "sigmoid": (rm.sigmoid, lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)), (-10, 10)),
    "relu": (rm.relu, lambda x: np.where(x > 0, x, 0.0), (-10, 10)),
    "nn.relu": (nn.relu, lambda x: np.where(x > 0, x, 0.0), (-10, 10)),
    "nn.sigmoid": (nn.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), (-10, 10)),
    "nn.tanh": (nn.tanh, np.tanh, (-10, 10)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary(name, dtype, data):
    fn, expected, (lo, hi) = UNARY[name]
    shape = data.draw(shapes(0, 2), label="shape")
    x = data.draw(arrays(dtype, shape, lo, hi), label="x")
    # tanh via sinh/cosh loses a few ulps: allow an absolute floor of rtol.
    run_both(fn, [x], expected(f64(x)), dtype, scale=1.0 if name == "tanh" else 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@given(data=st.data())
def test_unary_minus_operator(dtype, data):
    x = data.draw(arrays(dtype, data.draw(shapes(0, 3).filter(lambda s: np.prod(s) < 5000))))
    compiled = compile_ref(lambda a: -a, x)
    assert "raster.neg" in compiled.ir("traced")
    out = compiled.run_reference(x)
    check_dtype(out, dtype)
    assert_close(out, -f64(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_unary_on_rank3(dtype):
    x = np.random.default_rng(0).uniform(0.1, 5, size=(2, 3, 7)).astype(dtype)
    for name, (fn, expected, _) in UNARY.items():
        run_both(fn, [x], expected(f64(x)), dtype, scale=1.0 if name == "tanh" else 0.0)


# ---------------------------------------------------------------------------
# Binary, with numpy broadcasting


@st.composite
def broadcastable_pair(draw, max_rank=2):
    """Two shapes that broadcast: each keeps a suffix of a common shape, some dims set to 1."""
    full = draw(shapes(0, max_rank))

    def variant():
        keep = draw(st.integers(0, len(full)))
        return tuple(d if draw(st.booleans()) else 1 for d in full[len(full) - keep :])

    return variant(), variant()


NONZERO = {
    np.float64: st.one_of(st.floats(-10, -0.5), st.floats(0.5, 10)),
    np.float32: st.one_of(st.floats(-10, -0.5, width=32), st.floats(0.5, 10, width=32)),
}
# Comparisons get values from a small set so that ties (equal elements) occur often.
TIES = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])


def _elements(kind, dtype):
    if kind == "any":
        return floats(dtype, -10, 10)
    if kind == "nonzero":
        return NONZERO[dtype]
    if kind == "base":
        return floats(dtype, 0.5, 4)
    if kind == "exponent":
        return floats(dtype, -3, 3)
    return TIES


BINARY = {
    # name: (public function, Python operator or None, numpy expression, lhs elements, rhs elements)
    "add": (rm.add, operator.add, lambda a, b: a + b, "any", "any"),
    "subtract": (rm.subtract, operator.sub, lambda a, b: a - b, "any", "any"),
    "multiply": (rm.multiply, operator.mul, lambda a, b: a * b, "any", "any"),
    "divide": (rm.divide, operator.truediv, lambda a, b: a / b, "any", "nonzero"),
    "power": (rm.power, operator.pow, lambda a, b: np.exp(b * np.log(a)), "base", "exponent"),
    "maximum": (rm.maximum, None, lambda a, b: np.where(a >= b, a, b), "ties", "any"),
    "minimum": (rm.minimum, None, lambda a, b: np.where(a <= b, a, b), "ties", "any"),
    "greater": (rm.greater, operator.gt, lambda a, b: np.where(a > b, 1.0, 0.0), "ties", "ties"),
    "less (operator)": (lambda a, b: rm.greater(b, a), operator.lt, lambda a, b: np.where(a < b, 1.0, 0.0), "ties", "ties"),
    "equal": (rm.equal, None, lambda a, b: np.where(a == b, 1.0, 0.0), "ties", "ties"),
}  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_broadcasting(name, dtype, data):
    fn, op, expected, lhs_kind, rhs_kind = BINARY[name]
    sa, sb = data.draw(broadcastable_pair(), label="shapes")
    a = data.draw(hnp.arrays(dtype, sa, elements=_elements(lhs_kind, dtype)), label="a")
    b = data.draw(hnp.arrays(dtype, sb, elements=_elements(rhs_kind, dtype)), label="b")
    want = expected(f64(a), f64(b))
    # power via exp(b log a) is itself a few ulps off: allow an absolute floor of rtol.
    scale = 1.0 if name == "power" else 0.0
    run_both(fn, [a, b], want, dtype, scale)
    if op is not None:
        compiled = compile_ref(lambda x, y: op(x, y), a, b)
        out = compiled.run_reference(a, b)
        check_dtype(out, dtype)
        assert_close(out, want, dtype, scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "greater"])
@given(data=st.data())
def test_binary_with_python_scalar(name, dtype, data):
    """A Python float on either side takes the array's dtype (weak typing), eagerly and traced."""
    fn, op, expected, _, _ = BINARY[name]
    x = data.draw(arrays(dtype, data.draw(shapes(0, 2)), 0.5, 4.0), label="x")
    s = data.draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 2]), label="scalar")
    s_typed = float(np.asarray(s, dtype=dtype))
    for args, want in (([x, s], expected(f64(x), s_typed)), ([s, x], expected(s_typed, f64(x)))):
        eager = fn(*args)
        check_dtype(eager, dtype)
        assert_close(eager, want, dtype, scale=1.0)
        # Traced: the array is the argument, the scalar a Python constant in the function.
        if args[0] is x:
            traced = (lambda a: op(a, s)) if op else (lambda a: fn(a, s))
        else:
            traced = (lambda a: op(s, a)) if op else (lambda a: fn(s, a))
        compiled = compile_ref(traced, x)
        assert "raster.fill" in compiled.ir("traced")
        out = compiled.run_reference(x)
        check_dtype(out, dtype)
        assert_close(out, want, dtype, scale=1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_numpy_array_on_the_left_of_a_traced_value(dtype):
    """`ndarray + traced` must defer to the traced value (captured as a raster.constant)."""
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    c = np.array([1.0, -2.0, 0.5], dtype=dtype)
    for op in (operator.add, operator.sub, operator.mul, operator.truediv):
        compiled = compile_ref(lambda a: op(c, a + 1.0), x)
        assert "raster.constant" in compiled.ir("traced")
        assert_close(compiled.run_reference(x), op(f64(c), f64(x) + 1.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_scalar_arguments_are_weakly_typed(dtype):
    """A Python number passed to a compiled function takes the arrays' dtype."""
    x = np.linspace(-1, 1, 5).astype(dtype)
    compiled = compile_ref(lambda a, s: a * s, x, 3.0)
    assert f"tensor<{'f32' if dtype == np.float32 else 'f64'}>" in compiled.ir("traced")
    out = compiled.run_reference(x, 3.0)
    check_dtype(out, dtype)
    assert_close(out, f64(x) * 3.0, dtype)


def test_eager_int_inputs_become_float64():
    out = rm.add([1, 2, 3], 1)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, 3.0, 4.0])


def test_eager_int_array_takes_the_float_operand_dtype():
    out = rm.multiply(np.array([1, 2, 3]), np.ones(3, dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@given(data=st.data())
def test_elementwise_expression_on_large_arrays(dtype, data):
    """A composite expression on 129x129 arrays (many ops in one traced function)."""
    shape = data.draw(st.sampled_from([(129, 129), (7, 129), (129, 7), (129,)]))
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    a = rng.uniform(-3, 3, shape).astype(dtype)
    b = rng.uniform(0.5, 3, shape).astype(dtype)

    def f(x, y):
        return rm.tanh(x) * rm.sqrt(y) - rm.exp(-y) / y + rm.maximum(x, 0.0) ** 2.0 + nn.sigmoid(x - y)

    x64, y64 = f64(a), f64(b)
    want = (np.tanh(x64) * np.sqrt(y64) - np.exp(-y64) / y64 + np.where(x64 > 0, x64, 0) ** 2
            + 1 / (1 + np.exp(y64 - x64)))  # fmt: skip
    run_both(f, [a, b], want, dtype, scale=10.0)
