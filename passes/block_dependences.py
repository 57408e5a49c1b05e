"""Dependences between the ops of one block, found in one pass and kept up to date as loops merge.

Algorithm. The ops of a block are visited in order, once each. Every op is
walked once into a `Footprint` (buffers it reads and writes, SSA values it
uses, whether it does something the analysis cannot see through). Its
dependences (the earlier ops it must stay after) are then looked up, not
searched for:
- SSA: the op of this block defining a value used anywhere inside it
  (`node_of`, keyed by the defining op);
- memory, per buffer: a read depends on the buffer's last writer (RAW); a
  write on the last writer (WAW) and on every reader since that write (WAR);
- an opaque op (a call, a copy, a vector load or store, an `llvm.*` op)
  conflicts with every memory access: it depends on each memory-touching op
  since the previous opaque op, and every later memory access depends on it.
The maps are updated in time proportional to the op's footprint, so a block
of n ops costs O(n) amortised, however the ops depend on each other.

Loop-level IR has no views (see loop_analysis.py), so buffers are compared
by SSA identity. `Node.position` orders the ops visited so far; a loop moved
down (`move_to_end`) gets a new, larger position. A transformation merging
one op into an earlier one (`absorb`) makes the surviving node perform the
absorbed op's accesses, so later lookups see the merged loop.

Used by fuse-loops; usable on any block (a function body, the body of a time
loop) by a pass that reorders or merges its ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects import memref
from xdsl.ir import Operation, SSAValue

from .loop_analysis import WORK, is_opaque
from raster_mlir.ir_walk import walk_ops


@dataclass(eq=False, repr=False)
class Footprint:
    """What an op touches, with everything nested in it."""

    reads: set[SSAValue] = field(default_factory=set)
    writes: set[SSAValue] = field(default_factory=set)
    uses: set[SSAValue] = field(default_factory=set)  # operands of the op and of its nested ops
    opaque: bool = False
    size: int = 0  # ops, the op itself and everything nested in it
    # For a loop: per buffer, the dimensions indexed by the loop's induction variable in EVERY access.
    iv_dims: dict[SSAValue, frozenset[int]] = field(default_factory=dict)

    @property
    def touches_memory(self) -> bool:
        return bool(self.reads or self.writes or self.opaque)


def footprint(op: Operation, iv: SSAValue | None = None) -> Footprint:
    """Walk `op` once; with `iv`, also record per buffer the dimensions `iv` indexes in every access."""
    fp = Footprint()
    uses, reads, writes, iv_dims = fp.uses, fp.reads, fp.writes, fp.iv_dims
    # (ops told apart by name: a failed isinstance against xDSL's op classes, ABCs, costs 5x more;
    # `_operands` is the tuple the `operands` property wraps in a new view object on every access)
    if not op.regions and iv is None:  # most ops of a loop body: no walk needed
        operands = op._operands
        uses.update(operands)
        name = op.name
        if name == "memref.load":
            reads.add(operands[0])
        elif name == "memref.store":
            writes.add(operands[1])
        elif name == "memref.dealloc":
            writes.add(operands[0])
        elif is_opaque(op):
            fp.opaque = True
        fp.size = 1
        WORK.ops_visited += 1
        return fp
    visited = 0
    for inner in walk_ops(op):
        visited += 1
        operands = inner._operands  # (the IRDL accessors .memref, .indices cost more than the walk)
        uses.update(operands)
        name = inner.name
        if name == "memref.load":
            buffer, indices = operands[0], operands[1:]
            reads.add(buffer)
        elif name == "memref.store":
            buffer, indices = operands[1], operands[2:]
            writes.add(buffer)
        else:
            if name == "memref.dealloc":
                writes.add(operands[0])  # ends the buffer's life: nothing may move across it
            elif is_opaque(inner):
                fp.opaque = True
            continue
        if iv is not None:
            here = frozenset(d for d, index in enumerate(indices) if index is iv)
            known = iv_dims.get(buffer)
            iv_dims[buffer] = here if known is None else known & here
    fp.size = visited
    WORK.ops_visited += visited
    return fp


@dataclass(eq=False, repr=False)
class Node:
    """One op of the block (a loop that absorbed others counts once)."""

    op: Operation
    position: int
    footprint: Footprint
    has_dependents: bool = False  # some later op must stay after it
    kind: object = None  # what the client pass made of the op (fuse-loops: a loop's bounds)


class BlockDependences:
    """The dependence maps of one block's ops visited so far (see the module docstring)."""

    def __init__(self) -> None:
        self.node_of: dict[Operation, Node] = {}
        self._clock = 0
        self._last_writer: dict[SSAValue, Node] = {}
        self._readers: dict[SSAValue, list[Node]] = {}
        self._memory_since_barrier: list[Node] = []
        self._last_barrier: Node | None = None

    def dependences(self, fp: Footprint) -> set[Node]:
        """The visited ops an op with footprint `fp` must stay after."""
        deps: set[Node] = set()
        node_of = self.node_of
        for value in fp.uses:
            node = node_of.get(value.owner)  # type: ignore[arg-type]  (a Block for block arguments)
            if node is not None:
                deps.add(node)
        if fp.opaque:
            deps.update(self._memory_since_barrier)
            if self._last_barrier is not None:
                deps.add(self._last_barrier)
            return deps
        if (fp.reads or fp.writes) and self._last_barrier is not None:
            deps.add(self._last_barrier)
        for buffer in fp.reads:
            writer = self._last_writer.get(buffer)
            if writer is not None:
                deps.add(writer)
        for buffer in fp.writes:
            writer = self._last_writer.get(buffer)
            if writer is not None:
                deps.add(writer)
            deps.update(self._readers.get(buffer, ()))
        return deps

    def add(self, op: Operation, fp: Footprint, deps: set[Node], kind: object = None) -> Node:
        """Record `op` (visited now, after everything recorded so far) with its dependences."""
        node = Node(op, self._next_position(), fp, kind=kind)
        self.node_of[op] = node
        for dep in deps:
            dep.has_dependents = True
        self._record_accesses(node, fp)
        return node

    def absorb(self, node: Node, fp: Footprint, deps: set[Node]) -> None:
        """`node` now also does what the op with footprint `fp` and dependences `deps` did (it merged)."""
        for dep in deps:
            if dep is not node:
                dep.has_dependents = True
        mine = node.footprint
        mine.size += fp.size
        mine.uses |= fp.uses
        mine.reads |= fp.reads
        mine.writes |= fp.writes
        mine.opaque |= fp.opaque
        for buffer, dims in fp.iv_dims.items():
            known = mine.iv_dims.get(buffer)
            mine.iv_dims[buffer] = dims if known is None else known & dims
        self._record_accesses(node, fp)

    def move_to_end(self, node: Node) -> None:
        """`node`'s op moved after every op visited so far (legal only when nothing depends on it)."""
        assert not node.has_dependents
        node.position = self._next_position()
        if node.footprint.reads or node.footprint.writes:
            self._memory_since_barrier.append(node)

    def _next_position(self) -> int:
        self._clock += 1
        return self._clock

    def _record_accesses(self, node: Node, fp: Footprint) -> None:
        if fp.opaque:
            self._last_barrier = node
            self._memory_since_barrier = []
            return
        if not (fp.reads or fp.writes):
            return
        self._memory_since_barrier.append(node)
        for buffer in fp.writes:
            self._last_writer[buffer] = node
            self._readers[buffer] = []
        for buffer in fp.reads:
            if buffer not in fp.writes:
                self._readers.setdefault(buffer, []).append(node)
