"""`skip-masked-terms`: a value multiplied only by a 0/1 mask is computed where the mask is 1.

In the jvp / hvp of a ReLU layer the tangent of the pre-activation, a dot
product with a row of the tangent matrix, is multiplied by the mask `z > 0`:
the pass moves that reduction under `scf.if` on the comparison
(tests/filecheck/skip_masked_terms/ shows the IR). Checked here: the numbers
equal the strict pipeline's (which leaves the pass out) and closed forms, per
sample and per batch; the pass fires per sample (a batch's register-tiled dense is left as it
is); and the documented
difference of the default pipeline (a NaN in a masked-out row is not
propagated) next to the strict pipeline's numpy semantics.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn

from helpers import mlp_loss


def relu_layer(W, b, x):
    return nn.relu(nn.dense(W, x, b))


def relu_layer_jvp(W, b, V, c, x):
    return rm.jvp(relu_layer, (W, b, x), (V, c, rm.zeros_like(x)))[1]


def expected_jvp(W, b, V, c, x):
    z = x @ W.T + b if x.ndim == 2 else W @ x + b
    dz = x @ V.T + c if x.ndim == 2 else V @ x + c
    return dz * (z > 0)


def sparse_sample(rng, shape, dtype):
    x = rng.random(shape).astype(dtype)
    x[rng.random(shape) < 0.7] = 0.0  # MNIST-like: mostly zeros
    return x


def moved(compiled) -> bool:
    """Whether the pass rewrote something (its IR differs from the one before it)."""
    return compiled.ir("after:skip-masked-terms") != compiled.ir("after:skip-zero-chunks")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(24, 40, None), (16, 64, 5), (9, 33, None)])
def test_relu_jvp_matches_strict_and_closed_form(shape, dtype):
    out_dim, in_dim, batch = shape
    rng = np.random.default_rng(out_dim * in_dim)
    W, V = (rng.normal(size=(out_dim, in_dim)).astype(dtype) for _ in range(2))
    b, c = (rng.normal(size=out_dim).astype(dtype) for _ in range(2))
    x = sparse_sample(rng, (in_dim,) if batch is None else (batch, in_dim), dtype)
    args = (W, b, V, c, x)
    default = rm.compile(relu_layer_jvp, *args)
    strict = rm.compile(relu_layer_jvp, *args, pipeline=rm.STRICT_PIPELINE)
    # per sample the pass fires; a batch's dense is register-tiled (matmul_tiles.py): one reduction
    # computes a tile of units for several samples, and the pass leaves it alone
    assert moved(default) == (batch is None)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(default(*args), strict(*args), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(default(*args), expected_jvp(*args), rtol=tolerance * 10, atol=tolerance * 10)


def test_mlp_hvp_matches_strict():
    rng = np.random.default_rng(3)
    params = [rng.normal(size=s) * 0.3 for s in [(32, 48), (32,), (10, 32), (10,)]]
    x, y = sparse_sample(rng, (48,), np.float64), np.eye(10)[4]
    v = tuple(rng.normal(size=p.shape) for p in params)

    def hvp(W1, b1, W2, b2, x, y, *v):
        return rm.hvp(mlp_loss, (W1, b1, W2, b2, x, y), v, argnums=(0, 1, 2, 3))

    args = (*params, x, y, *v)
    default = rm.compile(hvp, *args)
    assert moved(default)
    for got, want in zip(default(*args), rm.compile(hvp, *args, pipeline=rm.STRICT_PIPELINE)(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_nan_in_a_masked_out_row_default_skips_it_strict_does_not():
    rng = np.random.default_rng(5)
    W, V = rng.normal(size=(8, 64)), rng.normal(size=(8, 64))
    b, c, x = np.zeros(8), np.zeros(8), rng.random(64)
    W[2] = -np.abs(W[2])  # unit 2 is inactive (x >= 0): its mask is 0
    V[2, 5] = np.nan
    args = (W, b, V, c, x)
    with np.errstate(invalid="ignore"):
        expected = expected_jvp(*args)
    assert np.isnan(expected[2])  # numpy: NaN * 0
    default = rm.compile(relu_layer_jvp, *args)(*args)
    strict = rm.compile(relu_layer_jvp, *args, pipeline=rm.STRICT_PIPELINE)(*args)
    assert default[2] == 0.0  # the documented difference of the default pipeline
    np.testing.assert_allclose(np.delete(default, 2), np.delete(expected, 2), rtol=1e-12)
    assert np.isnan(strict[2])
    np.testing.assert_allclose(strict, expected, rtol=1e-12)
