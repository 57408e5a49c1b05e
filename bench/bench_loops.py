"""The damped spring of issue 11: value and gradient through N time steps, against JAX and PyTorch, in one run.

    python bench/bench_loops.py [--quick] [--steps 10,100,1000,10000] [--only raster_mlir,jax,torch]

The workload: 64 masses on springs, N explicit Euler steps

    a = -k * x - 0.1 * v;  v = v + 0.01 * a;  x = x + 0.01 * v;    value = sum(x * x)

and the gradient of the value with respect to the spring constants k.

Contenders:
- raster_mlir: `rm.fori_loop` under `@rm.jit` (value) and `rm.grad` (gradient);
- JAX: `jax.jit` of `lax.fori_loop` and of `lax.scan` (value; `jax.grad` of the scan for the
  gradient: JAX differentiates `fori_loop` with static bounds as a scan). JAX runs its own
  thread pool (XLA's Eigen threads); raster_mlir runs this loop on one thread;
- PyTorch eager with a Python loop (autograd for the gradient; `torch.set_num_threads(1)`).

Columns, per N:
- "first call": the first call's wall time in a fresh Python process (tracing and compiling
  included; raster_mlir's object cache is a fresh empty directory, JAX's cache is in memory), the
  median over `--fresh` processes; with the CPU time of that call beside it, which a shared machine
  inflates less;
- "per call": the median over interleaved rounds in the same process, in us (each contender makes
  as many calls per round as fit in a few ms), with the fastest round in parentheses (on a busy
  machine the median is inflated by other processes; the minimum much less);
- "x raster_mlir": ratios to raster_mlir measured in the same run (> 1: slower than raster_mlir).

Targets (issue 11): first call <= 150 ms (value) and <= 250 ms (gradient) at every N, the compile
time flat in N; per call at N = 1000 <= 15 us (value) and gradient <= 3x the value.
Every contender's value and gradient are checked against a float64 numpy loop before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from timing import Stats, timed_round  # noqa: E402

SIZE = 64


def data():
    rng = np.random.default_rng(0)
    return rng.random(SIZE) + 1.0, rng.standard_normal(SIZE), rng.standard_normal(SIZE)


def reference(k, x0, v0, n):
    """(value, d value / d k) in float64 numpy, the gradient by a hand-written reverse loop."""
    xs, vs = [x0], [v0]
    x, v = x0, v0
    for _ in range(n):
        a = -k * x - 0.1 * v
        v = v + 0.01 * a
        x = x + 0.01 * v
        xs.append(x)
        vs.append(v)
    gx, gv, gk = 2 * x, np.zeros_like(x), np.zeros_like(x)
    for s in range(n - 1, -1, -1):
        # x' = x + 0.01 v'; v' = v + 0.01 a; a = -k x - 0.1 v
        gv_new = gv + 0.01 * gx
        ga = 0.01 * gv_new
        gk += -xs[s] * ga
        gx, gv = gx - k * ga, gv_new - 0.1 * ga
    return float(np.sum(x * x)), gk


# ---------------------------------------------------------------------------
# The contenders: (value function, gradient function), each taking (k, x0, v0)


def raster_mlir_fns(n):
    import raster_mlir as rm

    def simulate(k, x0, v0):
        def step(i, state):
            x, v = state
            a = -k * x - 0.1 * v
            v = v + 0.01 * a
            return x + 0.01 * v, v

        x, _ = rm.fori_loop(0, n, step, (x0, v0))
        return rm.sum(x * x)

    return rm.jit(simulate), rm.grad(simulate, argnums=0)


def jax_fns(n, flavour):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    def step(state):
        x, v, k = state
        a = -k * x - 0.1 * v
        v = v + 0.01 * a
        return x + 0.01 * v, v, k

    def simulate_fori(k, x0, v0):
        x, _, _ = lax.fori_loop(0, n, lambda i, s: step(s), (x0, v0, k))
        return jnp.sum(x * x)

    def simulate_scan(k, x0, v0):
        (x, _, _), _ = lax.scan(lambda s, _: (step(s), None), (x0, v0, k), None, length=n)
        return jnp.sum(x * x)

    simulate = simulate_fori if flavour == "fori" else simulate_scan
    value = jax.jit(simulate)
    grad = jax.jit(jax.grad(simulate_scan))  # reverse mode needs scan (fori_loop with static bounds is one)

    def sync(f):
        return lambda *a: f(*a).block_until_ready()

    return sync(value), sync(grad)


def torch_fns(n):
    import torch

    torch.set_num_threads(1)

    def simulate(k, x0, v0):
        x, v = x0, v0
        for _ in range(n):
            a = -k * x - 0.1 * v
            v = v + 0.01 * a
            x = x + 0.01 * v
        return torch.sum(x * x)

    def value(k, x0, v0):
        with torch.no_grad():
            return simulate(k, x0, v0)

    def grad(k, x0, v0):
        k = k.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(simulate(k, x0, v0), k)
        return g

    return value, grad


CONTENDERS = {
    "raster_mlir": lambda n: raster_mlir_fns(n),
    "jax fori_loop": lambda n: jax_fns(n, "fori"),
    "jax scan": lambda n: jax_fns(n, "scan"),
    "torch eager": lambda n: torch_fns(n),
}
LIBRARY = {"raster_mlir": "raster_mlir", "jax fori_loop": "jax", "jax scan": "jax", "torch eager": "torch"}


def arguments(name):
    k, x0, v0 = data()
    if LIBRARY[name] == "torch":
        import torch

        return tuple(torch.tensor(a) for a in (k, x0, v0))
    return k, x0, v0


def as_numpy(x):
    return np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=np.float64)


# ---------------------------------------------------------------------------
# Per call: interleaved rounds, each contender calibrated to about `budget` seconds per round


def per_call(contenders: dict, rounds: int, budget: float) -> dict[str, Stats]:
    """Median per-call time (us) of each contender over interleaved rounds (bench/timing.py's scheme,
    with a number of calls per round chosen per contender: torch's Python loop is 10^4 times slower)."""
    numbers = {}
    for name, fn in contenders.items():
        fn()
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        numbers[name] = max(1, min(10_000, int(budget / once)))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(timed_round(fn, numbers[name]))
    return {name: Stats(statistics.median(s), min(s), max(s), s, numbers[name] * rounds) for name, s in samples.items()}


# ---------------------------------------------------------------------------
# First call, in a fresh process


def first_call_child(name: str, mode: str, n: int) -> None:
    """Run in a fresh process: import, build, time the first call; print JSON."""
    start_import = time.perf_counter()
    value, grad = CONTENDERS[name](n)
    args = arguments(name)
    imported = time.perf_counter() - start_import
    fn = value if mode == "value" else grad
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall_ms": wall * 1e3, "cpu_ms": cpu * 1e3, "import_ms": imported * 1e3}))


def first_call(name: str, mode: str, n: int, fresh: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(fresh):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, RASTER_MLIR_CACHE_DIR=cache)
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--first-call", name, mode, str(n)],
                capture_output=True, text=True, env=env, check=True, timeout=600,
            )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
        walls.append(result["wall_ms"])
        cpus.append(result["cpu_ms"])
    return statistics.median(walls), statistics.median(cpus)


