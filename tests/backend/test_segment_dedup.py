"""Kernel segments with the same code compiled once (segment_dedup.py)."""

from __future__ import annotations

import re

import numpy as np
from llvmlite import ir

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.backend import llvm_emit, segment_dedup
from raster_mlir.backend.segment_dedup import SegmentDedup

SEGMENT = re.compile(r'^define internal [^@]*@"(\w+\.segment\d+)"\(', re.M)
SEGMENT_CALL = re.compile(r'call [^@]*@"(\w+\.segment\d+)"\(')
COMPILED_SEGMENT = re.compile(r'^define [^@]*@"?(\w+\.segment\d+)"?\(', re.M)  # in LLVM's printing


def deep_mlp_loss(*args):
    """Dense layers with relu between them (the hidden ones all 32 x 32), then softmax cross-entropy."""
    *params, x, y = args
    h = x
    for k in range(len(params) // 2):
        h = nn.dense(params[2 * k], h, params[2 * k + 1])
        if k < len(params) // 2 - 1:
            h = nn.relu(h)
    return nn.cross_entropy(nn.softmax(h), y)


def trained(merge: bool, monkeypatch, tmp_path, layers=6, steps=3):
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=False)  # the switch is not part of the in-memory key
    monkeypatch.setattr(segment_dedup, "MERGE_IDENTICAL_SEGMENTS", merge)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", 8)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path / f"cache{merge}"))
    rng = np.random.default_rng(0)
    sizes = [40] + [32] * (layers - 1) + [5]
    params = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        params += [rm.aligned(rng.normal(0, 0.3, (n_out, n_in))), rm.aligned(rng.normal(0, 0.1, n_out))]
    x, y = rm.aligned(rng.random(40)), rm.aligned(np.eye(5)[2])
    step = rm.compile_train_step(deep_mlp_loss, params=tuple(range(len(params))), optimizer=rm.optim.SGD(lr=0.1))
    losses = [step(*params, x, y) for _ in range(steps)]
    return step, params, losses


def test_repeated_layers_compile_fewer_segments_with_the_same_results(monkeypatch, tmp_path):
    apart, want, want_losses = trained(False, monkeypatch, tmp_path)
    merged, got, losses = trained(True, monkeypatch, tmp_path)
    defined_apart = SEGMENT.findall(apart.llvm_ir)
    defined = SEGMENT.findall(merged.llvm_ir)
    assert len(defined) < len(defined_apart)
    called = SEGMENT_CALL.findall(merged.llvm_ir)
    assert len(called) == len(SEGMENT_CALL.findall(apart.llvm_ir))  # every call is still there
    assert len(set(called)) < len(called) and set(called) == set(defined)  # some segment is called twice
    compiled = COMPILED_SEGMENT.findall(merged.llvm_ir_optimized)  # every part LLVM compiled
    assert sorted(compiled) == sorted(defined)  # each kept segment compiled once, the others never
    np.testing.assert_array_equal(losses, want_losses)  # the same code: bitwise the same numbers
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ---- the key, on hand-made functions ----------------------------------------------------


def _module_with_scopes(buffers: int):
    """A module with one alias domain and a scope per buffer; its metadata like the emitter's."""
    llmod = ir.Module()
    domain = llmod.add_metadata([ir.MetaDataString(llmod, "domain")])
    scopes = [llmod.add_metadata([ir.MetaDataString(llmod, f"buffer {k}"), domain]) for k in range(buffers)]
    return llmod, scopes


def _kernel(llmod, scopes, name, load_from, store_to, constant=2.0, noinline=True):
    """fn(a, b, c): c[0] = a-or-b[0] * constant, with the alias metadata of buffers `load_from`, `store_to`."""
    double = ir.DoubleType()
    ptr = ir.PointerType()
    fn = ir.Function(llmod, ir.FunctionType(ir.VoidType(), [ptr, ptr]), name=name)
    fn.linkage = "internal"
    if noinline:
        fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def tag(instr, buffer):
        instr.set_metadata("alias.scope", llmod.add_metadata([scopes[buffer]]))
        others = [s for k, s in enumerate(scopes) if k != buffer]
        instr.set_metadata("noalias", llmod.add_metadata(others))

    value = b.load(fn.args[0], typ=double)
    tag(value, load_from)
    store = b.store(b.fmul(value, ir.Constant(double, constant)), fn.args[1])
    tag(store, store_to)
    b.ret_void()
    return fn


def _same_as(dedup, fn):
    return dedup.same_as(fn, str(fn))


def test_the_same_code_on_other_buffers_is_merged():
    llmod, scopes = _module_with_scopes(6)
    dedup = SegmentDedup(llmod)
    first = _kernel(llmod, scopes, "k.segment1", 0, 1)
    assert dedup.same_as(first, str(first)) is None
    second = _kernel(llmod, scopes, "k.segment2", 3, 4)  # other scopes, the same aliasing facts
    assert dedup.same_as(second, str(second)) is first
    assert "k.segment2" not in llmod.globals and dedup.merged == 1


def test_a_constant_or_the_aliasing_differs_and_nothing_is_merged():
    llmod, scopes = _module_with_scopes(6)
    dedup = SegmentDedup(llmod)
    assert _same_as(dedup, _kernel(llmod, scopes, "k.segment1", 0, 1)) is None
    assert _same_as(dedup, _kernel(llmod, scopes, "k.segment2", 2, 3, constant=3.0)) is None  # one constant differs
    assert _same_as(dedup, _kernel(llmod, scopes, "k.segment3", 4, 4)) is None  # load and store in one scope
    assert _same_as(dedup, _kernel(llmod, scopes, "k.segment4", 2, 3, noinline=False)) is None  # LLVM may inline it
    assert len([f for f in llmod.functions if f.blocks]) == 4 and dedup.merged == 0
