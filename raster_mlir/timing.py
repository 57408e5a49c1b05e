"""Where compile time goes: one row per phase, shown as MLIR's `--mlir-timing` report.

A `CompileTimer` is handed down the whole compile (tracing, cache lookup,
every pass, verification, IR printing, LLVM IR emission, LLVM optimisation,
code generation, loading) and each step times itself with
`with timer.phase(name):`. Phases of the same name add up (verification
after each of 10 passes is one row, "verification (10x)"); rows keep the
order in which phases first ran. Pass rows carry the pass's stage label
(`inline#2` for a repeat). `rm.compile(...).timing_report()`, a train step's
`timing_report()` and `raster-opt --time-passes` print the same table:

    ===-------------------------------------------------------------------------===
                             ... Pass execution timing report ...
    ===-------------------------------------------------------------------------===
      Wall Time (s)   (%)   Name
          0.0041   9.1%  trace
          0.0007   1.6%  cache lookup (miss)
          0.0012   2.7%  inline
          ...
          0.0310  69.0%  LLVM optimisation
          0.0449 100.0%  Total
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

RULE = "===-------------------------------------------------------------------------==="


class CompileTimer:
    """Seconds per phase of one compile, in the order the phases first ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.passes: list[str] = []  # rows that are pass runs
        # Rows of work done on another thread meanwhile (llvm_worker.py): shown, not added to the total,
        # which stays the calling thread's wall time.
        self.concurrent: set[str] = set()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1

    def add_pass(self, label: str, seconds: float) -> None:
        self.add(label, seconds)
        self.passes.append(label)

    def add_concurrent(self, name: str, seconds: float, count: int = 1) -> None:
        """`seconds` of work another thread did during this compile (a row outside the total)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + count
        self.concurrent.add(name)

    @property
    def total(self) -> float:
        return sum(s for name, s in self.seconds.items() if name not in self.concurrent)

    def report(self, title: str = "Pass execution timing report") -> str:
        total = self.total or 1e-12
        lines = [RULE, f"{'... ' + title + ' ...':^79}".rstrip(), RULE, "  Wall Time (s)   (%)   Name"]
        for name, s in self.seconds.items():
            n = self.counts[name]
            label = f"{name} ({n}x)" if n > 1 and name not in self.passes else name
            if name in self.concurrent:
                label += ", overlapped (not in the total)"
            lines.append(f"  {s:12.4f}  {100 * s / total:5.1f}%  {label}")
        lines.append(f"  {self.total:12.4f}  100.0%  Total")
        return "\n".join(lines)


class _NoTimer:
    """Stands in when nobody asked for timings."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield

    def add(self, name: str, seconds: float) -> None:
        pass

    def add_pass(self, label: str, seconds: float) -> None:
        pass

    def add_concurrent(self, name: str, seconds: float, count: int = 1) -> None:
        pass


NO_TIMER = _NoTimer()
