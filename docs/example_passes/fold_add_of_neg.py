"""`fold-add-of-neg`: a + (-b) -> a - b, and (-a) + b -> b - a.

The reverse rule of `a - b` hands `b` the negated cotangent. Where `b` also
reaches the output another way, the autodiff pass sums its cotangents, so
gradients contain `raster.add %x, %n` with `%n = raster.neg %y`: two ops,
two passes over memory, for what one subtraction computes. `a + (-b)`
equals `a - b` bit for bit in IEEE arithmetic (subtraction is the addition
of the negation), for every value including -0.0, inf and NaN, and with
broadcasting too: the subtraction broadcasts its operands exactly as the
addition did, so the result type is the same. The `raster.neg` stays for
its other users; the greedy driver erases it when there are none.

Options: `commute` (default true) also rewrites (-a) + b to b - a;
`max-rewrites` bounds the greedy rewrite (0: 20 per op of the module).

Before:
    %n = raster.neg %y : tensor<5xf64>
    %s = raster.add %x, %n : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
After:
    %s = raster.sub %x, %y : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from raster_mlir.dialects.raster import AddOp, NegOp, SubOp
from raster_mlir.passes.greedy import apply_patterns


@dataclass
class FoldAddOfNeg(RewritePattern):
    """x + (-y) -> x - y; with `commute`, also (-y) + x -> x - y."""

    commute: bool

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> None:
        if isinstance(op.rhs.owner, NegOp):
            x, y = op.lhs, op.rhs.owner.input
        elif self.commute and isinstance(op.lhs.owner, NegOp):
            x, y = op.rhs, op.lhs.owner.input
        else:
            return
        sub = SubOp.make([x, y])
        sub.location = op.location  # errors and dumps keep pointing at the user's line
        rewriter.replace(op, sub)


@dataclass(frozen=True)
class FoldAddOfNegPass(ModulePass):
    """Turn additions of a negation into subtractions (see the module docstring)."""

    name = "fold-add-of-neg"

    commute: bool = True
    """Also rewrite (-a) + b to b - a (`-p fold-add-of-neg{commute=false}` turns it off)."""

    max_rewrites: int = 0
    """Stop with a CompileError after this many rewrites (0: 20 per op of the module)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_patterns(op, [FoldAddOfNeg(self.commute)], self.name, max_rewrites=self.max_rewrites)
