"""A small builder for loop-level IR (scf.for + arith + math + memref).

Used by `lower-to-loops` and by loop passes. It appends ops to a current
block; loop bodies are written as Python callbacks, so a nest reads like the
loops it builds:

    b.loop(n, body=lambda i: b.store(b.load(x, [i]), y, [i]))

Index and float constants are created once per function, at the top of its
entry block, so they dominate every use and loops stay free of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from xdsl.dialects import arith, math, memref, scf
from xdsl.dialects.builtin import ArrayAttr, FloatAttr, IndexType, IntAttr, IntegerAttr, MemRefType, NoneAttr
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from raster_mlir.ir_create import create_op

LoopBody = Callable[..., Sequence[SSAValue] | None]

# Properties and attributes of an op built by its IRDL constructor, per class (the default
# fast-math flags of arith/math ops): `same_type` copies them into ops it builds with `create`.
_DEFAULTS: dict[type[Operation], tuple[dict, dict]] = {}
_ALIGNMENT = IntegerAttr(64, 64)  # bytes, for every temporary buffer
_ALLOC_PROPERTIES: dict | None = None  # of `memref.alloc() {alignment = 64}`, whatever the type
INDEX = IndexType()  # the type of every induction variable (building one per loop cost a tenth of the lowering)
_NO_ATTR = NoneAttr()  # (a memref type's layout and memory space)


def same_type(op_cls: type[Operation], *operands: SSAValue) -> Operation:
    """`op_cls(*operands)` for an op whose one result has its first operand's type.

    The same op as the IRDL constructor builds (the first one per class is built
    by it, and its default properties are reused), made field by field
    (`ir_create.create_op`): about 5x faster, and lower-to-loops builds tens of thousands of ops.
    """
    defaults = _DEFAULTS.get(op_cls)
    if defaults is None:
        op = op_cls(*operands)
        _DEFAULTS[op_cls] = (dict(op.properties), dict(op.attributes))
        return op
    properties, attributes = defaults
    return create_op(op_cls, operands, (operands[0].type,), properties, attributes)


def aligned_alloc(memref_type: MemRefType) -> memref.AllocOp:
    """`memref.alloc() {alignment = 64}` of `memref_type` (not inserted anywhere)."""
    global _ALLOC_PROPERTIES
    if _ALLOC_PROPERTIES is None:
        op = memref.AllocOp([], [], memref_type, _ALIGNMENT)
        _ALLOC_PROPERTIES = dict(op.properties)
        return op
    # as `same_type` does: the properties the IRDL constructor sets, without its checks
    return create_op(memref.AllocOp, (), (memref_type,), _ALLOC_PROPERTIES)


@functools.lru_cache(maxsize=4096)
def memref_type(element_type: Attribute, shape: tuple[int, ...]) -> MemRefType:
    """`MemRefType(element_type, shape)`, made once per pair.

    Types are immutable values, safe to share, and a program uses few. The constructor checks
    its shape with a generic `isa()` (about 0.1 ms each the first times in a process, 30 us
    after); `MemRefType.new` builds the same type from its parameters, checked once each.
    """
    return MemRefType.new([ArrayAttr([IntAttr(d) for d in shape]), element_type, _NO_ATTR, _NO_ATTR])


class LoopBuilder:
    def __init__(self, entry: Block):
        self.entry = entry
        self.block = entry
        self._constants: dict[tuple, SSAValue] = {}
        self._constant_anchor: Operation | None = None
        self.ops_added = 0  # ops appended by `add` (a measure of a loop body's size while it is built)

    # -- plumbing -----------------------------------------------------------
    def add(self, op: Operation) -> SSAValue | None:
        self.block.add_op(op)
        self.ops_added += 1
        return op.results[0] if len(op.results) == 1 else None

    def _constant(self, key: tuple, make: Callable[[], Operation]) -> SSAValue:
        if key not in self._constants:
            op = make()
            # Constants go at the top of the entry block, in creation order.
            if self._constant_anchor is None:
                first = self.entry.first_op
                if first is None:
                    self.entry.add_op(op)
                else:
                    self.entry.insert_op_before(op, first)
            else:
                self.entry.insert_op_after(op, self._constant_anchor)
            self._constant_anchor = op
            self._constants[key] = op.results[0]
        return self._constants[key]

    def index(self, n: int) -> SSAValue:
        return self._constant(("index", n), lambda: arith.ConstantOp(IntegerAttr(n, INDEX)))

    def integer(self, value: int, integer_type: Attribute) -> SSAValue:
        # (keyed by the type itself: equal types are equal attributes; `str` of a type runs xDSL's printer)
        return self._constant(("int", value, integer_type), lambda: arith.ConstantOp(IntegerAttr(value, integer_type)))

    def float(self, value: float, element_type: Attribute) -> SSAValue:
        key = ("float", repr(float(value)), element_type)
        return self._constant(key, lambda: arith.ConstantOp(FloatAttr(float(value), element_type)))

    # -- memory -------------------------------------------------------------
    def alloc(self, memref_type: MemRefType) -> SSAValue:
        """A temporary buffer, always allocated in the entry block (never inside a loop).

        Appending to the entry block is right even while a loop body is being
        built: the loop op is added to its parent only after its body, so the
        alloc lands before it.
        """
        op = aligned_alloc(memref_type)
        self.entry.add_op(op)
        return op.results[0]

    def load(self, buffer: SSAValue, indices: Sequence[SSAValue]) -> SSAValue:
        memref_type = buffer.type
        assert isinstance(memref_type, MemRefType)
        return self.add(create_op(memref.LoadOp, [buffer, *indices], (memref_type.element_type,)))

    def store(self, value: SSAValue, buffer: SSAValue, indices: Sequence[SSAValue]) -> None:
        self.add(create_op(memref.StoreOp, [value, buffer, *indices]))

    # -- loops --------------------------------------------------------------
    def loop(self, extent: int, inits: Sequence[SSAValue] = (), body: LoopBody | None = None) -> list[SSAValue]:
        """for i in range(extent) carrying `inits`; body(i, *carried) returns the next carried values.

        A loop of one iteration is not built: its body runs in place with i = 0,
        which keeps size-1 dimensions (reshapes to (n, 1), keepdims) loop-free.
        """
        if extent == 1:
            yielded = body(self.index(0), *inits) if body else None
            return list(yielded or [])
        return self.range_loop(self.index(0), self.index(extent), self.index(1), inits, body)

    def range_loop(
        self,
        lower: SSAValue,
        upper: SSAValue,
        step: SSAValue,
        inits: Sequence[SSAValue] = (),
        body: LoopBody | None = None,
    ) -> list[SSAValue]:
        """for i in range(lower, upper, step) with SSA bounds (which may be computed at run time)."""
        block = Block(arg_types=[INDEX, *[v.type for v in inits]])
        yielded = self.inside(block, lambda: body(block.args[0], *block.args[1:]) if body else None)
        block.add_op(create_op(scf.YieldOp, yielded or ()))
        # scf.for has no properties: `create_op` builds what its IRDL constructor would, 6x faster.
        op = create_op(scf.ForOp, [lower, upper, step, *inits], [v.type for v in inits], regions=(Region(block),))
        self.block.add_op(op)
        return list(op.results)

    def if_else(
        self,
        cond: SSAValue,
        then: Callable[[], Sequence[SSAValue] | None],
        otherwise: Callable[[], Sequence[SSAValue] | None] | None = None,
    ) -> list[SSAValue]:
        """scf.if; each branch callback returns the values it yields (the same types in both)."""
        then_block = Block()
        yielded = list(self.inside(then_block, then) or [])
        then_block.add_op(scf.YieldOp(*yielded))
        regions = [Region(then_block)]
        if otherwise is not None:
            else_block = Block()
            else_block.add_op(scf.YieldOp(*(self.inside(else_block, otherwise) or [])))
            regions.append(Region(else_block))
        op = scf.IfOp(cond, [v.type for v in yielded], *regions)
        self.block.add_op(op)
        return list(op.results)

    def inside(self, block: Block, emit: Callable[[], object]):
        """Run `emit` with ops appended to `block` instead of the current block."""
        outer, self.block = self.block, block
        try:
            return emit()
        finally:
            self.block = outer

    def nest(self, extents: Sequence[int], body: Callable[[list[SSAValue]], None]) -> None:
        """Perfect loop nest over `extents` (row-major: the last index is innermost)."""
        self.reduce_nest(extents, [], lambda idx: body(idx) or [])

    def reduce_nest(
        self,
        extents: Sequence[int],
        inits: Sequence[SSAValue],
        body: Callable[..., Sequence[SSAValue]],
    ) -> list[SSAValue]:
        """Loop nest carrying `inits` through every level; body(idx, *carried) -> new carried."""
        extents = list(extents)

        def level(depth: int, idx: list[SSAValue], carried: Sequence[SSAValue]) -> list[SSAValue]:
            if depth == len(extents):
                return list(body(idx, *carried))
            return self.loop(
                extents[depth], carried, lambda i, *c: level(depth + 1, [*idx, i], c)
            )

        try:
            return level(0, [], list(inits))
        finally:
            # `level` calls itself through its closure: a reference cycle that kept the body, its
            # captures and this builder until the next garbage collection (1,500 per 100-step ODE).
            del level

    # -- scalar arithmetic ----------------------------------------------------
    def addf(self, a, b):
        return self.add(same_type(arith.AddfOp, a, b))

    def subf(self, a, b):
        return self.add(same_type(arith.SubfOp, a, b))

    def mulf(self, a, b):
        return self.add(same_type(arith.MulfOp, a, b))

    def divf(self, a, b):
        return self.add(same_type(arith.DivfOp, a, b))

    def negf(self, a):
        return self.add(same_type(arith.NegfOp, a))

    def maxf(self, a, b):
        return self.add(same_type(arith.MaximumfOp, a, b))

    def minf(self, a, b):
        return self.add(arith.MinimumfOp(a, b))

    def addi(self, a, b):
        return self.add(same_type(arith.AddiOp, a, b))

    def subi(self, a, b):
        return self.add(same_type(arith.SubiOp, a, b))

    def ori(self, a, b):
        return self.add(same_type(arith.OrIOp, a, b))

    def cmpf(self, a, b, predicate: str):
        return self.add(arith.CmpfOp(a, b, predicate))

    def select(self, cond, a, b):
        return self.add(arith.SelectOp(cond, a, b))

    def exp(self, a):
        return self.add(same_type(math.ExpOp, a))

    def log(self, a):
        return self.add(same_type(math.LogOp, a))

    def tanh(self, a):
        return self.add(same_type(math.TanhOp, a))

    def sqrt(self, a):
        return self.add(same_type(math.SqrtOp, a))

    def powf(self, a, b):
        return self.add(same_type(math.PowFOp, a, b))
