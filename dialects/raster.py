"""The `raster` dialect: differentiable array operations on static-shape tensors.

Values are builtin ranked tensors with static shapes and element type f32 or
f64 (a scalar is a 0-d tensor, `tensor<f64>`). Every op's result types follow
from its operand types and properties through one rule in `shapes.py`; the
tracer applies the same rule before creating an op, so a user sees a shape
error at their own source line, and `verify_` applies it to parsed IR.

Ops are grouped by base class (raster_base.py):

- `ElementwiseUnaryOp`: neg exp log tanh sigmoid sqrt relu
- `ElementwiseBinaryOp` (numpy broadcasting): add sub mul div pow maximum,
  and the comparisons greater / equal (1.0 or 0.0, no gradient)
- NN: dense softmax log_softmax cross_entropy softmax_cross_entropy
- `ReductionOp`: sum mean max over one axis or all, optionally keeping dims
- layout: matmul transpose reshape broadcast_to
- creation: constant fill
- AD: grad value_and_grad (expanded by the autodiff pass), jvp (by forward-ad)

Each op class exposes `infer_shapes(shapes, **params)`, `params()` (its
properties as Python values) and `make(operands, **params)`, which the
frontend, the passes and the reverse rules use to build ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    SymbolRefAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import Pure, SymbolTable
from xdsl.utils.exceptions import VerifyException

from raster_mlir.errors import ShapeError
from raster_mlir.ir_create import create_op

from . import shapes as S
from .raster_base import (  # noqa: F401  (R.RasterOp, R.tensor, R.shape_of... for the dialect's users)
    float_attr,
    ElementwiseBinaryOp,
    ElementwiseUnaryOp,
    RasterCanonicalization,
    RasterOp,
    ReductionOp,
    dtype_name,
    dtype_of,
    element_type,
    is_float_type,
    shape_of,
    tensor,
)

# ---------------------------------------------------------------------------
# Elementwise unary


@irdl_op_definition
class NegOp(ElementwiseUnaryOp):
    """y = -x.  `%y = raster.neg %x : tensor<4xf64>`"""

    name = "raster.neg"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class ExpOp(ElementwiseUnaryOp):
    """y = exp(x).  `%y = raster.exp %x : tensor<4xf64>`"""

    name = "raster.exp"


@irdl_op_definition
class LogOp(ElementwiseUnaryOp):
    """y = log(x) (natural log; -inf at 0, NaN below, as numpy).  `%y = raster.log %x : tensor<4xf64>`"""

    name = "raster.log"


@irdl_op_definition
class TanhOp(ElementwiseUnaryOp):
    """y = tanh(x).  `%y = raster.tanh %x : tensor<4xf64>`"""

    name = "raster.tanh"


@irdl_op_definition
class SigmoidOp(ElementwiseUnaryOp):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|.

    `%y = raster.sigmoid %x : tensor<4xf64>`
    """

    name = "raster.sigmoid"


@irdl_op_definition
class SqrtOp(ElementwiseUnaryOp):
    """y = sqrt(x).  `%y = raster.sqrt %x : tensor<4xf64>`"""

    name = "raster.sqrt"


@irdl_op_definition
class ReluOp(ElementwiseUnaryOp):
    """y = max(x, 0).  `%y = raster.relu %x : tensor<128xf64>`"""

    name = "raster.relu"


# ---------------------------------------------------------------------------
# Elementwise binary


@irdl_op_definition
class AddOp(ElementwiseBinaryOp):
    """z = x + y (broadcasting).  `%z = raster.add %x, %b : tensor<32x10xf64>, tensor<10xf64> -> tensor<32x10xf64>`"""

    name = "raster.add"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class SubOp(ElementwiseBinaryOp):
    """z = x - y (broadcasting).  `%z = raster.sub %x, %y : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.sub"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class MulOp(ElementwiseBinaryOp):
    """z = x * y (broadcasting).  `%z = raster.mul %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>`"""

    name = "raster.mul"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class DivOp(ElementwiseBinaryOp):
    """z = x / y (broadcasting).  `%z = raster.div %x, %n : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.div"


@irdl_op_definition
class PowOp(ElementwiseBinaryOp):
    """z = x ** y (broadcasting).  `%z = raster.pow %x, %two : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.pow"


