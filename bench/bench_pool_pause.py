"""The thread pool after idle pauses: per-call times of 10^6-element maths, as bench_transcendental times them.

    python bench/bench_pool_pause.py [--quick] [--rounds N]

bench_transcendental's 10^6 rows sleep 20 ms before each round, make one
untimed call and time 4 (timing.compare's `settle`). Here each function runs
in three patterns, interleaved round by round in one process:

- "pause": that pattern (20 ms sleep, one untimed call, 4 timed calls);
- "tight": the same 4 calls with no pause before them;
- "gap": 4 calls with ~150 us of the caller's own work between them (a loop
  doing some numpy work between calls: longer than the pool's configured
  spin, so it shows whether the worker is still polling when the next job
  opens);

and numpy's single-threaded function as the peer (pause pattern). Printed
per function: the median and the 10th-90th percentiles of the per-call times
(us), the ratio to numpy of the pause pattern's median, and the pool's
counters over the pause pattern's timed calls (backend/pool.py, statistics):
the share of jobs the caller ran alone (no worker joined before the units ran
out), the share that had to wake a worker from the kernel, and how often the
workers' placement changed (the caller seen on another CPU). On a shared
machine the other processes' load shows up as jobs run alone: compare the
patterns within one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("RASTER_MLIR_CACHE_DIR", tempfile.mkdtemp(prefix="raster_bench_cache_"))
import raster_mlir as rm  # noqa: E402
from raster_mlir.backend import pool  # noqa: E402

FUNCTIONS = {"exp": (rm.exp, np.exp), "log": (rm.log, np.log), "tanh": (rm.tanh, np.tanh)}
DTYPES = {"f64": np.float64, "f32": np.float32}
PAUSE_S, GAP_S, CALLS = 0.02, 150e-6, 4


def inputs(name: str, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 10.0, 10**6) if name == "log" else rng.standard_normal(10**6) * 2
    return x.astype(dtype)


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def timed_calls(fn, gap: float) -> list[float]:
    times = []
    for _ in range(CALLS):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
        if gap:
            busy(gap)
    return times


def measure(name: str, dtype, rounds: int) -> dict:
    ours, theirs = FUNCTIONS[name]
    x = inputs(name, dtype)
    f = rm.jit(lambda x: ours(x))
    f(x)

    def call():
        return f(x)

    def peer():
        return theirs(x)

    samples = {"pause": [], "tight": [], "gap": [], "numpy": []}
    counters = {"jobs": 0, "solo_jobs": 0, "wakeups": 0, "placements": 0}
    p = pool.pool()
    for _ in range(rounds):
        for pattern in samples:
            fn = peer if pattern == "numpy" else call
            if pattern in ("pause", "numpy"):
                time.sleep(PAUSE_S)
            fn()
            counting = p is not None and hasattr(p, "statistics") and pattern == "pause"  # (older pools: no counters)
            before = p.statistics() if counting else None
            samples[pattern] += timed_calls(fn, GAP_S if pattern == "gap" else 0.0)
            if before is not None:
                after = p.statistics()
                for k in counters:
                    counters[k] += after[k] - before[k]
    return {"samples": samples, "counters": counters}


def cell(values: list[float]) -> str:
    q = sorted(values)
    return f"{statistics.median(q):7.1f} [{q[len(q) // 10]:6.1f}-{q[(9 * len(q)) // 10]:6.1f}]"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, f32 only")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per function (default 30)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 30)
    dtypes = ("f32",) if args.quick else tuple(DTYPES)
    print(f"raster_mlir threads: {rm.get_num_threads()}; {rounds} rounds of {CALLS} calls per pattern; us per call, "
          "median [10th-90th percentile]")  # fmt: skip
    print(f"{'row':16} {'pause':>24} {'tight':>24} {'gap 150 us':>24} {'numpy (pause)':>24} {'x numpy':>7} "
          f"{'alone':>6} {'woken':>6} {'moves':>5}")  # fmt: skip
    for T in dtypes:
        for name in FUNCTIONS:
            r = measure(name, DTYPES[T], rounds)
            s, c = r["samples"], r["counters"]
            jobs = max(1, c["jobs"])
            ratio = statistics.median(s["numpy"]) / statistics.median(s["pause"])
            print(f"{name + ' ' + T + ' 1e6':16} {cell(s['pause']):>24} {cell(s['tight']):>24} {cell(s['gap']):>24} "
                  f"{cell(s['numpy']):>24} {ratio:7.2f} {c['solo_jobs'] / jobs:6.0%} {c['wakeups'] / jobs:6.0%} "
                  f"{c['placements']:5d}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
