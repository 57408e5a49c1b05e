"""The explicit heat-equation stencil step against numpy and JAX jit, in one run.

    u_next = u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])

on 10^4 and 10^6 points, f64 and f32, and its periodic variant
`u + c * (np.roll(u, 1) - 2 * u + np.roll(u, -1))` on 10^6 points, f64. raster_mlir compiles it (`@rm.jit`) into
one loop (the slices fuse with the arithmetic); numpy evaluates it with four
temporaries; JAX jit fuses it with XLA. Reported per step (one call, fresh
output array): median (min-max) over interleaved rounds, the ratio to
raster_mlir, and raster_mlir's effective bandwidth (bytes read + written per
step / time) against the machine's copy bandwidth measured here with numpy
(`np.copyto`, counted as read + write), both at the stencil's own size and at
160 MB (main memory). First call: trace + compile + one step, with an empty
raster_mlir cache (a temporary directory) and JAX's first jit call.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_stencil.py [--quick]

The machine is shared while the project is being built: take the figures as
ratios within one run, not as absolute numbers.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

import numpy as np

# An empty raster_mlir cache, so the first call below is a cold compile.
os.environ["RASTER_MLIR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_stencil_")
sys.path.insert(0, os.path.dirname(__file__))
from timing import compare  # noqa: E402

import raster_mlir as rm  # noqa: E402


def step(u, c):
    return u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])


def periodic_step(u, c, roll=np.roll):
    """The same step on a ring (np.roll; jnp.roll for JAX): one loop too, with a branch at each end."""
    return u + c * (roll(u, 1) - 2 * u + roll(u, -1))


KERNELS = {"slices": step, "roll": periodic_step}


def copy_bandwidth(n: int, dtype, rounds: int) -> float:
    """GB/s of np.copyto over n elements, counting the read and the write."""
    src = np.random.default_rng(0).random(n).astype(dtype)
    dst = np.empty_like(src)
    number = max(1, int(2e7 // n))
    stats = compare({"copy": lambda: np.copyto(dst, src)}, rounds=rounds, number=number, warmup=2)
    return 2 * src.nbytes / (stats["copy"].median * 1e-6) / 1e9


def first_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def import_jax():
    """(jax, jax.numpy) with float64 enabled, or None when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def bench(kernel: str, n: int, dtype, rounds: int, dram_copy: float, quick: bool) -> list[str]:
    step = KERNELS[kernel]
    rng = np.random.default_rng(1)
    u = rng.random(n).astype(dtype)
    c = np.asarray(0.2, dtype=dtype)
    c_scalar = dtype(0.2)
    want = step(u.astype(np.float64), 0.2)
    tol = 1e-12 if dtype == np.float64 else 1e-5

    compiled = rm.jit(step)
    first_rm = first_call(lambda: compiled(u, c))
    assert np.allclose(compiled(u, c), want, rtol=tol, atol=tol), "raster_mlir disagrees with numpy"
    contenders = {"raster_mlir": lambda: compiled(u, c), "numpy": lambda: step(u, c_scalar)}
    first = {"raster_mlir": first_rm, "numpy": 0.0}
    loaded = import_jax()
    if loaded is not None:
        jax, jnp = loaded
        ju, jc = jnp.asarray(u), jnp.asarray(c)
        jitted = jax.jit(functools.partial(step, roll=jnp.roll) if step is periodic_step else step)
        first["JAX jit"] = first_call(lambda: jitted(ju, jc).block_until_ready())
        assert np.allclose(np.asarray(jitted(ju, jc)), want, rtol=tol, atol=tol), "JAX disagrees with numpy"
        contenders["JAX jit"] = lambda: jitted(ju, jc).block_until_ready()
    number = max(1, int(2e6 // n)) if quick else max(1, int(2e7 // n))
    stats = compare(contenders, rounds=rounds, number=number)
    base = stats["raster_mlir"].median
    moved = (n + len(want)) * np.dtype(dtype).itemsize  # u read once, u_next written once
    gbs = moved / (base * 1e-6) / 1e9
    near_copy = copy_bandwidth(n, dtype, rounds=max(3, rounds // 2))
    rows = []
    for name, s in stats.items():
        ratio = "" if name == "raster_mlir" else f" x{s.median / base:.2f}"
        rows.append(
            f"| {kernel} | {n:,} | {np.dtype(dtype).name} | {name} | {s.median:.1f} ({s.low:.1f}-{s.high:.1f}){ratio} "
            f"| {first[name]:.0f} |"
            + (f" {gbs:.1f} GB/s = {100 * gbs / near_copy:.0f}% of copy at this size ({near_copy:.1f}), "
               f"{100 * gbs / dram_copy:.0f}% of copy from memory ({dram_copy:.1f}) |" if name == "raster_mlir" else " |")
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke test of the script)")
    args = parser.parse_args()
    rounds = 5 if args.quick else 25
    dram_copy = copy_bandwidth(2 * 10**7, np.float64, rounds=3 if args.quick else 7)
    print(f"numpy copy bandwidth, 160 MB (read + write): {dram_copy:.1f} GB/s")
    print("| stencil | points | dtype | contender | µs per step: median (min-max) x ratio to raster_mlir | first call ms "
          "| raster_mlir bandwidth |")
    print("|---|--:|---|---|--:|--:|---|")
    for kernel in KERNELS:
        for n in (10**4, 10**6):
            for dtype in (np.float64, np.float32):
                if kernel == "roll" and (n, dtype) != (10**6, np.float64):
                    continue  # one row of the periodic variant: the point is the fusion of np.roll
                for row in bench(kernel, n, dtype, rounds, dram_copy, args.quick):
                    print(row, flush=True)


if __name__ == "__main__":
    main()
