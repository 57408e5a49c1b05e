"""The error contract: one hierarchy; messages name the op, the shapes and the user's line; bad calls never crash.

Shape errors are checked eagerly and traced: each offending line ends with a
marker (`# <name>`) and the message must contain `test_errors.py:<line>`.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import raster_mlir as rm
from helpers import marker_line
from raster_mlir import nn
from raster_mlir.compiler import TENSOR_PIPELINE

THIS_FILE = os.path.abspath(__file__)
BASENAME = os.path.basename(THIS_FILE)


def line_of(marker: str) -> int:
    return marker_line(THIS_FILE, marker)


def assert_message(exc_info, *parts: str, marker: str | None = None) -> str:
    """`parts` must be in the message proper; the location (`at file:line: source`) is checked apart,
    since the quoted source line could itself contain the shapes."""
    msg = str(exc_info.value)
    head, _, where = msg.partition("\n  at ")
    missing = [p for p in parts if p not in head]
    assert not missing, f"message lacks {missing}: {msg!r}"
    if marker is not None:
        assert f"{BASENAME}:{line_of(marker)}" in where, f"no location {BASENAME}:{line_of(marker)} in {msg!r}"
    return msg


# -- hierarchy ---------------------------------------------------------------------


def test_hierarchy():
    assert issubclass(rm.ShapeError, rm.RasterError) and issubclass(rm.ShapeError, ValueError)
    assert issubclass(rm.DTypeError, rm.RasterError) and issubclass(rm.DTypeError, TypeError)
    for cls in (rm.TraceError, rm.GradientError, rm.CompileError):
        assert issubclass(cls, rm.RasterError)
    assert issubclass(rm.RasterError, Exception)
    assert not issubclass(rm.ShapeError, TypeError) and not issubclass(rm.DTypeError, ValueError)


def test_located_errors_keep_their_type():
    with pytest.raises(ValueError):  # code written against numpy keeps working
        rm.add(np.ones(3), np.ones(4))
    with pytest.raises(TypeError):
        rm.add(np.ones(3, np.float32), np.ones(3))


# -- shape errors, eager ---------------------------------------------------------------


def test_eager_broadcast_error():
    with pytest.raises(rm.ShapeError) as info:
        rm.add(np.ones(3), np.ones(4))  # <eager-add>
    assert_message(info, "raster.add", "(3,)", "(4,)", marker="eager-add")


def test_eager_dense_error():
    with pytest.raises(rm.ShapeError) as info:
        nn.dense(np.ones((3, 4)), np.ones(5), np.zeros(3))  # <eager-dense>
    assert_message(info, "raster.dense", "(3, 4)", "(5,)", marker="eager-dense")


def test_eager_dense_bias_error():
    with pytest.raises(rm.ShapeError) as info:
        nn.dense(np.ones((3, 4)), np.ones(4), np.zeros(4))  # <eager-bias>
    assert_message(info, "raster.dense", "(3, 4)", "(4,)", marker="eager-bias")


def test_eager_matmul_error():
    with pytest.raises(rm.ShapeError) as info:
        rm.matmul(np.ones((2, 3)), np.ones((4, 2)))  # <eager-matmul>
    assert_message(info, "raster.matmul", "(2, 3)", "(4, 2)", marker="eager-matmul")


def test_eager_cross_entropy_error():
    with pytest.raises(rm.ShapeError) as info:
        nn.cross_entropy(np.full(10, 0.1), np.ones(9))  # <eager-ce>
    assert_message(info, "raster.cross_entropy", "(10,)", "(9,)", marker="eager-ce")


def test_eager_softmax_cross_entropy_error():
    with pytest.raises(rm.ShapeError) as info:
        nn.softmax_cross_entropy(np.ones((2, 3)), np.ones((3, 2)))  # <eager-sce>
    assert_message(info, "raster.softmax_cross_entropy", "(2, 3)", "(3, 2)", marker="eager-sce")


def test_eager_reshape_error():
    with pytest.raises(rm.ShapeError) as info:
        rm.reshape(np.ones((3, 4)), (5, -1))  # <eager-reshape>
    assert_message(info, "raster.reshape", "(3, 4)", "(5, -1)", marker="eager-reshape")


def test_eager_broadcast_to_error():
    with pytest.raises(rm.ShapeError) as info:
        rm.broadcast_to(np.ones((3, 2)), (3, 4))  # <eager-bcast>
    assert_message(info, "raster.broadcast_to", "(3, 2)", "(3, 4)", marker="eager-bcast")


def test_eager_softmax_of_a_scalar():
    with pytest.raises(rm.ShapeError) as info:
        nn.softmax(np.float64(1.0))  # <eager-softmax>
    assert_message(info, "raster.softmax", "()", marker="eager-softmax")


def test_eager_mse_error():
    with pytest.raises(rm.ShapeError) as info:
        nn.mse(np.ones((2, 3)), np.ones((3, 2)))  # <eager-mse>
    assert_message(info, "(2, 3)", "(3, 2)", marker="eager-mse")


def test_eager_bad_axis():
    with pytest.raises(rm.ShapeError) as info:
        rm.sum(np.ones((3, 4)), axis=2)  # <eager-axis>
    assert_message(info, "raster.sum", "axis 2", marker="eager-axis")


def test_eager_bad_axis_names_the_shape():
    with pytest.raises(rm.ShapeError) as info:
        rm.mean(np.ones((3, 4)), axis=-3)
    assert_message(info, "raster.mean", "(3, 4)")


def test_eager_bad_perm():
    with pytest.raises(rm.ShapeError) as info:
        rm.transpose(np.ones((3, 4)), (0, 0))  # <eager-perm>
    assert_message(info, "raster.transpose", "(0, 0)", "(3, 4)", marker="eager-perm")


def test_eager_out_of_range_perm_names_perm_and_shape():
    with pytest.raises(rm.ShapeError) as info:
        rm.transpose(np.ones((3, 4)), (0, 5))
    assert_message(info, "raster.transpose", "(0, 5)", "(3, 4)")


# -- shape errors, traced --------------------------------------------------------------


def traced_add(a, b):
    return a + b  # <traced-add>


def traced_dense(W, x, b):
    return nn.relu(nn.dense(W, x, b))  # <traced-dense>


def traced_matmul(a, b):
    return rm.tanh(a @ b)  # <traced-matmul>


def traced_ce(p, y):
    return nn.cross_entropy(nn.softmax(p), y)  # <traced-ce>


@pytest.mark.parametrize(
    "fn, args, parts, marker",
    [
        (traced_add, (np.ones((2, 3)), np.ones((3, 2))), ("raster.add", "(2, 3)", "(3, 2)"), "traced-add"),
        (traced_dense, (np.ones((3, 4)), np.ones((2, 5)), np.ones(3)), ("raster.dense", "(3, 4)", "(2, 5)"), "traced-dense"),
        (traced_matmul, (np.ones(3), np.ones((4, 3))), ("raster.matmul", "(3,)", "(4, 3)"), "traced-matmul"),
        (traced_ce, (np.ones((2, 10)), np.ones((2, 9))), ("raster.cross_entropy", "(2, 10)", "(2, 9)"), "traced-ce"),
    ],
    ids=["add", "dense", "matmul", "cross_entropy"],
)
@pytest.mark.parametrize("via", ["compile", "jit"])
def test_traced_shape_errors_name_op_shapes_and_line(fn, args, parts, marker, via):
    with pytest.raises(rm.ShapeError) as info:
        if via == "compile":
            rm.compile(fn, *args)
        else:
            rm.jit(fn)(*args)
    msg = assert_message(info, *parts, marker=marker)
    assert msg.count(f"{BASENAME}:") == 1, "the location is appended once"


# -- dtype errors and foreign objects, eager ---------------------------------------------


@pytest.mark.parametrize(
    "operand, words",
    [
        ("abc", ("raster.exp", "'abc'")),
        ({"a": 1}, ("raster.exp", "object")),
        (None, ("raster.exp", "None")),
        (True, ("raster.exp", "True")),
        (np.ones(3, dtype=np.complex128), ("raster.exp", "complex128")),
        (np.ones(3, dtype=np.float16), ("raster.exp", "float16")),
        (np.ones(3, dtype=bool), ("raster.exp", "bool")),
        ([[1.0, 2.0], [3.0]], ("raster.exp",)),
    ],
    ids=["str", "dict", "None", "bool", "complex", "float16", "bool-array", "ragged"],
)
def test_eager_refuses_foreign_operands(operand, words):
    with pytest.raises(rm.DTypeError) as info:
        rm.exp(operand)  # <eager-foreign>
    assert_message(info, *words, marker="eager-foreign")


def test_eager_mixing_f32_and_f64():
    with pytest.raises(rm.DTypeError) as info:
        nn.cross_entropy(np.full(3, 0.3, np.float32), np.ones(3))  # <eager-mix>
    assert_message(info, "raster.cross_entropy", "f32", "f64", marker="eager-mix")


# -- calling compiled functions with bad arguments -------------------------------------------


def loss(W, x, b):
    return rm.sum(nn.softmax(nn.dense(W, x, b)))


W0, X0, B0 = np.ones((3, 4)), np.ones(4), np.zeros(3)


@pytest.fixture(scope="module")
def compiled():
    return rm.compile(loss, W0, X0, B0)


@pytest.mark.parametrize("call", ["__call__", "run_reference"])
@pytest.mark.parametrize(
    "args, error, words",
    [
        ((np.ones((3, 5)), X0, B0), rm.ShapeError, ("argument 0 ('W')", "(3, 5)", "(3, 4)")),
        ((W0, np.ones((2, 4)), B0), rm.ShapeError, ("argument 1 ('x')", "(2, 4)", "(4,)")),
        ((W0.astype(np.float32), X0, B0), rm.DTypeError, ("argument 0 ('W')", "float32", "float64")),
        ((W0, X0.astype(np.int64), B0), rm.DTypeError, ("argument 1 ('x')", "int64")),
        ((W0, X0.astype(bool), B0), rm.DTypeError, ("argument 1 ('x')", "bool")),
        ((W0, list(X0), B0), rm.DTypeError, ("argument 1 ('x')", "list")),
        ((W0, X0, "abc"), rm.DTypeError, ("argument 2 ('b')", "str")),
        ((W0, X0, None), rm.DTypeError, ("argument 2 ('b')", "NoneType")),
    ],
    ids=["shape0", "shape1", "f32", "int", "bool", "list", "str", "None"],
)
def test_compiled_function_refuses_bad_arguments(compiled, call, args, error, words):
    with pytest.raises(error) as info:
        getattr(compiled, call)(*args)
    assert_message(info, loss.__name__, *words)


WRONG_COUNT_BUG = (
    "raster_mlir/backend/call.py check_arguments (native __call__ path): the argument-count message "
    "counts the internal output buffers, e.g. calling a 3-argument compiled function with 2 arguments "
    "says 'loss: expected 4 arrays (W, x, b, out0), got 3'"
)


@pytest.mark.parametrize("call", ["__call__", "run_reference"])
@pytest.mark.parametrize("args, expected, given", [((W0, X0), 3, 2), ((W0, X0, B0, B0), 3, 4)], ids=["too-few", "too-many"])
def test_compiled_function_refuses_a_wrong_argument_count(request, compiled, call, args, expected, given):
    with pytest.raises(rm.RasterError) as info:
        getattr(compiled, call)(*args)
    head = str(info.value)
    assert f"expected {expected}" in head and f"got {given}" in head, head


SCALAR_ARG_BUG = (
    "raster_mlir/runtime/native.py NativeEntry.__call__ converts arguments compiled as Python numbers with "
    "np.array(arg, dtype) before any check: for c = rm.compile(lambda x, s: x * s, np.ones(2), 2.0), "
    "c(np.ones(2), '2') returns [2., 2.], c(np.ones(2), None) returns [nan, nan], and c(np.ones(2)) "
    "raises a bare IndexError (list index out of range) instead of a RasterError"
)


@pytest.fixture(scope="module")
def scaled():
    return rm.compile(lambda x, s: x * s, np.ones(2), 2.0)


@pytest.mark.parametrize("call", ["__call__", "run_reference"])
@pytest.mark.parametrize("args", [(np.ones(2), "2"), (np.ones(2), None), (np.ones(2),)], ids=["str", "None", "missing"])
def test_compiled_scalar_argument_refuses_non_numbers(request, scaled, call, args):
    with pytest.raises(rm.RasterError):
        getattr(scaled, call)(*args)


@pytest.mark.parametrize("call", ["__call__", "run_reference"])
def test_compiled_scalar_argument_accepts_numbers(scaled, call):
    for s in (3.0, 3, np.float64(3.0)):
        np.testing.assert_array_equal(getattr(scaled, call)(np.ones(2), s), [3.0, 3.0])


def test_compiled_function_still_works_after_refusals(compiled):
    want = 1.0  # softmax sums to one
    assert compiled(W0, X0, B0) == pytest.approx(want, rel=1e-12)
    assert compiled.run_reference(W0, X0, B0) == pytest.approx(want, rel=1e-12)


def test_non_contiguous_and_read_only_arguments_are_handled(compiled):
    """Layouts are checked before anything runs: a non-C-contiguous array is refused (never copied),
    a read-only array the function only reads is fine."""
    W_strided = np.ones((3, 8))[:, ::2]  # (3, 4), not C-contiguous
    W_fortran = np.asfortranarray(np.ones((3, 4)) * 2.0)
    assert not W_strided.flags.c_contiguous and not W_fortran.flags.c_contiguous
    for W in (W_strided, W_fortran):
        with pytest.raises(rm.NotContiguousError) as info:
            compiled(W, X0, B0)
        assert_message(info, "argument 0 ('W')", "C-contiguous")
    X_ro = X0.copy()
    X_ro.setflags(write=False)
    assert compiled(W0, X_ro, B0) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.ones(4, dtype=np.int32), rm.DTypeError),
        (np.ones(4, dtype=np.float16), rm.DTypeError),
        (np.array(["a", "b"]), rm.DTypeError),
        ("abc", rm.DTypeError),
        ([1.0, 2.0, 3.0, 4.0], rm.DTypeError),
        (True, rm.DTypeError),
        (None, rm.DTypeError),
    ],
    ids=["int32", "float16", "str-array", "str", "list", "bool", "None"],
)
def test_jit_function_refuses_bad_arguments(bad, error):
    jf = rm.jit(lambda x: rm.sum(x * x))
    with pytest.raises(error) as info:
        jf(bad)  # <jit-bad-arg>
    assert_message(info, "argument 0 ('x')", marker="jit-bad-arg")


def test_rm_compile_refuses_bad_example_arguments():
    with pytest.raises(rm.DTypeError):
        rm.compile(loss, W0.astype(np.int64), X0, B0)


@pytest.mark.parametrize("call", ["__call__", "run_reference"])
def test_compiled_scalar_argument_refuses_bool(scaled, call):
    with pytest.raises(rm.DTypeError):
        getattr(scaled, call)(np.ones(2), True)


def test_unknown_ir_stage_is_a_raster_error(compiled):
    with pytest.raises(rm.RasterError, match="traced"):
        compiled.ir("after:no-such-pass")


def test_unknown_pass_is_a_compile_error():
    with pytest.raises(rm.CompileError, match="no-such-pass"):
        rm.compile(loss, W0, X0, B0, pipeline="inline,no-such-pass")


# -- differentiation requests ----------------------------------------------------------------


def test_grad_argnums_out_of_range():
    with pytest.raises(rm.GradientError) as info:
        rm.grad(lambda a, b: rm.sum(a * b), argnums=2)(np.ones(3), np.ones(3))  # <grad-argnums>
    assert_message(info, "raster.grad", "2", "2 argument(s)", marker="grad-argnums")


def test_value_and_grad_repeated_argnums():
    with pytest.raises(rm.GradientError) as info:
        rm.value_and_grad(lambda a: rm.sum(a), argnums=(0, 0))(np.ones(3))  # <vg-repeat>
    assert_message(info, "raster.value_and_grad", "(0, 0)", marker="vg-repeat")


def vector_valued(a):
    return a * 2.0


def test_grad_of_a_non_scalar_function():
    with pytest.raises(rm.GradientError) as info:
        rm.grad(vector_valued)(np.ones(3))  # <grad-nonscalar>
    assert_message(info, "raster.grad", "vector_valued", "scalar", "(3,)", marker="grad-nonscalar")


# -- empty arrays ----------------------------------------------------------------------------

ZERO_SIZE_BUG = (
    "dialects/shapes.py reduce / SoftmaxOp.infer_shapes accept reducing an axis of size 0, and the numpy "
    "kernel then raises numpy's bare ValueError ('zero-size array to reduction operation maximum which has "
    "no identity') instead of a ShapeError naming the op, shape and line: rm.max(np.zeros((0,))), "
    "rm.max(np.zeros((2, 0)), axis=1), nn.softmax(np.zeros((2, 0))), nn.log_softmax(np.zeros((0,)))"
)


@pytest.mark.parametrize(
    "call",
    [
        lambda: rm.max(np.zeros((0,))),
        lambda: rm.max(np.zeros((2, 0)), axis=1),
        lambda: nn.softmax(np.zeros((2, 0))),
        lambda: nn.log_softmax(np.zeros((0,))),
    ],
    ids=["max", "max-axis", "softmax", "log_softmax"],
)
def test_eager_reduction_over_an_empty_axis_is_a_shape_error(call):
    with pytest.raises(rm.ShapeError):
        call()


def test_compiled_max_over_an_empty_axis_is_a_shape_error():
    with pytest.raises(rm.ShapeError):
        rm.compile(lambda x: rm.max(x), np.zeros((0,)), pipeline=TENSOR_PIPELINE).run_reference(np.zeros((0,)))


def test_empty_sum_follows_numpy():
    assert rm.sum(np.zeros((0,))) == 0.0
    np.testing.assert_array_equal(rm.sum(np.zeros((2, 0)), axis=1), [0.0, 0.0])