@irdl_op_definition
class MaximumOp(ElementwiseBinaryOp):
    """z = max(x, y) elementwise (broadcasting).

    `%z = raster.maximum %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>`
    """

    name = "raster.maximum"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class GreaterOp(ElementwiseBinaryOp):
    """z = 1.0 where x > y else 0.0 (broadcasting). No gradient: a step function.

    `%m = raster.greater %x, %zero : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`
    """

    name = "raster.greater"
    INTEGER_OK: ClassVar[bool] = True


@irdl_op_definition
class EqualOp(ElementwiseBinaryOp):
    """z = 1.0 where x == y else 0.0 (broadcasting). No gradient: a step function.

    `%m = raster.equal %x, %rowmax : tensor<3x4xf64>, tensor<3x1xf64> -> tensor<3x4xf64>`
    """

    name = "raster.equal"
    INTEGER_OK: ClassVar[bool] = True


# ---------------------------------------------------------------------------
# Neural-network ops


@irdl_op_definition
class DenseOp(RasterOp):
    """y = W x + b; W (out, in), x (in,) or (batch, in) -> (out,) or (batch, out).

    `%y = raster.dense %W, %x, %b : (tensor<8x4xf64>, tensor<4xf64>, tensor<8xf64>) -> tensor<8xf64>`
    """

    name = "raster.dense"
    weight = operand_def(TensorType)
    input = operand_def(TensorType)
    bias = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$weight `,` $input `,` $bias attr-dict `:` functional-type(operands, results)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("weight", "input", "bias")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [S.dense(cls.name, *shapes)]


