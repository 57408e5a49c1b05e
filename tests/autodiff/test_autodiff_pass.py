"""The autodiff pass itself: pruning, zero cotangents, naming, locations, ordering, nesting."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc

import raster_mlir as rm
from raster_mlir.compiler import make_context
from raster_mlir.dialects import raster as R
from raster_mlir.frontend.tracer import ModuleTrace
from raster_mlir.passes.autodiff import AutodiffPass
from raster_mlir.passes.inline import InlinePass
from raster_mlir.passes.registry import parse_pipeline


def traced_module(fn, *arrays):
    """The traced module of `fn` and its entry symbol, before any pass."""
    trace = ModuleTrace()
    types = [R.tensor(a.shape, "f64" if a.dtype == np.float64 else "f32") for a in arrays]
    symbol, _ = trace.trace_function(fn, getattr(fn, "__name__", "fn"), types)
    return trace.module, symbol


def run_passes(module, *passes):
    for p in passes:
        p.apply(make_context(), module)
    module.verify()
    return module


def functions(module):
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def op_names(function):
    return [op.name for op in function.body.block.ops]


W = np.arange(12.0).reshape(3, 4) / 10
X = np.array([0.5, -1.0, 2.0, 0.25])


def matvec_loss(W, x):
    return rm.sum(rm.matmul(W, x))


def test_non_differentiated_argument_gets_no_cotangent_computation():
    module, _ = traced_module(lambda W, x: rm.grad(matvec_loss, argnums=0)(W, x), W, X)
    run_passes(module, InlinePass(), AutodiffPass())
    generated = functions(module)["matvec_loss_grad_wrt_0"]
    # forward matmul only; dW = outer(ct, x) needs no second matmul (dx = ct @ W is never built)
    assert op_names(generated).count("raster.matmul") == 1
    grads_x = traced_module(lambda W, x: rm.grad(matvec_loss, argnums=1)(W, x), W, X)[0]
    run_passes(grads_x, InlinePass(), AutodiffPass())
    assert op_names(functions(grads_x)["matvec_loss_grad_wrt_1"]).count("raster.matmul") == 2


def test_zero_fill_only_for_arguments_without_a_path():
    def f(x, y):
        return rm.sum(x * 3.0)

    module, _ = traced_module(lambda x, y: rm.grad(f)(x, y), X, W)
    run_passes(module, InlinePass(), AutodiffPass())
    body = list(functions(module)["f_grad"].body.block.ops)
    zero_fills = [op for op in body if isinstance(op, R.FillOp) and op.value.value.data == 0.0]
    assert [R.shape_of(op.result.type) for op in zero_fills] == [(3, 4)]  # for y only
    gx, gy = rm.grad(f)(X, W)
    np.testing.assert_array_equal(gx, np.full(4, 3.0))
    np.testing.assert_array_equal(gy, np.zeros((3, 4)))


def test_nondifferentiable_ops_block_the_gradient():
    def f(x):
        return rm.sum(rm.greater(x, 0.0) * x)  # the mask is a constant for the gradient

    np.testing.assert_array_equal(rm.grad(f, argnums=0)(X), (X > 0).astype(float))


def test_generated_functions_are_named_shared_and_replaced_by_calls():
    def two_grads(W, x):
        a = rm.grad(matvec_loss, argnums=0)(W, x)
        b = rm.grad(matvec_loss, argnums=0)(W, x)
        v, (c, d) = rm.value_and_grad(matvec_loss)(W, x)
        return a + b + c, v, d

    module, entry = traced_module(two_grads, W, X)
    run_passes(module, InlinePass(), AutodiffPass())
    names = set(functions(module))
    assert {"matvec_loss_grad_wrt_0", "matvec_loss_value_and_grad"} <= names
    assert not any(n.startswith("matvec_loss_grad_wrt_0_") for n in names)  # one function for both
    entry_ops = op_names(functions(module)[entry])
    assert "raster.grad" not in entry_ops and "raster.value_and_grad" not in entry_ops
    assert entry_ops.count("func.call") == 3
    run_passes(module, InlinePass())
    assert set(functions(module)) == {entry}  # the second inline removes the generated functions


def test_one_off_gradients_of_lambdas_in_one_trace_stay_distinct():
    # Each rm.grad(lambda ...) is freed after use; the trace must not confuse the next one with it.
    def f(x):
        a = rm.grad(lambda x: rm.sum(x * x), argnums=0)(x)
        b = rm.grad(lambda x: rm.sum(x * x * x), argnums=0)(x)
        v, (c,) = rm.value_and_grad(lambda x: rm.sum(x * x * x * x), argnums=(0,))(x)
        return a, b, c

    a, b, c = rm.jit(f)(X)
    np.testing.assert_allclose(a, 2 * X)
    np.testing.assert_allclose(b, 3 * X**2)
    np.testing.assert_allclose(c, 4 * X**3)


def test_generated_ops_carry_the_primal_location():
    def f(x):
        e = rm.exp(x)  # line of exp
        return rm.sum(e * e)

    first = f.__code__.co_firstlineno
    module, _ = traced_module(lambda x: rm.grad(f, argnums=0)(x), X)
    run_passes(module, InlinePass(), AutodiffPass())
    body = list(functions(module)["f_grad"].body.block.ops)
    lines = {}
    for op in body:
        assert isinstance(op.location, FileLineColLoc) and op.location.filename.data == __file__
        lines.setdefault(op.name, set()).add(op.location.line.data)
    assert lines["raster.exp"] == {first + 1}
    # exp's rule multiplies by exp's result, at exp's line; mul's rule sits on the return line
    assert lines["raster.mul"] == {first + 1, first + 2}
    assert lines["raster.add"] == {first + 2}  # e is used twice by one mul: its cotangents are summed


def test_pass_works_without_a_prior_inline():
    @rm.jit
    def inner(x):
        return x * x

    def f(x):
        return rm.sum(inner(x) + inner(x))

    module, entry = traced_module(lambda x: rm.grad(f, argnums=0)(x), X)
    run_passes(module, AutodiffPass(), InlinePass())  # autodiff inlines calls into its own copy
    ir = str(module)
    assert "func.call" not in ir
    compiled = rm.compile(lambda x: rm.grad(f, argnums=0)(x), X, pipeline="autodiff,inline,dce")
    np.testing.assert_allclose(compiled(X), 4 * X)


def test_long_chains_need_no_recursion():
    depth = sys.getrecursionlimit() + 200

    def f(x):
        for _ in range(depth):
            x = x * 1.0001
        return rm.sum(x)

    g = rm.grad(f, argnums=0)(X)
    np.testing.assert_allclose(g, np.full(4, 1.0001**depth), rtol=1e-12)


def test_gradient_of_gradient_of_gradient():
    def f(x):
        return rm.sum(x * x * x * x)

    g1 = rm.grad(f, argnums=0)
    g2 = rm.grad(lambda x: rm.sum(g1(x)), argnums=0)
    g3 = rm.grad(lambda x: rm.sum(g2(x)), argnums=0)
    np.testing.assert_allclose(g3(X), 24 * X, rtol=1e-13)


def test_rules_option_parses_and_defaults():
    (p,) = parse_pipeline("autodiff{rules=default}").passes
    assert isinstance(p, AutodiffPass) and p.rules == "default"
    assert AutodiffPass().rule_set().name == "default"
    with pytest.raises(rm.RasterError):
        AutodiffPass(rules="no-such-rules").rule_set()


def test_value_and_grad_f32_and_scalar_arguments():
    x = X.astype(np.float32)
    value, (gx, gs) = rm.value_and_grad(lambda x, s: rm.sum(x * s))(x, 2.0)
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx, np.full(4, 2.0, np.float32))
    assert gs == pytest.approx(float(x.sum()), rel=1e-6)
    assert value == pytest.approx(2 * float(x.sum()), rel=1e-6)
