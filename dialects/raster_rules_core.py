"""The machinery of reverse rules: `RuleSet`, the `ReverseBuilder` rules emit IR with.

A reverse rule (rrule) turns the cotangents of an op's results into the
cotangents of its operands, by emitting raster ops:

    def rule(b: ReverseBuilder, op: R.MulOp, cts) -> list[SSAValue | None]:
        (ct,) = cts                          # one cotangent per result (None: no cotangent)
        return [b.unbroadcast(b.mul(ct, op.rhs), b.shape(op.lhs)) if b.needs(0) else None,
                b.unbroadcast(b.mul(ct, op.lhs), b.shape(op.rhs)) if b.needs(1) else None]

It returns one entry per operand; None means "no gradient flows there".
`b.needs(i)` says whether operand i depends on a differentiated argument, so
a rule can skip work nobody asked for (returning a value anyway is allowed:
it is dead code that DCE removes).

A `RuleSet` maps op classes to rules and records the ops that have no
derivative by design (comparisons, constants). Rule sets are plain objects:
`copy()`, `extend(other)`, `without(op_cls)` build new ones, so a research
pass can swap or extend the rules the autodiff pass uses without touching
the default set (see `raster_rules.register_rule_set`).
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable, Sequence

from xdsl.dialects.builtin import FileLineColLoc
from xdsl.ir import Block, Operation, SSAValue

from raster_mlir.dialects import raster as R

Cotangents = Sequence[SSAValue | None]
Rule = Callable[["ReverseBuilder", Operation, Cotangents], Sequence[SSAValue | None]]


def describe_location(op: Operation) -> str | None:
    """`file.py:12: <source text>` for an op carrying a file location, else None."""
    loc = op.location
    if not isinstance(loc, FileLineColLoc):
        return None
    filename, line = loc.filename.data, loc.line.data
    text = linecache.getline(filename, line).strip()
    return f"{filename}:{line}: {text}" if text else f"{filename}:{line}"


class RuleSet:
    """Reverse rules by op class, plus the op classes marked non-differentiable.

    A rule registered for a class also serves its subclasses unless they have
    their own. `register` is a decorator:

        rules = RuleSet("mine")
        @rules.register(R.ExpOp)
        def exp_rule(b, op, cts): return [b.mul(cts[0], op.result)]
    """

    def __init__(self, name: str = "rules"):
        self.name = name
        self._rules: dict[type[Operation], Rule] = {}
        self._nondifferentiable: set[type[Operation]] = set()

    # -- building -----------------------------------------------------------
    def register(self, *op_classes: type[Operation]) -> Callable[[Rule], Rule]:
        """Decorator: `rule` becomes the reverse rule of every class in `op_classes`."""

        def decorate(rule: Rule) -> Rule:
            for cls in op_classes:
                self._rules[cls] = rule
                self._nondifferentiable.discard(cls)
            return rule

        return decorate

    def mark_nondifferentiable(self, *op_classes: type[Operation]) -> RuleSet:
        """Declare that these ops pass no gradient to their operands (their results are constants)."""
        for cls in op_classes:
            self._nondifferentiable.add(cls)
            self._rules.pop(cls, None)
        return self

    def remove(self, *op_classes: type[Operation]) -> RuleSet:
        """Forget the rule or mark of these classes (differentiating them becomes an error)."""
        for cls in op_classes:
            self._rules.pop(cls, None)
            self._nondifferentiable.discard(cls)
        return self

    def copy(self, name: str | None = None) -> RuleSet:
        new = RuleSet(name or self.name)
        new._rules = dict(self._rules)
        new._nondifferentiable = set(self._nondifferentiable)
        return new

    def extend(self, other: RuleSet) -> RuleSet:
        """Add `other`'s rules and marks to this set (other wins on conflicts); returns self."""
        for cls, rule in other._rules.items():
            self.register(cls)(rule)
        self.mark_nondifferentiable(*other._nondifferentiable)
        return self

    def without(self, *op_classes: type[Operation], name: str | None = None) -> RuleSet:
        """A copy with these classes' rules and marks removed."""
        return self.copy(name).remove(*op_classes)

    # -- querying -----------------------------------------------------------
    def _lookup(self, op_cls: type[Operation]):
        for cls in op_cls.__mro__:
            if cls in self._rules:
                return "rule", self._rules[cls]
            if cls in self._nondifferentiable:
                return "nondifferentiable", None
        return None, None

    def rule_for(self, op_cls: type[Operation]) -> Rule | None:
        kind, rule = self._lookup(op_cls)
        return rule if kind == "rule" else None

    def is_nondifferentiable(self, op_cls: type[Operation]) -> bool:
        return self._lookup(op_cls)[0] == "nondifferentiable"

    def covers(self, op_cls: type[Operation]) -> bool:
        """True when the class has a rule or is marked non-differentiable."""
        return self._lookup(op_cls)[0] is not None

    def op_classes(self) -> Iterable[type[Operation]]:
        return [*self._rules, *self._nondifferentiable]

    def __repr__(self) -> str:
        return f"RuleSet({self.name!r}, {len(self._rules)} rules, {len(self._nondifferentiable)} marked)"


