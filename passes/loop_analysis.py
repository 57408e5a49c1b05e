"""Memory-access facts about loop-level IR, for fusion and clean-up passes.

Loop-level IR has no views: every memref value is a function argument or a
`memref.alloc`, so two memref SSA values are the same buffer exactly when
they are the same value (arguments never alias: the call path refuses
overlapping arrays). That makes dependence checks syntactic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from xdsl.dialects import memref, scf
from xdsl.dialects.builtin import IntegerAttr, MemRefType
from xdsl.dialects import arith
from xdsl.ir import Operation, OpResult, SSAValue
from raster_mlir.ir_walk import walk_ops


# Ops whose memory effects the element-wise analysis does not model: a call, a copy, and
# vector loads and stores (one access covers several elements, which index equality
# cannot compare). They conflict with everything, so nothing is fused or forwarded across them.
OPAQUE_OPS = ("func.call", "memref.copy", "vector.load", "vector.store", "vector.maskedload", "vector.maskedstore")


def is_opaque(op: Operation) -> bool:
    # raster.rt_*: the run-time tape operations of reverse mode (memcpy into and out of a tape).
    return op.name in OPAQUE_OPS or op.name.startswith(("llvm.", "raster.rt_"))


class AnalysisWork:
    """Ops visited by the walks of this module and block_dependences.py.

    A deterministic measure of an analysis pass's work: tests compare it on
    programs of 10, 100 and 1,000 ops to check that it grows linearly.
    """

    ops_visited: int = 0


WORK = AnalysisWork()


@dataclass
class Accesses:
    """Buffers an op (with everything nested in it) reads and writes."""

    reads: dict[SSAValue, list[memref.LoadOp]] = field(default_factory=dict)
    writes: dict[SSAValue, list[memref.StoreOp]] = field(default_factory=dict)
    opaque: bool = False  # something we cannot see through (a call): conflicts with everything

    def conflicts_with(self, other: Accesses) -> bool:
        """True when running the two in the other order could change a result."""
        if self.opaque or other.opaque:
            return True
        return any(b in other.reads or b in other.writes for b in self.writes) or any(
            b in other.writes for b in self.reads
        )


def accesses(ops: Iterable[Operation]) -> Accesses:
    acc = Accesses()
    visited = 0
    for top in ops:
        for op in walk_ops(top):
            visited += 1
            name = op.name  # (by name, and operands by position: see block_dependences.footprint)
            if name == "memref.load":
                acc.reads.setdefault(op._operands[0], []).append(op)
            elif name == "memref.store":  # (value, memref, *indices)
                acc.writes.setdefault(op._operands[1], []).append(op)
            elif is_opaque(op):
                acc.opaque = True
    WORK.ops_visited += visited
    return acc


def written_buffers(op: Operation) -> set[SSAValue]:
    """Every buffer `op` (with everything nested in it) may write.

    Stored to (`memref.store`, `vector.store`), copied into (`memref.copy`'s target), or handed to
    an op the element-wise analysis does not model (`is_opaque`: a call, a masked vector store, a
    run-time tape op, an `llvm.*` op), which may write any buffer it is given. Vector loads only
    read. The one answer of skip-zero-updates (per loop), skip-zero-chunks and defer-updates
    (per function) to "may this buffer change?".
    """
    written: set[SSAValue] = set()
    ops = walk_ops(op)
    WORK.ops_visited += len(ops)
    for inner in ops:  # (by name: see accesses)
        name = inner.name
        if name == "memref.store" or name == "vector.store" or name == "memref.copy":
            written.add(inner._operands[1])  # (value, memref, *indices) and (source, target)
        elif name == "vector.load" or name == "vector.maskedload":
            continue
        elif is_opaque(inner):
            written.update(v for v in inner._operands if isinstance(v.type, MemRefType))
    return written


def defined_values(op: Operation) -> set[SSAValue]:
    """Every SSA value defined by `op` or inside its regions (results and block arguments)."""
    values: set[SSAValue] = set()
    visited = 0
    for inner in walk_ops(op):
        visited += 1
        values.update(inner.results)
        for region in inner.regions:
            for block in region.blocks:
                values.update(block.args)
    WORK.ops_visited += visited
    return values


def used_values(op: Operation) -> set[SSAValue]:
    """Every SSA value used by `op` or by anything nested in it."""
    values: set[SSAValue] = set()
    visited = 0
    for inner in walk_ops(op):
        visited += 1
        values.update(inner.operands)
    WORK.ops_visited += visited
    return values


def constant_int(value: SSAValue) -> int | None:
    owner = value.owner
    if type(owner) is arith.ConstantOp:  # (exact class: a failed isinstance against an op class, an ABC, costs 5x more)
        attr = owner.properties["value"]
        if isinstance(attr, IntegerAttr):
            return attr.value.data
    return None


def loop_bounds(loop: scf.ForOp) -> tuple[int, int, int] | None:
    """(lb, ub, step) when all three are constants."""
    operands = loop._operands  # (lb, ub, step, *iter_args): cheaper than three IRDL accessors
    bounds = (constant_int(operands[0]), constant_int(operands[1]), constant_int(operands[2]))
    return None if None in bounds else bounds  # type: ignore[return-value]


def product_factors(value: SSAValue, inside: set[SSAValue]) -> list[SSAValue]:
    """Leaves of the product tree of `value`, left to right: factors defined outside the loop, or opaque ones."""
    # (ops by name and operands by position, as in `accesses`; an OpResult first: a block has no name)
    if value in inside and isinstance(value, OpResult):
        owner = value.owner
        if owner.name == "arith.mulf":
            lhs, rhs = owner._operands
            return product_factors(lhs, inside) + product_factors(rhs, inside)
        if owner.name == "arith.negf":
            return product_factors(owner._operands[0], inside)
    return [value]


def update_term(store: memref.StoreOp) -> SSAValue | None:
    """%t when the store writes old +- %t back to where %old was loaded from."""
    value, buffer, *indices = store._operands  # (value, memref, *indices)
    if not isinstance(value, OpResult):
        return None
    new = value.owner
    name = new.name
    if name != "arith.subf" and name != "arith.addf":
        return None
    lhs, rhs = new._operands
    candidates = [(lhs, rhs)] + ([(rhs, lhs)] if name == "arith.addf" else [])
    for old, term in candidates:
        if not isinstance(old, OpResult):
            continue
        load = old.owner
        if load.name == "memref.load" and load._operands[0] is buffer and list(load._operands[1:]) == indices:
            return term
    return None


def is_inside(op: Operation | None, ancestor: Operation) -> bool:
    """True if `op` is `ancestor` or nested in it."""
    while op is not None:
        if op is ancestor:
            return True
        op = op.parent_op()
    return False
