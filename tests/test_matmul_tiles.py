"""The register-tiled (m,k)@(k,n) lowering (passes/matmul_tiles.py), natively.

Tiles are MATMUL_TILE_ROWS rows x MATMUL_TILE_VECTORS vectors of 64 bytes; the
rows below and the columns right of the last whole tile take narrower tiles.
Shapes on, below and above every boundary, in both dtypes, against numpy.
"""

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.passes.matmul_tiles import ROWS as MATMUL_TILE_ROWS, VECTORS as MATMUL_TILE_VECTORS

RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def tile_width(dtype) -> int:
    return MATMUL_TILE_VECTORS * 64 // np.dtype(dtype).itemsize


def shapes(dtype):
    w, r = tile_width(dtype), MATMUL_TILE_ROWS
    return [
        (r, 1, w),  # exactly one tile
        (r - 1, 3, w),  # too few rows: no tile
        (r, 3, w - 1),  # too few columns: no tile
        (2 * r + 1, 5, 2 * w + 3),  # tiles, a row below, columns to the right
        (128, 32, 784),  # the 784-128-10 batch-32 weight gradient's shape
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiled_matmul_equals_numpy(dtype):
    f = rm.jit(lambda a, b: rm.matmul(a, b))
    rng = np.random.default_rng(0)
    for m, k, n in shapes(dtype):
        a = rng.normal(size=(m, k)).astype(dtype)
        b = rng.normal(size=(k, n)).astype(dtype)
        got = f(a, b)
        want = a.astype(np.float64) @ b.astype(np.float64)
        scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
        assert np.all(np.abs(got - want) <= RTOL[dtype] * scale + 1e-300), (m, k, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiles_are_vectors_where_a_vector_fits_and_scalars_elsewhere(dtype):
    lanes, r = tile_width(dtype) // MATMUL_TILE_VECTORS, MATMUL_TILE_ROWS

    def lowered(n):
        return rm.compile(lambda a, b: rm.matmul(a, b), np.ones((r, 2), dtype), np.ones((2, n), dtype)).ir(
            "after:lower-to-loops"
        )

    assert "vector.load" in lowered(2 * lanes) and "vector.load" in lowered(lanes)
    scalar = lowered(lanes - 1)
    assert "vector.load" not in scalar
    # Every element is stored once, with its final value: no load of the output.
    assert "memref.load %out0" not in scalar and "memref.store" in scalar


def test_batched_train_step_equals_numpy():
    """The batch's weight gradient dz^T x goes through the tiles: one SGD step against a numpy backward pass."""
    rng = np.random.default_rng(1)
    W1, b1 = rng.normal(0, 0.2, (12, 40)), rng.normal(0, 0.1, 12)
    W2, b2 = rng.normal(0, 0.3, (5, 12)), np.zeros(5)
    x, y = rng.random((9, 40)), np.eye(5)[rng.integers(0, 5, 9)]

    def loss(W1, b1, W2, b2, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)

    step = rm.compile_train_step(loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    mine = [p.copy() for p in (W1, b1, W2, b2)]
    step(*mine, x, y)
    assert "vector.load" in step.ir()
    # numpy: mean cross-entropy over the batch
    z1 = x @ W1.T + b1
    h = np.maximum(z1, 0)
    z2 = h @ W2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = (p - y) / len(x)
    dz1 = (dz2 @ W2) * (z1 > 0)
    want = [W1 - 0.1 * dz1.T @ x, b1 - 0.1 * dz1.sum(0), W2 - 0.1 * dz2.T @ h, b2 - 0.1 * dz2.sum(0)]
    for got, w in zip(mine, want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12)
