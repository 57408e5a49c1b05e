"""Functions of several blocks: cf.br / cf.cond_br / cf.switch in the LLVM backend.

A hand-written program (corpus/branches.mlir: blocks out of dominance order,
an unreachable block, a cond_br reaching one block twice with different
arguments, a switch, a loop inside a multi-block function) against numpy;
upstream `convert-scf-to-cf` at the end of the default pipeline, from
`rm.compile` and from `raster-opt --emit=llvm`, against the default
pipeline; and the clean errors for what the backend refuses.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from backend_programs import source
from xdsl.parser import Parser

import raster_mlir as rm
from raster_mlir.backend import compile_module
from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import DEFAULT_PIPELINE, make_context

from helpers import mlp_loss


def parse(text: str):
    return Parser(make_context(), textwrap.dedent(text)).parse_module()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_branches_program_against_numpy(n):
    f = compile_module(parse(source("branches", N=n)), "branches")
    x = np.linspace(-3, 3, n)
    y, s = np.full(n, np.nan), np.empty(())
    f(x, y, s)
    i = np.arange(n)
    want = np.where(i % 3 == 0, 2 * x, np.where(i % 3 == 1, x + 1, np.maximum(x, 0)))
    np.testing.assert_array_equal(y, want)
    np.testing.assert_allclose(s, want.sum(), rtol=1e-14, atol=1e-14)


def test_convert_scf_to_cf_in_the_pipeline_end_to_end():
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(16, 8)), rng.normal(size=16), rng.normal(size=(3, 16)), rng.normal(size=3),
            rng.normal(size=(5, 8)), np.eye(3)[[0, 2, 1, 1, 0]])  # fmt: skip
    cf = rm.compile(rm.value_and_grad(mlp_loss), *args, pipeline=DEFAULT_PIPELINE + ",convert-scf-to-cf")
    plain = rm.compile(rm.value_and_grad(mlp_loss), *args)
    ir = cf.ir()
    assert "cf.cond_br" in ir and "cf.br" in ir and "scf.for" not in ir
    (loss, grads), (loss0, grads0) = cf(*args), plain(*args)
    np.testing.assert_allclose(loss, loss0, rtol=1e-12)
    for g, g0 in zip(grads, grads0):
        np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-12)


def test_raster_opt_emits_llvm_after_convert_scf_to_cf(tmp_path, capsys):
    path = tmp_path / "relu.mlir"
    path.write_text(
        textwrap.dedent(
            """\
            func.func @f(%x: tensor<4x3xf64>) -> tensor<4x3xf64> {
              %y = raster.relu %x : tensor<4x3xf64>
              func.return %y : tensor<4x3xf64>
            }
            """
        )
    )
    code = raster_opt_main([str(path), "-p", "lower-to-loops,convert-scf-to-cf", "--emit=llvm"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "phi" in out and "br i1" in out


UNREACHABLE_BLOCK = """
    func.func @f(%x: memref<4xf64>) {
      %c0 = arith.constant 0 : index
      cf.br ^bb1
    ^bb1:
      func.return
    ^bb2:
      cf.br ^bb1
    }
"""

MEMREF_THROUGH_A_BLOCK = """
    func.func @f(%x: memref<4xf64>, %y: memref<4xf64>) {
      %c0 = arith.constant 0 : index
      %v = arith.constant 1.0 : f64
      cf.br ^bb1(%y : memref<4xf64>)
    ^bb1(%m: memref<4xf64>):
      memref.store %v, %m[%c0] : memref<4xf64>
      func.return
    }
"""


def test_unreachable_block_is_not_emitted():
    f = compile_module(parse(UNREACHABLE_BLOCK), "f")
    f(np.zeros(4))


def test_memref_through_a_block_argument_is_a_compile_error():
    with pytest.raises(rm.CompileError, match="memref flows through a branch to another block"):
        compile_module(parse(MEMREF_THROUGH_A_BLOCK), "f")
