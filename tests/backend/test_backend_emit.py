"""Emission: what the backend refuses (as CompileError), the workspace layout, inspection."""

from __future__ import annotations

import numpy as np
import pytest
from backend_programs import load, parse

from raster_mlir.backend import ArgSpec, compile_module, emit_llvm, emit_module
from raster_mlir.backend.analysis import analyse_module
from raster_mlir.errors import CompileError


def func(body: str, args: str = "%x: memref<4xf64>", name: str = "f", extra: str = "") -> str:
    return f"builtin.module {{\n{extra}\n  func.func @{name}({args}) {{\n{body}\n    func.return\n  }}\n}}"


@pytest.mark.parametrize(
    "text, fragment",
    [
        (func("", "%x: memref<?xf64>"), "dynamic shape"),
        (func("", "%x: memref<4xi1>"), "element type i1"),
        (func("", "%x: memref<4x4xf64, strided<[1, 4]>>"), "non-identity layout"),
        (func("", "%x: memref<4xf64>, %s: f64"), "non-memref arguments"),
        (
            func(
                "    %c0 = arith.constant 0 : index\n    %v = memref.load %x[%c0] : memref<4xf64>\n"
                "    %w = math.erf %v : f64\n    %c = math.ctlz %c0 : index"
            ),
            "op math.ctlz is not part of the loop-level IR",
        ),
        (func("    func.call @f(%x) : (memref<4xf64>) -> ()"), "recursive call"),
    ],
)
def test_refused_with_compile_error(text, fragment):
    with pytest.raises(CompileError, match=fragment):
        compile_module(parse(text), "f")


def test_unknown_entry():
    with pytest.raises(CompileError, match="entry function @nope is not defined"):
        compile_module(load("add", "f64", N=3), "nope")


def test_entry_returning_a_value_is_refused():
    with pytest.raises(CompileError, match="returns values"):
        compile_module(load("calls", "f64", N=3), "dot")


def test_specs_must_match_the_ir():
    module = load("add", "f64", N=3)
    ok = [ArgSpec((3,), "float64"), ArgSpec((3,), "float64"), ArgSpec((3,), "float64", written=True)]
    compile_module(module, "add", ok)
    with pytest.raises(CompileError, match=r"spec says float32\[3\] but the IR has float64\[3\]"):
        compile_module(module, "add", [ArgSpec((3,), "float32")] + ok[1:])
    with pytest.raises(CompileError, match="the IR writes this buffer but its spec says written=False"):
        compile_module(module, "add", ok[:2] + [ArgSpec((3,), "float64")])
    with pytest.raises(CompileError, match="takes 3 buffers but 2 ArgSpecs"):
        compile_module(module, "add", ok[:2])
    with pytest.raises(CompileError, match="power of two"):
        ArgSpec((3,), "float64", align=48)


def test_extra_written_spec_is_honoured():
    module = load("add", "f64", N=3)
    specs = [
        ArgSpec((3,), "float64", written=True, name="x"),
        ArgSpec((3,), "float64"),
        ArgSpec((3,), "float64", written=True),
    ]
    f = compile_module(module, "add", specs)
    x = np.zeros(3)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="'x'.*read-only"):
        f(x, np.zeros(3), np.zeros(3))


def test_written_arguments_are_found_through_calls():
    info = analyse_module(load("calls", "f64", N=5))
    fns = info.functions
    assert fns["scale_add"].written_args == {3}
    assert fns["square_plus_one"].written_args == {1}
    assert fns["dot"].written_args == set()
    assert fns["entry"].written_args == {2, 3}
    assert info.order.index("entry") > max(info.order.index(n) for n in ("scale_add", "square_plus_one", "dot"))


