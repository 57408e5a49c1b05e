"""Each scalar op the emitter translates, one at a time, against numpy.

Inputs include the awkward values (0, -0, +-inf, NaN, huge, tiny) so the
IEEE semantics of the chosen LLVM instructions and intrinsics are checked,
not just their values on nice numbers. Math functions are compared with a
few-ulp relative tolerance (libm and numpy may round differently); exact ops
must match bit for bit (NaN positions included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from backend_programs import NP_DTYPE, load

from raster_mlir.backend import compile_module

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e-300, -1e300, np.inf, -np.inf, np.nan, 7.25, 0.1, -0.7, 2.0, 10.0]
N = len(SPECIAL)
ULPS = 4

UNARY = {
    "math.exp": np.exp,
    "math.exp2": np.exp2,
    "math.expm1": np.expm1,
    "math.log": np.log,
    "math.log2": np.log2,
    "math.log10": np.log10,
    "math.log1p": np.log1p,
    "math.tanh": np.tanh,
    "math.sinh": np.sinh,
    "math.cosh": np.cosh,
    "math.sin": np.sin,
    "math.cos": np.cos,
    "math.tan": np.tan,
    "math.atan": np.arctan,
    "math.asin": np.arcsin,
    "math.acos": np.arccos,
    "math.erf": np.vectorize(math.erf, otypes=[np.float64]),
    "math.cbrt": np.cbrt,
    "math.sqrt": np.sqrt,
    "math.rsqrt": lambda x: 1 / np.sqrt(x),
    "math.absf": np.abs,
    "math.floor": np.floor,
    "math.ceil": np.ceil,
    "math.trunc": np.trunc,
    "math.round": lambda x: np.copysign(np.floor(np.abs(x) + 0.5), x),  # halves away from zero
    "math.roundeven": np.round,
    "arith.negf": np.negative,
}
EXACT = {
    "math.sqrt",
    "math.absf",
    "math.floor",
    "math.ceil",
    "math.trunc",
    "math.round",
    "math.roundeven",
    "arith.negf",
}


def ieee_maximum(a, b):
    """IEEE 754-2019 maximum (arith.maximumf): NaN-propagating and -0 < +0.

    np.maximum returns its first argument for (-0, +0), so the zero case is fixed up.
    """
    out = np.maximum(a, b)
    zeros = (a == 0) & (b == 0)
    out[zeros] = np.where(np.signbit(a[zeros]) & np.signbit(b[zeros]), -0.0, 0.0)
    return out


def ieee_minimum(a, b):
    return -ieee_maximum(-a, -b)


BINARY = {
    "arith.addf": np.add,
    "arith.subf": np.subtract,
    "arith.mulf": np.multiply,
    "arith.divf": np.divide,
    "arith.maximumf": ieee_maximum,
    "arith.minimumf": ieee_minimum,
    "arith.maxnumf": np.fmax,
    "arith.minnumf": np.fmin,
    "math.powf": np.power,
    "math.atan2": np.arctan2,
    "math.copysign": np.copysign,
}
BINARY_EXACT = {
    "arith.addf",
    "arith.subf",
    "arith.mulf",
    "arith.divf",
    "arith.maximumf",
    "arith.minimumf",
    "arith.maxnumf",
    "arith.minnumf",
    "math.copysign",
}
# maxnum/minnum leave the sign of a (+0, -0) result unspecified.
ZERO_SIGN_FREE = {"arith.maxnumf", "arith.minnumf"}

CMPF = {
    "oeq": np.equal,
    "ogt": np.greater,
    "oge": np.greater_equal,
    "olt": np.less,
    "ole": np.less_equal,
    "one": lambda a, b: (a != b) & ~np.isnan(a) & ~np.isnan(b),
    "ord": lambda a, b: ~np.isnan(a) & ~np.isnan(b),
    "ueq": lambda a, b: (a == b) | np.isnan(a) | np.isnan(b),
    "ugt": lambda a, b: ~(a <= b),
    "uge": lambda a, b: ~(a < b),
    "ult": lambda a, b: ~(a >= b),
    "ule": lambda a, b: ~(a > b),
    "une": np.not_equal,
    "uno": lambda a, b: np.isnan(a) | np.isnan(b),
    "false": lambda a, b: np.zeros(a.shape, bool),
    "true": lambda a, b: np.ones(a.shape, bool),
}
CMPI = {
    "eq": np.equal,
    "ne": np.not_equal,
    "slt": np.less,
    "sle": np.less_equal,
    "sgt": np.greater,
    "sge": np.greater_equal,
}


def assert_matches(got, want, exact, dtype):
    got = got.astype(np.float64)
    want = np.asarray(want, dtype=dtype).astype(np.float64)  # the reference rounded to the tested precision
    same_nan = np.isnan(got) == np.isnan(want)
    assert same_nan.all(), f"NaN mismatch: got {got}, want {want}"
    fin = ~np.isnan(want)
    if exact:
        np.testing.assert_array_equal(got[fin], want[fin])
        # signs of zeros and infinities too
        np.testing.assert_array_equal(np.signbit(got[fin]), np.signbit(want[fin]))
        return
    inf = np.isinf(want) & fin
    np.testing.assert_array_equal(got[inf], want[inf])
    eps = np.finfo(dtype).eps
    tol = ULPS * eps * np.abs(want[fin & ~inf]) + np.finfo(dtype).tiny
    err = np.abs(got[fin & ~inf] - want[fin & ~inf])
    assert (err <= tol).all(), f"errors {err[err > tol]} at values {want[fin & ~inf][err > tol]}"


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, T):
    dt = NP_DTYPE[T]
    f = compile_module(load("unary_op", T, N=N, OP=op), "unary")
    with np.errstate(over="ignore"):  # -1e300 becomes -inf in f32, on purpose
        x = np.array(SPECIAL, dtype=dt)
    y = np.empty_like(x)
    f(x, y)
    with np.errstate(all="ignore"):
        want = UNARY[op](x.astype(np.float64))
    assert_matches(y, want, op in EXACT, dt)


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(op, T):
    dt = NP_DTYPE[T]
    f = compile_module(load("binary_op", T, N=N * N, OP=op), "binary")
    with np.errstate(over="ignore"):
        values = np.array(SPECIAL, dtype=dt)
    a, b = np.meshgrid(values, values)
    x, y = a.ravel().copy(), b.ravel().copy()
    z = np.empty_like(x)
    f(x, y, z)
    with np.errstate(all="ignore"):
        want = BINARY[op](x, y) if op in BINARY_EXACT else BINARY[op](x.astype(np.float64), y.astype(np.float64))
    if op in ZERO_SIGN_FREE:
        both_zero = (x == 0) & (y == 0)
        z[both_zero], want[both_zero] = 0.0, 0.0
    assert_matches(z, want, op in BINARY_EXACT, dt)


@pytest.mark.parametrize("pred", sorted(CMPF))
def test_comparisons(pred):
    ipred = {"oeq": "eq", "one": "ne", "olt": "slt", "ole": "sle", "ogt": "sgt", "oge": "sge"}.get(pred, "eq")
    f = compile_module(load("compare", "f64", N=64, PRED=pred, IPRED=ipred), "compare")
    values = np.array([-3.0, -1.0, 0.0, -0.0, 2.0, 2.5, np.nan, np.inf])
    a, b = np.meshgrid(values, values)
    x, y = a.ravel().copy(), b.ravel().copy()
    zf, zi = np.empty(64), np.empty(64, dtype=np.int64)
    f(x, y, zf, zi)
    np.testing.assert_array_equal(zf, CMPF[pred](x, y).astype(np.float64))
    ints = np.isfinite(x) & np.isfinite(y)  # fptosi of NaN/inf is poison: not compared
    xi, yi = np.trunc(x[ints]).astype(np.int64), np.trunc(y[ints]).astype(np.int64)
    np.testing.assert_array_equal(zi[ints], CMPI[ipred](xi, yi).astype(np.int64))
