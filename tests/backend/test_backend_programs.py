"""Native results of the hand-written loop-level corpus against numpy.

Sizes 1, 3, 7 and 129 exercise the vector remainders (an AVX-512 f64 vector
holds 8 lanes, the unrolled matvec body 64); hypothesis adds random sizes.
Tolerances are norm-wise, relative to the sum of the magnitudes that enter
each result (what re-association and FMA contraction can change): 1e-12 for
f64, 1e-5 for f32.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from backend_programs import NP_DTYPE, load
from hypothesis import given
from hypothesis import strategies as st

from raster_mlir.backend import compile_module

SIZES = [1, 3, 7, 129]
RTOL = {"f64": 1e-12, "f32": 1e-5}
TYPES = ["f64", "f32"]
size_strategy = st.sampled_from(SIZES) | st.integers(min_value=1, max_value=300)


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def assert_close(got, want, scale, T):
    bound = RTOL[T] * scale + np.finfo(NP_DTYPE[T]).tiny
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= bound), f"max error {err.max()} exceeds bound at {np.argmax(err - bound)}"


def run_add(T, n):
    f = compile_module(load("add", T, N=n), "add")
    rng = rng_for("add", T, n)
    x, y = (rng.standard_normal(n).astype(NP_DTYPE[T]) for _ in range(2))
    z = np.full(n, np.nan, dtype=NP_DTYPE[T])
    f(x, y, z)
    np.testing.assert_array_equal(z, x + y)  # one rounding each side: bit-identical


def run_matvec(T, m, k):
    f = compile_module(load("matvec", T, M=m, K=k), "matvec")
    rng = rng_for("matvec", T, m, k)
    dt = NP_DTYPE[T]
    W, x, b = (
        rng.standard_normal((m, k)).astype(dt),
        rng.standard_normal(k).astype(dt),
        rng.standard_normal(m).astype(dt),
    )
    y = np.zeros(m, dtype=dt)
    f(W, x, b, y)
    W64, x64, b64 = W.astype(np.float64), x.astype(np.float64), b.astype(np.float64)
    assert_close(y, W64 @ x64 + b64, np.abs(W64) @ np.abs(x64) + np.abs(b64), T)


def run_relu(T, m, n):
    f = compile_module(load("relu", T, M=m, N=n), "relu")
    x = rng_for("relu", T, m, n).standard_normal((m, n)).astype(NP_DTYPE[T])
    x.flat[:: max(1, x.size // 3)] = np.nan  # NaN must propagate, as in np.maximum
    y = np.empty_like(x)
    f(x, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def run_softmax(T, m, n):
    f = compile_module(load("softmax_rows", T, M=m, N=n), "softmax")
    x = (3 * rng_for("softmax", T, m, n).standard_normal((m, n))).astype(NP_DTYPE[T])
    y = np.empty_like(x)
    f(x, y)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    assert_close(y, want, np.abs(want) + want.max(axis=1, keepdims=True) / n, T)


def run_sum(T, n):
    f = compile_module(load("sum_rank0", T, N=n), "total")
    x = rng_for("sum", T, n).standard_normal(n).astype(NP_DTYPE[T])
    s = np.zeros((), dtype=NP_DTYPE[T])
    f(x, s)
    assert_close(s, x.astype(np.float64).sum(), np.abs(x.astype(np.float64)).sum(), T)


def run_calls(T, n):
    f = compile_module(load("calls", T, N=n), "entry")
    rng = rng_for("calls", T, n)
    dt = NP_DTYPE[T]
    x, y = rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)
    out, d = np.zeros(n, dtype=dt), np.zeros((), dtype=dt)
    f(x, y, out, d)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    t = 2 * x64 + y64
    want = t * t + 1
    assert_close(out, want, np.abs(want) + 4 * np.abs(t) * (np.abs(y64) + 2 * np.abs(x64)), T)
    assert_close(d, x64 @ out.astype(np.float64), np.abs(x64) @ np.abs(want), T)


def mix_reference(x64):
    n = x64.size
    i = np.arange(n)
    a = np.abs(x64)
    terms = [
        np.sqrt(a),
        np.exp(-a),
        -np.log(a + 1),
        a**1.5 / (1 + a),
        np.minimum(x64, 0.5),
        np.where(x64 < 0, -x64, x64 / 4),
    ]
    other = sum(terms)
    other_scale = sum(np.abs(t) for t in terms)
    k = ((7 * i + 3) // 2 - i).astype(np.float64)
    on_tanh = i % 3 == 0
    value = np.where(on_tanh, np.tanh(x64), other) + k
    scale = np.where(on_tanh, np.abs(np.tanh(x64)), other_scale) + np.abs(k)
    return value, scale


def run_mix(T, n):
    f = compile_module(load("elementwise_mix", T, N=n), "mix")
    dt = NP_DTYPE[T]
    x = (2 * rng_for("mix", T, n).standard_normal(n)).astype(dt)
    y = np.zeros(n, dtype=dt)
    z = np.full(n, -7.0, dtype=dt)
    f(x, y, z)
    want, scale = mix_reference(x.astype(np.float64))
    assert_close(y, want, 4 * scale, T)  # a few libm ulps on top of the sum's roundings
    z_want = np.full(n, -7.0)
    idx = np.arange(1, n, 3)
    z_want[idx] = np.where(x[idx] > 0, 2 * x[idx].astype(np.float64), -7.0)
    np.testing.assert_array_equal(z, z_want.astype(dt))


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("n", SIZES)
def test_add(T, n):
    run_add(T, n)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("m,k", [(1, 1), (3, 7), (7, 129), (129, 3), (128, 784)])
def test_matvec(T, m, k):
    run_matvec(T, m, k)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("m,n", [(1, 1), (3, 7), (7, 129), (129, 3)])
def test_relu(T, m, n):
    run_relu(T, m, n)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("m,n", [(1, 1), (3, 7), (7, 129), (129, 3)])
def test_softmax_rows(T, m, n):
    run_softmax(T, m, n)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("n", SIZES)
def test_sum_into_rank0(T, n):
    run_sum(T, n)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("n", SIZES)
def test_calls_between_functions(T, n):
    run_calls(T, n)


@pytest.mark.parametrize("T", TYPES)
@pytest.mark.parametrize("n", SIZES)
def test_elementwise_mix(T, n):
    run_mix(T, n)


@given(T=st.sampled_from(TYPES), m=size_strategy, k=size_strategy)
def test_matvec_any_size(T, m, k):
    run_matvec(T, m, k)


@given(T=st.sampled_from(TYPES), m=st.integers(1, 40), n=size_strategy)
def test_softmax_any_size(T, m, n):
    run_softmax(T, m, n)


@given(T=st.sampled_from(TYPES), n=size_strategy)
def test_mix_and_calls_any_size(T, n):
    run_mix(T, n)
    run_calls(T, n)
