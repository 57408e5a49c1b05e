"""The damped spring of issue 13, unrolled by Python: the compile-time benchmarks' large straight-line program.

Each step is 6 element-wise ops (a = -K x - C v; x += DT v; v += DT a), all fusable, on 64-element
vectors in the benchmarks; the loss is sum(x^2) + sum(v^2).
"""

from __future__ import annotations

DT, K, C = 0.01, 4.0, 0.1


def unrolled_spring(steps: int, total=None):
    """f(x, v) running `steps` steps of the spring; `total` sums an array (default `rm.sum`, taken from the
    raster_mlir the caller imported; `jnp.sum` for JAX)."""
    if total is None:
        import raster_mlir as rm

        total = rm.sum

    def f(x, v):
        for _ in range(steps):
            a = -K * x - C * v
            x = x + DT * v
            v = v + DT * a
        return total(x * x) + total(v * v)

    return f
