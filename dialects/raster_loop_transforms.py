"""Rewrites of loops that reverse mode builds on (used by raster_rules_control.py).

1. `scan_as_for`: a `raster.scan` as the equivalent `raster.for`: xs are
   captures read with `dynamic_index`, ys are carries written with
   `dynamic_update` (initialised with `raster.empty`). One reverse rule then
   serves both ops; the ys carries are outputs nobody reads, so they are not
   taped (step 3).

2. `checkpoint_segments`: a loop of N steps with `checkpoint = K` as a loop
   of ceil(N / K) segments whose body is a loop of K steps (the steps past N
   of the last segment are skipped by a `raster.if`). Differentiated
   normally, the outer loop tapes one carry per segment and the inner one,
   recomputed from that carry in the reverse sweep, K carries: about
   N / K + K carries in memory instead of N.

3. `with_tape`: the augmented forward loop. It has one more carry per taped
   carry, a `tensor<(N-1) x ...>` tape started as `raster.empty`; step s
   (counted in execution order) writes its incoming carry at row s - 1
   (step 0 writes row 0, which step 1 overwrites: the first carry is the
   loop's init and needs no row). A carry is not taped when the body only
   overwrites parts of it (`dynamic_update`) and yields the result: its old
   value is never needed to differentiate the body (recorded outputs such
   as `hist.at[i].set(x)` and a scan's ys).

Loops rewritten here keep their trip count static; a loop with run-time
bounds gets a growable tape instead (raster_rules_control.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import IntegerAttr, TensorType, UnitAttr, i64
from xdsl.ir import Block, Operation, SSAValue

from raster_mlir.dialects import raster as R

from .raster_control import INDEX, ForOp, IfOp, ScanOp, YieldOp, clone_block_into
from .raster_index import DynamicIndexOp, DynamicUpdateAddOp, DynamicUpdateOp, EmptyOp
from .raster_rules_core import RuleBuilder

TAPE_ATTR = "raster.tape"  # on the raster.empty of a tape (and its memref.alloc): rows = carries it holds
TAPE_LOOP_ATTR = "raster.tape_loop"  # which loop a tape belongs to (the tapes of one loop hold the same steps)
GROWABLE_ATTR = "raster.growable_tape"  # on the header of a growable tape (lower_tape.py): bytes per row
_loop_ids = iter(range(1 << 62))
TAPED_ATTR = "raster.taped_carries"  # on an augmented loop: how many trailing carries are tapes


def static_int(value: SSAValue) -> int | None:
    """The value of a `raster.fill` of i64, else None."""
    owner = getattr(value, "owner", None)
    if isinstance(owner, R.FillOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def static_trip_count(op: ForOp) -> int | None:
    lb, ub = static_int(op.lb), static_int(op.ub)
    return None if lb is None or ub is None else max(ub - lb, 0)


class Builder(RuleBuilder):
    """Appends ops to a block with the location of `primal`; integer helpers for index arithmetic."""

    def i64(self, value: int) -> SSAValue:
        return self.emit(R.FillOp, [], value=int(value), shape=(), dtype="i64")

    def empty(self, t: TensorType, tape_rows: int | None = None, loop_id: int = 0) -> SSAValue:
        op = self.append(EmptyOp.make([], shape=R.shape_of(t), dtype=R.dtype_of(t)))
        if tape_rows is not None:
            op.attributes[TAPE_ATTR] = IntegerAttr(tape_rows, i64)
            op.attributes[TAPE_LOOP_ATTR] = IntegerAttr(loop_id, i64)
        return op.results[0]


def _props(op: Operation, **changes) -> dict:
    """The loop's reverse/checkpoint properties, with changes (None removes one)."""
    props = {k: v for k, v in op.properties.items() if k in ("reverse", "checkpoint")}
    for key, value in changes.items():
        props.pop(key, None)
        if value is True:
            props[key] = UnitAttr()
        elif value not in (None, False):
            props[key] = IntegerAttr(value, i64)
    return props


# ---------------------------------------------------------------------------
# 1. scan -> for


