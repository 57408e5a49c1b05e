"""The reverse loop of a loop: shared by the rules of raster.for / scan (raster_rules_control.py) and of
loops with a run-time trip count (raster_rules_while.py).

`reverse_loop` emits a `raster.for` that runs the steps of an augmented
forward loop backwards. At each step it gets the carries entering the step
(from the tape: how is the loop rule's business, `carries_at_step`),
recomputes the body from them, and applies the body's adjoint with the
autodiff pass's reverse sweep (`sweep.adjoint`), so loops and branches
nested in the body are differentiated by their own rules. Its carries are
the cotangents of the loop's carries, and the running sums of the
cotangents of the values the body closes over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import UnitAttr
from xdsl.ir import Block, Operation, SSAValue

from raster_mlir.dialects import raster as R

from .raster_control import INDEX, ForOp, YieldOp, clone_block_into
from .raster_loop_transforms import Builder
from .raster_rules_core import ReverseBuilder
from .raster_rules_index import accumulate


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



@dataclass
class LoopAdjoint:
    """What the reverse of one augmented loop needs (built by each loop's rule, run by `reverse_loop`)."""

    op: Operation  # the augmented forward loop
    n: int  # its primal carries (the first n)
    init_operands: list[int]  # operand index of each primal carry's init
    cap_operands: list[int]  # operand index of each value the body closes over
    body: Block  # the augmented body, recomputed at every step
    body_carries: list[SSAValue]  # its primal carry arguments
    body_caps: list[SSAValue]  # its arguments for the closed-over values
    bounds: tuple[SSAValue, SSAValue]  # of the reverse loop
    reverse: bool  # whether the reverse loop counts down
    extra: list[SSAValue]  # further values the reverse body captures (tapes, bounds)
    # (builder, index, init args, extra args) -> the carries entering that step
    carries_at_step: Callable[[Builder, SSAValue, list, list], list[SSAValue]]
    # (index, carries, capture args, extra args) -> the arguments to recompute `body` with
    body_args: Callable[[SSAValue, list, list, list], list[SSAValue]]
    # ops of `body` not to recompute (the pushes onto a growable tape)
    skip: Callable[[Operation], bool] | None = None


def reverse_loop(b: ReverseBuilder, a: LoopAdjoint, cts) -> list[SSAValue | None]:
    """Emit the reverse loop of `a` (module docstring, step 2); the cotangents of a.op's operands."""
    op, n = a.op, a.n
    inits = [op.operands[i] for i in a.init_operands]
    caps = [op.operands[i] for i in a.cap_operands]
    captures = [m for m, i in enumerate(a.cap_operands) if b.needs(i) and R.is_float_type(caps[m].type)]
    carries = sorted(
        varied_carries(
            b.sweep, a.body, a.body_carries, a.body_caps, a.body.last_op.operands[:n],
            {k for k, i in enumerate(a.init_operands) if b.needs(i)}, captures,
        )
    )  # fmt: skip
    if not carries and not captures:
        return [None] * len(op.operands)

    outer = Builder(b.block, op)
    ct_inits = [cts[k] if cts[k] is not None else outer.zeros_like(op.results[k]) for k in carries]
    ct_cap_inits = [outer.zeros_like(caps[m]) for m in captures]
    rev_captures = [*inits, *caps, *a.extra]
    block = Block(arg_types=[INDEX, *(v.type for v in ct_inits + ct_cap_inits), *(v.type for v in rev_captures)])
    j = block.args[0]
    ct_c = block.args[1 : 1 + len(carries)]
    ct_cap = block.args[1 + len(carries) : 1 + len(carries) + len(captures)]
    rest = list(block.args[1 + len(carries) + len(captures) :])
    init_args, cap_args, extra_args = rest[:n], rest[n : n + len(caps)], rest[n + len(caps) :]
    rb = Builder(block, op)
    c = a.carries_at_step(rb, j, init_args, extra_args)
    outs = clone_block_into(a.body, block, a.body_args(j, c, cap_args, extra_args), a.skip)[:n]
    wrt = [c[k] for k in carries] + [cap_args[m] for m in captures]
    output_cts = [ct_c[carries.index(k)] if k in carries else None for k in range(n)]
    cot, _ = b.sweep.adjoint(block, wrt, outs, output_cts)
    next_ct_c = [cot.get(c[k]) or rb.zeros_like(c[k]) for k in carries]
    next_ct_cap = [
        accumulate(rb, ct_cap[idx], cot[cap_args[m]]) if cap_args[m] in cot else ct_cap[idx]
        for idx, m in enumerate(captures)
    ]
    block.add_op(YieldOp(*next_ct_c, *next_ct_cap))
    props = {"reverse": UnitAttr()} if a.reverse else {}
    reverse = outer.append(ForOp(*a.bounds, [*ct_inits, *ct_cap_inits], rev_captures, block, props))
    result: list[SSAValue | None] = [None] * len(op.operands)
    for idx, k in enumerate(carries):
        result[a.init_operands[k]] = reverse.res[idx]
    for idx, m in enumerate(captures):
        result[a.cap_operands[m]] = reverse.res[len(carries) + idx]
    return result
