"""Growable tapes: where reverse mode records the carries of a loop whose trip count is only known at run time.

A `raster.for` with run-time bounds or a `raster.while` cannot have its
tape sized at compile time, so reverse mode (raster_rules_while.py) records
its carries on a growable stack instead:

    %t = raster.tape_new : !raster.tape<tensor<64xf64>>        (an empty tape)
    raster.tape_push %t, %x : !raster.tape<tensor<64xf64>>, tensor<64xf64>  (appends a row; forward loop)
    %x = raster.tape_get %t[%k] : !raster.tape<tensor<64xf64>> -> tensor<64xf64>  (row k; reverse loop)

Unlike the other raster ops these have memory effects (the tape is state,
not a value): `tape_new` allocates, `tape_push` writes and `tape_get`
reads, so no pass drops, merges or reorders them. A tape value is used as a
capture of the loops that push to or read from it, never as a carry.

At the loop level (lower_tape.py) a tape is a header buffer
`memref<4xi64>` = {data pointer, rows, capacity in rows, unused}, and the
`raster.rt_tape_*` ops below work on it; the backend (llvm_tape.py) emits
them with `realloc` (the capacity doubles, so pushing N rows costs O(N)),
`memcpy` and `free`. The header lives in the workspace; lower-to-loops
initialises it when the function starts and frees the rows when it returns.
`tape_new` inside a loop only empties the tape: its memory is reused by
every iteration.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IndexType, MemRefType, TensorType, i64
from xdsl.ir import Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    IRDLOperation,
    operand_def,
    param_def,
    result_def,
    traits_def,
)
from xdsl.traits import MemoryAllocEffect, MemoryReadEffect, MemoryWriteEffect
from xdsl.utils.exceptions import VerifyException

from raster_mlir.per_class import subclass_test

from .raster_control import INDEX


@irdl_attr_definition
class TapeType(ParametrizedAttribute, TypeAttribute):
    """`!raster.tape<tensor<64xf64>>`: a growable stack of rows of one tensor type."""

    name = "raster.tape"
    row: TensorType = param_def(TensorType)

    def __init__(self, row: TensorType):
        super().__init__(row)


@irdl_op_definition
class TapeNewOp(IRDLOperation):
    """An empty tape.  `%t = raster.tape_new : !raster.tape<tensor<3xf64>>`"""

    name = "raster.tape_new"
    tape = result_def(TapeType)
    traits = traits_def(MemoryAllocEffect())
    assembly_format = "attr-dict `:` type($tape)"

    def __init__(self, row: TensorType):
        super().__init__(result_types=[TapeType(row)])


@irdl_op_definition
class TapePushOp(IRDLOperation):
    """Append a row to a tape.  `raster.tape_push %t, %x : !raster.tape<tensor<3xf64>>, tensor<3xf64>`"""

    name = "raster.tape_push"
    tape = operand_def(TapeType)
    value = operand_def(TensorType)
    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$tape `,` $value attr-dict `:` type($tape) `,` type($value)"

    def __init__(self, tape: SSAValue, value: SSAValue):
        super().__init__(operands=[tape, value])

    def verify_(self) -> None:
        if self.value.type != self.tape.type.row:
            raise VerifyException(f"{self.name}: a row of type {self.value.type} on a tape of {self.tape.type.row}")


@irdl_op_definition
class TapeGetOp(IRDLOperation):
    """Row `index` of a tape (pushed earlier).

    `%x = raster.tape_get %t[%k] : !raster.tape<tensor<3xf64>> -> tensor<3xf64>`
    """

    name = "raster.tape_get"
    tape = operand_def(TapeType)
    index = operand_def(INDEX)
    result = result_def(TensorType)
    traits = traits_def(MemoryReadEffect())
    assembly_format = "$tape `[` $index `]` attr-dict `:` type($tape) `->` type($result)"

    def __init__(self, tape: SSAValue, index: SSAValue):
        super().__init__(operands=[tape, index], result_types=[SSAValue.get(tape).type.row])

    def verify_(self) -> None:
        if self.result.type != self.tape.type.row:
            raise VerifyException(f"{self.name}: result {self.result.type} differs from the tape's rows {self.tape.type.row}")


# ---------------------------------------------------------------------------
# Loop level: the header buffer memref<4xi64> and the run-time operations on it

HEADER = MemRefType(i64, [4])


class _HeaderOp(IRDLOperation):
    """An operation on a tape header alone."""

    header = operand_def(HEADER)
    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$header attr-dict"

    def __init__(self, header: SSAValue):
        super().__init__(operands=[header])


@irdl_op_definition
class RtTapeInitOp(_HeaderOp):
    """No rows, no memory: the state of a tape when its function starts.  `raster.rt_tape_init %h`"""

    name = "raster.rt_tape_init"


@irdl_op_definition
class RtTapeResetOp(_HeaderOp):
    """No rows, the memory kept for reuse (`raster.tape_new`).  `raster.rt_tape_reset %h`"""

    name = "raster.rt_tape_reset"


@irdl_op_definition
class RtTapeFreeOp(_HeaderOp):
    """Release the rows' memory (when the function returns).  `raster.rt_tape_free %h`"""

    name = "raster.rt_tape_free"


