"""The seed's example, end to end: a 4->8->3 MLP trained with compiled gradients.

Run with `python -m raster_mlir demo`. It prints the loss every 20 steps of
200 SGD steps, then the gradient of the first layer's weights.
"""

from __future__ import annotations

import time

import numpy as np

import raster_mlir as rm
from raster_mlir import nn


@rm.jit
def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def run(steps: int = 200, lr: float = 0.5, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0.0, 0.5, size=(8, 4))
    b1 = np.zeros(8)
    W2 = rng.normal(0.0, 0.5, size=(3, 8))
    b2 = np.zeros(3)
    x = np.array([0.5, -1.0, 0.25, 2.0])
    y = np.array([0.0, 1.0, 0.0])
    step = rm.value_and_grad(mlp_loss)
    start = time.perf_counter()
    history = []
    for i in range(steps):
        loss, (dW1, db1, dW2, db2, _, _) = step(W1, b1, W2, b2, x, y)
        history.append(loss)
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        if i % 20 == 0 or i == steps - 1:
            print(f"step {i:4d}  loss {loss:.6f}")
    elapsed = time.perf_counter() - start
    print(f"{steps} steps in {elapsed:.3f} s (first call includes tracing and compilation)")
    print(f"|grad W1| at the end: {np.linalg.norm(dW1):.3e}")
    return history
