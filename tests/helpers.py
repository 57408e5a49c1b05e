"""Helpers shared by several test files (imported as `helpers`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import settings

from xdsl.dialects import func
from xdsl.dialects.builtin import FloatAttr, TensorType, f32, f64
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

import raster_mlir as rm
from bench.timing import count_calls  # noqa: F401  (the tests' work measure, shared with the benchmarks)
from bench.workloads.spring import unrolled_spring  # noqa: F401  (issue 13's unrolled ODE, shared with the benchmarks)
from raster_mlir import nn
from raster_mlir.dialects import raster as R


def slow_examples() -> int:
    """max_examples for a @pytest.mark.slow property test (each example compiles a train step or a loop):
    a third of the profile's, 5 in "ci", 100 in "dev"."""
    return profile_examples(3)


def profile_examples(divisor: int) -> int:
    """max_examples for a property test parametrised over many cases: the profile's share.

    The hypothesis profile (tests/conftest.py) still scales every test: 15 // divisor
    examples per case in "ci", 300 // divisor in "dev".
    """
    return max(2, settings.default.max_examples // divisor)


def marker_line(path: str, marker: str) -> int:
    """The line number of the one line of `path` that ends with the comment `# <marker>`."""
    with open(path) as f:
        hits = [i + 1 for i, line in enumerate(f) if line.rstrip().endswith(f"# <{marker}>")]
    assert len(hits) == 1, f"marker {marker} found {len(hits)} times"
    return hits[0]


@dataclass(frozen=True)
class InsertBadFill(ModulePass):
    """Inserts `raster.fill 1.0 : f32 : tensor<f64>`, which the fill verifier refuses."""

    name = "insert-bad-fill"

    def apply(self, ctx, op):
        f = next(o for o in op.ops if isinstance(o, func.FuncOp))
        bad = R.FillOp.create(properties={"value": FloatAttr(1.0, f32)}, result_types=[TensorType(f64, [])])
        Rewriter.insert_op(bad, InsertPoint.at_start(f.body.block))


def mlp_loss(W1, b1, W2, b2, x, y):
    """The seed's MLP and its loss: cross_entropy(softmax(W2 relu(W1 x + b1) + b2), y)."""
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def mlp_params(rng, n_in: int, hidden: int, n_out: int, scale: float = 0.3) -> list:
    """W1, b1, W2, b2 of `mlp_loss`: normal weights (std `scale`) and biases (std 0.1)."""
    return [
        rng.normal(0, scale, (hidden, n_in)),
        rng.normal(0, 0.1, hidden),
        rng.normal(0, scale, (n_out, hidden)),
        rng.normal(0, 0.1, n_out),
    ]


def tanh_rnn_loss(W, xs, h0):
    """A tanh RNN through rm.scan, its stacked outputs used by the loss (loop tests and the jam test)."""

    def cell(h, x):
        h = rm.tanh(W @ h + x)
        return h, rm.sum(h)

    h, ys = rm.scan(cell, h0, xs)
    return rm.sum(ys * ys) + rm.sum(h * h)




def damped_spring(n: int):
    """The damped spring as an rm.fori_loop of n steps: f(k, x0, v0) = sum(x_n ** 2) (time-loop tests)."""

    def f(k, x0, v0):
        def step(i, state):
            x, v = state
            a = -k * x - 0.1 * v
            v = v + 0.01 * a
            return x + 0.01 * v, v

        x, _ = rm.fori_loop(0, n, step, (x0, v0))
        return rm.sum(x * x)

    return f


def damped_spring_reference(k, x0, v0, n: int):
    """(value, d value / d k) of `damped_spring(n)` in numpy, the gradient by a hand-written reverse loop."""
    xs, x, v = [], x0, v0
    for _ in range(n):
        xs.append(x)
        a = -k * x - 0.1 * v
        v = v + 0.01 * a
        x = x + 0.01 * v
    gx, gv, gk = 2 * x, np.zeros_like(x), np.zeros_like(x)
    for s in range(n - 1, -1, -1):
        # x' = x + 0.01 v'; v' = v + 0.01 a; a = -k x - 0.1 v
        gv_new = gv + 0.01 * gx
        ga = 0.01 * gv_new
        gk += -xs[s] * ga
        gx, gv = gx - k * ga, gv_new - 0.1 * ga
    return float(np.sum(x * x)), gk
