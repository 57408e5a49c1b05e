"""The machinery of AD rules: `RuleSet`, and the builders rules emit IR with.

Every differentiable op has two rules in a `RuleSet`, written in raster ops
(so the IR they emit can itself be differentiated: that is how second
derivatives work).

A reverse rule (rrule, used by the `autodiff` pass) turns the cotangents of
an op's results into the cotangents of its operands:

    @rules.register(R.MulOp)
    def mul_rule(b: ReverseBuilder, op: R.MulOp, cts) -> list[SSAValue | None]:
        (ct,) = cts                          # one cotangent per result (None: no cotangent)
        return [b.unbroadcast(b.mul(ct, op.rhs), b.shape(op.lhs)) if b.needs(0) else None,
                b.unbroadcast(b.mul(ct, op.lhs), b.shape(op.rhs)) if b.needs(1) else None]

It returns one entry per operand; None means "no gradient flows there".
`b.needs(i)` says whether operand i depends on a differentiated argument, so
a rule can skip work nobody asked for (returning a value anyway is allowed:
it is dead code that DCE removes).

A tangent rule (jvp rule, used by the `forward-ad` pass) turns the tangents
of an op's operands into the tangents of its results:

    @rules.register_tangent(R.MulOp)
    def mul_tangent(b: TangentBuilder, op: R.MulOp, tangents) -> list[SSAValue | None]:
        dx, dy = tangents                    # one tangent per operand (None: zero tangent)
        return [b.sum_terms(b.mul(dx, op.rhs) if dx is not None else None,
                            b.mul(op.lhs, dy) if dy is not None else None,
                            like=op.result)]

It returns one entry per result, each of exactly the result's type, or None
for a zero tangent; the pass calls it only when some operand has a tangent.
`b.sum_terms(*terms, like=v)` adds the terms that are not None and
broadcasts the sum to v's shape (an operand's tangent has the operand's
shape, which may be smaller than a broadcasting result). A rule that would
rather not handle None can call `b.zeros_for(tangents, op.operands)`.
A tangent rule must be linear in the tangents and use the primal values
(`op.lhs`, `op.result`...) only as coefficients.

A `RuleSet` maps op classes to rules and records the ops that have no
derivative by design (comparisons, constants: their results get neither a
cotangent nor a tangent). Rule sets are plain objects: `copy()`,
`extend(other)`, `without(op_cls)` build new ones (reverse and tangent rules
together), so a research pass can swap or extend the rules the AD passes use
without touching the default set (see `raster_rules.register_rule_set`).
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable, Sequence

from xdsl.dialects.builtin import FileLineColLoc
from xdsl.ir import Block, Operation, SSAValue

from raster_mlir.dialects import raster as R

Cotangents = Sequence[SSAValue | None]
Tangents = Sequence[SSAValue | None]
Rule = Callable[["ReverseBuilder", Operation, Cotangents], Sequence[SSAValue | None]]
TangentRule = Callable[["TangentBuilder", Operation, Tangents], Sequence[SSAValue | None]]


def describe_location(op: Operation) -> str | None:
    """`file.py:12: <source text>` for an op carrying a file location, else None."""
    loc = op.location
    if not isinstance(loc, FileLineColLoc):
        return None
    filename, line = loc.filename.data, loc.line.data
    text = linecache.getline(filename, line).strip()
    return f"{filename}:{line}: {text}" if text else f"{filename}:{line}"


class RuleSet:
    """Reverse and tangent rules by op class, plus the op classes marked non-differentiable.

    A rule registered for a class also serves its subclasses unless they have
    their own. `register` (reverse rules) and `register_tangent` are decorators:

        rules = RuleSet("mine")
        @rules.register(R.ExpOp)
        def exp_rule(b, op, cts): return [b.mul(cts[0], op.result)]
        @rules.register_tangent(R.ExpOp)
        def exp_tangent(b, op, tangents): return [b.mul(tangents[0], op.result)]
    """

    def __init__(self, name: str = "rules"):
        self.name = name
        self._rules: dict[type[Operation], Rule] = {}
        self._tangent_rules: dict[type[Operation], TangentRule] = {}
        self._nondifferentiable: set[type[Operation]] = set()
        # _lookup's answers per (op class, table): every query walks the class's MRO otherwise, and
        # autodiff asks once per op. Emptied by every change of the tables.
        self._found: dict[tuple[type[Operation], int], tuple[str | None, object]] = {}

    # -- building -----------------------------------------------------------
    def register(self, *op_classes: type[Operation]) -> Callable[[Rule], Rule]:
        """Decorator: `rule` becomes the reverse rule of every class in `op_classes`."""

        def decorate(rule: Rule) -> Rule:
            for cls in op_classes:
                self._rules[cls] = rule
                self._nondifferentiable.discard(cls)
            self._found.clear()
            return rule

        return decorate

    def register_tangent(self, *op_classes: type[Operation]) -> Callable[[TangentRule], TangentRule]:
        """Decorator: `rule` becomes the tangent (forward-mode) rule of every class in `op_classes`."""

        def decorate(rule: TangentRule) -> TangentRule:
            for cls in op_classes:
                self._tangent_rules[cls] = rule
                self._nondifferentiable.discard(cls)
            self._found.clear()
            return rule

        return decorate

    def mark_nondifferentiable(self, *op_classes: type[Operation]) -> RuleSet:
        """Declare that these ops pass no derivative through (their results are constants)."""
        for cls in op_classes:
            self._nondifferentiable.add(cls)
            self._rules.pop(cls, None)
            self._tangent_rules.pop(cls, None)
        self._found.clear()
        return self

    def remove(self, *op_classes: type[Operation]) -> RuleSet:
        """Forget the rules or mark of these classes (differentiating them becomes an error)."""
        for cls in op_classes:
            self._rules.pop(cls, None)
            self._tangent_rules.pop(cls, None)
            self._nondifferentiable.discard(cls)
        self._found.clear()
        return self

    def copy(self, name: str | None = None) -> RuleSet:
        new = RuleSet(name or self.name)
        new._rules = dict(self._rules)
        new._tangent_rules = dict(self._tangent_rules)
        new._nondifferentiable = set(self._nondifferentiable)
        return new

    def extend(self, other: RuleSet) -> RuleSet:
        """Add `other`'s rules and marks to this set (other wins on conflicts); returns self."""
        for cls, rule in other._rules.items():
            self.register(cls)(rule)
        for cls, rule in other._tangent_rules.items():
            self.register_tangent(cls)(rule)
        self.mark_nondifferentiable(*other._nondifferentiable)
        return self

    def without(self, *op_classes: type[Operation], name: str | None = None) -> RuleSet:
        """A copy with these classes' rules and marks removed."""
        return self.copy(name).remove(*op_classes)

    # -- querying -----------------------------------------------------------
    def _lookup(self, op_cls: type[Operation], table: dict):
        key = (op_cls, id(table))
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._walk_mro(op_cls, table)
        return found

    def _walk_mro(self, op_cls: type[Operation], table: dict):
        for cls in op_cls.__mro__:
            if cls in table:
                return "rule", table[cls]
            if cls in self._nondifferentiable:
                return "nondifferentiable", None
        return None, None

    def rule_for(self, op_cls: type[Operation]) -> Rule | None:
        """The reverse rule of `op_cls`, or None."""
        kind, rule = self._lookup(op_cls, self._rules)
        return rule if kind == "rule" else None

    def tangent_rule_for(self, op_cls: type[Operation]) -> TangentRule | None:
        """The tangent rule of `op_cls`, or None."""
        kind, rule = self._lookup(op_cls, self._tangent_rules)
        return rule if kind == "rule" else None

    def is_nondifferentiable(self, op_cls: type[Operation]) -> bool:
        return self._lookup(op_cls, self._rules)[0] == "nondifferentiable"

    def covers(self, op_cls: type[Operation]) -> bool:
        """True when the class has a reverse rule or is marked non-differentiable."""
        return self._lookup(op_cls, self._rules)[0] is not None

    def covers_tangent(self, op_cls: type[Operation]) -> bool:
        """True when the class has a tangent rule or is marked non-differentiable."""
        return self._lookup(op_cls, self._tangent_rules)[0] is not None

    def op_classes(self) -> Iterable[type[Operation]]:
        return list(dict.fromkeys([*self._rules, *self._tangent_rules, *self._nondifferentiable]))

    def __repr__(self) -> str:
        return (
            f"RuleSet({self.name!r}, {len(self._rules)} reverse rules, {len(self._tangent_rules)} tangent rules, "
            f"{len(self._nondifferentiable)} marked)"
        )


