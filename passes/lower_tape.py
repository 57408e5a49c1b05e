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
"""

from __future__ import annotations

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, MemRefType, i64

from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_tape as T
from raster_mlir.tape_report import GROWABLE_ATTR

from .loop_recipes import Buffer, Scalar, copy_into
from .loop_recipes_index import scalar_of


def _row_bytes(row) -> int:
    size = 1
    for d in row.get_shape():
        size *= d
    return size * row.element_type.bitwidth // 8


def tape_new(lowering, op: T.TapeNewOp, ins) -> None:
    b = lowering.b
    header = b.alloc(T.HEADER)
    header.owner.attributes[GROWABLE_ATTR] = IntegerAttr(_row_bytes(op.tape.type.row), i64)
    b.entry.add_op(T.RtTapeInitOp(header))  # right after the alloc: before any use
    b.add(T.RtTapeResetOp(header))
    lowering.at_return.append(lambda: b.add(T.RtTapeFreeOp(header)))
    lowering.storage[op.tape] = Buffer(header, (4,))


def tape_push(lowering, op: T.TapePushOp, ins) -> None:
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
