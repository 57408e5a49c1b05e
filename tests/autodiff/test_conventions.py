"""The documented choices at kinks and clamps (where finite differences cannot decide)."""

from __future__ import annotations

import numpy as np

import raster_mlir as rm
from raster_mlir import nn


def test_relu_derivative_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(rm.grad(lambda x: rm.sum(nn.relu(x)), argnums=0)(x), [0.0, 0.0, 1.0])


def test_maximum_splits_ties_evenly():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    gx, gy = rm.grad(lambda x, y: rm.sum(rm.maximum(x, y)))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.0])
    # so maximum(x, x) = x has derivative 1
    np.testing.assert_array_equal(rm.grad(lambda x: rm.sum(rm.maximum(x, x)), argnums=0)(x), np.ones(3))


def test_maximum_with_a_broadcast_scalar_sums_its_share():
    x = np.array([-1.0, 0.0, 2.0])
    g = rm.grad(lambda x, c: rm.sum(rm.maximum(x, c)))(x, 0.0)
    np.testing.assert_array_equal(g[0], [0.0, 0.5, 1.0])
    assert float(g[1]) == 1.5  # 1 (x = -1) + 0.5 (tie at 0)


def test_max_reduction_splits_ties_evenly():
    x = np.array([[1.0, 3.0, 3.0], [4.0, 0.0, -1.0]])
    g = rm.grad(lambda x: rm.sum(rm.max(x, axis=1)), argnums=0)(x)
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    g_all = rm.grad(lambda x: rm.max(x), argnums=0)(np.array([2.0, 2.0, 2.0, 1.0]))
    np.testing.assert_allclose(g_all, [1 / 3, 1 / 3, 1 / 3, 0.0])


def test_cross_entropy_gradient_where_p_is_clamped():
    # p = 0 is clamped to tiny: the loss is finite and the gradient is -y / tiny (large, finite)
    p, y = np.array([0.0, 0.5, 0.5]), np.array([1.0, 0.0, 0.0])
    loss, (gp, gy) = rm.value_and_grad(nn.cross_entropy)(p, y)
    tiny = np.finfo(np.float64).tiny
    assert np.isfinite(loss) and loss == -np.log(tiny)
    assert gp[0] == -1.0 / tiny and np.isfinite(gp[0])
    np.testing.assert_array_equal(gp[1:], [0.0, 0.0])
    np.testing.assert_allclose(gy, -np.log(np.maximum(p, tiny)))


def test_pow_exponent_gradient_is_zero_at_zero_base():
    x, y = np.array([0.0, 2.0]), np.array([2.0, 3.0])
    gx, gy = rm.grad(lambda x, y: rm.sum(rm.power(x, y)))(x, y)
    np.testing.assert_allclose(gx, [0.0, 12.0])
    np.testing.assert_allclose(gy, [0.0, 8.0 * np.log(2.0)])
