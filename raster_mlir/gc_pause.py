"""Compiling without Python's cyclic garbage collector running in between.

A compile allocates hundreds of thousands of small objects (ops, uses,
attributes). Each allocation burst triggers collections, and the full
collections walk every object of the process, most of them the imported
libraries' (numpy, xDSL). Measured on the grad of a 300-step unrolled ODE
(trace, tensor passes, lower-to-loops, fuse-loops): 20.2 s with the
collector, 12.8 s without it, for 15 MB more peak memory (45 -> 60 MB):
the cyclic garbage of the compile is collected afterwards instead of during
it. `gc.freeze()` helped less (18.1 s) and would keep garbage forever.

`paused_gc()` switches the collector off for the duration of a compile and
back on after it (only if it was on, so nested compiles and callers that
disabled it themselves are left as they were).

Switched back on, the collector collects its young generation at the next
allocation: every object the compile allocated and did not free, live or
garbage (an op and its results reference each other, so dead IR waits for the
collector; 26,000 objects, 11,000 of them garbage, for the 2-layer MLP train
step). `paused_gc(timer)` makes that collection itself, at the end, as the
timing report's row `GC_ROW`, so that a first call's time is all in its report.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


GC_ROW = "garbage collection after the compile"


@contextmanager
def paused_gc(timer=None) -> Iterator[None]:
    """The collector off inside; with a `timer` (timing.CompileTimer), the young generation collected
    on the way out as its row `GC_ROW` (the collection the next allocation would have made)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if timer is not None:
                with timer.phase(GC_ROW):
                    gc.collect(0)
            gc.enable()
