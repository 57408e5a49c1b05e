"""The work of the loop passes grows linearly with the size of the program.

Work is counted deterministically, never timed: `loop_analysis.WORK.ops_visited`
counts the ops the access analyses walk. Programs of about 10, 100 and 1,000
traced ops are lowered to loops; the pass's work per lowered op at 1,000 may
exceed the work per op at 10 and 100 by a small factor only (a quadratic pass
grows by 10x per step; the old pair-by-pair fuse-loops did).
"""

from __future__ import annotations

import pytest
from xdsl.dialects import scf
from xdsl.dialects.builtin import ModuleOp, TensorType, f64

import raster_mlir as rm
from helpers import unrolled_spring as spring
from raster_mlir.compiler import TENSOR_PIPELINE, StagedPipeline, make_context
from raster_mlir.frontend.tracer import ModuleTrace
from raster_mlir.passes.fuse_loops import FuseLoopsPass
from raster_mlir.passes.loop_analysis import WORK

SIZES = (10, 100, 1000)  # traced ops, about
GROWTH_ALLOWANCE = 1.5  # work per op may grow by this factor from 10 to 1,000 ops


def renormalised(steps: int):
    """3 ops per step; the reduction in each step stops every fusion across steps."""

    def f(x):
        for _ in range(steps):
            x = x * (1.0 / rm.sum(x * x))
        return rm.sum(x)

    return f


def two_sizes(steps: int):
    """Two chains over vectors of different lengths, interleaved: loops of two bounds."""

    def f(x, y):
        for _ in range(steps):
            x = rm.tanh(x) * 0.5
            y = rm.exp(-y) + 0.5
        return rm.sum(x) + rm.sum(y)

    return f


PROGRAMS = {
    # name: (program builder, ops per step, argument shapes, differentiate)
    "spring": (spring, 6, [(64,), (64,)], False),
    "spring-grad": (spring, 6, [(64,), (64,)], True),
    "renormalised": (renormalised, 3, [(64,)], False),
    "two-sizes": (two_sizes, 4, [(64,), (48,)], False),
}


# One loop nest per element-wise op, as fuse-loops must handle them (ops that are not consecutive, or
# a pipeline that asks for it); by default lower-to-loops makes one nest per run (elementwise_clusters.py).
ONE_NEST_PER_OP = "lower-to-loops{fuse-elementwise=false}"


def lowered(fn, shapes, differentiate: bool, lowering: str = ONE_NEST_PER_OP) -> ModuleOp:
    trace = ModuleTrace()
    target = rm.grad(fn) if differentiate else fn
    trace.trace_function(target, "f", [TensorType(f64, s) for s in shapes])
    StagedPipeline(f"{TENSOR_PIPELINE},{lowering}").run(trace.module)
    return trace.module


def fuse_work(
    name: str, size: int, lowering: str = ONE_NEST_PER_OP, fusion: FuseLoopsPass = FuseLoopsPass()
) -> tuple[float, ModuleOp, int]:
    """(ops walked by fuse-loops per op of the lowered module, the fused module, ops before fusion)."""
    builder, per_step, shapes, differentiate = PROGRAMS[name]
    module = lowered(builder(max(1, size // per_step)), shapes, differentiate, lowering)
    n_ops = sum(1 for _ in module.walk())
    WORK.ops_visited = 0
    fusion.apply(make_context(), module)
    return WORK.ops_visited / n_ops, module, n_ops


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_fuse_loops_work_grows_linearly(name):
    per_op = {}
    for size in SIZES:
        per_op[size], module, n_ops = fuse_work(name, size)
        if name == "spring":
            # The linear pass still fuses the whole chain: loops of at most max-body-ops ops
            # (LLVM's vectoriser is superlinear in a loop's size), then the final sum(x*x) + sum(v*v)
            # (at most 3 loops: two reductions and their 0-d addition).
            loops = [op for op in module.walk() if isinstance(op, scf.ForOp)]
            assert len(loops) <= 4 + n_ops // FuseLoopsPass().max_body_ops, (size, len(loops), n_ops)
    assert per_op[1000] <= GROWTH_ALLOWANCE * min(per_op[10], per_op[100]), per_op


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_fuse_loops_work_after_runs_of_element_wise_ops_grows_linearly(name):
    """The same after lower-to-loops' runs (one nest per run of element-wise ops, at most `max-loop-ops`).

    Nests of at most 100 ops, so that programs of 100 and 1,000 ops both make several (a program
    that fits one nest has nothing left to fuse, and its work per op is smaller still).
    """
    per_op = {}
    for size in SIZES[1:]:
        lowering, fusion = "lower-to-loops{max-loop-ops=100}", FuseLoopsPass(max_body_ops=100)
        per_op[size], module, n_ops = fuse_work(name, size, lowering, fusion)
        if name == "spring":  # (the chain in nests of at most 100 ops, then the final sums)
            loops = [op for op in module.walk() if isinstance(op, scf.ForOp)]
            assert len(loops) <= 4 + 2 * n_ops // fusion.max_body_ops, (size, len(loops), n_ops)
    assert per_op[1000] <= GROWTH_ALLOWANCE * per_op[100], per_op
