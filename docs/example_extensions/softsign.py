"""A new op end to end: `example.softsign`, y = x / (1 + |x|), with its lowering and rule set.

docs/writing-a-lowering-and-a-rule-set.md walks through this file; the
suite runs it (tests/test_extension_points.py). Importing it defines the op
and its kernel; nothing is registered until you ask (`register()`), or until
raster_mlir finds the objects below through the entry points of an
installed package:

    [project.entry-points."xdsl.universe"]
    example = "softsign:UNIVERSE"              # the dialect, for parsers (raster-opt, xdsl-opt)
    [project.entry-points."raster_mlir.lowerings"]
    example = "softsign:LOWERINGS"             # {op class: recipe} for lower-to-loops
    [project.entry-points."raster_mlir.rule_sets"]
    with-softsign = "softsign:RULES"           # autodiff{rules=with-softsign}
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Dialect
from xdsl.irdl import irdl_op_definition
from xdsl.universe import Universe

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES, register_rule_set
from raster_mlir.ops import apply
from raster_mlir.passes.loop_recipes import elementwise
from raster_mlir.passes.lowerings import register_lowering
from raster_mlir.runtime.reference import KERNELS


# 1. The op: an elementwise unary raster op (shape rule, verifier and syntax come with the base class).
@irdl_op_definition
class SoftsignOp(R.ElementwiseUnaryOp):
    """y = x / (1 + |x|).  `%y = example.softsign %x : tensor<4xf64>`"""

    name = "example.softsign"


Example = Dialect("example", [SoftsignOp])
UNIVERSE = Universe(all_dialects={"example": lambda: Example})

# 2. The primitive users call: eager on numpy arrays (this kernel), an op when traced.
KERNELS[SoftsignOp.name] = lambda x: x / (1 + np.abs(x))


def softsign(x):
    return apply(SoftsignOp, [x])


# 3. The lowering: one scalar function, applied elementwise by lower-to-loops.
def softsign_scalar(b, x):
    magnitude = b.maxf(x, b.negf(x))  # |x| (IEEE maximum: |-0.0| = +0.0, NaN stays NaN)
    return b.divf(x, b.addf(b.float(1.0, x.type), magnitude))


LOWERINGS = {SoftsignOp: elementwise(softsign_scalar)}


# 4. The derivative, d/dx softsign(x) = 1 / (1 + |x|)^2, in a rule set of its own.
RULES = DEFAULT_RULES.copy("with-softsign")


def _squared_denominator(b, x):
    d = b.add(b.scalar(1.0, x), b.emit(R.MaximumOp, [x, b.neg(x)]))
    return b.mul(d, d)


@RULES.register(SoftsignOp)
def softsign_rule(b, op, cts):
    """Reverse rule: the cotangent of x is ct / (1 + |x|)^2."""
    (ct,) = cts
    return [b.div(ct, _squared_denominator(b, op.input))]


@RULES.register_tangent(SoftsignOp)
def softsign_tangent(b, op, tangents):
    """Tangent rule: the tangent of y is dx / (1 + |x|)^2."""
    (dx,) = tangents
    return [b.div(dx, _squared_denominator(b, op.input))]


def register() -> None:
    """Register the lowering and the rule set from Python (instead of entry points)."""
    register_lowering(SoftsignOp, LOWERINGS[SoftsignOp])
    register_rule_set(RULES)
