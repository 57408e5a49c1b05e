"""Thread scaling of batched work, 1 thread against 2 (or more) in the same process, interleaved.

`python -m bench` measures one thread count per process, row after row, so a
burst of other work on the machine during one row (the other core taken
away) shows up as "no scaling" in that row only. Here every round runs each
workload at every thread count (`rm.set_num_threads` before the round, in a
random order), so all thread counts see the same machine, and each round
also records the process's CPU time: `cpu/wall` near the thread count means
the threads really ran together; near 1 means the other cores were busy with
someone else's work (then the time says nothing about scaling).

Workloads (784->128->10 MLP, SGD, random dense inputs in [0, 1), parameters
64-byte aligned as `raster-mlir train` and the harness make them): the train
step at batch 32 and 128 and inference (softmax probabilities) at batch 128,
f64 and f32. Printed per workload and thread count: the median time per call,
the 10th percentile (the rounds least disturbed by other processes), the
speed-up over one thread from both, the median cpu/wall, and the median over
the undisturbed rounds only (cpu/wall at least 90% of the thread count; how
many there were). Note that a thread spinning while it waits for work counts as
CPU time too, so cpu/wall tells that the threads were running, not that they
were busy with our work.

    python bench/bench_threads.py [f64|f32] [--quick] [--threads 1,2]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.workloads.raster_mlir_impl import mlp_loss, mlp_predict  # noqa: E402

import raster_mlir as rm  # noqa: E402


UNDISTURBED = 0.9  # a round whose cpu/wall reached 90% of its thread count had every thread running


def workloads(dtype, batches: int = 8) -> dict:
    """name -> fn(i): one call on the i-th batch (of `batches`, cycling)."""
    rng = np.random.default_rng(0)
    sizes = ((128, 784), 128, (10, 128), 10)
    params = [rm.aligned(rng.normal(0, 0.05, s).astype(dtype)) for s in sizes]
    calls = {}
    for batch in (32, 128):
        X = [rng.random((batch, 784)).astype(dtype) for _ in range(batches)]
        Y = [np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)] for _ in range(batches)]
        step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.01))
        P = [p.copy() for p in params]
        P = [rm.aligned(p) for p in P]
        calls[f"train step, batch {batch}"] = lambda i, step=step, P=P, X=X, Y=Y: step(*P, X[i % len(X)], Y[i % len(Y)])
        if batch == 128:
            predict = rm.jit(mlp_predict)
            calls["inference, batch 128"] = lambda i, P=P, X=X: predict(*P, X[i % len(X)])
    for fn in calls.values():  # compile (or load from the disk cache)
        fn(0)
    return calls


def measure(calls: dict, threads: list[int], rounds: int, number: int) -> dict:
    """(workload, threads) -> (wall us per call, cpu/wall) per round, thread counts interleaved."""
    keys = [(name, t) for name in calls for t in threads]
    out = {k: [] for k in keys}
    shuffle = random.Random(0).shuffle
    try:
        for r in range(rounds + 1):  # round 0 warms every configuration up
            shuffle(keys)
            for name, t in keys:
                rm.set_num_threads(t)
                fn = calls[name]
                fn(r)
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(number):
                    fn(i)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if r:
                    out[(name, t)].append((wall / number * 1e6, cpu / wall))
    finally:
        rm.set_num_threads(max(threads))
    return out


def report(title: str, calls: dict, threads: list[int], results: dict) -> None:
    print(f"\n{title}")
    print(
        f"{'workload':24} {'threads':>7} {'median':>10} {'p10':>10} {'x 1 thread':>11} {'(p10)':>6} {'cpu/wall':>9}"
        f"  {'undisturbed':>11} {'rounds':>6}"
    )
    for name in calls:
        base = results[(name, threads[0])]
        base_median = statistics.median(w for w, _ in base)
        base_p10 = sorted(w for w, _ in base)[len(base) // 10]
        for t in threads:
            walls = sorted(w for w, _ in results[(name, t)])
            median, p10 = statistics.median(walls), walls[len(walls) // 10]
            load = statistics.median(c for _, c in results[(name, t)])
            calm = [w for w, c in results[(name, t)] if c >= UNDISTURBED * t]
            calm_median = f"{statistics.median(calm):8.1f} us" if calm else f"{'-':>11}"
            print(
                f"{name:24} {t:7d} {median:7.1f} us {p10:7.1f} us {base_median / median:10.2f}x"
                f" {base_p10 / p10:5.2f}x {load:9.2f}  {calm_median} {len(calm):6d}"
            )


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    chosen = [a for a in argv if a in ("f64", "f32")] or ["f64", "f32"]
    threads = [1, max(2, min(len(os.sched_getaffinity(0)), 2))]
    if "--threads" in argv:
        threads = [int(t) for t in argv[argv.index("--threads") + 1].split(",")]
    rounds = 8 if quick else 40
    for key in chosen:
        dtype = {"f64": np.float64, "f32": np.float32}[key]
        start = time.perf_counter()
        calls = workloads(dtype)
        first = (time.perf_counter() - start) * 1e3
        results = measure(calls, threads, rounds, number=2 if quick else 5)
        title = f"{key}: 784->128->10, us per call ({rounds} interleaved rounds; trace+compile+first calls {first:.0f} ms)"
        report(title, calls, threads, results)


if __name__ == "__main__":
    main(sys.argv[1:])
