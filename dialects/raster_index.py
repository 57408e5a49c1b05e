"""Traced integers: dtype conversion and indexing with a run-time integer.

The loop index of `rm.fori_loop` / `rm.scan` is a 0-d `tensor<i64>`: the
integer ops of the dialect (add, sub, mul, neg, maximum, greater, equal,
fill) accept it, the tracer converts it to the float dtype when it meets a
float (weak typing, like a Python int: `i * dt`), and these ops use it as
an index:

- `raster.convert`: elementwise dtype conversion (i64 <-> f32/f64, f32 <-> f64).
  Float to integer truncates toward zero, as `int()` and numpy's `astype`;
  NaN gives 0 and values beyond the i64 range saturate.
- `raster.dynamic_index %x[%i, %j]`: the sub-array x[i, j] (the leading
  axes indexed, the rest kept).
- `raster.dynamic_update %x[%i], %v`: x with x[i] replaced by v (functional).
- `raster.dynamic_update_add %x[%i], %v`: x with v added to x[i] (the
  reverse of dynamic_index, and `x.at[i].add(v)`).
- `raster.empty`: a tensor to be filled (the tape of reverse mode through loops).
- `raster.floordiv`, `raster.mod`: Python's `//` and `%` on traced integers (`i % 2`).

Out-of-range indices at run time follow JAX's gather/scatter-slice rule,
applied per index: a negative index counts from the end (i + n), then the
index is clamped into [0, n - 1]. So x[-1] is the last row and x[n + 5] is
also the last row; an update never writes outside x. (Python integer
indices are checked when tracing instead: out of range is a ShapeError.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import VarConstraint, base, irdl_op_definition, operand_def, result_def, traits_def, var_operand_def
from xdsl.traits import Pure

from raster_mlir.errors import DTypeError, ShapeError
from raster_mlir.ir_create import create_op

from . import shapes as S
from .raster_base import ElementwiseBinaryOp, RasterOp, dtype_of, shape_of, tensor
from .raster_control import INDEX


@irdl_op_definition
class ConvertOp(RasterOp):
    """y = x converted to the result's element type, elementwise.

    `%t = raster.convert %i : tensor<i64> -> tensor<f64>`
    """

    name = "raster.convert"
    INTEGER_OK: ClassVar[bool] = True
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [shapes[0]]

    @classmethod
    def infer_types(cls, types: Sequence[Attribute], dtype: str | None = None, **params) -> list[TensorType]:
        if dtype not in ("f32", "f64", "i64"):
            raise DTypeError(f"{cls.name}: cannot convert to {dtype} (f32, f64 or i64)")
        S.same_dtype(cls.name, [dtype_of(types[0])])  # a supported source type
        return [tensor(shape_of(types[0]), dtype)]

    def params(self) -> dict:
        return {"to": dtype_of(self.result.type)}


def _check_indices(op_name: str, types: Sequence[Attribute], count: int) -> None:
    for k, t in enumerate(types[-count:] if count else []):
        if t != INDEX:
            raise DTypeError(f"{op_name}: index {k} must be a 0-d tensor<i64> (a traced integer), got {t}")


def _indexed_shape(op_name: str, shape: S.Shape, count: int) -> S.Shape:
    if count == 0:
        raise ShapeError(f"{op_name}: needs at least one index")
    if count > len(shape):
        raise ShapeError(f"{op_name}: {count} indices for an array of shape {S.fmt(shape)}")
    for axis in range(count):
        if shape[axis] == 0:
            raise ShapeError(f"{op_name}: cannot index axis {axis} of shape {S.fmt(shape)}: it is empty")
    return shape[count:]


@irdl_op_definition
class DynamicIndexOp(RasterOp):
    """y = x[i0, i1, ...] with traced integer indices on the leading axes (clamped; module docstring).

    `%row = raster.dynamic_index %xs[%i] : tensor<5x3xf64> -> tensor<3xf64>`
    """

    name = "raster.dynamic_index"
    INTEGER_OK: ClassVar[bool] = True
    input = operand_def(TensorType)
    indices = var_operand_def(INDEX)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input `[` $indices `]` attr-dict `:` type($input) `->` type($result)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [_indexed_shape(cls.name, shapes[0], len(shapes) - 1)]

    @classmethod
    def infer_types(cls, types, **params):
        _check_indices(cls.name, types, len(types) - 1)
        dtype = S.same_dtype(cls.name, [dtype_of(types[0])])
        return [tensor(cls.infer_shapes([shape_of(t) for t in types])[0], dtype)]

    @classmethod
    def make(cls, operands: Sequence[SSAValue], **params) -> Operation:
        """operands: (input, index...)."""
        operands = [SSAValue.get(o) for o in operands]
        result_types = cls.infer_types([o.type for o in operands])
        return create_op(cls, operands, result_types)


class _DynamicUpdateBase(RasterOp):
    """x with the slice x[i0, ...] replaced (or incremented) by `value`; the result has x's type."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    value = operand_def(TensorType)
    indices = var_operand_def(INDEX)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$input `[` $indices `]` `,` $value attr-dict `:` type($input) `,` type($value)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input", "value")
    INTEGER_OK: ClassVar[bool] = True

    @classmethod
    def infer_shapes(cls, shapes, **params):
        slice_shape = _indexed_shape(cls.name, shapes[0], len(shapes) - 2)
        if tuple(shapes[1]) != slice_shape:
            raise ShapeError(
                f"{cls.name}: value of shape {S.fmt(shapes[1])} does not match the slice "
                f"{S.fmt(slice_shape)} of input {S.fmt(shapes[0])} at {len(shapes) - 2} index(es)"
            )
        return [shapes[0]]

    @classmethod
    def infer_types(cls, types, **params):
        _check_indices(cls.name, types, len(types) - 2)
        dtype = S.same_dtype(cls.name, [dtype_of(types[0]), dtype_of(types[1])])
        return [tensor(cls.infer_shapes([shape_of(t) for t in types])[0], dtype)]

    @classmethod
    def make(cls, operands: Sequence[SSAValue], **params) -> Operation:
        """operands: (input, value, index...)."""
        operands = [SSAValue.get(o) for o in operands]
        result_types = cls.infer_types([o.type for o in operands])
        return create_op(cls, operands, result_types)


