"""Loop fusion at the tensor level: a run of element-wise ops of one shape becomes one loop nest.

Part of `lower-to-loops` (lower_to_loops.py). Before, every element-wise op
became its own loop nest writing its own temporary buffer, and fuse-loops
merged the nests pair by pair, forwarded each store to the load after it and
deleted the dead buffers: a 100-step unrolled ODE built and took apart
hundreds of loops (most of both passes' time).

A run is a maximal sequence of consecutive ops of a block (fills and
constants in between do not end it) that
- have an element-wise recipe (`loop_recipes.elementwise`: a `scalar_fn`),
  one result, and the run's result shape (not 0-d: 0-d ops are scalar code);
- read only values lowered before the run or computed earlier in it.
A 0-d op that needs no loop (`BlockLowering._lower_scalar`, the loop index's
arithmetic) may sit between them: its code goes before the run's loop.

The run is emitted as one loop nest over its shape. Per iteration, each op
computes its element from SSA scalars: a value of the run is the scalar
computed by its op earlier in the same iteration; any other operand is
loaded (with numpy broadcasting, as the op's own loop would). A value is
stored only where it is needed: into its destination (a function result or
a loop carry), or into a temporary (`memref.alloc`) when an op outside the
run uses it. Values used only inside the run never get a buffer.

A nest holds about `max_ops` ops (like fuse-loops' `max-body-ops`: LLVM's
loop vectoriser takes time superlinear in a loop's size; the op that reaches
the bound and the stores of a cut come on top); a longer run is cut into
several nests, the values crossing a cut stored by the first one.

Why this is the same as the loops fuse-loops would have merged: every op of
the run reads, at iteration i, only element i of the run's values (they all
have the run's shape) and of the buffers the run writes (a destination has
the shape of its value; lower-to-loops sends a value into an input's buffer
only when nothing after its op reads that input, and the op itself reads it
only at the element it writes). So computing op after op per element is the
same as op after op per array.

Before (one loop per op; fuse-loops then merges them and deletes %t):
    %t = memref.alloc()
    scf.for %i { %a = memref.load %x[%i]; %e = math.exp %a; memref.store %e, %t[%i] }
    scf.for %j { %b = memref.load %t[%j]; %c = memref.load %y[%j]; %m = arith.mulf %b, %c
                 memref.store %m, %out0[%j] }
After:
    scf.for %i { %a = memref.load %x[%i]; %e = math.exp %a; %c = memref.load %y[%i]
                 %m = arith.mulf %e, %c; memref.store %m, %out0[%i] }

`FusionStats` counts what this did in the terms of fuse-loops' `raster.fusion`
attribute (lower-to-loops writes it, fuse-loops adds its own counts): loops
fused (ops that got no loop of their own) and temporaries removed (values of
a run that got no buffer), so the attribute still says what fusion saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, MemRefType, i64
from xdsl.ir import Operation, SSAValue

from raster_mlir.dialects import raster as R

from .forward_gathers import buffer_bytes
from .loop_builder import LoopBuilder
from .loop_recipes import Buffer, Storage, read

# The largest loop nest a run becomes (ops, the loops and everything nested included), and fuse-loops'
# default `max-body-ops`: LLVM's loop vectoriser takes time superlinear in a loop's size. The 100-step
# unrolled spring's value (705 element-wise ops, then two sums) in one nest of 1,000 ops at most took
# 0.42 s of CPU to compile, in nests of 600 at most 0.30 s (docs/compile-time.md).
MAX_OPS = 600

FUSION_ATTR = "raster.fusion"  # a function's fusion counts (fuse_loops.py)


@dataclass(eq=False, repr=False)
class FusionStats:
    """A function's fusion counts, kept as its `raster.fusion` attribute (lower-to-loops writes them,
    fuse-loops adds its own)."""

    loops_fused: int = 0
    temporaries_removed: int = 0
    bytes_removed: int = 0

    def __bool__(self) -> bool:
        return bool(self.loops_fused or self.temporaries_removed or self.bytes_removed)

    def as_attribute(self) -> DictionaryAttr:
        return DictionaryAttr({name: IntegerAttr(getattr(self, name), i64) for name in _COUNTS})

    @classmethod
    def of(cls, function: Operation) -> FusionStats:
        """The counts `function`'s `raster.fusion` attribute holds (zeros without one)."""
        attr = function.attributes.get(FUSION_ATTR)
        if not isinstance(attr, DictionaryAttr):
            return cls()
        counts = {key: value.value.data for key, value in attr.data.items() if isinstance(value, IntegerAttr)}
        return cls(**{name: counts.get(name, 0) for name in _COUNTS})


