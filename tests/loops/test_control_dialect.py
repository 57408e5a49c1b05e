"""The region ops (raster.for / scan / while / if): IR examples parse, verify and round-trip; verifiers name mismatches."""

from __future__ import annotations

import io

import pytest
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from raster_mlir.compiler import make_context, print_module
from raster_mlir.dialects import raster_control as C

FOR = """
  %lb = raster.fill 0 : i64 : tensor<i64>
  %ub = raster.fill 10 : i64 : tensor<i64>
  %r = raster.for %i = %lb to %ub iter_args(%x = %x0 : tensor<3xf64>) captures(%c = %c0 : tensor<f64>) {
    %y = raster.mul %x, %c : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
    %f = raster.convert %i : tensor<i64> -> tensor<f64>
    %z = raster.add %y, %f : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
    raster.yield %z : tensor<3xf64>
  }
"""

FOR_FLAGS = """
  %lb = raster.fill 0 : i64 : tensor<i64>
  %r, %n = raster.for %i = %lb to %lb reverse checkpoint 4 iter_args(%x = %x0 : tensor<3xf64>, %k = %lb : tensor<i64>) {
    %one = raster.fill 1 : i64 : tensor<i64>
    %k2 = raster.add %k, %one : tensor<i64>, tensor<i64> -> tensor<i64>
    raster.yield %x, %k2 : tensor<3xf64>, tensor<i64>
  }
"""

SCAN = """
  %c, %ys = raster.scan %k length 4 reverse iter_args(%s = %c0 : tensor<f64>) xs(%x = %xs : tensor<4x3xf64>) -> (tensor<4xf64>) {
    %t = raster.sum %x : tensor<3xf64> -> tensor<f64>
    %u = raster.add %s, %t : tensor<f64>, tensor<f64> -> tensor<f64>
    raster.yield %u, %u : tensor<f64>, tensor<f64>
  }
"""

WHILE = """
  %r = raster.while iter_args(%x = %c0 : tensor<f64>) captures(%t = %c0 : tensor<f64>) cond {
    %p = raster.greater %x, %t : tensor<f64>, tensor<f64> -> tensor<f64>
    raster.condition %p : tensor<f64>
  } do {
  ^bb0(%x1: tensor<f64>, %t1: tensor<f64>):
    %h = raster.mul %x1, %t1 : tensor<f64>, tensor<f64> -> tensor<f64>
    raster.yield %h : tensor<f64>
  }
"""

IF = """
  %r = raster.if %c0 : tensor<f64> captures(%a = %x0 : tensor<3xf64>) -> (tensor<3xf64>) {
    %n = raster.neg %a : tensor<3xf64>
    raster.yield %n : tensor<3xf64>
  } else {
  ^bb0(%a1: tensor<3xf64>):
    raster.yield %a1 : tensor<3xf64>
  }
"""

TAPE = """
  %t = raster.tape_new : !raster.tape<tensor<3xf64>>
  raster.tape_push %t, %x0 : !raster.tape<tensor<3xf64>>, tensor<3xf64>
  %k = raster.fill 0 : i64 : tensor<i64>
  %y = raster.tape_get %t[%k] : !raster.tape<tensor<3xf64>> -> tensor<3xf64>
  %h = memref.alloc() : memref<4xi64>
  %m = memref.alloc() : memref<3xf64>
  %i = arith.constant 0 : index
  raster.rt_tape_init %h
  raster.rt_tape_reset %h
  raster.rt_tape_push %h, %m : memref<3xf64>
  raster.rt_tape_read %h[%i], %m : memref<3xf64>
  raster.rt_tape_free %h
"""

ARGS = "%x0: tensor<3xf64>, %c0: tensor<f64>, %xs: tensor<4x3xf64>"


def module(body: str) -> str:
    return f"builtin.module {{\n  func.func @f({ARGS}) {{{body}    func.return\n  }}\n}}\n"


def parse(text: str):
    return Parser(make_context(), text).parse_module()