class ReverseBuilder:
    """Appends the ops of one reverse rule to the gradient function's block.

    Every op it creates takes the location of the primal op being
    differentiated, so an error in generated code points at the user's line.
    """

    def __init__(self, block: Block, primal: Operation, needs: Sequence[bool]):
        self.block = block
        self.primal = primal
        self._needs = tuple(needs)

    def needs(self, index: int) -> bool:
        """Whether operand `index` depends on a differentiated argument."""
        return self._needs[index]

    # -- generic emission -----------------------------------------------------
    def append(self, op: Operation) -> Operation:
        op.location = self.primal.location
        self.block.add_op(op)
        return op

    def emit(self, op_cls: type[R.RasterOp], operands: Sequence[SSAValue], **params):
        """Append `op_cls(operands, **params)`; returns its result (or tuple of results)."""
        op = self.append(op_cls.make(operands, **params))
        return op.results[0] if len(op.results) == 1 else tuple(op.results)

    @staticmethod
    def shape(v: SSAValue) -> tuple[int, ...]:
        return R.shape_of(v.type)

    @staticmethod
    def dtype(v: SSAValue) -> str:
        return R.dtype_of(v.type)

    # -- creation ---------------------------------------------------------------
    def fill(self, value: float, shape: Sequence[int], dtype: str) -> SSAValue:
        return self.emit(R.FillOp, [], value=float(value), shape=tuple(shape), dtype=dtype)

    def scalar(self, value: float, like: SSAValue) -> SSAValue:
        """A 0-d constant of `like`'s element type."""
        return self.fill(value, (), self.dtype(like))

    def zeros_like(self, v: SSAValue) -> SSAValue:
        return self.fill(0.0, self.shape(v), self.dtype(v))

    # -- arithmetic (numpy broadcasting) ---------------------------------------
    def add(self, a, b):
        return self.emit(R.AddOp, [a, b])

    def sub(self, a, b):
        return self.emit(R.SubOp, [a, b])

    def mul(self, a, b):
        return self.emit(R.MulOp, [a, b])

    def div(self, a, b):
        return self.emit(R.DivOp, [a, b])

    def neg(self, a):
        return self.emit(R.NegOp, [a])

    # -- layout -----------------------------------------------------------------
    def reshape(self, v: SSAValue, shape: Sequence[int]) -> SSAValue:
        return v if self.shape(v) == tuple(shape) else self.emit(R.ReshapeOp, [v], shape=tuple(shape))

    def broadcast_to(self, v: SSAValue, shape: Sequence[int]) -> SSAValue:
        return v if self.shape(v) == tuple(shape) else self.emit(R.BroadcastToOp, [v], shape=tuple(shape))

    def transpose(self, v: SSAValue, perm: Sequence[int]) -> SSAValue:
        return self.emit(R.TransposeOp, [v], perm=tuple(perm))

    def sum(self, v: SSAValue, axis: int | None = None, keepdims: bool = False) -> SSAValue:
        return self.emit(R.SumOp, [v], axis=axis, keepdims=keepdims)

    def matmul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.emit(R.MatmulOp, [a, b])

    def unbroadcast(self, ct: SSAValue, shape: Sequence[int]) -> SSAValue:
        """Reduce a cotangent of a broadcast result back to an operand of `shape`.

        Sums (keeping dims) over every axis the operand was stretched along
        (missing leading axes and size-1 axes), then reshapes to `shape`.
        """
        shape = tuple(shape)
        ct_shape = self.shape(ct)
        if ct_shape == shape:
            return ct
        lead = len(ct_shape) - len(shape)
        for axis, size in enumerate(ct_shape):
            own = shape[axis - lead] if axis >= lead else None
            if size != 1 and own != size:
                ct = self.sum(ct, axis=axis, keepdims=True)
        return self.reshape(ct, shape)

    def keepdims_shape(self, shape: Sequence[int], axis: int | None) -> tuple[int, ...]:
        """The shape a reduction over `axis` gives with keepdims."""
        if axis is None:
            return tuple(1 for _ in shape)
        return tuple(1 if i == axis else d for i, d in enumerate(shape))
