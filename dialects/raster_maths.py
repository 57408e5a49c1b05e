"""More elementwise maths, comparisons, selection and reductions of the `raster` dialect.

The ops here reuse the base classes of `raster.py` (so they share its shape
rules, properties and verifiers) and are registered in the same `Raster`
dialect; this file only keeps `raster.py` small.

- unary: sin cos tan exp2 log1p expm1 abs sign erf softplus
- binary (numpy broadcasting): minimum atan2, and the comparisons less
  less_equal greater_equal not_equal, which give float masks (1.0 / 0.0 of
  the operands' dtype) like `raster.greater` / `raster.equal`
- where: select between two operands by a mask (non-zero = first operand)
- reductions: min prod logsumexp (over one axis or all), and cumsum (a
  running sum along one axis, optionally from the end)

Non-differentiable points (the conventions of the reverse rules): abs'(0) = 0,
minimum at ties gives each side half, sign and the comparisons have zero
gradient, atan2 at (0, 0) has no derivative (NaN).
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import IntegerAttr, TensorType, UnitAttr, i64
from xdsl.ir import Attribute
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from . import shapes as S
from .raster_base import ElementwiseBinaryOp, ElementwiseUnaryOp, RasterOp, ReductionOp, shape_of

# ---------------------------------------------------------------------------
# Elementwise unary


@irdl_op_definition
class SinOp(ElementwiseUnaryOp):
    """y = sin(x).  `%y = raster.sin %x : tensor<4xf64>`"""

    name = "raster.sin"


@irdl_op_definition
class CosOp(ElementwiseUnaryOp):
    """y = cos(x).  `%y = raster.cos %x : tensor<4xf64>`"""

    name = "raster.cos"


@irdl_op_definition
class TanOp(ElementwiseUnaryOp):
    """y = tan(x).  `%y = raster.tan %x : tensor<4xf64>`"""

    name = "raster.tan"


@irdl_op_definition
class Exp2Op(ElementwiseUnaryOp):
    """y = 2 ** x.  `%y = raster.exp2 %x : tensor<4xf64>`"""

    name = "raster.exp2"


@irdl_op_definition
class Log1pOp(ElementwiseUnaryOp):
    """y = log(1 + x), accurate for small |x|.  `%y = raster.log1p %x : tensor<4xf64>`"""

    name = "raster.log1p"


@irdl_op_definition
class Expm1Op(ElementwiseUnaryOp):
    """y = exp(x) - 1, accurate for small |x|.  `%y = raster.expm1 %x : tensor<4xf64>`"""

    name = "raster.expm1"


@irdl_op_definition
class AbsOp(ElementwiseUnaryOp):
    """y = |x|. Its reverse rule uses sign(x), so abs'(0) = 0 (as JAX).  `%y = raster.abs %x : tensor<4xf64>`"""

    name = "raster.abs"


@irdl_op_definition
class SignOp(ElementwiseUnaryOp):
    """y = -1, 0 or 1 by the sign of x (NaN stays NaN); zero gradient.  `%y = raster.sign %x : tensor<4xf64>`"""

    name = "raster.sign"


@irdl_op_definition
class ErfOp(ElementwiseUnaryOp):
    """y = erf(x), the error function.  `%y = raster.erf %x : tensor<4xf64>`"""

    name = "raster.erf"


@irdl_op_definition
class SoftplusOp(ElementwiseUnaryOp):
    """y = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)) (no overflow).

    `%y = raster.softplus %x : tensor<4xf64>`
    """

    name = "raster.softplus"


# ---------------------------------------------------------------------------
# Elementwise binary


@irdl_op_definition
class MinimumOp(ElementwiseBinaryOp):
    """z = min(x, y) elementwise (broadcasting; NaN if either is NaN, as numpy).

    `%z = raster.minimum %x, %y : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`
    """

    name = "raster.minimum"


@irdl_op_definition
class Atan2Op(ElementwiseBinaryOp):
    """z = atan2(y, x), the angle of the point (x, y) in (-pi, pi] (numpy's arctan2(y, x)).

    `%z = raster.atan2 %y, %x : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>`
    """

    name = "raster.atan2"


class ComparisonOp(ElementwiseBinaryOp):
    """A float mask: 1.0 where the comparison holds, else 0.0 (broadcasting); no gradient."""

    # arith.cmpf predicate of the lowering (ordered except `une`: NaN != anything is true, as numpy).
    PREDICATE: ClassVar[str] = ""
    INTEGER_OK: ClassVar[bool] = True  # on traced integers (i < n): an i64 mask, compared with arith.cmpi


