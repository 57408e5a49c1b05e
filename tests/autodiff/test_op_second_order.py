"""Every differentiable op's reverse rule is itself differentiable, in both modes, exactly (f64).

For each case of test_op_gradients (every op, hypothesis-chosen shapes and
values away from kinks), with s(x) = <f(x), c> for a random weight c and a
random direction v:

- forward over reverse, jvp(grad s)(x; v), and reverse over reverse,
  grad_x <grad s(x), v>, are both H v (H is symmetric): they agree to
  rounding (rtol 1e-10), which they could not if a reverse rule emitted an op
  without a tangent or reverse rule, or one whose rule were wrong;
- H v against central differences of the gradient along v (rtol 1e-6).

All three are traced into one function run by the reference interpreter
after the tensor-level pipeline, as test_op_tangents does.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import profile_examples
from test_op_gradients import CASES, SIZES
from test_op_tangents import _draw_case

import raster_mlir as rm
from raster_mlir.compiler import TENSOR_PIPELINE


def _close(a, b, rtol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-300)
    err = np.max(np.abs(a - b), initial=0.0) / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.0e}"


def check_second_order(fn, arrays, rng, fd_rtol=1e-6, ad_rtol=1e-10):
    k = len(arrays)
    c = rng.standard_normal(np.shape(fn(*arrays)))
    vs = [rng.standard_normal(a.shape) for a in arrays]
    argnums = tuple(range(k))

    def scalar(*leaves):
        return rm.sum(fn(*leaves[:k]) * leaves[k])

    def both_ways(*leaves):
        xs, v, weight = leaves[:k], leaves[k : 2 * k], leaves[2 * k]
        forward_over_reverse = rm.hvp(scalar, (*xs, weight), v, argnums=argnums)

        def pairing(*args):  # <grad s(x), v>; v and the weight are arguments (traces capture nothing)
            g = rm.grad(scalar, argnums=argnums)(*args[: k + 1])
            return sum((rm.sum(gi * vi) for gi, vi in zip(g, args[k + 1 :])), start=0.0)

        reverse_over_reverse = rm.grad(pairing, argnums=argnums)(*xs, weight, *v)
        return forward_over_reverse, reverse_over_reverse, rm.grad(scalar, argnums=argnums)(*xs, weight)

    compiled = rm.compile(both_ways, *arrays, *vs, c, pipeline=TENSOR_PIPELINE)
    fwd_rev, rev_rev, _ = compiled.run_reference(*arrays, *vs, c)
    for a, b in zip(fwd_rev, rev_rev):
        _close(a, b, ad_rtol, "forward-over-reverse vs reverse-over-reverse")

    eps = 1e-6
    plus = compiled.run_reference(*[a + eps * v for a, v in zip(arrays, vs)], *vs, c)[2]
    minus = compiled.run_reference(*[a - eps * v for a, v in zip(arrays, vs)], *vs, c)[2]
    for hv, p, m in zip(fwd_rev, plus, minus):
        fd = (np.asarray(p) - np.asarray(m)) / (2 * eps)
        noise = 1e-7 * max(np.max(np.abs(p), initial=0.0), 1.0)
        assert np.max(np.abs(np.asarray(hv) - fd), initial=0.0) <= fd_rtol * max(np.max(np.abs(fd), initial=0.0), 1.0) + noise


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=profile_examples(7), deadline=None)
@given(data=st.data(), n=st.sampled_from(SIZES[:3]))
def test_reverse_rule_is_differentiable_f64(case, n, data):
    fn, arrays, rng = _draw_case(case, data, n)
    check_second_order(fn, arrays, rng)