class RuleBuilder:
    """Appends the ops of one rule to a block (the derivative function being built).

    Every op it creates takes the location of the primal op being
    differentiated, so an error in generated code points at the user's line.
    """

    def __init__(self, block: Block, primal: Operation):
        self.block = block
        self.primal = primal

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


class ReverseBuilder(RuleBuilder):
    """The builder of reverse rules: knows which operands need a cotangent."""

    def __init__(self, block: Block, primal: Operation, needs: Sequence[bool]):
        super().__init__(block, primal)
        self._needs = tuple(needs)

    def needs(self, index: int) -> bool:
        """Whether operand `index` depends on a differentiated argument."""
        return self._needs[index]


class TangentBuilder(RuleBuilder):
    """The builder of tangent rules: sums of optional terms, zeros for absent tangents."""

    def sum_terms(self, *terms: SSAValue | None, like: SSAValue) -> SSAValue | None:
        """The sum of the terms that are not None, broadcast to `like`'s shape; None if all are None."""
        total = None
        for term in terms:
            if term is not None:
                total = term if total is None else self.add(total, term)
        return None if total is None else self.broadcast_to(total, self.shape(like))

    def zeros_for(self, tangents: Tangents, operands: Sequence[SSAValue]) -> list[SSAValue]:
        """The tangents with each None replaced by zeros of its operand's type."""
        return [t if t is not None else self.zeros_like(v) for t, v in zip(tangents, operands)]
