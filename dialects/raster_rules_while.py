"""Reverse mode through loops whose trip count is only known at run time: raster.while, raster.for with traced bounds.

JAX refuses reverse mode through `while_loop`; here it works like any loop
(raster_loop_adjoint.py), with a growable tape (raster_tape.py) instead of a
workspace buffer sized by the trip count:

1. augment: the forward loop pushes the carries entering each step onto
   tapes (`raster.tape_push`; carries the body only overwrites with
   `dynamic_update` are not taped). A while loop also counts its steps in
   an extra i64 carry: the trip count, recorded at run time.
2. rule: a `raster.for` over the recorded steps, backwards, reads the
   carries of step s back (`raster.tape_get`), recomputes the body from them
   (without the pushes) and applies its adjoint. The condition of a while
   loop is not differentiated: it only decides how many steps run.

The tape's memory grows by doubling while the loop runs and is released
when the compiled function returns; `checkpoint=` needs a static trip count.
"""

from __future__ import annotations

from xdsl.dialects.builtin import DenseArrayBase, i64
from xdsl.ir import Block, Operation

from raster_mlir.dialects import raster as R

from .raster_control import INDEX, ConditionOp, ForOp, WhileOp, YieldOp, clone_block_into
from .raster_loop_adjoint import LoopAdjoint, reverse_loop
from .raster_loop_transforms import Builder, detached_ops, execution_step, insert_before, taped_carries
from .raster_rules_core import ReverseBuilder, RuleSet
from .raster_tape import TapeGetOp, TapeNewOp, TapePushOp

WHILE_RULES = RuleSet("while")

GROWABLE_ATTR = "raster.growable_tapes"  # on an augmented loop: the positions of the carries it tapes


def _is_push(op: Operation) -> bool:
    return isinstance(op, TapePushOp)


def _new_tapes(b: Builder, op: Operation, taped: list[int]) -> list:
    return [b.append(TapeNewOp(op.inits[k].type)).tape for k in taped]


def _push(block: Block, op: Operation, tapes, carries, taped: list[int]) -> None:
    for tape, k in zip(tapes, taped):
        push = TapePushOp(tape, carries[k])
        push.location = op.location
        block.add_op(push)


def _taped(op: Operation) -> list[int]:
    return list(op.attributes[GROWABLE_ATTR].get_values())


def _mark(loop: Operation, op: Operation, taped: list[int]) -> None:
    loop.location = op.location
    loop.attributes[GROWABLE_ATTR] = DenseArrayBase.from_list(i64, taped)


def _tape_rows(rb: Builder, tapes, step, init_args, taped: list[int]) -> list:
    """The carries entering step `step`: tape rows (the init for an untaped carry: never read)."""
    carries = list(init_args)
    for tape, k in zip(tapes, taped):
        carries[k] = rb.append(TapeGetOp(tape, step)).result
    return carries


# ---------------------------------------------------------------------------
# raster.for with run-time bounds


def augment_dynamic_for(sweep, op: ForOp, anchor: Operation) -> ForOp:
    n = len(op.inits)
    taped = taped_carries(op)
    prelude = Block()
    tapes = _new_tapes(Builder(prelude, op), op, taped)
    captures = [*op.captures, *tapes]
    block = Block(arg_types=[INDEX, *(v.type for v in op.inits), *(v.type for v in captures)])
    i, carries = block.args[0], block.args[1 : 1 + n]
    caps, tape_args = block.args[1 + n : 1 + n + len(op.captures)], block.args[1 + n + len(op.captures) :]
    _push(block, op, tape_args, carries, taped)
    block.add_op(YieldOp(*clone_block_into(op.body_block(), block, [i, *carries, *caps])))
    props = {"reverse": op.properties["reverse"]} if op.is_reverse else {}
    loop = ForOp(op.lb, op.ub, list(op.inits), captures, block, props)
    _mark(loop, op, taped)
    insert_before([*detached_ops(prelude), loop], anchor)
    return loop


def growable_for_rule(b: ReverseBuilder, op: ForOp, cts):
    taped = _taped(op)
    n, t = len(op.inits), len(taped)
    n_caps = len(op.captures) - t

    def carries_at_step(rb, j, init_args, extra):
        tapes, (lb, ub) = extra[:t], extra[t:]
        return _tape_rows(rb, tapes, execution_step(rb, op, j, lb, ub), init_args, taped)

    adjoint = LoopAdjoint(
        op=op, n=n, init_operands=[2 + k for k in range(n)], cap_operands=[2 + n + m for m in range(n_caps)],
        body=op.body_block(), body_carries=op.carry_args(), body_caps=op.capture_args()[:n_caps],
        bounds=(op.lb, op.ub), reverse=not op.is_reverse, extra=[*op.captures[n_caps:], op.lb, op.ub],
        carries_at_step=carries_at_step, body_args=lambda j, c, caps, extra: [j, *c, *caps, *extra[:t]],
        skip=_is_push,
    )  # fmt: skip
    return reverse_loop(b, adjoint, cts)


# ---------------------------------------------------------------------------
# raster.while


def augment_while(sweep, op: WhileOp) -> WhileOp:
    n, n_caps = len(op.inits), len(op.captures)
    taped = taped_carries(op)
    prelude = Block()
    pb = Builder(prelude, op)
    tapes = _new_tapes(pb, op, taped)
    inits = [*op.inits, pb.i64(0)]  # the step count
    captures = [*op.captures, *tapes]
    types = [*(v.type for v in inits), *(v.type for v in captures)]

    cond = Block(arg_types=types)
    (pred,) = clone_block_into(op.cond_block(), cond, [*cond.args[:n], *cond.args[n + 1 : n + 1 + n_caps]])
    cond.add_op(ConditionOp(pred))

    body = Block(arg_types=types)
    carries, count = body.args[:n], body.args[n]
    caps, tape_args = body.args[n + 1 : n + 1 + n_caps], body.args[n + 1 + n_caps :]
    _push(body, op, tape_args, carries, taped)
    out = clone_block_into(op.body_block(), body, [*carries, *caps])
    bb = Builder(body, op)
    body.add_op(YieldOp(*out, bb.emit(R.AddOp, [count, bb.i64(1)])))
    loop = WhileOp(inits, captures, cond, body)
    _mark(loop, op, taped)
    insert_before([*detached_ops(prelude), loop], op)
    return loop


@WHILE_RULES.register(WhileOp)
def while_rule(b: ReverseBuilder, op: WhileOp, cts):
    taped = _taped(op)
    n, t = len(op.inits) - 1, len(taped)
    n_caps = len(op.captures) - t
    zero = Builder(b.block, op).i64(0)

    adjoint = LoopAdjoint(
        op=op, n=n, init_operands=list(range(n)), cap_operands=[n + 1 + m for m in range(n_caps)],
        body=op.body_block(), body_carries=op.carry_args()[:n], body_caps=op.capture_args()[:n_caps],
        bounds=(zero, op.res[n]), reverse=True, extra=list(op.captures[n_caps:]),
        carries_at_step=lambda rb, j, init_args, extra: _tape_rows(rb, extra, j, init_args, taped),
        body_args=lambda j, c, caps, extra: [*c, j, *caps, *extra],
        skip=_is_push,
    )  # fmt: skip
    return reverse_loop(b, adjoint, cts)


while_rule.augment = augment_while
