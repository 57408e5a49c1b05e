"""`parallelize-loops`: mark the outermost loops whose iterations may run on several threads.

The pass only decides; the backend runs a marked loop on the native thread
pool (backend/parallel_emit.py, backend/pool.py), or serially where it may
not (a function reached through `func.call`, whose buffers may alias).

The outermost loops that qualify are marked `raster.parallel = [kinds]`: a
loop of the function's body, or, inside a loop that does not qualify (the
loop over the steps of a data loop, say), one of its own loops, and so on.
A loop qualifies when all of this holds:

1. constant bounds and step, at least two iterations;
2. its body allocates nothing, copies no buffer and calls no function, and
   touches memory only through `memref.load/store` and `vector.load/store`;
3. different iterations never touch the same element of a buffer the loop
   writes: for every written buffer there is one dimension in which every
   access of the loop (load or store) has the index `a*iv + e`, with the
   same `a != 0` everywhere and `e` ranging over less than `|a| * step`
   (`e` is built from constants and the induction variables of inner loops
   with constant bounds by `addi`, `subi` and `muli` by a constant; a vector
   access covers its lanes). The row loop of a batched dense layer (`o0 =
   4*ob`, rows `o0 + i`, i < 4) and the tile loops of a matmul qualify;
   a loop accumulating into one row of a buffer does not;
4. every value it carries (`iter_args`) is a reduction: the carried value
   passes through one chain of the same associative operation (`addf`,
   `mulf`, `maximumf`, `minimumf`; through inner loops' `iter_args` too)
   and nothing else reads it. `kinds` lists that operation per carried
   value (empty for a loop carrying nothing). The backend cuts such a loop
   into blocks, each reduced from the operation's identity, and combines
   the blocks' results in block order;
5. it is worth a dispatch: its work estimate (element operations: one per
   scalar op, one per lane of a vector op, 20-60 for a transcendental `math`
   op, times the trip counts of the enclosing loops) is at least `min-work`.

Loops that fail stay serial, unchanged. Only (4) changes the order of
floating-point operations, and only there does the result depend on how many
threads (blocks) run; in deterministic mode the backend uses a fixed number
of blocks (backend/pool.py). Everywhere else each element is computed by the
same operations whatever the thread count.

Before:
    scf.for %ob = %c0 to %c32 step %c1 {
      %o0 = arith.muli %ob, %c4 : index
      ... memref.store %v, %out[%n, %o0] ... (rows %o0 + 0..3)
    }
After:
    scf.for %ob = %c0 to %c32 step %c1 {
      ...
    } {raster.parallel = []}
"""

from __future__ import annotations

from typing import NamedTuple

from xdsl.context import Context
from xdsl.dialects import func, scf
from xdsl.dialects.builtin import ArrayAttr, MemRefType, ModuleOp, StringAttr, VectorType
from xdsl.ir import Block, BlockArgument, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass

from raster_mlir.backend.analysis import indexed_access, memref_root

from .loop_analysis import constant_int, is_inside, loop_bounds
from raster_mlir.ir_walk import block_ops, walk_ops
from .pass_dataclass import pass_dataclass
from raster_mlir.per_class import subclass_test

PARALLEL_ATTR = "raster.parallel"
REDUCTION_OPS = ("arith.addf", "arith.mulf", "arith.maximumf", "arith.minimumf")
MEMORY_OPS = ("memref.load", "memref.store", "vector.load", "vector.store", "vector.maskedload", "vector.maskedstore")
REFUSED_OPS = ("func.call", "memref.alloc", "memref.alloca", "memref.dealloc", "memref.copy", "scf.while")
DEFAULT_MIN_WORK = 1 << 20  # tens to a few hundred us of one core's work; a dispatch costs ~1-5 us
UNKNOWN_TRIP = 16  # trip count assumed for a loop with run-time bounds (skip-zero-chunks' chunk lists)
_IS_VECTOR = subclass_test(VectorType)  # (issubclass once per class of type: asked per operand)


def _positive_step_bounds(loop: scf.ForOp) -> tuple[int, int, int] | None:
    bounds = loop_bounds(loop)
    return bounds if bounds is not None and bounds[2] > 0 else None


