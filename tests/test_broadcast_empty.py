"""Broadcasting with size-0 and size-1 dimensions follows numpy everywhere.

Regression (issue 18, item 1): the shape rule kept a 1 against a 0 ((1, 3) with
(0, 3) gave (1, 3)), so compiled code returned a (1, 3) array of uninitialised
memory for `a * b`, `rm.sum(a + b)` summed garbage, `rm.broadcast_to(a, (0, 3))`
was refused, and gradients over empty arrays raised. One rule (dialects/shapes.py)
serves the verifier, the tracer and the eager ops; each is checked here against
`np.broadcast_shapes` on hypothesis-drawn shapes with sides 0..3 (0 and 1 often).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import make_context
from raster_mlir.dialects import shapes as S

SIDES = st.sampled_from([0, 1, 1, 2, 3])
ANY_SHAPE = st.lists(SIDES, max_size=3).map(tuple)
# Pairs that broadcast, with sides 0..3 (hypothesis favours the small ones: 0 and 1).
PAIRS = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3).map(
    lambda b: b.input_shapes
)


def numpy_broadcast(a, b):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def tensor(shape) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + "f64>"


def unbroadcast(ct: np.ndarray, shape) -> np.ndarray:
    """numpy's adjoint of broadcasting `shape` to ct.shape: sum the stretched axes."""
    lead = ct.ndim - len(shape)
    ct = ct.sum(axis=tuple(range(lead))) if lead else ct
    stretched = tuple(i for i, d in enumerate(shape) if d == 1 and ct.shape[i] != 1)
    return ct.sum(axis=stretched, keepdims=True) if stretched else ct


