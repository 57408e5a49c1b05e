"""Canonicalization patterns of the raster ops (what `canonicalize` does to raster IR).

The ops carry the trait `RasterCanonicalization` (in raster.py), which hands
xDSL's canonicalize the patterns `PATTERNS` lists for the op's class, tried in
order. Every rewrite keeps the op's result type (a value replaces a result
only when it has the result's type: `x * ones` where the ones broadcast `x`
to a bigger shape stays) and IEEE semantics, including -0.0, NaN and inf:

- `neg(neg x) -> x`, `relu(relu x) -> relu x`: exact.
- `x * 1 -> x`, `1 * x -> x`, `x / 1 -> x`: exact for every x.
- `x + (-0.0) -> x`, `x - (+0.0) -> x`: exact for every x. `x + (+0.0)` is
  left alone: it turns `x = -0.0` into `+0.0`.
- `transpose(transpose x)` -> one transpose, or `x` when the permutations
  cancel; identity transposes, reshapes and broadcasts to the same type -> `x`;
  `reshape(reshape x)` and `broadcast_to(broadcast_to x)` -> one op.
- Constant folding, only for ops IEEE rounds exactly (neg, relu, sqrt, add,
  sub, mul, div, maximum, greater, equal; layout ops; max of a splat) and
  computed in the operands' precision, so the folded value is bit for bit
  what the compiled op computes (`maximum` and `relu` with IEEE 754-2019's
  -0.0 < +0.0, as `arith.maximumf`): splats (`raster.fill`, or a
  `raster.constant` whose elements are all the same bits) fold to a
  `raster.fill` of the result's shape at any size; other constants fold to a
  `raster.constant` when the result has at most `MAX_FOLDED_ELEMENTS`
  elements. A splat `raster.constant` becomes a `raster.fill` (a scalar that
  lower-to-loops folds into its consumers instead of a buffer argument).
  Transcendental ops (exp, log, tanh, pow...) are not folded: the compiled
  code's libm may round differently from numpy.
- `log(exp x) -> x`: exact in real arithmetic and more accurate than the
  unrewritten code in floating point, where exp overflows for x > 709.78
  (log(exp x) = inf) and underflows below -745.13 (-inf), and rounds twice
  elsewhere; NaN and +-inf stay as they are. The one bit it changes besides
  rounding: x = -0.0 stays -0.0 (log(exp(-0.0)) is +0.0).
Not here: `cross_entropy(softmax z, y) -> softmax_cross_entropy(z, y)`
changes the loss where a probability underflows (cross_entropy clamps it,
the fused op is exact), so it is a pass of its own that a pipeline opts into
(`fuse-softmax-cross-entropy`, passes/fuse_softmax_cross_entropy.py).

Before:
    %t = raster.transpose %w perm = [1, 0] : tensor<3x4xf64> -> tensor<4x3xf64>
    %u = raster.transpose %t perm = [1, 0] : tensor<4x3xf64> -> tensor<3x4xf64>
    %one = raster.fill 1.000000e+00 : f64 : tensor<f64>
    %y = raster.mul %u, %one : tensor<3x4xf64>, tensor<f64> -> tensor<3x4xf64>
After:
    (uses of %y use %w)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from raster_mlir.ir_create import create_op
from raster_mlir.per_class import PerClass

from . import raster as R

MAX_FOLDED_ELEMENTS = 64

# ---------------------------------------------------------------------------
# Values known at compile time


def same_bits(array: np.ndarray) -> bool:
    """True when `array` is not empty and every element has the bits of the first (-0.0 != +0.0)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    bits = flat.view(np.uint64 if flat.itemsize == 8 else np.uint32)
    return bits.size > 0 and bool((bits == bits[0]).all())


# "fill", "constant" or "" (anything else) per owner class: what a value's owner tells about its
# elements (isinstance against op classes goes through ABCMeta: asked once per class).
_OWNER_KINDS = PerClass(
    lambda cls: "fill" if issubclass(cls, R.FillOp) else "constant" if issubclass(cls, R.ConstantOp) else ""
)


def splat(value: SSAValue) -> float | None:
    """The one element value of a fill (or of a constant whose elements all have the same bits)."""
    owner = value.owner
    kind = _OWNER_KINDS[type(owner)]
    if kind == "fill":
        return owner.value.value.data
    # Larger splat constants become fills first (SplatConstantToFill): reading their elements
    # each time a pattern looks at an operand would cost their size every time.
    if kind == "constant" and _size(owner.result.type) <= MAX_FOLDED_ELEMENTS:
        elements = _array(owner)
        if same_bits(elements):
            return float(elements.reshape(-1)[0])
    return None


def _size(t) -> int:
    return int(np.prod(R.shape_of(t), dtype=np.int64))


def _numpy_dtype(t) -> np.dtype:
    return np.dtype(np.float32 if R.dtype_of(t) == "f32" else np.float64)


