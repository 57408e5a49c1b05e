"""`fuse-loops`: merge loop nests that walk the same iteration space, then drop dead temporaries.

Algorithm (repeated until nothing changes, in every block up to `max-depth`):
1. Candidates are two `scf.for` loops L1, L2 of one block (L1 first) with the
   same constant bounds and no loop-carried results.
2. Legality:
   - L2 uses no SSA value defined inside L1 (a reduction result of L1, say);
   - one of them can move next to the other: every op between them neither
     uses L1's values (when L1 moves down) nor defines values L2 uses (when L2
     moves up), and has no memory conflict with the loop that moves;
   - every buffer one loop writes and the other touches is indexed, in every
     access of both loops, by the loop's own induction variable at one common
     dimension d. Iteration i of L2 then only sees elements with index i at d,
     which only iteration i of L1 produced: running L1's body then L2's body
     per iteration computes the same values.
3. Fusion moves L2's body to the end of L1's body (L2's induction variable
   becomes L1's) and fuses the loops nested inside the merged body in turn.
4. Store-to-load forwarding: in a block, a load of the element just stored
   (same buffer, same index values) takes the stored value.
5. Temporaries (`memref.alloc`) that are never loaded any more are deleted
   with their stores, and loops left without effect are removed; steps 1-5
   repeat while they change something.

This one rule covers producer->consumer chains of elementwise ops, epilogue
fusion (the bias/activation loop over the rows of a dense op merges with the
dense op's row loop) and gradient-update fusion (the outer product dW[o, i]
= dz[o] * x[i] merges with W[o, i] -= lr * dW[o, i], so dW never exists).

Each function records what happened in its attribute `raster.fusion`
(loops fused, temporaries removed, bytes removed).

Before:
    scf.for %o = %c0 to %c8 step %c1 {          // dW[o, i] = dz[o] * x[i]
      scf.for %i = %c0 to %c4 step %c1 { ... memref.store %p, %dW[%o, %i] }
    }
    scf.for %o2 = %c0 to %c8 step %c1 {         // W[o, i] -= lr * dW[o, i]
      scf.for %i2 = %c0 to %c4 step %c1 {
        %d = memref.load %dW[%o2, %i2] ... memref.store %n, %W[%o2, %i2]
      }
    }
After:
    scf.for %o = %c0 to %c8 step %c1 {
      scf.for %i = %c0 to %c4 step %c1 { %p = ...; ... memref.store %n, %W[%o, %i] }
    }
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, memref, scf
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, MemRefType, ModuleOp, i64
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass
from xdsl.traits import is_side_effect_free

from .loop_analysis import Accesses, accesses, defined_values, loop_bounds, used_values


@dataclass
class FusionStats:
    loops_fused: int = 0
    temporaries_removed: int = 0
    bytes_removed: int = 0


@dataclass
class _Summary:
    """What an op (with everything nested in it) touches: buffers and SSA values."""

    acc: Accesses
    defined: set
    used: set

    @staticmethod
    def of(op: Operation) -> _Summary:
        return _Summary(accesses([op]), defined_values(op), used_values(op))

    @staticmethod
    def empty() -> _Summary:
        return _Summary(Accesses(), set(), set())

    def add(self, other: _Summary) -> None:
        for buf, ops in other.acc.reads.items():
            self.acc.reads.setdefault(buf, []).extend(ops)
        for buf, ops in other.acc.writes.items():
            self.acc.writes.setdefault(buf, []).extend(ops)
        self.acc.opaque |= other.acc.opaque
        self.defined |= other.defined
        self.used |= other.used


def _same_iteration(l1: scf.ForOp, a1: Accesses, l2: scf.ForOp, a2: Accesses) -> bool:
    """Every buffer shared with a write is indexed by each loop's own IV at one common dimension."""
    shared = {b for b in a1.writes if b in a2.reads or b in a2.writes} | {b for b in a1.reads if b in a2.writes}
    iv1, iv2 = l1.body.block.args[0], l2.body.block.args[0]
    for buf in shared:
        dims: set[int] | None = None
        for ops, iv in ((a1.reads.get(buf, []) + a1.writes.get(buf, []), iv1), (a2.reads.get(buf, []) + a2.writes.get(buf, []), iv2)):
            for op in ops:
                here = {d for d, index in enumerate(op.indices) if index is iv}
                dims = here if dims is None else dims & here
        if not dims:
            return False
    return True


def _placement(s1: _Summary, s2: _Summary, between: _Summary) -> str | None:
    """'down' (move L1 to just before L2), 'up' (move L2 to just after L1) or None."""
    if not (s1.defined & between.used) and not s1.acc.conflicts_with(between.acc):
        return "down"
    if not (s2.used & between.defined) and not s2.acc.conflicts_with(between.acc):
        return "up"
    return None


def _fuse(l1: scf.ForOp, l2: scf.ForOp, placement: str) -> None:
    if placement == "down":
        l1.detach()
        l2.parent_block().insert_op_before(l1, l2)
    else:
        l2.detach()
        l1.parent_block().insert_op_after(l2, l1)
    l2.body.block.args[0].replace_all_uses_with(l1.body.block.args[0])
    target = l1.body.block
    yield_op = target.last_op
    for op in list(l2.body.block.ops)[:-1]:  # all but l2's scf.yield
        op.detach()
        target.insert_op_before(op, yield_op)
    l2.detach()
    l2.erase()


