"""A greedy pattern driver with a bound: a rewrite that does not converge is a CompileError.

xDSL's `PatternRewriteWalker` applies patterns until none matches; a pattern
that keeps matching its own output (`x -> neg(neg(x))` next to a
`neg(neg(x)) -> x`, or a rewrite that rebuilds the op it matched) makes it
loop forever. `apply_patterns` runs the same walker over the same patterns,
but counts the rewrites each pattern performs; past `max_rewrites` (by
default `REWRITES_PER_OP` per op of the module, at least `MIN_REWRITES`) it
stops with a `CompileError` naming the pass, the patterns that fired most
and the op the last one fired on, instead of hanging:

    CompileError: canonicalize: the greedy rewrite did not converge after 3000 rewrites
      (a pattern keeps matching its own output?); rewrites per pattern: DoubleNeg 1500, NegNeg 1500;
      last: NegNeg on raster.neg at model.py:12

A converging rewrite is unaffected: the count only grows when a pattern
changes the IR. Pattern passes of raster_mlir and the worked examples of
docs/ use this driver; `canonicalize.py` is xDSL's canonicalize on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.folder import Folder
from xdsl.ir import Block, Operation, Region
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriterListener,
    PatternRewriteWalker,
    RewritePattern,
)

from raster_mlir.errors import CompileError
from raster_mlir.ir_walk import region_ops, walk_ops

from .op_facts import facts, is_dead

REWRITES_PER_OP = 20  # a converging rewrite changes each op a few times at most
MIN_REWRITES = 1000


class _BudgetExhausted(BaseException):
    """Raised from inside the walk. A BaseException: xDSL's walker turns an `Exception` raised
    by a pattern into a diagnostic on the op, which would hide which pattern looped."""


@dataclass(eq=False, repr=False)
class RewriteBudget:
    """Counts rewrites per pattern for one pass run; raises `_BudgetExhausted` past `limit`."""

    pass_name: str
    limit: int
    fired: Counter = field(default_factory=Counter)
    total: int = 0  # sum of `fired`, kept rather than summed on every rewrite
    last: tuple[str, Operation] | None = None

    def spend(self, pattern: str, op: Operation) -> None:
        self.fired[pattern] += 1
        self.total += 1
        self.last = (pattern, op)
        if self.total > self.limit:
            raise _BudgetExhausted()

    def error(self) -> CompileError:
        top = ", ".join(f"{name} {count}" for name, count in self.fired.most_common(4))
        where = ""
        if self.last is not None:
            name, op = self.last
            where = f"; last: {name} on {op.name}"
            loc = getattr(op, "location", None)
            if loc is not None and "unknown" not in str(loc):
                where += f" at {loc}"
        return CompileError(
            f"{self.pass_name}: the greedy rewrite did not converge after {self.limit} rewrites "
            f"(a pattern keeps matching its own output?); rewrites per pattern: {top}{where}"
        )


def pattern_name(pattern: RewritePattern) -> str:
    return type(pattern).__name__


@dataclass(eq=False, repr=False)
class CountedPattern(RewritePattern):
    """`pattern`, charging `budget` each time it changes the IR."""

    pattern: RewritePattern
    budget: RewriteBudget

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        self.pattern.match_and_rewrite(op, rewriter)
        if rewriter.has_done_action:
            self.budget.spend(pattern_name(self.pattern), op)


@dataclass(eq=False, repr=False)
class PatternApplier(GreedyRewritePatternApplier):
    """xDSL's `GreedyRewritePatternApplier`, asking the op's class (`op_facts.py`) whether it is
    removable and has a folder instead of scanning its traits on every visit; same decisions."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if self.dce_enabled and is_dead(op):
            rewriter.erase(op)
            return
        if self.folding_enabled and facts(type(op)).folds:
            if self.ctx is None:
                raise ValueError("Context is required for folding")
            folded = Folder(self.ctx).try_fold(op)
            if folded is not None:
                folded_values, folded_ops = folded
                rewriter.replace(op, new_ops=folded_ops, new_results=folded_values)
                return
        for pattern in self.rewrite_patterns:
            pattern.match_and_rewrite(op, rewriter)
            if rewriter.has_done_action:
                return


