"""Reverse mode through rm.fori_loop / scan / cond: random-direction checks, the unrolled program, checkpointing."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm

TRIPS = st.sampled_from([0, 1, 2, 7, 100])


def directional_check(f_value, grads, args, rng, eps=1e-6, rtol=1e-6):
    """<grad, d> against the five-point central difference of f along a random direction d, per argument.

    Five points, not two: the two-point quotient's truncation error (eps^2 / 6 times the third
    derivative) reaches 3e-6 of the derivative on a 40-step tanh scan with |w| > 1.5 (hypothesis found
    such seeds), while the five-point one is O(eps^4).
    """
    for k, (arg, g) in enumerate(zip(args, grads)):
        d = rng.standard_normal(np.shape(arg))

        def along(t):
            shifted = list(args)
            shifted[k] = arg + t * eps * d
            return f_value(*shifted)

        f_2, f_1, f_m1, f_m2 = (along(t) for t in (2, 1, -1, -2))
        fd = (8 * (f_1 - f_m1) - (f_2 - f_m2)) / (12 * eps)
        # The quotient's own rounding error: a few ulps of each sample times its weight (18 / 12 eps).
        rounding = 8 * np.finfo(np.float64).eps * max(abs(f_2), abs(f_1), abs(f_m1), abs(f_m2)) * 18 / (12 * eps)
        assert np.sum(g * d) == pytest.approx(fd, rel=rtol, abs=1e-8 + rounding), f"argument {k}"


def spring(n, checkpoint=None, unrolled=False):
    def f(k, x0, v0):
        def body(i, c):
            x, v = c
            a = -k * x - 0.1 * v + 0.01 * rm.tanh(i * 0.1 + x)
            v = v + 0.01 * a
            return x + 0.01 * v, v

        if unrolled:
            c = (x0, v0)
            for i in range(n):
                c = body(i, c)
            x = c[0]
        else:
            x, _ = rm.fori_loop(0, n, body, (x0, v0), checkpoint=checkpoint)
        return rm.sum(x * x)

    return f


def _spring_args(seed, size=5):
    rng = np.random.default_rng(seed)
    return rng, (rng.random(size) + 1.0, rng.standard_normal(size), rng.standard_normal(size))


@functools.lru_cache(maxsize=None)
def compiled_spring(n):
    """(value, gradient) of the spring with n steps, compiled once per n for all examples."""
    f = spring(n)
    return rm.jit(f), rm.grad(f)


@settings(deadline=None)
@given(n=TRIPS, seed=st.integers(0, 2**16))
def test_fori_loop_gradient_random_direction(n, seed):
    rng, args = _spring_args(seed)
    value, grad = compiled_spring(n)
    directional_check(value, grad(*args), args, rng)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 12])
def test_fori_loop_gradient_equals_the_unrolled_program(n):
    _, args = _spring_args(n)
    looped = rm.grad(spring(n))(*args)
    unrolled = rm.grad(spring(n, unrolled=True))(*args)
    for a, b in zip(looped, unrolled):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 10, 97, 1000])
def test_checkpointed_gradient_equals_the_plain_one_with_a_bounded_tape(n):
    _, args = _spring_args(n, size=8)
    plain = rm.compile(rm.grad(spring(n)), *args)
    sqrt = rm.compile(rm.grad(spring(n, checkpoint="sqrt")), *args)
    for a, b in zip(plain(*args), sqrt(*args)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    assert plain.tape_report().carries == max(n - 1, 0)
    assert sqrt.tape_report().carries <= 2 * math.sqrt(n)


def test_checkpoint_every_k_and_the_decorator():
    _, args = _spring_args(3)
    plain = rm.grad(spring(50))(*args)

    def f(k, x0, v0):
        @rm.checkpoint(every=7)
        def body(i, c):
            x, v = c
            a = -k * x - 0.1 * v + 0.01 * rm.tanh(i * 0.1 + x)
            v = v + 0.01 * a
            return x + 0.01 * v, v

        return rm.sum(rm.fori_loop(0, 50, body, (x0, v0))[0] ** 2.0)

    c = rm.compile(rm.grad(f), *args)
    for a, b in zip(plain, c(*args)):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    assert c.tape_report().carries == (math.ceil(50 / 7) - 1) + (7 - 1)


def test_reverse_and_offset_loop_gradient():
    def f(x, w):
        return rm.sum(rm.fori_loop(-3, 5, lambda i, c: rm.tanh(c * w + i), x))

    rng = np.random.default_rng(4)
    args = (rng.standard_normal(4), rng.standard_normal(4))
    directional_check(rm.jit(f), rm.grad(f)(*args), args, rng)


@functools.lru_cache(maxsize=None)
def compiled_scan(reverse):
    def f(c0, xs, w):
        def step(c, x):
            c = rm.tanh(c * w + x)
            return c, rm.sum(c * x)

        c, ys = rm.scan(step, c0, xs, reverse=reverse)
        return rm.sum(c) + rm.sum(ys * ys)

    return rm.jit(f), rm.grad(f)


@settings(deadline=None)
@given(n=st.sampled_from([1, 2, 7, 40]), reverse=st.booleans(), seed=st.integers(0, 2**16))
def test_scan_gradient(n, reverse, seed):
    value, grad = compiled_scan(reverse)  # one compile per (reverse, n): the length comes from xs
    rng = np.random.default_rng(seed)
    args = (rng.standard_normal(3), rng.standard_normal((n, 3)), rng.standard_normal(3))
    directional_check(value, grad(*args), args, rng)


def test_scan_checkpointed_equals_plain():
    def make(checkpoint):
        def f(c0, xs):
            c, ys = rm.scan(lambda c, x: (rm.tanh(c + x), c * x), c0, xs, checkpoint=checkpoint)
            return rm.sum(ys) + rm.sum(c)

        return f

    rng = np.random.default_rng(5)
    args = (rng.standard_normal(3), rng.standard_normal((20, 3)))
    for a, b in zip(rm.grad(make(None))(*args), rm.grad(make("sqrt"))(*args)):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_closure_reads_xs_i_and_records_a_trajectory():
    """xs[i] in a body scatters its cotangent in place; a recorded history is not taped."""

    def f(xs, w):
        def body(i, c):
            x, hist = c
            x = x * w + xs[i]
            return x, hist.at[i].set(x * x)

        x, hist = rm.fori_loop(0, 12, body, (w * 0.0, xs * 0.0))
        return rm.sum(hist) + rm.sum(x)

    rng = np.random.default_rng(6)
    args = (rng.standard_normal((12, 4)), rng.standard_normal(4) * 0.5)
    directional_check(rm.jit(f), rm.grad(f)(*args), args, rng)
    report = rm.compile(rm.grad(f), *args).tape_report()
    assert report.loops and all(t.leaves == 1 for t in report.loops)  # x is taped, hist is not


@pytest.mark.parametrize("p", [1.0, 0.0])
def test_cond_gradient_is_the_taken_branch(p):
    def f(x, y, p):
        return rm.sum(rm.cond(p, lambda a, b: a * a * b, lambda a, b: rm.exp(a) - b, x, y))

    rng = np.random.default_rng(7)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    gx, gy = rm.grad(f, argnums=(0, 1))(x, y, p)
    if p:
        np.testing.assert_allclose(gx, 2 * x * y)
        np.testing.assert_allclose(gy, x * x)
    else:
        np.testing.assert_allclose(gx, np.exp(x))
        np.testing.assert_allclose(gy, -np.ones(3))


def test_nested_loops_and_a_jit_call_in_a_body():
    @rm.jit
    def cell(a, x):
        return rm.tanh(a) * x

    def f(x):
        def outer(i, acc):
            return rm.fori_loop(0, i + 1, lambda j, a: cell(a, x) + j * 0.1, acc)

        return rm.sum(rm.fori_loop(0, 4, outer, x))

    def reference(x):
        acc = x
        for i in range(4):
            for j in range(i + 1):
                acc = np.tanh(acc) * x + j * 0.1
        return np.sum(acc)

    rng = np.random.default_rng(8)
    x = rng.standard_normal(3)
    assert rm.jit(f)(x) == pytest.approx(reference(x), rel=1e-13)
    directional_check(reference, [rm.grad(f)(x)[0]], [x], rng)


def test_while_loop_gradient():
    """Reverse mode through a data-dependent loop (JAX refuses this): the trip count is recorded at run time."""

    def f(x, w):
        def cond_fn(s):
            return 3.0 > s[1]

        def body(s):
            c, t = s
            return rm.tanh(c * w) + 0.5, t + rm.sum(c * c) * 0.1 + 0.2

        c, t = rm.while_loop(cond_fn, body, (x, 0.0))
        return rm.sum(c * c) + t

    def reference(x, w):
        c, t = x, 0.0
        while 3.0 > t:
            c, t = np.tanh(c * w) + 0.5, t + np.sum(c * c) * 0.1 + 0.2
        return np.sum(c * c) + t

    rng = np.random.default_rng(9)
    args = (rng.standard_normal(4), rng.standard_normal(4))
    assert rm.jit(f)(*args) == pytest.approx(reference(*args), rel=1e-13)
    grads = rm.grad(f)(*args)
    directional_check(reference, grads, args, rng, eps=1e-7)
    # The interpreter runs the same reverse sweep (a Python list as the tape).
    interpreted = rm.compile(rm.grad(f), *args, pipeline="inline,autodiff,inline,canonicalize,cse,dce")
    for a, b in zip(interpreted.run_reference(*args), grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    report = rm.compile(rm.grad(f), *args).tape_report()
    assert report.growable_row_bytes and not report.loops


def test_run_time_trip_count_gradient_one_compile():
    def f(x, w, n):
        return rm.sum(rm.fori_loop(0, n, lambda i, c: rm.tanh(c * w + i * 0.1), x))

    def reference(x, w, n):
        c = x
        for i in range(int(n)):
            c = np.tanh(c * w + i * 0.1)
        return np.sum(c)

    rng = np.random.default_rng(10)
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    g = rm.grad(f, argnums=(0, 1))
    for n in (0.0, 1.0, 2.0, 7.0, 100.0):
        directional_check(lambda x, w: reference(x, w, n), g(x, w, n), (x, w), rng)
    assert len(g._compiled) == 1


def test_scan_ys_cotangent_is_updated_in_place():
    """The reverse loop reads row i of the ys cotangent, then zeroes it: in that order the zeroing updates
    the carry in place (the other order copied the whole T-row cotangent twice per step)."""
    import re

    from helpers import tanh_rnn_loss as g

    rng = np.random.default_rng(0)
    W, xs, h0 = rng.standard_normal((3, 3)), rng.standard_normal((50, 3)), rng.standard_normal(3)
    c = rm.compile(rm.grad(g, argnums=(0, 1)), W, xs, h0)
    rows = re.findall(r"memref.alloc\(\).*: memref<50xf64>", c.ir("after:parallelize-loops"))
    assert len(rows) <= 2, rows  # the forward ys and their cotangent; no per-step copy of the cotangent
    value = rm.jit(g)
    directional_check(lambda W, xs: value(W, xs, h0), c(W, xs, h0), (W, xs), rng, rtol=1e-5)


def test_while_loop_tapes_only_what_the_reverse_sweep_reads():
    """The damped spring as a while loop: the adjoint reads only the positions (velocity and step counter
    are not needed), so only the positions' tape is filled and reported."""

    def step(k, x, v):
        a = -k * x - 0.1 * v
        v = v + 0.01 * a
        return x + 0.01 * v, v

    def f(k, x0, v0):
        x, _, _ = rm.while_loop(lambda s: s[2] < 30.0, lambda s: (*step(k, s[0], s[1]), s[2] + 1.0), (x0, v0, 0.0))
        return rm.sum(x * x)

    def g(k, x0, v0):
        return rm.sum(rm.fori_loop(0, 30, lambda i, s: step(k, *s), (x0, v0))[0] ** 2.0)

    _, args = _spring_args(4, size=6)
    c = rm.compile(rm.grad(f, argnums=0), *args)
    assert c.ir("after:lower-to-loops").count("raster.rt_tape_push") == 1
    assert list(c.tape_report().growable_row_bytes) == [6 * 8]
    np.testing.assert_allclose(c(*args), rm.grad(g, argnums=0)(*args), rtol=1e-12)
