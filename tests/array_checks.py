"""Shared harness of the maths / array op tests: every op eager, interpreted and native against numpy.

`three_ways(fn, args, want, dtype)` runs `fn` eagerly on numpy arrays, then
compiles it once (`rm.compile`, default pipeline) and runs the traced IR with
the reference interpreter and the native code; each result must match the
independent numpy expectation `want` (a tuple, one entry per output).
Tolerances: rel 1e-12 (f64) / 2e-6 (f32) of max(|want|, scale), NaN matching NaN.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import raster_mlir as rm

SIZES = st.sampled_from([1, 3, 7, 129])
# Each example of a native property test compiles a function (~0.4 s): a fifth of the
# profile's examples (3 in "ci", 60 in "dev").
NATIVE = settings(max_examples=max(2, settings.default.max_examples // 5), deadline=None)
DTYPES = {"f64": np.float64, "f32": np.float32}
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-6}


def draw_shape(data, min_rank=1, max_rank=3, label="shape"):
    """Sizes 1, 3, 7, 129 with at most one axis of 129 (so the arrays stay small)."""
    rank = data.draw(st.integers(min_rank, max_rank), label=f"{label} rank")
    shape = [data.draw(SIZES, label=f"{label}[{d}]") for d in range(rank)]
    big = [d for d, n in enumerate(shape) if n == 129]
    for d in big[1:]:
        shape[d] = 7
    return tuple(shape)


def draw_array(data, shape, dtype, lo=-3.0, hi=3.0, label="x"):
    seed = data.draw(st.integers(0, 2**32 - 1), label=f"{label} seed")
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


def assert_close(got, want, dtype, scale=1.0, what=""):
    got64 = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got64.shape == want.shape, f"{what}: shape {got64.shape} != expected {want.shape}"
    tol = RTOL[np.dtype(dtype)] * np.maximum(np.abs(want), scale)
    with np.errstate(invalid="ignore"):
        ok = (got64 == want) | (np.isnan(got64) & np.isnan(want)) | (np.abs(got64 - want) <= tol)
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        raise AssertionError(f"{what}: {int((~ok).sum())} element(s) differ, e.g. at {bad.tolist()}:\n"
                             f"got  {got64[tuple(bad.T)]}\nwant {want[tuple(bad.T)]}")


def _as_tuple(v):
    return v if isinstance(v, tuple) else (v,)


def three_ways(fn, args, want, dtype, scale=1.0, native=True):
    """fn eager, through the reference interpreter and natively, each against `want`."""
    want = _as_tuple(want)
    for name, outs in _runs(fn, args, native):
        outs = _as_tuple(outs)
        assert len(outs) == len(want), f"{name}: {len(outs)} outputs, expected {len(want)}"
        for k, (got, expected) in enumerate(zip(outs, want)):
            if isinstance(got, np.ndarray) and got.ndim:
                assert got.dtype == dtype, f"{name} output {k}: dtype {got.dtype}"
            assert_close(got, expected, dtype, scale, what=f"{name} output {k}")


def _runs(fn, args, native):
    yield "eager", fn(*args)
    compiled = rm.compile(fn, *args) if native else rm.compile(fn, *args, pipeline=_tensor_pipeline())
    yield "interpreted", compiled.run_reference(*args)
    if native:
        yield "native", compiled(*args)


def _tensor_pipeline():
    from raster_mlir.compiler import TENSOR_PIPELINE

    return TENSOR_PIPELINE