_COUNTS = ("loops_fused", "temporaries_removed", "bytes_removed")


def scalar_function(recipe, op: Operation) -> Callable[..., SSAValue] | None:
    """The per-element function of an element-wise recipe (`elementwise(fn)`), else None."""
    scalar_of = getattr(recipe, "scalar_fn_of", None)
    if scalar_of is not None:
        return scalar_of(op)
    return getattr(recipe, "scalar_fn", None)


class ElementwiseRun:
    """The run of element-wise ops being collected in one block, emitted by `flush` (module docstring)."""

    def __init__(
        self, b: LoopBuilder, storage: dict[SSAValue, Storage], stats: FusionStats, alloc_type, max_ops: int = MAX_OPS
    ):  # fmt: skip
        self.b = b
        self.storage = storage
        self.stats = stats
        self.alloc_type = alloc_type  # tensor type -> memref type (lower_to_loops.memref_of, cached)
        self.max_ops = max_ops
        self.ops: list[Operation] = []
        self.functions: list[Callable[..., SSAValue]] = []
        self.values: set[SSAValue] = set()  # results of the ops collected so far
        self.shape: tuple[int, ...] | None = None

    def uses_pending(self, op: Operation) -> bool:
        return any(operand in self.values for operand in op.operands)

    def accepts(self, op: Operation, shape: tuple[int, ...]) -> bool:
        """May element-wise `op` (one result of `shape`) join the run (start it if empty)?"""
        if self.ops and shape != self.shape:
            return False
        storage, values = self.storage, self.values
        return all(operand in values or operand in storage for operand in op.operands)

    def add(self, op: Operation, fn: Callable[..., SSAValue], shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.ops.append(op)
        self.functions.append(fn)
        self.values.add(op.results[0])

    def flush(self, destination: dict[SSAValue, SSAValue]) -> None:
        """Emit the collected ops as loop nests of at most `max_ops` ops each, then start a new run."""
        ops, functions = self.ops, self.functions
        if not ops:
            return
        members = set(ops)
        start = 0
        while start < len(ops):
            start = self._emit_nest(ops, functions, start, members, destination)
        self.ops, self.functions, self.values, self.shape = [], [], set(), None

    def _emit_nest(self, ops, functions, start: int, members: set, destination) -> int:
        """One loop nest computing ops[start:end]; returns end."""
        b, storage, shape = self.b, self.storage, self.shape
        assert shape is not None
        levels = sum(1 for d in shape if d != 1)  # (LoopBuilder builds no loop of one iteration)
        budget = self.max_ops - 2 * levels  # each loop level: the scf.for and its yield
        end = start

        def body(idx: Sequence[SSAValue]) -> None:
            nonlocal end
            scalars: dict[SSAValue, SSAValue] = {}
            first = b.ops_added
            for k in range(start, len(ops)):
                op = ops[k]
                args = [
                    scalars[operand] if operand in scalars else read(b, storage[operand], idx, shape)
                    for operand in op.operands
                ]
                value = functions[k](b, *args)
                result = op.results[0]
                scalars[result] = value
                if result in destination or any(use.operation not in members for use in result.uses):
                    self._store(result, value, idx, destination.get(result))
                end = k + 1
                if b.ops_added - first >= budget:
                    break
            # Values a later nest of the run reads cross the cut through a temporary.
            chunk = set(ops[start:end])
            for op in ops[start:end]:
                result = op.results[0]
                if result not in storage and any(use.operation not in chunk for use in result.uses):
                    self._store(result, scalars[result], idx, None)
            sizes: dict = {}  # bytes per result type (buffer_bytes costs a numpy call)
            for op in ops[start:end]:
                result = op.results[0]
                if result not in storage:  # kept as a scalar only
                    t = result.type
                    if t not in sizes:
                        sizes[t] = buffer_bytes(self.alloc_type(t))
                    self.stats.temporaries_removed += 1
                    self.stats.bytes_removed += sizes[t]

        b.nest(shape, body)
        self.stats.loops_fused += (end - start - 1) * levels  # (as fuse-loops counts: each level of a nest)
        return end

    def _store(self, result: SSAValue, value: SSAValue, idx, buffer: SSAValue | None) -> None:
        b = self.b
        memref_type: MemRefType = self.alloc_type(result.type)
        buffer = buffer if buffer is not None else b.alloc(memref_type)
        self.storage[result] = Buffer(buffer, R.shape_of(result.type))
        b.store(value, buffer, idx)