@irdl_op_definition
class RtTapePushOp(IRDLOperation):
    """Append the buffer's contents as a row (growing the memory when full).

    `raster.rt_tape_push %h, %x : memref<3xf64>`
    """

    name = "raster.rt_tape_push"
    header = operand_def(HEADER)
    source = operand_def(MemRefType)
    traits = traits_def(MemoryWriteEffect(), MemoryReadEffect())
    assembly_format = "$header `,` $source attr-dict `:` type($source)"

    def __init__(self, header: SSAValue, source: SSAValue):
        super().__init__(operands=[header, source])


@irdl_op_definition
class RtTapeReadOp(IRDLOperation):
    """Copy row `index` into a buffer.  `raster.rt_tape_read %h[%k], %out : memref<3xf64>`"""

    name = "raster.rt_tape_read"
    header = operand_def(HEADER)
    index = operand_def(IndexType)
    target = operand_def(MemRefType)
    traits = traits_def(MemoryWriteEffect(), MemoryReadEffect())
    assembly_format = "$header `[` $index `]` `,` $target attr-dict `:` type($target)"

    def __init__(self, header: SSAValue, index: SSAValue, target: SSAValue):
        super().__init__(operands=[header, index, target])


TAPE_OPS: tuple[type[Operation], ...] = (
    TapeNewOp, TapePushOp, TapeGetOp, RtTapeInitOp, RtTapeResetOp, RtTapeFreeOp, RtTapePushOp, RtTapeReadOp,
)  # fmt: skip
TAPE_TYPES = (TapeType,)


_IS_TAPE = subclass_test(TapeType)  # (isinstance against an ABC, once per type class: asked per operand)


def _tapes_touched(op: Operation, kind: type[Operation]) -> list[SSAValue]:
    """The tape operands of `op` that it (or an op in its regions) passes to a `kind` op."""
    tapes = [v for v in op._operands if _IS_TAPE[type(v.type)]]
    if not tapes:
        return []
    if isinstance(op, kind):
        return [op.tape]
    return tapes if any(isinstance(inner, kind) for inner in op.walk()) else []


def growable_tapes_written(op: Operation) -> list[SSAValue]:
    """The tapes `op` may push rows to (a push, or a loop holding one): what autodiff's activity analysis
    must treat as varying when a pushed value does (the rows are data the SSA graph does not show)."""
    return _tapes_touched(op, TapePushOp)


def growable_tapes_read(op: Operation) -> list[SSAValue]:
    """The tapes `op` may read rows from (a tape_get, or a loop holding one)."""
    return _tapes_touched(op, TapeGetOp)