@pytest.mark.parametrize("n", [1, 5, 8, 9])
def test_workspace_layout(n):
    info = analyse_module(load("calls", "f64", N=n))
    entry, callee = info.functions["entry"], info.functions["square_plus_one"]
    # The callee's temporary is its own workspace; the entry's temporary
    # comes first and the callee scratch starts at the next 64-byte boundary.
    assert callee.workspace_bytes == 8 * n
    assert list(entry.workspace_offsets.values()) == [0]
    assert entry.callee_scratch_offset == -(-8 * n // 64) * 64
    assert entry.workspace_bytes == entry.callee_scratch_offset + 8 * n
    assert compile_module(load("calls", "f64", N=n), "entry").workspace_bytes == entry.workspace_bytes


def test_allocs_are_packed_at_64_byte_offsets():
    body = "\n".join(f"    %t{i} = memref.alloc() : memref<{k}xf32>" for i, k in enumerate((3, 16, 17, 1)))
    info = analyse_module(parse(func(body)))
    assert sorted(info.functions["f"].workspace_offsets.values()) == [0, 64, 128, 256]
    assert info.functions["f"].workspace_bytes == 256 + 4


def test_large_alloca_goes_to_the_workspace():
    body = "    %small = memref.alloca() : memref<16xf64>\n    %big = memref.alloca() : memref<100000xf64>"
    f = info = analyse_module(parse(func(body))).functions["f"]
    assert len(info.stack_allocas) == 1 and list(info.workspace_offsets.values()) == [0]
    assert f.workspace_bytes == 800000


def test_emitted_module_shape():
    emitted = emit_module(load("calls", "f64", N=4), ["entry"])
    ir = emitted.llvm_ir
    for name in ("scale_add", "square_plus_one", "dot"):
        assert f'define internal void @"{name}"' in ir or f'define internal double @"{name}"' in ir
    assert 'define void @"entry_packed"(ptr' in ir
    assert 'define i64 @"entry_checked"(ptr' in ir
    abi = emitted.entries["entry"]
    assert [s.written for s in abi.specs] == [False, False, True, True]
    assert [s.name for s in abi.specs] == ["x", "y", "out", "d"]


def test_invalid_fastmath_flag():
    with pytest.raises(CompileError, match="unknown fast-math flag"):
        compile_module(load("add", "f64", N=3), "add", fastmath=("reassoc", "fastest"))


def test_op_fastmath_attribute_is_kept():
    text = func(
        "    %c0 = arith.constant 0 : index\n    %v = memref.load %x[%c0] : memref<4xf64>\n"
        "    %w = arith.mulf %v, %v fastmath<nnan> : f64\n    memref.store %w, %x[%c0] : memref<4xf64>"
    )
    ir = compile_module(parse(text), "f").llvm_ir
    assert "fmul contract nnan reassoc double" in ir


def test_emit_llvm_for_inspection():
    result = emit_llvm(load("calls", "f64", N=4))
    assert result.entries == ["entry"]
    assert "entry_packed" in result.llvm_ir
    assert "define" in result.llvm_ir_optimized
    assert "entry_packed:" in result.asm


def test_functions_named_like_libm_do_not_hijack_libm_calls():
    # An entry called `exp` whose helper `log` uses math.exp and math.log:
    # both names must not capture the libm calls that llvm.exp/llvm.log become.
    text = """
    builtin.module {
      func.func private @log(%x: memref<5xf64>, %y: memref<5xf64>) {
        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %n = arith.constant 5 : index
        scf.for %i = %c0 to %n step %c1 {
          %v = memref.load %x[%i] : memref<5xf64>
          %e = math.exp %v : f64
          %l = math.log %e : f64
          %t = math.tanh %l : f64
          memref.store %t, %y[%i] : memref<5xf64>
        }
        func.return
      }
      func.func @exp(%x: memref<5xf64>, %y: memref<5xf64>) {
        func.call @log(%x, %y) : (memref<5xf64>, memref<5xf64>) -> ()
        func.return
      }
      func.func @exp_packed(%x: memref<5xf64>) {
        func.return
      }
    }
    """
    f = compile_module(parse(text), "exp")
    assert 'define void @"rm.exp"(' in f.llvm_ir and '@"rm.log"(' in f.llvm_ir
    assert 'define void @"exp_packed"(' in f.llvm_ir  # the module's own function keeps its name
    assert 'define void @"rm.exp_packed"(' in f.llvm_ir  # so the wrapper moves aside
    x, y = np.linspace(-1, 1, 5), np.zeros(5)
    f(x, y)
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-14)
    f._call_checked_in_python((x, y))
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-14)


def test_unverified_module_is_a_compile_error():
    module = load("add", "f64", N=3)
    ret = next(op for op in module.walk() if op.name == "func.return")
    ret.detach()  # a func.func body without its terminator does not verify
    with pytest.raises(CompileError, match="does not verify"):
        compile_module(module, "add")
