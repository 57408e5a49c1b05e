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


def periodic_step(u):
    return u + 0.1 * (np.roll(u, 1) - 2 * u + np.roll(u, -1))


def periodic_2d_step(u):
    return u + 0.1 * (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1) - 4 * u)


def edge_padded_step(u):
    p = np.pad(u, 1, mode="edge")
    return u + 0.1 * (p[2:] - 2 * p[1:-1] + p[:-2])


def test_periodic_stencil_with_roll_is_one_loop():
    # The concatenations of np.roll choose their piece in one loop over the result, and the
    # slices they join are read through (forward_gathers.py): no copy of u remains.
    loops = _fused(periodic_step, np.random.default_rng(3).random(257))
    assert loops.count("scf.for") == 1 and "memref.alloc" not in loops, loops


def test_roll_and_pad_stencils_match_numpy_and_their_gradients_check():
    rng = np.random.default_rng(4)
    for fn, u in [(periodic_2d_step, rng.random((7, 9))), (edge_padded_step, rng.random(129)),
                  (periodic_step, rng.random(3).astype(np.float32))]:  # fmt: skip
        compiled = rm.compile(fn, u)
        tol = 1e-5 if u.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(compiled(u), fn(u), rtol=tol)
        np.testing.assert_allclose(compiled.run_reference(u), fn(u), rtol=tol)
        if u.dtype == np.float64:
            assert rm.check_grads(lambda u, fn=fn: rm.sum(fn(u) ** 2), u).ok
