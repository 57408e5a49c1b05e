"""A pass that fails reports a CompileError naming the pass, the op and its location, never a bare error.

- a crash inside a pass (a walk over the ops, or an xDSL rewrite pattern) names
  the op the failing code held and the source line of that op;
- every pass of raster_mlir, applied straight to the IR of every stage of the
  seed's MLP (tensor-level and loop-level, whether or not the pass expects it),
  either works or raises a RasterError: no KeyError, AttributeError... escapes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from xdsl.dialects import builtin
from xdsl.parser import Parser
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern

import raster_mlir as rm
from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import StagedPipeline, make_context
from raster_mlir.passes import registry
from raster_mlir.passes.registry import RASTER_PASSES

from helpers import mlp_loss

MODEL = textwrap.dedent(
    """\
    func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
      %a = raster.neg %x : tensor<3xf64> loc("model.py":3:7)
      %b = raster.exp %a : tensor<3xf64> loc("model.py":4:7)
      func.return %b : tensor<3xf64>
    }
    """
)


@dataclass(frozen=True)
class LookupEachOp(ModulePass):
    """Looks each op up in a table that lacks raster.exp (a typical bug: a recipe table without the op)."""

    name = "lookup-each-op"

    def apply(self, ctx, op):
        table = {"raster.neg": 1, "func.return": 2}
        for inner in op.walk():
            if inner.name.startswith("raster."):
                table[inner.name]


class CrashOnNeg(RewritePattern):
    def match_and_rewrite(self, op, rewriter: PatternRewriter):
        if op.name == "raster.neg":
            op.operands[7]


@dataclass(frozen=True)
class CrashingPatterns(ModulePass):
    name = "crashing-patterns"

    def apply(self, ctx, op):
        PatternRewriteWalker(CrashOnNeg()).rewrite_module(op)


@dataclass(frozen=True)
class DivideByZero(ModulePass):
    name = "divide-by-zero"

    def apply(self, ctx, op):
        1 / 0


@pytest.fixture
def passes(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    for p in (LookupEachOp, CrashingPatterns, DivideByZero):
        registry.register_pass(p)


def parse(text: str):
    return Parser(make_context(), text).parse_module()


def test_a_crash_in_a_walk_names_the_op_and_its_line(passes):
    with pytest.raises(rm.CompileError) as info:
        StagedPipeline("inline,lookup-each-op").run(parse(MODEL))
    message = str(info.value)
    assert message.startswith("pass lookup-each-op failed at raster.exp: KeyError: 'raster.exp'"), message
    assert "at model.py:4" in message
    assert isinstance(info.value.__cause__, KeyError)  # the original traceback stays reachable


def test_a_crash_in_a_rewrite_pattern_names_the_op(passes):
    with pytest.raises(rm.CompileError, match=r"^pass crashing-patterns failed at raster\.neg: IndexError") as info:
        StagedPipeline("crashing-patterns").run(parse(MODEL))
    assert "at model.py:3" in str(info.value)


def test_a_crash_with_no_op_in_hand_names_the_pass(passes):
    with pytest.raises(rm.CompileError) as info:
        StagedPipeline("divide-by-zero").run(parse(MODEL))
    assert str(info.value) == "pass divide-by-zero failed: ZeroDivisionError: division by zero"


def test_raster_opt_reports_the_crash_in_one_line_per_fact(passes, tmp_path, capsys):
    path = tmp_path / "model.mlir"
    path.write_text(MODEL)
    assert raster_opt_main([str(path), "-p", "lookup-each-op"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("raster-opt: error: pass lookup-each-op failed at raster.exp: KeyError"), err
    assert "Traceback" not in err


def seed_stages() -> dict[str, str]:
    rng = np.random.default_rng(0)
    args = (rng.normal(0, 0.5, (8, 4)), np.zeros(8), rng.normal(0, 0.5, (3, 8)), np.zeros(3),
            np.array([0.5, -1.0, 0.25, 2.0]), np.array([0.0, 1.0, 0.0]))  # fmt: skip
    c = rm.compile(rm.value_and_grad(mlp_loss), *args)
    return {stage: c.ir(stage) for stage in ("traced", "after:autodiff", c.stages[-1])}  # calls, tensors, loops


def test_every_pass_on_every_kind_of_stage_works_or_raises_a_raster_error():
    """Each pass's own `apply` (not the pipeline's wrapper): a failure must already be a RasterError."""
    stages = seed_stages()
    failures = []
    for name in sorted(RASTER_PASSES):
        for stage, text in stages.items():
            module = parse(text)
            try:
                RASTER_PASSES[name]()().apply(make_context(), module)
            except rm.RasterError:
                continue
            except Exception as e:  # noqa: BLE001 - what this test looks for
                failures.append(f"{name} on {stage}: {type(e).__name__}: {e}"[:300])
                continue
            assert isinstance(module, builtin.ModuleOp)
    assert not failures, "\n".join(failures)
