"""Compile time shown and kept down: the timing report, IR printed only when asked, verification policy."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import InsertBadFill

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.passes import registry


@pytest.fixture
def passes(monkeypatch):
    """A private copy of the pass registry, so passes registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    return registry


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path / "cache"))
    rm.clear_cache(disk=False)
    yield
    rm.clear_cache(disk=False)


def layer(W, x, b):
    return rm.sum(nn.relu(nn.dense(W, x, b)))


ARGS = (np.full((3, 4), 0.5), np.arange(4.0), np.ones(3))


def rows(report: str) -> list[str]:
    return [line.split("%  ")[-1] for line in report.splitlines() if "%  " in line]


def test_timing_report_covers_every_phase_of_a_cold_compile():
    c = rm.compile(rm.grad(layer), *ARGS)
    names = rows(c.timing_report())
    for phase in ("trace", "inline", "autodiff", "lower-to-loops", "fuse-loops", "LLVM IR emission",
                  "LLVM optimisation", "code generation", "Total"):  # fmt: skip
        assert phase in names, names
    assert any(n.startswith("verification") for n in names)
    assert any(n.startswith("cache") for n in names) and any(n.startswith("loading") for n in names)
    assert names.index("trace") < names.index("inline") < names.index("LLVM IR emission")
    # Work of the LLVM worker thread is shown beside, overlapped, outside the total (llvm_worker.py).
    lines = [line for line in c.timing_report().splitlines() if "%  " in line and "overlapped" not in line]
    seconds = [float(line.split()[0]) for line in lines]
    assert seconds[-1] == pytest.approx(sum(seconds[:-1]), abs=1e-3)


def test_a_cache_hit_shows_no_pass():
    rm.compile(layer, *ARGS)
    hit = rm.compile(layer, *ARGS)
    names = rows(hit.timing_report())
    assert hit.cache_source == "memory" and hit.pass_seconds == {}
    assert names[0] == "trace" and any(n.startswith("cache lookup") for n in names)
    assert not {"inline", "lower-to-loops", "fuse-loops", "LLVM optimisation"} & set(names)


def test_train_step_and_data_loop_reports():
    rng = np.random.default_rng(0)
    W1, b1, W2, b2 = rng.normal(size=(6, 4)), np.zeros(6), rng.normal(size=(3, 6)), np.zeros(3)

    def loss(W1, b1, W2, b2, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)

    step = rm.compile_train_step(loss, params=(0, 1, 2, 3))
    step(W1, b1, W2, b2, rng.normal(size=4), np.eye(3)[0])
    assert "fuse-loops" in rows(step.timing_report())
    step.run(W1, b1, W2, b2, rng.normal(size=(5, 4)), np.eye(3)[[0, 1, 2, 0, 1]])
    assert "data-loop" in rows(step.run_timing_report())


def test_plain_jit_call_prints_no_ir(capsys):
    f = rm.jit(layer)
    f(*ARGS)
    c = f.lower(*ARGS)
    assert c.pipeline.stages == {}  # no stage was printed
    assert not any(n.startswith("IR printing") for n in rows(c.timing_report()))
    assert capsys.readouterr().out == ""
    # Asked for, a stage is computed then (the pipeline re-runs, recording).
    assert "scf.for" in c.ir("after:fuse-loops") and "raster.dense" in c.ir("after:inline")
    assert any(n.startswith("pipeline re-run for inspection") for n in rows(c.timing_report()))


def test_dump_options_still_print_every_stage(tmp_path, capsys):
    c = rm.compile(layer, *ARGS, print_ir_after_all=True, dump_dir=tmp_path / "dump")
    out = capsys.readouterr().out
    assert out.count("// -----// IR Dump After") == len(c.stages) - 1
    assert len(list((tmp_path / "dump").glob("*.mlir"))) == 2 * len(c.stages) - 1  # the first, then before/after each pass
    assert c.ir("after:fuse-loops") in out
    assert any(n.startswith("IR printing") for n in rows(c.timing_report()))  # the cost of asking shows


def test_default_verification_is_before_lowering_and_at_the_end(monkeypatch):
    monkeypatch.delenv("RASTER_MLIR_VERIFY_EACH", raising=False)
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")
    names = rows(rm.compile(layer, *ARGS).timing_report())
    assert "verification (2x)" in names  # the tensor-level IR before lower-to-loops, and the final IR
    monkeypatch.setenv("RASTER_MLIR_VERIFY_EACH", "1")
    names = rows(rm.compile(layer, *ARGS).timing_report())
    assert any(n.startswith("verification (") for n in names)
    names = rows(rm.compile(layer, *ARGS, verify_each=False).timing_report())
    assert not any(n.startswith("verification") for n in names)


@pytest.mark.parametrize("then", ["inline", "inline,lower-to-loops"])
def test_deferred_verification_still_names_the_pass(passes, monkeypatch, then):
    """A pass producing invalid IR is named, whether the pipeline ends or a later pass fails on its IR."""
    monkeypatch.delenv("RASTER_MLIR_VERIFY_EACH", raising=False)
    passes.register_pass(InsertBadFill)
    x = np.ones(3)
    with pytest.raises(rm.CompileError, match="IR does not verify after pass insert-bad-fill"):
        rm.compile(lambda a, b: nn.relu(a + b), x, x, pipeline=f"inline,insert-bad-fill,{then}")
