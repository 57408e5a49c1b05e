"""Reductions fused with their producer loops: raster_mlir with and without, numpy and JAX jit, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_fuse_reductions.py [--quick] [--raster-threads N]
        [--only ROW] [--sizes 1000,1000000]

Rows (f64 and f32, 10^3 and 10^6 elements): the science function
sum(tanh(x) * exp(-x*x)) and its gradient, softmax, log-sum-exp, the 2-norm
of a difference, and the row sums of exp(a) * b (a 1000 x 1000 matrix, or
32 x 32 at 10^3); then programs the fusion was not designed for (the MLP's
loss gradient, a tanh RNN's gradient, an unrolled spring's value and
gradient), fused against unfused only. "fused" is the default pipeline, where a loop carrying a
sum or a max absorbs the loop producing what it reads (fuse-loops);
"unfused" the same pipeline with `fuse-loops{reductions=false}`. Times are
medians of interleaved rounds (bench/timing.py), microseconds per call;
"x numpy", "x jax" and "x unfused" are the peer's time over fused's (>1:
fused is faster; rows marked "same IR" compile to the same loops both
ways, so their "x unfused" shows the noise). "temp KB removed": bytes of
temporaries the reduction fusion removed. compile: rm.compile's time (trace, passes, LLVM, load) of
the fused variant with a private, empty object cache; first: its first call.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from timing import compare  # noqa: E402
from workloads.spring import unrolled_spring  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402
from raster_mlir.compiler import DEFAULT_PIPELINE  # noqa: E402

UNFUSED = DEFAULT_PIPELINE.replace("fuse-loops,", "fuse-loops{reductions=false},", 1)
DTYPES = {"f64": np.float64, "f32": np.float32}


def science(x):
    return rm.sum(rm.tanh(x) * rm.exp(-x * x))


def logsumexp(x):
    m = rm.max(x)
    return m + rm.log(rm.sum(rm.exp(x - m)))


def distance(x, y):
    d = x - y
    return rm.sqrt(rm.sum(d * d))


def row_sums(a, b):
    return rm.sum(rm.exp(a) * b, axis=1)


def cases(n: int, dtype):
    """name -> (raster function, numpy function, jax function or None, inputs)."""
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(n) * 2).astype(dtype), rng.standard_normal(n).astype(dtype)
    side = int(round(n**0.5))
    a, b = rng.standard_normal((side, side)).astype(dtype), rng.standard_normal((side, side)).astype(dtype)
    jx = jax_functions()

    def np_softmax(v):
        e = np.exp(v - v.max())
        return e / e.sum()

    def np_science_grad(v):
        t, e = np.tanh(v), np.exp(-v * v)
        return (1 - t * t) * e - 2 * v * t * e

    table = {
        "science value": (science, lambda v: np.sum(np.tanh(v) * np.exp(-v * v)), (x,)),
        "science grad": (rm.grad(science, argnums=0), np_science_grad, (x,)),
        "science v+g": (rm.value_and_grad(science, argnums=0), lambda v: (np.sum(np.tanh(v) * np.exp(-v * v)), np_science_grad(v)), (x,)),
        "softmax": (nn.softmax, np_softmax, (x,)),
        "logsumexp": (logsumexp, lambda v: v.max() + np.log(np.sum(np.exp(v - v.max()))), (x,)),
        "distance": (distance, lambda u, v: np.sqrt(np.sum((u - v) ** 2)), (x, y)),
        "row sums": (row_sums, lambda p, q: np.sum(np.exp(p) * q, axis=1), (a, b)),
    }
    return {k: (f, g, jx[k] if jx else None, args) for k, (f, g, args) in table.items()}


_JAX = {}


def jax_functions():
    if "fns" in _JAX:
        return _JAX["fns"]
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        _JAX["fns"] = None
        return None
    jax.config.update("jax_enable_x64", True)

    def jscience(v):
        return jnp.sum(jnp.tanh(v) * jnp.exp(-v * v))

    fns = {
        "science value": jscience,
        "science grad": jax.grad(jscience),
        "science v+g": jax.value_and_grad(jscience),
        "softmax": jax.nn.softmax,
        "logsumexp": jax.nn.logsumexp,
        "distance": lambda u, v: jnp.sqrt(jnp.sum((u - v) ** 2)),
        "row sums": lambda p, q: jnp.sum(jnp.exp(p) * q, axis=1),
    }
    _JAX["fns"] = {k: jax.jit(f) for k, f in fns.items()}
    _JAX["array"] = jnp.asarray
    return _JAX["fns"]


def _block(result):
    for part in result if isinstance(result, tuple) else (result,):
        part.block_until_ready()
    return result


def removed_bytes(compiled) -> int:
    """bytes_removed of the entry function's `raster.fusion` attribute after fuse-loops."""
    line = next(line for line in compiled.ir("after:fuse-loops").splitlines() if "raster.fusion" in line)
    return int(line.split("bytes_removed = ")[1].split(" ")[0])


