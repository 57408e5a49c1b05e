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

from bisect import bisect_right

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


def _signature_ids(ops: list[Operation], weights: list[int], largest: int) -> list[int]:
    """Small ints, equal for ops of equal signature. An op alone of its name and size has no
    twin, and one of more than `largest` nested ops is in no unit: each gets an id of its own
    without its signature being made."""
    cheap: dict[tuple, list[int]] = {}
    for k, (op, w) in enumerate(zip(ops, weights)):
        cheap.setdefault((op.name, w) if w <= largest else k, []).append(k)
    ids: dict[tuple, int] = {}
    sig = [0] * len(ops)
    for positions in cheap.values():
        if len(positions) == 1:
            sig[positions[0]] = -1 - positions[0]  # unique
        else:
            for k in positions:
                sig[k] = ids.setdefault(signature(ops[k]), len(ids))
    return sig


def plan_with_repeats(
    ops: list[Operation], weights: list[int], segment_ops: int
) -> tuple[list[list[Operation]], list[int | None]]:
    """Groups of consecutive `ops` (weights: nested op counts), cut at repeats (module docstring),
    and for each group the position of the first group of its repeat (None: not in a repeat)."""
    sig = _signature_ids(ops, weights, 2 * segment_ops)
    later: dict[int, list[int]] = {}  # signature id -> the positions of the ops that have it
    for k, s in enumerate(sig):
        later.setdefault(s, []).append(k)
    prefix = [0]
    for w in weights:
        prefix.append(prefix[-1] + w)
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
        found = _repeat_at(sig, later[sig[i]], prefix, i, segment_ops)
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


def _repeat_at(sig: list[int], same: list[int], prefix: list[int], i: int, segment_ops: int):
    """(unit length in ops, number of segments, units per segment) of the best repeat at `i`, or
    None. `same`: the positions of the ops with op i's signature; `prefix`: running sums of the
    ops' weights. Only the next ops with op i's signature can start the unit's next copy."""
    n = len(sig)
    best = None  # (ops covered, period, copies, per_segment)
    for j in same[bisect_right(same, i) :]:
        period = j - i
        unit_weight = prefix[j] - prefix[i]
        if unit_weight > 2 * segment_ops or 2 * period > n - i:
            break
        if best is not None and best[0] >= n - i - period:
            break  # a longer unit could cover fewer than `period` more ops
        unit = sig[i:j]
        repeats = 1
        while sig[i + repeats * period : i + (repeats + 1) * period] == unit:
            repeats += 1
        if repeats < 2 or -(-segment_ops // 2) > unit_weight * (repeats // 2):
            continue  # no repeat, or too small for two segments of segment_ops // 2 nested ops
        per_segment = max(1, -(-(segment_ops // 2) // unit_weight))  # the fewest units that make a segment
        copies = repeats // per_segment
        if copies < 2:
            continue
        covered = copies * per_segment * period
        if best is None or covered > best[0]:
            best = (covered, period, copies, per_segment)
    return None if best is None else best[1:]
