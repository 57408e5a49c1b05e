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

from collections.abc import Sequence

from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import Block, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.errors import GradientError, with_location

from .raster_control import INDEX, ForOp, IfOp, ScanOp, YieldOp, clone_block_into
from .raster_index import DynamicIndexOp
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
from .raster_rules_index import accumulate

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
        from .raster_rules_while import augment_dynamic_for

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


def varied_carries(sweep, block: Block, carry_args, cap_args, yielded, carries: set[int], captures: Sequence[int]) -> set[int]:
    """The carries that carry cotangents (module docstring): a fixed point over the body."""
    carries = {k for k in carries if R.is_float_type(carry_args[k].type)}
    while True:
        wrt = [carry_args[k] for k in carries] + [cap_args[m] for m in captures]
        _, varied = sweep._ops_on_path(list(block.ops), wrt, list(yielded))  # noqa: SLF001
        grown = carries | {k for k, v in enumerate(yielded) if v in varied and R.is_float_type(v.type)}
        if grown == carries:
            return carries
        carries = grown


def _carries_at_step(b: Builder, op: ForOp, j, lb, ub, inits, tapes, taped: list[int]) -> list[SSAValue]:
    """The carries entering the step with index j: the inits at the first step, else tape rows."""
    carries = list(inits)  # untaped carries: any value of the type will do (their value is never read)
    if not taped:
        return carries
    step = execution_step(b, op, j, lb, ub)
    first = b.emit(R.EqualOp, [step, b.i64(0)])
    operands = [step, *(inits[k] for k in taped), *tapes]
    then_block = Block(arg_types=[v.type for v in operands])
    then_block.add_op(YieldOp(*then_block.args[1 : 1 + len(taped)]))
    else_block = Block(arg_types=[v.type for v in operands])
    eb = Builder(else_block, op)
    row = eb.emit(R.SubOp, [else_block.args[0], eb.i64(1)])
    rows = [eb.emit(DynamicIndexOp, [tape, row]) for tape in else_block.args[1 + len(taped) :]]
    else_block.add_op(YieldOp(*rows))
    choice = b.append(IfOp(first, operands, [inits[k].type for k in taped], then_block, else_block))
    for k, value in zip(taped, choice.res):
        carries[k] = value
    return carries


@CONTROL_RULES.register(ForOp)
def for_rule(b: ReverseBuilder, op: ForOp, cts):
    n, taped = taped_positions(op)
    inits, tapes = list(op.inits[:n]), list(op.res[n:])
    caps, (lb, ub) = list(op.captures[:-2]), op.captures[-2:]
    n_operands_before_caps = 2 + len(op.inits)
    body = op.body_block()
    body_caps = op.capture_args()[:-2]
    captures = [m for m, c in enumerate(caps) if b.needs(n_operands_before_caps + m) and R.is_float_type(c.type)]
    carries = sorted(
        varied_carries(
            b.sweep, body, op.carry_args()[:n], body_caps, body.last_op.operands[:n],
            {k for k in range(n) if b.needs(2 + k)}, captures,
        )
    )  # fmt: skip
    if not carries and not captures:
        return [None] * len(op.operands)

    outer = Builder(b.block, op)
    ct_inits = [cts[k] if cts[k] is not None else outer.zeros_like(op.res[k]) for k in carries]
    ct_cap_inits = [outer.zeros_like(caps[m]) for m in captures]
    rev_captures = [*tapes, *inits, *caps, lb, ub]
    block = Block(arg_types=[INDEX, *(v.type for v in ct_inits + ct_cap_inits), *(v.type for v in rev_captures)])
    j = block.args[0]
    ct_c = block.args[1 : 1 + len(carries)]
    ct_cap = block.args[1 + len(carries) : 1 + len(carries) + len(captures)]
    rest = block.args[1 + len(carries) + len(captures) :]
    tape_args, init_args, cap_args, (lb_a, ub_a) = (
        rest[: len(tapes)], rest[len(tapes) : len(tapes) + n], rest[len(tapes) + n : -2], rest[-2:]
    )  # fmt: skip
    rb = Builder(block, op)
    c = _carries_at_step(rb, op, j, lb_a, ub_a, list(init_args), list(tape_args), taped)
    outs = clone_block_into(body, block, [j, *c, *tape_args, *cap_args, lb_a, ub_a])[:n]
    wrt = [c[k] for k in carries] + [cap_args[m] for m in captures]
    output_cts = [ct_c[carries.index(k)] if k in carries else None for k in range(n)]
    cot, _ = b.sweep.adjoint(block, wrt, outs, output_cts)
    next_ct_c = [cot.get(c[k]) or rb.zeros_like(c[k]) for k in carries]
    next_ct_cap = [
        accumulate(rb, ct_cap[idx], cot[cap_args[m]]) if cap_args[m] in cot else ct_cap[idx]
        for idx, m in enumerate(captures)
    ]
    block.add_op(YieldOp(*next_ct_c, *next_ct_cap))
    reverse = ForOp(lb, ub, [*ct_inits, *ct_cap_inits], rev_captures, block, _flipped(op))
    outer.append(reverse)
    result: list[SSAValue | None] = [None] * len(op.operands)
    for idx, k in enumerate(carries):
        result[2 + k] = reverse.res[idx]
    for idx, m in enumerate(captures):
        result[n_operands_before_caps + m] = reverse.res[len(carries) + idx]
    return result


def _flipped(op: ForOp) -> dict:
    """The reverse sweep runs the steps in the opposite order."""
    return {} if op.is_reverse else {"reverse": UnitAttr()}


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
