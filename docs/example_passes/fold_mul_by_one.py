"""`fold-mul-by-one`: remove `raster.mul %x, %one` when `%one` is a tensor of ones.

Algorithm: one rewrite pattern on `raster.mul`. If one operand is "ones" — a
`raster.fill 1.0`, or (with `through-broadcast`) a `raster.broadcast_to` of
ones — and the other operand already has the result's type, every use of the
product is replaced by that other operand and the `raster.mul` is erased.
`x * 1.0 == x` holds exactly in IEEE arithmetic (also for -0.0, inf and NaN),
so the rewrite never changes a result. The operand-type check keeps the
rewrite away from products where the ones tensor broadcasts `x` up to a
larger shape. The fills left without uses are erased by `dce` later.

The autodiff pass produces exactly this: the reverse rules multiply the seed
cotangent `raster.fill 1.0` into the first cotangent they compute.

Before (`-p inline,autodiff,inline` on a softmax + cross-entropy loss):
    %11 = raster.fill 1.000000e+00 : f64 : tensor<f64>
    ...
    %14 = raster.div %5, %13 : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
    %15 = raster.mul %14, %11 : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
    %16 = raster.neg %15 : tensor<3xf64>
After (`fold-mul-by-one`):
    %14 = raster.div %5, %13 : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
    %16 = raster.neg %14 : tensor<3xf64>
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from raster_mlir.dialects.raster import BroadcastToOp, FillOp, MulOp


def is_ones(value: SSAValue, through_broadcast: bool) -> bool:
    """True when `value` is a tensor whose elements are all 1.0."""
    producer = value.owner
    if isinstance(producer, FillOp):
        return producer.value.value.data == 1.0
    if through_broadcast and isinstance(producer, BroadcastToOp):
        return is_ones(producer.input, through_broadcast)
    return False


@dataclass
class FoldMulByOne(RewritePattern):
    """x * ones -> x and ones * x -> x, when x already has the product's type."""

    through_broadcast: bool

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp, rewriter: PatternRewriter) -> None:
        for x, other in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            if x.type == op.result.type and is_ones(other, self.through_broadcast):
                rewriter.replace(op, (), (x,))
                return


@dataclass(frozen=True)
class FoldMulByOnePass(ModulePass):
    """Remove multiplications by a tensor of ones (see the module docstring)."""

    name = "fold-mul-by-one"

    through_broadcast: bool = True
    """Also treat `raster.broadcast_to` of ones as ones (`-p fold-mul-by-one{through-broadcast=false}`)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldMulByOne(self.through_broadcast)).rewrite_module(op)