def trip_count(loop: scf.ForOp) -> int | None:
    bounds = _positive_step_bounds(loop)
    if bounds is None:
        return None
    lb, ub, step = bounds
    return max(0, -(-(ub - lb) // step))


def _defining_op(value: SSAValue) -> Operation:
    return value.owner if isinstance(value, OpResult) else value.block.parent_op()  # (by the value's class: `isinstance(block, Operation)` walks every op class the first time a process asks, ~1 ms)


# -- (3) disjoint iterations --------------------------------------------------------------


class IndexRange(NamedTuple):  # immutable, compared by value; a fifth of a frozen dataclass's import cost
    """An index `coef * iv + e` with `lo <= e <= hi` over one iteration."""

    coef: int
    lo: int
    hi: int


def index_range(value: SSAValue, loop: scf.ForOp) -> IndexRange | None:
    """`value` as `coef * iv + e` over one iteration of `loop`, or None if it is not of that form
    (values from outside the loop count as unknown, unless they are constants)."""
    iv = loop.body.block.args[0]
    if value is iv:
        return IndexRange(1, 0, 0)
    c = constant_int(value)
    if c is not None:
        return IndexRange(0, c, c)
    if isinstance(value, BlockArgument):
        inner = value.block.parent_op()
        if isinstance(inner, scf.ForOp) and value.index == 0 and inner is not loop and is_inside(inner, loop):
            bounds = _positive_step_bounds(inner)
            if bounds is None:
                return None
            lb, ub, step = bounds
            last = lb if ub <= lb else lb + (ub - lb - 1) // step * step
            return IndexRange(0, lb, last)
        return None
    owner = value.owner
    if not is_inside(owner, loop):
        return None
    if owner.name in ("arith.addi", "arith.subi"):
        a, b = (index_range(v, loop) for v in owner.operands)
        if a is None or b is None:
            return None
        if owner.name == "arith.addi":
            return IndexRange(a.coef + b.coef, a.lo + b.lo, a.hi + b.hi)
        return IndexRange(a.coef - b.coef, a.lo - b.hi, a.hi - b.lo)
    if owner.name == "arith.muli":
        a, b = (index_range(v, loop) for v in owner.operands)
        if a is None or b is None:
            return None
        if b.coef == 0 and b.lo == b.hi:
            a, b = b, a
        if a.coef != 0 or a.lo != a.hi:
            return None  # a product of two varying indices
        k = a.lo
        lo, hi = sorted((b.lo * k, b.hi * k))
        return IndexRange(b.coef * k, lo, hi)
    return None


def _access_lanes(op: Operation) -> int:
    if op.name in ("vector.load", "vector.maskedload"):
        return op.results[0].type.get_shape()[-1]
    if op.name in ("vector.store", "vector.maskedstore"):
        return op.operands[0 if op.name == "vector.store" else -1].type.get_shape()[-1]
    return 1


def disjoint_iterations(loop: scf.ForOp, fn_name: str) -> bool:
    """(2) and (3) of the module docstring."""
    step = _positive_step_bounds(loop)[2]
    accesses: dict[object, list[tuple[tuple[SSAValue, ...], int]]] = {}
    written: set[object] = set()
    for op in walk_ops(loop):
        if op is loop:
            continue
        if op.name in REFUSED_OPS:
            return False
        access = indexed_access(op) if op.name in MEMORY_OPS else None
        if access is None:
            if any(isinstance(v.type, MemRefType) for v in op.operands):
                return False  # some other op touching a buffer
            continue
        buffer, indices, is_store = access
        root = memref_root(buffer, fn_name)
        accesses.setdefault(root, []).append((indices, _access_lanes(op)))
        if is_store:
            written.add(root)
    for root in written:
        if not any(_disjoint_in_dim(accesses[root], d, loop, step) for d in range(len(accesses[root][0][0]))):
            return False
    return True


def _disjoint_in_dim(accesses, d: int, loop: scf.ForOp, step: int) -> bool:
    coef, lo, hi = None, None, None
    for indices, lanes in accesses:
        r = index_range(indices[d], loop)
        if r is None or r.coef == 0 or (coef is not None and r.coef != coef):
            return False
        coef = r.coef
        top = r.hi + (lanes - 1 if d == len(indices) - 1 else 0)
        lo = r.lo if lo is None else min(lo, r.lo)
        hi = top if hi is None else max(hi, top)
    return coef is not None and hi - lo < abs(coef) * step


# -- (4) reductions -----------------------------------------------------------------------


def _chain_kind(value: SSAValue, end: Operation, position: int, kind: str | None) -> str | None:
    """The operation of the reduction chain from `value` to operand `position` of `end` (a yield)."""
    while True:
        uses = list(value.uses)
        if len(uses) != 1:
            return None
        user, index = uses[0].operation, uses[0].index
        if user is end:
            return kind if index == position else None
        if user.name in REDUCTION_OPS:
            if kind is not None and user.name != kind:
                return None
            kind = user.name
            value = user.results[0]
            continue
        if isinstance(user, scf.ForOp) and index >= 3:  # an init of an inner loop's iter_args
            j = index - 3
            body = user.body.block
            inner = _chain_kind(body.args[1 + j], body.last_op, j, kind)
            if inner is None and kind is None:
                # The inner loop passes the value through unchanged: no operation yet.
                if _passes_through(body, j):
                    value = user.results[j]
                    continue
                return None
            if inner is None:
                return None
            kind = inner
            value = user.results[j]
            continue
        return None


def _passes_through(body: Block, j: int) -> bool:
    arg = body.args[1 + j]
    uses = list(arg.uses)
    return len(uses) == 1 and uses[0].operation is body.last_op and uses[0].index == j


def reduction_kinds(loop: scf.ForOp) -> list[str] | None:
    body = loop.body.block
    kinds = []
    for k in range(len(loop.iter_args)):
        kind = _chain_kind(body.args[1 + k], body.last_op, k, None)
        if kind is None:
            return None
        kinds.append(kind)
    return kinds


# -- (5) work ----------------------------------------------------------------------------


# A transcendental op is one op in the IR but tens of arithmetic instructions per element once
# the backend expands it (backend/vmath/: range reduction, a polynomial, special cases).
TRANSCENDENTAL_WORK = {
    "math.exp": 20, "math.exp2": 20, "math.expm1": 25, "math.log": 30, "math.log1p": 35, "math.tanh": 30,
    "math.sin": 40, "math.cos": 40, "math.tan": 45, "math.atan2": 45, "math.erf": 60, "math.powf": 60,
}  # fmt: skip


def work_estimate(block: Block) -> int:
    # (ops told apart by name, types by class: isinstance against xDSL's ABC classes was most of the cost)
    total = 0
    for op in block_ops(block):
        name = op.name
        if name == "scf.for":
            trip = trip_count(op)
            total += (UNKNOWN_TRIP if trip is None else trip) * work_estimate(op.body.block)
        elif name == "scf.if":
            total += max([work_estimate(r.block) for r in op.regions if r.blocks] or [0])
        elif name in ("scf.yield", "arith.constant"):
            continue
        else:
            lanes = 1
            for value in op.results or op.operands:
                if _IS_VECTOR[type(value.type)]:
                    lanes = max(lanes, value.type.get_shape()[-1])
            total += lanes * TRANSCENDENTAL_WORK.get(name, 1)
    return total


def parallel_kinds(loop: scf.ForOp, fn_name: str, min_work: int) -> list[str] | None:
    """The reduction kinds if `loop` may run in parallel (module docstring), else None."""
    trip = trip_count(loop)
    if trip is None or trip < 2:
        return None
    kinds = reduction_kinds(loop)
    # (the work first: most loops are too small to share, and it costs less than the disjointness walk)
    if kinds is None or trip * work_estimate(loop.body.block) < min_work:
        return None
    if not disjoint_iterations(loop, fn_name):
        return None
    return kinds


@pass_dataclass
class ParallelizeLoopsPass(ModulePass):
    """Mark the outermost loops that may run on the thread pool (module docstring)."""

    name = "parallelize-loops"
    min_work: int = DEFAULT_MIN_WORK

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in op.ops:
            if isinstance(function, func.FuncOp) and function.body.blocks:
                self._mark(function.body.block, function.sym_name.data)

    def _mark(self, block: Block, fn_name: str) -> None:
        """Mark the outermost eligible loops of `block`, looking inside the loops that are not."""
        for loop in block_ops(block):
            name = loop.name  # (by name, as work_estimate)
            if name == "scf.if":
                for region in loop.regions:
                    for inner in region.blocks:
                        self._mark(inner, fn_name)
            if name != "scf.for" or PARALLEL_ATTR in loop.attributes:
                continue
            kinds = parallel_kinds(loop, fn_name, self.min_work)
            if kinds is not None:
                loop.attributes[PARALLEL_ATTR] = ArrayAttr([StringAttr(k) for k in kinds])
            else:
                self._mark(loop.body.block, fn_name)  # a sequential loop (a data loop over steps...)
