"""Transcendental functions: raster_mlir against numpy, JAX (jit) and PyTorch, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_transcendental.py [--quick] [--threads N]
        [--raster-threads N]

Rows (f64 and f32, 10^3 and 10^6 elements): exp, log, tanh, sigmoid and
softmax of a vector; the science function sum(tanh(x) * exp(-x*x)) and its
gradient; then Adam on the seed's MNIST MLP (`raster-mlir train --optimizer
adam`): the time per step in the first and in the last epoch, with
flush-to-zero on (the default) and off. Every contender returns a fresh
array (numpy's ufunc without `out=`, jax.jit on a device array with
block_until_ready, torch on a tensor sharing the numpy buffer). Times are
medians of interleaved rounds (bench/timing.py) in microseconds per call;
"x numpy" and "x jax" are the contender's time over raster_mlir's (>1:
raster_mlir is faster). The compile column is raster_mlir's first call
(trace, passes, LLVM, load), taken with a private, empty object cache.

Threads: every contender runs in its default configuration, which the header
prints: raster_mlir on its thread pool (one thread per core; loops of
enough work, where a transcendental counts as 20-60 element operations, run
on all of them: `parallelize-loops`), JAX/XLA and PyTorch on their own
pools, numpy on one thread (its ufuncs have no other mode).
`--raster-threads 1` pins raster_mlir to one thread, `--threads N` PyTorch.
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

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402

DTYPES = {"f64": np.float64, "f32": np.float32}
# Pause before each round of a 10^6 row (timing.compare's `settle`). After each call PyTorch's OpenMP
# workers keep spinning: measured here, 4.2 ms of CPU in the 20 ms after one torch.exp of 10^6
# (raster_mlir's and XLA's pools: below the 10 ms clock tick). Rounds follow each other, so the
# round after torch's ran raster_mlir's 2-thread loops with the second core taken: the 10^6 rows
# swung up to 1.7x between runs. 20 ms lets the spinning stop before the round starts.
SETTLE_SECONDS = 0.02


def science(x):
    return rm.sum(rm.tanh(x) * rm.exp(-x * x))


def numpy_science_grad(x):
    t, e = np.tanh(x), np.exp(-x * x)
    return (1 - t * t) * e - 2 * x * t * e


def numpy_softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def raster_functions():
    return {
        "exp": rm.jit(lambda x: rm.exp(x)),
        "log": rm.jit(lambda x: rm.log(x)),
        "tanh": rm.jit(lambda x: rm.tanh(x)),
        "sigmoid": rm.jit(lambda x: nn.sigmoid(x)),
        "softmax": rm.jit(lambda x: nn.softmax(x)),
        "science value": rm.jit(science),
        "science grad": rm.jit(lambda x: rm.grad(science, argnums=0)(x)),
    }


NUMPY = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softmax": numpy_softmax,
    "science value": lambda x: np.sum(np.tanh(x) * np.exp(-x * x)),
    "science grad": numpy_science_grad,
}


def jax_functions():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def jscience(x):
        return jnp.sum(jnp.tanh(x) * jnp.exp(-x * x))

    fns = {
        "exp": jnp.exp,
        "log": jnp.log,
        "tanh": jnp.tanh,
        "sigmoid": jax.nn.sigmoid,
        "softmax": jax.nn.softmax,
        "science value": jscience,
        "science grad": jax.grad(jscience),
    }
    return {k: jax.jit(f) for k, f in fns.items()}, jnp.asarray


def torch_functions():
    try:
        import torch
    except ImportError:
        return None

    def tscience(x):
        return torch.sum(torch.tanh(x) * torch.exp(-x * x))

    return {
        "exp": torch.exp,
        "log": torch.log,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "softmax": lambda x: torch.softmax(x, 0),
        "science value": tscience,
        "science grad": torch.func.grad(tscience),
    }, torch.from_numpy


def inputs(name: str, n: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 10.0, n) if name == "log" else rng.standard_normal(n) * 2
    return x.astype(dtype)


def check(name, got, want, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=tol, atol=tol)


def elementwise_rows(sizes, quick: bool) -> list[dict]:
    jx, tx = jax_functions(), torch_functions()
    rows = []
    for name in NUMPY:
        for T, dtype in DTYPES.items():
            for n in sizes:
                x = inputs(name, n, dtype)
                f = raster_functions()[name]  # fresh: the first call below is the compile
                t0 = time.perf_counter()
                got = f(x)
                first = time.perf_counter() - t0
                check(name, got, NUMPY[name](x), dtype)
                contenders = {"raster_mlir": lambda: f(x), "numpy": lambda: NUMPY[name](x)}
                if jx:
                    jf, to_jax = jx[0][name], jx[1]
                    xj = to_jax(x)
                    jf(xj).block_until_ready()
                    contenders["jax"] = lambda: jf(xj).block_until_ready()
                if tx:
                    tf, to_torch = tx[0][name], tx[1]
                    xt = to_torch(x)
                    tf(xt)
                    contenders["torch"] = lambda: tf(xt)
                number = 200 if n <= 10_000 else 4
                rounds = 3 if quick else (25 if n <= 10_000 else 15)
                # large rows run on thread pools: each round starts once the other runtimes' spinning threads stopped
                settle = 0.0 if n <= 10_000 else SETTLE_SECONDS
                stats = compare(contenders, rounds=rounds, number=number, warmup=1 if quick else 3, settle=settle)
                row = {"row": f"{name} {T} n={n}", "first_call_s": first}
                row.update({k: s.median for k, s in stats.items()})
                rows.append(row)
                print_row(row, flush=True)
    return rows


def print_header():
    print(f"{'row':28} {'raster us':>10} {'numpy us':>10} {'jax us':>10} {'torch us':>10} "
          f"{'x numpy':>8} {'x jax':>7} {'x torch':>8} {'compile s':>9}")  # fmt: skip


def print_row(row, flush=False):
    r = row["raster_mlir"]

    def cell(k):
        return f"{row[k]:10.1f}" if k in row else f"{'-':>10}"

    def ratio(k, w):
        return f"{row[k] / r:{w}.2f}" if k in row else f"{'-':>{w}}"

    print(f"{row['row']:28} {r:10.1f} {cell('numpy')} {cell('jax')} {cell('torch')} "
          f"{ratio('numpy', 8)} {ratio('jax', 7)} {ratio('torch', 8)} {row['first_call_s']:9.2f}", flush=flush)  # fmt: skip


def adam_epochs(dtype: str, epochs: int, flush: bool, window: int = 100) -> list[float]:
    """Per-epoch time per step (us) of the seed's MLP trained with Adam on MNIST, as `raster-mlir train
    --optimizer adam` does it (TrainStep.run over windows of 100 steps), the compile excluded."""
    from raster_mlir.apps import datasets as data
    from raster_mlir.apps import train_command as cli_train

    ds = data.load("mnist5k").astype(DTYPES[dtype])
    x_all, y_all = ds.x_train, data.one_hot(ds.labels_train, ds.n_classes, DTYPES[dtype])
    rng = np.random.default_rng(0)
    params = cli_train.init_params(rng, ds.n_features, 128, ds.n_classes, DTYPES[dtype])
    step = rm.compile_train_step(cli_train.mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.Adam(lr=1e-3))
    before = rm.get_flush_denormal()
    rm.set_flush_denormal(flush)
    try:
        step.run(*params, x_all[:window], y_all[:window])  # compiles the loop (these 100 steps are not timed)
        per_epoch = []
        n = len(x_all) - len(x_all) % window
        for _ in range(epochs):
            order = rng.permutation(len(x_all))[:n]
            x, y = x_all[order], y_all[order]
            seconds = 0.0
            for start in range(0, n, window):
                xs, ys = x[start : start + window], y[start : start + window]
                t0 = time.perf_counter()
                step.run(*params, xs, ys)
                seconds += time.perf_counter() - t0
            per_epoch.append(1e6 * seconds / n)
    finally:
        rm.set_flush_denormal(before)
    return per_epoch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, 10^3 elements, one Adam epoch pair")
    parser.add_argument("--threads", type=int, default=None, help="limit PyTorch to N threads (default: its own)")
    parser.add_argument("--raster-threads", type=int, default=None, help="run raster_mlir on N threads (default: one per core)")
    parser.add_argument("--no-adam", action="store_true", help="skip the training rows")
    args = parser.parse_args(argv)
    os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="raster_bench_cache_"))
    if args.raster_threads:
        rm.set_num_threads(args.raster_threads)
    threads = [f"raster_mlir {rm.get_num_threads()}"]
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        threads.append(f"PyTorch {torch.get_num_threads()}")
    except ImportError:
        pass
    print(f"threads: {', '.join(threads)}, JAX/XLA its own pool, numpy 1 (see the module docstring)")
    print_header()
    elementwise_rows((1000,) if args.quick else (1000, 1_000_000), args.quick)
    if args.no_adam:
        return
    epochs = 2 if args.quick else 4
    print("\nAdam on MNIST 784-128-10 as `raster-mlir train --optimizer adam` runs it (us per step, per epoch):")
    for dtype in ("f64", "f32"):
        for flush in (True, False):
            times = adam_epochs(dtype, epochs, flush)
            label = "flush-to-zero on (default)" if flush else "flush-to-zero off"
            print(f"  {dtype} {label:27} " + "  ".join(f"{t:6.1f}" for t in times)
                  + f"   last/first {times[-1] / times[0]:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