def scan_as_for(op: ScanOp) -> tuple[list[Operation], ForOp]:
    """The raster.for computing the same (carries..., ys...) as `op`, after the ops it needs (not inserted)."""
    outside = Block()
    b = Builder(outside, op)
    n, n_xs = len(op.inits), len(op.xs)
    ys_types = [r.type for r in op.ys_results()]
    lb, ub = b.i64(0), b.i64(op.trip_count)
    inits = [*op.inits, *(b.empty(t) for t in ys_types)]
    captures = [*op.xs, *op.captures]
    block = Block(arg_types=[INDEX, *[v.type for v in inits], *[v.type for v in captures]])
    i, carries = block.args[0], block.args[1 : 1 + len(inits)]
    xs_args, cap_args = block.args[1 + len(inits) : 1 + len(inits) + n_xs], block.args[1 + len(inits) + n_xs :]
    inner = Builder(block, op)
    if op.trip_count == 0:  # the body never runs, and an empty axis cannot be indexed: any value of the type
        slices = [inner.emit(R.FillOp, [], value=0.0, shape=R.shape_of(x.type)[1:], dtype=R.dtype_of(x.type)) for x in xs_args]
    else:
        slices = [inner.emit(DynamicIndexOp, [x, i]) for x in xs_args]
    out = clone_block_into(op.body_block(), block, [i, *carries[:n], *slices, *cap_args])
    if op.trip_count == 0:  # empty ys stay as they are
        ys = list(carries[n:])
    else:
        ys = [inner.emit(DynamicUpdateOp, [acc, y, i]) for acc, y in zip(carries[n:], out[n:])]
    block.add_op(YieldOp(*out[:n], *ys))
    loop = ForOp(lb, ub, inits, captures, block, _props(op))
    loop.location = op.location
    return detached_ops(outside), loop


def detached_ops(block: Block) -> list[Operation]:
    """`block`'s ops, detached (to insert elsewhere)."""
    ops = list(block.ops)
    for op in ops:
        op.detach()
    return ops


def insert_before(ops: Sequence[Operation], before: Operation) -> None:
    """Insert `ops` (in order) before `before`."""
    block = before.parent_block()
    for op in ops:
        block.insert_op_before(op, before)


# ---------------------------------------------------------------------------
# 2. checkpointing: segments of K steps


def checkpoint_segments(op: ForOp, n: int, k: int) -> tuple[list[Operation], ForOp]:
    """`op` (N = n static steps, checkpoint K) as an outer loop over segments of an inner loop of K steps."""
    outside = Block()
    b = Builder(outside, op)
    segments = math.ceil(n / k)
    carries = list(op.inits)
    carry_types = [v.type for v in carries]
    captures = [op.lb, *op.captures]
    outer = Block(arg_types=[INDEX, *carry_types, *[v.type for v in captures]])
    g, outer_carries = outer.args[0], outer.args[1 : 1 + len(carries)]
    outer_lb, outer_caps = outer.args[1 + len(carries)], outer.args[2 + len(carries) :]
    ob = Builder(outer, op)
    # Segment g covers steps g*K .. g*K+K-1 in execution order (from the end when reversed).
    first_step = ob.emit(R.MulOp, [g, ob.i64(k)])
    inner_args = [first_step, outer_lb, *outer_caps]
    inner = Block(arg_types=[INDEX, *carry_types, *[v.type for v in inner_args]])
    t, inner_carries = inner.args[0], inner.args[1 : 1 + len(carries)]
    first, lb, caps = inner.args[1 + len(carries)], inner.args[2 + len(carries)], inner.args[3 + len(carries) :]
    ib = Builder(inner, op)
    step = ib.emit(R.AddOp, [first, t])
    # The primal index of execution step s: lb + s, or lb + N - 1 - s when reversed.
    offset = ib.emit(R.SubOp, [ib.i64(n - 1), step]) if op.is_reverse else step
    index = ib.emit(R.AddOp, [lb, offset])
    if segments * k == n:
        out = clone_block_into(op.body_block(), inner, [index, *inner_carries, *caps])
    else:
        out = _guarded_step(ib, op, step, n, index, inner_carries, caps)
    inner.add_op(YieldOp(*out))
    inner_loop = ForOp(ob.i64(0), ob.i64(k), list(outer_carries), inner_args, inner)
    inner_loop.location = op.location
    ob.append(inner_loop)
    outer.add_op(YieldOp(*inner_loop.res))
    loop = ForOp(b.i64(0), b.i64(segments), carries, captures, outer)
    loop.location = op.location
    return detached_ops(outside), loop


def _guarded_step(ib: Builder, op: ForOp, step, n: int, index, carries, caps) -> list[SSAValue]:
    """rm.cond(step < N, body, identity) over the carries: the padding steps of the last segment."""
    live = ib.emit(R.GreaterOp, [ib.i64(n), step])
    operands = [index, *carries, *caps]
    then_block = Block(arg_types=[v.type for v in operands])
    out = clone_block_into(op.body_block(), then_block, list(then_block.args))
    then_block.add_op(YieldOp(*out))
    else_block = Block(arg_types=[v.type for v in operands])
    else_block.add_op(YieldOp(*else_block.args[1 : 1 + len(carries)]))
    branch = ib.append(IfOp(live, operands, [c.type for c in carries], then_block, else_block))
    return list(branch.res)