def _array(op: R.ConstantOp) -> np.ndarray:
    dtype = _numpy_dtype(op.result.type)
    return np.asarray(op.value.get_values(), dtype=dtype).reshape(R.shape_of(op.result.type))


def known_array(value: SSAValue) -> np.ndarray | None:
    """The elements of a fill or constant, in its precision (a fill as a broadcast view)."""
    owner = value.owner
    dtype = _numpy_dtype(value.type)
    if isinstance(owner, R.FillOp):
        return np.broadcast_to(dtype.type(owner.value.value.data), R.shape_of(value.type))
    if isinstance(owner, R.ConstantOp):
        return _array(owner)
    return None


def is_splat_of(value: SSAValue, number: float, sign_matters: bool = False) -> bool:
    v = splat(value)
    if v is None or v != number:
        return False
    return not sign_matters or np.signbit(v) == np.signbit(number)


def ieee_maximum(a, b):
    """IEEE 754-2019 maximum (arith.maximumf): NaN if either is NaN, and -0.0 < +0.0."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.where(np.isnan(a) | np.isnan(b), np.nan, np.maximum(a, b)).astype(np.result_type(a, b))
    zeros = (a == 0) & (b == 0)
    return np.where(zeros, np.where(np.signbit(a) & np.signbit(b), -0.0, 0.0).astype(out.dtype), out)


# Ops whose result IEEE arithmetic rounds exactly (numpy computes the same bits).
EXACT_KERNELS: dict[type[Operation], Callable[..., np.ndarray]] = {
    R.NegOp: np.negative,
    R.ReluOp: lambda x: ieee_maximum(x, np.zeros((), x.dtype)),
    R.SqrtOp: np.sqrt,
    R.AddOp: np.add,
    R.SubOp: np.subtract,
    R.MulOp: np.multiply,
    R.DivOp: np.divide,
    R.MaximumOp: ieee_maximum,
    R.GreaterOp: lambda a, b: (a > b).astype(np.result_type(a, b)),
    R.EqualOp: lambda a, b: (a == b).astype(np.result_type(a, b)),
}


def replace_by_known(op: Operation, array: np.ndarray, rewriter: PatternRewriter) -> None:
    """Replace `op`'s one result by a fill (a splat) or a constant holding `array`."""
    t = op.results[0].type
    shape, dtype = R.shape_of(t), R.dtype_of(t)
    array = np.asarray(array, dtype=_numpy_dtype(t))
    if same_bits(array):
        new = R.FillOp.make([], value=float(array.reshape(-1)[0]), shape=shape, dtype=dtype)
    else:
        new = R.ConstantOp.make([], value=np.broadcast_to(array, shape), shape=shape, dtype=dtype)
    new.location = op.location
    rewriter.replace(op, new)


def _foldable(values, result_type) -> list[np.ndarray] | None:
    """The operands' elements when every operand is known and the fold is small or a splat."""
    # (most ops have an unknown operand: decide that before building any operand's array)
    for v in values:
        if not _OWNER_KINDS[type(v.owner)]:
            return None
    arrays = [known_array(v) for v in values]
    all_splats = all(splat(v) is not None for v in values)
    if not all_splats and _size(result_type) > MAX_FOLDED_ELEMENTS:
        return None
    if all_splats:  # compute on one element, then splat
        arrays = [a.reshape(-1)[:1].reshape(()) if a.size else a for a in arrays]
    return arrays


# ---------------------------------------------------------------------------
# Patterns


class FoldExactOp(RewritePattern):
    """An exactly rounded elementwise op of known operands -> its value (fill or constant)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        kernel = EXACT_KERNELS.get(type(op))
        if kernel is None:
            return
        arrays = _foldable(op.operands, op.results[0].type)
        if arrays is None:
            return
        with np.errstate(all="ignore"):
            value = kernel(*arrays)
        replace_by_known(op, np.broadcast_to(value, R.shape_of(op.results[0].type)), rewriter)


class FoldLayoutOp(RewritePattern):
    """transpose / reshape / broadcast_to / max of a known operand -> its value."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        arrays = _foldable(op.operands, op.results[0].type)
        if arrays is None:
            return
        (x,) = arrays
        shape = R.shape_of(op.results[0].type)
        if isinstance(op, R.MaxOp):
            if splat(op.input) is None:
                return  # the max of several values is exact too, but keep it simple: splats only
            value = np.broadcast_to(x.reshape(-1)[:1].reshape(()), shape)
        elif x.ndim == 0:
            value = np.broadcast_to(x, shape)
        elif isinstance(op, R.TransposeOp):
            value = np.transpose(x, op.params()["perm"])
        elif isinstance(op, R.ReshapeOp):
            value = np.reshape(x, shape)
        else:
            value = np.broadcast_to(x, shape)
        replace_by_known(op, value, rewriter)


class SplatConstantToFill(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.ConstantOp):
            return
        elements = _array(op)
        if same_bits(elements):
            replace_by_known(op, elements, rewriter)


