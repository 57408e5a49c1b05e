"""avx512.py's f64 exp and log (vgetexppd/vgetmantpd, vscalefpd, vpermi2pd/vpermpd tables): the
instructions are used, every element gets the same bits in a vector lane and alone, log's table of
centres has the properties its exactness rests on, and the generic kernels they replace on this
host stay within their bounds."""

from __future__ import annotations

import numpy as np
import pytest

from raster_mlir.backend import compile_module, vmath
from raster_mlir.backend.target import host_target
from raster_mlir.backend.vmath.accuracy import loop_program, measure, run_native

pytest.importorskip("mpmath")
avx512 = pytest.mark.skipif(
    not {"avx512f", "avx512vl"} <= host_target().feature_set, reason="the kernels need AVX-512F and VL"
)


@pytest.fixture
def generic_kernels(monkeypatch):
    monkeypatch.setattr(vmath, "uses_avx512_kernel", lambda target, ty: False)


@pytest.mark.parametrize("name", ["math.exp", "math.log"])
def test_generic_f64_kernels_within_bound(name, generic_kernels):
    err, where = measure(name, "f64", 400, seed=23)
    assert err <= 2.0, f"{name}: {err:.2f} ulp at {where}"


@avx512
@pytest.mark.parametrize(
    "name, wanted, gone",
    [("math.log", ["vgetmantpd", "vgetexppd", "vpermpd"], ["vpsraq", "kortest"]), ("math.exp", ["vpermi2pd", "vscalefpd"], ["vcvtqq2pd"])],
)
def test_loop_uses_the_avx512_instructions(name, wanted, gone):
    f = compile_module(loop_program(name, "f64", 1000), "f")
    assert f.loops_not_vectorized == []
    for instruction in wanted:
        assert instruction in f.asm, instruction
    for instruction in gone:  # the integer reduction of the exponent, log's rare-lane branch, exp's integer n
        assert instruction not in f.asm, instruction


def test_log_centres_make_the_reduction_exact():
    """c_8 = 1; every c_j is a multiple of 2^-40 (f = m - c, 2 - c and w exact) within its eighth;
    log c_j is a multiple of 2^-53 (log c + f exact) within 1e-3 ulp of the true value; and |s| stays
    within the interval T was fitted on (fit.LOG_TABLE_S_MAX)."""
    import mpmath

    from raster_mlir.backend.vmath.coefficients import LOG_CENTRES_F64, LOG_OF_CENTRES_F64
    from raster_mlir.backend.vmath.fit import LOG_TABLE_S_MAX

    mpmath.mp.prec = 200
    assert LOG_CENTRES_F64[8 % 8] == 1.0 and LOG_OF_CENTRES_F64[8 % 8] == 0.0
    for j in range(6, 13):
        c, log_c = LOG_CENTRES_F64[j % 8], LOG_OF_CENTRES_F64[j % 8]
        lo, hi = max(0.75, (j - 0.5) / 8), min(1.5, (j + 0.5) / 8)
        assert lo <= c <= hi and (c * 2**40).is_integer(), (j, c)
        assert (log_c * 2**53).is_integer(), (j, log_c)
        assert j == 8 or abs(mpmath.log(c) - log_c) < 1e-3 * np.spacing(abs(log_c)), (j, c)
        assert max((c - lo) / (c + lo), (hi - c) / (hi + c)) <= LOG_TABLE_S_MAX, j


EXP_EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, 709.79, -708.39, -740.0, -745.2, -745.1, 1e-300, 3e5, -3e5]
LOG_EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.75, 1.5,
             1.4999999999999998, 0.8125, 0.9375, 0.9999999999999999, 1.0625, 1.1875, 1.3125, 1.4375]


@avx512
@pytest.mark.parametrize("name, edges", [("math.exp", EXP_EDGES), ("math.log", LOG_EDGES)])
@pytest.mark.parametrize("flush", [False, True])
def test_vector_lanes_and_scalar_path_agree_bitwise(name, edges, flush):
    """37 elements: vector lanes and the scalar remainder; each element computed alone takes the scalar path."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-20, 20, 37) if name == "math.exp" else np.exp(rng.uniform(-700, 700, 37))
    x[: len(edges)] = edges
    rng.shuffle(x)
    together = run_native(name, "f64", x, flush_denormal=flush)
    alone = np.array([run_native(name, "f64", x[k : k + 1], flush_denormal=flush)[0] for k in range(len(x))])
    np.testing.assert_array_equal(together.view(np.int64), alone.view(np.int64))
    with np.errstate(all="ignore"):
        want = np.exp(x) if name == "math.exp" else np.log(x)
    ok = np.isfinite(want) & (np.abs(want) > 1e-290)  # clear of flushed subnormal results
    if flush:
        ok &= ~((x != 0) & (np.abs(x) < 2.2250738585072014e-308))  # subnormal inputs read as 0
    np.testing.assert_allclose(together[ok], want[ok], rtol=4.5e-16)
    np.testing.assert_array_equal(np.isnan(together), np.isnan(want))
