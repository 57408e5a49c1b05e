"""The raster dialect's IR: every op's docstring example parses, verifies and round-trips.

For each op class, the IR example in its docstring is put verbatim into a
function whose arguments are the example's operands. The module must parse
and verify; its custom-form print must use the op's assembly format; and both
the custom and the generic print must parse back to structurally equivalent
IR. A second, hand-written example per op covers the f32 and other shape
variants.
"""

from __future__ import annotations

import io
import re

import dialect_examples_arrays
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer

from raster_mlir.compiler import make_context, print_module
from raster_mlir.dialects import raster as R

from raster_mlir.dialects.raster_control import CONTROL_OPS  # noqa: E402  (region ops: tests/loops/test_control_dialect.py)
from raster_mlir.dialects.raster_index import INDEX_OPS  # noqa: E402
from raster_mlir.dialects.raster_tape import TAPE_OPS  # noqa: E402  (tests/loops/test_control_dialect.py)

ALL_OPS = [*R.RASTER_OPS, *R.AD_OPS, *INDEX_OPS]

# The operands each docstring example uses, as function arguments.
DOC_ARGS = {
    "raster.neg": "%x: tensor<4xf64>",
    "raster.exp": "%x: tensor<4xf64>",
    "raster.log": "%x: tensor<4xf64>",
    "raster.tanh": "%x: tensor<4xf64>",
    "raster.sigmoid": "%x: tensor<4xf64>",
    "raster.sqrt": "%x: tensor<4xf64>",
    "raster.relu": "%x: tensor<128xf64>",
    "raster.add": "%x: tensor<32x10xf64>, %b: tensor<10xf64>",
    "raster.sub": "%x: tensor<4xf64>, %y: tensor<f64>",
    "raster.mul": "%x: tensor<4xf64>, %y: tensor<4xf64>",
    "raster.div": "%x: tensor<4xf64>, %n: tensor<f64>",
    "raster.pow": "%x: tensor<4xf64>, %two: tensor<f64>",
    "raster.maximum": "%x: tensor<4xf64>, %y: tensor<4xf64>",
    "raster.greater": "%x: tensor<4xf64>, %zero: tensor<f64>",
    "raster.equal": "%x: tensor<3x4xf64>, %rowmax: tensor<3x1xf64>",
    "raster.dense": "%W: tensor<8x4xf64>, %x: tensor<4xf64>, %b: tensor<8xf64>",
    "raster.softmax": "%z: tensor<10xf64>",
    "raster.log_softmax": "%z: tensor<10xf64>",
    "raster.cross_entropy": "%p: tensor<10xf64>, %y: tensor<10xf64>",
    "raster.softmax_cross_entropy": "%z: tensor<10xf64>, %y: tensor<10xf64>",
    "raster.sum": "%x: tensor<3x4xf64>",
    "raster.mean": "%x: tensor<3x4xf64>",
    "raster.max": "%x: tensor<3x4xf64>",
    "raster.matmul": "%a: tensor<3x4xf64>, %b: tensor<4x5xf64>",
    "raster.transpose": "%w: tensor<3x4xf64>",
    "raster.reshape": "%x: tensor<3x4xf64>",
    "raster.broadcast_to": "%x: tensor<3x1xf64>",
    "raster.fill": "",
    "raster.constant": "",
    "raster.grad": "%W: tensor<3x4xf64>, %b: tensor<3xf64>, %x: tensor<4xf64>",
    "raster.value_and_grad": "%W: tensor<3x4xf64>, %x: tensor<4xf64>",
    "raster.jvp": "%x: tensor<3xf64>, %w: tensor<3xf64>, %dx: tensor<3xf64>",
    "raster.convert": "%i: tensor<i64>",
    "raster.dynamic_index": "%xs: tensor<5x3xf64>, %i: tensor<i64>",
    "raster.dynamic_update": "%x: tensor<5x3xf64>, %i: tensor<i64>, %row: tensor<3xf64>",
    "raster.dynamic_update_add": "%acc: tensor<5x3xf64>, %i: tensor<i64>, %ct: tensor<3xf64>",
    "raster.empty": "",
    "raster.floordiv": "%i: tensor<i64>, %k: tensor<i64>",
    "raster.mod": "%i: tensor<i64>, %k: tensor<i64>",
}

