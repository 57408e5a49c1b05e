"""Workspace buffers are disjoint: their loads and stores carry LLVM scoped-noalias metadata.

Without it LLVM cannot tell a loop's carries from a tape row read at a clamped
run-time index (all are slices of one workspace pointer): it keeps the carries
of a reverse loop in memory and versions the loop on overlap checks.
"""

from __future__ import annotations

import re

import numpy as np

import raster_mlir as rm
from raster_mlir.backend.llvm_body import FunctionBodyEmitter

from helpers import damped_spring, damped_spring_reference


def _accesses(llvm_ir: str) -> list[str]:
    return [line for line in llvm_ir.splitlines() if re.search(r"(= load |^\s*store )", line)]


def test_workspace_accesses_are_tagged_and_the_gradient_is_right(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    args = (rng.random(64) + 1.0, rng.standard_normal(64), rng.standard_normal(64))
    c = rm.compile(rm.grad(damped_spring(300), argnums=0), *args)
    tagged = [line for line in _accesses(c.llvm_ir) if "!alias.scope" in line]
    assert tagged and all("!noalias" in line for line in tagged)
    assert '!"raster.workspace @' in c.llvm_ir  # the scopes' domain, one per function
    np.testing.assert_allclose(c(*args), damped_spring_reference(*args, 300)[1], rtol=1e-12, atol=1e-14)


def test_arguments_and_views_are_not_tagged(tmp_path, monkeypatch):
    """Only accesses to a workspace buffer itself carry the claim: arguments (already noalias) do not."""
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x = np.arange(1.0, 9.0)
    c = rm.compile(lambda x: x * 2.0 + 1.0, x)  # one fused loop: reads the argument, writes the result
    assert not any("!alias.scope" in line for line in _accesses(c.llvm_ir))
    np.testing.assert_allclose(c(x), x * 2.0 + 1.0)


def test_functions_with_many_buffers_are_not_tagged(tmp_path, monkeypatch):
    """The metadata grows with the square of the buffer count: above the cap nothing is tagged (still right)."""
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(FunctionBodyEmitter, "MAX_TAGGED_BUFFERS", 1)
    rng = np.random.default_rng(1)
    args = (rng.random(8) + 1.0, rng.standard_normal(8), rng.standard_normal(8))
    c = rm.compile(rm.grad(damped_spring(20), argnums=0), *args)
    assert "!alias.scope" not in c.llvm_ir
    np.testing.assert_allclose(c(*args), damped_spring_reference(*args, 20)[1], rtol=1e-12, atol=1e-14)
