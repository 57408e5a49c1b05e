"""dense 128x784 and relu(dense) through @rm.jit, against numpy's W @ x + b, in one run.

Also reports the per-call overhead of a compiled 6-argument function and
cold / warm compile times (warm = the disk object cache, in a fresh process).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_dense.py

(OpenBLAS' tuning variables are unset for this command only, so numpy runs
its default kernels; threadpoolctl, when installed, reports which one.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from timing import compare, table  # noqa: E402

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in threadpool_info())


@rm.jit
def dense(W, x, b):
    return nn.dense(W, x, b)


@rm.jit
def dense_relu(W, x, b):
    return nn.relu(nn.dense(W, x, b))


@rm.jit
def six(a, b, c, d, e, f):
    return a + b + c + d + e + f


def bench_dtype(dtype) -> None:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(128, 784)).astype(dtype)
    x = rng.normal(size=784).astype(dtype)
    b = rng.normal(size=128).astype(dtype)
    assert np.allclose(dense(W, x, b), W @ x + b, rtol=1e-4 if dtype == np.float32 else 1e-12)
    assert np.allclose(dense_relu(W, x, b), np.maximum(W @ x + b, 0), rtol=1e-4 if dtype == np.float32 else 1e-12)
    results = compare(
        {
            "numpy W@x+b": lambda: W @ x + b,
            "rm dense": lambda: dense(W, x, b),
            "numpy relu(W@x+b)": lambda: np.maximum(W @ x + b, 0),
            "rm relu(dense)": lambda: dense_relu(W, x, b),
        }
    )
    print(f"\n{np.dtype(dtype).name}, W 128x784")
    print(table(results, "numpy W@x+b"))


def overhead() -> None:
    args = [np.ones(1) for _ in range(6)]
    six(*args)
    noop = lambda: None  # noqa: E731
    results = compare({"python no-op call": noop, "rm 6-arg a+b+c+d+e+f (1 element)": lambda: six(*args)}, number=1000)
    print("\nper-call overhead")
    print(table(results, "python no-op call"))


COMPILE_SNIPPET = """
import time, numpy as np
t = time.perf_counter()
import raster_mlir as rm
from raster_mlir import nn
t_import = time.perf_counter() - t
W = np.ones((128, 784)); x = np.ones(784); b = np.ones(128)
t = time.perf_counter()
c = rm.compile(lambda W, x, b: nn.relu(nn.dense(W, x, b)), W, x, b)
print(f"{t_import:.3f} {time.perf_counter() - t:.3f} {c.native.function.cache_source}")
"""


def compile_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, RASTER_MLIR_CACHE_DIR=cache)
        print("\ncompile time of relu(dense) (fresh process each; import time separate)")
        for label in ("cold (empty cache)", "warm (disk cache)"):
            out = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], env=env, capture_output=True, text=True, check=True)
            t_import, t_compile, source = out.stdout.split()
            print(f"  {label:20s} compile {float(t_compile) * 1e3:8.1f} ms   (import {float(t_import) * 1e3:.0f} ms, cache: {source})")


def main() -> None:
    print(f"BLAS: {blas_info()}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}")
    for dtype in (np.float64, np.float32):
        bench_dtype(dtype)
    overhead()
    compile_times()


if __name__ == "__main__":
    main()
