"""Numerical stability: large logits, zero probabilities, saturated sigmoids; f64 and f32.

Every case runs three ways -- eagerly, through the reference interpreter,
and through @rm.jit (native code) -- and must be finite and equal to a
closed form or a log-sum-exp computation written here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])


def run(how, fn, *args):
    """fn eagerly, through the reference interpreter, or via @rm.jit (native); no numpy warnings allowed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if how == "eager":
            return fn(*args)
        if how == "reference":
            return rm.compile(fn, *args, pipeline=TENSOR_PIPELINE).run_reference(*args)
        return rm.jit(fn)(*args)


def check(got, want, dtype, atol=0.0, how=""):
    leaves = got if isinstance(got, tuple) else (got,)
    wants = want if isinstance(want, tuple) else (want,)
    for g, w in zip(leaves, wants, strict=True):
        g = np.asarray(g, dtype=np.float64)
        assert np.all(np.isfinite(g)), f"{how}: not finite: {g}"
        np.testing.assert_allclose(g, w, rtol=RTOL[np.dtype(dtype)], atol=atol, err_msg=how)


hows = pytest.mark.parametrize("how", ["eager", "reference", "jit"])

def log_softmax_f64(z):
    """z - log(sum(exp(z))) over the last axis in float64, as (z - max) - log(sum(exp(z - max))).

    The parenthesisation matters: z - (max + log(sum)) would round max + log(sum) at the
    magnitude of max first and lose ~ulp(max) of accuracy.
    """
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# -- softmax / log_softmax ------------------------------------------------------------------


@hows
@dtypes
@pytest.mark.parametrize("offset", [1e4, -1e4])
def test_softmax_is_shift_invariant_for_huge_logits(how, dtype, offset):
    small = np.array([[-1.0, 0.0, 1.0, 2.0], [0.5, 0.5, -3.0, 0.0]])
    z = (small + offset).astype(dtype)
    # What the array really holds after rounding to dtype, relative to the offset (exact in f64).
    held = z.astype(np.float64) - offset
    want = np.exp(held) / np.exp(held).sum(axis=-1, keepdims=True)
    check(run(how, nn.softmax, z), want, dtype, how=how)


@hows
@dtypes
def test_softmax_of_plus_and_minus_1e4(how, dtype):
    z = np.array([1e4, 1e4 - 1.0, -1e4, 0.0], dtype=dtype)
    a = 1.0 / (1.0 + math.exp(-1.0))
    want = np.array([a, 1.0 - a, 0.0, 0.0])  # exp(-1e4) underflows to exactly 0
    check(run(how, nn.softmax, z), want, dtype, how=how)


@hows
@dtypes
def test_log_softmax_of_huge_logits(request, how, dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4 + 2.0], [1e4 + 1.0, 1e4, 1e4 - 3.0]], dtype=dtype)
    z64 = z.astype(np.float64)
    want = log_softmax_f64(z64)
    # (z - max) is exact and log(sum) is O(1): a stable evaluation is accurate relative to |want|.
    got = run(how, nn.log_softmax, z)
    check(got, want, dtype, atol=float(np.finfo(dtype).tiny), how=how)
    assert got[0, 0] == 0.0


# -- cross_entropy: p = 0 is clamped to the smallest normal number -------------------------------


@hows
@dtypes
def test_cross_entropy_with_zero_probability_is_finite(how, dtype):
    tiny = np.finfo(dtype).tiny
    p = np.array([0.0, 0.25, 0.75], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0], dtype=dtype)
    want = -math.log(float(tiny))  # 708.4 (f64) or 87.3 (f32)
    check(run(how, nn.cross_entropy, p, y), want, dtype, how=how)


@hows
@dtypes
def test_cross_entropy_zero_times_log_zero_is_zero(how, dtype):
    p = np.array([0.0, 1.0], dtype=dtype)
    y = np.array([0.0, 1.0], dtype=dtype)
    check(run(how, nn.cross_entropy, p, y), 0.0, dtype, how=how)


@hows
@dtypes
def test_cross_entropy_batch_with_zeros(how, dtype):
    tiny = float(np.finfo(dtype).tiny)
    p = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=dtype)
    rows = [-math.log(tiny), -math.log(tiny), -math.log(float(p[2, 2]))]
    check(run(how, nn.cross_entropy, p, y), sum(rows) / 3, dtype, how=how)


@hows
@dtypes
def test_cross_entropy_of_softmax_of_huge_logits_is_finite(how, dtype):
    """softmax underflows to 0 for the target class; the clamp keeps the loss finite (if imprecise)."""
    z = np.array([1e4, -1e4, 0.0], dtype=dtype)
    y = np.array([0.0, 1.0, 0.0], dtype=dtype)
    got = run(how, lambda a, t: nn.cross_entropy(nn.softmax(a), t), z, y)
    check(got, -math.log(float(np.finfo(dtype).tiny)), dtype, how=how)


# -- softmax_cross_entropy: exact for any logits --------------------------------------------------


@hows
@dtypes
@pytest.mark.parametrize("rank", [1, 2])
def test_softmax_cross_entropy_of_huge_logits_equals_log_sum_exp(request, how, dtype, rank):
    z = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4 + 3.0, -1e4 + 1.0, -2e4]], dtype=dtype)
    y = np.array([[0.0, 1.0, 0.0, 0.0], [0.2, 0.3, 0.5, 0.0]], dtype=dtype)
    if rank == 1:
        z, y = z[0], y[0]
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    log_p = log_softmax_f64(z64)
    rows = -(y64 * log_p).sum(axis=-1)
    want_loss = rows if rank == 1 else rows.mean()
    want_p = np.exp(log_p)
    got = run(how, nn.softmax_cross_entropy, z, y)
    assert isinstance(got, tuple) and len(got) == 2
    check(got, (want_loss, want_p), dtype, atol=float(np.finfo(dtype).tiny), how=how)
    if rank == 1:
        assert float(got[0]) == pytest.approx(2e4, rel=RTOL[np.dtype(dtype)])


# -- sigmoid and mse ---------------------------------------------------------------------------


@hows
@dtypes
def test_sigmoid_saturates_without_overflow(how, dtype):
    x = np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4], dtype=dtype)
    x64 = x.astype(np.float64)
    neg = np.minimum(x64, 0.0)
    # e^x / (1 + e^x) for x < 0 and 1 / (1 + e^-x) for x >= 0: no overflow in float64 for these inputs.
    want = np.where(x64 < 0, np.exp(neg) / (1 + np.exp(neg)), 1 / (1 + np.exp(-np.maximum(x64, 0.0))))
    got = run(how, nn.sigmoid, x)
    check(got, want, dtype, atol=float(np.finfo(dtype).tiny), how=how)
    assert got[0] == 0.0 and got[-1] == 1.0 and got[3] == 0.5


@hows
@dtypes
def test_mse_of_large_values_is_finite(how, dtype):
    big = np.array([1e15, -1e15], dtype=dtype) if dtype == np.float32 else np.array([1e150, -1e150])
    want = float(big.astype(np.float64)[0]) ** 2
    check(run(how, nn.mse, big, np.zeros_like(big)), want, dtype, how=how)
