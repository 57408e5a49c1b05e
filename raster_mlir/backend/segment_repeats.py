"""Segment cuts that follow repeated structure, so that repeats compile once (issue 13: cold compile).

Why: segment_dedup.py compiles a kernel segment once when another segment
has the same code, but segments were cut every `segment_ops` nested ops
(segment_emit.plan_segments), wherever that fell: a train step's six
identical 128x128 hidden layers (13 ops forward, 18 + 12 backward) gave
segments of 52, 45, 54, ... ops, of which one pair matched at 8 layers.
Here the cuts are chosen where the sequence of top-level ops repeats.

Algorithm:
1. Each top-level op gets a structural signature (`signature`): the names of
   the ops nested in it, in order, the types of their results, their
   properties and attributes, and where each operand comes from (an op inside
   by its position, a block argument inside by its position, or the op's k-th
   distinct outside value, with its type, and its value when it is a
   constant). Two ops with the same signature are the same computation on
   other buffers (of the same types); it is a guide for the cuts only:
   segment_dedup's key on the emitted LLVM IR decides what is merged, so a
   false match costs a cut, never a wrong result.
2. Scanning the ops in order, at each op the longest tandem repeat starting
   there is looked for: a unit of `p` ops (at most 2 x `segment_ops` nested
   ops) followed by copies of itself (the same signatures). A repeat of `r`
   units becomes `c` segments of `k` units each, k = the fewest units that
   reach `segment_ops` nested ops, but at most r // 2 so that at least two
   segments are alike; repeats whose segments would have fewer than
   `segment_ops` // 2 nested ops are ignored (a function costs LLVM and the
   emitter a fixed amount; tiny ones are not worth it).
3. The ops between repeats are grouped as before (at least `segment_ops`
   nested ops per group; a group smaller than half of that joins the group
   before it when that is not a repeat).

    ops (nested counts):  47 13 13 13 13 13 13 12 7 ...
    before:               [47] [13 13 13 13] [13 13 12 7 ...]
    after:                [47] [13 13 13] [13 13 13] [12 7 ...]    (the two middle ones: one function)

The cuts depend on the IR alone (deterministic object code), and a kernel
without repeats is cut exactly as before.
"""

from __future__ import annotations

from xdsl.ir import Block, Operation

from ..ir_walk import walk_ops


def signature(op: Operation) -> tuple:
    """The structure of `op` and everything nested in it, without the identity of outside values."""
    return _structure(walk_ops(op))


def group_signature(ops: list[Operation]) -> tuple:
    """The structure of the consecutive ops `ops` together: as `signature`, with outside values
    numbered across the group, so that it also says which ops share an outside value."""
    return _structure([inner for op in ops for inner in walk_ops(op)])


def _structure(nested: list[Operation]) -> tuple:
    inside: dict[int, int] = {}  # id of a value defined inside -> its position
    outside: dict[int, int] = {}  # id of an outside value -> its number (order of first use)
    parts: list = []
    for inner in nested:
        operands = []
        for v in inner.operands:
            key = id(v)
            where = inside.get(key)
            if where is None:
                where = outside.get(key)
                if where is None:
                    where = outside[key] = len(outside)
                    owner = v.owner
                    constant = owner.properties.get("value") if getattr(owner, "name", None) == "arith.constant" else None
                    where = ("out", where, v.type, constant)
                else:
                    where = ("out", where)
            operands.append(where)
        if inner.regions:
            for region in inner.regions:
                for block in region.blocks:
                    operands.append(tuple(arg.type for arg in block.args))
                    for arg in block.args:
                        inside[id(arg)] = len(inside)
        results = inner.results
        for r in results:
            inside[id(r)] = len(inside)
        props, attrs = inner.properties, inner.attributes
        parts.append(
            (
                inner.name,
                tuple(operands),
                tuple([r.type for r in results]) if results else (),
                tuple(props.items()) if props else (),
                tuple(attrs.items()) if attrs else (),
            )
        )
    return tuple(parts)


class _Signatures:
    """Signatures of `ops` made when first asked, as small ints (equal ints: equal signatures)."""

    def __init__(self, ops: list[Operation]):
        self.ops = ops
        self._ids: dict[tuple, int] = {}
        self._of: dict[int, int] = {}

    def __getitem__(self, k: int) -> int:
        found = self._of.get(k)
        if found is None:
            found = self._of[k] = self._ids.setdefault(signature(self.ops[k]), len(self._ids))
        return found

    def same(self, a: int, b: int, length: int) -> bool:
        return all(self[a + j] == self[b + j] for j in range(length))


def plan_with_repeats(
    ops: list[Operation], weights: list[int], segment_ops: int
) -> tuple[list[list[Operation]], list[int | None]]:
    """Groups of consecutive `ops` (weights: nested op counts), cut at repeats (module docstring),
    and for each group the position of the first group of its repeat (None: not in a repeat)."""
    # A cheap key first (name and size); signatures only for ops in a repeat of cheap keys.
    ids: dict[tuple, int] = {}
    cheap = [ids.setdefault((op.name, w), len(ids)) for op, w in zip(ops, weights)]
    full = _Signatures(ops)
    groups: list[tuple[list[Operation], int | None]] = []  # (ops, the first group of its repeat)
    pending: list[Operation] = []
    pending_weight = 0

    def flush() -> None:
        nonlocal pending, pending_weight
        if not pending:
            return
        if groups and groups[-1][1] is None and pending_weight < segment_ops // 2:
            groups[-1][0].extend(pending)
        else:
            groups.append((pending, None))
        pending, pending_weight = [], 0

    i, n = 0, len(ops)
    while i < n:
        found = _repeat_at(cheap, full, weights, i, segment_ops)
        if found is not None:
            period, copies, per_segment = found
            flush()
            first = len(groups)
            for c in range(copies):
                start = i + c * per_segment * period
                groups.append((list(ops[start : start + per_segment * period]), first))
            i += copies * per_segment * period
            continue
        pending.append(ops[i])
        pending_weight += weights[i]
        if pending_weight >= segment_ops:
            groups.append((pending, None))
            pending, pending_weight = [], 0
        i += 1
    flush()
    return [group for group, _ in groups], [first for _, first in groups]


def _repeat_at(cheap: list[int], full: _Signatures, weights: list[int], i: int, segment_ops: int):
    """(unit length in ops, number of segments, units per segment) of the best repeat at `i`, or None."""
    n = len(cheap)
    best = None  # (ops covered, period, copies, per_segment)
    unit_weight = 0
    for period in range(1, (n - i) // 2 + 1):
        unit_weight += weights[i + period - 1]
        if unit_weight > 2 * segment_ops:
            break
        if cheap[i + period] != cheap[i]:
            continue
        unit = cheap[i : i + period]
        repeats = 1
        while cheap[i + repeats * period : i + (repeats + 1) * period] == unit:
            repeats += 1
        if repeats < 2 or -(-segment_ops // 2) > unit_weight * (repeats // 2):
            continue  # no repeat, or too small for two segments of segment_ops // 2 nested ops
        verified = 1
        while verified < repeats and full.same(i, i + verified * period, period):
            verified += 1
        per_segment = -(-(segment_ops // 2) // unit_weight)  # the fewest units that make a segment
        copies = verified // per_segment
        if copies < 2:
            continue
        covered = copies * per_segment * period
        if best is None or covered > best[0]:
            best = (covered, period, copies, per_segment)
    return None if best is None else best[1:]
