"""Verifier errors for bad raster IR: the message names the op and the shapes/types involved.

Each case is one op in a function whose arguments are its operands; parsing
succeeds (the assembly formats accept any tensor types) and `verify()` must
raise xDSL's VerifyException — never another exception type — with a
message a user can act on.
"""

from __future__ import annotations

import pytest
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from raster_mlir.compiler import make_context


def verify_error(args: str, line: str, prelude: str = "") -> str:
    text = f"builtin.module {{{prelude}\n  func.func @f({args}) {{\n    {line}\n    func.return\n  }}\n}}\n"
    module = Parser(make_context(), text).parse_module()
    with pytest.raises(VerifyException) as info:
        module.verify()
    return str(info.value)


def assert_mentions(message: str, *parts: str) -> None:
    missing = [p for p in parts if p not in message]
    assert not missing, f"message lacks {missing}: {message!r}"


# -- results that do not follow from the operands ------------------------------


def test_dense_wrong_result_shape():
    msg = verify_error(
        "%W: tensor<8x4xf64>, %x: tensor<4xf64>, %b: tensor<8xf64>",
        "%y = raster.dense %W, %x, %b : (tensor<8x4xf64>, tensor<4xf64>, tensor<8xf64>) -> tensor<7xf64>",
    )
    assert_mentions(msg, "raster.dense", "tensor<7xf64>", "tensor<8xf64>")


def test_dense_batched_wrong_result_shape():
    msg = verify_error(
        "%W: tensor<8x4xf32>, %x: tensor<5x4xf32>, %b: tensor<8xf32>",
        "%y = raster.dense %W, %x, %b : (tensor<8x4xf32>, tensor<5x4xf32>, tensor<8xf32>) -> tensor<8x5xf32>",
    )
    assert_mentions(msg, "raster.dense", "tensor<8x5xf32>", "tensor<5x8xf32>")


def test_dense_input_size_mismatch_names_weight_and_input_shapes():
    msg = verify_error(
        "%W: tensor<8x4xf64>, %x: tensor<5xf64>, %b: tensor<8xf64>",
        "%y = raster.dense %W, %x, %b : (tensor<8x4xf64>, tensor<5xf64>, tensor<8xf64>) -> tensor<8xf64>",
    )
    assert_mentions(msg, "raster.dense", "(8, 4)", "(5,)")


def test_dense_bias_shape_mismatch():
    msg = verify_error(
        "%W: tensor<8x4xf64>, %x: tensor<4xf64>, %b: tensor<3xf64>",
        "%y = raster.dense %W, %x, %b : (tensor<8x4xf64>, tensor<4xf64>, tensor<3xf64>) -> tensor<8xf64>",
    )
    assert_mentions(msg, "raster.dense", "(8, 4)", "(3,)")


def test_elementwise_result_of_wrong_shape():
    msg = verify_error(
        "%x: tensor<3x1xf64>, %y: tensor<4xf64>",
        "%z = raster.add %x, %y : tensor<3x1xf64>, tensor<4xf64> -> tensor<3x1xf64>",
    )
    assert_mentions(msg, "raster.add", "tensor<3x1xf64>", "tensor<3x4xf64>")


def test_elementwise_operands_that_do_not_broadcast():
    msg = verify_error(
        "%x: tensor<3xf64>, %y: tensor<4xf64>",
        "%z = raster.mul %x, %y : tensor<3xf64>, tensor<4xf64> -> tensor<4xf64>",
    )
    assert_mentions(msg, "raster.mul", "(3,)", "(4,)")


def test_matmul_contraction_mismatch():
    msg = verify_error(
        "%a: tensor<3x4xf64>, %b: tensor<5x6xf64>",
        "%c = raster.matmul %a, %b : (tensor<3x4xf64>, tensor<5x6xf64>) -> tensor<3x6xf64>",
    )
    assert_mentions(msg, "raster.matmul", "(3, 4)", "(5, 6)")


def test_reshape_element_count():
    msg = verify_error("%x: tensor<3x4xf64>", "%r = raster.reshape %x : tensor<3x4xf64> -> tensor<13xf64>")
    assert_mentions(msg, "raster.reshape", "(3, 4)", "(13,)")


def test_broadcast_to_incompatible():
    msg = verify_error("%x: tensor<3x2xf64>", "%r = raster.broadcast_to %x : tensor<3x2xf64> -> tensor<3x4xf64>")
    assert_mentions(msg, "raster.broadcast_to", "(3, 2)", "(3, 4)")


def test_cross_entropy_shape_mismatch():
    msg = verify_error(
        "%p: tensor<10xf64>, %y: tensor<9xf64>",
        "%l = raster.cross_entropy %p, %y : (tensor<10xf64>, tensor<9xf64>) -> tensor<f64>",
    )
    assert_mentions(msg, "raster.cross_entropy", "(10,)", "(9,)")