# Callees the grad examples refer to.
LOSS_FUNCTIONS = {
    "raster.grad": """
  func.func private @loss(%W: tensor<3x4xf64>, %b: tensor<3xf64>, %x: tensor<4xf64>) -> tensor<f64> {
    %y = raster.dense %W, %x, %b : (tensor<3x4xf64>, tensor<4xf64>, tensor<3xf64>) -> tensor<3xf64>
    %l = raster.sum %y : tensor<3xf64> -> tensor<f64>
    func.return %l : tensor<f64>
  }""",
    "raster.value_and_grad": """
  func.func private @loss(%W: tensor<3x4xf64>, %x: tensor<4xf64>) -> tensor<f64> {
    %y = raster.matmul %W, %x : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3xf64>
    %l = raster.sum %y : tensor<3xf64> -> tensor<f64>
    func.return %l : tensor<f64>
  }""",
    "raster.jvp": """
  func.func private @f(%x: tensor<3xf64>, %w: tensor<3xf64>) -> tensor<3xf64> {
    %y = raster.mul %x, %w : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
    func.return %y : tensor<3xf64>
  }""",
}

# Hand-written second examples: f32, other ranks, optional properties present/absent.
EXTRA_EXAMPLES = {
    "raster.neg": ("%x: tensor<2x3xf32>", "%y = raster.neg %x : tensor<2x3xf32>"),
    "raster.exp": ("%x: tensor<f32>", "%y = raster.exp %x : tensor<f32>"),
    "raster.log": ("%x: tensor<7xf32>", "%y = raster.log %x : tensor<7xf32>"),
    "raster.tanh": ("%x: tensor<1x129xf64>", "%y = raster.tanh %x : tensor<1x129xf64>"),
    "raster.sigmoid": ("%x: tensor<2x2x2xf32>", "%y = raster.sigmoid %x : tensor<2x2x2xf32>"),
    "raster.sqrt": ("%x: tensor<3xf32>", "%y = raster.sqrt %x : tensor<3xf32>"),
    "raster.relu": ("%x: tensor<32x128xf32>", "%y = raster.relu %x : tensor<32x128xf32>"),
    "raster.add": ("%a: tensor<3x1xf32>, %b: tensor<4xf32>", "%z = raster.add %a, %b : tensor<3x1xf32>, tensor<4xf32> -> tensor<3x4xf32>"),
    "raster.sub": ("%a: tensor<f32>, %b: tensor<2x3xf32>", "%z = raster.sub %a, %b : tensor<f32>, tensor<2x3xf32> -> tensor<2x3xf32>"),
    "raster.mul": ("%a: tensor<1x3xf64>, %b: tensor<2x1xf64>", "%z = raster.mul %a, %b : tensor<1x3xf64>, tensor<2x1xf64> -> tensor<2x3xf64>"),
    "raster.div": ("%a: tensor<5xf32>, %b: tensor<5xf32>", "%z = raster.div %a, %b : tensor<5xf32>, tensor<5xf32> -> tensor<5xf32>"),
    "raster.pow": ("%a: tensor<f64>, %b: tensor<f64>", "%z = raster.pow %a, %b : tensor<f64>, tensor<f64> -> tensor<f64>"),
    "raster.maximum": ("%a: tensor<4x1xf32>, %b: tensor<f32>", "%z = raster.maximum %a, %b : tensor<4x1xf32>, tensor<f32> -> tensor<4x1xf32>"),
    "raster.greater": ("%a: tensor<2xf32>, %b: tensor<2xf32>", "%z = raster.greater %a, %b : tensor<2xf32>, tensor<2xf32> -> tensor<2xf32>"),
    "raster.equal": ("%x: tensor<3x4xf64>, %mx: tensor<3x1xf64>", "%m = raster.equal %x, %mx : tensor<3x4xf64>, tensor<3x1xf64> -> tensor<3x4xf64>"),
    "raster.dense": ("%W: tensor<8x4xf32>, %x: tensor<32x4xf32>, %b: tensor<8xf32>", "%y = raster.dense %W, %x, %b : (tensor<8x4xf32>, tensor<32x4xf32>, tensor<8xf32>) -> tensor<32x8xf32>"),
    "raster.softmax": ("%z: tensor<32x10xf32>", "%p = raster.softmax %z : tensor<32x10xf32>"),
    "raster.log_softmax": ("%z: tensor<32x10xf32>", "%l = raster.log_softmax %z : tensor<32x10xf32>"),
    "raster.cross_entropy": ("%p: tensor<32x10xf32>, %y: tensor<32x10xf32>", "%l = raster.cross_entropy %p, %y : (tensor<32x10xf32>, tensor<32x10xf32>) -> tensor<f32>"),
    "raster.softmax_cross_entropy": ("%z: tensor<32x10xf32>, %y: tensor<32x10xf32>", "%l, %p = raster.softmax_cross_entropy %z, %y : (tensor<32x10xf32>, tensor<32x10xf32>) -> (tensor<f32>, tensor<32x10xf32>)"),
    "raster.sum": ("%x: tensor<3x4xf32>", "%s = raster.sum %x : tensor<3x4xf32> -> tensor<f32>"),
    "raster.mean": ("%x: tensor<3x4xf64>", "%m = raster.mean %x axis = 0 : i64 keepdims : tensor<3x4xf64> -> tensor<1x4xf64>"),
    "raster.max": ("%x: tensor<3x4xf32>", "%m = raster.max %x keepdims : tensor<3x4xf32> -> tensor<1x1xf32>"),
    "raster.matmul": ("%a: tensor<4xf32>, %b: tensor<4xf32>", "%c = raster.matmul %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<f32>"),
    "raster.transpose": ("%x: tensor<2x3x4xf32>", "%t = raster.transpose %x perm = [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>"),
    "raster.reshape": ("%x: tensor<12xf32>", "%r = raster.reshape %x : tensor<12xf32> -> tensor<2x3x2xf32>"),
    "raster.broadcast_to": ("%x: tensor<f32>", "%b = raster.broadcast_to %x : tensor<f32> -> tensor<2x3xf32>"),
    "raster.fill": ("", "%c = raster.fill -1.500000e+00 : f32 : tensor<3x2xf32>"),
    "raster.constant": ("", "%c = raster.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32> : tensor<2x2xf32>"),
    "raster.grad": ("%W: tensor<3x4xf64>, %b: tensor<3xf64>, %x: tensor<4xf64>", "%dx = raster.grad @loss(%W, %b, %x) argnums = [2] : (tensor<3x4xf64>, tensor<3xf64>, tensor<4xf64>) -> tensor<4xf64>"),
    "raster.value_and_grad": ("%W: tensor<3x4xf64>, %x: tensor<4xf64>", "%l, %dW, %dx = raster.value_and_grad @loss(%W, %x) argnums = [0, 1] : (tensor<3x4xf64>, tensor<4xf64>) -> (tensor<f64>, tensor<3x4xf64>, tensor<4xf64>)"),
    "raster.jvp": ("%x: tensor<3xf64>, %w: tensor<3xf64>, %dx: tensor<3xf64>, %dw: tensor<3xf64>", "%y, %dy = raster.jvp @f(%x, %w) tangents(%dx, %dw) argnums = [0, 1] : (tensor<3xf64>, tensor<3xf64>), (tensor<3xf64>, tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)"),
    "raster.convert": ("%x: tensor<2x3xf32>", "%y = raster.convert %x : tensor<2x3xf32> -> tensor<2x3xf64>"),
    "raster.dynamic_index": ("%x: tensor<4x5x6xf32>, %i: tensor<i64>, %j: tensor<i64>", "%y = raster.dynamic_index %x[%i, %j] : tensor<4x5x6xf32> -> tensor<6xf32>"),
    "raster.dynamic_update": ("%x: tensor<4xf32>, %i: tensor<i64>, %v: tensor<f32>", "%y = raster.dynamic_update %x[%i], %v : tensor<4xf32>, tensor<f32>"),
    "raster.dynamic_update_add": ("%x: tensor<2x3xi64>, %i: tensor<i64>, %j: tensor<i64>, %v: tensor<i64>", "%y = raster.dynamic_update_add %x[%i, %j], %v : tensor<2x3xi64>, tensor<i64>"),
    "raster.empty": ("", "%e = raster.empty : tensor<i64>"),
    "raster.floordiv": ("%a: tensor<3xi64>, %b: tensor<i64>", "%q = raster.floordiv %a, %b : tensor<3xi64>, tensor<i64> -> tensor<3xi64>"),
    "raster.mod": ("%a: tensor<i64>, %b: tensor<2xi64>", "%r = raster.mod %a, %b : tensor<i64>, tensor<2xi64> -> tensor<2xi64>"),
}  # fmt: skip


