"""Reverse rules of the loops and branches (raster.for / scan / if; while: raster_rules_while.py).

A loop is differentiated in two steps (the autodiff pass calls `augment`
before the reverse sweep, the rule during it):

1. augment (forward): the loop is replaced by one that also records its
   carries on a tape, one row per step (raster_loop_transforms.with_tape).
   A scan is first written as the equivalent for loop; a loop with
   `checkpoint = K` as segments of K steps, so only the outer loop's carries
   (one per segment) are taped here.
2. rule (reverse): a second loop runs the steps backwards. Step s reads its
   incoming carry (the init for s = 0, else tape row s - 1), recomputes the
   body from it (a clone: the tape holds carries, not the body's
   intermediate values), and applies the body's adjoint (`sweep.adjoint`,
   the same reverse sweep as a function body, so nested loops and branches
   recurse). Its carries are the cotangents of the loop carries (seeded by
   the results' cotangents) and the running sums of the captures'
   cotangents (a closed-over `k` gets the sum over all steps; a read `xs[i]`
   scatters into the sum in place). The loop index and the xs slices are
   available to the adjoint like any value of the body.

Which carries need cotangents is a fixed point: those whose init depends on
a differentiated argument, plus those the body makes depend on one.

A branch (`raster.if`) differentiates the taken branch: the reverse is a
`raster.if` on the same predicate whose regions recompute their branch and
apply its adjoint, yielding the cotangents of the captures.
"""

from __future__ import annotations


from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import Block, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.errors import GradientError, with_location

from .raster_control import INDEX, ForOp, IfOp, ScanOp, YieldOp, clone_block_into
from .raster_index import ConvertOp, DynamicIndexOp
from .raster_loop_transforms import (
    Builder,
    checkpoint_segments,
    execution_step,
    insert_before,
    scan_as_for,
    static_trip_count,
    taped_positions,
    with_tape,
)
from .raster_rules_core import ReverseBuilder, RuleSet, describe_location
from .raster_loop_adjoint import LoopAdjoint, reverse_loop
from .raster_rules_while import GROWABLE_ATTR, augment_dynamic_for, growable_for_rule

CONTROL_RULES = RuleSet("control")


def _error(message: str, op) -> GradientError:
    return with_location(GradientError(message), describe_location(op))


# ---------------------------------------------------------------------------
# Forward: the augmented loop


def augment_for(sweep, op: ForOp, anchor=None) -> ForOp:
    """Insert (before `anchor`, default `op`) the taped version of `op`; returns it."""
    anchor = anchor or op
    n = static_trip_count(op)
    if n is None:
        return augment_dynamic_for(sweep, op, anchor)
    every = op.checkpoint_every
    if every is not None and n > every:
        prelude, segmented = checkpoint_segments(op, n, every)
        insert_before(prelude, anchor)
        taped = augment_for(sweep, segmented, anchor)
        segmented.erase()
        return taped
    prelude, taped = with_tape(op, n)
    insert_before([*prelude, taped], anchor)
    return taped


def augment_scan(sweep, op: ScanOp) -> ForOp:
    prelude, loop = scan_as_for(op)
    insert_before(prelude, op)
    taped = augment_for(sweep, loop, op)
    loop.erase()
    return taped


# ---------------------------------------------------------------------------
# Reverse


def _carries_at_step(b: Builder, op: ForOp, j, lb, ub, inits, tapes, taped: list[int]) -> list[SSAValue]:
    """The carries entering the step with index j: the inits at the first step, else tape rows.

    An elementwise select (`raster.where`), not a branch: it fuses into the
    loops that read the carry, so no row is copied.
    """
    carries = list(inits)  # untaped carries: any value of the type will do (their value is never read)
    if not taped:
        return carries
    step = execution_step(b, op, j, lb, ub)
    first = b.emit(R.EqualOp, [step, b.i64(0)])
    row = b.emit(R.MaximumOp, [b.emit(R.SubOp, [step, b.i64(1)]), b.i64(0)])
    for k, tape in zip(taped, tapes):
        pred = first if b.dtype(inits[k]) == "i64" else b.emit(ConvertOp, [first], dtype=b.dtype(inits[k]))
        carries[k] = b.emit(R.WhereOp, [pred, inits[k], b.emit(DynamicIndexOp, [tape, row])])
    return carries


@CONTROL_RULES.register(ForOp)
def for_rule(b: ReverseBuilder, op: ForOp, cts):
    if GROWABLE_ATTR in op.attributes:
        return growable_for_rule(b, op, cts)
    n, taped = taped_positions(op)
    tapes = list(op.res[n:])
    n_caps = len(op.captures) - 2
    first_cap = 2 + len(op.inits)

    def carries_at_step(rb, j, init_args, extra):
        tape_args, (lb, ub) = extra[:-2], extra[-2:]
        return _carries_at_step(rb, op, j, lb, ub, list(init_args), list(tape_args), taped)

    def body_args(j, c, cap_args, extra):
        tape_args, (lb, ub) = extra[:-2], extra[-2:]
        return [j, *c, *tape_args, *cap_args, lb, ub]

    adjoint = LoopAdjoint(
        op=op, n=n, init_operands=[2 + k for k in range(n)], cap_operands=[first_cap + m for m in range(n_caps)],
        body=op.body_block(), body_carries=op.carry_args()[:n], body_caps=op.capture_args()[:-2],
        bounds=(op.lb, op.ub), reverse=not op.is_reverse, extra=[*tapes, *op.captures[-2:]],
        carries_at_step=carries_at_step, body_args=body_args,
    )  # fmt: skip
    return reverse_loop(b, adjoint, cts)


for_rule.augment = augment_for


@CONTROL_RULES.register(ScanOp)
def scan_rule(b: ReverseBuilder, op: ScanOp, cts):
    raise _error("autodiff: raster.scan is differentiated as the raster.for that augment_scan makes", op)


scan_rule.augment = augment_scan


# ---------------------------------------------------------------------------
# Branches


@CONTROL_RULES.register(IfOp)
def if_rule(b: ReverseBuilder, op: IfOp, cts):
    caps = list(op.captures)
    captures = [m for m, c in enumerate(caps) if b.needs(1 + m) and R.is_float_type(c.type)]
    given = [(k, ct) for k, ct in enumerate(cts) if ct is not None]
    if not captures or not given:
        return [None] * len(op.operands)
    operands = [*caps, *(ct for _, ct in given)]
    blocks = []
    for source in op.branches():
        block = Block(arg_types=[v.type for v in operands])
        outs = clone_block_into(source, block, block.args[: len(caps)])
        ct_args = dict(zip((k for k, _ in given), block.args[len(caps) :]))
        cot, _ = b.sweep.adjoint(block, [block.args[m] for m in captures], outs, [ct_args.get(k) for k in range(len(outs))])
        bb = Builder(block, op)
        block.add_op(YieldOp(*(cot.get(block.args[m]) or bb.zeros_like(block.args[m]) for m in captures)))
        blocks.append(block)
    reverse = b.append(IfOp(op.pred, operands, [caps[m].type for m in captures], *blocks))
    result: list[SSAValue | None] = [None] * len(op.operands)
    for idx, m in enumerate(captures):
        result[1 + m] = reverse.res[idx]
    return result
