"""`div-by-power-of-two`: x / 2^k -> x * 2^-k, bit for bit (2^-k is exact: both round the same real number)."""

import numpy as np
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from raster_mlir.dialects.raster import DivOp, FillOp, MulOp, dtype_of, shape_of
from raster_mlir.passes.greedy import apply_patterns


class DivByPowerOfTwo(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DivOp, rewriter: PatternRewriter) -> None:
        if not isinstance(divisor := op.rhs.owner, FillOp):
            return
        dtype = dtype_of(divisor.result.type)
        c = {"f32": np.float32, "f64": np.float64}[dtype](divisor.value.value.data)
        with np.errstate(over="ignore"):  # exact when c is a power of two and 1/c is finite and not 0
            inverse = 1 / c
        if abs(np.frexp(c)[0]) == 0.5 and np.isfinite(inverse) and inverse != 0:
            scale = FillOp.make([], value=float(inverse), shape=shape_of(divisor.result.type), dtype=dtype)
            rewriter.replace(op, [scale, MulOp.make([op.lhs, scale.result])])


class DivByPowerOfTwoPass(ModulePass):  # no options: a plain class, like xDSL's canonicalize
    name = "div-by-power-of-two"

    def apply(self, ctx, op) -> None:
        apply_patterns(op, [DivByPowerOfTwo()], self.name)