class OpWorklist:
    """The walker's worklist (what xDSL's `Worklist` does, with its interface: truth, push, pop,
    remove), our own so that no private name of xDSL's is needed: a last-in-first-out stack of ops
    without duplicates, where a removed op leaves a None behind (O(1) removal), and a map keyed by
    the ops' ids (an op's hash is a Python-level method, `id(op)` as IRDL ops define it, which
    xDSL's keys would call on every push and pop). The ops in the stack are alive, so the ids in
    the map are theirs."""

    __slots__ = ("_stack", "_map")

    def __init__(self) -> None:
        self._stack: list[Operation | None] = []
        self._map: dict[int, int] = {}  # id(op) -> its index in the stack

    def __bool__(self) -> bool:
        stack = self._stack
        while stack and stack[-1] is None:  # (removed ops at the top)
            stack.pop()
        return bool(stack)

    def push(self, item: Operation) -> None:
        key = id(item)
        if key not in self._map:
            self._map[key] = len(self._stack)
            self._stack.append(item)

    def pop(self) -> Operation:
        try:
            while (item := self._stack.pop()) is None:
                pass
        except IndexError:
            raise IndexError("pop from empty worklist") from None
        del self._map[id(item)]
        return item

    def remove(self, item: Operation) -> None:
        index = self._map.pop(id(item), None)
        if index is not None:
            self._stack[index] = None


@dataclass(eq=False, repr=False)
class PatternWalker(PatternRewriteWalker):
    """xDSL's `PatternRewriteWalker` with `OpWorklist`, filling it from a list of the region's ops
    instead of xDSL's chain of walk generators (the same ops in the same order).

    With `post_walk_settles`, `post_walk_func` is known to leave nothing for itself to do (dead-code
    elimination): after a sweep that changed nothing, the IR is what its last run left, so it is not
    run again (xDSL runs it after every sweep, the last one included)."""

    _worklist: OpWorklist = field(default_factory=OpWorklist, init=False)  # (xDSL's field, replaced)
    post_walk_settles: bool = False

    def rewrite_region(self, region: Region) -> bool:
        if not self.post_walk_settles or self.post_walk_func is None or not self.apply_recursively:
            return super().rewrite_region(region)
        # xDSL's loop, with the post-walk skipped after a sweep that changed nothing (but the first).
        listener = self._get_rewriter_listener()
        self._populate_worklist(region)
        modified = self._process_worklist(listener)
        modified |= self.post_walk_func(region, listener)
        changed = modified
        while modified:
            self._populate_worklist(region)
            modified = self._process_worklist(listener)
            if modified:
                modified |= self.post_walk_func(region, listener)
        return changed

    def _populate_worklist(self, op: Operation | Region | Block) -> None:
        if not isinstance(op, Region) or self.walk_reverse or self.walk_regions_first:
            super()._populate_worklist(op)
            return
        # xDSL walks with reverse=True, region_first=True: the pre-order list reversed.
        ops = region_ops(op)
        ops.reverse()
        push = self._worklist.push
        for nested in ops:
            push(nested)


def default_limit(root: Operation | Region) -> int:
    ops = len(walk_ops(root)) if isinstance(root, Operation) else len(region_ops(root))
    return max(MIN_REWRITES, REWRITES_PER_OP * ops)


def apply_patterns(
    root: Operation,
    patterns: Sequence[RewritePattern] | Callable[[RewriteBudget], RewritePattern],
    pass_name: str,
    *,
    max_rewrites: int = 0,
    ctx: Context | None = None,
    folding: bool = False,
    post_walk_func: Callable[[Region, PatternRewriterListener], bool] | None = None,
    post_walk_settles: bool = False,
    **walker_options,
) -> bool:
    """Rewrite every op nested in `root` with `patterns` until none applies; True if the IR changed.

    `patterns` is a list (tried in order on each op, as `GreedyRewritePatternApplier`
    does) or a function that builds one pattern from the budget (for patterns found
    per op, as canonicalize does). `max_rewrites` 0 means the default bound. `post_walk_settles`:
    `post_walk_func` changes nothing when run again on what it left (`PatternWalker`).
    """
    budget = RewriteBudget(pass_name, max_rewrites or default_limit(root))
    if callable(patterns) and not isinstance(patterns, RewritePattern):
        counted = [patterns(budget)]
    else:
        counted = [CountedPattern(p, budget) for p in patterns]
    applier = PatternApplier(counted, ctx=ctx, folding_enabled=folding)
    walker = PatternWalker(
        applier, post_walk_func=post_walk_func, post_walk_settles=post_walk_settles, **walker_options
    )
    try:
        changed = False
        for region in root.regions:
            changed |= walker.rewrite_region(region)
        return changed
    except _BudgetExhausted:
        raise budget.error() from None
