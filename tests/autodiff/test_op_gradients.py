"""Every differentiable raster op passes the random-direction gradient check in f64.

`rm.check_grads` compares <J t, c> from central finite differences with
<t, J^T c> from the compiled gradient (rtol 1e-6 in f64). Hypothesis picks
the shapes (the main size is each of 1, 3, 7, 129; the other dimensions
come from the same list) and a seed for the values. Values stay away from
kinks: relu / maximum / max inputs are never at 0 or tied, log / sqrt / pow
bases are positive, divisors are away from 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradient_cases_arrays
from helpers import profile_examples, slow_examples
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES

SIZES = [1, 3, 7, 129]
OTHER = st.sampled_from([1, 3, 7])  # second dimensions stay small so 129 does not square the cost


@dataclass(frozen=True)
class Case:
    name: str
    ops: tuple  # raster op classes the case exercises
    fn: Callable
    args: Callable  # (draw, n, rng) -> list of arrays


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def off_grid(rng, shape, offset):
    """k + offset for integers k: two such arrays with different offsets never tie, never hit 0."""
    return rng.integers(-3, 4, shape) + offset


def distinct(rng, shape):
    """Values far apart (no ties for max)."""
    size = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(size) * 0.25 + rng.uniform(0, 0.05, size)).reshape(shape)


def row_or_matrix(draw, n):
    return draw(st.sampled_from([(n,), (draw(OTHER), n)]))


def broadcast_pair(draw, n):
    m = draw(OTHER)
    return draw(st.sampled_from([((n,), (n,)), ((n,), ()), ((), (n,)), ((m, n), (n,)), ((m, 1), (1, n)), ((m, n), (m, 1)), ((n,), (m, n))]))


def unary(name, op, fn, values=normal):
    return Case(name, (op,), fn, lambda draw, n, rng: [values(rng, row_or_matrix(draw, n))])


def binary(name, op, fn, lhs=normal, rhs=normal):
    def args(draw, n, rng):
        a, b = broadcast_pair(draw, n)
        return [lhs(rng, a), rhs(rng, b)]

    return Case(name, (op,), fn, args)


def nonzero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)


def reduction_case(name, op, fn_of, values=normal):
    def args(draw, n, rng):
        shape = row_or_matrix(draw, n)
        axis = draw(st.sampled_from([None, *range(len(shape)), -1]))
        keepdims = draw(st.booleans())
        return [values(rng, shape), axis, keepdims]

    def fn(x, axis, keepdims):
        return fn_of(x, axis, keepdims)

    return Case(name, (op,), fn, args)


def matmul_args(draw, n, rng):
    k, m = n, draw(OTHER)
    a_shape, b_shape = draw(st.sampled_from([((m, k), (k, m)), ((m, k), (k,)), ((k,), (k, m)), ((k,), (k,))]))
    return [normal(rng, a_shape), normal(rng, b_shape)]


def dense_args(draw, n, rng):
    out, batch = draw(OTHER), draw(OTHER)
    x_shape = draw(st.sampled_from([(n,), (batch, n)]))
    return [normal(rng, (out, n)), normal(rng, x_shape), normal(rng, (out,))]


def probs_and_target(draw, n, rng):
    shape = row_or_matrix(draw, n)
    return [rng.uniform(0.1, 1.0, shape), rng.uniform(0.0, 1.0, shape)]


def logits_and_target(draw, n, rng):
    shape = row_or_matrix(draw, n)
    return [normal(rng, shape) * 3, rng.uniform(0.0, 1.0, shape)]


def sce_both_results_args(draw, n, rng):
    z, y = logits_and_target(draw, n, rng)
    return [z, y, normal(rng, z.shape)]


def sce_both_results(z, y, w):
    loss, s = nn.softmax_cross_entropy(z, y)
    return loss + rm.sum(s * w)


def transpose_args(draw, n, rng):
    shape = draw(st.sampled_from([(n,), (draw(OTHER), n), (draw(OTHER), n, draw(OTHER))]))
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return [normal(rng, shape), perm]


def reshape_args(draw, n, rng):
    m = draw(OTHER)
    src, dst = draw(st.sampled_from([((m, n), (n, m)), ((m, n), (m * n,)), ((n * m,), (n, m)), ((n,), (1, n, 1))]))
    return [normal(rng, src), dst]


def broadcast_to_args(draw, n, rng):
    m = draw(OTHER)
    src, dst = draw(st.sampled_from([((n,), (m, n)), ((m, 1), (m, n)), ((), (m, n)), ((1, n), (m, n))]))
    return [normal(rng, src), dst]


CASES = [
    unary("neg", R.NegOp, lambda x: -x),
    unary("exp", R.ExpOp, rm.exp),
    unary("log", R.LogOp, rm.log, positive),
    unary("tanh", R.TanhOp, rm.tanh),
    unary("sigmoid", R.SigmoidOp, rm.sigmoid),
    unary("sqrt", R.SqrtOp, rm.sqrt, positive),
    unary("relu", R.ReluOp, nn.relu, lambda rng, s: off_grid(rng, s, 0.5)),
    binary("add", R.AddOp, lambda a, b: a + b),
    binary("sub", R.SubOp, lambda a, b: a - b),
    binary("mul", R.MulOp, lambda a, b: a * b),
    binary("div", R.DivOp, lambda a, b: a / b, rhs=nonzero),
    binary("pow", R.PowOp, rm.power, lhs=positive, rhs=lambda rng, s: rng.uniform(-2.0, 2.0, s)),
    binary("maximum", R.MaximumOp, rm.maximum, lambda rng, s: off_grid(rng, s, 0.25), lambda rng, s: off_grid(rng, s, 0.75)),
    Case("dense", (R.DenseOp,), nn.dense, dense_args),
    unary("softmax", R.SoftmaxOp, nn.softmax),
    unary("log_softmax", R.LogSoftmaxOp, nn.log_softmax),
    Case("cross_entropy", (R.CrossEntropyOp,), nn.cross_entropy, probs_and_target),
    Case("softmax_cross_entropy", (R.SoftmaxCrossEntropyOp,), lambda z, y: nn.softmax_cross_entropy(z, y)[0], logits_and_target),
    Case("softmax_cross_entropy_both", (R.SoftmaxCrossEntropyOp,), sce_both_results, sce_both_results_args),
    reduction_case("sum", R.SumOp, lambda x, a, k: rm.sum(x, axis=a, keepdims=k)),
    reduction_case("mean", R.MeanOp, lambda x, a, k: rm.mean(x, axis=a, keepdims=k)),
    reduction_case("max", R.MaxOp, lambda x, a, k: rm.max(x, axis=a, keepdims=k), distinct),
    Case("matmul", (R.MatmulOp,), rm.matmul, matmul_args),
    Case("transpose", (R.TransposeOp,), lambda x, perm: rm.transpose(x, perm), transpose_args),
    Case("reshape", (R.ReshapeOp,), lambda x, shape: rm.reshape(x, shape), reshape_args),
    Case("broadcast_to", (R.BroadcastToOp,), lambda x, shape: rm.broadcast_to(x, shape), broadcast_to_args),
]  # fmt: skip
CASES += gradient_cases_arrays.cases(Case)


def run_case(case: Case, data, n: int, dtype=np.float64, rtol=None):
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    raw = case.args(data.draw, n, rng)
    arrays = [a for a in raw if isinstance(a, np.ndarray)]
    static = [a for a in raw if not isinstance(a, np.ndarray)]  # axis, keepdims, perm, shape

    def fn(*xs):
        return case.fn(*xs, *static)

    fn.__name__ = case.name
    arrays = [np.ascontiguousarray(a, dtype=dtype) for a in arrays]
    report = rm.check_grads(fn, *arrays, rtol=rtol, seed=seed % 1000)
    assert report.ok and len(report.checks) == 3 * len(arrays)
    return report


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=profile_examples(7), deadline=None)
@given(data=st.data())
def test_op_gradient_f64(case, n, data):
    run_case(case, data, n, np.float64, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=slow_examples(), deadline=None)
@given(data=st.data(), n=st.sampled_from(SIZES))
def test_op_gradient_f64_more_examples(case, n, data):
    run_case(case, data, n, np.float64, rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=profile_examples(7), deadline=None)
@given(data=st.data(), n=st.sampled_from([1, 3, 7]))
def test_op_gradient_f32(case, n, data):
    run_case(case, data, n, np.float32)


def test_every_differentiable_op_has_a_gradient_case():
    covered = {op for case in CASES for op in case.ops}
    differentiable = {op for op in R.RASTER_OPS if not DEFAULT_RULES.is_nondifferentiable(op)}
    assert differentiable - covered == set()
