"""Rule sets: every raster op is covered, and a research pass can swap or extend the rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from xdsl.parser import Parser

import raster_mlir as rm
from raster_mlir.compiler import make_context
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES, RuleSet, register_rule_set, rule_set
from raster_mlir.runtime.interpreter import interpret
from raster_mlir.passes.autodiff import AutodiffPass
from raster_mlir.passes.inline import InlinePass

NONDIFFERENTIABLE = {R.GreaterOp, R.EqualOp, R.FillOp, R.ConstantOp}
NONDIFFERENTIABLE |= {R.SignOp, R.LessOp, R.LessEqualOp, R.GreaterEqualOp, R.NotEqualOp}
NONDIFFERENTIABLE |= set(R.ROUNDING_OPS)  # floor, ceil, trunc, rint: piecewise constant


@pytest.mark.parametrize("op_cls", R.RASTER_OPS, ids=lambda c: c.name)
def test_every_raster_op_has_a_rule_or_is_marked(op_cls):
    assert DEFAULT_RULES.covers(op_cls), f"{op_cls.name} has neither a reverse rule nor a non-differentiable mark"
    assert DEFAULT_RULES.is_nondifferentiable(op_cls) == (op_cls in NONDIFFERENTIABLE)
    assert (DEFAULT_RULES.rule_for(op_cls) is None) == (op_cls in NONDIFFERENTIABLE)


@pytest.mark.parametrize("op_cls", R.RASTER_OPS, ids=lambda c: c.name)
def test_every_raster_op_has_a_tangent_rule_or_is_marked(op_cls):
    assert DEFAULT_RULES.covers_tangent(op_cls), f"{op_cls.name} has neither a tangent rule nor a non-differentiable mark"
    assert (DEFAULT_RULES.tangent_rule_for(op_cls) is None) == (op_cls in NONDIFFERENTIABLE)


def test_copy_extend_without_are_independent():
    mine = DEFAULT_RULES.copy("mine")
    assert mine.name == "mine" and mine.rule_for(R.ExpOp) is DEFAULT_RULES.rule_for(R.ExpOp)

    @mine.register(R.ExpOp)
    def other_exp(b, op, cts):
        return [cts[0]]

    assert mine.rule_for(R.ExpOp) is other_exp
    assert DEFAULT_RULES.rule_for(R.ExpOp) is not other_exp
    smaller = mine.without(R.ExpOp, R.GreaterOp)
    assert not smaller.covers(R.ExpOp) and not smaller.covers(R.GreaterOp) and mine.covers(R.ExpOp)
    extended = RuleSet("empty").extend(smaller)
    assert extended.covers(R.TanhOp) and not extended.covers(R.ExpOp)
    assert extended.is_nondifferentiable(R.EqualOp)


def test_tangent_rules_copy_extend_without_and_marks():
    mine = DEFAULT_RULES.copy("mine-tangents")
    assert mine.tangent_rule_for(R.ExpOp) is DEFAULT_RULES.tangent_rule_for(R.ExpOp)

    @mine.register_tangent(R.ExpOp)
    def other_exp(b, op, ts):
        return [ts[0]]

    assert mine.tangent_rule_for(R.ExpOp) is other_exp
    assert DEFAULT_RULES.tangent_rule_for(R.ExpOp) is not other_exp
    assert mine.rule_for(R.ExpOp) is DEFAULT_RULES.rule_for(R.ExpOp)  # the reverse rule is untouched
    smaller = mine.without(R.ExpOp)
    assert not smaller.covers_tangent(R.ExpOp) and not smaller.covers(R.ExpOp)
    extended = RuleSet("empty-tangents").extend(mine)
    assert extended.tangent_rule_for(R.ExpOp) is other_exp and extended.covers_tangent(R.GreaterOp)
    mine.mark_nondifferentiable(R.TanhOp)
    assert mine.tangent_rule_for(R.TanhOp) is None and mine.covers_tangent(R.TanhOp)

    @mine.register_tangent(R.ElementwiseUnaryOp)
    def generic(b, op, ts):
        return [ts[0]]

    assert RuleSet("x").extend(mine).without(R.SqrtOp).tangent_rule_for(R.SqrtOp) is generic


def test_register_overrides_a_mark_and_mark_overrides_a_rule():
    rules = DEFAULT_RULES.copy()

    @rules.register(R.GreaterOp)
    def greater_rule(b, op, cts):
        return [None, None]

    assert rules.rule_for(R.GreaterOp) is greater_rule and not rules.is_nondifferentiable(R.GreaterOp)
    rules.mark_nondifferentiable(R.TanhOp)
    assert rules.rule_for(R.TanhOp) is None and rules.is_nondifferentiable(R.TanhOp)


def test_a_rule_serves_subclasses():
    rules = RuleSet("base-classes")

    @rules.register(R.ElementwiseUnaryOp)
    def generic(b, op, cts):
        return [cts[0]]

    assert rules.rule_for(R.SqrtOp) is generic and rules.covers(R.ReluOp)


# A research rule set: the straight-through estimator for `greater` (gradient passes as if identity
# on the lhs), so `x * (x > 0)` gets the gradient `(x > 0) + x * 1` instead of `(x > 0)`.
STRAIGHT_THROUGH = DEFAULT_RULES.copy("test-straight-through")


@STRAIGHT_THROUGH.register(R.GreaterOp)
def greater_straight_through(b, op, cts):
    return [b.unbroadcast(cts[0], b.shape(op.lhs)) if b.needs(0) else None, None]


register_rule_set(STRAIGHT_THROUGH)
X = np.array([0.5, -1.0, 2.0])


def masked(x):
    return rm.sum(x * rm.greater(x, 0.0))


def test_pass_option_selects_a_registered_rule_set():
    default = rm.grad(masked, argnums=0)(X)
    np.testing.assert_array_equal(default, (X > 0).astype(float))
    pipeline = "inline,autodiff{rules=test-straight-through},inline,canonicalize,cse,dce"
    swapped = rm.compile(rm.grad(masked, argnums=0), X, pipeline=pipeline)(X)
    np.testing.assert_array_equal(swapped, (X > 0) + X)
    assert rule_set("test-straight-through") is STRAIGHT_THROUGH


@dataclass(frozen=True)
class StraightThroughAutodiff(AutodiffPass):
    """A research pass: the default rules plus a surrogate gradient, chosen by overriding rule_set()."""

    name = "autodiff-straight-through"

    def rule_set(self) -> RuleSet:
        return STRAIGHT_THROUGH


IR = """
func.func private @masked(%x: tensor<3xf64>) -> tensor<f64> {
  %zero = raster.fill 0.0 : f64 : tensor<f64>
  %m = raster.greater %x, %zero : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
  %y = raster.mul %x, %m : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
  %s = raster.sum %y : tensor<3xf64> -> tensor<f64>
  func.return %s : tensor<f64>
}
func.func @main(%x: tensor<3xf64>) -> tensor<3xf64> {
  %g = raster.grad @masked(%x) argnums = [0] : (tensor<3xf64>) -> tensor<3xf64>
  func.return %g : tensor<3xf64>
}
"""


@pytest.mark.parametrize("pass_, expected", [(AutodiffPass(), X > 0), (StraightThroughAutodiff(), (X > 0) + X)])
def test_subclass_overriding_rule_set(pass_, expected):
    module = Parser(make_context(), IR).parse_module()
    pass_.apply(make_context(), module)
    InlinePass().apply(make_context(), module)
    module.verify()
    (g,) = interpret(module, "main", [X])
    np.testing.assert_array_equal(g, expected.astype(float))