class RowwiseOp(RasterOp):
    """An op over the last axis of a tensor of rank >= 1 with a non-empty last axis; same type out."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$input attr-dict `:` type($input)"

    @classmethod
    def infer_shapes(cls, shapes, **params):
        S.rank_at_least(cls.name, "input", shapes[0], 1)
        S.nonempty_axis(cls.name, shapes[0], -1)
        return [shapes[0]]


@irdl_op_definition
class SoftmaxOp(RowwiseOp):
    """Softmax over the last axis, computed as exp(x - max) / sum (no overflow).

    `%p = raster.softmax %z : tensor<10xf64>`
    """

    name = "raster.softmax"


@irdl_op_definition
class LogSoftmaxOp(RowwiseOp):
    """log(softmax(x)) over the last axis, as x - max - log(sum(exp(x - max))).

    `%l = raster.log_softmax %z : tensor<10xf64>`
    """

    name = "raster.log_softmax"


@irdl_op_definition
class CrossEntropyOp(RasterOp):
    """L = -sum(y * log(max(p, tiny))); for 2-D inputs the mean over the batch.

    `tiny` is the smallest normal number of the element type, so p = 0 gives
    a large finite loss instead of inf/NaN.

    `%l = raster.cross_entropy %p, %y : (tensor<10xf64>, tensor<10xf64>) -> tensor<f64>`
    """

    name = "raster.cross_entropy"
    probs = operand_def(TensorType)
    target = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$probs `,` $target attr-dict `:` functional-type(operands, results)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("probs", "target")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        shape = S.same_shape(cls.name, cls.OPERAND_NAMES, shapes)
        S.rank_in(cls.name, "probs", shape, (1, 2))
        return [()]


@irdl_op_definition
class SoftmaxCrossEntropyOp(RasterOp):
    """(L, p) = (cross_entropy(softmax(z), y), softmax(z)), through log_softmax.

    Stable for logits of any magnitude. For 2-D inputs L is the batch mean.

    `%l, %p = raster.softmax_cross_entropy %z, %y : (tensor<10xf64>, tensor<10xf64>) -> (tensor<f64>, tensor<10xf64>)`
    """

    name = "raster.softmax_cross_entropy"
    logits = operand_def(TensorType)
    target = operand_def(TensorType)
    loss = result_def(TensorType)
    softmax = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$logits `,` $target attr-dict `:` functional-type(operands, results)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("logits", "target")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        shape = S.same_shape(cls.name, cls.OPERAND_NAMES, shapes)
        S.rank_in(cls.name, "logits", shape, (1, 2))
        return [(), shape]


# ---------------------------------------------------------------------------
# Reductions


@irdl_op_definition
class SumOp(ReductionOp):
    """Sum over `axis` (or everything).  `%s = raster.sum %x axis = 1 : i64 keepdims : tensor<3x4xf64> -> tensor<3x1xf64>`"""

    name = "raster.sum"


@irdl_op_definition
class MeanOp(ReductionOp):
    """Mean over `axis` (or everything).  `%m = raster.mean %x : tensor<3x4xf64> -> tensor<f64>`"""

    name = "raster.mean"
    EMPTY_OK: ClassVar[bool] = False


@irdl_op_definition
class MaxOp(ReductionOp):
    """Maximum over `axis` (or everything).  `%m = raster.max %x axis = 0 : i64 : tensor<3x4xf64> -> tensor<4xf64>`"""

    name = "raster.max"
    EMPTY_OK: ClassVar[bool] = False


# ---------------------------------------------------------------------------
# Layout and linear algebra


@irdl_op_definition
class MatmulOp(RasterOp):
    """numpy matmul on 1-D/2-D operands: (m,k)@(k,n), (m,k)@(k,), (k,)@(k,n), (k,)@(k,).

    `%c = raster.matmul %a, %b : (tensor<3x4xf64>, tensor<4x5xf64>) -> tensor<3x5xf64>`
    """

    name = "raster.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("lhs", "rhs")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [S.matmul(cls.name, *shapes)]


@irdl_op_definition
class TransposeOp(RasterOp):
    """Permute axes: result axis i is input axis perm[i].

    `%t = raster.transpose %w perm = [1, 0] : tensor<3x4xf64> -> tensor<4x3xf64>`
    """

    name = "raster.transpose"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    perm = prop_def(DenseArrayBase.constr(i64))
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$input `perm` `=` $perm attr-dict `:` type($input) `->` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, perm=(), **params):
        return [S.transpose(cls.name, shapes[0], perm)]

    @classmethod
    def canonical_params(cls, shapes, perm=None, **params):
        rank = len(shapes[0])
        if perm is None:
            perm = tuple(reversed(range(rank)))
        if len(perm) != rank or any(not -rank <= int(p) < rank for p in perm):
            raise ShapeError(
                f"{cls.name}: perm {tuple(perm)} is not a permutation of the axes of an array of shape {S.fmt(shapes[0])}"
            )
        perm = tuple(int(p) % rank for p in perm)
        return {"perm": perm, **params}

    @classmethod
    def properties_for(cls, perm=(), **params):
        return {"perm": DenseArrayBase.from_list(i64, list(perm))}

    def params(self):
        return {"perm": tuple(self.perm.get_values())}


@irdl_op_definition
class ReshapeOp(RasterOp):
    """Same elements in row-major order, new shape (the result type's).

    `%r = raster.reshape %x : tensor<3x4xf64> -> tensor<12xf64>`
    """

    name = "raster.reshape"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, shape=(), **params):
        return [S.reshape(cls.name, shapes[0], tuple(shape))]

    @classmethod
    def canonical_params(cls, shapes, shape=(), **params):
        return {"shape": S.resolve_minus_one(cls.name, shapes[0], tuple(int(d) for d in shape)), **params}

    def params(self):
        return {"shape": shape_of(self.result.type)}


@irdl_op_definition
class BroadcastToOp(RasterOp):
    """numpy broadcast_to: stretch size-1 and missing leading axes to the result shape.

    `%b = raster.broadcast_to %x : tensor<3x1xf64> -> tensor<3x4xf64>`
    """

    name = "raster.broadcast_to"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, shape=(), **params):
        return [S.broadcast_to(cls.name, shapes[0], tuple(shape))]

    def params(self):
        return {"shape": shape_of(self.result.type)}


# ---------------------------------------------------------------------------
# Creation


@irdl_op_definition
class FillOp(RasterOp):
    """A tensor with every element equal to `value` (a scalar when the shape is ()).

    `%c = raster.fill 2.000000e+00 : f64 : tensor<f64>`; an integer fill
    (a traced integer constant) is `%n = raster.fill 3 : i64 : tensor<i64>`.
    """

    name = "raster.fill"
    INTEGER_OK: ClassVar[bool] = True
    value = prop_def(base(FloatAttr) | base(IntegerAttr))
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$value attr-dict `:` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, shape=(), **params):
        return [tuple(shape)]

    @classmethod
    def properties_for(cls, value=0.0, dtype="f64", **params):
        if dtype == "i64":
            return {"value": IntegerAttr(int(value), i64)}
        return {"value": float_attr(float(value), dtype)}

    def params(self):
        return {"value": self.value.value.data, "shape": shape_of(self.result.type)}

    def verify_(self) -> None:
        super().verify_()
        if self.value.type != self.result.type.element_type:
            raise VerifyException(
                f"{self.name}: value type {self.value.type} differs from the result element type "
                f"{self.result.type.element_type}"
            )


@irdl_op_definition
class ConstantOp(RasterOp):
    """A tensor with the given elements (arrays captured by a traced function).

    `%c = raster.constant dense<[1.0, 2.0]> : tensor<2xf64> : tensor<2xf64>`
    """

    name = "raster.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$value attr-dict `:` type($result)"

    @classmethod
    def infer_shapes(cls, shapes, shape=(), **params):
        return [tuple(shape)]

    @classmethod
    def properties_for(cls, value=None, dtype="f64", **params):
        array = np.asarray(value, dtype=np.float64)
        t = tensor(array.shape, dtype)
        return {"value": DenseIntOrFPElementsAttr.from_list(t, array.ravel().tolist())}

    def params(self):
        shape = shape_of(self.result.type)
        values = np.array(self.value.get_values(), dtype=np.float64)
        if values.size != int(np.prod(shape, dtype=np.int64)):
            raise ShapeError(
                f"{self.name}: elements of type {self.value.type} do not fill the result type {self.result.type}"
            )
        return {"value": values.reshape(shape), "shape": shape}

    def verify_(self) -> None:
        super().verify_()
        if self.value.type != self.result.type:
            raise VerifyException(
                f"{self.name}: elements of type {self.value.type} differ from the result type {self.result.type}"
            )


# ---------------------------------------------------------------------------
# Automatic differentiation


def callee_outputs(op: IRDLOperation, callee: SymbolRefAttr, args: Sequence[SSAValue]) -> list[Attribute]:
    """The output types of the function an AD op names, after checking it takes `args`."""
    function = SymbolTable.lookup_symbol(op, callee)
    if function is None:
        raise VerifyException(f"{op.name}: no function named {callee}")
    ftype = function.function_type
    if list(ftype.inputs) != [a.type for a in args]:
        raise VerifyException(
            f"{op.name}: arguments {[str(a.type) for a in args]} do not match "
            f"{callee}'s inputs {[str(t) for t in ftype.inputs]}"
        )
    return list(ftype.outputs)


class _GradLikeOp(IRDLOperation):
    """Shared verification of grad / value_and_grad: callee signature and argnums."""

    callee = prop_def(SymbolRefAttr)
    argnums = prop_def(DenseArrayBase.constr(i64))
    args = var_operand_def(TensorType)
    res = var_result_def(TensorType)
    assembly_format = "$callee `(` $args `)` `argnums` `=` $argnums attr-dict `:` functional-type($args, $res)"
    RETURNS_VALUE: ClassVar[bool] = False

    @classmethod
    def make(cls, callee: str, args: Sequence[SSAValue], argnums: Sequence[int], value_type: Attribute):
        args = [SSAValue.get(a) for a in args]
        grad_types = [args[i].type for i in argnums]
        properties = {"callee": SymbolRefAttr(callee), "argnums": DenseArrayBase.from_list(i64, list(argnums))}
        return create_op(cls, args, ([value_type] if cls.RETURNS_VALUE else []) + grad_types, properties)

    def argnum_values(self) -> tuple[int, ...]:
        return tuple(self.argnums.get_values())

    def verify_(self) -> None:
        argnums = self.argnum_values()
        n = len(self.args)
        for i in argnums:
            if not 0 <= i < n:
                raise VerifyException(f"{self.name}: argnum {i} out of range for {n} argument(s)")
        if len(set(argnums)) != len(argnums):
            raise VerifyException(f"{self.name}: argnums {argnums} repeat an argument")
        grads = list(self.res)[1:] if self.RETURNS_VALUE else list(self.res)
        if [g.type for g in grads] != [self.args[i].type for i in argnums]:
            raise VerifyException(f"{self.name}: each gradient must have its argument's type")
        outs = callee_outputs(self, self.callee, self.args)
        if len(outs) != 1 or shape_of(outs[0]) != ():
            raise VerifyException(
                f"{self.name}: {self.callee} must return one scalar (tensor<f32> or tensor<f64>), "
                f"it returns {[str(t) for t in outs]}"
            )
        if self.RETURNS_VALUE and self.res[0].type != outs[0]:
            raise VerifyException(f"{self.name}: value result must have type {outs[0]}")


@irdl_op_definition
class GradOp(_GradLikeOp):
    """Gradients of a scalar function with respect to the arguments in `argnums`.

    `%dW, %db = raster.grad @loss(%W, %b, %x) argnums = [0, 1] : (tensor<3x4xf64>, tensor<3xf64>, tensor<4xf64>) -> (tensor<3x4xf64>, tensor<3xf64>)`
    """

    name = "raster.grad"


@irdl_op_definition
class ValueAndGradOp(_GradLikeOp):
    """The value of a scalar function and its gradients (value first).

    `%l, %dW = raster.value_and_grad @loss(%W, %x) argnums = [0] : (tensor<3x4xf64>, tensor<4xf64>) -> (tensor<f64>, tensor<3x4xf64>)`
    """

    name = "raster.value_and_grad"
    RETURNS_VALUE: ClassVar[bool] = True


@irdl_op_definition
class JvpOp(IRDLOperation):
    """Forward mode: the outputs of a function and their tangents (outputs first, then tangents).

    `tangents` holds one tangent per argument listed in `argnums`, of that
    argument's type; the other arguments are held constant. Expanded by the
    `forward-ad` pass.

    `%y, %dy = raster.jvp @f(%x, %w) tangents(%dx) argnums = [0] : (tensor<3xf64>, tensor<3xf64>), (tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>)`
    """

    name = "raster.jvp"
    callee = prop_def(SymbolRefAttr)
    argnums = prop_def(DenseArrayBase.constr(i64))
    primals = var_operand_def(TensorType)
    tangents = var_operand_def(TensorType)
    res = var_result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    assembly_format = (
        "$callee `(` $primals `)` `tangents` `(` $tangents `)` `argnums` `=` $argnums attr-dict "
        "`:` `(` type($primals) `)` `,` `(` type($tangents) `)` `->` `(` type($res) `)`"
    )

    @classmethod
    def make(
        cls, callee: str, primals: Sequence[SSAValue], tangents: Sequence[SSAValue], argnums: Sequence[int],
        output_types: Sequence[Attribute],
    ):  # fmt: skip
        return cls.build(
            operands=[[SSAValue.get(p) for p in primals], [SSAValue.get(t) for t in tangents]],
            result_types=[[*output_types, *output_types]],
            properties={
                "callee": SymbolRefAttr(callee),
                "argnums": DenseArrayBase.from_list(i64, list(argnums)),
            },
        )

    def argnum_values(self) -> tuple[int, ...]:
        return tuple(self.argnums.get_values())

    def outputs(self) -> list[SSAValue]:
        return list(self.res)[: len(self.res) // 2]

    def output_tangents(self) -> list[SSAValue]:
        return list(self.res)[len(self.res) // 2 :]

    def verify_(self) -> None:
        argnums = self.argnum_values()
        n = len(self.primals)
        if any(not 0 <= i < n for i in argnums) or len(set(argnums)) != len(argnums):
            raise VerifyException(f"{self.name}: argnums {argnums} must be distinct argument positions in [0, {n})")
        if [t.type for t in self.tangents] != [self.primals[i].type for i in argnums]:
            raise VerifyException(
                f"{self.name}: tangents {[str(t.type) for t in self.tangents]} must have the types of the "
                f"arguments {list(argnums)}: {[str(self.primals[i].type) for i in argnums]}"
            )
        outs = callee_outputs(self, self.callee, self.primals)
        if [r.type for r in self.res] != outs + outs:
            raise VerifyException(
                f"{self.name}: results must be {self.callee}'s outputs then their tangents, "
                f"{[str(t) for t in outs + outs]}"
            )


RASTER_OPS: tuple[type[RasterOp], ...] = (
    NegOp, ExpOp, LogOp, TanhOp, SigmoidOp, SqrtOp, ReluOp,
    AddOp, SubOp, MulOp, DivOp, PowOp, MaximumOp, GreaterOp, EqualOp,
    DenseOp, SoftmaxOp, LogSoftmaxOp, CrossEntropyOp, SoftmaxCrossEntropyOp,
    SumOp, MeanOp, MaxOp,
    MatmulOp, TransposeOp, ReshapeOp, BroadcastToOp,
    FillOp, ConstantOp,
)  # fmt: skip

# More ops live in their own files (on the base classes of raster_base.py); the dialect's
# op list gathers them here.
from .raster_array import ARRAY_OPS, ConcatenateOp, InsertSliceOp, SliceOp  # noqa: E402
from .raster_maths import *  # noqa: E402, F403  (R.SinOp, R.WhereOp... like the ops above)
from .raster_maths import MATHS_OPS  # noqa: E402
from .raster_rounding import *  # noqa: E402, F403  (R.FloorOp, R.RintOp...)
from .raster_rounding import ROUNDING_OPS  # noqa: E402

RASTER_OPS = (*RASTER_OPS, *MATHS_OPS, *ARRAY_OPS, *ROUNDING_OPS)

# The ops that ask for a derivative of a function; the AD passes expand them.
AD_OPS: tuple[type[IRDLOperation], ...] = (GradOp, ValueAndGradOp, JvpOp)

# More ops live in their own files (on raster_base.py); the dialect's op list gathers them here.
from .raster_control import CONTROL_OPS  # noqa: E402  (loops and branches: raster.for, scan, while, if)
from .raster_index import INDEX_OPS  # noqa: E402  (traced integers: convert, dynamic_index, dynamic_update)
from .raster_tape import TAPE_OPS, TAPE_TYPES  # noqa: E402  (growable tapes of reverse mode)

Raster = Dialect("raster", [*RASTER_OPS, *AD_OPS, *CONTROL_OPS, *INDEX_OPS, *TAPE_OPS], [*TAPE_TYPES])
