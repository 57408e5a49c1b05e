"""The base classes and type helpers every raster op builds on.

`RasterOp` derives result types from `infer_shapes` (one rule per op in
shapes.py), and `ElementwiseUnaryOp`, `ElementwiseBinaryOp` and `ReductionOp`
share the operands, properties and assembly format of their families. The ops
themselves live in raster.py and the raster_*.py files beside it; they import
this module, and raster.py gathers them all into the `raster` dialect, so no
op file imports raster.py (no import cycle).
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import Float32Type, Float64Type, FloatAttr, IntegerAttr, TensorType, UnitAttr, f32, f64, i64
from xdsl.ir import Attribute, BlockArgument, OpResult, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    operand_def,
    opt_prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import HasCanonicalizationPatternsTrait, Pure
from xdsl.utils.exceptions import VerifyException

from raster_mlir.errors import DTypeError, RasterError
from raster_mlir.ir_create import create_op

from . import shapes as S
from .shapes import Shape

# ---------------------------------------------------------------------------
# Type helpers


def dtype_name(element_type: Attribute) -> str:
    """'f32' / 'f64' / 'i64' for the element types we support, the printed type otherwise."""
    if isinstance(element_type, Float64Type):
        return "f64"
    if isinstance(element_type, Float32Type):
        return "f32"
    return str(element_type)


def element_type(name: str) -> Attribute:
    return {"f64": f64, "f32": f32, "i64": i64}[name]


def is_float_type(t: Attribute) -> bool:
    """A tensor of f32 / f64 (the values gradients flow through); traced integers are tensor<i64>."""
    return isinstance(t, TensorType) and isinstance(t.element_type, (Float32Type, Float64Type))


# The classes of SSA values: `make` takes them as they are (SSAValue.get, for an op given instead
# of its result, imports a module and runs an isinstance against an ABC per operand).
_VALUE_CLASSES = frozenset((OpResult, BlockArgument))


def float_attr(value: float, dtype: str) -> FloatAttr:
    """`FloatAttr(value, dtype)`, one instance per (value, dtype) except for zeros and NaN.

    Building one verifies it (a fifth of the tracer's time on the unrolled ODE, which makes a
    fill for every Python scalar). Attributes are immutable, so fills of the same number share
    one; +0.0 and -0.0 compare equal and NaN differs from itself, so those are built each time.
    """
    if value == 0.0 or value != value:
        return FloatAttr(value, element_type(dtype))
    return _float_attr(value, dtype)


@functools.lru_cache(maxsize=4096)
def _float_attr(value: float, dtype: str) -> FloatAttr:
    return FloatAttr(value, element_type(dtype))


def tensor(shape: Sequence[int], dtype: str) -> TensorType:
    return _tensor(tuple(shape), dtype)


@functools.lru_cache(maxsize=4096)
def _tensor(shape: tuple[int, ...], dtype: str) -> TensorType:
    # Attributes are immutable: one instance per type serves every op (building and verifying
    # a TensorType was a fifth of the tracer's time on a long straight-line program).
    return TensorType(element_type(dtype), list(shape))


def shape_of(t: Attribute) -> Shape:
    known = _TENSOR_FACTS.get(id(t))
    if known is not None and known[0] is t:
        return known[1]
    return _tensor_facts(t)[1]


def dtype_of(t: Attribute) -> str:
    known = _TENSOR_FACTS.get(id(t))
    if known is not None and known[0] is t:
        return known[2]
    return _tensor_facts(t)[2]


# (tensor type, its shape, its dtype name) by id of the type: the tracer, the rules and the
# verifier ask shape_of / dtype_of of every operand and result (an isinstance against an ABC and
# a walk of the shape each time). The entry holds the type, so its id is not reused while cached.
_TENSOR_FACTS: dict[int, tuple[TensorType, Shape, str]] = {}
_MAX_TENSOR_FACTS = 4096


def _tensor_facts(t: Attribute) -> tuple[TensorType, Shape, str]:
    if not isinstance(t, TensorType):
        raise DTypeError(f"expected a tensor type, got {t}")
    facts = (t, tuple(t.get_shape()), dtype_name(t.element_type))
    if len(_TENSOR_FACTS) >= _MAX_TENSOR_FACTS:
        _TENSOR_FACTS.clear()
    _TENSOR_FACTS[id(t)] = facts
    return facts


# ---------------------------------------------------------------------------
# Canonicalization: xDSL's canonicalize asks each op's trait for its patterns


class RasterCanonicalization(HasCanonicalizationPatternsTrait):
    """The op class's canonicalization patterns, listed in raster_canonicalize.PATTERNS."""

    def get_patterns(self, op: type[IRDLOperation]):
        from .raster_canonicalize import patterns_for  # the patterns import this module

        return patterns_for(op)

    @classmethod
    def get_canonicalization_patterns(cls):
        return ()


# ---------------------------------------------------------------------------
# Base classes


