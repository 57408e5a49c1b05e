"""Values used more than once: their cotangents are summed (micrograd's `b = a + a` lesson)."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


def test_a_plus_a():
    x = np.array([1.0, -2.0, 3.5])
    g = rm.grad(lambda a: rm.sum(a + a), argnums=0)(x)
    np.testing.assert_array_equal(g, np.full(3, 2.0))


def test_x_times_x():
    x = np.array([1.0, -2.0, 3.5])
    g = rm.grad(lambda a: rm.sum(a * a), argnums=0)(x)
    np.testing.assert_array_equal(g, 2 * x)


def test_a_plus_a_through_a_scalar_chain():
    # b = a + a; c = b * a  ->  c = 2 a^2, dc/da = 4a
    g = rm.grad(lambda a: (a + a) * a, argnums=0)(np.array(1.5))
    assert float(g) == pytest.approx(6.0)  # 0-d results come back as Python floats, as the loss does


@rm.jit
def cube(x):
    return x * x * x


def test_user_function_called_twice():
    x = np.array([0.5, -1.0, 2.0])

    def f(x):
        return rm.sum(cube(x) + cube(x))

    compiled = rm.compile(rm.grad(f, argnums=0), x)
    assert compiled.ir("traced").count("func.call @cube") == 2  # the calls are real calls before inline
    np.testing.assert_allclose(compiled(x), 6 * x**2, rtol=1e-14)


def test_user_function_differentiated_directly_and_nested():
    x = np.array([0.5, -1.0, 2.0])

    @rm.jit
    def outer(x):
        return rm.sum(rm.tanh(cube(x)))

    g = rm.grad(outer, argnums=0)(x)
    # 1 - tanh(8)**2 ~ 4.5e-7 cancels: one ulp of difference between native libm's
    # tanh and numpy's becomes ~3e-10 relative, so 1e-13 would test the libm, not the rule.
    np.testing.assert_allclose(g, (1 - np.tanh(x**3) ** 2) * 3 * x**2, rtol=1e-9)


def test_value_feeding_two_layers():
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    b1, b2 = rng.standard_normal(5), rng.standard_normal(3)
    x = rng.standard_normal(4)

    def f(W1, b1, W2, b2, x):
        # x feeds both layers; W1's output is used twice
        h = nn.tanh(nn.dense(W1, x, b1))
        k = nn.dense(W2, x, b2)
        return rm.sum(h * h) + rm.sum(k) + rm.sum(h)

    grads = rm.grad(f)(W1, b1, W2, b2, x)
    h = np.tanh(W1 @ x + b1)
    dz1 = (2 * h + 1) * (1 - h**2)
    want_dx = W1.T @ dz1 + W2.T @ np.ones(3)
    np.testing.assert_allclose(grads[4], want_dx, rtol=1e-12)
    np.testing.assert_allclose(grads[0], np.outer(dz1, x), rtol=1e-12)
    np.testing.assert_allclose(grads[2], np.outer(np.ones(3), x), rtol=1e-12)
    rm.check_grads(f, W1, b1, W2, b2, x)


def test_both_results_of_softmax_cross_entropy_flow_back():
    rng = np.random.default_rng(1)
    z, y, w = rng.standard_normal((4, 6)), rng.uniform(size=(4, 6)), rng.standard_normal((4, 6))

    def f(z, y, w):
        loss, s = nn.softmax_cross_entropy(z, y)
        return loss * 2.0 + rm.sum(s * w)

    report = rm.check_grads(f, z, y, w)
    assert report.max_rel_error < 1e-6


def test_argument_used_by_nothing_gets_zero_and_returned_argument_gets_one():
    x, y = np.array([1.0, 2.0]), np.array(3.0)
    gx, gy = rm.grad(lambda x, y: y)(x, y)
    np.testing.assert_array_equal(gx, np.zeros(2))
    assert float(gy) == 1.0


def test_gradient_of_a_gradient():
    # d/dx sum(d/dx sum(x^3)) = d/dx sum(3 x^2) = 6 x
    x = np.array([0.5, -1.0, 2.0])
    inner = rm.grad(lambda x: rm.sum(x * x * x), argnums=0)
    outer = rm.grad(lambda x: rm.sum(inner(x)), argnums=0)
    np.testing.assert_allclose(outer(x), 6 * x, rtol=1e-14)
