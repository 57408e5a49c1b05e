"""op_verifier.verify_ops: xDSL's verdicts and messages, with each IRDL signature's constraints checked once.

- broken IR (wrong result types, missing properties, bad terminators, a bad op
  after valid ops of the same class) fails with exactly the message of
  xDSL's `module.verify()`; valid loop-level IR of a train step verifies;
- the constraints of a chain of identical ops are checked once, of ops
  differing in types once per type (a deterministic work count);
- with the IsolatedFromAbove trait left to the dominance check
  (`verify_module`), a function using a value defined outside it is still
  refused.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import Float64Type, FloatAttr, ModuleOp, f64
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

import raster_mlir as rm
from raster_mlir import op_verifier
from raster_mlir.compiler import make_context
from raster_mlir.verifier import verify_module


def parse(text: str) -> ModuleOp:
    return Parser(make_context(), textwrap.dedent(text)).parse_module()


def xdsl_message(module: ModuleOp) -> str:
    with pytest.raises(VerifyException) as info:
        module.verify()
    return str(info.value)


BROKEN = {
    "a raster op with the wrong result shape after valid ones": """\
        func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {
          %a = raster.neg %x : tensor<3xf64>
          %b = raster.neg %a : tensor<3xf64>
          %c = "raster.neg"(%b) : (tensor<3xf64>) -> tensor<4xf64>
          func.return %b : tensor<3xf64>
        }
        """,
    "an arith op whose result type differs from its operands after valid ones": """\
        func.func @f(%x: f64, %y: f64) -> f64 {
          %a = arith.addf %x, %y : f64
          %b = arith.addf %a, %y : f64
          %c = "arith.addf"(%a, %b) <{"fastmath" = #arith.fastmath<none>}> : (f64, f64) -> f32
          func.return %b : f64
        }
        """,
    "a missing property after a valid op of the same class": """\
        func.func @f(%x: f64, %y: f64) -> f64 {
          %a = arith.addf %x, %y : f64
          %c = "arith.cmpf"(%a, %y) <{"predicate" = 2 : i64, "fastmath" = #arith.fastmath<none>}> : (f64, f64) -> i1
          %d = "arith.cmpf"(%a, %y) <{"fastmath" = #arith.fastmath<none>}> : (f64, f64) -> i1
          func.return %a : f64
        }
        """,
    "a vector.load whose element type is not its memref's after valid loads": """\
        func.func @f(%m: memref<8xf64>, %i: index) -> vector<4xf64> {
          %a = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %b = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %c = vector.load %m[%i] : memref<8xf64>, vector<4xf32>
          func.return %a : vector<4xf64>
        }
        """,
    "a vector.store with too few indices after valid stores": """\
        func.func @f(%m: memref<8x8xf64>, %v: vector<4xf64>, %i: index) {
          vector.store %v, %m[%i, %i] : memref<8x8xf64>, vector<4xf64>
          vector.store %v, %m[%i, %i] : memref<8x8xf64>, vector<4xf64>
          vector.store %v, %m[%i] : memref<8x8xf64>, vector<4xf64>
          func.return
        }
        """,
    "a block that does not end with a terminator": """\
        func.func @f(%x: f64) -> f64 {
          %a = arith.negf %x : f64
        }
        """,
    "a return of the wrong type": """\
        func.func @f(%x: f64) -> f32 {
          %a = arith.negf %x : f64
          func.return %a : f64
        }
        """,
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_ir_fails_with_xdsls_message(case):
    module = parse(BROKEN[case])
    want = xdsl_message(module)
    with pytest.raises(VerifyException) as info:
        op_verifier.verify_ops(module)
    assert str(info.value) == want
    with pytest.raises(VerifyException) as info:
        op_verifier.verify_ops(module, dominance_follows=True)
    assert str(info.value) == want


def test_a_train_steps_loop_level_ir_verifies():
    rng = np.random.default_rng(0)
    W, b, x, y = rng.normal(size=(4, 6)), np.zeros(4), rng.normal(size=6), np.eye(4)[1]

    def loss(W, b, x, y):
        return rm.nn.cross_entropy(rm.nn.softmax(rm.nn.relu(rm.nn.dense(W, x, b))), y)

    c = rm.compile(rm.grad(loss, argnums=(0, 1)), W, b, x, y)
    for module in (c.final_module, c.reference_module):
        module.verify()
        op_verifier.verify_ops(module)
        verify_module(module)


def count_constraint_checks(monkeypatch) -> list:
    checked = []
    original = op_verifier._verify_constraints

    def counting(op_def, op):
        checked.append(op.name)
        original(op_def, op)

    monkeypatch.setattr(op_verifier, "_verify_constraints", counting)
    return checked


@pytest.mark.parametrize("length", [10, 100, 1000])
def test_constraints_are_checked_once_per_signature(monkeypatch, length):
    lines = [f"%v{i + 1} = raster.neg %v{i} : tensor<3xf64>" for i in range(length)]
    lines += [f"%w{i + 1} = raster.neg %w{i} : tensor<5xf32>" for i in range(length)]
    body = "\n".join(lines).replace("%v0", "%x").replace("%w0", "%y")
    module = parse(
        f"func.func @f(%x: tensor<3xf64>, %y: tensor<5xf32>) {{\n{body}\nfunc.return\n}}\n"
    )
    checked = count_constraint_checks(monkeypatch)
    op_verifier.verify_ops(module)
    # the module, the function, its return, and raster.neg on each of the two types
    assert sorted(checked) == sorted(["builtin.module", "func.func", "func.return", "raster.neg", "raster.neg"])


def count_custom_verifiers(monkeypatch) -> list:
    ran = []
    original = op_verifier._generated_parts

    def counting(cls):
        parts = original(cls)
        if parts is None or parts[1] is None:
            return parts
        op_def, custom = parts

        def counted(op):
            ran.append(op.name)
            custom(op)

        return op_def, counted

    monkeypatch.setattr(op_verifier, "_generated_parts", counting)
    return ran


def test_signature_only_custom_verifiers_run_once_per_signature(monkeypatch):
    """vector.load's verifier reads the signature alone: once per signature; scf.for's reads its
    body's yield: on every loop."""
    module = parse(
        """\
        func.func @f(%m: memref<8xf64>, %n: memref<8xf32>, %i: index) {
          %a = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %b = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %c = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %d = vector.load %n[%i] : memref<8xf32>, vector<4xf32>
          scf.for %j = %i to %i step %i {
            scf.yield
          }
          scf.for %k = %i to %i step %i {
            scf.yield
          }
          func.return
        }
        """
    )
    ran = count_custom_verifiers(monkeypatch)
    op_verifier.verify_ops(module)
    counted = [name for name in ran if name in ("scf.for", "vector.load")]
    assert sorted(counted) == ["scf.for", "scf.for", "vector.load", "vector.load"]


def test_a_use_from_outside_an_isolated_function_is_refused():
    """The IsolatedFromAbove walk is left to verify_module's dominance check, which refuses it."""
    outside = arith.ConstantOp(FloatAttr(1.0, f64))
    block = Block(arg_types=[f64])
    block.add_ops([add := arith.AddfOp(block.args[0], outside.result), func.ReturnOp(add.result)])
    function = func.FuncOp("f", ((f64,), (f64,)), Region(block))
    module = ModuleOp([outside, function])
    assert isinstance(outside.result.type, Float64Type)
    with pytest.raises(VerifyException):
        module.verify()
    op_verifier.verify_ops(module, dominance_follows=True)  # the trait is skipped ...
    with pytest.raises(rm.CompileError, match="arith.addf uses"):
        verify_module(module)  # ... and the dominance check catches the use
