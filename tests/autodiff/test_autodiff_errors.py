"""Gradient errors: missing rule, non-scalar output, bad argnums — each naming the op and the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES, register_rule_set, rule_set

X = np.array([0.5, -1.0, 2.0])

register_rule_set(DEFAULT_RULES.without(R.TanhOp), name="test-errors-no-tanh")
NO_TANH_PIPELINE = "inline,autodiff{rules=test-errors-no-tanh},inline,canonicalize,cse,dce"


def uses_tanh(x, w):
    y = rm.tanh(x)  # the line the error must quote
    return rm.sum(y) + rm.sum(w * w)


def test_missing_rule_names_the_op_the_rule_set_and_the_line():
    with pytest.raises(rm.GradientError) as info:
        rm.compile(rm.grad(uses_tanh), X, X, pipeline=NO_TANH_PIPELINE)
    message = str(info.value)
    assert "raster.tanh has no reverse rule in rule set 'test-errors-no-tanh'" in message
    assert f"{__file__}:" in message and "y = rm.tanh(x)  # the line the error must quote" in message


def test_missing_rule_off_the_path_is_not_an_error():
    # Only w is differentiated, and tanh does not lie between w and the output.
    compiled = rm.compile(rm.grad(uses_tanh, argnums=1), X, X, pipeline=NO_TANH_PIPELINE)
    np.testing.assert_allclose(compiled(X, X), 2 * X)


def test_missing_rule_through_jit_call():
    @rm.jit(pipeline=NO_TANH_PIPELINE)
    def grad_fn(x, w):
        return rm.grad(uses_tanh)(x, w)

    with pytest.raises(rm.GradientError, match=r"raster.tanh has no reverse rule[\s\S]*y = rm.tanh\(x\)"):
        grad_fn(X, X)


def test_the_default_rule_set_still_has_the_rule():
    assert rule_set("default").rule_for(R.TanhOp) is not None
    assert rule_set("test-errors-no-tanh").rule_for(R.TanhOp) is None


def test_non_scalar_output():
    with pytest.raises(rm.GradientError, match=r"must return one scalar.*\[\(3,\)\]") as info:
        rm.grad(lambda x: x * 2.0)(X)
    assert "rm.grad(lambda x: x * 2.0)(X)" in str(info.value)


def test_several_outputs_are_not_a_scalar():
    with pytest.raises(rm.GradientError, match="must return one scalar"):
        rm.value_and_grad(lambda x: (rm.sum(x), rm.sum(x)))(X)


@pytest.mark.parametrize("argnums", [1, -2, (0, 3), (0, 0)])
def test_bad_argnums(argnums):
    with pytest.raises(rm.GradientError, match=r"argnums .* (out of range for 1 argument|repeats an argument)") as info:
        rm.grad(lambda x: rm.sum(x), argnums=argnums)(X)
    assert "rm.grad(lambda x: rm.sum(x), argnums=argnums)(X)" in str(info.value)


def test_unknown_rule_set():
    with pytest.raises(rm.GradientError, match="no rule set named 'nope'.*default"):
        rm.compile(rm.grad(uses_tanh), X, X, pipeline="inline,autodiff{rules=nope},inline")


def test_errors_are_raster_errors():
    assert issubclass(rm.GradientError, rm.RasterError)
