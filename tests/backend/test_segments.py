"""A large kernel cut into segment functions (segment_emit.py), compiled as several LLVM modules
on two threads (module_split.py, jit.py), loaded as several objects and cached as one entry."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.backend import llvm_emit
from raster_mlir.backend.cache import decode_entry, encode_entry
from raster_mlir.backend.jit import CompiledObject
from raster_mlir.backend.module_split import PART_SEPARATOR, split_module
from raster_mlir.backend.target import ensure_llvm_initialised

from helpers import damped_spring, damped_spring_reference, mlp_loss, mlp_params

SEGMENT = re.compile(r'^define (internal )?[^@]*@"(\w+\.segment\d+)"\((.*)\) (.*)$', re.M)


def mlp_problem(seed=0, n_in=60, hidden=24, n_out=5):
    rng = np.random.default_rng(seed)
    params = mlp_params(rng, n_in, hidden, n_out)
    x = rng.random(n_in) * (rng.random(n_in) < 0.5)  # zero chunks: skip-zero-chunks' scalar outputs cross segments
    return params, x, np.eye(n_out)[2]


def trained(segment_ops, monkeypatch, tmp_path, steps=3):
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=False)  # the segment size is not part of the in-memory key
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", segment_ops)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path / f"cache{segment_ops}"))
    params, x, y = mlp_problem()
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    losses = [step(*params, x, y) for _ in range(steps)]
    return step, params, losses


def test_a_cut_train_step_computes_what_the_whole_kernel_computes(monkeypatch, tmp_path):
    whole, want, want_losses = trained(0, monkeypatch, tmp_path)
    cut, got, losses = trained(8, monkeypatch, tmp_path)
    assert not SEGMENT.search(whole.llvm_ir)
    segments = SEGMENT.findall(cut.llvm_ir)
    assert len(segments) >= 3
    for linkage, _, params, attrs in segments:
        assert linkage and "noinline" in attrs.split()  # internal, and LLVM may not inline it back
        buffers = [p for p in params.split(", ") if p.startswith("ptr")]
        assert buffers and all("noalias" in p for p in buffers)  # the kernel's facts, kept
    # The same loops, each whole in one segment; only a contraction across two segments could
    # round differently (fast-math `contract`), hence not bitwise.
    np.testing.assert_allclose(losses, want_losses, rtol=1e-13)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    assert len(cut.llvm_ir_optimized.split(PART_SEPARATOR)) >= 3  # compiled as several modules
    assert "mlp_loss_train_step.segment" in cut.asm and "mlp_loss_train_step_checked" in cut.asm


def test_a_cut_kernel_is_loaded_from_the_disk_cache(monkeypatch, tmp_path):
    step, params, losses = trained(8, monkeypatch, tmp_path)
    again, params2, losses2 = trained(8, monkeypatch, tmp_path)
    _, x, y = mlp_problem()
    assert again.lower(*params2, x, y).cache_source == "disk"
    np.testing.assert_array_equal(losses2, losses)
    np.testing.assert_array_equal(params2[0], params[0])


def test_gradient_of_a_long_program_with_segments(monkeypatch, tmp_path):
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=False)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", 8)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    args = (rng.random(64) + 1.0, rng.standard_normal(64), rng.standard_normal(64))
    c = rm.compile(rm.grad(damped_spring(40), argnums=0), *args)
    assert SEGMENT.search(c.llvm_ir)
    np.testing.assert_allclose(c(*args), damped_spring_reference(*args, 40)[1], rtol=1e-12, atol=1e-14)


# ---- module_split on its own ---------------------------------------------------------------------

MODULE = """; ModuleID = "m"
target triple = "x86_64-unknown-linux-gnu"

