"""A cache entry records the key it was written for and is refused under any other key.

Regression (issue 18, item 3): an intact entry copied over another key's file was
loaded, the Python-side argument checks passed (they check the signature that was
traced, not the kernel that was loaded), and the other signature's kernel ran on
these buffers: `W @ x` compiled for W (2000, 500) and loaded for W (2, 500) wrote
past the end of a 2-element output (a segfault); the other way round it returned
uninitialised memory. Each load runs in a fresh process, so a regression fails the
test instead of killing the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


SHAPES = {"big": (2000, 500), "small": (2, 500)}

# Compiles W @ x for one W shape, checks the numbers, prints whether the kernel came from disk.
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import raster_mlir as rm
    rows, cols = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((rows, cols)), rng.standard_normal(cols)
    c = rm.compile(lambda W, x: W @ x, W, x)
    y = c(W, x)
    assert y.shape == (rows,), y.shape
    np.testing.assert_allclose(y, W @ x, rtol=1e-12, atol=1e-12)
    print("source", c.native.function.cache_source)
    """
)


def compile_in_child(shape) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, shape)], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout.split()[-1]


def entries_written_by(shape, cache: Path) -> set[Path]:
    before = set(cache.glob("*.rmo"))
    assert compile_in_child(shape) == "None"
    return set(cache.glob("*.rmo")) - before


def test_entries_swapped_between_two_keys_are_recompiled(private_cache_dir):
    written = {name: entries_written_by(shape, private_cache_dir) for name, shape in SHAPES.items()}
    assert written["big"] and written["small"] and not written["big"] & written["small"]
    # Each key's files now hold an intact entry of the other key (both directions of the bug).
    donors = {name: max(paths, key=lambda p: p.stat().st_size).read_bytes() for name, paths in written.items()}
    for name, other in (("small", "big"), ("big", "small")):
        for path in written[name]:
            path.write_bytes(donors[other])
    for name, other in (("small", "big"), ("big", "small")):
        assert compile_in_child(SHAPES[name]) == "None", f"the {other} kernel's entry was loaded for {name}"
        assert all(path.read_bytes() != donors[other] for path in written[name])  # replaced by its own
