"""Lowering of the growable tapes (dialects/raster_tape.py) for `lower-to-loops`.

A tape value lives in a header buffer `memref<4xi64>` (a workspace slice:
{data pointer, rows, capacity, unused}):

- `raster.tape_new`: the header is allocated in the entry block and set to
  "no rows, no memory" there (`raster.rt_tape_init`), once per call; where
  the op stands (maybe inside a loop) it only empties the tape
  (`raster.rt_tape_reset`), so a tape re-made at every outer iteration
  reuses its memory; just before the function returns, the memory is
  released (`raster.rt_tape_free`);
- `raster.tape_push %t, %v`: `raster.rt_tape_push` copies v's buffer in as
  a row (a scalar value is stored to a one-element buffer first);
- `raster.tape_get %t[%k]`: `raster.rt_tape_read` copies row k into the
  result's buffer.

The header carries the attribute `raster.growable_tape` (bytes per row)
for `CompiledFunction.tape_report()`.

A tape nothing reads (no `raster.tape_get` on it, in any body it is
captured into) is not filled: its pushes lower to nothing and it is not
reported. The reverse sweep tapes every carry of a while loop, and
dead-code elimination then drops the reads of the carries the adjoint does
not need (a damped spring's velocity), which leaves such tapes.
"""

from __future__ import annotations

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, MemRefType, UnitAttr, i64
from xdsl.ir import Operation, SSAValue

from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_tape as T
from raster_mlir.dialects.raster_loop_transforms import GROWABLE_ATTR  # (not from tape_report: lower-to-loops need not import it)

from .loop_recipes import Buffer, Scalar, copy_into
from .loop_recipes_index import scalar_of


def _row_bytes(row) -> int:
    size = 1
    for d in row.get_shape():
        size *= d
    return size * row.element_type.bitwidth // 8


UNREAD = "raster.unread_tape"  # on a tape_push whose tape nothing reads: it lowers to nothing


def _pushes_if_unread(tape: SSAValue) -> list[Operation] | None:
    """The pushes onto `tape` if no tape_get reads it, else None.

    Follows the tape into region bodies: a region op binds each capture to
    the last block arguments of every block of its regions."""
    pushes, pending = [], [tape]
    while pending:
        value = pending.pop()
        for use in value.uses:
            user = use.operation
            if isinstance(user, T.TapeGetOp):
                return None
            if isinstance(user, T.TapePushOp):
                pushes.append(user)
                continue
            captures = list(getattr(user, "captures", ()))
            if not user.regions or not any(c is value for c in captures):
                return None  # a use we do not know: keep the tape
            for m, c in enumerate(captures):
                if c is value:
                    pending.extend(blk.args[len(blk.args) - len(captures) + m] for r in user.regions for blk in r.blocks)
    return pushes


def tape_new(lowering, op: T.TapeNewOp, ins) -> None:
    b = lowering.b
    header = b.alloc(T.HEADER)
    unread = _pushes_if_unread(op.tape)
    for push in unread or ():
        push.attributes[UNREAD] = UnitAttr()
    if unread is None:
        header.owner.attributes[GROWABLE_ATTR] = IntegerAttr(_row_bytes(op.tape.type.row), i64)
    b.entry.add_op(T.RtTapeInitOp(header))  # right after the alloc: before any use
    b.add(T.RtTapeResetOp(header))
    lowering.at_return.append(lambda: b.add(T.RtTapeFreeOp(header)))
    lowering.storage[op.tape] = Buffer(header, (4,))


def tape_push(lowering, op: T.TapePushOp, ins) -> None:
    if UNREAD in op.attributes:
        return
    b = lowering.b
    header, value = ins
    if isinstance(value, Scalar):  # a buffer to copy from
        row = op.value.type
        buf = Buffer(b.alloc(MemRefType(row.element_type, row.get_shape())), value.shape)
        copy_into(b, value, buf)
        value = buf
    b.add(T.RtTapePushOp(header.ref, value.ref))


def tape_get(lowering, op: T.TapeGetOp, ins) -> None:
    b = lowering.b
    header, index = ins
    row = op.result.type
    out = Buffer(b.alloc(MemRefType(row.element_type, row.get_shape())), R.shape_of(row))
    k = b.add(arith.IndexCastOp(scalar_of(b, index), IndexType()))
    b.add(T.RtTapeReadOp(header.ref, k, out.ref))
    lowering.storage[op.result] = out


STATE_LOWERINGS = {T.TapeNewOp: tape_new, T.TapePushOp: tape_push, T.TapeGetOp: tape_get}
