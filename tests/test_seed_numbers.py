"""The seed's REPL numbers, eagerly and inside @rm.jit (issue #2).

The expected values are the ones written in the seed: dense and relu are
exact, softmax is quoted to 17 significant digits and checked to rel 1e-15.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn

W = [[0.1, 0.2], [0.3, 0.4]]
X = [1.0, 2.0]
B = [0.0, 0.0]
DENSE_EXPECTED = [0.5, 1.1]

RELU_IN = [-1.0, 0.0, 1.0, 2.0]
RELU_EXPECTED = [0.0, 0.0, 1.0, 2.0]

SOFTMAX_IN = [-1.0, 0.0, 1.0, 2.0]
SOFTMAX_EXPECTED = [0.03205860328008499, 0.08714431874203257, 0.23688281808991016, 0.6439142598879724]


# -- eager -------------------------------------------------------------------


def test_dense_eager_on_lists():
    y = nn.dense(W, X, B)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (2,)
    np.testing.assert_allclose(y, DENSE_EXPECTED, rtol=1e-15)


def test_dense_eager_on_arrays():
    y = nn.dense(np.array(W), np.array(X), np.array(B))
    np.testing.assert_allclose(y, DENSE_EXPECTED, rtol=1e-15)


def test_relu_eager_on_int_list():
    y = nn.relu([-1, 0, 1, 2])
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_array_equal(y, RELU_EXPECTED)


def test_softmax_eager():
    y = nn.softmax(np.array(SOFTMAX_IN))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, SOFTMAX_EXPECTED, rtol=1e-15, atol=0)


def test_softmax_eager_on_int_list():
    np.testing.assert_allclose(nn.softmax([-1, 0, 1, 2]), SOFTMAX_EXPECTED, rtol=1e-15, atol=0)


# -- traced and run by @rm.jit ------------------------------------------------


@rm.jit
def jit_dense(W, x, b):
    return nn.dense(W, x, b)


@rm.jit
def jit_relu(x):
    return nn.relu(x)


@rm.jit
def jit_softmax(x):
    return nn.softmax(x)


def test_dense_jit():
    y = jit_dense(np.array(W), np.array(X), np.array(B))
    assert isinstance(y, np.ndarray) and y.shape == (2,)
    np.testing.assert_allclose(y, DENSE_EXPECTED, rtol=1e-15)


def test_relu_jit():
    np.testing.assert_array_equal(jit_relu(np.array(RELU_IN)), RELU_EXPECTED)


def test_softmax_jit():
    np.testing.assert_allclose(jit_softmax(np.array(SOFTMAX_IN)), SOFTMAX_EXPECTED, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "fn, args, expected",
    [
        (nn.dense, (np.array(W), np.array(X), np.array(B)), DENSE_EXPECTED),
        (nn.relu, (np.array(RELU_IN),), RELU_EXPECTED),
        (nn.softmax, (np.array(SOFTMAX_IN),), SOFTMAX_EXPECTED),
    ],
    ids=["dense", "relu", "softmax"],
)
def test_seed_numbers_through_reference_interpreter(fn, args, expected):
    compiled = rm.compile(fn, *args)
    assert "func.func" in compiled.ir()
    np.testing.assert_allclose(compiled.run_reference(*args), expected, rtol=1e-15, atol=0)


def test_seed_mlp_in_one_jit_function():
    """The three seed ops composed, as in the seed's two-layer example."""

    @rm.jit
    def layer(W, x, b):
        return nn.softmax(nn.relu(nn.dense(W, x, b)))

    Wa, xa, ba = np.array(W), np.array(X), np.array(B)
    h = np.maximum(np.array(W) @ np.array(X) + np.array(B), 0.0)
    e = np.exp(h - h.max())
    np.testing.assert_allclose(layer(Wa, xa, ba), e / e.sum(), rtol=1e-15)
    np.testing.assert_allclose(layer(Wa, xa, ba), nn.softmax(nn.relu(nn.dense(Wa, xa, ba))), rtol=1e-15)