define void @"k"(ptr noalias %"a", ptr %"workspace") nounwind
{
entry:
  %".1" = call {i64} @"k.segment1"(ptr %"a", ptr %"workspace")
  %".2" = extractvalue {i64} %".1", 0
  call void @"k.segment2"(ptr %"a", i64 %".2", ptr %"workspace")
  ret void
}
define internal {i64} @"k.segment1"(ptr noalias %".1", ptr noalias %".2") noinline nounwind
{
entry:
  %".3" = load double, ptr %".1"
  %".4" = call double @"helper"(double %".3")
  store double %".4", ptr %".1"
  %".5" = load i64, ptr @"table"
  %".6" = insertvalue {i64} undef, i64 %".5", 0
  ret {i64} %".6"
}
define internal void @"k.segment2"(ptr noalias %".1", i64 %".2", ptr noalias %".3") noinline nounwind
{
entry:
  %".4" = getelementptr double, ptr %".1", i64 %".2"
  %".5" = call double @"helper"(double 1.0)
  store double %".5", ptr %".4"
  ret void
}
define internal double @"helper"(double %".1") alwaysinline nounwind
{
entry:
  %".2" = fadd double %".1", 1.0
  ret double %".2"
}
declare double @"llvm.fma.f64"(double %".1", double %".2", double %".3") nounwind
@"table" = global [4 x i64] [i64 0, i64 0, i64 0, i64 0], align 16
!0 = !{ !"unused" }
"""


def defined(text):
    return re.findall(r'^define (?:internal )?\S+ @"([\w.]+)"', text, re.M)


def test_split_parts_are_valid_modules_that_define_each_function_once():
    ensure_llvm_initialised()
    parts = split_module(MODULE)
    assert parts is not None and len(parts) == 3
    texts = [p.text for p in parts]
    for text in texts:
        llvm.parse_assembly(text, context=llvm.create_context()).verify()
    assert defined(texts[0]) == ["k"]
    assert sorted(defined(texts[1]) + defined(texts[2])) == ["helper", "helper", "k.segment1", "k.segment2"]
    assert '@"table" = global [4 x i64]' in texts[0]  # defined once, declared where used
    user = next(t for t in texts[1:] if "k.segment1" in defined(t))
    assert '@"table" = external global [4 x i64]' in user
    assert re.search(r'^declare \{i64\} @"k.segment1"', texts[0], re.M)  # no longer internal: linked by name
    assert re.search(r'^define \{i64\} @"k.segment1"', user, re.M)


def test_split_leaves_whole_what_it_cannot_split():
    assert split_module(MODULE.replace('define internal void @"k.segment2"', 'define internal void @"k.other"').replace(
        ") noinline nounwind\n{\nentry:\n  %\".4\" = getelementptr", ") nounwind\n{\nentry:\n  %\".4\" = getelementptr"
    )) is None  # one movable function only
    assert split_module(MODULE.replace('@"table" = global', '@"table" = internal global')) is None
    hand_written = 'define internal void @"f"() noinline {\n  ret void\n}\ndefine internal void @"g"() noinline {\n  ret void\n}\n'
    assert split_module(hand_written) is None  # not llvmlite's layout


def test_an_internal_constant_is_copied_into_each_part_that_reads_it():
    """A constant table (as a vector maths kernel might keep) does not stop the split: each part that
    reads it gets its own internal copy; a mutable internal global still does."""
    ensure_llvm_initialised()
    module = MODULE.replace('@"table" = global', '@"table" = internal constant')
    module = module.replace(
        '  %".5" = call double @"helper"(double 1.0)\n',
        '  %".6" = load i64, ptr @"table"\n  %".5" = call double @"helper"(double 1.0)\n',
    )
    parts = split_module(module)
    assert parts is not None and len(parts) == 3
    for part in parts:
        llvm.parse_assembly(part.text, context=llvm.create_context()).verify()
    for part in parts[1:]:
        assert '@"table" = internal constant [4 x i64]' in part.text
    assert split_module(module.replace("internal constant", "internal global")) is None


def test_entry_with_several_objects_round_trips():
    compiled = CompiledObject(b"\x00first", "; a\n" + PART_SEPARATOR + "\n; b\n", ("remark: x",), (b"second", b""))
    key = "cd" * 32
    blob = encode_entry(key, compiled)
    assert decode_entry(blob, key) == compiled
    assert decode_entry(blob[:-12], key) is None


@pytest.mark.parametrize("segment_ops", [0, 1])
def test_small_functions_stay_whole(segment_ops, monkeypatch, tmp_path):
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=False)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", segment_ops)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x = np.arange(1.0, 9.0)
    c = rm.compile(lambda x: x * 2.0 + 1.0, x)  # one top-level loop: nothing to cut
    assert not SEGMENT.search(c.llvm_ir)
    np.testing.assert_array_equal(c(x), x * 2.0 + 1.0)


def test_the_second_compile_thread_follows_set_num_threads(monkeypatch, tmp_path):
    import threading

    from raster_mlir.backend import jit

    compiled_on = []
    compile_part = jit._compile_part

    def recording(part, timer, **kwargs):
        compiled_on.append(threading.current_thread().name)
        return compile_part(part, timer, **kwargs)

    monkeypatch.setattr(jit, "_compile_part", recording)
    monkeypatch.setattr(jit, "_usable_cpus", lambda: 2)
    previous = rm.get_num_threads()
    try:
        rm.set_num_threads(1)
        trained(8, monkeypatch, tmp_path / "one", steps=1)
        assert len(compiled_on) >= 3 and set(compiled_on) == {threading.current_thread().name}
        compiled_on.clear()
        rm.set_num_threads(2)
        for attempt in range(5):  # the worker takes the first part handed over during emission
            trained(8, monkeypatch, tmp_path / f"two{attempt}", steps=1)
            if "raster-mlir-llvm" in compiled_on:
                break
        assert "raster-mlir-llvm" in compiled_on
    finally:
        rm.set_num_threads(previous)


def log_chain(x, y):
    a = x
    for _ in range(4):  # reductions between the steps keep the loops apart: several segments
        a = rm.log(a * a + rm.sum(a) / 64.0 + 1.0) * y + rm.exp(a * 0.1)
    return rm.sum(a)


def test_segments_that_call_a_function_with_vector_variants_are_vectorised(monkeypatch, tmp_path):
    """rm.vm.log's scalar function names its vector variants in an attribute (vmath/fallback.py);
    each part holding a caller needs them, or its log loops stay scalar calls."""
    from raster_mlir.backend.module_split import vector_variants
    from raster_mlir.compile_cache import clear_cache

    def defined(text):  # any return type (`<8 x double>` has spaces)
        return re.findall(r'^define [^@\n]*@"([\w.]+)"', text, re.M)

    clear_cache(memory=True, disk=False)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", 8)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(3)
    x, y = rng.random(64), rng.random(64)
    c = rm.compile(log_chain, x, y)
    variants = vector_variants(c.llvm_ir)
    assert variants
    parts = split_module(c.llvm_ir)
    assert parts is not None and len(parts) >= 3
    for part in parts:
        if re.search(r'^define internal double @"rm\.vm\.log\.f64"', part.text, re.M):
            assert variants <= set(defined(part.text))  # the vectoriser finds them by name
        else:
            assert not variants & set(defined(part.text))  # no dead copies (part 0 had them)
    optimized = c.llvm_ir_optimized
    assert c.loops_not_vectorized == []
    assert not re.search(r'call [^\n]*@"?rm\.vm\.log\.f64', optimized)  # inlined vector code, not scalar calls
    assert not any(re.search(rf'^define [^\n]*@"?{re.escape(v)}"?\(', optimized, re.M) for v in variants)  # deleted
    x2 = np.abs(x) + 0.5
    want = rm.jit(log_chain)  # the same program, whole (no segments)
    monkeypatch.setattr(llvm_emit, "SEGMENT_OPS", 0)
    clear_cache(memory=True, disk=False)
    np.testing.assert_allclose(c(x2, y), want(x2, y), rtol=1e-13)


ENTRY = """define i64 @"k_checked"(ptr %".1") noinline nounwind optnone
{
entry:
  call void @"k"(ptr %".1", ptr %".1", ptr %".1")
  %".3" = load i64, ptr @"table"
  ret i64 %".3"
}"""


def test_optnone_entry_points_are_a_part_of_their_own():
    """The kernel joins a part of segments; part 0 keeps the entry points and the globals, and is
    compiled without optimisation (jit.py)."""
    ensure_llvm_initialised()
    module = MODULE.replace("declare double @\"llvm.fma.f64\"", ENTRY + "\ndeclare double @\"llvm.fma.f64\"")
    parts = split_module(module)
    assert parts is not None and len(parts) == 3
    for part in parts:
        llvm.parse_assembly(part.text, context=llvm.create_context()).verify()
    assert defined(parts[0].text) == ["k_checked"] and parts[0].entry_points_only
    assert '@"table" = global [4 x i64]' in parts[0].text
    assert re.search(r'^declare void @"k"\(', parts[0].text, re.M)
    assert not any(p.entry_points_only for p in parts[1:])
    assert sorted(n for p in parts[1:] for n in defined(p.text) if n != "helper") == ["k", "k.segment1", "k.segment2"]
    # a kernel using a global that cannot be shared stays in part 0, which is then compiled as before
    private = module.replace('@"table" = global', '@"table" = internal global').replace(
        '%".5" = load i64, ptr @"table"', '%".5" = add i64 0, 0')
    kept = split_module(private.replace('  ret void\n}\ndefine internal {i64} @"k.segment1"',
                                        '  %".9" = load i64, ptr @"table"\n  ret void\n}\ndefine internal {i64} @"k.segment1"'))
    assert kept is not None and "k" in defined(kept[0].text) and not kept[0].entry_points_only


def test_a_kernel_without_segments_is_compiled_apart_from_its_entry_points(tmp_path, monkeypatch):
    from raster_mlir.compile_cache import clear_cache

    clear_cache(memory=True, disk=False)
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(tmp_path))
    x = np.linspace(-1.0, 1.0, 100)
    c = rm.compile(lambda x: rm.sum(rm.tanh(x) * 2.0 + 1.0), x)
    assert not SEGMENT.search(c.llvm_ir)
    entries, kernel = c.llvm_ir_optimized.split(PART_SEPARATOR)
    names = re.findall(r"^define [^@]*@\"?(\w+)\"?\(", entries, re.M)
    assert sorted(names) == ["_lambda__checked", "_lambda__packed", "_lambda__pycall"]  # optnone: O0, no pipeline (jit.py)
    assert re.search(r"^declare [^\n]*@\"?_lambda_\"?\(", entries, re.M)
    assert re.search(r"^define .*@\"?_lambda_\"?\(", kernel, re.M) and "<8 x double>" in kernel
    np.testing.assert_allclose(c(x), np.sum(np.tanh(x) * 2.0 + 1.0), rtol=1e-14)