@irdl_op_definition
class LessOp(ComparisonOp):
    """z = 1.0 where x < y else 0.0.  `%m = raster.less %x, %y : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.less"
    PREDICATE: ClassVar[str] = "olt"


@irdl_op_definition
class LessEqualOp(ComparisonOp):
    """z = 1.0 where x <= y else 0.0.  `%m = raster.less_equal %x, %y : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.less_equal"
    PREDICATE: ClassVar[str] = "ole"


@irdl_op_definition
class GreaterEqualOp(ComparisonOp):
    """z = 1.0 where x >= y else 0.0.  `%m = raster.greater_equal %x, %y : tensor<4xf64>, tensor<f64> -> tensor<4xf64>`"""

    name = "raster.greater_equal"
    PREDICATE: ClassVar[str] = "oge"


@irdl_op_definition
class NotEqualOp(ComparisonOp):
    """z = 1.0 where x != y (or either is NaN) else 0.0.  `%m = raster.not_equal %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>`"""

    name = "raster.not_equal"
    PREDICATE: ClassVar[str] = "une"


# ---------------------------------------------------------------------------
# Selection


@irdl_op_definition
class WhereOp(RasterOp):
    """z = on_true where pred != 0 else on_false, with numpy broadcasting of all three.

    `pred` is a float mask of the same dtype (a comparison's result); NaN counts
    as non-zero, as in numpy. Gradients flow to on_true and on_false, never to pred.

    `%z = raster.where %m, %x, %y : tensor<4xf64>, tensor<4xf64>, tensor<f64> -> tensor<4xf64>`
    """

    name = "raster.where"
    INTEGER_OK: ClassVar[bool] = True  # selects between traced integers too (reverse mode's tape rows)
    pred = operand_def(TensorType)
    on_true = operand_def(TensorType)
    on_false = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$pred `,` $on_true `,` $on_false attr-dict `:` type($pred) `,` type($on_true) `,` "
        "type($on_false) `->` type($result)"
    )
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("pred", "on_true", "on_false")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        pred, on_true, on_false = shapes
        return [S.broadcast(cls.name, S.broadcast(cls.name, pred, on_true), on_false)]


# ---------------------------------------------------------------------------
# Reductions


@irdl_op_definition
class MinOp(ReductionOp):
    """Minimum over `axis` (or everything).  `%m = raster.min %x axis = 1 : i64 : tensor<3x4xf64> -> tensor<3xf64>`"""

    name = "raster.min"
    EMPTY_OK: ClassVar[bool] = False


@irdl_op_definition
class ProdOp(ReductionOp):
    """Product over `axis` (or everything); 1 over nothing.  `%p = raster.prod %x : tensor<3x4xf64> -> tensor<f64>`"""

    name = "raster.prod"


@irdl_op_definition
class LogSumExpOp(ReductionOp):
    """log(sum(exp(x))) over `axis` (or everything), as m + log(sum(exp(x - m))) with m the max.

    No overflow for large x; where m is infinite, m is replaced by 0 (as JAX),
    so all -inf gives -inf and any +inf gives +inf.

    `%l = raster.logsumexp %x axis = 1 : i64 keepdims : tensor<3x4xf64> -> tensor<3x1xf64>`
    """

    name = "raster.logsumexp"
    EMPTY_OK: ClassVar[bool] = False


@irdl_op_definition
class CumsumOp(RasterOp):
    """Running sum along `axis`: y[.., i, ..] = sum of x[.., :i+1, ..]; with `reverse`, of x[.., i:, ..].

    `%y = raster.cumsum %x axis = 1 : i64 : tensor<3x4xf64>`
    """

    name = "raster.cumsum"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    axis = prop_def(IntegerAttr)
    reverse = opt_prop_def(UnitAttr)
    traits = traits_def(Pure())
    assembly_format = "$input `axis` `=` $axis (`reverse` $reverse^)? attr-dict `:` type($input)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    @classmethod
    def infer_shapes(cls, shapes, axis=0, **params):
        S.rank_at_least(cls.name, "input", shapes[0], 1)
        S.normalize_axis(cls.name, int(axis), len(shapes[0]), shapes[0])
        return [shapes[0]]

    @classmethod
    def canonical_params(cls, shapes, axis=0, reverse=False, **params):
        S.rank_at_least(cls.name, "input", shapes[0], 1)
        axis = S.normalize_axis(cls.name, int(axis), len(shapes[0]), shapes[0])
        return {"axis": axis, "reverse": bool(reverse), **params}

    @classmethod
    def properties_for(cls, axis=0, reverse=False, **params) -> dict[str, Attribute]:
        props: dict[str, Attribute] = {"axis": IntegerAttr(axis, i64)}
        if reverse:
            props["reverse"] = UnitAttr()
        return props

    def params(self):
        return {"axis": self.axis.value.data, "reverse": self.reverse is not None}

    def verify_(self) -> None:
        super().verify_()
        rank = len(shape_of(self.input.type))
        if not 0 <= self.axis.value.data < rank:
            raise VerifyException(
                f"{self.name}: axis {self.axis.value.data} must be in [0, {rank}) for {self.input.type} "
                "(negative axes are resolved when the op is built)"
            )


MATHS_OPS: tuple[type[RasterOp], ...] = (
    SinOp, CosOp, TanOp, Exp2Op, Log1pOp, Expm1Op, AbsOp, SignOp, ErfOp, SoftplusOp,
    MinimumOp, Atan2Op, LessOp, LessEqualOp, GreaterEqualOp, NotEqualOp,
    WhereOp,
    MinOp, ProdOp, LogSumExpOp, CumsumOp,
)  # fmt: skip

__all__ = ["ComparisonOp", "MATHS_OPS", *(op.__name__ for op in MATHS_OPS)]
