"""Calls between @rm.jit functions: func.call in the traced IR, one callee per signature, inlined later.

The IR is checked with the `filecheck` package (LLVM FileCheck's Python
clone) in the style of MLIR's tests, plus structural checks on the parsed
module where counting is easier than pattern matching.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.parser import Parser

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import make_context


def filecheck(text: str, checks: str, tmp_path) -> None:
    check_file = tmp_path / "checks.mlir"
    check_file.write_text(checks)
    result = subprocess.run(
        [sys.executable, "-m", "filecheck", str(check_file)], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"filecheck failed:\n{result.stdout}{result.stderr}\n--- input ---\n{text}"


def functions(ir_text: str) -> dict[str, func.FuncOp]:
    module = Parser(make_context(), ir_text).parse_module()
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def calls(function: func.FuncOp) -> list[str]:
    return [op.callee.root_reference.data for op in function.walk() if isinstance(op, func.CallOp)]


@rm.jit
def square(x):
    return x * x


@rm.jit
def layer(W, x, b):
    return nn.relu(nn.dense(W, x, b))


def test_call_becomes_func_call_to_a_private_callee(tmp_path):
    def f(x, y):
        return square(x) + y

    c = rm.compile(f, np.ones(3), np.ones(3))
    filecheck(
        c.ir("traced"),
        """
// CHECK:      func.func private @square(%x: tensor<3xf64>) -> tensor<3xf64> {
// CHECK-NEXT:   %{{.*}} = raster.mul %x, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
// CHECK-NEXT:   func.return
// CHECK:      func.func @f(%x: tensor<3xf64>, %y: tensor<3xf64>) -> tensor<3xf64> {
// CHECK-NEXT:   %[[SQ:.*]] = func.call @square(%x) : (tensor<3xf64>) -> tensor<3xf64>
// CHECK-NEXT:   %{{.*}} = raster.add %[[SQ]], %y
""",
        tmp_path,
    )


def test_same_signature_is_traced_once(tmp_path):
    def f(x, y):
        return square(x) + square(y)

    c = rm.compile(f, np.ones(3), np.ones(3))
    fns = functions(c.ir("traced"))
    assert sorted(fns) == ["f", "square"]
    assert calls(fns["f"]) == ["square", "square"]
    filecheck(
        c.ir("traced"),
        """
// CHECK:     func.func private @square(
// CHECK-NOT: func.func private
// CHECK:     func.func @f(
// CHECK:     func.call @square(%x)
// CHECK:     func.call @square(%y)
""",
        tmp_path,
    )


def test_different_signatures_give_two_callees(tmp_path):
    def f(x, z):
        return rm.sum(square(x)) + rm.sum(square(z)) + rm.sum(square(x))

    c = rm.compile(f, np.ones(3), np.ones((2, 4)))
    fns = functions(c.ir("traced"))
    callees = [name for name in fns if name != "f"]
    assert len(callees) == 2
    inputs = sorted(str(fns[n].function_type.inputs.data[0]) for n in callees)
    assert inputs == ["tensor<2x4xf64>", "tensor<3xf64>"]
    assert all(fns[n].sym_visibility is not None and fns[n].sym_visibility.data == "private" for n in callees)
    # The third call reuses the first callee.
    f_calls = calls(fns["f"])
    assert len(f_calls) == 3 and f_calls[0] == f_calls[2] != f_calls[1]


def test_dtype_is_part_of_the_signature():
    def f(x, y):
        return rm.sum(square(x)) + rm.sum(square(y))

    c = rm.compile(f, np.ones(3, np.float32), np.ones(3, np.float32))
    assert len(functions(c.ir("traced"))) == 2  # f and one square for f32
    c64 = rm.compile(lambda x: square(x), np.ones(3))
    assert "tensor<3xf64>" in c64.ir("traced") and "f32" not in c64.ir("traced")


def test_calls_disappear_after_inline(tmp_path):
    def f(W, x, b):
        return nn.softmax(layer(W, square(x), b))

    args = (np.ones((2, 3)), np.ones(3), np.ones(2))
    c = rm.compile(f, *args)
    assert "func.call" in c.ir("traced")
    after = c.ir("after:inline")
    filecheck(
        after,
        """
// CHECK-NOT:  func.call
// CHECK-NOT:  func.func private
// CHECK:      func.func @f(
// CHECK:        raster.mul
// CHECK:        raster.dense
// CHECK:        raster.relu
// CHECK:        raster.softmax
// CHECK-NOT:  func.call
""",
        tmp_path,
    )
    assert list(functions(after)) == ["f"]


def test_nested_calls_inline_and_compute():
    @rm.jit
    def inner(x):
        return rm.exp(x) - 1.0

    @rm.jit
    def middle(x):
        return inner(x) * inner(x + 1.0)

    def f(x):
        return rm.sum(middle(x))

    x = np.linspace(-1, 1, 7)
    c = rm.compile(f, x)
    fns = functions(c.ir("traced"))
    assert calls(fns["f"]) == ["middle"] and calls(fns["middle"]) == ["inner", "inner"]
    assert "func.call" not in c.ir("after:inline")
    want = np.sum((np.exp(x) - 1) * (np.exp(x + 1) - 1))
    np.testing.assert_allclose(c.run_reference(x), want, rtol=1e-12)
    np.testing.assert_allclose(rm.jit(f)(x), want, rtol=1e-12)


def test_callee_returning_a_tuple_keeps_nesting():
    @rm.jit
    def stats(x):
        return rm.sum(x), (rm.max(x), -x)

    def f(x):
        s, (m, neg) = stats(x)
        return s + m, neg

    x = np.array([1.0, 5.0, -2.0])
    c = rm.compile(f, x)
    assert "func.call @stats" in c.ir("traced")
    total, neg = c.run_reference(x)
    assert total == pytest.approx(4.0 + 5.0, rel=1e-15)
    np.testing.assert_array_equal(neg, -x)


def test_python_scalar_argument_to_a_callee_is_lifted():
    @rm.jit
    def scale(x, s):
        return x * s

    c = rm.compile(lambda x: scale(x, 3.0), np.ones(2, np.float32))
    fns = functions(c.ir("traced"))
    callee = next(f for n, f in fns.items() if n != "_lambda_")
    assert [str(t) for t in callee.function_type.inputs.data] == ["tensor<2xf32>", "tensor<f32>"]
    np.testing.assert_array_equal(c.run_reference(np.ones(2, np.float32)), [3.0, 3.0])


def test_calling_a_jit_function_from_a_jit_function_directly():
    @rm.jit
    def outer(x):
        return square(x) + 1.0

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(outer(x), x * x + 1)
    # The eager path of the callee is untouched by being traced as a callee.
    np.testing.assert_array_equal(square(x), x * x)


def test_recursion_is_a_trace_error():
    @rm.jit
    def forever(x):
        return forever(x) + 1.0

    with pytest.raises(rm.TraceError, match="recursion"):
        forever(np.ones(2))
