"""Stencils written with slices, as users trace them, fuse into one loop nest at the loop level.

The filecheck test tests/filecheck/fuse_loops/stencil.mlir pins the loop of
the 1-D heat step on hand-written IR; these check the same property on what
the tracer builds (its slices, constants and operand order), in 1-D and 2-D
and with a boundary condition written as a concatenation, and that the
fused code computes numpy's numbers.
"""

from __future__ import annotations

import numpy as np

import raster_mlir as rm


def heat_step(u, c):
    return u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])


def laplace_2d_step(u, c):
    return u[1:-1, 1:-1] + c * (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1])


def heat_step_with_boundaries(u, c):
    return rm.concatenate([u[:1] * 0.0, heat_step(u, c), u[-1:]])


def _fused(fn, *args):
    compiled = rm.compile(fn, *args)
    np.testing.assert_allclose(compiled(*args), fn(*args), rtol=1e-13)
    return compiled.ir("after:fuse-loops")


def test_traced_heat_step_is_one_loop():
    loops = _fused(heat_step, np.random.default_rng(0).random(1000), np.asarray(0.2))
    assert loops.count("scf.for") == 1 and "memref.alloc" not in loops, loops


def test_traced_2d_laplacian_step_is_one_loop_nest():
    loops = _fused(laplace_2d_step, np.random.default_rng(1).random((33, 40)), np.asarray(0.1))
    assert loops.count("scf.for") == 2 and "memref.alloc" not in loops, loops


def test_boundary_condition_by_concatenation_computes_the_interior_in_place():
    loops = _fused(heat_step_with_boundaries, np.random.default_rng(2).random(129), np.asarray(0.2))
    assert loops.count("scf.for") == 1 and "memref.alloc" not in loops, loops
