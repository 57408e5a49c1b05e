"""Backend test fixtures: every test gets a private object-cache directory.

The disk cache must never touch the user's real cache directory from a test,
and tests of the cache need an empty one, so RASTER_MLIR_CACHE_DIR points to
a fresh temporary directory per test and the in-process cache is emptied.
"""

from __future__ import annotations

import pytest

from raster_mlir.backend import clear_memory_cache


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path, monkeypatch):
    cache = tmp_path / "raster_cache"
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(cache))
    monkeypatch.delenv("RASTER_MLIR_CACHE", raising=False)
    clear_memory_cache()
    yield cache
    clear_memory_cache()
