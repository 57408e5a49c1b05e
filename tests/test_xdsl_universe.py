"""Upstream `xdsl-opt` speaks raster IR through the `xdsl.universe` entry point.

Checks the installed entry point (the raster dialect and raster_mlir's own
passes, no name clash with xDSL's), then runs the real `xdsl-opt` (xDSL's
console-script module, under this interpreter so it sees this installation):
- on every stage the default pipeline records for the seed's MLP (its loss,
  its value_and_grad and its train step): xdsl-opt prints each one back
  exactly as raster_mlir printed it;
- with raster_mlir's passes: `xdsl-opt -p <default pipeline>` on the traced
  IR gives the IR `rm.compile` ends with;
- on the lit corpus (tests/filecheck/, tests/autodiff/filecheck/,
  docs/example_passes/): every input prints back as `raster-opt -p ''`
  prints it, the inputs raster-opt refuses are refused, and every RUN line
  of the form `raster-opt %s -p PIPELINE | filecheck` whose passes xdsl-opt
  knows gives the same output under xdsl-opt.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
from xdsl.universe import Universe

import raster_mlir as rm
from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import DEFAULT_PIPELINE
from raster_mlir.passes.registry import RASTER_PASSES, XDSL_PASSES

from helpers import mlp_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = sorted(
    glob.glob(os.path.join(ROOT, "tests", "filecheck", "**", "*.mlir"), recursive=True)
    + glob.glob(os.path.join(ROOT, "tests", "autodiff", "filecheck", "*.mlir"))
    + glob.glob(os.path.join(ROOT, "docs", "example_passes", "*.mlir"))
)
SPLIT = "// -----\n"


def xdsl_opt(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Upstream xdsl-opt (`xdsl.tools.xdsl_opt`, its console script's module) under this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "xdsl.tools.xdsl_opt", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def seed_mlp_args():
    rng = np.random.default_rng(0)
    return (rng.normal(0, 0.5, (8, 4)), np.zeros(8), rng.normal(0, 0.5, (3, 8)), np.zeros(3),
            np.array([0.5, -1.0, 0.25, 2.0]), np.array([0.0, 1.0, 0.0]))  # fmt: skip


def test_entry_point_gives_the_raster_dialect_and_our_passes_only():
    ours = [ep for ep in entry_points(group="xdsl.universe") if ep.value.startswith("raster_mlir.")]
    assert len(ours) == 1, "the xdsl.universe entry point is not installed: re-run `pip install --no-deps -e .`"
    (ep,) = ours
    universe = ep.load()
    assert set(universe.all_dialects) == {"raster"}
    assert universe.all_dialects["raster"]().name == "raster"
    assert set(universe.all_passes) == set(RASTER_PASSES)
    assert not set(universe.all_passes) & set(XDSL_PASSES)
    multiverse = Universe.get_multiverse()  # raises on any clash of names between universes
    assert "raster" in multiverse.all_dialects and "canonicalize" in multiverse.all_passes
    for name in RASTER_PASSES:
        assert multiverse.all_passes[name]().name == name


def test_xdsl_opt_prints_back_every_stage_of_the_seed_mlp():
    args = seed_mlp_args()
    stages = {}
    for label, fn in (("loss", mlp_loss), ("value_and_grad", rm.value_and_grad(mlp_loss))):
        c = rm.compile(fn, *args)
        stages.update({f"{label} {s}": c.ir(s) for s in c.stages})
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    step(*(a.copy() for a in args))
    stages.update({f"train step {s}": step.ir(s) for s in step.stages})
    assert len(stages) >= 30 and any("scf.for" in t for t in stages.values())

    result = xdsl_opt("--split-input-file", stdin=SPLIT.join(stages.values()))
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.split(SPLIT)
    assert len(printed) == len(stages)
    for (name, ours), theirs in zip(stages.items(), printed):
        assert theirs.strip() == ours.strip(), f"xdsl-opt prints stage {name} differently"


def test_xdsl_opt_runs_the_default_pipeline_like_rm_compile():
    args = seed_mlp_args()
    c = rm.compile(rm.value_and_grad(mlp_loss), *args)
    result = xdsl_opt("-p", DEFAULT_PIPELINE, stdin=c.ir("traced"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == c.ir().strip()
    assert "scf.for" in result.stdout and not re.search(r"= raster\.", result.stdout)


def xdsl_opt_in_process(tmp_path, *argv: str) -> tuple[bool, str]:
    """xdsl-opt's own driver class in this process (no interpreter start-up per file): (ok, output)."""
    from xdsl.xdsl_opt_main import xDSLOptMain

    out = tmp_path / "xdsl-opt.out"
    try:
        xDSLOptMain(args=[*argv, "-o", str(out)]).run()
    except Exception as e:  # a parse or verification error: what xdsl-opt reports and exits with
        return False, f"{type(e).__name__}: {e}"
    return True, out.read_text()


def raster_opt(capsys, *argv: str) -> tuple[int, str]:
    code = raster_opt_main(list(argv))
    out, _ = capsys.readouterr()
    return code, out


PLAIN_RUN = re.compile(r"^// RUN: raster-opt %s -p (\S+|'[^']*')\s*\|\s*filecheck %s.*$", re.M)


def plain_pipelines(text: str) -> list[str]:
    """Pipelines of the RUN lines that only run passes and check the printed IR."""
    return [shlex.split(spec)[0] for spec in PLAIN_RUN.findall(text)]


def test_the_lit_corpus_is_found():
    assert len(CORPUS) >= 25
    assert sum(bool(plain_pipelines(open(p).read())) for p in CORPUS) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: os.path.relpath(p, ROOT))
def test_xdsl_opt_on_the_lit_corpus(path, capsys, tmp_path):
    text = open(path).read()
    code, ours = raster_opt(capsys, path, "-p", "")
    runs = [spec for spec in plain_pipelines(text) if all(p.split("{")[0] in XDSL_PASSES or
                                                          p.split("{")[0] in RASTER_PASSES
                                                          for p in re.split(r",(?![^{]*\})", spec))]  # fmt: skip
    inputs = [("", ours, code)]
    for spec in runs:
        code_p, out_p = raster_opt(capsys, path, "-p", spec)
        inputs.append((spec, out_p, code_p))
    for spec, expected, expected_code in inputs:
        ok, out = xdsl_opt_in_process(tmp_path, path, *(["-p", spec] if spec else []))
        if expected_code != 0:
            assert not ok, f"xdsl-opt accepts what raster-opt refuses: -p {spec!r}"
            continue
        assert ok, f"-p {spec!r}: {out[-3000:]}"
        assert out.strip() == expected.strip(), f"xdsl-opt -p {spec!r} differs from raster-opt"
