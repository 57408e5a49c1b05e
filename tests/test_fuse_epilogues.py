"""fuse-epilogues: the optimiser's update applied at the tile stores of a batch's weight gradient."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import DEFAULT_PIPELINE

WITHOUT = DEFAULT_PIPELINE.replace(",fuse-epilogues", "")


def mlp_loss(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)


def problem(batch, n_in, hidden, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.3, (hidden, n_in)), rng.normal(0, 0.1, hidden), rng.normal(0, 0.3, (5, hidden)), np.zeros(5)]
    x, y = rng.random((batch, n_in)), np.eye(5)[rng.integers(0, 5, batch)]
    return [p.astype(dtype) for p in params], x.astype(dtype), y.astype(dtype)


OPTIMIZERS = {
    "sgd": lambda: rm.optim.SGD(lr=0.1),
    "momentum": lambda: rm.optim.SGD(lr=0.1, momentum=0.9),
    "adam": lambda: rm.optim.Adam(lr=0.01),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype, n_in, hidden, batch", [(np.float64, 67, 37, 9), (np.float32, 70, 33, 20)])
def test_fused_updates_equal_the_unfused_pipeline(optimizer, dtype, n_in, hidden, batch):
    params, x, y = problem(batch, n_in, hidden, dtype)
    fused = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=OPTIMIZERS[optimizer](), pipeline=DEFAULT_PIPELINE)
    plain = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=OPTIMIZERS[optimizer](), pipeline=WITHOUT)
    a, b = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(3):
        la, lb = fused(*a, x, y), plain(*b, x, y)
        assert la == pytest.approx(lb, rel=1e-12 if dtype == np.float64 else 1e-5)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, **tol)
    # W1's gradient (hidden x n_in) is never stored: its tiles update W1 directly.
    before = fused.ir("after:fuse-loops")
    after = fused.ir("after:fuse-epilogues")
    shape = f"memref<{hidden}x{n_in}x{'f64' if dtype == np.float64 else 'f32'}>"
    assert before.count(f"memref.alloc() {{alignment = 64 : i64}} : {shape}") == 1
    assert f"memref.alloc() {{alignment = 64 : i64}} : {shape}" not in after


def test_an_update_that_a_later_product_reads_around_stays_where_it_is():
    """dW2's tiles come before dh = dz2 @ W2, which needs the old W2: W2's update is not moved."""
    params, x, y = problem(12, 40, 16, np.float64)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    step(*[p.copy() for p in params], x, y)
    after = step.ir("after:fuse-epilogues")
    assert "memref.alloc() {alignment = 64 : i64} : memref<5x16xf64>" in after  # dW2 kept
    assert "memref.alloc() {alignment = 64 : i64} : memref<16x40xf64>" not in after  # dW1 fused
