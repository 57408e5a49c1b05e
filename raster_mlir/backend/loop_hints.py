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

from .analysis import indexed_access, memref_root
from .llvm_ops import LIBM_OPS


def should_force_vectorize(loop: Operation, fn_name: str, scalar_calls: frozenset[str] = LIBM_OPS) -> bool:
    """True if `loop` (an scf.for) passes the screen in the module docstring."""
    body = loop.body.blocks.first
    iv = body.args[0]
    accesses: dict[object, list[tuple]] = {}
    stored: set[object] = set()
    strided_temporary_load = False
    for op in loop.walk():
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


def indexes_through_memory(loop: Operation) -> bool:
    """True when an innermost `loop` addresses memory with an index computed from a value it loads.

    (Such as `c = list[q]; ... W[i, c + k]` in a loop over q, from
    `skip-zero-chunks`.) Vectorising across its iterations would need
    gathers; the lanes inside one iteration are contiguous instead.
    """
    body = loop.body.blocks.first
    if any(op.name == "scf.for" for op in loop.walk() if op is not loop):
        return False
    loaded: set[object] = set()
    for op in body.ops:
        access = indexed_access(op)
        if access is not None and any(index in loaded for index in access[1]):
            return True
        if op.name == "memref.load" or any(operand in loaded for operand in op.operands):
            loaded.update(op.results)
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


def describe_loop(loop: Operation, fn_name: str) -> str:
    """What a loop does, for messages: its trip count and the buffers it stores to (or its reduction)."""
    count = trip_count(loop)
    trips = f"{count} iterations" if count is not None else "a trip count known at run time"
    written = []
    for op in loop.walk():
        access = indexed_access(op)
        if access is not None and access[2]:
            root = memref_root(access[0], fn_name)
            name = f"%{root.name_hint}" if getattr(root, "name_hint", None) else "a temporary"
            if name not in written:
                written.append(name)
    does = f"writes {', '.join(written)}" if written else f"reduces into {len(loop.results)} value(s)"
    return f"{trips}, {does}"


def vectorize_hint(loop: Operation, fn_name: str, scalar_calls: frozenset[str] = LIBM_OPS) -> str | None:
    """The hint for one scf.for: "off" (indexed through memory), "force" (passes the screen) or None."""
    if indexes_through_memory(loop):
        return "off"
    return "force" if should_force_vectorize(loop, fn_name, scalar_calls) else None
