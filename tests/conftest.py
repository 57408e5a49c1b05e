"""Shared pytest configuration: hypothesis profiles and a suite that leaves no trace.

Hypothesis profiles are picked with the environment variable HYPOTHESIS_PROFILE:

- "ci" (default): few examples per property, no deadline, no example database
  (nothing written into the working tree), so the whole suite stays fast;
- "dev": many more examples and hypothesis' example database (`.hypothesis/`),
  for hunting bugs locally (`HYPOTHESIS_PROFILE=dev pytest tests/`).

Property tests leave `max_examples` to the profile (they only set
`deadline=None`), so switching profiles scales all of them at once.

Where the suite writes: the object cache of compiled kernels goes to a
temporary directory made for this session and removed at its end, never to the
user's cache (`~/.cache/raster_mlir`, or the `RASTER_MLIR_CACHE_DIR` a user set
for their own work). Set `RASTER_MLIR_TEST_CACHE_DIR` to keep a cache for the
tests between runs (a warm cache makes the suite faster). The variable is set
in `os.environ` before any test runs, so subprocesses (examples, the CLI,
lit's raster-opt) use the same directory. Scratch output of tests and lit's
`Output/` folders go to temporary directories too (tmp_path, RASTER_MLIR_LIT_EXEC_ROOT).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=15, deadline=None, suppress_health_check=_RELAXED, database=None)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=_RELAXED)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

# Made at import (before any test module imports raster_mlir), removed by pytest_unconfigure.
SESSION_SCRATCH = tempfile.mkdtemp(prefix="raster_mlir_tests_")
os.environ["RASTER_MLIR_CACHE_DIR"] = os.environ.get("RASTER_MLIR_TEST_CACHE_DIR") or os.path.join(SESSION_SCRATCH, "cache")
# The suite verifies the IR after every pass (compiles outside it verify once, at the end).
os.environ.setdefault("RASTER_MLIR_VERIFY_EACH", "1")
if PROFILE == "ci":
    # Hypothesis also keeps files of its own (`.hypothesis/constants`) in the working directory.
    set_hypothesis_home_dir(os.path.join(SESSION_SCRATCH, "hypothesis"))


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_SCRATCH, ignore_errors=True)
