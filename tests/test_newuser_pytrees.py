"""Parameters as dicts, lists and tuples of arrays (JAX's pytrees) in `@rm.jit` calls and `rm.grad` (before: a
DTypeError "argument 0 ('params') is a dict"); gradients come back in the structure of their argument."""

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn

RNG = np.random.default_rng(0)
PARAMS = {"W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=4), "out": [RNG.normal(size=(2, 4)), np.zeros(2)]}
X, Y = RNG.normal(size=(5, 3)), np.eye(2)[[0, 1, 0, 1, 1]]


def loss(params, x, y):
    h = nn.tanh(nn.dense(params["W1"], x, params["b1"]))
    W2, b2 = params["out"]
    return nn.cross_entropy(nn.softmax(nn.dense(W2, h, b2)), y)


def flat_loss(W1, b1, W2, b2, x, y):
    return loss({"W1": W1, "b1": b1, "out": [W2, b2]}, x, y)


FLAT = (PARAMS["W1"], PARAMS["b1"], *PARAMS["out"])


def test_jit_takes_nested_containers_of_arrays():
    f = rm.jit(loss)
    assert f(PARAMS, X, Y) == pytest.approx(rm.jit(flat_loss)(*FLAT, X, Y), rel=1e-15)
    assert f(PARAMS, X, Y) == pytest.approx(loss(PARAMS, X, Y), rel=1e-12)  # eager
    pair = rm.jit(lambda t, s: (t[1] * s, {"sum": t[0] + t[1]}))((np.ones(2), np.arange(2.0)), 3.0)
    np.testing.assert_array_equal(pair[0], [0.0, 3.0])
    np.testing.assert_array_equal(pair[1]["sum"], [1.0, 2.0])


def test_gradients_have_the_structure_of_their_argument_and_match_the_flat_function():
    g = rm.grad(loss, argnums=0)(PARAMS, X, Y)
    flat = rm.grad(flat_loss, argnums=(0, 1, 2, 3))(*FLAT, X, Y)
    assert sorted(g) == ["W1", "b1", "out"] and isinstance(g["out"], list)
    for got, want in zip((g["W1"], g["b1"], *g["out"]), flat):
        np.testing.assert_array_equal(got, want)
    value, (g_params, g_x) = rm.value_and_grad(loss, argnums=(0, 1))(PARAMS, X, Y)
    assert value == pytest.approx(loss(PARAMS, X, Y), rel=1e-12)
    np.testing.assert_array_equal(g_params["b1"], flat[1])
    np.testing.assert_array_equal(g_x, rm.grad(flat_loss, argnums=4)(*FLAT, X, Y))
    assert rm.check_grads(flat_loss, *FLAT, X, Y).ok  # (the flat gradients against finite differences)


def test_argnums_order_and_containers_inside_a_trace():
    def f(a, t):
        return rm.sum(a * t[0] * t[1] ** 2)

    a, t = np.arange(1.0, 3.0), [np.full(2, 2.0), np.full(2, 3.0)]
    g_t, g_a = rm.grad(f, argnums=(1, 0))(a, t)
    np.testing.assert_allclose(g_a, 2.0 * 9.0)
    np.testing.assert_allclose(g_t[0], a * 9.0)
    np.testing.assert_allclose(g_t[1], a * 2.0 * 2 * 3.0)

    inner = rm.jit(lambda d: d["a"] * d["b"])
    outer = rm.jit(lambda x: rm.sum(inner({"a": x, "b": x + 1.0})))
    assert outer(np.arange(3.0)) == pytest.approx(np.sum(np.arange(3.0) * np.arange(1.0, 4.0)))
    (g,) = rm.grad(outer)(np.arange(3.0))
    np.testing.assert_allclose(g, 2 * np.arange(3.0) + 1)


def test_a_bad_leaf_is_named_by_its_path():
    bad = {**PARAMS, "b1": np.zeros(4, np.int32)}
    with pytest.raises(rm.DTypeError, match=r"loss: params\['b1'\] has dtype int32") as info:
        rm.jit(loss)(bad, X, Y)
    assert "test_newuser_pytrees.py" in str(info.value)
    with pytest.raises(rm.DTypeError, match=r"argument 0 \('x'\) is a list"):  # (numbers only: an array meant)
        rm.jit(lambda x: x * 2.0)([1.0, 2.0])


def test_a_function_with_a_custom_rule_keeps_taking_arrays_by_position():
    """Its keyword or tree variant would be a plain @rm.jit function: autodiff of the primal, not the rule."""

    @rm.custom_rule
    def scaled(x, s):
        return x * s

    @scaled.rule
    def _(x, s, y, ct):
        return (ct * 100.0, rm.sum(ct * x))  # (deliberately not the true derivative: the rule must be used)

    x = np.ones(2)
    (g,) = rm.grad(lambda x: rm.sum(scaled(x, 2.0)), argnums=(0,))(x)
    np.testing.assert_array_equal(g, [100.0, 100.0])
    with pytest.raises(rm.DTypeError, match="keyword arguments are not supported by a CustomRuleFunction"):
        scaled(x, s=2.0)
    for call in (lambda: scaled([x], 2.0), lambda: rm.grad(lambda t, s: rm.sum(scaled(t, s)))([x], 2.0)):
        with pytest.raises(rm.DTypeError, match="tuples, lists or dicts of arrays as arguments are not supported"):
            call()
