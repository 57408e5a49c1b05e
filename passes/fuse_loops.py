"""`fuse-loops`: merge loop nests that walk the same iteration space, then drop dead temporaries.

Algorithm, per block (a function body, then the bodies of the loops, while
loops and branches in it, up to `max-depth`), linear in the size of the block:
1. One sweep visits the block's ops in order with `BlockDependences`
   (block_dependences.py): every op is walked once, and its dependences (the
   earlier ops it must stay after: SSA definitions, per-buffer last writer
   and readers, opaque ops) are looked up in maps updated as loops merge.
2. Candidates are `scf.for` loops with constant bounds, no loop-carried
   results and nothing opaque inside. A candidate L2 joins an earlier
   candidate L1 with the same bounds when
   - L2 can move up to just after L1: every op L2 depends on is L1 or before
     it; or L1 can move down to just before L2: no op after L1 depends on it
     (it is a "sink");
   - every buffer one loop writes and the other touches is indexed, in every
     access of both loops, by the loop's own induction variable at one
     common dimension d (`Footprint.iv_dims`). Iteration i of L2 then only
     sees elements with index i at d, which only iteration i of L1 produced:
     running L1's body then L2's body per iteration computes the same values.
   A loop carrying values (a reduction: the sum of a loss, the max of a
   softmax row) joins no earlier loop that way, but it absorbs its latest
   dependence P when P is a candidate without results, with its bounds,
   and the same iteration holds:
   P's body goes to the start of the reduction's body, which takes P's
   place (so `sum(tanh(x) * exp(-x*x))` makes no temporary), and the
   reduction stays a candidate: a later loop joins it like any other,
   unless it reads the values carried (final only after the loop). An
   innermost reduction (the loop LLVM vectorises) merges only with loops
   it shares nothing with but temporaries: a weight update of the previous
   step in a data loop keeps its loop, so the next dot product rounds as
   in a separate step.
   Choice, in order: L2's latest dependence P itself (producer -> consumer);
   a sink L2 depends on, latest first (L1 moves down); the latest candidate
   if it comes after P (a sibling; always legal, as L2 depends on nothing
   after P); the latest independent sink. Each choice costs O(footprint of L2).
3. Fusion moves L2's body to the end of L1's body (L2's induction variable
   becomes L1's); the surviving node absorbs L2's accesses. Sweeps repeat
   (at most `MAX_SWEEPS`) while they fuse something; then the loops nested
   inside the merged bodies are fused in turn.
4. Store-to-load forwarding: in a block, a load of the element just stored
   (same buffer, same index values) takes the stored value.
5. Temporaries (`memref.alloc`) that are never loaded any more are deleted
   with their stores, and loops left without effect are removed; steps 1-5
   repeat while they change something.

Before step 1, copy loops (slices, broadcasts) are read through: a load of
their temporary at any index becomes a load of their source
(forward_gathers.py), which also removes copies fusion cannot reach (a piece
of a concatenation read at `i - offset`).

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


from xdsl.context import Context
from xdsl.dialects import func, memref, scf
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass
from xdsl.traits import is_side_effect_free

from .block_dependences import BlockDependences, Footprint, Node, footprint
from .elementwise_clusters import FUSION_ATTR, MAX_OPS, FusionStats
from .forward_gathers import buffer_bytes, forward_block
from .loop_analysis import accesses, is_opaque, loop_bounds

from raster_mlir.ir_walk import block_ops, has_one_op, walk_ops
from .pass_dataclass import pass_dataclass

_LOOPS = ("scf.for", "scf.while")
_NESTING = ("scf.for", "scf.while", "scf.if")  # ops whose blocks fusion recurses into

# Sweeps over one block per round: a later sweep only finds fusions that a loop moved down by
# the previous one made legal, which is rare; the bound keeps a round linear.
MAX_SWEEPS = 4


class RoundMemo:
    """What a round of fusion and clean-up reuses from the rounds before (step 5 of the module docstring).

    `settled`: blocks whose last sweep fused nothing and in which nothing changed since (nor in
    the blocks nested in them): a sweep depends only on the block and what is nested in it, so
    it would fuse nothing again, and the round skips them. `footprints`: footprints computed
    from the IR (not merged by `BlockDependences.absorb`) of ops inside which nothing changed
    since. Every change (a fusion, a forwarded load and its users, an erased store, alloc or
    dead op) goes through `changed`, which un-settles the block and every block around it and
    drops the footprints of the ops holding it. The IR is the same as with every block swept
    and every footprint computed again in each round (docs/compile-time.md has the figures).
    """

    def __init__(self) -> None:
        self.settled: set[Block] = set()
        self.footprints: dict[Operation, Footprint] = {}

    def rewritten(self, op: Operation) -> None:
        """`op` changed, and the ops nested in it may use other values (a merged loop's body)."""
        for inner in walk_ops(op):
            self.footprints.pop(inner, None)
            for region in inner.regions:
                self.settled.difference_update(region.blocks)
        self.changed(op.parent_block())

    def changed(self, block: Block | None) -> None:
        """Something in `block` changed (an op erased, moved or given other operands)."""
        while block is not None:
            self.settled.discard(block)
            holder = block.parent_op()
            if holder is None:
                return
            self.footprints.pop(holder, None)
            block = holder.parent_block()


def same_iteration(a: Footprint, b: Footprint) -> bool:
    """Every buffer shared with a write is indexed by each loop's own IV at one common dimension."""
    touched_by_b = b.reads | b.writes
    for buffer in (a.writes & touched_by_b) | (a.reads & b.writes):
        if not (a.iv_dims[buffer] & b.iv_dims[buffer]):
            return False
    return True


def _candidate_bounds(op: Operation) -> tuple[int, int, int] | None:
    """The bounds of a loop fusion may merge (constant bounds, no loop-carried results), else None.

    The time loop of a `raster.for` / `raster.scan` (attribute `raster.loop`) is not one: its steps
    run in sequence, and an unrelated element loop of the same trip count merged into it would
    run one element per step instead of being vectorised. Fusion works inside it.
    """
    if op.name == "scf.for" and not op.results and "raster.loop" not in op.attributes:
        return loop_bounds(op)  # (ops told apart by name in this module: a failed isinstance against an op class, an ABC, costs 5x more)
    return None


def _reduction_bounds(op: Operation) -> tuple[int, int, int] | None:
    """The bounds of a loop carrying values that may absorb its producer loop, else None."""
    if op.name == "scf.for" and op.results and "raster.loop" not in op.attributes:
        return loop_bounds(op)
    return None


def _fusable(node: Node, bounds: tuple, size: int, max_size: int) -> bool:
    """`node` is a loop with `bounds` that may take a body of `size` more ops (`kind`: its bounds)."""
    fp = node.footprint
    return node.kind == bounds and not fp.opaque and fp.size + size <= max_size


class _Candidates:
    """The fusable loops of a block seen so far, per bounds, in position order; and which are sinks."""

    def __init__(self) -> None:
        # Dicts as ordered sets: a loop moved down is re-inserted, so insertion order is position order.
        self._loops: dict[tuple, dict[Node, None]] = {}
        self._sinks: dict[tuple, dict[Node, None]] = {}  # may hold stale entries (loops that gained dependents)

    def add(self, bounds: tuple, node: Node) -> None:
        for table in (self._loops, self._sinks):
            loops = table.setdefault(bounds, {})
            loops.pop(node, None)
            loops[node] = None

    def latest(self, bounds: tuple) -> Node | None:
        loops = self._loops.get(bounds)
        return next(reversed(loops)) if loops else None

    def latest_sink(self, bounds: tuple, excluded: set[Node]) -> Node | None:
        """The latest sink with these bounds not in `excluded` (drops stale sinks on the way)."""
        sinks = self._sinks.get(bounds)
        if not sinks:
            return None
        stale, found = [], None
        for node in reversed(sinks):
            if node.has_dependents:
                stale.append(node)
            elif node not in excluded:
                found = node
                break
        for node in stale:
            del sinks[node]
        return found


def _choose(
    bounds: tuple, loop: scf.ForOp, fp: Footprint, deps: set[Node], candidates: _Candidates, max_size: int
) -> tuple[Node, str] | None:
    """The loop L2 (footprint `fp`, dependences `deps`) joins and how: (L1, "up" | "down"), or None."""
    latest = max(deps, key=lambda n: n.position) if deps else None
    if (
        latest is not None and _fusable(latest, bounds, fp.size, max_size) and same_iteration(latest.footprint, fp)
        and _may_join(latest, loop, fp)
    ):  # fmt: skip
        return latest, "up"
    producers = [d for d in deps if d is not latest and not d.has_dependents and _fusable(d, bounds, fp.size, max_size)]
    for producer in sorted(producers, key=lambda n: -n.position):
        if same_iteration(producer.footprint, fp) and _may_join(producer, loop, fp):
            return producer, "down"
    sibling = candidates.latest(bounds)
    if sibling is not None and (latest is None or sibling.position > latest.position):
        if sibling.footprint.size + fp.size <= max_size and _may_join(sibling, loop, fp):
            return sibling, "up"
    sibling = candidates.latest_sink(bounds, deps)
    if sibling is not None and sibling.footprint.size + fp.size <= max_size and _may_join(sibling, loop, fp):
        return sibling, "down"
    return None


def _may_join(target: Node, loop: scf.ForOp, fp: Footprint) -> bool:
    """May `loop` (footprint `fp`) go to the end of the body of `target`, a loop carrying values or not?

    Not when it reads the values carried (they are final only after the whole loop), nor when
    both are innermost and they share a buffer other than a temporary (`_through_temporaries`).
    """
    results = target.op.results
    if not results:
        return True
    if any(result in fp.uses for result in results):
        return False
    return _through_temporaries(target.footprint, fp) or not (_is_innermost(target.op) and _is_innermost(loop))


def _fuse(l1: scf.ForOp, l2: scf.ForOp, placement: str) -> None:
    if placement == "down":
        l1.detach()
        l2.parent_block().insert_op_before(l1, l2)
    l2.body.block.args[0].replace_all_uses_with(l1.body.block.args[0])
    target = l1.body.block
    yield_op = target.last_op
    for op in block_ops(l2.body.block)[:-1]:  # all but l2's scf.yield
        op.detach()
        target.insert_op_before(op, yield_op)
    l2.detach()
    l2.erase()


def _fuse_into_reduction(producer: scf.ForOp, reduction: scf.ForOp) -> None:
    """`producer`'s body goes to the start of `reduction`'s body; the reduction takes the producer's place."""
    reduction.detach()
    producer.parent_block().insert_op_before(reduction, producer)
    producer.body.block.args[0].replace_all_uses_with(reduction.body.block.args[0])
    first = reduction.body.block.first_op
    for op in block_ops(producer.body.block)[:-1]:  # all but the producer's scf.yield
        op.detach()
        reduction.body.block.insert_op_before(op, first)
    producer.detach()
    producer.erase()


def _is_innermost(loop: scf.ForOp) -> bool:
    return not any(op.name in _LOOPS for op in walk_ops(loop)[1:])


def _through_temporaries(a: Footprint, b: Footprint) -> bool:
    """Every buffer one of the two loops writes and the other touches is a temporary (`memref.alloc`).

    The condition for merging a loop with an innermost reduction (module docstring, step 2):
    LLVM vectorises that reduction, and how (lanes, interleaving) depends on its body, so a merged
    body can round the sum differently. Merging loops that pass temporaries (the producer of
    what is summed, a gradient reading the same tanh and exp) is the point of the fusion. Loops
    that share an argument, in a step's data loop the previous step's update of W and this
    step's dot product W[i] . x, stay apart: separate steps never see them together, and
    `step.run`'s rotation promises their bits.
    """
    shared = (a.writes & (b.reads | b.writes)) | (a.reads & b.writes)
    return all(isinstance(buffer.owner, memref.AllocOp) for buffer in shared)


def _absorb_producer(
    op: scf.ForOp, fp: Footprint, dependences: BlockDependences, footprints: dict, max_size: int, absorbed: set
) -> bool:
    """Fuse reduction loop `op` with its producer loop where legal (module docstring, step 2)."""
    bounds = _reduction_bounds(op)
    deps = dependences.dependences(fp)
    if bounds is None or fp.opaque or not deps:
        return False
    producer = max(deps, key=lambda n: n.position)
    if producer.op.results or not (_fusable(producer, bounds, fp.size, max_size) and same_iteration(producer.footprint, fp)):
        return False
    if _is_innermost(op) and not _through_temporaries(producer.footprint, fp):
        return False
    footprints[op] = footprints.pop(producer.op)
    absorbed.add(op)
    del dependences.node_of[producer.op]
    _fuse_into_reduction(producer.op, op)
    producer.op = op  # the node stays a candidate: later loops may join it (`_may_join`)
    dependences.node_of[op] = producer
    dependences.absorb(producer, fp, deps)
    return True


def fuse_sweep(
    block: Block, stats: FusionStats, footprints: dict[Operation, Footprint] | None = None, max_size: int = MAX_OPS,
    reductions: bool = True, absorbed: set[Operation] | None = None,
) -> bool:  # fmt: skip
    """One pass over `block`'s ops in order, fusing each loop into an earlier one where legal.

    `footprints` keeps each op's footprint between sweeps over the same block (a loop that
    absorbs another keeps its footprint up to date; nothing else in the block changes).
    `absorbed` receives the loops that absorbed another (their footprints are merged ones).
    """
    footprints = {} if footprints is None else footprints
    absorbed = set() if absorbed is None else absorbed
    dependences = BlockDependences()
    candidates = _Candidates()
    fused = False
    for op in block_ops(block):
        bounds = _candidate_bounds(op)
        fp = footprints.get(op)
        if bounds is None and reductions:
            bounds = _reduction_bounds(op)
            if bounds is not None:
                assert isinstance(op, scf.ForOp)
                if fp is None:
                    fp = footprints[op] = footprint(op, op.body.block.args[0])
                if not fp.opaque and _absorb_producer(op, fp, dependences, footprints, max_size, absorbed):
                    stats.loops_fused += 1
                    fused = True
                    continue
                node = dependences.add(op, fp, dependences.dependences(fp), kind=bounds)
                if not fp.opaque:
                    candidates.add(bounds, node)
                continue
        if bounds is None:
            if fp is None:
                fp = footprints[op] = footprint(op)
            dependences.add(op, fp, dependences.dependences(fp))
            continue
        assert isinstance(op, scf.ForOp)
        if fp is None:
            fp = footprints[op] = footprint(op, op.body.block.args[0])
        deps = dependences.dependences(fp)
        choice = None if fp.opaque else _choose(bounds, op, fp, deps, candidates, max_size)
        if choice is None:
            node = dependences.add(op, fp, deps, kind=bounds)
            if not fp.opaque:
                candidates.add(bounds, node)
            continue
        target, placement = choice
        l1 = target.op
        assert isinstance(l1, scf.ForOp)
        del footprints[op]
        _fuse(l1, op, placement)
        absorbed.add(l1)
        stats.loops_fused += 1
        fused = True
        if placement == "down":
            dependences.move_to_end(target)
            candidates.add(bounds, target)
        dependences.absorb(target, fp, deps)
    return fused


def fuse_block(
    block: Block, depth: int, max_depth: int, stats: FusionStats, max_size: int = MAX_OPS, reductions: bool = True,
    memo: RoundMemo | None = None,
) -> None:  # fmt: skip
    """Fuse the sibling loops of `block`, then recurse into loop bodies (up to `max_depth` levels).

    With `memo`, a block settled in an earlier round is skipped, and footprints are reused (RoundMemo).
    """
    if depth > max_depth:
        return
    memo = RoundMemo() if memo is None else memo
    if block in memo.settled:
        return
    ops = block_ops(block)
    settled = True
    if sum(op.name == "scf.for" for op in ops) > 1:  # (a fused body of thousands of scalar ops has nothing to fuse: no sweep)
        known = memo.footprints
        footprints: dict[Operation, Footprint] = {op: known[op] for op in ops if op in known}
        absorbed: set[Operation] = set()
        settled = False
        for _ in range(MAX_SWEEPS):
            if not fuse_sweep(block, stats, footprints, max_size, reductions, absorbed):
                settled = True
                break
        known.update((op, fp) for op, fp in footprints.items() if op not in absorbed)
        for loop in absorbed:
            if loop.parent is not None:  # (not absorbed in turn by a later loop)
                memo.rewritten(loop)
    if settled:
        memo.settled.add(block)  # (until something in it changes, fusions in its loop bodies included)
    for op in block.ops:
        if op.name in _NESTING:  # loop bodies, while regions, branches
            for region in op.regions:
                for inner in region.blocks:
                    fuse_block(inner, depth + 1, max_depth, stats, max_size, reductions, memo)


class _StoredValues:
    """What forward_stores knows in one block: the value last stored per (buffer, indices).

    A nested block's layer sees its parent's values for buffers the op holding
    it never writes (`hidden` are the ones it writes; `cut`: it may write
    anything), without copying them.
    """

    def __init__(self, parent: _StoredValues | None = None, hidden=frozenset(), cut: bool = False):
        self.parent = parent
        self.hidden = hidden
        self.cut = cut
        self.local: dict[object, dict[tuple, object]] = {}  # buffer -> {indices: value}; {} hides the parent's

    def lookup(self, buffer, indices: tuple):
        layer = self
        while layer is not None:
            known = layer.local.get(buffer)
            if known is not None:
                return known.get(indices)
            if layer.cut or buffer in layer.hidden:
                return None
            layer = layer.parent
        return None

    def store(self, buffer, indices: tuple, value) -> None:
        self.local[buffer] = {indices: value}  # other indices may alias these ones: forget them

    def forget(self, buffers) -> None:
        for buffer in buffers:
            self.local[buffer] = {}

    def forget_all(self) -> None:
        self.local.clear()
        self.cut = True


def forward_stores(block: Block, known: _StoredValues | None = None, memo: RoundMemo | None = None) -> None:
    """Replace a load of an element stored earlier by the stored value.

    `known` holds the values stored before this block. They flow into nested
    regions whose ops never write that buffer: a loop body then sees the same
    element on every iteration, so the forwarded value is valid there too.
    """
    last = _StoredValues() if known is None else known
    for op in block_ops(block):
        # (operands by position: store (value, memref, *indices), load (memref, *indices); the IRDL
        # accessors .memref, .indices, .value cost a fifth of this function)
        name = op.name
        if name == "memref.store":
            value, buffer, *indices = op._operands
            last.store(buffer, tuple(indices), value)
        elif name == "memref.load":
            buffer, *indices = op._operands
            value = last.lookup(buffer, tuple(indices))
            if value is not None:
                if memo is not None:
                    memo.changed(block)
                    for use in op.results[0].uses:  # (their footprints used the load)
                        memo.footprints.pop(use.operation, None)
                        memo.changed(use.operation.parent_block())
                op.results[0].replace_all_uses_with(value)
                op.detach()
                op.erase()
        elif not op.regions:
            if is_opaque(op):  # a call, a copy or a vector store may write anything
                last.forget_all()
        else:
            written = accesses([op])
            for region in op.regions:
                for inner in region.blocks:
                    forward_stores(inner, _StoredValues(last, written.writes.keys(), cut=written.opaque), memo)
            if written.opaque:
                last.forget_all()
            else:
                last.forget(written.writes)


def remove_dead_temporaries(function: func.FuncOp, stats: FusionStats, memo: RoundMemo | None = None) -> None:
    """Delete allocs that are only ever stored to, with their stores."""
    memo = RoundMemo() if memo is None else memo
    for alloc in [op for op in walk_ops(function) if op.name == "memref.alloc"]:
        buffer = alloc.results[0]
        uses = [u.operation for u in buffer.uses]
        if all(u.name == "memref.store" and u._operands[1] is buffer for u in uses):
            for store in uses:
                memo.changed(store.parent_block())
                store.detach()
                store.erase()
            t = alloc.memref.type
            assert isinstance(t, MemRefType)
            stats.temporaries_removed += 1
            stats.bytes_removed += buffer_bytes(t)
            memo.changed(alloc.parent_block())
            alloc.detach()
            alloc.erase()


def remove_dead_code(block: Block, memo: RoundMemo | None = None) -> None:
    """Erase unused side-effect-free ops and loops that no longer do anything (innermost first)."""
    memo = RoundMemo() if memo is None else memo
    for op in reversed(block_ops(block)):
        for region in op.regions:
            for inner in region.blocks:
                remove_dead_code(inner, memo)
        if op.name == "scf.for" and not op.results and has_one_op(op.body.block):
            memo.changed(block)
            op.detach()
            op.erase()
        elif op.results and not op.regions and not any(r.uses for r in op.results) and (
            op.name == "memref.load" or is_side_effect_free(op)
        ):
            memo.changed(block)
            op.detach()
            op.erase()


@pass_dataclass
class FuseLoopsPass(ModulePass):
    """Fuse loop nests over the same iteration space; remove temporaries fusion made dead."""

    name = "fuse-loops"

    max_depth: int = 8
    """How many loop levels deep fusion looks (1 = only a function's outermost loops)."""

    max_body_ops: int = MAX_OPS
    """Largest fused loop (ops, nested ones included): LLVM's loop vectoriser takes time
    superlinear in a loop body's size (elementwise_clusters.MAX_OPS, also lower-to-loops' bound)."""

    reductions: bool = True
    """Let a loop carrying values (a sum, a max) absorb its producer loop (module docstring,
    step 2); false: only loops without results merge (for A/B measurements, bench_fuse_reductions.py)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            stats = FusionStats.of(function)  # (lower-to-loops' runs of element-wise ops counted already)
            # Copies (slices, broadcasts) read at shifted or guarded positions go first (forward_gathers.py).
            removed, removed_bytes = forward_block(function.body.block)
            stats.temporaries_removed += removed
            stats.bytes_removed += removed_bytes
            # Clean-up can enable more fusion (a removed temporary no longer blocks a move).
            memo = RoundMemo()
            for _ in range(8):
                before = (stats.loops_fused, stats.temporaries_removed)
                fuse_block(function.body.block, 1, self.max_depth, stats, self.max_body_ops, self.reductions, memo)
                forward_stores(function.body.block, memo=memo)
                remove_dead_temporaries(function, stats, memo)
                remove_dead_code(function.body.block, memo)
                if (stats.loops_fused, stats.temporaries_removed) == before:
                    break
            function.attributes[FUSION_ATTR] = stats.as_attribute()
