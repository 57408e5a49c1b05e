"""A tanh RNN through `rm.scan`: value and gradient with respect to the weights, against JAX, in one run.

    python bench/bench_rnn_scan.py [--quick] [--steps 100,1000] [--hidden 32]

The workload (a program the loop work was not designed around: a matrix-vector product per step,
the ys stacked and used by the loss):

    h_t = tanh(W @ h_{t-1} + x_t);  loss = sum(ys ** 2) + sum(h_T ** 2),  ys_t = sum(h_t)

Contenders: raster_mlir (`rm.scan` under `rm.jit`, `rm.grad` w.r.t. W) and JAX (`jax.jit` of
`lax.scan`, `jax.grad`; XLA's own thread pool). Per call: median over interleaved rounds, the fastest
round in parentheses, in us; "x raster_mlir": the ratio to raster_mlir in the same run. Results are
checked against each other (float64) before timing.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from bench_loops import available, per_call  # noqa: E402


def data(hidden, steps):
    rng = np.random.default_rng(0)
    return rng.standard_normal((hidden, hidden)) * 0.2, rng.standard_normal((steps, hidden)), np.zeros(hidden)


def raster_mlir_fns():
    import raster_mlir as rm

    def loss(W, xs, h0):
        def cell(h, x):
            h = rm.tanh(W @ h + x)
            return h, rm.sum(h)

        h, ys = rm.scan(cell, h0, xs)
        return rm.sum(ys * ys) + rm.sum(h * h)

    return rm.jit(loss), rm.grad(loss, argnums=0)


def jax_fns():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss(W, xs, h0):
        def cell(h, x):
            h = jnp.tanh(W @ h + x)
            return h, jnp.sum(h)

        h, ys = jax.lax.scan(cell, h0, xs)
        return jnp.sum(ys * ys) + jnp.sum(h * h)

    value, grad = jax.jit(loss), jax.jit(jax.grad(loss))
    return (lambda *a: value(*a).block_until_ready()), (lambda *a: grad(*a).block_until_ready())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds")
    parser.add_argument("--steps", default="100,1000", help="comma-separated sequence lengths")
    parser.add_argument("--hidden", type=int, default=32)
    args = parser.parse_args()
    rounds, budget = (5, 0.01) if args.quick else (21, 0.03)
    contenders = {"raster_mlir": raster_mlir_fns()}
    if available("jax fori_loop"):
        contenders["jax scan"] = jax_fns()
    print(f"tanh RNN, {args.hidden} units, float64; per call: median (fastest) of {rounds} interleaved rounds, us")
    for steps in [int(s) for s in args.steps.split(",")]:
        a = data(args.hidden, steps)
        want_v, want_g = contenders["raster_mlir"][0](*a), np.asarray(contenders["raster_mlir"][1](*a))
        for name, (value, grad) in contenders.items():
            v, g = float(value(*a)), np.asarray(grad(*a))
            assert abs(v - want_v) <= 1e-9 * abs(want_v) and np.allclose(g, want_g, rtol=1e-9, atol=1e-9), name
        values = per_call({n: (lambda f=f: f[0](*a)) for n, f in contenders.items()}, rounds, budget)
        grads = per_call({n: (lambda f=f: f[1](*a)) for n, f in contenders.items()}, rounds, budget)
        print(f"\nT = {steps}")
        print(f"{'':14} {'value':>28} {'grad':>28} {'grad/value':>10}")
        base_v, base_g = values["raster_mlir"].median, grads["raster_mlir"].median
        for name in contenders:
            v, g = values[name], grads[name]
            print(
                f"{name:14} {v.median:9.1f} ({v.low:8.1f}) x{v.median / base_v:5.1f}"
                f" {g.median:9.1f} ({g.low:8.1f}) x{g.median / base_g:5.1f} {g.median / v.median:10.2f}"
            )


if __name__ == "__main__":
    main()