# ---------------------------------------------------------------------------
# 3. the augmented loop: a tape of carries


def untaped_carries(op: ForOp) -> set[int]:
    """Carries whose old value the reverse sweep never needs (module docstring, step 3)."""
    block = op.body_block()
    yielded = block.last_op.operands
    out = set()
    for k, arg in enumerate(op.carry_args()):
        value, ok = arg, True
        while ok:
            uses = list(value.uses)
            if len(uses) != 1:
                ok = False
                break
            user, index = uses[0].operation, uses[0].index
            if user is block.last_op:
                ok = index == k
                break
            ok = isinstance(user, (DynamicUpdateOp, DynamicUpdateAddOp)) and index == 0
            value = user.results[0]
        if ok:
            out.add(k)
    return out


def taped_carries(op: ForOp) -> list[int]:
    """Positions of the carries the reverse sweep needs the old value of (the complement of untaped_carries)."""
    untaped = untaped_carries(op)
    return [k for k in range(len(op.inits)) if k not in untaped]


def execution_step(b: Builder, op: ForOp, index: SSAValue, lb: SSAValue, ub: SSAValue) -> SSAValue:
    """How many steps ran before the one with this primal index (reverse loops count from ub - 1)."""
    if op.is_reverse:
        return b.emit(R.SubOp, [b.emit(R.SubOp, [ub, b.i64(1)]), index])
    return b.emit(R.SubOp, [index, lb])


def with_tape(op: ForOp, n: int) -> tuple[list[Operation], ForOp]:
    """The augmented loop (module docstring, step 3), after the ops it needs (the empty tapes)."""
    carries = list(op.inits)
    taped = [] if n <= 1 else taped_carries(op)
    outside = Block()
    b = Builder(outside, op)
    tape_types = [TensorType(carries[k].type.element_type, [n - 1, *carries[k].type.get_shape()]) for k in taped]
    loop_id = next(_loop_ids)
    tapes = [b.empty(t, tape_rows=n - 1, loop_id=loop_id) for t in tape_types]
    captures = [*op.captures, op.lb, op.ub]
    block = Block(arg_types=[INDEX, *[c.type for c in carries], *tape_types, *[c.type for c in captures]])
    i = block.args[0]
    carry_args = block.args[1 : 1 + len(carries)]
    tape_args = block.args[1 + len(carries) : 1 + len(carries) + len(taped)]
    cap_args = block.args[1 + len(carries) + len(taped) :]
    lb, ub = cap_args[-2], cap_args[-1]
    ib = Builder(block, op)
    if taped:
        step = execution_step(ib, op, i, lb, ub)
        row = ib.emit(R.MaximumOp, [ib.emit(R.SubOp, [step, ib.i64(1)]), ib.i64(0)])
        new_tapes = [ib.emit(DynamicUpdateOp, [tape, carry_args[k], row]) for tape, k in zip(tape_args, taped)]
    else:
        new_tapes = []
    out = clone_block_into(op.body_block(), block, [i, *carry_args, *cap_args[:-2]])
    block.add_op(YieldOp(*out, *new_tapes))
    loop = ForOp(op.lb, op.ub, [*carries, *tapes], captures, block, _props(op, checkpoint=None))
    loop.location = op.location
    loop.attributes[TAPED_ATTR] = IntegerAttr(len(taped), i64)
    return detached_ops(outside), loop


def taped_positions(op: ForOp) -> tuple[int, list[int]]:
    """(number of primal carries, positions of the taped ones) of an augmented loop."""
    tapes = op.attributes[TAPED_ATTR].value.data
    n = len(op.inits) - tapes
    tape_sources = []
    yielded, carry_args = op.body_block().last_op.operands, op.carry_args()
    for k in range(tapes):
        tape_sources.append(carry_args.index(yielded[n + k].owner.value))
    return n, tape_sources


__all__ = [
    "scan_as_for", "checkpoint_segments", "with_tape", "taped_positions", "taped_carries", "untaped_carries",
    "static_trip_count", "static_int", "insert_before", "detached_ops", "execution_step", "Builder",
    "TAPE_ATTR", "TAPE_LOOP_ATTR", "TAPED_ATTR",
]  # fmt: skip
