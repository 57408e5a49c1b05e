"""What the emitter shares between instructions and modules prints exactly as what it replaces.

Shared constants (llvm_types.shared_constant / splat_constant) stand for `ir.Constant`s built
per use; the flat walks (ir_walk) follow xDSL's `_next_op` field instead of its `next_op`
property. Both must give the same text / the same ops as before, whatever the value.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from raster_mlir import ir_walk
from raster_mlir.backend import llvm_types
from raster_mlir.backend.llvm_types import shared_constant, splat_constant

F64, F32, I64, I32 = ir.DoubleType(), ir.FloatType(), ir.IntType(64), ir.IntType(32)


@settings(deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True), as_f32=st.booleans(), lanes=st.sampled_from([2, 4, 8]))
def test_shared_float_constants_print_as_new_ones(value, as_f32, lanes):
    ty = F32 if as_f32 else F64
    assert str(shared_constant(ty, value)) == str(ir.Constant(ty, value))
    vector = ir.VectorType(ty, lanes)
    assert str(splat_constant(vector, value)) == str(ir.Constant(vector, [ir.Constant(ty, value)] * lanes))


@settings(deadline=None)
@given(value=st.integers(-(2**63), 2**63 - 1))
def test_shared_integer_constants_print_as_new_ones(value):
    assert str(shared_constant(I64, value)) == str(ir.Constant(I64, value))
    assert str(splat_constant(ir.VectorType(I64, 8), value)) == str(ir.Constant(ir.VectorType(I64, 8), [value] * 8))


def test_values_that_compare_equal_but_print_differently_are_not_confused():
    # -0.0 == 0.0 and they hash alike: the key is the repr
    assert str(shared_constant(F64, -0.0)) != str(shared_constant(F64, 0.0))
    assert str(shared_constant(F64, -0.0)) == str(ir.Constant(F64, -0.0))
    assert shared_constant(F64, math.inf) is shared_constant(F64, math.inf)
    assert shared_constant(F64, 1.5) is not shared_constant(F32, 1.5)
    undef = splat_constant(ir.VectorType(F64, 8), ir.Undefined)
    assert str(undef) == str(ir.Constant(ir.VectorType(F64, 8), ir.Undefined))


def test_nans_of_different_bits_are_not_confused():
    # every NaN's repr is 'nan': the key is the bits, which ir.Constant prints
    import struct

    payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
    shared_constant(F64, math.nan)
    splat_constant(ir.VectorType(F64, 4), math.nan)
    for value in (-math.nan, payload):
        assert str(shared_constant(F64, value)) == str(ir.Constant(F64, value))
        vector = ir.VectorType(F64, 4)
        assert str(splat_constant(vector, value)) == str(ir.Constant(vector, [ir.Constant(F64, value)] * 4))
    assert str(shared_constant(F64, -math.nan)) == "double 0xfff8000000000000"


def test_the_shared_constants_stay_bounded(monkeypatch):
    monkeypatch.setattr(llvm_types, "MAX_SHARED_CONSTANTS", 10)
    for k in range(25):
        assert str(shared_constant(I64, 10_000 + k)) == f"i64 {10_000 + k}"
    assert len(llvm_types._CONSTANTS) <= 10


def _nested_module():
    from xdsl.context import Context
    from xdsl.dialects import arith, builtin, func, scf
    from xdsl.parser import Parser

    ctx = Context()
    for dialect in (arith.Arith, builtin.Builtin, func.Func, scf.Scf):
        ctx.load_dialect(dialect)
    text = """
    func.func @f(%n: index, %x: f64) -> f64 {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %r = scf.for %i = %c0 to %n step %c1 iter_args(%a = %x) -> (f64) {
        %s = scf.for %j = %c0 to %n step %c1 iter_args(%b = %a) -> (f64) {
          %t = arith.addf %b, %b : f64
          scf.yield %t : f64
        }
        %u = arith.mulf %s, %a : f64
        scf.yield %u : f64
      }
      func.return %r : f64
    }
    """
    return Parser(ctx, text).parse_module()


@pytest.mark.parametrize("by_property", [False, True])
def test_flat_walks_are_xdsl_walks(monkeypatch, by_property):
    if by_property:  # the fallback for an xDSL that keeps the link elsewhere
        monkeypatch.setattr(ir_walk, "_collect", ir_walk._collect_by_property)
        monkeypatch.setattr(ir_walk, "_HAS_NEXT_OP_FIELD", False)
    module = _nested_module()
    assert ir_walk.walk_ops(module) == list(module.walk())
    for op in module.walk():
        for region in op.regions:
            assert ir_walk.region_ops(region) == list(region.walk())
            for block in region.blocks:
                assert ir_walk.block_ops(block) == list(block.ops)
