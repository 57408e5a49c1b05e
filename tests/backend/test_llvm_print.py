"""llvm_print.module_text prints exactly what llvmlite's `str(module)` prints.

The emitter's modules of representative programs (a train step with segments, a
time loop's gradient, an unrolled ODE's gradient, f32 vector maths with jam, a
softmax, calls between functions) and a hand-built module with the rarer forms
(flags, call attributes, tail calls, vararg callees, metadata, instructions the
printer leaves to llvmlite) are printed both ways and compared byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_programs import load
from helpers import damped_spring, unrolled_spring
from llvmlite import ir

import raster_mlir as rm
from raster_mlir import backend, optim
from raster_mlir.backend import emit_module, llvm_emit
from raster_mlir.backend.llvm_print import function_text, module_text
from raster_mlir.backend.part_handoff import SegmentHandOff


@pytest.fixture
def emitted_modules(monkeypatch):
    """The llvmlite modules the emitter builds while the test runs (no cache, so every compile emits)."""
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")
    monkeypatch.setattr(backend, "release_module", lambda llmod: None)  # kept whole for the test to print
    modules = []

    def keep(module):
        modules.append(module)
        return _real_module_text(module)

    def keep_handed_off(handoff, module):  # a compile's module, printed by part_handoff (same printers)
        modules.append(module)
        return _real_handoff_text(handoff, module)

    monkeypatch.setattr(llvm_emit, "module_text", keep)
    monkeypatch.setattr(SegmentHandOff, "module_text", keep_handed_off)
    return modules


_real_module_text = module_text
_real_handoff_text = SegmentHandOff.module_text


def _mlp_loss(w1, b1, w2, b2, x, y):
    logits = rm.tanh(w1 @ x + b1)
    logits = w2 @ logits + b2
    return -rm.sum(y * (logits - rm.log(rm.sum(rm.exp(logits - rm.max(logits)))) - rm.max(logits)))


def _programs():
    rng = np.random.default_rng(0)
    f32 = np.float32
    params = [rm.aligned(a) for a in (rng.random((16, 24)), rng.random(16), rng.random((5, 16)), rng.random(5))]
    step = rm.compile_train_step(_mlp_loss, params=(0, 1, 2, 3), optimizer=optim.SGD(lr=0.01))
    step(*params, rng.random(24), np.eye(5)[2])
    rm.jit(rm.grad(damped_spring(20)))(1.5, rng.random(8), rng.random(8))
    rm.jit(rm.grad(unrolled_spring(12)))(rng.random(16), rng.random(16))
    rm.jit(lambda a, b: rm.sum(rm.tanh(a @ b) * 2.0))(rng.random((16, 33)).astype(f32), rng.random((33, 7)).astype(f32))
    rm.jit(lambda x: rm.exp(x - rm.max(x)) / rm.sum(rm.exp(x - rm.max(x))))(rng.random(100))
    emit_module(load("calls", "f64", N=4), ["entry"])
    emit_module(load("prefix_sum", "f64", N=100), ["cumsum"])


def test_emitted_modules_print_as_llvmlite_prints_them(emitted_modules):
    _programs()
    assert len(emitted_modules) >= 7
    kinds = set()
    for module in emitted_modules:
        ours = module_text(module)  # first: llvmlite's string caches are still empty
        assert ours == str(module)
        kinds.update(type(i).__name__ for f in module.functions for b in f.blocks for i in b.instructions)
    assert {"GEPInstr", "CallInstr", "PhiInstr", "ConditionalBranch", "ICMPInstr", "FCMPInstr"} <= kinds


def test_rare_forms_print_as_llvmlite_prints_them():
    module = ir.Module(name="rare")
    module.triple = "x86_64-unknown-linux-gnu"
    f64, i64, i1, ptr = ir.DoubleType(), ir.IntType(64), ir.IntType(1), ir.PointerType()
    vararg = ir.Function(module, ir.FunctionType(i64, [ptr], var_arg=True), name="printf")
    callee = ir.Function(module, ir.FunctionType(f64, [f64, ptr]), name="callee")
    callee.calling_convention = "fastcc"
    fn = ir.Function(module, ir.FunctionType(f64, [f64, ptr, i64]), name='odd "name"')
    x, p, n = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    loop = fn.append_basic_block("1 not simple")
    done = fn.append_basic_block()
    other = fn.append_basic_block("other")
    b.call(vararg, [p, x], tail="musttail")
    call = b.call(callee, [x, p], fastmath=("nnan", "fast"), attrs=("nounwind",), arg_attrs={1: ("noalias",)}, cconv="fastcc")
    call.set_metadata("note", module.add_metadata([ir.MetaDataString(module, "text"), ir.Constant(i64, 3)]))
    b.gep(p, [], inbounds=False, source_etype=f64)
    load = b.load(p, typ=f64)
    b.store(load, p)
    b.select(b.fcmp_unordered("uno", x, load, flags=("nnan",)), x, load, flags=("nnan",))
    slot = b.alloca(f64, size=n)
    b.alloca(ir.ArrayType(f64, 4))
    vec = b.insert_element(ir.Constant(ir.VectorType(f64, 2), None), x, ir.Constant(i64, 0))
    b.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(ir.IntType(32), 2), [1, 0]))
    b.extract_element(vec, ir.Constant(i64, 1))
    agg = b.insert_value(ir.Constant(ir.LiteralStructType([f64, i64]), None), x, 0)
    b.extract_value(agg, [1])
    b.fadd(x, x, flags=("reassoc",), name="named")
    b.fadd(x, x, name="named")
    b.fadd(x, x, name='quoted "name" \\ back')  # a reference llvmlite escapes
    b.store(b.load(slot, typ=f64, align=8), slot, align=8)
    b.switch(n, other).add_case(2, loop)
    b.position_at_end(loop)
    phi = b.phi(f64, flags=("nnan",))
    phi.add_incoming(x, fn.blocks[0])
    b.cbranch(ir.Constant(i1, 1), done, other).set_weights([5, 1])
    b.position_at_end(done)
    b.ret(phi)
    b.position_at_end(other)
    b.unreachable()
    module.add_metadata([ir.Constant(ir.MetaDataType(), None), ir.Constant(f64, 1.5)])
    module.add_named_metadata("named", [ir.MetaDataString(module, "n")])
    ir.GlobalVariable(module, i64, name="g").initializer = ir.Constant(i64, 7)
    ours = module_text(module)
    assert ours == str(module)
    assert function_text(fn) == str(fn)
    # A line llvmlite printed already comes from its cache, as in `str`.
    assert module_text(module) == ours
