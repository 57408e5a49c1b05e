"""The sparsity passes' NaN/inf semantics, and `rm.STRICT_PIPELINE`, which keeps numpy's.

skip-zero-chunks skips W's columns where the input is zero, so an inf or NaN of W
there no longer makes a NaN (numpy: 0 * inf = NaN); skip-zero-updates skips a
row's update `W - e * x` when e == 0, so an inf of x no longer NaNs that row. Both
are on by default (bench/bench_strict_nan.py: without them a per-sample MNIST
step is 1.3-2.4x slower); STRICT_PIPELINE drops them and matches numpy exactly
in these cases. This file pins both behaviours down, so a change to either is seen.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


def sparse_input_and_a_bad_column(dtype, bad):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(16, 64)).astype(dtype)
    x = np.zeros(64, dtype)
    x[:8] = rng.random(8)  # the first chunk only: the chunks from column 8 on are all zero
    W[3, 40] = bad
    return W, x, np.zeros(16, dtype)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_default_skips_the_bad_column_strict_does_not(dtype, bad):
    W, x, b = sparse_input_and_a_bad_column(dtype, bad)
    with np.errstate(invalid="ignore"):
        expected = W @ x + b
    assert np.isnan(expected[3])
    fast = rm.compile(nn.dense, W, x, b)(W, x, b)
    strict = rm.compile(nn.dense, W, x, b, pipeline=rm.STRICT_PIPELINE)(W, x, b)
    assert np.isfinite(fast[3])  # the documented difference of the default
    np.testing.assert_allclose(np.delete(fast, 3), np.delete(expected, 3), rtol=1e-5)
    assert np.isnan(strict[3])
    np.testing.assert_allclose(strict, expected, rtol=1e-5)


def test_train_step_strict_keeps_numpys_nans():
    def loss(W, b, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W, x, b)), y)

    y = np.eye(16)[2]
    results = {}
    for name, pipeline in (("default", None), ("strict", rm.STRICT_PIPELINE)):
        W, x, b = sparse_input_and_a_bad_column(np.float64, np.inf)
        step = rm.compile_train_step(loss, params=(0, 1), optimizer=rm.optim.SGD(lr=0.1), pipeline=pipeline)
        results[name] = (step(W, b, x, y), W)
    assert np.isfinite(results["default"][0])
    assert np.isnan(results["strict"][0])  # numpy: the inf meets a zero of x, NaN, and the loss is NaN
    assert np.isnan(results["strict"][1]).any()
