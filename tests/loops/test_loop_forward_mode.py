"""Forward mode and second derivatives through loops and branches (tangent rules of the region ops)."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm


def program(x, w):
    y = rm.fori_loop(0, 5, lambda i, c: rm.tanh(c * w + i * 0.1), x)
    c, ys = rm.scan(lambda c, row: (c * 0.9 + row * w, c * row), y, rm.stack([x, w, x * w]))
    z = rm.while_loop(lambda s: 2.0 > s[1], lambda s: (s[0] * w + 0.1, s[1] + 0.7), (c, 0.0))[0]
    return rm.cond(rm.sum(z) > 0.0, lambda a: a * a, lambda a: -a, z) + rm.sum(ys)


def _args(seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(3) for _ in range(4)]


def test_jvp_through_fori_scan_while_and_cond():
    x, w, dx, dw = _args(0)
    out, tangent = rm.jvp(program, (x, w), (dx, dw))
    f = rm.jit(program)
    eps = 1e-6
    fd = (f(x + eps * dx, w + eps * dw) - f(x - eps * dx, w - eps * dw)) / (2 * eps)
    np.testing.assert_allclose(out, f(x, w), rtol=1e-14)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-9)


def test_jacfwd_equals_jacrev_through_loops():
    x, w, _, _ = _args(1)
    np.testing.assert_allclose(rm.jacfwd(program)(x, w), rm.jacrev(program)(x, w), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("checkpoint", [None, 2])
def test_hvp_through_static_loops(checkpoint):
    def loss(x, w):
        y = rm.fori_loop(0, 5, lambda i, c: rm.tanh(c * w + i * 0.1), x, checkpoint=checkpoint)
        c, ys = rm.scan(lambda c, row: (c * 0.9 + row * w, c * row), y, rm.stack([x, w, x * w]))
        return rm.sum(c * c) + rm.sum(ys)

    x, w, dx, dw = _args(2)
    hv = rm.hvp(loss, (x, w), (dx, dw))
    eps = 1e-5
    plus, minus = rm.grad(loss)(x + eps * dx, w + eps * dw), rm.grad(loss)(x - eps * dx, w - eps * dw)
    for h, p, m in zip(hv, plus, minus):
        np.testing.assert_allclose(h, (p - m) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_grad_of_grad_through_a_loop_equals_the_hessian():
    def f(x):
        return rm.sum(rm.fori_loop(0, 4, lambda i, c: rm.tanh(c) * x + i * 0.1, x))

    x = _args(3)[0]
    second = rm.grad(lambda x: rm.sum(rm.grad(f)(x)[0]))(x)[0]
    np.testing.assert_allclose(second, rm.hessian(f)(x).sum(axis=0), rtol=1e-12)
