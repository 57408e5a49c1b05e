"""floor, ceil, trunc, rint and numpy's round on traced arrays (before: "numpy's floor is not supported");
the error for float `//` and `%` now points at rm.floor."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir.dialects import raster as R

SPECIAL = np.array([-2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 1.2345, -7.77, np.inf, -np.inf, np.nan, 1e300,
                    4503599627370497.0, 0.49999999999999994])  # fmt: skip


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "rint"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bitwise_numpy_on_special_values_compiled_and_eager(name, dtype):
    x = SPECIAL.astype(dtype) if dtype == np.float64 else SPECIAL[np.abs(SPECIAL) < 1e30].astype(dtype)
    want = getattr(np, name)(x)
    for got in (rm.jit(getattr(rm, name))(x), rm.jit(lambda a: getattr(np, name)(a))(x), getattr(rm, name)(x)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # (-0.0 stays -0.0)


@settings(deadline=None)
@given(decimals=st.integers(-2, 3), n=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_round_like_numpy_inside_fused_loops(decimals, n, seed):
    y = np.random.default_rng(seed).normal(size=n) * 100
    want = np.round(y, decimals)
    np.testing.assert_array_equal(rm.jit(lambda a: rm.round(a, decimals))(y), want)
    np.testing.assert_array_equal(rm.jit(lambda a: round(a * 1.0, decimals))(y), want)  # Python's round()
    np.testing.assert_array_equal(rm.jit(lambda a: np.around(a, decimals) + a.round(decimals) - want)(y), want)


def test_zero_derivatives_in_both_modes_and_vectorised_loops():
    y = np.random.default_rng(1).normal(size=(37, 5)) * 10
    (g,) = rm.grad(lambda a: rm.sum(rm.floor(a) * a + rm.rint(a) + rm.trunc(a)))(y)
    np.testing.assert_array_equal(g, np.floor(y))
    _, t = rm.jvp(lambda a: rm.ceil(a) * a, (y,), (np.ones_like(y),))
    np.testing.assert_array_equal(t, np.ceil(y))
    c = rm.compile(lambda a: rm.sum(a - rm.floor(a)), y)
    assert c(y) == pytest.approx(np.sum(y - np.floor(y)), rel=1e-12)
    assert not c.loops_not_vectorized
    traced = rm.compile(lambda a: rm.floor(a) + rm.ceil(a) + rm.trunc(a) + rm.rint(a), y).ir("traced")
    assert all(f"{op.name} " in traced for op in R.ROUNDING_OPS)


def test_float_floor_division_points_at_floor():
    with pytest.raises(rm.DTypeError, match=r"rm\.floor\(x / y\)"):
        rm.jit(lambda a: a // 2.0)(np.ones(3))