DOC_ARGS.update(dialect_examples_arrays.DOC_ARGS)
EXTRA_EXAMPLES.update(dialect_examples_arrays.EXTRA_EXAMPLES)


def docstring_example(op_cls) -> str:
    """The first `%... = raster.op ...` snippet quoted in the class docstring."""
    examples = re.findall(r"`(%[^`]*\braster\.[a-z_0-9]+\b[^`]*)`", op_cls.__doc__ or "")
    assert examples, f"{op_cls.__name__} has no IR example in its docstring"
    return examples[0]


def module_text(name: str, args: str, line: str) -> str:
    return (
        "builtin.module {"
        + LOSS_FUNCTIONS.get(name, "")
        + f"\n  func.func @example({args}) {{\n    {line}\n    func.return\n  }}\n}}\n"
    )


def parse(text: str) -> ModuleOp:
    return Parser(make_context(), text).parse_module()


def generic(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=True).print_op(module)
    return out.getvalue()


def op_named(module: ModuleOp, name: str):
    ops = [op for op in module.walk() if op.name == name]
    assert len(ops) == 1, f"expected one {name} in the module, found {len(ops)}"
    return ops[0]


def check_round_trip(name: str, text: str) -> None:
    module = parse(text)
    module.verify()
    op = op_named(module, name)

    custom = print_module(module)
    # The custom form uses the assembly format, not the generic "raster.x"(...) syntax.
    assert f" {name} " in custom and f'"{name}"' not in custom
    reparsed = parse(custom)
    reparsed.verify()
    assert reparsed.is_structurally_equivalent(module), f"custom form does not round-trip:\n{custom}"
    again = op_named(reparsed, name)
    assert again.properties == op.properties and again.result_types == op.result_types

    generic_text = generic(module)
    assert f'"{name}"' in generic_text
    from_generic = parse(generic_text)
    from_generic.verify()
    assert from_generic.is_structurally_equivalent(module), f"generic form does not round-trip:\n{generic_text}"
    # Printing the generically-parsed module in custom form gives the same text.
    assert print_module(from_generic) == custom