@pytest.mark.parametrize("body", [FOR, FOR_FLAGS, SCAN, WHILE, IF, TAPE], ids=["for", "for_flags", "scan", "while", "if", "tape"])
def test_custom_and_generic_forms_round_trip(body):
    m = parse(module(body))
    m.verify()
    custom = print_module(m)
    again = parse(custom)
    again.verify()
    assert again.is_structurally_equivalent(m)
    assert print_module(again) == custom
    out = io.StringIO()
    Printer(stream=out, print_generic_format=True).print_op(m)
    from_generic = parse(out.getvalue())
    from_generic.verify()
    assert print_module(from_generic) == custom


def test_docstring_examples_are_the_tested_forms():
    assert "raster.for %i = %lb to %ub iter_args(" in C.ForOp.__doc__
    assert "raster.scan %k length 4 iter_args(" in C.ScanOp.__doc__
    assert "raster.while iter_args(" in C.WhileOp.__doc__ and "} do {" in C.WhileOp.__doc__
    assert "raster.if %p : tensor<f64> captures(" in C.IfOp.__doc__


@pytest.mark.parametrize(
    "body, message",
    [
        (FOR.replace("raster.yield %z : tensor<3xf64>", "%zz = raster.convert %z : tensor<3xf64> -> tensor<3xf32>\n    raster.yield %zz : tensor<3xf32>"),
         "raster.for: the body's raster.yield: carries 0 has type tensor<3xf32>, expected tensor<3xf64>"),
        (FOR.replace("raster.yield %z : tensor<3xf64>", "raster.yield %z, %z : tensor<3xf64>, tensor<3xf64>"),
         "raster.for: the body's raster.yield has 2 value(s)"),
        (FOR_FLAGS.replace("checkpoint 4", "checkpoint 0"), "checkpoint 0 must be at least 1"),
        (SCAN.replace("xs(%x = %xs : tensor<4x3xf64>)", "xs(%x = %x0 : tensor<3xf64>)").replace("%t = raster.sum %x : tensor<3xf64>", "%t = raster.sum %x : tensor<f64>"),
         "xs 0 of type tensor<3xf64> must have a leading axis of the scan's length 4"),
        (SCAN.replace("-> (tensor<4xf64>)", "-> (tensor<5xf64>)"), "ys 0 of type tensor<5xf64> must have a leading axis of length 4"),
        (WHILE.replace("raster.condition %p : tensor<f64>", "%pp = raster.broadcast_to %p : tensor<f64> -> tensor<2xf64>\n    raster.condition %pp : tensor<2xf64>"),
         "the predicate must be a 0-d tensor"),
        (TAPE.replace("raster.tape_push %t, %x0 : !raster.tape<tensor<3xf64>>, tensor<3xf64>", "raster.tape_push %t, %c0 : !raster.tape<tensor<3xf64>>, tensor<f64>"),
         "raster.tape_push: a row of type tensor<f64> on a tape of tensor<3xf64>"),
        (IF.replace("raster.yield %a1 : tensor<3xf64>", "%s = raster.sum %a1 : tensor<3xf64> -> tensor<f64>\n    raster.yield %s : tensor<f64>"),
         "raster.if: the else region's raster.yield: results 0 has type tensor<f64>, expected tensor<3xf64>"),
    ],
    ids=["for_yield_type", "for_yield_count", "checkpoint", "scan_xs", "scan_ys", "while_pred", "tape_row", "if_branch"],
)
def test_verifier_names_the_mismatch(body, message):
    m = parse(module(body))
    with pytest.raises(VerifyException, match=message.replace("(", r"\(").replace(")", r"\)")):
        m.verify()


def test_bodies_are_isolated_from_above():
    text = module(FOR.replace("%y = raster.mul %x, %c", "%y = raster.mul %x, %c0"))
    with pytest.raises(VerifyException, match="IsolatedFromAbove"):
        parse(text).verify()
