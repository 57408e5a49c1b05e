"""Which loops get `llvm.loop.vectorize.enable`: a conservative legality screen.

Forcing vectorisation is a promise to LLVM that we want it; when LLVM then
cannot vectorise the loop, its WarnMissedTransformations pass prints
"loop not vectorized: the optimizer was unable to perform the requested
transformation" on the process's stderr, for every such loop, at every
compile. So the hint goes only on loops that are clearly vectorisable and
worth it. An `scf.for` qualifies when:

1. it is innermost (LLVM vectorises innermost loops only);
2. its body is scalar (a loop written with `vector` ops is vectorised already)
   and calls nothing: no `func.call`, and no math op that becomes a scalar
   libm call (`scalar_calls`: `llvm.exp` on a vector becomes one `exp` call
   per lane, so forcing only adds shuffles; with vector maths on, exp, log,
   tanh... are inline arithmetic instead, see vmath/, and do not count);
3. it has no loop-carried dependence through memory: for every buffer the
   body stores to, every load and store of that buffer inside the body uses
   the very same index SSA values, and the last index is the loop's
   induction variable (so iteration k touches only its own elements).
   Reductions through `iter_args` are fine: with `reassoc` (or the hint
   itself) LLVM vectorises them;
4. it does not both store into a temporary and load from a temporary with
   the induction variable in an outer index (a strided load, as in a
   transpose `t[i, j] = s[j, i]`): temporaries are slices of one workspace,
   so LLVM sees one object accessed with two strides, cannot prove the load
   independent of the store ("unknown data dependence") and, forced, warned
   about such loops (two per 784-256-128-10 batch-64 train step). Strided
   loads from arguments are fine: they are separate `noalias` objects.

Loops that fail the screen are left to LLVM's cost model, which still
vectorises many of them (the `reassoc` flag and `noalias` arguments help).
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntegerAttr
from xdsl.ir import OpResult, Operation

from ..ir_walk import block_ops, walk_ops
from .analysis import indexed_access, memref_root
from .llvm_ops import LIBM_OPS


def nested_ops(loop: Operation) -> list[Operation]:
    """`loop` and every op nested in it, in walk order: walked once, then passed to each function below
    (the `ops` argument) instead of each walking the loop again."""
    return walk_ops(loop)


def should_force_vectorize(
    loop: Operation, fn_name: str, scalar_calls: frozenset[str] = LIBM_OPS, ops: list[Operation] | None = None
) -> bool:
    """True if `loop` (an scf.for) passes the screen in the module docstring; `ops`: `nested_ops(loop)`."""
    body = loop.body.blocks.first
    iv = body.args[0]
    accesses: dict[object, list[tuple]] = {}
    stored: set[object] = set()
    strided_temporary_load = False
    for op in ops if ops is not None else walk_ops(loop):
        if op is loop:
            continue
        name = op.name
        if name in ("scf.for", "scf.while", "func.call", "memref.copy") or name in scalar_calls or name.startswith("raster.rt_"):
            return False
        if name.startswith("vector."):  # written with vectors already: nothing left to vectorise
            return False
        access = indexed_access(op)
        if access is not None:
            buffer, indices, is_store = access
            root = memref_root(buffer, fn_name)
            accesses.setdefault(root, []).append(indices)
            if is_store:
                stored.add(root)
            elif isinstance(root, Operation) and any(index is iv for index in indices[:-1]):
                strided_temporary_load = True
    if strided_temporary_load and any(isinstance(root, Operation) for root in stored):
        return False
    for root in stored:
        index_lists = set(accesses[root])
        if len(index_lists) != 1:
            return False
        (indices,) = index_lists
        if not indices or indices[-1] is not iv:
            return False
    return True


def indexes_through_memory(loop: Operation, ops: list[Operation] | None = None) -> bool:
    """True when an innermost `loop` addresses memory with an index computed from a value it loads.

    (Such as `c = list[q]; ... W[i, c + k]` in a loop over q, from
    `skip-zero-chunks`.) Vectorising across its iterations would need
    gathers; the lanes inside one iteration are contiguous instead.
    """
    body = loop.body.blocks.first
    if any(op.name == "scf.for" for op in (ops if ops is not None else walk_ops(loop)) if op is not loop):
        return False
    body_ops = block_ops(body)
    indices = [index for access in map(indexed_access, body_ops) if access is not None for index in access[1]]
    if not any(isinstance(index, OpResult) and index.op.parent_block() is body for index in indices):
        return False  # every index is a block argument or comes from outside the body: none is loaded here
    loaded: set[int] = set()  # ids of the values computed from a load (SSA values compare by identity)
    for op in body_ops:
        access = indexed_access(op)
        if access is not None and not loaded.isdisjoint(map(id, access[1])):
            return True
        if op.name == "memref.load" or not loaded.isdisjoint(map(id, op.operands)):
            loaded.update(map(id, op.results))
    return False


def _constant_index(value) -> int | None:
    owner = value.owner if isinstance(value, OpResult) else None
    if owner is not None and owner.name == "arith.constant" and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def trip_count(loop: Operation) -> int | None:
    """The number of iterations of an scf.for with constant bounds and a positive constant step, else None."""
    lb, ub, step = (_constant_index(v) for v in (loop.lb, loop.ub, loop.step))
    if None in (lb, ub, step) or step <= 0:
        return None
    return max(0, -(-(ub - lb) // step))


# Instructions an early full unroll may produce (LLVM's O3 threshold, 300, with a margin: LLVM
# counts its own instructions, we count the ops that surely become at least one).
EARLY_FULL_UNROLL_SIZE = 400
_COSTLY_PREFIXES = ("memref.load", "memref.store", "vector.", "math.")
_COSTLY_FLOAT_OPS = ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf", "arith.minimumf")


def stays_a_loop(loop: Operation) -> bool:
    """True when LLVM's early full unrolling (before the loop vectoriser) surely leaves `loop` a loop:
    its trip count is known only at run time, or it times the ops of its body that surely cost an
    instruction (loads, stores, float arithmetic, maths, vector ops) reach EARLY_FULL_UNROLL_SIZE.
    (LLVM fully unrolls a loop of more than 10 iterations only when trips x size < 300.)"""
    count = trip_count(loop)
    if count is None:
        return True
    costly = sum(1 for op in walk_ops(loop) if op.name.startswith(_COSTLY_PREFIXES) or op.name in _COSTLY_FLOAT_OPS)
    return count * costly >= EARLY_FULL_UNROLL_SIZE


def rolls_over_a_long_reduction(loop: Operation, ops: list[Operation] | None = None) -> bool:
    """True when `loop` (an scf.for) contains a reduction loop (one with iter_args: a dot product)
    that `stays_a_loop`. Then `loop` is never the innermost loop when the loop vectoriser runs (so
    `llvm.loop.unroll.disable` on it, which also sets the interleave count of a loop LLVM vectorises
    to 1, cannot touch a vectorised loop), and fully unrolling it later, around the vectorised and
    unrolled dot product, gains nothing measurable at run time while costing LLVM a copy of that
    loop per iteration (llvm_emit.ModuleEmitter.loop_metadata). Loops around loops that store (an
    outer-product update under an `scf.if`, in a train step's backward pass) are left to LLVM:
    rolled, that 10-row nest ran 2% slower, for no LLVM time saved."""
    return any(
        op is not loop and op.name == "scf.for" and len(op.iter_args) > 0 and stays_a_loop(op)
        for op in (ops if ops is not None else walk_ops(loop))
    )


def describe_loop(loop: Operation, fn_name: str, ops: list[Operation] | None = None) -> str:
    """What a loop does, for messages: its trip count and the buffers it stores to (or its reduction)."""
    count = trip_count(loop)
    trips = f"{count} iterations" if count is not None else "a trip count known at run time"
    written = []
    for op in ops if ops is not None else walk_ops(loop):
        access = indexed_access(op)
        if access is not None and access[2]:
            root = memref_root(access[0], fn_name)
            name = f"%{root.name_hint}" if getattr(root, "name_hint", None) else "a temporary"
            if name not in written:
                written.append(name)
    does = f"writes {', '.join(written)}" if written else f"reduces into {len(loop.results)} value(s)"
    return f"{trips}, {does}"


def vectorize_hint(
    loop: Operation, fn_name: str, scalar_calls: frozenset[str] = LIBM_OPS, ops: list[Operation] | None = None
) -> str | None:
    """The hint for one scf.for: "off" (indexed through memory), "force" (passes the screen) or None."""
    ops = ops if ops is not None else nested_ops(loop)
    if indexes_through_memory(loop, ops):
        return "off"
    return "force" if should_force_vectorize(loop, fn_name, scalar_calls, ops) else None