DOC_BUGS: dict[str, str] = {}  # op name -> why its docstring example cannot parse (none at present)


@pytest.mark.parametrize(
    "op_cls",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=DOC_BUGS[c.name])) if c.name in DOC_BUGS else c
        for c in ALL_OPS
    ],
    ids=lambda c: c.name,
)
def test_docstring_example_parses_verifies_and_round_trips(op_cls):
    name = op_cls.name
    line = docstring_example(op_cls)
    assert f"= {name} " in line
    check_round_trip(name, module_text(name, DOC_ARGS[name], line))


@pytest.mark.parametrize("op_cls", ALL_OPS, ids=lambda c: c.name)
def test_second_example_round_trips(op_cls):
    args, line = EXTRA_EXAMPLES[op_cls.name]
    check_round_trip(op_cls.name, module_text(op_cls.name, args, line))


def test_every_op_has_both_examples():
    names = {c.name for c in ALL_OPS}
    assert set(DOC_ARGS) == names and set(EXTRA_EXAMPLES) == names
    assert {op.name for op in R.Raster.operations} == names | {c.name for c in (*CONTROL_OPS, *TAPE_OPS)}


def test_ops_built_by_make_round_trip_through_traced_ir():
    """IR produced by the tracer (with `make`) also parses back to an equivalent module."""
    import numpy as np

    import raster_mlir as rm
    from raster_mlir import nn

    def f(W, x, b, y):
        h = nn.relu(nn.dense(W, x, b))
        loss, p = nn.softmax_cross_entropy(rm.transpose(h) @ x * 2.0, y)
        return loss + rm.max(p, axis=0).sum(), rm.reshape(p, (-1,))

    args = [np.ones((3, 4)), np.ones((5, 4)), np.ones(3), np.ones((3, 4))]
    compiled = rm.compile(f, *args)
    for stage in ("traced", "after:inline"):
        module = parse(compiled.ir(stage))
        module.verify()
        for text in (print_module(module), generic(module)):
            reparsed = parse(text)
            reparsed.verify()
            assert reparsed.is_structurally_equivalent(module)
