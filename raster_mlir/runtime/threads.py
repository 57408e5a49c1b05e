"""Threads: how many cores compiled functions use, and whether reductions are deterministic.

    rm.set_num_threads(2)          # or RASTER_MLIR_NUM_THREADS=2; default: the CPUs this process may use
    rm.get_num_threads()
    rm.set_deterministic(True)     # or RASTER_MLIR_DETERMINISTIC=1

Loops that the `parallelize-loops` pass marks (the batched dense layers, the
tiles of a batch's weight gradient, large elementwise loops and reductions...)
run on a native thread pool started once per process (backend/pool.py). Both
settings take effect at the next call, without recompiling.

Results do not depend on the thread count, with one exception: a parallel
reduction (a loop that carries a sum, product, max or min across its
iterations, such as `rm.sum` over a large array) is cut into one block per
thread, so its summation order, and the last bits of its result, change with
the thread count. In deterministic mode it is cut into a fixed number of
blocks whatever the thread count, so every result is bitwise the same for 1,
2 or 64 threads (and the reduction still runs in parallel).
"""

from __future__ import annotations

from raster_mlir.backend.pool import get_deterministic, get_num_threads, set_deterministic, set_num_threads

__all__ = ["set_num_threads", "get_num_threads", "set_deterministic", "get_deterministic"]
