"""What a new user reached for first and did not find (each test failed before its fix):
softmax / log_softmax over another axis (jax.nn's `axis=`), `rm.dot` (jnp.dot, np.dot with a scalar)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    data=st.data(),
)
def test_softmax_over_any_axis_matches_numpy_and_finite_differences(shape, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.integers(-ndim, ndim - 1), st.just(tuple(range(ndim)))))
    x = np.random.default_rng(len(shape)).normal(size=shape) * 3
    expected = _softmax(x, axis)
    np.testing.assert_allclose(nn.softmax(x, axis=axis), expected, rtol=1e-12)  # eager
    np.testing.assert_allclose(rm.jit(lambda a: nn.softmax(a, axis=axis))(x), expected, rtol=1e-12)
    np.testing.assert_allclose(rm.jit(lambda a: nn.log_softmax(a, axis=axis))(x), np.log(expected), atol=1e-12)
    c = np.random.default_rng(1).normal(size=shape)
    assert rm.check_grads(lambda a: rm.sum(c * nn.softmax(a, axis=axis)), x).ok
    assert rm.check_grads(lambda a: rm.sum(c * nn.log_softmax(a, axis)), x).ok


def test_softmax_over_the_last_axis_is_still_one_op():
    x = np.ones((2, 3))
    for axis in (-1, 1, (1,)):
        assert "raster.softmax" in rm.compile(lambda a: nn.softmax(a, axis=axis), x).ir("traced")
    assert "raster.softmax " not in rm.compile(lambda a: nn.softmax(a, axis=0), x).ir("traced")


def test_softmax_bad_axis_is_a_shape_error_naming_the_line():
    with pytest.raises(rm.ShapeError, match="axis 2 is out of range") as info:
        rm.jit(lambda a: nn.softmax(a, axis=2))(np.ones((2, 3)))
    assert "test_newuser_api.py" in str(info.value)


def test_dot_like_numpy():
    rng = np.random.default_rng(0)
    a, b, m = rng.normal(size=3), rng.normal(size=3), rng.normal(size=(2, 3))
    cases = [
        (lambda a, b, m: rm.dot(a, b) * a, lambda a, b, m: np.dot(a, b) * a),
        (lambda a, b, m: rm.dot(m, a), lambda a, b, m: m @ a),
        (lambda a, b, m: np.dot(2.0, m) + m.dot(a)[:, None], lambda a, b, m: 2.0 * m + (m @ a)[:, None]),
        (lambda a, b, m: rm.dot(m, 3.0), lambda a, b, m: m * 3.0),
    ]
    for f, ref in cases:
        np.testing.assert_allclose(rm.jit(f)(a, b, m), ref(a, b, m), rtol=1e-13)
        np.testing.assert_allclose(f(a, b, m), ref(a, b, m), rtol=1e-13)  # eager
    assert rm.check_grads(lambda m, a: rm.sum(rm.dot(m, a) ** 2), m, a).ok


def _fit_with_aux(w, b, x, y):
    pred = x @ w + b
    return rm.mean((pred - y) ** 2), {"pred": pred, "max": rm.max(pred)}


def test_has_aux_returns_the_auxiliary_outputs_beside_value_and_gradients():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(8, 3)), rng.normal(size=3), np.array(0.5)
    y = x @ np.array([1.0, 2.0, 3.0])
    pred = x @ w + b
    (value, aux), g_w = rm.value_and_grad(_fit_with_aux, argnums=0, has_aux=True)(w, b, x, y)
    assert value == pytest.approx(np.mean((pred - y) ** 2), rel=1e-12)
    np.testing.assert_allclose(aux["pred"], pred, rtol=1e-13)
    assert aux["max"] == pytest.approx(pred.max(), rel=1e-15)
    np.testing.assert_allclose(g_w, 2 * x.T @ (pred - y) / 8, rtol=1e-12)
    (g_w2, g_b), aux2 = rm.grad(_fit_with_aux, argnums=(0, 1), has_aux=True)(w, b, x, y)
    np.testing.assert_array_equal(g_w2, g_w)
    assert g_b == pytest.approx(np.mean(2 * (pred - y)), rel=1e-12)
    # The forward computation is traced twice (value, aux) and merged by cse: one x @ w is left.
    c = rm.compile(rm.value_and_grad(_fit_with_aux, argnums=0, has_aux=True), w, b, x, y)
    assert c.ir("after:cse").count("raster.matmul") == 2  # x @ w, and x^T @ (its cotangent)


def test_has_aux_needs_a_pair():
    with pytest.raises(rm.GradientError, match="has_aux=True, so it must return a pair") as info:
        rm.grad(lambda w: rm.sum(w), has_aux=True)(np.ones(2))
    assert "test_newuser_api.py" in str(info.value)