def test_cross_entropy_rank_3_refused():
    msg = verify_error(
        "%p: tensor<2x3x4xf64>, %y: tensor<2x3x4xf64>",
        "%l = raster.cross_entropy %p, %y : (tensor<2x3x4xf64>, tensor<2x3x4xf64>) -> tensor<f64>",
    )
    assert_mentions(msg, "raster.cross_entropy", "(2, 3, 4)")


def test_softmax_of_a_scalar_refused():
    msg = verify_error("%p: tensor<f64>", "%l = raster.softmax %p : tensor<f64>")
    assert_mentions(msg, "raster.softmax", "()")


def test_softmax_cross_entropy_loss_must_be_scalar():
    msg = verify_error(
        "%z: tensor<10xf64>, %y: tensor<10xf64>",
        "%l, %p = raster.softmax_cross_entropy %z, %y : (tensor<10xf64>, tensor<10xf64>) -> (tensor<10xf64>, tensor<10xf64>)",
    )
    assert_mentions(msg, "raster.softmax_cross_entropy", "tensor<f64>")


# -- element types ------------------------------------------------------------


def test_mismatched_operand_dtypes():
    msg = verify_error(
        "%x: tensor<4xf64>, %y: tensor<4xf32>",
        "%z = raster.add %x, %y : tensor<4xf64>, tensor<4xf32> -> tensor<4xf64>",
    )
    assert_mentions(msg, "raster.add", "f64", "f32")


def test_result_dtype_differs_from_operands():
    msg = verify_error(
        "%x: tensor<4xf64>, %y: tensor<4xf64>",
        "%z = raster.add %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf32>",
    )
    assert_mentions(msg, "raster.add", "tensor<4xf32>", "tensor<4xf64>")


def test_dense_mixed_dtypes():
    msg = verify_error(
        "%W: tensor<8x4xf32>, %x: tensor<4xf64>, %b: tensor<8xf32>",
        "%y = raster.dense %W, %x, %b : (tensor<8x4xf32>, tensor<4xf64>, tensor<8xf32>) -> tensor<8xf32>",
    )
    assert_mentions(msg, "raster.dense", "f32", "f64")


def test_integer_element_type_refused():
    msg = verify_error("%x: tensor<4xi32>", "%y = raster.exp %x : tensor<4xi32>")
    assert_mentions(msg, "raster.exp", "i32")


def test_fill_value_type_must_match_result():
    msg = verify_error("", "%c = raster.fill 2.0 : f32 : tensor<f64>")
    assert_mentions(msg, "raster.fill", "f32", "f64")


def test_constant_elements_of_the_wrong_shape():
    msg = verify_error("", "%c = raster.constant dense<[1.0, 2.0]> : tensor<2xf64> : tensor<3xf64>")
    assert_mentions(msg, "raster.constant", "tensor<2xf64>", "tensor<3xf64>")


# -- properties: axis and perm -------------------------------------------------


def test_reduction_axis_out_of_range():
    msg = verify_error("%x: tensor<3x4xf64>", "%s = raster.sum %x axis = 2 : i64 : tensor<3x4xf64> -> tensor<3xf64>")
    assert_mentions(msg, "raster.sum", "axis 2", "(3, 4)")


def test_reduction_axis_out_of_range_names_the_shape():
    msg = verify_error("%x: tensor<3x4xf64>", "%s = raster.max %x axis = 2 : i64 : tensor<3x4xf64> -> tensor<3xf64>")
    assert_mentions(msg, "raster.max", "(3, 4)")


def test_reduction_axis_must_be_stored_normalised():
    msg = verify_error("%x: tensor<3x4xf64>", "%s = raster.mean %x axis = -1 : i64 : tensor<3x4xf64> -> tensor<3xf64>")
    assert_mentions(msg, "raster.mean", "-1", "[0, 2)")


def test_reduction_wrong_keepdims_result():
    msg = verify_error("%x: tensor<3x4xf64>", "%s = raster.sum %x axis = 1 : i64 : tensor<3x4xf64> -> tensor<3x1xf64>")
    assert_mentions(msg, "raster.sum", "tensor<3x1xf64>", "tensor<3xf64>")


@pytest.mark.parametrize("perm", ["[0, 0]", "[0, 2]", "[0]", "[1, 0, 2]"])
def test_bad_perm(perm):
    msg = verify_error("%x: tensor<3x4xf64>", f"%t = raster.transpose %x perm = {perm} : tensor<3x4xf64> -> tensor<4x3xf64>")
    assert_mentions(msg, "raster.transpose", "perm", "(3, 4)")


