"""Timing helpers shared by the benchmarks: interleaved rounds, medians, min-max, ratios.

Each contender runs `number` calls per round; rounds alternate between
contenders so that a slow phase of this shared machine hits all of them.
Reported figures are per call, in microseconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Stats:
    median: float
    low: float
    high: float
    samples: list[float]
    calls: int = 0  # how many times the contender was called, warm-up included

    def __str__(self) -> str:
        return f"{self.median:9.2f} us  [{self.low:.2f} - {self.high:.2f}]"


def timed_round(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def compare(
    contenders: dict[str, Callable[[], object]], rounds: int = 30, number: int = 100, warmup: int = 3, settle: float = 0.0
) -> dict[str, Stats]:
    """Per-call time of each contender, rounds interleaved.

    `settle` (seconds): before each round, sleep that long and make one untimed call. For
    multi-threaded contenders: the thread pools of the previous contender (PyTorch's OpenMP,
    XLA's) keep spinning for milliseconds after their call and would otherwise take the cores
    this round's workers need; the untimed call wakes this contender's own pool.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            timed_round(fn, max(1, number // 4))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            if settle:
                time.sleep(settle)
                fn()
            samples[name].append(timed_round(fn, number))
    calls = warmup * max(1, number // 4) + rounds * number
    return {name: Stats(statistics.median(s), min(s), max(s), s, calls) for name, s in samples.items()}


def table(results: dict[str, Stats], baseline: str) -> str:
    """Rows of name, median, min-max and the ratio to `baseline` (>1 means slower than it)."""
    base = results[baseline].median
    width = max(len(n) for n in results)
    lines = [f"{'':{width}}  {'median':>12}  {'min - max':>20}  {'x ' + baseline:>14}"]
    for name, s in results.items():
        lines.append(f"{name:{width}}  {s.median:9.2f} us  {s.low:8.2f} - {s.high:8.2f}  {s.median / base:14.2f}")
    return "\n".join(lines)


def count_calls(fn: Callable[[], object]) -> int:
    """The Python and built-in function calls made by `fn()` (deterministic for a deterministic `fn`):
    a work measure that a loaded machine does not disturb."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if event == "call" or event == "c_call":
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls
