"""Time loops (rm.fori_loop / scan / while) are not unrolled by LLVM.

Each step depends on the one before, so unrolling gains little at run time, while
fully unrolling a short loop of a vectorised body multiplied LLVM's optimisation
and code-generation time (llvm_emit.loop_metadata)."""

from __future__ import annotations

import numpy as np

import raster_mlir as rm

from helpers import damped_spring, damped_spring_reference


def _vector_multiplies(llvm_ir: str) -> int:
    return sum(1 for line in llvm_ir.splitlines() if " fmul " in line and "x double>" in line)


def test_a_time_loop_keeps_one_body_whatever_its_trip_count():
    args = (np.full(64, 1.5), np.linspace(-1.0, 1.0, 64), np.zeros(64))
    short, long = (rm.compile(damped_spring(n), *args) for n in (4, 12))
    assert '!"llvm.loop.unroll.disable"' in short.llvm_ir
    assert _vector_multiplies(short.llvm_ir_optimized) == _vector_multiplies(long.llvm_ir_optimized) > 0
    np.testing.assert_allclose(long(*args), damped_spring_reference(*args, 12)[0], rtol=1e-13)


def test_loops_without_a_time_loop_may_be_unrolled():
    x = np.arange(1.0, 9.0)
    c = rm.compile(lambda x: rm.sum(x * 2.0 + 1.0), x)
    assert "llvm.loop.unroll.disable" not in c.llvm_ir
