"""Static slicing, slice insertion and concatenation in the `raster` dialect.

Three ops carry every static indexing and shape operation of the frontend:

- `raster.slice`: a strided box of the input. Along axis d, result element i
  is input element start[d] + i * step[d]; steps may be negative (x[::-1]),
  and the result type gives the count per axis. `x[1:-1]`, `x[::2]`, `x[3]`
  (a size-1 slice, then a reshape), flip and the pieces of roll / pad are
  slices.
- `raster.insert_slice`: the destination with such a box replaced by the
  source (the transpose of `slice`: a slice's gradient is its cotangent
  inserted into zeros; constant padding inserts into a fill).
- `raster.concatenate`: operands joined along one axis (stack, roll, edge
  padding).

All positions are static and checked by the shape rules in `shapes.py`
(`slice_box`, `concatenate`): an out-of-bounds box is refused when the op
is built, and again by the verifier. Indexing with a traced integer (a loop
index) is a different op family, owned by the loop ops.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, TensorType, i64
from xdsl.ir import Attribute
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from . import shapes as S
from .raster_base import RasterOp, shape_of


def _box_properties(start, step) -> dict[str, Attribute]:
    return {
        "start": DenseArrayBase.from_list(i64, [int(s) for s in start]),
        "step": DenseArrayBase.from_list(i64, [int(s) for s in step]),
    }


@irdl_op_definition
class SliceOp(RasterOp):
    """result[i0, i1, ...] = input[start0 + i0 * step0, start1 + i1 * step1, ...].

    The result type gives the number of elements per axis; steps are non-zero
    and may be negative. `u[1:-1]` of a tensor<10xf64>:

    `%s = raster.slice %u start = [1] step = [1] : tensor<10xf64> -> tensor<8xf64>`
    """

    name = "raster.slice"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    start = prop_def(DenseArrayBase.constr(i64))
    step = prop_def(DenseArrayBase.constr(i64))
    traits = traits_def(Pure())
    assembly_format = "$input `start` `=` $start `step` `=` $step attr-dict `:` type($input) `->` type($result)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    @classmethod
    def infer_shapes(cls, shapes, start=(), step=(), shape=(), **params):
        S.slice_box(cls.name, "input", shapes[0], start, step, tuple(shape))
        return [tuple(shape)]

    @classmethod
    def properties_for(cls, start=(), step=(), **params):
        return _box_properties(start, step)

    def params(self):
        return {
            "start": tuple(self.start.get_values()),
            "step": tuple(self.step.get_values()),
            "shape": shape_of(self.result.type),
        }


@irdl_op_definition
class InsertSliceOp(RasterOp):
    """dest with the box of `raster.slice` (start, step, the source's shape) replaced by source.

    `%r = raster.insert_slice %s into %z start = [1] step = [1] : tensor<8xf64> into tensor<10xf64>`
    """

    name = "raster.insert_slice"
    T: ClassVar = VarConstraint("T", base(TensorType))
    source = operand_def(TensorType)
    dest = operand_def(T)
    result = result_def(T)
    start = prop_def(DenseArrayBase.constr(i64))
    step = prop_def(DenseArrayBase.constr(i64))
    traits = traits_def(Pure())
    assembly_format = (
        "$source `into` $dest `start` `=` $start `step` `=` $step attr-dict `:` type($source) `into` type($dest)"
    )
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("source", "dest")

    @classmethod
    def infer_shapes(cls, shapes, start=(), step=(), **params):
        source, dest = shapes
        S.slice_box(cls.name, "dest", dest, start, step, source)
        return [dest]

    @classmethod
    def properties_for(cls, start=(), step=(), **params):
        return _box_properties(start, step)

    def params(self):
        return {"start": tuple(self.start.get_values()), "step": tuple(self.step.get_values())}


@irdl_op_definition
class ConcatenateOp(RasterOp):
    """Operands joined along `axis`; all other dimensions agree.

    `%c = raster.concatenate %a, %b axis = 0 : i64 : (tensor<1xf64>, tensor<8xf64>) -> tensor<9xf64>`
    """

    name = "raster.concatenate"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    assembly_format = "$inputs `axis` `=` $axis attr-dict `:` functional-type($inputs, $result)"

    @classmethod
    def infer_shapes(cls, shapes, axis=0, **params):
        return [S.concatenate(cls.name, shapes, int(axis))]

    @classmethod
    def canonical_params(cls, shapes, axis=0, **params):
        if shapes and shapes[0]:  # 0-d operands get the shape rule's own message
            axis = S.normalize_axis(cls.name, int(axis), len(shapes[0]), shapes[0])
        return {"axis": axis, **params}

    @classmethod
    def properties_for(cls, axis=0, **params):
        return {"axis": IntegerAttr(axis, i64)}

    def params(self):
        return {"axis": self.axis.value.data}

    def verify_(self) -> None:
        if not self.inputs:
            raise VerifyException(f"{self.name}: needs at least one operand")
        super().verify_()
        rank = len(shape_of(self.inputs[0].type))
        if not 0 <= self.axis.value.data < rank:
            raise VerifyException(
                f"{self.name}: axis {self.axis.value.data} must be in [0, {rank}) "
                "(negative axes are resolved when the op is built)"
            )


ARRAY_OPS: tuple[type[RasterOp], ...] = (SliceOp, InsertSliceOp, ConcatenateOp)
