"""rm.fori_loop / scan / while_loop / cond: compiled, interpreted and eager results against plain Python loops.

Trip counts 0, 1, 2, 7 and 100, several shapes, float32 and float64. The
compiled function is traced once per signature, so a static trip count is a
new compile; a trip count given as an argument is a run-time bound.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm

TRIPS = st.sampled_from([0, 1, 2, 7, 100])
SIZES = st.sampled_from([1, 8, 17])
DTYPES = st.sampled_from([np.float64, np.float32])


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)


def spring_numpy(k, x0, v0, n):
    x, v = x0.copy(), v0.copy()
    for _ in range(n):
        a = -k * x - x.dtype.type(0.1) * v
        v = v + x.dtype.type(0.01) * a
        x = x + x.dtype.type(0.01) * v
    return x, v


def spring_body(k):
    def body(i, carry):
        x, v = carry
        a = -k * x - 0.1 * v
        v = v + 0.01 * a
        return (x + 0.01 * v, v)

    return body


def _arrays(rng, size, dtype, count=3):
    return [rng.standard_normal(size).astype(dtype) for _ in range(count)]


@functools.lru_cache(maxsize=None)
def compiled_spring(n):
    def simulate(k, x0, v0):
        return rm.fori_loop(0, n, spring_body(k), (x0, v0))

    return rm.jit(simulate)


@settings(deadline=None)
@given(n=TRIPS, size=SIZES, dtype=DTYPES, seed=st.integers(0, 2**16))
def test_fori_loop_static_trip_count(n, size, dtype, seed):
    k, x0, v0 = _arrays(np.random.default_rng(seed), size, dtype)
    k = np.abs(k)

    want = spring_numpy(k, x0, v0, n)
    got = compiled_spring(n)(k, x0, v0)  # compiled once per n, dtype and size
    eager = compiled_spring(n).fn(k, x0, v0)
    for w, g, e in zip(want, got, eager):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tol(dtype))
        np.testing.assert_allclose(e, w, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fori_loop_run_time_trip_count(dtype):
    """One compile serves every trip count: the bound is an argument (a float scalar, truncated)."""
    rng = np.random.default_rng(0)
    k, x0, v0 = _arrays(rng, 5, dtype)
    k = np.abs(k)

    @rm.jit
    def simulate(k, x0, v0, n):
        return rm.fori_loop(0, n, spring_body(k), (x0, v0))[0]

    for n in [0, 1, 2, 7, 100, -3]:
        np.testing.assert_allclose(simulate(k, x0, v0, dtype(n)), spring_numpy(k, x0, v0, max(n, 0))[0], **tol(dtype))
    assert len(simulate._compiled) == 1


def test_fori_loop_index_bounds_and_dict_carry():
    """i as a float (i * dt), as an integer (i + 1, i > 3), as an index (xs[i], at_set), a dict carry."""
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((9, 4))

    def f(xs, x0):
        def body(i, c):
            t = i * 0.5
            row = xs[i]
            upd = rm.at_set(c["hist"], i, row * t)
            mask = i > 3
            return {"acc": c["acc"] + row * (i + 1) + mask, "hist": upd, "t": c["t"] + t}

        out = rm.fori_loop(2, 8, body, {"acc": x0, "hist": xs * 0.0, "t": 0.0})
        return out["acc"], out["hist"], out["t"]

    def reference(xs, x0):
        acc, hist, t = x0.copy(), np.zeros_like(xs), 0.0
        for i in range(2, 8):
            acc = acc + xs[i] * (i + 1) + float(i > 3)
            hist[i] = xs[i] * (i * 0.5)
            t += i * 0.5
        return acc, hist, t

    x0 = rng.standard_normal(4)
    want = reference(xs, x0)
    for got in (rm.jit(f)(xs, x0), f(xs, x0), rm.compile(f, xs, x0).run_reference(xs, x0)):
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)


def test_reverse_and_offset_bounds_and_integer_carry():
    def f(x):
        def body(i, c):
            count, y = c
            return count + i, y * 0.5 + i * x

        return rm.fori_loop(-3, 4, body, (0, x))

    x = np.array([1.0, -2.0])
    count, y = rm.jit(f)(x)
    want_y = x.copy()
    for i in range(-3, 4):
        want_y = want_y * 0.5 + i * x
    assert count == sum(range(-3, 4))
    np.testing.assert_allclose(y, want_y, rtol=1e-14)


@functools.lru_cache(maxsize=None)
def scan_program(reverse):
    def f(c0, xs, ws):
        def step(c, x):
            row, w = x
            c = c * 0.9 + row
            return c, (rm.sum(c) * w, c * 2.0)

        return rm.scan(step, c0, (xs, ws), reverse=reverse)

    return rm.jit(f)  # one compile per signature; examples with the same shapes share it


@settings(deadline=None)
@given(n=TRIPS, size=SIZES, dtype=DTYPES, reverse=st.booleans(), seed=st.integers(0, 2**16))
def test_scan(n, size, dtype, reverse, seed):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, size)).astype(dtype)
    ws = rng.standard_normal((n, 2)).astype(dtype)
    c0 = rng.standard_normal(size).astype(dtype)

    f = scan_program(reverse)

    def reference(c0, xs, ws):
        c, ys1, ys2 = c0.copy(), np.zeros((n, 2), dtype), np.zeros((n, size), dtype)
        for k in (range(n - 1, -1, -1) if reverse else range(n)):
            c = c * dtype(0.9) + xs[k]
            ys1[k], ys2[k] = c.sum() * ws[k], c * 2
        return c, (ys1, ys2)

    want_c, (want1, want2) = reference(c0, xs, ws)
    for c, (y1, y2) in (f(c0, xs, ws), f.fn(c0, xs, ws)):
        np.testing.assert_allclose(c, want_c, **tol(dtype))
        np.testing.assert_allclose(y1, want1, **tol(dtype))
        np.testing.assert_allclose(y2, want2, **tol(dtype))
        assert y1.shape == (n, 2) and y2.shape == (n, size)


def test_scan_length_without_xs_and_none_output():
    def f(x):
        c, ys = rm.scan(lambda c, _: (c * 2.0, c), x, length=5)
        c2, none = rm.scan(lambda c, _: (c + 1.0, None), c, length=3)
        return c2, ys

    x = np.array([1.0, 3.0])
    c, ys = rm.jit(f)(x)
    np.testing.assert_allclose(c, x * 32 + 3)
    np.testing.assert_allclose(ys, np.stack([x * 2**k for k in range(5)]))
    c_eager, ys_eager = f(x)
    np.testing.assert_allclose(c_eager, c)
    np.testing.assert_allclose(ys_eager, ys)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_while_loop_newton_sqrt(dtype):
    """A data-dependent trip count: Newton's iteration for sqrt(a) to a tolerance."""

    def newton(a):
        def cond_fn(s):
            x, it = s
            return rm.max(rm.abs(x * x - a) if hasattr(rm, "abs") else rm.maximum(x * x - a, a - x * x)) > 1e-5 * rm.max(a)

        def body(s):
            x, it = s
            return 0.5 * (x + a / x), it + 1

        return rm.while_loop(cond_fn, body, (a, 0))

    a = np.array([2.0, 9.0, 100.0], dtype)
    x, its = rm.jit(newton)(a)
    np.testing.assert_allclose(x, np.sqrt(a), rtol=1e-5)
    ex, eits = newton(a)
    assert its == eits > 3
    np.testing.assert_allclose(ex, x, **tol(dtype))