@irdl_op_definition
class DynamicUpdateOp(_DynamicUpdateBase):
    """y = x with y[i...] = value (a functional update; `x.at[i].set(v)`).

    `%y = raster.dynamic_update %x[%i], %row : tensor<5x3xf64>, tensor<3xf64>`
    """

    name = "raster.dynamic_update"


@irdl_op_definition
class DynamicUpdateAddOp(_DynamicUpdateBase):
    """y = x with y[i...] = x[i...] + value (`x.at[i].add(v)`; the reverse of dynamic_index).

    `%y = raster.dynamic_update_add %acc[%i], %ct : tensor<5x3xf64>, tensor<3xf64>`
    """

    name = "raster.dynamic_update_add"


@irdl_op_definition
class EmptyOp(RasterOp):
    """A tensor whose elements are not set yet (MLIR's tensor.empty): a buffer to write into.

    Reverse mode starts a loop's tape with it; every element is written
    (`raster.dynamic_update`) before it is read. The reference interpreter
    fills it with NaN (zeros for integers) so a read before a write shows.

    `%tape = raster.empty : tensor<1000x64xf64>`
    """

    name = "raster.empty"
    INTEGER_OK: ClassVar[bool] = True
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "attr-dict `:` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, shape=(), **params):
        return [tuple(shape)]

    def params(self):
        return {"shape": shape_of(self.result.type)}


class _IntegerDivisionOp(ElementwiseBinaryOp):
    """Python's integer division on traced integers (broadcasting); x // 0 and x % 0 give 0, as numpy's."""

    INTEGER_OK: ClassVar[bool] = True

    @classmethod
    def infer_types(cls, types, **params):
        dtypes = [dtype_of(t) for t in types]
        if dtypes != ["i64", "i64"]:
            raise DTypeError(
                f"{cls.name}: integer division works on traced integers (like a loop index), got "
                f"{' and '.join(dtypes)}; for floats write the division and round explicitly (rm.floor(x / y), x - y * rm.floor(x / y))"
            )
        return super().infer_types(types, **params)


@irdl_op_definition
class FloorDivOp(_IntegerDivisionOp):
    """z = x // y (rounded toward minus infinity, as Python).

    `%q = raster.floordiv %i, %k : tensor<i64>, tensor<i64> -> tensor<i64>`
    """

    name = "raster.floordiv"


@irdl_op_definition
class ModOp(_IntegerDivisionOp):
    """z = x % y (the sign of y, as Python): x - (x // y) * y.

    `%r = raster.mod %i, %k : tensor<i64>, tensor<i64> -> tensor<i64>`
    """

    name = "raster.mod"


INDEX_OPS: tuple[type[Operation], ...] = (
    ConvertOp, DynamicIndexOp, DynamicUpdateOp, DynamicUpdateAddOp, EmptyOp, FloorDivOp, ModOp,
)  # fmt: skip