# ---------------------------------------------------------------------------


def available(name: str) -> bool:
    try:
        __import__(LIBRARY[name])
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, one fresh process per first call")
    parser.add_argument("--steps", default="10,100,1000,10000", help="comma-separated N")
    parser.add_argument("--only", default=None, help="comma-separated contenders (raster_mlir, jax, torch)")
    parser.add_argument("--fresh", type=int, default=None, help="fresh processes per first-call figure")
    parser.add_argument("--first-call", nargs=3, metavar=("NAME", "MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call:
        name, mode, n = args.first_call
        first_call_child(name, mode, int(n))
        return
    steps = [int(s) for s in args.steps.split(",")]
    names = [c for c in CONTENDERS if available(c)]
    if args.only:
        wanted = args.only.split(",")
        names = [c for c in names if c in wanted or LIBRARY[c] in wanted]
    if "raster_mlir" not in names:
        names.insert(0, "raster_mlir")
    missing = [c for c in CONTENDERS if c not in names and not available(c)]
    fresh = args.fresh or (1 if args.quick else 3)
    rounds, budget = (5, 0.01) if args.quick else (21, 0.03)

    print(f"damped spring, {SIZE} elements, float64; machine: {os.cpu_count()} CPUs; "
          f"first call: median of {fresh} fresh process(es); per call: median of {rounds} interleaved rounds")
    print("JAX runs XLA's own thread pool; torch is limited to 1 thread; raster_mlir runs this loop on 1 thread.")
    if missing:
        print(f"unavailable (not installed): {', '.join(missing)}")
    for n in steps:
        want_value, want_grad = reference(*data(), n)
        fns = {name: CONTENDERS[name](n) for name in names}
        wrong = set()
        for name, (value, grad) in fns.items():
            a = arguments(name)
            v, g = float(as_numpy(value(*a))), as_numpy(grad(*a))
            if abs(v - want_value) > 1e-9 * max(1.0, abs(want_value)) or np.max(np.abs(g - want_grad)) > 1e-9 * max(1.0, np.max(np.abs(want_grad))):
                wrong.add(name)
        print(f"\nN = {n}")
        header = f"{'':16} {'first call value':>22} {'first call grad':>22} {'per call value (min)':>26} {'per call grad (min)':>26} {'grad/value':>10}"
        print(header)
        timed = {name: fns[name] for name in names if name not in wrong}
        values = per_call({name: (lambda f=f, a=arguments(name): f[0](*a)) for name, f in timed.items()}, rounds, budget)
        grads = per_call({name: (lambda f=f, a=arguments(name): f[1](*a)) for name, f in timed.items()}, rounds, budget)
        firsts = {name: (first_call(name, "value", n, fresh), first_call(name, "grad", n, fresh)) for name in timed}
        base_v, base_g = values["raster_mlir"].median, grads["raster_mlir"].median
        base_fv, base_fg = firsts["raster_mlir"][0][0], firsts["raster_mlir"][1][0]
        for name in names:
            if name in wrong:
                print(f"{name:16} WRONG (differs from the float64 reference): not timed")
                continue
            (fv, fv_cpu), (fg, fg_cpu) = firsts[name]
            v, g = values[name].median, grads[name].median
            print(
                f"{name:16} {fv:7.0f} ms ({fv_cpu:4.0f} cpu) x{fv / base_fv:4.1f} {fg:7.0f} ms ({fg_cpu:4.0f} cpu) x{fg / base_fg:4.1f}"
                f" {v:9.1f} us ({values[name].low:7.1f}) x{v / base_v:4.1f} {g:9.1f} us ({grads[name].low:7.1f}) x{g / base_g:4.1f}"
                f" {g / v:9.2f}"
            )


if __name__ == "__main__":
    main()
