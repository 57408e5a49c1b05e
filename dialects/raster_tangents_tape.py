"""Tangents of growable tapes: forward mode over the reverse pass of a loop with a run-time trip count.

The gradient of `rm.while_loop` (or `rm.fori_loop` with traced bounds) pushes
each step's carries onto a growable tape (`raster.tape_push`) and its
reverse loop reads them back (`raster.tape_get`); raster_rules_while.py. An
hvp, jacfwd or jvp of that gradient needs the tangents of those rows too, so a
tape whose pushed rows vary gets a tangent tape, a second tape of the same
row type:

    %t  = raster.tape_new : !raster.tape<tensor<3xf64>>
    %dt = raster.tape_new : !raster.tape<tensor<3xf64>>         // its tangent
    ... raster.tape_push %t, %c ...  raster.tape_push %dt, %dc ...   // in the loop
    ... %r = raster.tape_get %t[%k] ...  %dr = raster.tape_get %dt[%k] ...

The push's tangent rule pushes the row's tangent (zeros if the row does not
vary) onto the tangent tape; the read's reads row k of it. The loops' own
tangent rules (raster_tangents_control.py) carry the tangent tape into their
bodies like any captured value with a tangent.

Which tapes need one is known only while the tangents are propagated (a
push of a varying row). The tape is made before the loop, where nothing has
a tangent yet, so `forward-ad` numbers the tapes of the function it
differentiates (`label_tapes`: attribute `raster.tape_id` on each tape_new and
on the pushes and reads of its tape), and a push of a varying row onto a tape
without a tangent raises `TangentTapeNeeded`; the pass then builds the tangent
function again with that tape_new marked (`raster.tangent_tape`), once per such
tape. The propagation makes a tangent tape right after each marked tape_new
(`seed_tangent_tape`), wherever it sits: in a loop body, or in the clones of
that body which the loops' tangent rules propagate. A tape whose rows do not
vary gets none and costs nothing. The attributes are removed at the end.

Rows are read back by index, so the primal loop that the tangent loop
recomputes (JAX's convention, raster_tangents_control.py) pushing the same
rows a second time is harmless: the reverse loop reads rows 0..n-1, which
the first run pushed, and the tangent tape holds exactly those n rows'
tangents.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntegerAttr, UnitAttr, i64
from xdsl.ir import Block, BlockArgument, Operation, SSAValue

from raster_mlir.errors import GradientError, with_location

from .raster_rules_core import TangentBuilder, describe_location
from .raster_rules_while import WHILE_RULES
from .raster_tape import TapeGetOp, TapeNewOp, TapePushOp

TAPE_ID = "raster.tape_id"
TANGENT_TAPE = "raster.tangent_tape"  # on a tape_new whose tape gets a tangent tape


class TangentTapeNeeded(Exception):
    """A varying row is pushed onto tape number `tape`, which has no tangent tape yet (forward-ad retries)."""

    def __init__(self, tape: int):
        super().__init__(f"tape {tape} needs a tangent tape")
        self.tape = tape


def _tape_origin(value: SSAValue) -> TapeNewOp | None:
    """The `raster.tape_new` a tape value comes from, through the captures of the region ops around it."""
    while isinstance(value, BlockArgument):
        owner = value.block.parent_op()
        captures = getattr(owner, "captures", None)
        if captures is None:
            return None
        k = value.index - (len(value.block.args) - len(captures))  # captures are the last block arguments
        if k < 0:
            return None
        value = captures[k]
    return value.owner if isinstance(value.owner, TapeNewOp) else None


def label_tapes(block: Block) -> list[TapeNewOp]:
    """The tapes made in `block` (nested ones too), numbered in order; the number (TAPE_ID) goes on
    each `raster.tape_new` and on the pushes and reads of its tape."""
    tapes = [op for op in block.walk() if isinstance(op, TapeNewOp)]
    numbers = {tape: k for k, tape in enumerate(tapes)}
    for tape, k in numbers.items():
        tape.attributes[TAPE_ID] = IntegerAttr(k, i64)
    for op in block.walk():
        if isinstance(op, (TapePushOp, TapeGetOp)):
            origin = _tape_origin(op.tape)
            if origin in numbers:
                op.attributes[TAPE_ID] = origin.attributes[TAPE_ID]
    return tapes


def mark_tangent_tapes(tapes: list[TapeNewOp], numbers) -> None:
    """Mark the tapes `numbers` (of `label_tapes`) as having a tangent tape; their clones keep the mark."""
    for k in numbers:
        tapes[k].attributes[TANGENT_TAPE] = UnitAttr()


def unlabel_tapes(block: Block) -> None:
    for op in block.walk():
        op.attributes.pop(TAPE_ID, None)
        op.attributes.pop(TANGENT_TAPE, None)


def seed_tangent_tape(block: Block, op: Operation, tangents: dict) -> None:
    """For a marked `raster.tape_new` just added to `block`: its tangent tape, made right after it.

    (Called by forward-ad's propagation for every op without a tangent operand: a tape is made
    from nothing, so no tangent rule would ever be asked for its tangent. Where it sits, in a loop
    body or a clone of one, its tangent tape is made too.)
    """
    if isinstance(op, TapeNewOp) and TANGENT_TAPE in op.attributes:
        new = TapeNewOp(op.tape.type.row)
        new.location = op.location
        block.add_op(new)
        tangents[op.tape] = new.tape


def _tape_number(op: Operation) -> int:
    number = op.attributes.get(TAPE_ID)
    if number is None:  # a tape the function does not make itself: nothing to seed
        raise with_location(
            GradientError(f"forward-ad: {op.name} pushes a varying row onto a tape made outside the differentiated function"),
            describe_location(op),
        )
    return number.value.data


@WHILE_RULES.register_tangent(TapePushOp)
def push_tangent(b: TangentBuilder, op: TapePushOp, tangents):
    tape_t, row_t = tangents
    if tape_t is None:
        raise TangentTapeNeeded(_tape_number(op))
    b.append(TapePushOp(tape_t, row_t if row_t is not None else b.zeros_like(op.value)))
    return []


@WHILE_RULES.register_tangent(TapeGetOp)
def get_tangent(b: TangentBuilder, op: TapeGetOp, tangents):
    tape_t, _ = tangents  # the index is an integer: only the tape can have a tangent
    return [b.append(TapeGetOp(tape_t, op.index)).result]
