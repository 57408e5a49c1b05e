"""`canonicalize`: xDSL's canonicalize (folders + each op's canonicalization patterns), bounded.

The same rewrite as `xdsl.transforms.canonicalize.CanonicalizePass`: every op
is folded if it has a folder, else the patterns of its
`HasCanonicalizationPatternsTrait`s are tried in turn (the raster ops' are in
`dialects/raster_canonicalize.py`), trivially dead ops are erased, and the
walk repeats until nothing changes (the dead-code sweep after the last walk,
which changed nothing, is skipped: it would find nothing, `greedy.PatternWalker`). The difference is the bound of
`greedy.py`: patterns that keep rewriting each other's output stop with a
CompileError naming the patterns instead of hanging.

Option `max-rewrites` (0: `REWRITES_PER_OP` per op of the module).

Before:
    %n = raster.neg %x : tensor<4xf64>
    %m = raster.neg %n : tensor<4xf64>
    %y = raster.relu %m : tensor<4xf64>
After:
    %y = raster.relu %x : tensor<4xf64>
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern
from xdsl.traits import HasCanonicalizationPatternsTrait

from raster_mlir.per_class import PerClass

from .dce import region_dce
from .greedy import RewriteBudget, apply_patterns, pattern_name
from .pass_dataclass import pass_dataclass


def trait_patterns(cls: type[Operation]) -> tuple[RewritePattern, ...]:
    return tuple(
        p for trait in cls.get_traits_of_type(HasCanonicalizationPatternsTrait) for p in trait.get_patterns(cls)
    )


@dataclass(eq=False, repr=False)
class CountedCanonicalization(RewritePattern):
    """The canonicalization patterns of the op's traits, in order; the first that applies wins."""

    budget: RewriteBudget
    patterns: PerClass[tuple[RewritePattern, ...]] = field(default_factory=lambda: PerClass(trait_patterns))
    """Per op class, its traits' patterns: gathered once per run (traits scanned once per class;
    not kept across runs: `raster_canonicalize.PATTERNS` is a table one may change)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        for pattern in self.patterns[type(op)]:
            pattern.match_and_rewrite(op, rewriter)
            if rewriter.has_done_action:
                self.budget.spend(pattern_name(pattern), op)
                return


@pass_dataclass
class CanonicalizePass(ModulePass):
    """xDSL's canonicalize with a bound on the number of rewrites (module docstring)."""

    name = "canonicalize"

    max_rewrites: int = 0
    """Stop with a CompileError after this many rewrites (0: 20 per op of the module, at least 1000)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_patterns(
            op, CountedCanonicalization, self.name, max_rewrites=self.max_rewrites,
            ctx=ctx, folding=True, post_walk_func=region_dce, post_walk_settles=True,
        )  # fmt: skip