def test_transpose_result_must_follow_perm():
    msg = verify_error("%x: tensor<3x4xf64>", "%t = raster.transpose %x perm = [0, 1] : tensor<3x4xf64> -> tensor<4x3xf64>")
    assert_mentions(msg, "raster.transpose", "tensor<4x3xf64>", "tensor<3x4xf64>")


# -- grad / value_and_grad -----------------------------------------------------

CALLEES = """
  func.func private @loss(%W: tensor<3x4xf64>, %x: tensor<4xf64>) -> tensor<f64> {
    %s = raster.sum %W : tensor<3x4xf64> -> tensor<f64>
    func.return %s : tensor<f64>
  }
  func.func private @vec(%W: tensor<3x4xf64>, %x: tensor<4xf64>) -> tensor<3xf64> {
    %s = raster.matmul %W, %x : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3xf64>
    func.return %s : tensor<3xf64>
  }"""
GRAD_ARGS = "%W: tensor<3x4xf64>, %x: tensor<4xf64>"


def grad_error(line: str) -> str:
    return verify_error(GRAD_ARGS, line, prelude=CALLEES)


@pytest.mark.parametrize("argnum", [2, 7, -1])
def test_grad_argnum_out_of_range(argnum):
    msg = grad_error(
        f"%d = raster.grad @loss(%W, %x) argnums = [{argnum}] : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<4xf64>"
    )
    assert_mentions(msg, "raster.grad", f"argnum {argnum}", "2 argument(s)")


def test_value_and_grad_argnum_out_of_range():
    msg = grad_error(
        "%v, %d = raster.value_and_grad @loss(%W, %x) argnums = [3] : "
        "(tensor<3x4xf64>, tensor<4xf64>) -> (tensor<f64>, tensor<4xf64>)"
    )
    assert_mentions(msg, "raster.value_and_grad", "argnum 3")


def test_grad_of_a_non_scalar_function():
    msg = grad_error("%d = raster.grad @vec(%W, %x) argnums = [0] : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>")
    assert_mentions(msg, "raster.grad", "@vec", "scalar", "tensor<3xf64>")


def test_value_and_grad_of_a_non_scalar_function():
    msg = grad_error(
        "%v, %d = raster.value_and_grad @vec(%W, %x) argnums = [0] : "
        "(tensor<3x4xf64>, tensor<4xf64>) -> (tensor<3xf64>, tensor<3x4xf64>)"
    )
    assert_mentions(msg, "raster.value_and_grad", "@vec", "tensor<3xf64>")


def test_grad_repeated_argnums():
    msg = grad_error(
        "%d, %e = raster.grad @loss(%W, %x) argnums = [0, 0] : "
        "(tensor<3x4xf64>, tensor<4xf64>) -> (tensor<3x4xf64>, tensor<3x4xf64>)"
    )
    assert_mentions(msg, "raster.grad", "(0, 0)")


def test_grad_result_type_must_be_the_arguments():
    msg = grad_error("%d = raster.grad @loss(%W, %x) argnums = [0] : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<4xf64>")
    assert_mentions(msg, "raster.grad", "type")


def test_grad_of_an_unknown_function():
    msg = grad_error("%d = raster.grad @nope(%W, %x) argnums = [0] : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>")
    assert_mentions(msg, "raster.grad", "@nope")


def test_grad_arguments_must_match_the_callee():
    msg = verify_error(
        "%W: tensor<3x4xf64>, %x: tensor<5xf64>",
        "%d = raster.grad @loss(%W, %x) argnums = [0] : (tensor<3x4xf64>, tensor<5xf64>) -> tensor<3x4xf64>",
        prelude=CALLEES,
    )
    assert_mentions(msg, "raster.grad", "@loss", "tensor<5xf64>", "tensor<4xf64>")


def test_value_and_grad_value_type_must_be_the_callee_result():
    msg = grad_error(
        "%v, %d = raster.value_and_grad @loss(%W, %x) argnums = [0] : "
        "(tensor<3x4xf64>, tensor<4xf64>) -> (tensor<f32>, tensor<3x4xf64>)"
    )
    assert_mentions(msg, "raster.value_and_grad", "tensor<f64>")


def test_valid_grad_verifies():
    text = (
        "builtin.module {" + CALLEES + f"\n  func.func @f({GRAD_ARGS}) {{\n"
        "    %d, %e = raster.grad @loss(%W, %x) argnums = [0, 1] : "
        "(tensor<3x4xf64>, tensor<4xf64>) -> (tensor<3x4xf64>, tensor<4xf64>)\n"
        "    func.return\n  }\n}\n"
    )
    Parser(make_context(), text).parse_module().verify()
