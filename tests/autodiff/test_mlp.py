"""The seed's 4 -> 8 -> 3 MLP: value and all six gradients against a hand-written numpy backward pass."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


@rm.jit
def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def numpy_mlp_value_and_grads(W1, b1, W2, b2, x, y):
    """Forward and backward by hand. 2-D x / y: the loss is the batch mean."""
    batched = x.ndim == 2
    n = x.shape[0] if batched else 1
    z1 = x @ W1.T + b1
    h = np.maximum(z1, 0.0)
    z2 = h @ W2.T + b2
    e = np.exp(z2 - z2.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    loss = -np.sum(y * np.log(p)) / n
    # dL/dz2 for softmax followed by cross-entropy: p * sum(y) - y, per row, / n
    dz2 = (p * y.sum(axis=-1, keepdims=True) - y) / n
    dh = dz2 @ W2
    dz1 = dh * (z1 > 0)
    if batched:
        dW2, db2 = dz2.T @ h, dz2.sum(axis=0)
        dW1, db1 = dz1.T @ x, dz1.sum(axis=0)
    else:
        dW2, db2 = np.outer(dz2, h), dz2
        dW1, db1 = np.outer(dz1, x), dz1
    dx = dz1 @ W1
    dy = -np.log(p) / n
    return loss, (dW1, db1, dW2, db2, dx, dy)


def mlp_params(rng, dtype=np.float64):
    W1 = rng.standard_normal((8, 4)) * 0.7
    b1 = rng.standard_normal(8) * 0.1
    W2 = rng.standard_normal((3, 8)) * 0.7
    b2 = rng.standard_normal(3) * 0.1
    return [a.astype(dtype) for a in (W1, b1, W2, b2)]


def one_hot(labels, k=3):
    return np.eye(k)[labels]


def assert_rel_close(actual, expected, rtol):
    """|actual - expected| <= rtol * max|expected| elementwise (a relative error on the array's scale)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(float(np.max(np.abs(expected))), np.finfo(expected.dtype).tiny)
    assert float(np.max(np.abs(actual - expected))) <= rtol * scale


@pytest.mark.parametrize("batch", [None, 1, 5, 32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_value_and_six_gradients_match_numpy(batch, seed):
    rng = np.random.default_rng(seed)
    params = mlp_params(rng)
    if batch is None:
        x, y = rng.standard_normal(4), one_hot(rng.integers(0, 3))
    else:
        x, y = rng.standard_normal((batch, 4)), one_hot(rng.integers(0, 3, batch))
    loss, grads = rm.value_and_grad(mlp_loss)(*params, x, y)
    want_loss, want_grads = numpy_mlp_value_and_grads(*params, x, y)
    assert isinstance(grads, tuple) and len(grads) == 6
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for got, want in zip(grads, want_grads):
        assert_rel_close(got, want, 1e-10)


def test_mlp_argnums_subset_and_grad():
    rng = np.random.default_rng(3)
    params = mlp_params(rng)
    x, y = rng.standard_normal((4, 4)), one_hot(rng.integers(0, 3, 4))
    _, want = numpy_mlp_value_and_grads(*params, x, y)
    loss, (dW1, db1) = rm.value_and_grad(mlp_loss, argnums=(0, 1))(*params, x, y)
    assert_rel_close(dW1, want[0], 1e-10)
    assert_rel_close(db1, want[1], 1e-10)
    dW2 = rm.grad(mlp_loss, argnums=2)(*params, x, y)
    assert isinstance(dW2, np.ndarray)
    assert_rel_close(dW2, want[2], 1e-10)
    (dx,) = rm.grad(mlp_loss, argnums=(4,))(*params, x, y)
    assert_rel_close(dx, want[4], 1e-10)


def test_mlp_f32_gradients_are_f32_and_close():
    rng = np.random.default_rng(4)
    params = mlp_params(rng, np.float32)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = one_hot(rng.integers(0, 3, 6)).astype(np.float32)
    loss, grads = rm.value_and_grad(mlp_loss)(*params, x, y)
    want_loss, want = numpy_mlp_value_and_grads(*[a.astype(np.float64) for a in (*params, x, y)])
    assert loss == pytest.approx(want_loss, rel=1e-5)
    for got, expected in zip(grads, want):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batched", [False, True])
def test_softmax_cross_entropy_gradient_is_softmax_minus_target(batched):
    rng = np.random.default_rng(5)
    shape = (6, 5) if batched else (5,)
    z = rng.standard_normal(shape) * 4
    y = one_hot(rng.integers(0, 5, shape[:-1]), 5)

    @rm.jit
    def loss(z, y):
        return nn.softmax_cross_entropy(z, y)[0]

    dz = rm.grad(loss, argnums=0)(z, y)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)
    want = (s - y) / (shape[0] if batched else 1)
    np.testing.assert_allclose(dz, want, rtol=1e-12, atol=1e-15)


def test_training_loop_drives_the_loss_down():
    """200 full-batch gradient steps (lr 0.5) with value_and_grad on three Gaussian blobs in 4-D."""
    rng = np.random.default_rng(6)
    centres = rng.standard_normal((3, 4)) * 2.0
    labels = rng.integers(0, 3, 60)
    x = centres[labels] + 0.3 * rng.standard_normal((60, 4))
    y = one_hot(labels)
    params = [p * 0.5 for p in mlp_params(rng)]
    step = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
    losses = []
    for _ in range(200):
        loss, grads = step(*params, x, y)
        losses.append(loss)
        params = [p - 0.5 * g for p, g in zip(params, grads)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