def values(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# -- the rule, the verifier, the eager ops: cheap, so any pair of shapes ----------------


@settings(deadline=None)
@given(ANY_SHAPE, ANY_SHAPE)
def test_the_shape_rule_is_numpys(a, b):
    expected = numpy_broadcast(a, b)
    if expected is None:
        with pytest.raises(rm.ShapeError, match="do not broadcast"):
            S.broadcast("raster.add", a, b)
    else:
        assert S.broadcast("raster.add", a, b) == expected


@settings(deadline=None)
@given(ANY_SHAPE, ANY_SHAPE)
def test_the_verifier_accepts_numpys_result_and_nothing_else(a, b):
    def module(result):
        text = (
            f"builtin.module {{\n  func.func @f(%a: {tensor(a)}, %b: {tensor(b)}) {{\n"
            f"    %c = raster.mul %a, %b : {tensor(a)}, {tensor(b)} -> {tensor(result)}\n    func.return\n  }}\n}}\n"
        )
        return Parser(make_context(), text).parse_module()

    expected = numpy_broadcast(a, b)
    if expected is not None:
        module(expected).verify()
    # The old rule's answer (a 1 kept against a 0) and any other shape are refused.
    wrong = expected[:-1] + (1 if expected[-1] != 1 else 0,) if expected else (5,)
    with pytest.raises(VerifyException):
        module(wrong).verify()


@settings(deadline=None)
@given(ANY_SHAPE, ANY_SHAPE)
def test_eager_ops_broadcast_like_numpy(a, b):
    x, y = values(a, 0), values(b, 1)
    expected = numpy_broadcast(a, b)
    if expected is None:
        with pytest.raises(rm.ShapeError):
            rm.multiply(x, y)
        return
    np.testing.assert_array_equal(rm.multiply(x, y), x * y)
    np.testing.assert_array_equal(rm.add(x, y), x + y)
    np.testing.assert_array_equal(rm.broadcast_to(x, expected), np.broadcast_to(x, expected))


@settings(deadline=None)
@given(ANY_SHAPE, ANY_SHAPE, ANY_SHAPE)
def test_the_newer_binary_and_select_ops_broadcast_like_numpy(a, b, c):
    """where / minimum / arctan2 / comparisons share the rule, eagerly and traced (no compile)."""
    x, y, z = values(a, 7), values(b, 8), values(c, 9)
    expected = numpy_broadcast(a, b)
    expected3 = None if expected is None else numpy_broadcast(expected, c)
    if expected is None:
        for op in (rm.minimum, rm.arctan2, rm.less):
            with pytest.raises(rm.ShapeError):
                op(x, y)
    else:
        np.testing.assert_array_equal(rm.minimum(x, y), np.minimum(x, y))
        np.testing.assert_array_equal(rm.arctan2(x, y), np.arctan2(x, y))
        np.testing.assert_array_equal(rm.less(x, y), (x < y).astype(np.float64))
    if expected3 is None:
        with pytest.raises(rm.ShapeError):
            rm.where(x, y, z)
        return
    np.testing.assert_array_equal(rm.where(x, y, z), np.where(x != 0, y, z))
    traced = rm.compile(lambda x, y, z: rm.where(rm.less(x, y), rm.minimum(x, y), z), x, y, z, pipeline="")
    assert traced.result_types[0].get_shape() == expected3


# -- the tracer and compiled code: one compile per example -------------------------------


@settings(deadline=None)
@given(PAIRS)
@example(((1, 3), (0, 3)))
@example(((0,), ()))
@example(((0, 1), (1, 3)))
def test_traced_and_compiled_broadcasting_is_numpys(pair):
    a, b = pair
    x, y = values(a, 2), values(b, 3)
    expected = np.broadcast_shapes(a, b)
    traced = rm.compile(lambda x, y: x * y - x, x, y, pipeline="")  # traced and verified only
    assert traced.result_types[0].get_shape() == expected
    out = rm.jit(lambda x, y: (x * y - x, rm.sum(x + y), rm.broadcast_to(y, expected)))(x, y)
    np.testing.assert_allclose(out[0], x * y - x, rtol=1e-15)
    assert np.shape(out[0]) == expected  # 0-d results come back as Python floats
    np.testing.assert_allclose(out[1], np.sum(x + y), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[2], np.broadcast_to(y, expected))


@settings(deadline=None)
@given(PAIRS)
@example(((1, 3), (0, 3)))
@example(((0,), ()))
@example(((0, 1), (1, 3)))
def test_gradients_through_broadcasting_with_empty_dimensions(pair):
    a, b = pair
    x, y = values(a, 4), values(b, 5)
    gx, gy = rm.grad(lambda x, y: rm.sum(x * y))(x, y)
    out = np.broadcast_shapes(a, b)
    assert np.shape(gx) == a and np.shape(gy) == b
    np.testing.assert_allclose(gx, unbroadcast(np.broadcast_to(y, out), a), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gy, unbroadcast(np.broadcast_to(x, out), b), rtol=1e-12, atol=1e-12)


# -- the cases of the report -------------------------------------------------------------


def test_reported_cases():
    product = rm.jit(lambda a, b: a * b)(np.full((1, 3), 2.0), np.ones((0, 3)))
    assert product.shape == (0, 3)
    assert rm.jit(lambda a, b: rm.sum(a + b))(np.ones((0, 1)), np.full((1, 3), 5.0)) == 0.0
    assert rm.broadcast_to(np.ones((1, 3)), (0, 3)).shape == (0, 3)
    assert rm.jit(lambda a: rm.broadcast_to(a, (0, 3)))(np.ones((1, 3))).shape == (0, 3)
    (g,) = rm.grad(lambda a: rm.sum(a))(np.zeros(0))
    assert g.shape == (0,) and g.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("W_shape, x_shape", [((4, 3), (0, 3)), ((4, 0), (2, 0)), ((4, 0), (0,)), ((0, 3), (2, 3))])
def test_dense_gradients_over_empty_batches_and_inputs(W_shape, x_shape, dtype):
    rng = np.random.default_rng(6)
    W, x, b = rng.standard_normal(W_shape).astype(dtype), rng.standard_normal(x_shape).astype(dtype), np.ones(W_shape[0], dtype)

    def loss(W, x, b):
        return rm.sum(nn.relu(nn.dense(W, x, b)))

    value, (dW, dx, db) = rm.value_and_grad(loss)(W, x, b)
    y = x @ W.T + b
    active = (y > 0).astype(dtype)
    assert value == pytest.approx(float(np.maximum(y, 0).sum()))
    assert (dW.shape, dx.shape, db.shape) == (W.shape, x.shape, b.shape)
    assert dW.dtype == dx.dtype == db.dtype == dtype
    batch_active = active if active.ndim == 2 else active[None]
    batch_x = x if x.ndim == 2 else x[None]
    np.testing.assert_allclose(dW, batch_active.T @ batch_x, rtol=1e-6)
    np.testing.assert_allclose(dx, active @ W, rtol=1e-6)
    np.testing.assert_allclose(db, batch_active.sum(axis=0), rtol=1e-6)