def _fuse_following(l1: scf.ForOp, stats: FusionStats) -> bool:
    """Fuse into `l1` every later sibling loop that may join it, in one forward scan.

    The ops passed over are summarised as they are passed (`between`), so each
    candidate costs one legality check, not a walk over everything in between.
    """
    bounds = loop_bounds(l1)
    if bounds is None or l1.results:
        return False
    s1 = _Summary.of(l1)
    between = _Summary.empty()
    fused = False
    op = l1.next_op
    while op is not None:
        following = op.next_op
        if isinstance(op, scf.ForOp) and not op.results and loop_bounds(op) == bounds:
            s2 = _Summary.of(op)
            if not (s2.used & s1.defined) and _same_iteration(l1, s1.acc, op, s2.acc):
                placement = _placement(s1, s2, between)
                if placement is not None:
                    _fuse(l1, op, placement)
                    stats.loops_fused += 1
                    fused = True
                    s1 = _Summary.of(l1)
                    if placement == "down":  # l1 now sits after the ops it passed
                        between = _Summary.empty()
                    op = following
                    continue
        between.add(_Summary.of(op))
        op = following
    return fused


def fuse_block(block: Block, depth: int, max_depth: int, stats: FusionStats) -> None:
    """Fuse sibling loops of `block` until none can be fused, then recurse into loop bodies."""
    if depth > max_depth:
        return
    changed = True
    while changed:
        changed = False
        for l1 in [op for op in block.ops if isinstance(op, scf.ForOp)]:
            if l1.parent_block() is block:  # not fused away into an earlier loop
                changed |= _fuse_following(l1, stats)
    for op in block.ops:
        if isinstance(op, scf.ForOp):
            fuse_block(op.body.block, depth + 1, max_depth, stats)


def forward_stores(block: Block, known: dict | None = None) -> None:
    """Replace a load of an element stored earlier by the stored value.

    `known` maps (buffer, index values) to the value last stored there. It
    flows into nested regions whose ops never write that buffer: a loop body
    then sees the same element on every iteration, so the forwarded value is
    valid there too.
    """
    last: dict[tuple, object] = dict(known or {})
    for op in list(block.ops):
        if isinstance(op, memref.StoreOp):
            for key in [k for k in last if k[0] is op.memref]:
                del last[key]
            last[(op.memref, tuple(op.indices))] = op.value
        elif isinstance(op, memref.LoadOp):
            key = (op.memref, tuple(op.indices))
            if key in last:
                op.res.replace_all_uses_with(last[key])
                op.detach()
                op.erase()
        elif not op.regions and accesses([op]).opaque:  # a call, a copy or a vector store may write anything
            last.clear()
        elif op.regions:
            written = accesses([op])
            if written.opaque:
                last.clear()
            inherited = {k: v for k, v in last.items() if k[0] not in written.writes}
            for region in op.regions:
                for inner in region.blocks:
                    forward_stores(inner, inherited)
            for key in [k for k in last if k[0] in written.writes]:
                del last[key]


def remove_dead_temporaries(function: func.FuncOp, stats: FusionStats) -> None:
    """Delete allocs that are only ever stored to, with their stores."""
    for alloc in [op for op in function.walk() if isinstance(op, memref.AllocOp)]:
        uses = [u.operation for u in alloc.memref.uses]
        if all(isinstance(u, memref.StoreOp) and u.memref is alloc.memref for u in uses):
            for store in uses:
                store.detach()
                store.erase()
            t = alloc.memref.type
            assert isinstance(t, MemRefType)
            stats.temporaries_removed += 1
            stats.bytes_removed += _bytes(t)
            alloc.detach()
            alloc.erase()


def _bytes(t: MemRefType) -> int:
    n = 1
    for d in t.get_shape():
        n *= d
    return n * (4 if t.element_type.bitwidth == 32 else 8)


def remove_dead_code(block: Block) -> None:
    """Erase unused side-effect-free ops and loops that no longer do anything (innermost first)."""
    for op in reversed(list(block.ops)):
        for region in op.regions:
            for inner in region.blocks:
                remove_dead_code(inner)
        if isinstance(op, scf.ForOp) and not op.results and len(op.body.block.ops) == 1:
            op.detach()
            op.erase()
        elif op.results and not op.regions and not any(r.uses for r in op.results) and (
            isinstance(op, memref.LoadOp) or is_side_effect_free(op)
        ):
            op.detach()
            op.erase()


@dataclass(frozen=True)
class FuseLoopsPass(ModulePass):
    """Fuse loop nests over the same iteration space; remove temporaries fusion made dead."""

    name = "fuse-loops"

    max_depth: int = 8
    """How many loop levels deep fusion looks (1 = only a function's outermost loops)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            stats = FusionStats()
            # Clean-up can enable more fusion (a removed temporary no longer blocks a move).
            for _ in range(8):
                before = (stats.loops_fused, stats.temporaries_removed)
                fuse_block(function.body.block, 1, self.max_depth, stats)
                forward_stores(function.body.block)
                remove_dead_temporaries(function, stats)
                remove_dead_code(function.body.block)
                if (stats.loops_fused, stats.temporaries_removed) == before:
                    break
            function.attributes["raster.fusion"] = DictionaryAttr(
                {
                    "loops_fused": IntegerAttr(stats.loops_fused, i64),
                    "temporaries_removed": IntegerAttr(stats.temporaries_removed, i64),
                    "bytes_removed": IntegerAttr(stats.bytes_removed, i64),
                }
            )