def run_case(name, fn, reference, jfn, args, dtype, quick):
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RASTER_MLIR_CACHE_DIR"] = cache  # compile time of a cold cache
        start = time.perf_counter()
        fused = rm.compile(fn, *args)
        compiled = time.perf_counter() - start
        start = time.perf_counter()
        got = fused(*args)
        first = time.perf_counter() - start
        unfused = rm.compile(fn, *args, pipeline=UNFUSED)
        unfused(*args)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    want = reference(*args)
    for g in (got, unfused(*args)):
        for part, expected in zip(g if isinstance(g, tuple) else (g,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(np.asarray(part, np.float64), np.asarray(expected, np.float64), rtol=tol, atol=tol)
    size = args[0].size
    number = 200 if size <= 10_000 else 5
    rounds, number = (5, number // 4) if quick else (21, number)
    # Two interleaved comparisons: fused against unfused alone (an A/B with nothing between the two:
    # JAX's and numpy's threads, still spinning after their call, would slow whichever runs next),
    # then fused against numpy and JAX.
    ab = compare({"fused": lambda: fused(*args), "unfused": lambda: unfused(*args)}, rounds=rounds, number=number)
    peers = {"numpy": lambda: reference(*args), "fused": lambda: fused(*args)}
    if jfn is not None:
        jargs = [_JAX["array"](a) for a in args]
        peers["jax"] = lambda: _block(jfn(*jargs))
    versus = compare(peers, rounds=rounds, number=number)
    base = ab["fused"].median
    ratios = {"unfused": ab["unfused"].median / base}
    ratios.update({k: versus[k].median / versus["fused"].median for k in versus if k != "fused"})
    saved = removed_bytes(fused) - removed_bytes(unfused)  # temporaries the reduction fusion removed
    same_ir = fused.ir("after:parallelize-loops") == unfused.ir("after:parallelize-loops")
    return base, ratios, compiled, first, saved, same_ir


def mlp_loss(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)


def tanh_rnn_loss(W, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = rm.tanh(nn.dense(W, h, xs[t]))
    return rm.sum(h * h)


spring = unrolled_spring(20)


def program_rows(quick: bool) -> None:
    """Programs the fusion was not designed for: fused against unfused only (same process, interleaved)."""
    rng = np.random.default_rng(0)
    mlp = [rng.normal(0, 0.05, (128, 784)), np.zeros(128), rng.normal(0, 0.1, (10, 128)), np.zeros(10)]
    x, y = rng.random(784), np.eye(10)[3]
    W, xs, h0 = rng.normal(size=(32, 32)) * 0.2, rng.normal(size=(20, 32)), np.zeros(32)
    u, w = rng.normal(size=100_000), rng.normal(size=100_000)
    programs = {
        "mlp loss grad": (rm.grad(mlp_loss, argnums=(0, 1, 2, 3)), (*mlp, x, y)),
        "tanh rnn grad": (rm.grad(tanh_rnn_loss, argnums=0), (W, xs, h0)),
        "spring v+g 1e5": (rm.value_and_grad(spring, argnums=(0, 1)), (u, w)),
    }
    print(f"\n{'program':<16} {'fused us':>10} {'x unfused':>9}")
    for name, (fn, args) in programs.items():
        fused, unfused = rm.compile(fn, *args), rm.compile(fn, *args, pipeline=UNFUSED)
        results = compare(
            {"fused": lambda: fused(*args), "unfused": lambda: unfused(*args)},
            rounds=5 if quick else 21, number=20 if quick else 100,
        )  # fmt: skip
        same = fused.ir("after:parallelize-loops") == unfused.ir("after:parallelize-loops")
        base = results["fused"].median
        print(f"{name:<16} {base:10.1f} {results['unfused'].median / base:9.2f}{'  (same IR)' if same else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 10^3 and 10^5 elements")
    parser.add_argument("--raster-threads", type=int, default=None, help="pin raster_mlir's thread pool")
    parser.add_argument("--only", default="", help="rows whose name contains this text")
    parser.add_argument("--sizes", default="", help="comma-separated element counts (default 10^3,10^6; --quick 10^3,10^5)")
    options = parser.parse_args()
    if options.raster_threads:
        rm.set_num_threads(options.raster_threads)
    sizes = (1_000, 100_000) if options.quick else (1_000, 1_000_000)
    if options.sizes:
        sizes = tuple(int(float(n)) for n in options.sizes.split(","))
    print(f"raster_mlir threads: {options.raster_threads or 'default'}; numpy one thread; JAX default")
    header = (
        f"{'row':<14} {'dtype':<5} {'n':>8} {'fused us':>10} {'x unfused':>9} {'x numpy':>8} {'x jax':>7} "
        f"{'compile s':>9} {'first ms':>8} {'temp KB removed':>15}"
    )
    print(header)
    for n in sizes:
        for T, dtype in DTYPES.items():
            for name, (fn, reference, jfn, args) in cases(n, dtype).items():
                if options.only not in name:
                    continue
                base, ratios, compiled, first, saved, same_ir = run_case(name, fn, reference, jfn, args, dtype, options.quick)
                jr = f"{ratios['jax']:7.2f}" if "jax" in ratios else f"{'-':>7}"
                print(
                    f"{name:<14} {T:<5} {n:>8} {base:10.1f} {ratios['unfused']:9.2f} {ratios['numpy']:8.2f} {jr} "
                    f"{compiled:9.2f} {first * 1e3:8.2f} {saved / 1024:15.1f}{'  (same IR)' if same_ir else ''}",
                    flush=True,
                )
    if not options.only:
        program_rows(options.quick)


if __name__ == "__main__":
    main()