class RasterOp(IRDLOperation, abc.ABC):
    """Shared machinery of raster ops: result types come from `infer_shapes`.

    All operands share one float element type, and so do the results.
    """

    # Names of the operands, used in error messages ("weight (3, 4) and input (5,)").
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ()

    # Whether the op also computes on traced integers (`tensor<i64>`, the loop index:
    # `i + 1`, `i > 3`); the tracer converts integers to floats for every other op.
    INTEGER_OK: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def infer_shapes(cls, shapes: Sequence[Shape], **params) -> list[Shape]:
        """Result shapes for operand shapes; raises ShapeError naming the op."""

    @classmethod
    def infer_types(cls, types: Sequence[Attribute], **params) -> list[TensorType]:
        """Result types for operand types, or a ShapeError / DTypeError naming the op."""
        dtype = S.same_dtype(cls.name, [dtype_of(t) for t in types]) if types else params.get("dtype")
        if dtype is None:
            raise DTypeError(f"{cls.name}: no operand fixes the element type; pass dtype=")
        if dtype == "i64" and not cls.INTEGER_OK:
            raise DTypeError(f"{cls.name}: integer operands (tensor<i64>) are not supported; convert them to a float dtype")
        shapes = cls.infer_shapes([shape_of(t) for t in types], **params)
        return [tensor(s, dtype) for s in shapes]

    @classmethod
    def properties_for(cls, **params) -> dict[str, Attribute]:
        return {}

    @classmethod
    def canonical_params(cls, shapes: Sequence[Shape], **params) -> dict:
        """User-facing parameters in the op's stored form (negative axes resolved...)."""
        return params

    def params(self) -> dict:
        """This op's properties as Python values (the inverse of `properties_for`)."""
        return {}

    @classmethod
    def make(cls, operands: Sequence[SSAValue], **params):
        """Build the op, deriving its result types (raises ShapeError / DTypeError)."""
        operands = [o if type(o) in _VALUE_CLASSES else SSAValue.get(o) for o in operands]
        result_types = cls.infer_types([o.type for o in operands], **params)
        return create_op(cls, operands, result_types, cls.properties_for(**params))

    def verify_(self) -> None:
        try:
            expected = type(self).infer_types(
                [o.type for o in self.operands], dtype=self._result_dtype(), **self.params()
            )
        except RasterError as e:
            raise VerifyException(str(e)) from None
        except ValueError as e:  # properties that do not fit the types (a constant's element count)
            raise VerifyException(
                f"{self.name}: properties do not match the result type {self.result_types[0]}: {e}"
            ) from None
        actual = list(self.result_types)
        if expected != actual:
            raise VerifyException(
                f"{self.name}: result type(s) {', '.join(map(str, actual))} do not match "
                f"the operands, which give {', '.join(map(str, expected))}"
            )

    def _result_dtype(self) -> str | None:
        return dtype_of(self.result_types[0]) if self.result_types else None


class ElementwiseUnaryOp(RasterOp):
    """y = f(x) elementwise; same shape and type."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$input attr-dict `:` type($input)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [shapes[0]]


class ElementwiseBinaryOp(RasterOp):
    """z = f(x, y) elementwise with numpy broadcasting of the operand shapes."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)"
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("lhs", "rhs")

    @classmethod
    def infer_shapes(cls, shapes, **params):
        return [S.broadcast(cls.name, shapes[0], shapes[1])]


class ReductionOp(RasterOp):
    """Reduce over one `axis` (all axes when absent); `keepdims` keeps it as size 1."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    axis = opt_prop_def(IntegerAttr)
    keepdims = opt_prop_def(UnitAttr)
    traits = traits_def(Pure(), RasterCanonicalization())
    assembly_format = (
        "$input (`axis` `=` $axis^)? (`keepdims` $keepdims^)? attr-dict "
        "`:` type($input) `->` type($result)"
    )
    OPERAND_NAMES: ClassVar[tuple[str, ...]] = ("input",)

    # Sum over nothing is 0; a mean or max over nothing has no value (numpy: nan / error).
    EMPTY_OK: ClassVar[bool] = True

    @classmethod
    def infer_shapes(cls, shapes, axis=None, keepdims=False, **params):
        if not cls.EMPTY_OK:
            S.nonempty_axis(cls.name, shapes[0], axis)
        return [S.reduce(cls.name, shapes[0], axis, keepdims)]

    @classmethod
    def canonical_params(cls, shapes, axis=None, keepdims=False, **params):
        if axis is not None:
            axis = S.normalize_axis(cls.name, int(axis), len(shapes[0]), shapes[0])
        return {"axis": axis, "keepdims": bool(keepdims), **params}

    @classmethod
    def properties_for(cls, axis=None, keepdims=False, **params):
        props: dict[str, Attribute] = {}
        if axis is not None:
            props["axis"] = IntegerAttr(axis, i64)
        if keepdims:
            props["keepdims"] = UnitAttr()
        return props

    def params(self):
        axis = None if self.axis is None else self.axis.value.data
        return {"axis": axis, "keepdims": self.keepdims is not None}

    def verify_(self) -> None:
        super().verify_()
        rank = len(shape_of(self.input.type))
        if self.axis is not None and not 0 <= self.axis.value.data < rank:
            raise VerifyException(f"{self.name}: axis {self.axis.value.data} must be in [0, {rank})")
