"""The vectorisation hints reach LLVM and have the effect they are there for."""

from __future__ import annotations

import re

import numpy as np
import pytest
from backend_programs import load

from raster_mlir.backend import compile_module, emit_module, host_target
from raster_mlir.backend.jit import optimize_and_codegen
from raster_mlir.backend.llvm_remarks import loops_not_vectorized

needs_avx512 = pytest.mark.skipif(not host_target().has_avx512f, reason="host has no avx512f")
# LLVM's tuning for Intel's AVX-512 parts (Skylake-X and later) prefers 256-bit vectors; AMD's Zen 4/5
# tuning keeps 512-bit vectors by default, so the attribute changes nothing there.
needs_256_bit_tuning = pytest.mark.skipif(
    host_target().cpu_name.startswith("znver"), reason="AMD Zen: LLVM already prefers 512-bit vectors"
)


@pytest.fixture(scope="module")
def matvec_f64():
    return load("matvec", "f64", M=128, K=784)


@needs_avx512
def test_matvec_f64_uses_512_bit_vectors(matvec_f64):
    f = compile_module(matvec_f64, "matvec")
    assert "<8 x double>" in f.llvm_ir_optimized
    assert "zmm" in f.asm
    assert re.search(r"vfmadd\w*pd\s+.*zmm", f.asm), "contract should turn mul+add into a 512-bit FMA"


@needs_avx512
def test_matvec_f32_uses_512_bit_vectors():
    f = compile_module(load("matvec", "f32", M=128, K=784), "matvec")
    assert "<16 x float>" in f.llvm_ir_optimized


@needs_avx512
@needs_256_bit_tuning
def test_without_prefer_vector_width_llvm_picks_256_bits(matvec_f64):
    f = compile_module(matvec_f64, "matvec", prefer_vector_width=0)
    assert '"prefer-vector-width"' not in f.llvm_ir
    assert "<8 x double>" not in f.llvm_ir_optimized
    assert "<4 x double>" in f.llvm_ir_optimized


def test_reduction_stays_scalar_without_reassoc_or_loop_hint(matvec_f64):
    # jam=0: with four jammed rows the SLP vectoriser may put the four
    # (in-order) row sums in one vector, which needs no reassociation.
    f = compile_module(matvec_f64, "matvec", fastmath=(), loop_vectorize_hints=False, jam=0)
    assert not re.search(r"<\d+ x double>", f.llvm_ir_optimized)


def test_loop_hint_alone_vectorises_the_reduction(matvec_f64):
    f = compile_module(matvec_f64, "matvec", fastmath=())
    assert re.search(r"<\d+ x double>", f.llvm_ir_optimized)
    assert "vfmadd" not in f.asm  # no `contract`, no FMA


def test_reassoc_alone_vectorises_the_reduction(matvec_f64):
    f = compile_module(matvec_f64, "matvec", fastmath=("reassoc",), loop_vectorize_hints=False)
    assert re.search(r"<\d+ x double>", f.llvm_ir_optimized)


def test_hints_in_unoptimised_ir(matvec_f64):
    ir = compile_module(matvec_f64, "matvec").llvm_ir
    assert "fmul contract reassoc double" in ir and "fadd contract reassoc double" in ir
    assert "nnan" not in ir and "ninf" not in ir
    # Exactly the inner loop carries a distinct, self-referencing loop ID.
    assert len(re.findall(r"!llvm.loop !\d+", ir)) == 1
    assert re.search(r"!(\d+) = distinct !\{ !\1, !\d+, !\d+ \}", ir)  # vectorize.enable and the loop's name
    assert '!{ !"llvm.loop.vectorize.enable", i1 1 }' in ir
    assert '!{ !"raster.loop", !"@matvec forced loop 1: 784 iterations, reduces into 1 value(s)" }' in ir
    header = next(line for line in ir.splitlines() if line.startswith('define void @"matvec"('))
    assert header.count("noalias") == 5  # four buffers and the workspace
    assert header.count("captures(none)") == 5
    assert "dereferenceable(802816)" in header  # 128 * 784 * 8 bytes
    assert f'"target-cpu"="{host_target().cpu_name}"' in header
    if host_target().has_avx512f:
        assert '"prefer-vector-width"="512"' in header


def test_libm_loops_get_no_forced_vectorisation():
    ir = compile_module(load("softmax_rows", "f64", M=2, N=9), "softmax", vector_math=False).llvm_ir
    # Three innermost loops; the one calling exp is left to the cost model.
    assert len(re.findall(r"!llvm.loop !\d+", ir)) == 2
    assert 'call contract reassoc double @"llvm.exp.f64"' in ir


def test_vector_math_loops_are_forced_like_plain_arithmetic():
    ir = compile_module(load("softmax_rows", "f64", M=2, N=9), "softmax").llvm_ir
    # exp is inline vector code (vmath/): its loop is vectorised like the other two.
    assert len(re.findall(r"!llvm.loop !\d+", ir)) == 3
    assert 'call double @"rm.vm.exp.f64"' in ir
    assert "llvm.exp" not in ir


def test_functions_called_internally_get_no_noalias():
    ir = compile_module(load("calls", "f64", N=5), "entry").llvm_ir
    for name in ("scale_add", "square_plus_one", "dot"):
        header = next(line for line in ir.splitlines() if line.startswith("define internal") and f'@"{name}"' in line)
        assert header.count("noalias") == 1  # only the workspace slice


def test_loop_carried_dependence_gets_no_hint_and_no_llvm_warning(capfd):
    f = compile_module(load("prefix_sum", "f64", N=100), "cumsum")
    assert "!llvm.loop" not in f.llvm_ir
    x, y = np.arange(100.0), np.zeros(100)
    f(x, y)
    np.testing.assert_array_equal(y, np.cumsum(x))
    assert f.llvm_remarks == () and f.loops_not_vectorized == []
    assert capfd.readouterr().err == ""


def test_forcing_a_non_vectorisable_loop_would_warn(capfd, monkeypatch):
    # Why the hint is screened: the same loop with the hint forced by hand. LLVM's warning is
    # captured (never on stderr) and the loop is named.
    from raster_mlir.backend import llvm_emit

    monkeypatch.setattr(llvm_emit, "vectorize_hint", lambda loop, fn_name, *scalar_calls: "force")
    ir = llvm_emit.emit_module(load("prefix_sum", "f64", N=100), ["cumsum"]).llvm_ir
    compiled = optimize_and_codegen(ir, host_target(), 3)
    assert capfd.readouterr().err == ""
    assert any("loop not vectorized" in r for r in compiled.llvm_remarks)
    assert loops_not_vectorized(compiled.llvm_ir_optimized) == ["@cumsum forced loop 1: 99 iterations, writes %y"]


CORPUS_CASES = [
    ("add", {"N": 129}),
    ("matvec", {"M": 7, "K": 129}),
    ("relu", {"M": 3, "N": 129}),
    ("softmax_rows", {"M": 3, "N": 129}),
    ("sum_rank0", {"N": 129}),
    ("calls", {"N": 129}),
    ("elementwise_mix", {"N": 129}),
    ("prefix_sum", {"N": 129}),
]


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("name, sizes", CORPUS_CASES)
def test_corpus_compiles_without_llvm_warnings(capfd, name, sizes, T):
    emitted = emit_module(load(name, T, **sizes), [])
    compiled = optimize_and_codegen(emitted.llvm_ir, host_target(), 3)
    assert capfd.readouterr().err == ""
    assert compiled.llvm_remarks == () and loops_not_vectorized(compiled.llvm_ir_optimized) == []
