"""Lowering recipes of the traced-integer ops: dtype conversion and dynamic indexing.

Indices arrive as i64 scalars (the loop index is an SSA value, not a
buffer); the run-time policy of dialects/raster_index.py is applied once
per index before any loop: i < 0 -> i + n, then clamp into [0, n - 1], then
`arith.index_cast` to `index`.

- dynamic_index: a nest over the slice, reading x[i, ..., j...];
- dynamic_update(_add): copy x into the result unless the result *is* x's
  buffer (lower-to-loops gives a loop carry's update its carry's buffer, so
  writing a tape row or `x.at[i].set(v)` in a loop costs the slice, not the
  array), then a nest over the slice writing (or adding) the value;
- convert: sitofp / extf / truncf, and for float -> integer a truncation
  that is defined everywhere: NaN -> 0, beyond the i64 range -> saturated
  (a plain fptosi would be poison there);
- empty: only its buffer (lower-to-loops never initialises it).
"""

from __future__ import annotations

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, Float64Type, IndexType, IntegerType
from xdsl.ir import SSAValue

from raster_mlir.dialects import raster_index as X

from .loop_builder import LoopBuilder
from .loop_recipes import RECIPES, Buffer, Scalar, Storage, copy_into, elementwise, read

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def scalar_of(b: LoopBuilder, s: Storage) -> SSAValue:
    """The value of a 0-d operand (an SSA scalar, or one load)."""
    return s.value if isinstance(s, Scalar) else b.load(s.ref, [])


def clamped_index(b: LoopBuilder, i: SSAValue, n: int) -> SSAValue:
    """An `index` for i64 `i` on an axis of size n: negative from the end, then clamped to [0, n - 1]."""
    t = i.type
    wrapped = b.select(b.add(arith.CmpiOp(i, b.integer(0, t), "slt")), b.addi(i, b.integer(n, t)), i)
    inside = b.add(arith.MinSIOp(b.add(arith.MaxSIOp(wrapped, b.integer(0, t))), b.integer(n - 1, t)))
    return b.add(arith.IndexCastOp(inside, IndexType()))


def _indices(b: LoopBuilder, x: Storage, index_storage) -> list[SSAValue]:
    return [clamped_index(b, scalar_of(b, s), x.shape[axis]) for axis, s in enumerate(index_storage)]


def dynamic_index(b: LoopBuilder, op, ins, outs) -> None:
    x, out = ins[0], outs[0]
    lead = _indices(b, x, ins[1:])
    b.nest(out.shape, lambda idx: b.store(read(b, x, [*lead, *idx], x.shape), out.ref, idx))


def _dynamic_update(add: bool):
    def recipe(b: LoopBuilder, op, ins, outs) -> None:
        x, value, out = ins[0], ins[1], outs[0]
        if not (isinstance(x, Buffer) and x.ref is out.ref):
            copy_into(b, x, out)
        lead = _indices(b, x, ins[2:])

        def body(idx):
            target = [*lead, *idx]
            v = read(b, value, idx, value.shape)
            if add:
                v = b.addf(b.load(out.ref, target), v) if not isinstance(v.type, IntegerType) else b.addi(b.load(out.ref, target), v)
            b.store(v, out.ref, target)

        b.nest(value.shape, body)

    return recipe


def _convert(b: LoopBuilder, x: SSAValue, target) -> SSAValue:
    source = x.type
    if source == target:
        return x
    if isinstance(target, IntegerType):
        if isinstance(source, IntegerType):
            return x
        # Truncation toward zero, defined for every input (fptosi is poison out of range).
        limit = b.float(2.0**63, source)
        clamped = b.add(arith.MaximumfOp(b.add(arith.MinimumfOp(x, b.float(2.0**63 - 2**11, source))), b.float(-(2.0**63), source)))
        as_int = b.add(arith.FPToSIOp(clamped, target))
        as_int = b.select(b.cmpf(x, limit, "oge"), b.integer(I64_MAX, target), as_int)
        return b.select(b.cmpf(x, x, "uno"), b.integer(0, target), as_int)
    if isinstance(source, IntegerType):
        return b.add(arith.SIToFPOp(x, target))
    if isinstance(target, Float64Type) and isinstance(source, Float32Type):
        return b.add(arith.ExtFOp(x, target))
    return b.add(arith.TruncFOp(x, target))


def _convert_fn(op):
    target = op.result.type.element_type
    return lambda b, x: _convert(b, x, target)


def convert(b: LoopBuilder, op, ins, outs) -> None:
    elementwise(_convert_fn(op))(b, op, ins, outs)


convert.scalar_fn_of = _convert_fn  # lower-to-loops converts scalars (the loop index) without a loop


def _divmod(b: LoopBuilder, x: SSAValue, y: SSAValue) -> tuple[SSAValue, SSAValue]:
    """Python's (x // y, x % y) on i64, with x // 0 = x % 0 = 0 and no trap (x86 faults on x / 0 and MIN / -1)."""
    t = x.type
    zero, one, minus_one = b.integer(0, t), b.integer(1, t), b.integer(-1, t)
    by_zero = b.add(arith.CmpiOp(y, zero, "eq"))
    by_minus_one = b.add(arith.CmpiOp(y, minus_one, "eq"))
    safe = b.select(b.ori(by_zero, by_minus_one), one, y)
    q, r = b.add(arith.DivSIOp(x, safe)), b.add(arith.RemSIOp(x, safe))
    # Truncated -> floored: when the remainder's sign differs from the divisor's, step down.
    adjust = b.add(arith.AndIOp(b.add(arith.CmpiOp(r, zero, "ne")), b.add(arith.XOrIOp(b.add(arith.CmpiOp(r, zero, "slt")), b.add(arith.CmpiOp(safe, zero, "slt"))))))
    q = b.select(adjust, b.subi(q, one), q)
    r = b.select(adjust, b.addi(r, safe), r)
    q = b.select(by_minus_one, b.subi(zero, x), b.select(by_zero, zero, q))
    r = b.select(b.ori(by_zero, by_minus_one), zero, r)
    return q, r


def empty(b: LoopBuilder, op, ins, outs) -> None:
    return None


INDEX_RECIPES = {
    X.ConvertOp: convert,
    X.DynamicIndexOp: dynamic_index,
    X.DynamicUpdateOp: _dynamic_update(add=False),
    X.DynamicUpdateAddOp: _dynamic_update(add=True),
    X.EmptyOp: empty,
    X.FloorDivOp: elementwise(lambda b, x, y: _divmod(b, x, y)[0]),
    X.ModOp: elementwise(lambda b, x, y: _divmod(b, x, y)[1]),
}
RECIPES.update(INDEX_RECIPES)
