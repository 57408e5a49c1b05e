"""`rm.custom_rule`: a user function's own reverse rule replaces differentiation through its body."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn


@rm.custom_rule
def softplus(x):
    return rm.log(1.0 + rm.exp(x))


@softplus.rule
def softplus_rule(x, y, ct):
    return (ct * rm.sigmoid(x),)


@rm.custom_rule
def fake_square(x):
    return x * x


@fake_square.rule
def fake_square_rule(x, y, ct):
    return (ct * 10.0,)  # deliberately not 2x: the compiler must use it anyway


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


X = np.array([-1.5, 0.0, 0.25, 3.0])


def test_rule_gives_the_true_gradient():
    g = rm.grad(lambda x: rm.sum(softplus(x)), argnums=0)(X)
    np.testing.assert_allclose(g, sigmoid(X), rtol=1e-14)


def test_a_deliberately_different_rule_is_what_you_get():
    g = rm.grad(lambda x: rm.sum(fake_square(x) * 3.0), argnums=0)(X)
    np.testing.assert_array_equal(g, np.full(4, 30.0))


def test_differentiating_the_custom_function_itself_uses_the_rule():
    g = rm.grad(lambda x: rm.sum(fake_square(x)), argnums=0)(X)
    np.testing.assert_array_equal(g, np.full(4, 10.0))
    scalar = np.array(0.7)
    assert float(rm.grad(fake_square, argnums=0)(scalar)) == 10.0


def test_eager_and_forward_calls_use_the_body():
    np.testing.assert_allclose(softplus(X), np.log1p(np.exp(X)), rtol=1e-14)
    np.testing.assert_array_equal(fake_square(X), X * X)
    value, g = rm.value_and_grad(lambda x: rm.sum(fake_square(x)), argnums=0)(X)
    assert value == pytest.approx(float(np.sum(X * X)))


def test_rule_and_primal_disappear_after_the_pipeline():
    compiled = rm.compile(rm.grad(lambda x: rm.sum(softplus(x)), argnums=0), X)
    after_autodiff = compiled.ir("after:autodiff")
    assert "raster.rrule = @softplus_rule" in after_autodiff
    assert "func.call @softplus_rule" in after_autodiff
    final = compiled.ir("after:dce")  # the last tensor-level stage
    assert "func.call" not in final and "softplus" not in final
    assert "raster.sigmoid" in final


def test_custom_function_outside_any_gradient_is_inlined():
    compiled = rm.compile(lambda x: rm.sum(softplus(x)), X)
    assert "func.call" not in compiled.ir() and "softplus_rule" not in compiled.ir()
    assert compiled(X) == pytest.approx(float(np.sum(np.log1p(np.exp(X)))))


@rm.custom_rule
def scaled_pair(x, w):
    return x * w, rm.sum(x)


@scaled_pair.rule
def scaled_pair_rule(x, w, ys, cts):
    product, total = ys
    ct_product, ct_total = cts
    # d/dx: ct_product * w + ct_total; w gets no gradient by declaration
    return ct_product * w + ct_total, None


def test_several_outputs_none_cotangent_and_zero_filled_unused_output():
    w = np.array([2.0, -1.0, 0.5, 4.0])

    def uses_both(x, w):
        a, s = scaled_pair(x, w)
        return rm.sum(a) + 3.0 * s

    def uses_first(x, w):
        a, _ = scaled_pair(x, w)
        return rm.sum(a)

    gx, gw = rm.grad(uses_both)(X, w)
    np.testing.assert_allclose(gx, w + 3.0, rtol=1e-15)
    np.testing.assert_array_equal(gw, np.zeros(4))  # the rule said None
    gx = rm.grad(uses_first, argnums=0)(X, w)
    np.testing.assert_allclose(gx, w, rtol=1e-15)  # the unused output's cotangent was zero
    ir = rm.compile(rm.grad(uses_first, argnums=0), X, w).ir("after:autodiff")
    assert "raster.fill 0.000000e+00" in ir


@rm.custom_rule
def expo(x):
    return rm.exp(x)


@expo.rule
def expo_rule(x, y, ct):
    return ct * expo(x)  # a single input may return the array itself; the rule calls the function


def test_rule_may_call_its_own_function():
    g = rm.grad(lambda x: rm.sum(expo(x)), argnums=0)(X)
    np.testing.assert_allclose(g, np.exp(X), rtol=1e-14)


def test_custom_rule_inside_a_network_matches_finite_differences():
    rng = np.random.default_rng(0)
    W, b, x = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal((5, 4))

    def loss(W, b, x):
        return rm.mean(softplus(nn.dense(W, x, b)))

    rm.check_grads(loss, W, b, x)


def test_function_without_rule_is_an_error():
    @rm.custom_rule
    def no_rule(x):
        return x * 2.0

    with pytest.raises(rm.GradientError, match="no_rule.*has no rule.*@no_rule.rule"):
        rm.grad(lambda x: rm.sum(no_rule(x)), argnums=0)(X)


def test_rule_returning_a_wrong_shape_is_an_error_naming_the_rule():
    @rm.custom_rule
    def bad(x):
        return x * 2.0

    @bad.rule
    def bad_rule(x, y, ct):
        return (rm.sum(ct),)

    with pytest.raises(rm.GradientError, match=r"rule of bad returned \(\) f64 for input 0.*\(4,\) f64") as info:
        rm.grad(lambda x: rm.sum(bad(x)), argnums=0)(X)
    assert "def bad_rule" in str(info.value)


def test_rule_returning_the_wrong_number_of_cotangents_is_an_error():
    @rm.custom_rule
    def two_inputs(x, y):
        return x * y

    @two_inputs.rule
    def short_rule(x, y, out, ct):
        return (ct * y,)

    with pytest.raises(rm.GradientError, match="must return a tuple of 2 cotangent"):
        rm.grad(lambda x, y: rm.sum(two_inputs(x, y)))(X, X)


def test_decorator_with_rule_argument_and_redefining_the_rule():
    def double_rule(x, y, ct):
        return (ct * 2.0,)

    twice = rm.custom_rule(lambda x: x * 2.0, rule=double_rule)
    grad = rm.grad(lambda x: rm.sum(twice(x)), argnums=0)
    np.testing.assert_array_equal(grad(X), np.full(4, 2.0))
    twice.rule(lambda x, y, ct: (ct * 5.0,))
    np.testing.assert_array_equal(rm.grad(twice, argnums=0)(np.array(1.0)), 5.0)
