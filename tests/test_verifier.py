"""Verification between passes catches broken SSA (raster_mlir/verifier.py), and passes fail cleanly.

- a value used before its definition, a value used outside the region that
  defines it, and a use in a block its definition does not dominate (cf
  branches) are CompileErrors naming the pass, the op and the value;
- valid IR of several blocks (loops after convert-scf-to-cf) verifies;
- raster-opt refuses such input in one line; a pass that crashes on IR that
  was let through (verify_each=False) is a CompileError naming the pass, and
  lower-to-loops names the op whose operand has no value;
- the check is linear: ten times the ops cost about ten times the work (function calls).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import count_calls
from xdsl.dialects import func, scf
from xdsl.parser import Parser
from xdsl.passes import ModulePass

import raster_mlir as rm
from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import DEFAULT_PIPELINE, DumpOptions, StagedPipeline, make_context
from raster_mlir.passes import registry
from raster_mlir.verifier import dominance_problem, verify_module

CHAIN = textwrap.dedent(
    """\
    func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
      %a = raster.neg %x : tensor<3xf64>
      %b = raster.exp %a : tensor<3xf64>
      func.return %b : tensor<3xf64>
    }
    """
)


def parse(text: str):
    return Parser(make_context(), textwrap.dedent(text)).parse_module()


@dataclass(frozen=True)
class SwapFirstTwoOps(ModulePass):
    """Moves a function's first op after its second: the second now uses a value defined after it."""

    name = "swap-first-two-ops"

    def apply(self, ctx, op):
        f = next(o for o in op.ops if isinstance(o, func.FuncOp))
        first = f.body.block.first_op
        first.detach()
        f.body.block.insert_op_after(first, f.body.block.first_op)


@dataclass(frozen=True)
class CopyStoreAfterLoop(ModulePass):
    """Puts a copy of the first loop's store after the loop: it uses values of the loop body."""

    name = "copy-store-after-loop"

    def apply(self, ctx, op):
        loop = next(o for o in op.walk() if isinstance(o, scf.ForOp))
        store = next(o for o in loop.body.block.ops if o.name == "memref.store")
        loop.parent_block().insert_op_after(store.clone(), loop)


@pytest.fixture
def passes(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    registry.register_pass(SwapFirstTwoOps)
    registry.register_pass(CopyStoreAfterLoop)
    return registry


def test_use_before_definition_names_the_pass_the_op_and_the_value(passes):
    with pytest.raises(rm.CompileError) as info:
        StagedPipeline("swap-first-two-ops").run(parse(CHAIN))
    message = str(info.value)
    assert "after pass swap-first-two-ops" in message
    assert "raster.exp uses %a (a result of raster.neg) before its definition" in message


def test_value_escaping_its_region(passes):
    module = parse(CHAIN)
    StagedPipeline("lower-to-loops").run(module)
    with pytest.raises(rm.CompileError, match=r"after pass copy-store-after-loop: memref.store uses .* outside the region"):
        StagedPipeline("copy-store-after-loop").run(module)


def test_the_location_of_the_op_is_named(passes):
    def f(x):
        return rm.exp(-x)  # <use>

    with pytest.raises(rm.CompileError, match=r"test_verifier.py:\d+: return rm.exp\(-x\)  # <use>"):
        rm.compile(f, np.ones(3), pipeline="swap-first-two-ops")


def test_verify_each_false_lets_it_through_and_lower_to_loops_names_the_op(passes):
    with pytest.raises(rm.CompileError) as info:
        StagedPipeline("swap-first-two-ops,lower-to-loops", DumpOptions(verify_each=False)).run(parse(CHAIN))
    message = str(info.value)
    assert "lower-to-loops" in message and "raster.exp" in message and "KeyError" not in message


BRANCHES = """
    func.func @f(%c: i1, %x: f64) -> f64 {
      cf.cond_br %c, ^left, ^right
    ^left:
      %a = arith.addf %x, %x : f64
      cf.br ^join(%a : f64)
    ^right:
      cf.br ^join(%x : f64)
    ^join(%r: f64):
      %s = arith.mulf %r, %USED : f64
      func.return %s : f64
    }
"""


def test_branches_verify_along_the_dominator_tree():
    assert dominance_problem(parse(BRANCHES.replace("%USED", "%x"))) is None
    problem = dominance_problem(parse(BRANCHES.replace("%USED", "%a")))
    assert problem == "arith.mulf uses %a (a result of arith.addf) in a block its definition does not dominate"


def test_loops_after_convert_scf_to_cf_verify():
    x = np.arange(12.0).reshape(3, 4)
    c = rm.compile(lambda a: rm.sum(rm.exp(a), axis=1), x, pipeline=DEFAULT_PIPELINE + ",convert-scf-to-cf")
    verify_module(parse(c.ir()))
    np.testing.assert_allclose(c(x), np.exp(x).sum(axis=1))


def test_raster_opt_refuses_a_use_before_definition(tmp_path, capsys):
    path = tmp_path / "bad.mlir"
    path.write_text(CHAIN.replace("%a = raster.neg %x", "%a = raster.neg %b"))
    assert raster_opt_main([str(path), "-p", ""]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("raster-opt: error: IR does not verify: raster.neg uses %b (a result of raster.exp) before its definition")


def test_a_pass_that_crashes_is_a_compile_error_naming_it(passes):
    @passes.register_pass
    @dataclass(frozen=True)
    class Crash(ModulePass):
        name = "crash"

        def apply(self, ctx, op):
            {}["missing"]

    with pytest.raises(rm.CompileError, match=r"pass crash failed: KeyError: 'missing'"):
        StagedPipeline("crash").run(parse(CHAIN))


def chain_module(n: int):
    lines = [f"  %v{i + 1} = raster.neg %v{i} : tensor<3xf64>" for i in range(n)]
    return parse("func.func @f(%v0: tensor<3xf64>) -> tensor<3xf64> {\n" + "\n".join(lines) + f"\n  func.return %v{n} : tensor<3xf64>\n}}\n")


def test_the_check_is_linear():
    """Work, not wall time (the machine is shared): the function calls the check makes per op stay flat."""
    small, large = chain_module(2000), chain_module(20000)

    def calls(module):
        problems = []
        work = count_calls(lambda: problems.append(dominance_problem(module)))
        assert problems == [None]
        return work

    assert calls(large) < 12 * calls(small)  # 10x the ops; quadratic would be 100x