@settings(deadline=None)
@given(size=SIZES, dtype=DTYPES, seed=st.integers(0, 2**16))
def test_cond(size, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(size).astype(dtype)

    def f(x, p):
        return rm.cond(p, lambda a, b: (a * 2.0, rm.sum(b)), lambda a, b: (-a, rm.max(b) + 1), x, x * x)

    g = rm.jit(f)
    for p in (dtype(1.0), dtype(0.0), dtype(-0.5)):
        want = f(x, p)
        got = g(x, p)
        np.testing.assert_allclose(got[0], want[0], **tol(dtype))
        np.testing.assert_allclose(got[1], want[1], **tol(dtype))


def test_nested_loops_with_dependent_bound():
    """A loop in a loop whose inner bound is the outer index (a run-time trip count)."""

    def f(x):
        def outer(i, acc):
            return rm.fori_loop(0, i + 1, lambda j, a: a + x * j + i, acc)

        return rm.fori_loop(0, 6, outer, x * 0.0)

    x = np.array([1.0, 2.0, -1.0])
    want = np.zeros(3)
    for i in range(6):
        for j in range(i + 1):
            want = want + x * j + i
    np.testing.assert_allclose(rm.jit(f)(x), want)
    np.testing.assert_allclose(f(x), want)


def test_jit_call_inside_a_body_stays_a_call_until_inline():
    @rm.jit
    def force(x, k):
        return -k * x

    def f(k, x0, v0):
        def body(i, c):
            x, v = c
            v = v + 0.01 * force(x, k)
            return x + 0.01 * v, v

        return rm.fori_loop(0, 50, body, (x0, v0))[0]

    k, x0, v0 = np.array([1.0, 2.0]), np.array([1.0, 0.5]), np.zeros(2)
    c = rm.compile(f, k, x0, v0)
    assert "func.call @force" in c.ir("traced")
    assert "func.call" not in c.ir("after:inline")
    x, v = x0.copy(), v0.copy()
    for _ in range(50):
        v = v + 0.01 * (-k * x)
        x = x + 0.01 * v
    np.testing.assert_allclose(c(k, x0, v0), x, rtol=1e-14)


def test_weakly_typed_init_takes_the_body_dtype():
    """An init of 0.0 (a Python float) becomes float32 when the body adds float32 values."""

    def f(xs):
        return rm.fori_loop(0, 4, lambda i, s: s + rm.sum(xs[i]), 0.0)

    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    c = rm.compile(f, xs)
    assert "tensor<f32>" in c.ir("traced") and c.result_types[0].element_type.bitwidth == 32
    assert c(xs) == pytest.approx(66.0)


def test_dynamic_index_clamps_at_run_time():
    """Traced indices: negative counts from the end, then clamped to the array (documented policy)."""

    def f(xs):
        return rm.fori_loop(-12, 12, lambda i, acc: rm.at_add(acc, i, xs[i]), xs * 0.0)

    xs = np.arange(1.0, 6.0)
    want = np.zeros(5)
    for i in range(-12, 12):
        j = min(max(i + 5 if i < 0 else i, 0), 4)
        want[j] += xs[j]
    np.testing.assert_allclose(rm.jit(f)(xs), want)
    np.testing.assert_allclose(rm.compile(f, xs).run_reference(xs), want)
    # Eagerly, xs[i] is numpy's own indexing (an IndexError at -12); rm.at_add clamps like the compiled code.
    np.testing.assert_allclose(rm.at_add(np.zeros(5), -12, 1.0), [1.0, 0, 0, 0, 0])


def test_loop_ir_does_not_grow_with_the_trip_count():
    def make(n):
        return lambda k, x0, v0: rm.fori_loop(0, n, spring_body(k), (x0, v0))

    a = np.ones(4)
    small = rm.compile(make(10), a, a, a, pipeline="inline")
    large = rm.compile(make(100000), a, a, a, pipeline="inline")
    assert small.ir("traced").replace("fill 10 :", "fill 100000 :") == large.ir("traced")


@functools.lru_cache(maxsize=None)
def counting_while():
    def f(x, n):
        return rm.while_loop(lambda s: s[1] < n, lambda s: (s[0] * 0.9 + rm.tanh(s[0]), s[1] + 1.0), (x, 0.0))

    return rm.jit(f)


@settings(deadline=None)
@given(n=TRIPS, size=SIZES, dtype=DTYPES, seed=st.integers(0, 2**16))
def test_while_loop_trip_counts(n, size, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(size).astype(dtype)
    want, count = x.copy(), 0
    while count < n:
        want, count = want * dtype(0.9) + np.tanh(want), count + 1
    got, steps = counting_while()(x, dtype(n))
    assert steps == n
    np.testing.assert_allclose(got, want, **tol(dtype))
    eager, _ = counting_while().fn(x, dtype(n))
    np.testing.assert_allclose(eager, want, **tol(dtype))


def test_integer_floor_division_and_modulo_follow_python():
    """i // k and i % k on traced integers: floored, with the divisor's sign; x // 0 = x % 0 = 0 (numpy)."""

    def f(x):
        def body(j, acc):
            k = j - 2  # divisors 3, 2, 1, 0, -1, -2, -4 at run time
            k = k - (j > 5)

            def inner(i, a):
                return a + (i // k) * 1000.0 + (i % k) + (i % 2) * 0.5 + (7 // (i + 100)) * 0.25

            return rm.fori_loop(-9, 10, inner, acc * 0.5)

        return rm.fori_loop(-1, 6, body, x)

    want = np.zeros(1)
    for j in range(-1, 6):
        k = j - 2 - (j > 5)
        want = want * 0.5
        for i in range(-9, 10):
            q, r = (i // k, i % k) if k else (0, 0)
            want = want + q * 1000.0 + r + (i % 2) * 0.5 + (7 // (i + 100)) * 0.25
    np.testing.assert_allclose(rm.jit(f)(np.zeros(1)), want)
    x = np.zeros(1)
    with pytest.raises(rm.DTypeError, match="integer division works on traced integers"):
        rm.jit(lambda x: rm.fori_loop(0, 2, lambda i, c: c + (c // 2.0), x))(x)


def test_integer_scalar_results_come_back_as_python_ints():
    """A loop counter carried as a traced integer is returned as an int, like the eager function returns it."""

    def f(a):
        return rm.while_loop(lambda s: s[1] < 5, lambda s: (s[0] * 0.5, s[1] + 1), (a, 0))

    def g(a):
        return rm.sum(a), rm.fori_loop(0, 3, lambda i, s: s + i, 0)

    a = np.ones(2)
    for program, want in ((f, 5), (g, 3)):
        got, eager = rm.jit(program)(a)[1], program(a)[1]
        assert type(got) is int and got == want == eager
        assert type(rm.compile(program, a).run_reference(a)[1]) is int
    assert type(rm.jit(g)(a)[0]) is float
    assert type(rm.jit(lambda a: rm.fori_loop(0, 4, lambda i, s: s + i, 0))(a)) is int  # the one-result fast path
