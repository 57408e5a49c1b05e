"""What a first call pays outside the passes has rows of its own in the timing report.

The pass modules a compile imports (passes/registry.py: `IMPORTS_ROW`) and the
collection of the compile's garbage when the collector is switched back on
(raster_mlir/gc_pause.py: `GC_ROW`). A fresh process's first compile shows both
(tests/test_compile_cache.py checks that in a child process).
"""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

from raster_mlir.gc_pause import GC_ROW, paused_gc
from raster_mlir.passes import registry
from raster_mlir.timing import CompileTimer


class Cyclic:
    def __init__(self):
        self.me = self


def test_the_compile_s_garbage_is_collected_on_the_way_out_as_a_row():
    timer = CompileTimer()
    assert gc.isenabled()
    with paused_gc(timer):
        assert not gc.isenabled()
        garbage = Cyclic()
        dead = weakref.ref(garbage)
        del garbage
        assert dead() is not None  # a cycle: refcounting alone does not free it
    assert gc.isenabled()
    assert dead() is None and GC_ROW in timer.seconds


def test_a_caller_that_paused_the_collector_keeps_it_paused_and_gets_no_row():
    timer = CompileTimer()
    gc.disable()
    try:
        with paused_gc(timer):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert GC_ROW not in timer.seconds


def test_importing_a_pipeline_s_pass_modules_is_a_row(tmp_path, monkeypatch):
    (tmp_path / "late_pass_module.py").write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n\n"
        "@dataclass(frozen=True)\n"
        "class LatePass(ModulePass):\n"
        "    name = 'late-pass'\n"
        "    strength: int = 1\n\n"
        "    def apply(self, ctx, op):\n"
        "        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_pass_module", raising=False)
    monkeypatch.setattr(registry, "_PASSES", {**registry._PASSES, "late-pass": registry._lazy("late_pass_module", "LatePass")})
    first, second = CompileTimer(), CompileTimer()
    (p,) = registry.parse_pipeline("late-pass{strength=3}", timer=first).passes
    assert p.strength == 3 and "late_pass_module" in sys.modules
    assert registry.IMPORTS_ROW in first.seconds
    registry.parse_pipeline("late-pass", timer=second)
    assert registry.IMPORTS_ROW not in second.seconds  # imported already: nothing to show


def test_a_pass_whose_module_fails_to_import_is_a_compile_error(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", {**registry._PASSES, "broken-pass": registry._lazy("no_such_module_here", "X")})
    with pytest.raises(registry.CompileError, match="bad pass pipeline"):
        registry.parse_pipeline("broken-pass", timer=CompileTimer())


def test_a_compile_leaves_no_llvmlite_ir_for_the_collector(monkeypatch, tmp_path):
    """The llvmlite module of a compile is freed by reference counting (backend/llvm_release.py):
    with the collector off, none of its instructions, blocks or functions is left over."""
    import numpy as np
    from llvmlite import ir

    import raster_mlir as rm

    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rm.clear_cache(disk=False)

    def f(x, y):
        return rm.sum(rm.exp(x) * y)

    kinds = (ir.Instruction, ir.Block, ir.Function, ir.Module)
    gc.collect()
    gc.disable()
    try:
        before = sum(isinstance(o, kinds) for o in gc.get_objects())
        c = rm.compile(rm.grad(f), np.arange(3.0), np.ones(3))
        after = sum(isinstance(o, kinds) for o in gc.get_objects())
    finally:
        gc.enable()
    assert "freeing the llvmlite IR" in c.timing_report()
    assert after == before
    np.testing.assert_allclose(c(np.arange(3.0), np.ones(3))[0], np.exp(np.arange(3.0)))


def test_lower_to_loops_frees_the_tensor_level_ir_it_replaces():
    """The tensor-level function lower-to-loops replaces is freed by reference counting
    (raster_mlir/ir_release.py), not left to the collection after the compile."""
    import numpy as np

    import raster_mlir as rm
    from raster_mlir.compiler import make_context
    from raster_mlir.dialects import raster as R
    from raster_mlir.frontend.tracer import ModuleTrace
    from raster_mlir.passes.lower_to_loops import LowerToLoopsPass
    from xdsl.dialects.builtin import TensorType, f64

    def f(x, y):
        return rm.sum(rm.exp(x) * y + 2.0)

    trace = ModuleTrace()
    trace.trace_function(f, "f", [TensorType(f64, (8,)), TensorType(f64, (8,))])
    module = trace.module
    tensor_ops = [weakref.ref(op) for op in module.walk() if isinstance(op, (R.ExpOp, R.MulOp, R.SumOp))]
    assert len(tensor_ops) == 3
    gc.collect()
    gc.disable()
    try:
        LowerToLoopsPass().apply(make_context(), module)
        assert all(ref() is None for ref in tensor_ops)
    finally:
        gc.enable()
    c = rm.compile(f, np.arange(8.0), np.ones(8))
    assert c(np.arange(8.0), np.ones(8)) == pytest.approx(np.sum(np.exp(np.arange(8.0)) + 2.0))