class InvolutionPattern(RewritePattern):
    """f(f(x)) -> x for the op class `ROOT` (negation)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        inner = op.operands[0].owner
        if type(inner) is type(op):
            rewriter.replace(op, [], [inner.operands[0]])


class IdempotentPattern(RewritePattern):
    """f(f(x)) -> f(x) (relu)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        inner = op.operands[0].owner
        if type(inner) is type(op):
            rewriter.replace(op, [], [inner.results[0]])


class LogOfExp(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.LogOp):
            return
        inner = op.input.owner
        if isinstance(inner, R.ExpOp):
            rewriter.replace(op, [], [inner.input])


def _replace_by_operand(op: Operation, value: SSAValue, rewriter: PatternRewriter) -> bool:
    if value.type != op.results[0].type:  # the other operand broadcasts it: not the same value
        return False
    rewriter.replace(op, [], [value])
    return True


class MultiplyByOne(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.MulOp):
            return
        lhs, rhs = op.operands  # (by position: an IRDL accessor recomputes the operand segments)
        for x, other in ((lhs, rhs), (rhs, lhs)):
            if is_splat_of(other, 1.0) and _replace_by_operand(op, x, rewriter):
                return


class DivideByOne(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.DivOp):
            return
        lhs, rhs = op.operands
        if is_splat_of(rhs, 1.0):
            _replace_by_operand(op, lhs, rewriter)


class AddNegativeZero(RewritePattern):
    """x + (-0.0) -> x (not + (+0.0): -0.0 + +0.0 is +0.0)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.AddOp):
            return
        lhs, rhs = op.operands  # (by position: an IRDL accessor recomputes the operand segments)
        for x, other in ((lhs, rhs), (rhs, lhs)):
            if is_splat_of(other, -0.0, sign_matters=True) and _replace_by_operand(op, x, rewriter):
                return


class SubtractPositiveZero(RewritePattern):
    """x - (+0.0) -> x (not - (-0.0): -0.0 - -0.0 is +0.0)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.SubOp):
            return
        lhs, rhs = op.operands
        if is_splat_of(rhs, 0.0, sign_matters=True):
            _replace_by_operand(op, lhs, rewriter)


class IdentityLayout(RewritePattern):
    """A transpose with the identity permutation, or a reshape / broadcast to the same type -> x."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, R.TransposeOp) and op.params()["perm"] != tuple(range(len(op.params()["perm"]))):
            return
        _replace_by_operand(op, op.operands[0], rewriter)


class TransposeOfTranspose(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, R.TransposeOp):
            return
        inner = op.input.owner
        if not isinstance(inner, R.TransposeOp):
            return
        first, second = inner.params()["perm"], op.params()["perm"]
        perm = tuple(first[axis] for axis in second)  # result axis i is x's axis first[second[i]]
        if perm == tuple(range(len(perm))):
            rewriter.replace(op, [], [inner.input])
            return
        new = R.TransposeOp.make([inner.input], perm=perm)
        new.location = op.location
        rewriter.replace(op, new)


class CollapseRepeatedLayout(RewritePattern):
    """reshape(reshape x) -> reshape x and broadcast_to(broadcast_to x) -> broadcast_to x."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        inner = op.operands[0].owner
        if type(inner) is not type(op):
            return
        new = create_op(type(op), [inner.operands[0]], [op.results[0].type])
        new.location = op.location
        rewriter.replace(op, new)


FOLD_EXACT = FoldExactOp()
FOLD_LAYOUT = FoldLayoutOp()
IDENTITY_LAYOUT = IdentityLayout()

PATTERNS: dict[type[Operation], tuple[RewritePattern, ...]] = {
    R.NegOp: (FOLD_EXACT, InvolutionPattern()),
    R.ReluOp: (FOLD_EXACT, IdempotentPattern()),
    R.SqrtOp: (FOLD_EXACT,),
    R.LogOp: (LogOfExp(),),
    R.AddOp: (FOLD_EXACT, AddNegativeZero()),
    R.SubOp: (FOLD_EXACT, SubtractPositiveZero()),
    R.MulOp: (FOLD_EXACT, MultiplyByOne()),
    R.DivOp: (FOLD_EXACT, DivideByOne()),
    R.MaximumOp: (FOLD_EXACT,),
    R.GreaterOp: (FOLD_EXACT,),
    R.EqualOp: (FOLD_EXACT,),
    R.TransposeOp: (FOLD_LAYOUT, IDENTITY_LAYOUT, TransposeOfTranspose()),
    R.ReshapeOp: (FOLD_LAYOUT, IDENTITY_LAYOUT, CollapseRepeatedLayout()),
    R.BroadcastToOp: (FOLD_LAYOUT, IDENTITY_LAYOUT, CollapseRepeatedLayout()),
    R.MaxOp: (FOLD_LAYOUT,),
    R.ConstantOp: (SplatConstantToFill(),),
}


def patterns_for(op_class: type[Operation]) -> tuple[RewritePattern, ...]:
    return PATTERNS.get(op_class, ())
