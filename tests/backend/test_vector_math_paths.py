"""The two ways vmath kernels end: exp's scaling by 2^n (AVX-512 `vscalefpd` or two normal factors) and
log's fast path for positive normal x with a cold complete path for the other lanes. On an AVX-512
host f64 exp and log run avx512.py's kernels: the `generic_kernels` fixture emits exp.py's and log.py's."""

from __future__ import annotations

import numpy as np
import pytest

from raster_mlir.backend import compile_module
from raster_mlir.backend import vmath
from raster_mlir.backend.target import host_target
from raster_mlir.backend.vmath import builder as vmath_builder
from raster_mlir.backend.vmath.accuracy import loop_program, measure, run_native

pytest.importorskip("mpmath")
NP = {"f64": np.float64, "f32": np.float32}


@pytest.fixture
def generic_kernels(monkeypatch):
    """Emit the generic kernels (exp.py, log.py) where the host would run avx512.py's (f64 exp, log)."""
    monkeypatch.setattr(vmath, "uses_avx512_kernel", lambda target, ty: False)


@pytest.fixture
def without_scalef(monkeypatch, generic_kernels):
    """Emit as for a host without AVX-512's vscalef (the two-factor scaling)."""
    original = vmath_builder.MathBuilder.for_module.__func__

    def for_module(cls, builder, mctx, ty):
        m = original(cls, builder, mctx, ty)
        m.scalef = False
        return m

    monkeypatch.setattr(vmath_builder.MathBuilder, "for_module", classmethod(for_module))


@pytest.mark.parametrize("T", ["f32", "f64"])
@pytest.mark.parametrize("name", ["math.exp", "math.exp2"])
def test_exp_without_scalef_is_as_accurate(name, T, without_scalef):
    err, where = measure(name, T, 400, seed=5)
    assert err <= 2.0, f"{name} {T}: {err:.2f} ulp at {where}"


@pytest.mark.skipif(not host_target().has_avx512f, reason="vscalef needs avx512f")
@pytest.mark.parametrize("T", ["f32", "f64"])
def test_exp_scalef_and_two_factors_agree_on_normal_results(T, generic_kernels, request):
    x = np.random.default_rng(1).uniform(-80 if T == "f32" else -700, 80 if T == "f32" else 700, 999).astype(NP[T])
    with_scalef = run_native("math.exp", T, x)
    assert "vscalef" in compile_module(loop_program("math.exp", T, len(x)), "f").asm
    request.getfixturevalue("without_scalef")
    two_factors = run_native("math.exp", T, x)
    np.testing.assert_array_equal(with_scalef, two_factors)  # the same single rounding of 2^n (1 + p)


@pytest.mark.parametrize("kernels", ["host", "generic"])
@pytest.mark.parametrize("T", ["f32", "f64"])
def test_log_rare_lanes_take_the_complete_path(T, kernels, request):
    """Zero, negative, subnormal, infinite and NaN lanes among normal ones: each gets what it gets alone."""
    if kernels == "generic":
        request.getfixturevalue("generic_kernels")
    rng = np.random.default_rng(2)
    x = rng.uniform(0.01, 100, 64).astype(NP[T])
    tiny = np.finfo(NP[T]).smallest_subnormal * 3
    x[[3, 9, 20, 33, 47, 60]] = [0.0, -2.0, tiny, np.inf, np.nan, -0.0]
    for flush in (False, True):
        vector = run_native("math.log", T, x, flush_denormal=flush)
        alone = np.array([run_native("math.log", T, x[k : k + 1], flush_denormal=flush)[0] for k in range(len(x))])
        np.testing.assert_array_equal(vector, alone)
        with np.errstate(all="ignore"):
            want = np.log(x.astype(np.float64)).astype(NP[T])
        if flush:
            want[20] = -np.inf  # denormals-are-zero: the subnormal reads as 0
        normal = np.isfinite(want) & (x > 0)
        np.testing.assert_allclose(vector[normal], want[normal], rtol=2 * np.finfo(NP[T]).eps)
        np.testing.assert_array_equal(vector[~normal], want[~normal])


@pytest.mark.parametrize("T", ["f32", "f64"])
def test_log_loop_with_its_rare_branch_is_vectorised(T):
    f = compile_module(loop_program("math.log", T, 1000), "f")
    assert f.loops_not_vectorized == []
    assert "_ZGV_LLVM_N" in f.llvm_ir  # the scalar function maps to vector variants (fallback.py)
