"""Every differentiable raster op's tangent rule, in random directions on hypothesis-chosen shapes.

The cases (ops, shapes, values away from kinks) are those of
test_op_gradients. For each, with random tangents v (one per argument) and
a random output weight w:

- forward mode against finite differences: <J v, w> from the central
  difference of f along v (rtol 1e-6 in f64) against <jvp(f)(x; v), w>;
- forward against reverse mode: <jvp(f)(x; v), w> == <v, vjp(f)(x; w)>,
  both from the AD passes, equal to rounding (rtol 1e-10 in f64).

Both derivatives are traced into one function and run by the reference
interpreter after the tensor-level pipeline (no LLVM: these tests are about
the rules; test_vs_torch runs native code).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import profile_examples
from test_op_gradients import CASES, SIZES

import raster_mlir as rm
from raster_mlir.compiler import TENSOR_PIPELINE
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES


def _dot(a, b) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def _draw_case(case, data, n):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    raw = case.args(data.draw, n, rng)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in raw if isinstance(a, np.ndarray)]
    static = [a for a in raw if not isinstance(a, np.ndarray)]  # axis, keepdims, perm, shape

    def fn(*xs):
        return case.fn(*xs, *static)

    return fn, arrays, rng


def check_tangents(fn, arrays, rng, fd_rtol=1e-6, ad_rtol=1e-10):
    k = len(arrays)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    w = rng.standard_normal(np.shape(fn(*arrays)))

    def forward_and_reverse(*leaves):
        xs, vs, weight = leaves[:k], leaves[k : 2 * k], leaves[2 * k]
        _, tangent_out = rm.jvp(fn, xs, vs)
        _, vjp_fn = rm.vjp(fn, *xs)
        return tangent_out, vjp_fn(weight)

    compiled = rm.compile(forward_and_reverse, *arrays, *tangents, w, pipeline=TENSOR_PIPELINE)
    tangent_out, cotangents = compiled.run_reference(*arrays, *tangents, w)
    forward = _dot(tangent_out, w)
    reverse = sum(_dot(v, c) for v, c in zip(tangents, cotangents))
    assert abs(forward - reverse) <= ad_rtol * max(abs(forward), abs(reverse), 1.0), (forward, reverse)

    eps = 1e-6
    plus = fn(*[a + eps * v for a, v in zip(arrays, tangents)])
    minus = fn(*[a - eps * v for a, v in zip(arrays, tangents)])
    fd = (_dot(plus, w) - _dot(minus, w)) / (2 * eps)
    noise = 64 * np.finfo(np.float64).eps * max(np.max(np.abs(plus)), np.max(np.abs(minus)), 1.0) / eps * np.sum(np.abs(w))
    assert abs(fd - forward) <= fd_rtol * max(abs(fd), abs(forward)) + noise, (fd, forward)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=profile_examples(4), deadline=None)
@given(data=st.data(), n=st.sampled_from(SIZES))
def test_op_tangent_f64(case, n, data):
    fn, arrays, rng = _draw_case(case, data, n)
    check_tangents(fn, arrays, rng)


def test_every_differentiable_op_has_a_tangent_case():
    covered = {op for case in CASES for op in case.ops}
    differentiable = {op for op in R.RASTER_OPS if not DEFAULT_RULES.is_nondifferentiable(op)}
    assert differentiable - covered == set()
    assert all(DEFAULT_RULES.tangent_rule_for(op) is not None for op in differentiable)
