"""Unroll-and-jam of reduction loop nests while emitting (register blocking).

Why: in a matvec row loop

    for i { acc = b[i]; for j { acc += W[i, j] * x[j] }; y[i] = acc }

every multiply-add loads both W[i, j] and x[j]. Jamming U = 4 rows makes
the inner loop compute four dot products at once, so each x[j] vector is
loaded once for four FMAs; measured on the AVX-512 host, a 128x784 f64
matvec then takes 0.72-0.80 of the unjammed time (0.8-0.9 of numpy's).
LLVM has an unroll-and-jam pass, but in the O3 pipeline it runs after the
loop vectoriser (and is off by default), when the inner loop already has
vector and epilogue copies and can no longer be jammed; so the backend does
it while emitting, where the loop nest is still structured.

Transformation, for an outer loop over [lb, ub) with step 1 and factor U:

    for i in [lb, lb + U*floor((ub-lb)/U)) step U:
        pre(i) ... pre(i+U-1)
        for j: inner(i, j) ... inner(i+U-1, j)      (U sets of iter_args)
        post(i) ... post(i+U-1)
    for i in [lb + U*floor((ub-lb)/U), ub): the original body (remainder)

`jam_plan` accepts a loop only when all of this holds:
1. constant bounds, step 1, no iter_args, at least U iterations;
2. its body is: straight-line ops, one `scf.for` (the inner loop), then
   straight-line ops or `scf.if` / `scf.for` nests of them (the `post` ops,
   emitted once per copy after the jammed inner loop), where straight-line
   means arith, math, memref and vector loads and stores (masked too),
   vector.create_mask, vector.broadcast and vector.reduction. (A reverse
   loop's row loop is like that: the recomputed dot product, then the
   outer-product update of the weights' gradient under skip-zero-updates'
   `scf.if`; its dot products are what the jam makes fast);
3. the inner loop has iter_args, bounds defined outside the nest, and a body
   of arith, math, loads and vector.broadcast/bitcast only (no stores, calls,
   loops or ifs); the chunk loops of skip-zero-chunks, whose accumulator is
   a vector, qualify;
4. no memory dependence between outer iterations: every buffer stored in
   the nest is accessed, everywhere in the nest, at one and the same index
   list, which contains the outer induction variable itself, so iteration i
   touches only its own elements and moving reads of i+1 before the stores
   of i changes nothing. Distinct buffers are distinct memory only where the
   function's arguments are `noalias` (entry functions), so nests in
   functions reached through `func.call` are left alone;
5. it pays: some inner load does not depend on the outer variable (the
   value the U copies share, x[j] above).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.ir import Operation, SSAValue

from ..ir_walk import walk_ops
from .analysis import indexed_access, memref_root

STRAIGHT_LINE = (
    "memref.load",
    "memref.store",
    "vector.load",
    "vector.store",
    "vector.maskedload",
    "vector.maskedstore",
    "vector.create_mask",
    "vector.broadcast",
    "vector.reduction",
)
INNER_OPS = ("memref.load", "vector.load", "vector.broadcast", "vector.bitcast")  # besides arith and math


@dataclass(frozen=True)
class JamPlan:
    inner: Operation
    pre: tuple[Operation, ...]
    post: tuple[Operation, ...]
    lb: int
    ub: int
    factor: int

    @property
    def main_end(self) -> int:
        return self.lb + (self.ub - self.lb) // self.factor * self.factor


def _constant(value: SSAValue) -> int | None:
    owner = getattr(value, "owner", None)
    if isinstance(owner, Operation) and owner.name == "arith.constant":
        data = getattr(getattr(owner.value, "value", None), "data", None)
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    return None


def _is_straight_line(op: Operation) -> bool:
    return op.name.startswith(("arith.", "math.")) or op.name in STRAIGHT_LINE


def _is_structured_straight_line(op: Operation) -> bool:
    """Straight-line, or an scf.if / scf.for whose regions hold only such ops (no calls, no while loops)."""
    if op.name not in ("scf.if", "scf.for"):
        return _is_straight_line(op)
    return all(
        inner.name == "scf.yield" or _is_structured_straight_line(inner)
        for region in op.regions
        for block in region.blocks
        for inner in block.ops
    )


def _defined_inside(value: SSAValue, nest: Operation) -> bool:
    owner = value.owner if isinstance(getattr(value, "owner", None), Operation) else value.block.parent_op()
    while owner is not None:
        if owner is nest:
            return True
        owner = owner.parent_op()
    return False


def jam_plan(outer: Operation, fn_name: str, noalias: bool, factor: int) -> JamPlan | None:
    """The JamPlan for scf.for `outer`, or None if any condition of the module docstring fails."""
    if factor < 2 or not noalias or outer.iter_args:
        return None
    lb, ub, step = _constant(outer.lb), _constant(outer.ub), _constant(outer.step)
    if lb is None or ub is None or step != 1 or ub - lb < factor:
        return None
    ops = [op for op in outer.body.blocks.first.ops if op.name != "scf.yield"]
    first = next((k for k, op in enumerate(ops) if op.name == "scf.for"), None)
    if first is None:
        return None
    inner = ops[first]
    pre, post = ops[:first], ops[first + 1 :]
    if not all(_is_straight_line(op) for op in pre) or not all(_is_structured_straight_line(op) for op in post):
        return None
    if not inner.iter_args or any(_defined_inside(v, outer) for v in (inner.lb, inner.ub, inner.step)):
        return None
    inner_ops = [op for op in inner.body.blocks.first.ops if op.name != "scf.yield"]
    if not all(op.name.startswith(("arith.", "math.")) or op.name in INNER_OPS for op in inner_ops):
        return None
    iv = outer.body.blocks.first.args[0]
    if not _no_cross_iteration_dependence(outer, iv, fn_name):
        return None
    inner_iv = inner.body.blocks.first.args[0]
    shared_load = any(
        op.name == "memref.load" and all(idx is inner_iv or not _defined_inside(idx, outer) for idx in op.operands[1:])
        for op in inner_ops
    )
    if not shared_load:
        return None
    return JamPlan(inner=inner, pre=tuple(pre), post=tuple(post), lb=lb, ub=ub, factor=factor)


def _no_cross_iteration_dependence(outer: Operation, iv: SSAValue, fn_name: str) -> bool:
    accesses: dict[object, set[tuple]] = {}
    stored: set[object] = set()
    for op in walk_ops(outer):
        access = indexed_access(op)
        if access is not None:
            buffer, indices, is_store = access
            root = memref_root(buffer, fn_name)
            accesses.setdefault(root, set()).add(indices)
            if is_store:
                stored.add(root)
    for root in stored:
        if len(accesses[root]) != 1:
            return False
        (indices,) = accesses[root]
        if not any(idx is iv for idx in indices):
            return False
    return True
