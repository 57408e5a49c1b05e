"""Chunks that start at a buffer's 64-byte boundaries (for `skip-zero-chunks`).

Why: numpy allocates a large array 16 bytes past a 64-byte boundary, so
chunks counted from element 0 of its rows make every 512-bit load and store
of a chunk straddle two cache lines (a 784-128-10 f64 step on dense data:
about a fifth slower than with a 64-byte aligned W1). Counting the chunks
from the row's first boundary instead makes every chunk one cache line.

The frame of a row of Cv = L * n columns (L lanes of a chunk, L * itemsize =
the chunk bytes), computed once per call from the buffer's address p:

    s = ((-p) mod chunk_bytes) / itemsize       the first column on a boundary
    head  columns [0, s)         one masked chunk at column s - L, lanes L-s .. L-1 set
    body  columns [s, Cv - t)    full chunks at s, s + L, s + 2L, ...: each one cache line
    tail  columns [Cv - t, Cv)   one masked chunk at column Cv - t, lanes 0 .. t-1 set,
                                 t = (L - s) mod L

Every row of the buffer has the same frame because a row's bytes are a
multiple of the chunk bytes (`frame_applies`). With s = 0 (an aligned array)
the masks have no lane set and the body is the chunks from element 0.

Lane k of every chunk of the frame holds a column congruent to s + k modulo
L (the head's masked-off lanes k < L - s would be the columns before 0):
the lanes are those of the chunks from element 0 rotated by s. Element-wise
work (an update) is the same in any frame. A dot product keeps one partial
sum per lane, and a partial sum receives the same terms in the same order
(increasing column) in every frame, apart from terms W * 0 of columns where
the input is zero, which add nothing; the final sum of the L lanes, a
halving tree (lane l + lane l + L/2, ...), pairs lanes that differ by L/2,
L/4, ..., 1, which a rotation keeps paired. So the results do not depend on
the alignment, bit for bit (tests/test_chunk_alignment.py).

The masked accesses address the whole 64-byte line around the head and the
tail; the lanes outside the row are never touched (`vector.maskedload`).

The input x has an alignment of its own (a row of numpy's X, 16 bytes past a
boundary, against a W 32 bytes past one): its chunks at the same columns
would straddle lines instead of W's (a 784-128-10 f64 step about 7% slower).
So the chunk scan, which reads x's row anyway, also copies it into a 64-byte
aligned buffer at W's alignment, xs[j + t] = x[j], and the chunks read xs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from xdsl.dialects import arith, func, memref, vector
from xdsl.dialects.builtin import IntegerType, MemRefType, VectorType
from xdsl.ir import Block, BlockArgument, Operation, SSAValue

from raster_mlir.errors import CompileError

from raster_mlir.ir_create import create_op

from .loop_builder import LoopBuilder, same_type

I1 = IntegerType(1)


@functools.cache
def vector_of(element, lanes: int) -> VectorType:
    """`VectorType(element, [lanes])`, made once per pair: xDSL checks every parameter of a new type
    (about 20 us, as much as making an op), and the chunk bodies ask for the same few types again and again."""
    return VectorType(element, [lanes])


@dataclass(frozen=True)
class ChunkFrame:
    """The frame of one buffer's rows (module docstring); all values are defined at the function's entry."""

    shift: SSAValue  # s
    head_start: SSAValue  # s - L
    head_mask: SSAValue  # lanes L - s .. L - 1
    tail_start: SSAValue  # Cv - t
    tail_mask: SSAValue  # lanes 0 .. t - 1
    tail_length: SSAValue  # t
    no_lane: SSAValue  # a mask with no lane set


def is_argument(value: SSAValue, function: func.FuncOp) -> bool:
    """`value` is one of `function`'s arguments (a caller's buffer)."""
    return isinstance(value, BlockArgument) and value.block is function.body.blocks.first


def frame_applies(buffer: SSAValue, function: func.FuncOp, chunk_bytes: int) -> bool:
    """A function argument (whose alignment is the caller's) with rows of whole chunks.

    A temporary (`memref.alloc`) is 64-byte aligned already: its chunks from element 0 are lines.
    """
    memref_type = buffer.type
    if not is_argument(buffer, function):
        return False
    if not isinstance(memref_type, MemRefType) or not memref_type.get_shape():
        return False
    row_bytes = memref_type.get_shape()[-1] * memref_type.element_type.bitwidth // 8
    return memref_type.get_num_dims() == 1 or row_bytes % chunk_bytes == 0


def build_frame(buffer: SSAValue, lanes: int, columns: int, chunk_bytes: int, b: LoopBuilder) -> tuple[list[Operation], ChunkFrame]:
    """The ops computing `buffer`'s frame for rows of `columns` (a multiple of `lanes`) columns, and the frame."""
    itemsize = chunk_bytes // lanes
    ops: list[Operation] = []

    def add(op: Operation) -> SSAValue:
        ops.append(op)
        return op.results[0]

    def mask(count: SSAValue) -> SSAValue:
        return add(create_op(vector.CreateMaskOp, [count], [vector_of(I1, lanes)]))

    address = add(memref.ExtractAlignedPointerAsIndexOp.get(buffer))
    to_boundary = add(same_type(arith.AndIOp, add(same_type(arith.SubiOp, b.index(0), address)), b.index(chunk_bytes - 1)))
    shift = add(same_type(arith.DivUIOp, to_boundary, b.index(itemsize)))
    lanes_from_shift = add(same_type(arith.SubiOp, b.index(lanes), shift))  # L - s
    tail = add(same_type(arith.AndIOp, lanes_from_shift, b.index(lanes - 1)))
    head_mask = add(same_type(arith.XOrIOp, mask(lanes_from_shift), mask(b.index(lanes))))
    frame = ChunkFrame(
        shift=shift,
        head_start=add(same_type(arith.SubiOp, shift, b.index(lanes))),
        head_mask=head_mask,
        tail_start=add(same_type(arith.SubiOp, b.index(columns), tail)),
        tail_mask=mask(tail),
        tail_length=tail,
        no_lane=mask(b.index(0)),
    )
    return ops, frame


def gate_on_input(
    mask: SSAValue,
    frame: ChunkFrame,
    rows: list[tuple[SSAValue, tuple[SSAValue, ...]]],
    start: SSAValue,
    b: LoopBuilder,
    stage: SSAValue | None = None,
) -> list[Operation]:
    """Ops making `mask` (the head's or the tail's, at column `start`) no lane at all when every row of
    `rows` (buffer, leading indices) has only +0.0 there: a skipped partial chunk, like a skipped chunk.
    The last op's result is that mask, the one before it an i1: is any lane left? With `stage` (one
    row), the lanes are also copied there, at column start + t (the chunk bodies then read x there, aligned like W's rows)."""
    ops: list[Operation] = []

    def add(op: Operation) -> SSAValue:
        ops.append(op)
        return op.results[0]

    lanes = mask.type.get_shape()[0]
    union = None
    for buffer, leading in rows:
        element = buffer.type.element_type
        bits = IntegerType(element.bitwidth)
        zero = add(create_op(vector.BroadcastOp, [b.float(0.0, element)], [vector_of(element, lanes)]))
        part = add(create_op(vector.MaskedLoadOp, [buffer, *leading, start, mask, zero], [zero.type]))
        if stage is not None:
            staged_at = add(same_type(arith.AddiOp, start, frame.tail_length))
            ops.append(create_op(vector.MaskedStoreOp, [stage, staged_at, mask, part]))
        words = add(create_op(vector.BitcastOp, [part], [vector_of(bits, lanes)]))
        union = words if union is None else add(same_type(arith.OrIOp, union, words))
    total = add(reduce_lanes(union, vector.CombiningKindFlag.OR))
    any_set = add(arith.CmpiOp(total, b.integer(0, total.type), "ne"))
    add(create_op(arith.SelectOp, [any_set, mask, frame.no_lane], [mask.type]))
    return ops


def reduce_lanes(lanes: SSAValue, kind: vector.CombiningKindFlag) -> Operation:
    """vector.reduction to the lane type (xDSL's constructor gives it the vector's type)."""
    return create_op(vector.ReductionOp, [lanes], [lanes.type.element_type], {"kind": vector.CombiningKindAttr(kind)})


def after_constants(entry: Block) -> Operation:
    """The first op of a function's entry block that is not a constant: where the frame's ops,
    made from the constants at the top of the function, and per-function buffers go."""
    for op in entry.ops:
        if not isinstance(op, arith.ConstantOp):
            return op
    raise CompileError("skip-zero-chunks: function without a terminator")


def insert_all(ops: list[Operation], block: Block, before: Operation) -> None:
    for op in ops:
        block.insert_op_before(op, before)

