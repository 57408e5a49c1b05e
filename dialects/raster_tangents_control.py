"""Tangent (forward-mode) rules of the loops and branches: rm.jvp, jacfwd and hvp go through them.

The tangent of a loop is one loop that carries both the primal carries and
their tangents. Its body is the primal body (cloned) with every op followed
by its tangent rule (`b.propagate`, the forward-ad pass's propagation, so
nested loops recurse); the tangents of closed-over values enter as extra
captures, those of a scan's xs as extra xs (sliced like the primal ones), and
a scan's ys get their tangents as extra ys. Every float carry carries a
tangent (zeros when its init has none). A branch's tangent is a `raster.if`
on the same predicate whose regions compute the branch and its tangents.

The primal results the original op computes stay its own (later ops use
them); the tangent loop recomputes the primal carries it needs, as JAX's
jvp of a scan does.
"""

from __future__ import annotations

from xdsl.ir import Block, Operation, SSAValue

from raster_mlir.dialects import raster as R

from .raster_control import INDEX, ConditionOp, ForOp, IfOp, ScanOp, WhileOp, YieldOp, clone_block_into
from .raster_loop_transforms import Builder
from .raster_rules_control import CONTROL_RULES
from .raster_rules_core import TangentBuilder
from .raster_rules_while import WHILE_RULES


def _clone_ops(source: Block, args) -> tuple[list[Operation], list[SSAValue]]:
    """Detached clones of `source`'s ops (its arguments bound to `args`) and its terminator's mapped operands."""
    mapping = dict(zip(source.args, args))
    ops = []
    for op in source.ops:
        if op is source.last_op:
            return ops, [mapping.get(v, v) for v in op.operands]
        ops.append(op.clone(value_mapper=mapping))
    return ops, []


def _body_with_tangents(b: TangentBuilder, source: Block, block: Block, args, arg_tangents: dict) -> tuple[list, list]:
    """Append `source`'s ops and their tangent rules to `block`; (yielded values, their tangents or None)."""
    ops, yielded = _clone_ops(source, args)
    tangents = dict(arg_tangents)
    b.propagate(block, ops, tangents)
    return yielded, [tangents.get(v) for v in yielded]


def _zeros_if_none(bb: Builder, tangents, values) -> list[SSAValue]:
    return [t if t is not None else bb.zeros_like(v) for t, v in zip(tangents, values)]


def _tangents_at(bb: Builder, positions, tangents, values) -> list[SSAValue]:
    """The tangents of `values` at `positions` (zeros where there is none)."""
    return _zeros_if_none(bb, [tangents[k] for k in positions], [values[k] for k in positions])


def _scatter(size: int, positions, values) -> list[SSAValue | None]:
    """A list of `size` Nones with `values` at `positions`."""
    out: list[SSAValue | None] = [None] * size
    for k, v in zip(positions, values):
        out[k] = v
    return out


def _float_positions(values) -> list[int]:
    return [k for k, v in enumerate(values) if R.is_float_type(v.type)]


def _given(tangents) -> list[int]:
    """Positions of the values that have a tangent."""
    return [m for m, t in enumerate(tangents) if t is not None]


@CONTROL_RULES.register_tangent(ForOp)
def for_tangent(b: TangentBuilder, op: ForOp, tangents):
    n = len(op.inits)
    init_t, cap_t = tangents[2 : 2 + n], tangents[2 + n :]
    carried = _float_positions(op.inits)
    caps = _given(cap_t)
    outer = Builder(b.block, op)
    t_inits = _tangents_at(outer, carried, init_t, op.inits)
    captures = [*op.captures, *(cap_t[m] for m in caps)]
    inits = [*op.inits, *t_inits]
    block = Block(arg_types=[INDEX, *(v.type for v in inits), *(v.type for v in captures)])
    i, c, tc = block.args[0], block.args[1 : 1 + n], block.args[1 + n : 1 + len(inits)]
    cap_args, cap_targs = block.args[1 + len(inits) : 1 + len(inits) + len(op.captures)], block.args[1 + len(inits) + len(op.captures) :]
    known = {c[k]: t for k, t in zip(carried, tc)} | {cap_args[m]: t for m, t in zip(caps, cap_targs)}
    yielded, yielded_t = _body_with_tangents(b, op.body_block(), block, [i, *c, *cap_args], known)
    bb = Builder(block, op)
    block.add_op(YieldOp(*yielded, *_tangents_at(bb, carried, yielded_t, yielded)))
    props = {k: v for k, v in op.properties.items() if k in ("reverse",)}
    loop = outer.append(ForOp(op.lb, op.ub, inits, captures, block, props))
    return _scatter(n, carried, loop.res[n:])


