"""Hessian-vector products of the 784 -> 128 -> 10 MLP loss, per sample, against JAX and PyTorch, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_hvp.py [--quick] [--dtype f64|f32|both]

Contenders, each called once per MNIST sample (cycling through the data),
with a fixed direction v for the four parameters:

- raster_mlir `rm.hvp(loss, (W1, b1, W2, b2, x, y), v, argnums=(0, 1, 2, 3))`:
  forward over reverse, one native function (the jvp of the generated
  gradient);
- raster_mlir `rm.grad(loss, argnums=(0, 1, 2, 3))`: our own gradient, the
  yardstick of the target (hvp <= 3x grad);
- JAX: `jax.jit` of `jax.jvp(grad(loss), (params,), (v,))[1]` (target: ours
  >= 5x faster per call);
- PyTorch: `torch.func.jvp(torch.func.grad(loss), ...)` (eager functorch).

Before timing, every contender's hvp is compared with the float64 result of
torch.func (normwise 1e-9 in f64, 1e-4 in f32); a contender that differs is
reported WRONG and not timed. Times are medians of interleaved rounds
(`bench/timing.py`) in microseconds per call; "first call" is the first
call's wall time (tracing and compiling included). The machine may be
shared: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import compare  # noqa: E402

from bench.workloads.model import Spec, init_params, load_data  # noqa: E402
import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402

TOLERANCE = {"f64": 1e-9, "f32": 1e-4}
N_SAMPLES = 256


def loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


class Cycle:
    """The next sample on every call, so no contender sees one input only."""

    def __init__(self, xs, ys):
        self.xs, self.ys, self.i = xs, ys, 0

    def __call__(self):
        self.i = (self.i + 1) % len(self.xs)
        return self.xs[self.i], self.ys[self.i]


def raster_contenders(params, v, xs, ys):
    gradient = rm.grad(loss, argnums=(0, 1, 2, 3))
    cycle_h, cycle_g = Cycle(xs, ys), Cycle(xs, ys)

    def hvp():
        x, y = cycle_h()
        return rm.hvp(loss, (*params, x, y), v, argnums=(0, 1, 2, 3))

    def grad():
        x, y = cycle_g()
        return gradient(*params, x, y)

    return {"raster_mlir hvp": hvp, "raster_mlir grad": grad}


def jax_contender(params, v, xs, ys):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def jloss(p, x, y):
        W1, b1, W2, b2 = p
        z = W2 @ jax.nn.relu(W1 @ x + b1) + b2
        return -jnp.sum(y * jax.nn.log_softmax(z))

    @jax.jit
    def hvp(p, t, x, y):
        return jax.jvp(lambda q: jax.grad(jloss)(q, x, y), (p,), (t,))[1]

    P, V = tuple(jnp.asarray(a) for a in params), tuple(jnp.asarray(a) for a in v)
    X, Y = jnp.asarray(xs), jnp.asarray(ys)
    cycle = Cycle(list(X), list(Y))

    def call():
        x, y = cycle()
        return jax.block_until_ready(hvp(P, V, x, y))

    return {"JAX jit hvp": call}


def torch_contender(params, v, xs, ys):
    import torch

    tf = torch.func
    P = tuple(torch.tensor(a) for a in params)
    V = tuple(torch.tensor(a) for a in v)
    cycle = Cycle([torch.tensor(x) for x in xs], [torch.tensor(y) for y in ys])

    def tloss(W1, b1, W2, b2, x, y):
        z = W2 @ torch.relu(W1 @ x + b1) + b2
        return -torch.sum(y * torch.log_softmax(z, -1))

    def call():
        x, y = cycle()
        with torch.no_grad():
            return tf.jvp(lambda *q: tf.grad(tloss, (0, 1, 2, 3))(*q, x, y), P, V)[1]

    return {"torch.func hvp": call}


def reference_hvp(params, v, x, y):
    """float64 torch.func hvp at one sample."""
    import torch

    tf = torch.func
    P = tuple(torch.tensor(np.asarray(a, np.float64)) for a in params)
    V = tuple(torch.tensor(np.asarray(a, np.float64)) for a in v)
    X, Y = torch.tensor(np.asarray(x, np.float64)), torch.tensor(np.asarray(y, np.float64))

    def tloss(W1, b1, W2, b2):
        z = W2 @ torch.relu(W1 @ X + b1) + b2
        return -torch.sum(Y * torch.log_softmax(z, -1))

    return [t.numpy() for t in tf.jvp(tf.grad(tloss, (0, 1, 2, 3)), P, V)[1]]


def normwise_error(got, expected) -> float:
    num = np.sqrt(sum(float(np.sum((np.asarray(g, np.float64) - e) ** 2)) for g, e in zip(got, expected)))
    den = np.sqrt(sum(float(np.sum(e**2)) for e in expected))
    return num / den


def run(dtype: str, quick: bool) -> None:
    spec = Spec((784, 128, 10), dtype)
    params = init_params(spec)
    data = load_data(N_SAMPLES)
    xs = [np.ascontiguousarray(x, dtype=spec.np_dtype) for x in data.x]
    ys = [np.ascontiguousarray(y, dtype=spec.np_dtype) for y in data.y]
    rng = np.random.default_rng(1)
    v = tuple(rng.standard_normal(p.shape).astype(spec.np_dtype) for p in params)
    contenders = raster_contenders(params, v, xs, ys)
    for make in (jax_contender, torch_contender):
        try:
            contenders.update(make(params, v, xs, ys))
        except ImportError as error:
            print(f"  ({make.__name__.split('_')[0]} unavailable: {error})")

    print(f"\n{dtype}, per-sample hvp of the 784-128-10 MLP loss ({data.source})")
    first_call, wrong = {}, []
    expected = reference_hvp(params, v, xs[1], ys[1])
    for name, fn in contenders.items():
        start = time.perf_counter()
        result = fn()  # sample 1 (every Cycle starts at 0 and advances first)
        first_call[name] = time.perf_counter() - start
        if "hvp" in name:
            err = normwise_error([np.asarray(r) for r in result], expected)
            if not err <= TOLERANCE[dtype]:
                wrong.append(name)
                print(f"  {name}: WRONG (normwise error {err:.2e} against torch.func float64); not timed")
    timed = {name: fn for name, fn in contenders.items() if name not in wrong}
    rounds, number = (5, 50) if quick else (30, 200)
    results = compare(timed, rounds=rounds, number=number)
    ours = results["raster_mlir hvp"].median
    grad = results["raster_mlir grad"].median
    width = max(map(len, results))
    print(f"  {'':{width}}  {'median':>10}  {'min - max':>19}  {'first call':>10}  {'x ours':>7}")
    for name, s in results.items():
        print(f"  {name:{width}}  {s.median:7.2f} us  {s.low:8.2f} - {s.high:8.2f}  {first_call[name]:8.3f} s  {s.median / ours:7.2f}")
    if "JAX jit hvp" in results:
        speedup = results["JAX jit hvp"].median / ours
        print(f"  raster_mlir hvp is {speedup:.2f}x faster than JAX jit per call (target >= 5x)")
    print(f"  raster_mlir hvp takes {ours / grad:.2f}x our gradient's time (target <= 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--dtype", choices=["f64", "f32", "both"], default="both")
    args = parser.parse_args()
    for dtype in ("f64", "f32") if args.dtype == "both" else (args.dtype,):
        run(dtype, args.quick)


if __name__ == "__main__":
    main()
