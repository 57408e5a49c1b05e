"""`fuse-softmax-cross-entropy`: cross_entropy(softmax z, y) -> softmax_cross_entropy(z, y).

One rewrite pattern, applied by the bounded greedy driver (greedy.py). The
fused op computes the loss through log_softmax, so it is finite and exact
for logits of any size, where cross_entropy(softmax z) clamps a probability
that underflowed to the smallest normal number (logit gaps above ~708 in
f64, ~87 in f32: the loss 708.4 instead of the true 20000 for a gap of 2e4).
Elsewhere the two agree up to rounding. Because it changes values in that
regime (and eager `nn.cross_entropy(nn.softmax(z), y)` keeps the clamped
value), it is not a canonicalization: a pipeline opts in.

Placed before `autodiff`, the gradient comes from softmax_cross_entropy's
rule (softmax - y) instead of the chain through cross_entropy's and
softmax's rules: `inline,fuse-softmax-cross-entropy,autodiff,inline,...`.
Placed after, the softmax's other users (the reverse pass) take the fused
op's softmax result, so the loss and its gradient see the same probabilities.

The fused op goes right after the softmax when the target is defined before
it (so every user of the softmax can take the fused op's), else where the
loss was, and then only when the loss is the softmax's one user.

Before:
    %p = raster.softmax %z : tensor<10xf64>
    %l = raster.cross_entropy %p, %y : (tensor<10xf64>, tensor<10xf64>) -> tensor<f64>
After:
    %l, %p = raster.softmax_cross_entropy %z, %y : (tensor<10xf64>, tensor<10xf64>) -> (tensor<f64>, tensor<10xf64>)
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from raster_mlir.dialects import raster as R

from .greedy import apply_patterns
from .pass_dataclass import pass_dataclass


class CrossEntropyOfSoftmax(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: R.CrossEntropyOp, rewriter: PatternRewriter, /) -> None:
        softmax = op.probs.owner
        if not isinstance(softmax, R.SoftmaxOp) or softmax.parent_block() is not op.parent_block():
            return
        fused = R.SoftmaxCrossEntropyOp.make([softmax.input, op.target])
        fused.location = op.location
        target = op.target.owner
        if not isinstance(target, Operation) or target.is_before_in_block(softmax):
            rewriter.insert(fused, InsertPoint.after(softmax))
            rewriter.replace_all_uses_with(softmax.result, fused.softmax)
        elif softmax.result.has_one_use():
            rewriter.insert(fused, InsertPoint.before(op))
        else:
            return
        rewriter.replace(op, [], [fused.loss])


@pass_dataclass
class FuseSoftmaxCrossEntropyPass(ModulePass):
    """Fuse cross_entropy(softmax z, y) into softmax_cross_entropy (module docstring)."""

    name = "fuse-softmax-cross-entropy"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_patterns(op, [CrossEntropyOfSoftmax()], self.name)