@CONTROL_RULES.register_tangent(ScanOp)
def scan_tangent(b: TangentBuilder, op: ScanOp, tangents):
    n, n_xs = len(op.inits), len(op.xs)
    init_t, xs_t, cap_t = tangents[:n], tangents[n : n + n_xs], tangents[n + n_xs :]
    carried = _float_positions(op.inits)
    xs_given, caps = _given(xs_t), _given(cap_t)
    ys = op.ys_results()
    ys_float = _float_positions(ys)
    outer = Builder(b.block, op)
    t_inits = _tangents_at(outer, carried, init_t, op.inits)
    inits = [*op.inits, *t_inits]
    xs = [*op.xs, *(xs_t[m] for m in xs_given)]
    captures = [*op.captures, *(cap_t[m] for m in caps)]
    slices = [ScanOp.slice_type(x.type) for x in xs]
    block = Block(arg_types=[INDEX, *(v.type for v in inits), *slices, *(v.type for v in captures)])
    args = list(block.args)
    i, c, tc = args[0], args[1 : 1 + n], args[1 + n : 1 + len(inits)]
    x_args = args[1 + len(inits) : 1 + len(inits) + n_xs]
    x_targs = args[1 + len(inits) + n_xs : 1 + len(inits) + len(xs)]
    cap_args = args[1 + len(inits) + len(xs) : 1 + len(inits) + len(xs) + len(op.captures)]
    cap_targs = args[1 + len(inits) + len(xs) + len(op.captures) :]
    known = (
        {c[k]: t for k, t in zip(carried, tc)}
        | {x_args[m]: t for m, t in zip(xs_given, x_targs)}
        | {cap_args[m]: t for m, t in zip(caps, cap_targs)}
    )
    yielded, yielded_t = _body_with_tangents(b, op.body_block(), block, [i, *c, *x_args, *cap_args], known)
    bb = Builder(block, op)
    carry_t = _tangents_at(bb, carried, yielded_t, yielded)
    ys_at = [n + k for k in ys_float]
    y_t = _tangents_at(bb, ys_at, yielded_t, yielded)
    block.add_op(YieldOp(*yielded[:n], *carry_t, *yielded[n:], *y_t))
    ys_types = [y.type for y in ys] + [ys[k].type for k in ys_float]
    props = {k: v for k, v in op.properties.items() if k in ("reverse",)}
    loop = outer.append(ScanOp(op.trip_count, inits, xs, captures, ys_types, block, props))
    results = list(loop.res)
    return _scatter(n + len(ys), [*carried, *ys_at], [*results[n : n + len(carried)], *results[len(inits) + len(ys) :]])


@WHILE_RULES.register_tangent(WhileOp)
def while_tangent(b: TangentBuilder, op: WhileOp, tangents):
    n = len(op.inits)
    init_t, cap_t = tangents[:n], tangents[n:]
    carried = _float_positions(op.inits)
    caps = _given(cap_t)
    outer = Builder(b.block, op)
    inits = [*op.inits, *_tangents_at(outer, carried, init_t, op.inits)]
    captures = [*op.captures, *(cap_t[m] for m in caps)]
    types = [*(v.type for v in inits), *(v.type for v in captures)]

    def split(block):
        a = list(block.args)
        return a[:n], a[n : len(inits)], a[len(inits) : len(inits) + len(op.captures)], a[len(inits) + len(op.captures) :]

    cond = Block(arg_types=types)
    c, _, cap_args, _ = split(cond)
    (pred,) = clone_block_into(op.cond_block(), cond, [*c, *cap_args])
    cond.add_op(ConditionOp(pred))
    body = Block(arg_types=types)
    c, tc, cap_args, cap_targs = split(body)
    known = {c[k]: t for k, t in zip(carried, tc)} | {cap_args[m]: t for m, t in zip(caps, cap_targs)}
    yielded, yielded_t = _body_with_tangents(b, op.body_block(), body, [*c, *cap_args], known)
    bb = Builder(body, op)
    body.add_op(YieldOp(*yielded, *_tangents_at(bb, carried, yielded_t, yielded)))
    loop = outer.append(WhileOp(inits, captures, cond, body))
    return _scatter(n, carried, loop.res[n:])


@CONTROL_RULES.register_tangent(IfOp)
def if_tangent(b: TangentBuilder, op: IfOp, tangents):
    cap_t = tangents[1:]
    caps = _given(cap_t)
    results = _float_positions(op.res)
    captures = [*op.captures, *(cap_t[m] for m in caps)]
    blocks = []
    for source in op.branches():
        block = Block(arg_types=[v.type for v in captures])
        cap_args, cap_targs = block.args[: len(op.captures)], block.args[len(op.captures) :]
        yielded, yielded_t = _body_with_tangents(b, source, block, cap_args, dict(zip((cap_args[m] for m in caps), cap_targs)))
        bb = Builder(block, op)
        block.add_op(YieldOp(*yielded, *_tangents_at(bb, results, yielded_t, yielded)))
        blocks.append(block)
    types = [r.type for r in op.res] + [op.res[k].type for k in results]
    branch = Builder(b.block, op).append(IfOp(op.pred, captures, types, *blocks))
    return _scatter(len(op.res), results, branch.res[len(op.res) :])
