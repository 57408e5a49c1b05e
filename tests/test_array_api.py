"""The maths and array ops: reachable from the public API, verifier messages, errors at the user's line."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import marker_line
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

import raster_mlir as rm
from raster_mlir.compiler import TENSOR_PIPELINE, make_context
from raster_mlir.dialects import raster as R

THIS_FILE = os.path.abspath(__file__)


def test_every_maths_and_array_op_is_reachable_from_the_public_api():
    x = np.linspace(0.1, 1.0, 12).reshape(3, 4)

    def everything(a):
        v = rm.sin(a) + rm.cos(a) + rm.tan(a) + rm.exp2(a) + rm.log1p(a) + rm.expm1(a) + abs(a) + rm.sign(a)
        v = v + rm.erf(a) + rm.softplus(a) + rm.minimum(a, 0.5) + rm.arctan2(a, 1.0)
        v = v + (a < 0.5) + (a <= 0.5) + (a >= 0.5) + (a != 0.5) + rm.where(a > 0.5, a, -a)
        s = rm.min(v, axis=0) + rm.prod(v, axis=0) + rm.logsumexp(v, axis=0) + rm.cumsum(v, axis=1)[0]
        return rm.sum(rm.concatenate([s[1:], rm.pad(s, 1)]))

    traced = rm.compile(everything, x, pipeline=TENSOR_PIPELINE).ir("traced")
    missing = [op.name for op in (*R.MATHS_OPS, *R.ARRAY_OPS) if f"{op.name} " not in traced]
    assert not missing, f"ops not produced by the public API: {missing}"


# -- verifier messages ---------------------------------------------------------------


def verify_error(args: str, line: str) -> str:
    text = f"builtin.module {{\n  func.func @f({args}) {{\n    {line}\n    func.return\n  }}\n}}\n"
    module = Parser(make_context(), text).parse_module()
    with pytest.raises(VerifyException) as info:
        module.verify()
    return str(info.value)


VERIFIER_CASES = [
    ("%x: tensor<10xf64>", "%s = raster.slice %x start = [8] step = [1] : tensor<10xf64> -> tensor<4xf64>",
     ["raster.slice", "4 element(s) from 8", "index 11", "(10,)"]),
    ("%x: tensor<10xf64>", "%s = raster.slice %x start = [0] step = [0] : tensor<10xf64> -> tensor<4xf64>",
     ["raster.slice", "step 0", "non-zero"]),
    ("%x: tensor<10xf64>", "%s = raster.slice %x start = [2] step = [-1] : tensor<10xf64> -> tensor<4xf64>",
     ["raster.slice", "index -1"]),
    ("%x: tensor<3x4xf64>", "%s = raster.slice %x start = [0] step = [1] : tensor<3x4xf64> -> tensor<2xf64>",
     ["raster.slice", "one entry per axis", "(3, 4)"]),
    ("%s: tensor<3xf64>, %x: tensor<4xf64>", "%r = raster.insert_slice %s into %x start = [2] step = [1] : tensor<3xf64> into tensor<4xf64>",
     ["raster.insert_slice", "dest (4,)", "index 4"]),
    ("%a: tensor<2x3xf64>, %b: tensor<3x3xf64>", "%c = raster.concatenate %a, %b axis = 1 : i64 : (tensor<2x3xf64>, tensor<3x3xf64>) -> tensor<2x6xf64>",
     ["raster.concatenate", "array 1", "(3, 3)", "(2, 3)", "outside axis 1"]),
    ("%a: tensor<2xf64>, %b: tensor<3xf64>", "%c = raster.concatenate %a, %b axis = 0 : i64 : (tensor<2xf64>, tensor<3xf64>) -> tensor<6xf64>",
     ["raster.concatenate", "tensor<6xf64>", "tensor<5xf64>"]),
    ("%a: tensor<2xf64>", "%c = raster.concatenate %a axis = 1 : i64 : (tensor<2xf64>) -> tensor<2xf64>",
     ["raster.concatenate", "axis 1", "(2,)"]),
    ("%x: tensor<3x4xf64>", "%y = raster.cumsum %x axis = 2 : i64 : tensor<3x4xf64>", ["raster.cumsum", "axis 2", "(3, 4)"]),
    ("%x: tensor<f64>", "%y = raster.cumsum %x axis = 0 : i64 : tensor<f64>", ["raster.cumsum", "at least 1 dimension"]),
    ("%m: tensor<3xf64>, %x: tensor<4xf64>, %y: tensor<f64>", "%z = raster.where %m, %x, %y : tensor<3xf64>, tensor<4xf64>, tensor<f64> -> tensor<4xf64>",
     ["raster.where", "(3,)", "(4,)", "do not broadcast"]),
    ("%m: tensor<4xf32>, %x: tensor<4xf64>, %y: tensor<f64>", "%z = raster.where %m, %x, %y : tensor<4xf32>, tensor<4xf64>, tensor<f64> -> tensor<4xf64>",
     ["raster.where", "f32", "f64"]),
    ("%x: tensor<3x0xf64>", "%m = raster.logsumexp %x axis = 1 : i64 : tensor<3x0xf64> -> tensor<3xf64>", ["raster.logsumexp", "empty"]),
    ("%x: tensor<4xf64>, %y: tensor<3xf64>", "%z = raster.atan2 %x, %y : tensor<4xf64>, tensor<3xf64> -> tensor<4xf64>", ["raster.atan2", "(4,)", "(3,)"]),
    ("%x: tensor<4xf64>", "%y = raster.sin %x : tensor<4xf64> -> tensor<4xf32>", []),
]  # fmt: skip


@pytest.mark.parametrize("args,line,parts", VERIFIER_CASES, ids=[c[1].split("=")[1].split()[0] + f"-{k}" for k, c in enumerate(VERIFIER_CASES)])
def test_verifier_messages(args, line, parts):
    if not parts:  # a mismatched type that the assembly format itself refuses
        with pytest.raises(Exception):
            verify_error(args, line)
        return
    msg = verify_error(args, line)
    missing = [p for p in parts if p not in msg]
    assert not missing, f"message lacks {missing}: {msg!r}"


# -- frontend errors name the user's line -------------------------------------------


def concat_mismatch(a, b):
    return rm.concatenate([a, b], axis=0)  # <concat>


def pad_too_far(a):
    return rm.pad(a, 3, mode="reflect")  # <reflect>


def stack_mismatch(a, b):
    return rm.stack([a, b])  # <stack>


def bad_norm(a):
    return rm.norm(rm.reshape(a, (1, 3)), ord=2)  # <norm>


ERROR_CASES = [
    (concat_mismatch, [np.ones(3), np.ones((2, 3))], "concat", ["raster.concatenate", "(3,)", "(2, 3)"]),
    (pad_too_far, [np.ones(3)], "reflect", ["pad", "reflect", "at most 2"]),
    (stack_mismatch, [np.ones(3), np.ones(4)], "stack", ["stack", "same shape"]),
    (bad_norm, [np.ones(3)], "norm", ["norm", "ord=2", "not supported"]),
]


@pytest.mark.parametrize("fn,args,marker,words", ERROR_CASES, ids=[c[0].__name__ for c in ERROR_CASES])
def test_shape_errors_name_the_line_eagerly_and_traced(fn, args, marker, words):
    for run in (lambda: fn(*args), lambda: rm.compile(fn, *args)):
        with pytest.raises(rm.ShapeError) as info:
            run()
        msg = str(info.value)
        head, _, where = msg.partition("\n  at ")
        assert f"test_array_api.py:{marker_line(THIS_FILE, marker)}" in where, msg
        assert all(w in head for w in words), msg


# -- derivatives at kinks: the documented conventions --------------------------------


def gradient(fn, *args):
    """rm.grad of fn through the tensor-level pipeline, run by the reference interpreter."""
    out = rm.compile(rm.grad(fn), *args, pipeline=TENSOR_PIPELINE).run_reference(*args)
    return out[0] if len(args) == 1 else out


def test_derivative_conventions_at_kinks():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(gradient(lambda x: rm.sum(rm.abs(x)), x), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(gradient(lambda x: rm.sum(rm.sign(x) * 5.0 + x), x), [1.0, 1.0, 1.0])
    # minimum and clip share a tie equally; min shares among tied minima.
    da, db = gradient(lambda a, b: rm.sum(rm.minimum(a, b)), np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0]))
    np.testing.assert_array_equal(da, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(db, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gradient(lambda x: rm.sum(rm.clip(x, 0.0, 3.0)), x), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(gradient(lambda x: rm.min(x), np.array([1.0, 1.0, 2.0, 1.0])), [1 / 3, 1 / 3, 0.0, 1 / 3])
    # where: the mask gets nothing, each branch gets its elements.
    da, db = gradient(lambda a, b: rm.sum(rm.where(a > 0, a * 2.0, b)), x, np.ones(3))
    np.testing.assert_array_equal(da, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(db, [1.0, 1.0, 0.0])


def test_prod_gradient_with_zeros_is_exact():
    rows = np.array([[2.0, 3.0, 4.0], [2.0, 0.0, 4.0], [0.0, 3.0, 0.0]])
    want = np.array([[12.0, 8.0, 6.0], [0.0, 8.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(gradient(lambda x: rm.sum(rm.prod(x, axis=1)), rows), want)
    np.testing.assert_array_equal(gradient(lambda x: rm.prod(x), rows[1]), [0.0, 8.0, 0.0])


def test_norm_gradient_is_nan_at_zero_only():
    g = gradient(lambda x: rm.norm(x), np.array([3.0, 4.0]))
    np.testing.assert_allclose(g, [0.6, 0.8])
    assert np.isnan(gradient(lambda x: rm.norm(x), np.zeros(2))).all()


# (function, error, words of the message, whether it also fails so eagerly: indexing and
# astype of a numpy array are numpy's own business)
BAD_ARGUMENTS = [
    (lambda x: rm.sum(x, axis="a"), rm.DTypeError, "axis must be an int", True),
    (lambda x: rm.mean(x, axis=1.0), rm.DTypeError, "axis must be an int", True),
    (lambda x: rm.cumsum(x, axis=(0, 1)), rm.DTypeError, "one int or None", True),
    (lambda x: rm.flip(x, "a"), rm.DTypeError, "axis must be an int", True),
    (lambda x: rm.roll(x, 1, axis=[0, 0.5]), rm.DTypeError, "axis must be an int", True),
    (lambda x: rm.diff(x, 2.5), rm.ShapeError, "non-negative integer", True),
    (lambda x: rm.pad(x, "wide"), rm.ShapeError, "pad_width", True),
    (lambda x: rm.pad(x, -1), rm.ShapeError, "negative", True),
    (lambda x: rm.pad(x, 1, mode="mean"), rm.ShapeError, "not supported", True),
    (lambda x: rm.concatenate([x[0, 0], x[0, 1]]), rm.ShapeError, "0-d arrays cannot be concatenated", True),
    (lambda x: rm.squeeze(x, 0), rm.ShapeError, "not 1", True),
    (lambda x: rm.where(np.ones(4), x, 0.0), rm.ShapeError, "do not broadcast", True),
    (lambda x: rm.clip(x, None, None), rm.DTypeError, "a_min, a_max", True),
    (lambda x: x.astype(np.float32), rm.DTypeError, "astype", False),
    (lambda x: x[..., ...], rm.ShapeError, "single ellipsis", False),
    (lambda x: x[True], rm.TraceError, "bool", False),
    (lambda x: x[: rm.sum(x)], rm.TraceError, "slice bounds", False),
]


@pytest.mark.parametrize("fn,error,words,eager", BAD_ARGUMENTS, ids=[f"bad-{k}" for k in range(len(BAD_ARGUMENTS))])
def test_bad_arguments_are_raster_errors(fn, error, words, eager):
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(error, match=words):
        rm.compile(fn, x, pipeline=TENSOR_PIPELINE)
    if eager:
        with pytest.raises(error, match=words):
            fn(x)
