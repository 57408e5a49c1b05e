"""Traced ops carry the user's source location (file, line), also through inlining.

Lines are found by markers at the end of source lines (`# <name>`), so the
tests do not depend on line numbers written by hand.
"""

from __future__ import annotations

import os

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc

import raster_mlir as rm
from helpers import marker_line
from raster_mlir import nn
from raster_mlir.compiler import print_module

THIS_FILE = os.path.abspath(__file__)


def line_of(marker: str) -> int:
    return marker_line(THIS_FILE, marker)


def located_ops(module, name):
    return [op for op in module.walk() if op.name == name]


def location(op) -> tuple[str, int]:
    loc = op.location
    assert isinstance(loc, FileLineColLoc), f"{op.name} has location {loc}"
    return loc.filename.data, loc.line.data


def model(W, x, b):
    h = nn.dense(W, x, b)  # <dense>
    p = nn.softmax(nn.relu(h))  # <relu-softmax>
    return rm.sum(p * 2.0)  # <sum>


@rm.jit
def helper(x):
    return rm.exp(x)  # <helper-exp>


def uses_helper(x):
    y = helper(x)  # <call-helper>
    return -y  # <neg>


ARGS = (np.ones((2, 3)), np.ones(3), np.zeros(2))


def test_each_op_carries_its_user_line():
    c = rm.compile(model, *ARGS, pipeline="")
    module = c.module
    expected = {
        "raster.dense": "dense",
        "raster.relu": "relu-softmax",
        "raster.softmax": "relu-softmax",
        "raster.mul": "sum",
        "raster.fill": "sum",
        "raster.sum": "sum",
    }
    for op_name, marker in expected.items():
        (op,) = located_ops(module, op_name)
        assert location(op) == (THIS_FILE, line_of(marker)), op_name


def test_column_points_into_the_line():
    c = rm.compile(model, *ARGS, pipeline="")
    (dense,) = located_ops(c.module, "raster.dense")
    (softmax,) = located_ops(c.module, "raster.softmax")
    (relu,) = located_ops(c.module, "raster.relu")
    text = open(THIS_FILE).read().splitlines()[line_of("relu-softmax") - 1]
    # MLIR columns are 1-based; `nn.softmax(` starts before the nested `nn.relu(`.
    assert softmax.location.column.data == text.index("nn.softmax") + 1
    assert relu.location.column.data == text.index("nn.relu") + 1
    assert dense.location.column.data >= 1


def test_locations_printed_in_mlir_syntax():
    c = rm.compile(model, *ARGS, pipeline="")
    text = print_module(c.module, locations=True)
    assert f'raster.dense' in text
    assert f'loc("{THIS_FILE}":{line_of("dense")}:' in text
    assert f'loc("{THIS_FILE}":{line_of("sum")}:' in text
    # Without locations= the IR stays readable.
    assert "loc(" not in print_module(c.module)


def test_inlined_callee_ops_keep_the_callee_line():
    c = rm.compile(uses_helper, np.ones(4), pipeline="inline")
    module = c.module
    assert not [op for op in module.walk() if isinstance(op, func.CallOp)]
    (exp,) = located_ops(module, "raster.exp")
    assert location(exp) == (THIS_FILE, line_of("helper-exp"))
    (neg,) = located_ops(module, "raster.neg")
    assert location(neg) == (THIS_FILE, line_of("neg"))


def test_call_op_carries_the_call_line():
    c = rm.compile(uses_helper, np.ones(4), pipeline="")
    (call,) = [op for op in c.module.walk() if isinstance(op, func.CallOp)]
    assert location(call) == (THIS_FILE, line_of("call-helper"))


def test_locations_survive_the_default_tensor_pipeline():
    from raster_mlir.compiler import TENSOR_PIPELINE

    c = rm.compile(uses_helper, np.ones(4), pipeline=TENSOR_PIPELINE)
    (exp,) = located_ops(c.module, "raster.exp")
    assert location(exp) == (THIS_FILE, line_of("helper-exp"))
