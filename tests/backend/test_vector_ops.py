"""The `vector` dialect ops of the LLVM backend (llvm_vector.py), and the loop hint for loops indexed through memory.

Hand-written loop-level IR with `vector.load/store/broadcast/bitcast/reduction`,
compiled with `compile_module` and checked against numpy: the shapes of the
chunk loops `skip-zero-chunks` emits (one 64-byte vector per chunk, at a
start index read from a list), and the misaligned case (a vector load at
j = 3 of an array whose elements are only element-aligned).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.dialects import scf
from xdsl.parser import Parser

from raster_mlir.backend import ArgSpec, compile_module
from raster_mlir.backend.loop_hints import indexes_through_memory
from raster_mlir.compiler import make_context
from raster_mlir.errors import CompileError

NP = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "i32": np.int32}
LANES = {"f64": 8, "f32": 16}  # one 64-byte chunk
BITS = {"f64": "i64", "f32": "i32"}


def parse(text: str):
    return Parser(make_context(), text).parse_module()


def compile_text(text: str, entry: str, specs=None, **options):
    return compile_module(parse(text), entry, specs, **options)


def rng_values(n: int, dtype, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n).astype(dtype)


# -- vector.load + vector.reduction <add> ------------------------------------------------------


def reduce_add_program(T: str, n: int, start: int) -> str:
    L = LANES[T]
    return f"""
    func.func @reduce_add(%x: memref<{n}x{T}>, %out: memref<1x{T}>) {{
      %c0 = arith.constant 0 : index
      %s = arith.constant {start} : index
      %v = vector.load %x[%s] : memref<{n}x{T}>, vector<{L}x{T}>
      %r = vector.reduction <add>, %v : vector<{L}x{T}> into {T}
      memref.store %r, %out[%c0] : memref<1x{T}>
      func.return
    }}
    """


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("start", [0, 3, 21])
def test_vector_load_and_add_reduction(T, start):
    n = 37
    f = compile_text(reduce_add_program(T, n, start), "reduce_add")
    x = rng_values(n, NP[T], seed=start)
    out = np.zeros(1, NP[T])
    f(x, out)
    L = LANES[T]
    want = np.sum(x[start : start + L].astype(np.float64))
    rtol = 1e-14 if T == "f64" else 1e-6
    np.testing.assert_allclose(out[0], want, rtol=rtol, atol=rtol)
    assert f"load <{L} x {'double' if T == 'f64' else 'float'}>" in f.llvm_ir
    assert f"llvm.vector.reduce.fadd.v{L}{T}" in f.llvm_ir


def test_misaligned_load_reads_the_right_elements_from_an_unaligned_view():
    """x[3:11] of an array whose data pointer is itself 8 but not 64 bytes aligned."""
    n = 37
    f = compile_text(reduce_add_program("f64", n, 3), "reduce_add")
    backing = np.arange(1.0, n + 2.0)  # 1, 2, ...: exact sums
    x = backing[1:]  # data pointer shifted by one element
    if x.ctypes.data % 64 == 0:
        x = np.arange(1.0, n + 1.0)  # then this one is not
    out = np.zeros(1)
    f(np.ascontiguousarray(x), out)
    assert out[0] == np.sum(x[3:11])


def test_add_reduction_keeps_a_negative_zero_and_propagates_nan_and_inf():
    f = compile_text(reduce_add_program("f64", 8, 0), "reduce_add")
    out = np.zeros(1)
    f(np.full(8, -0.0), out)
    assert out[0] == 0.0 and np.signbit(out[0])  # the start value is -0.0, the identity of fadd
    x = np.zeros(8)
    x[5] = np.nan
    f(x, out)
    assert np.isnan(out[0])
    x[5] = np.inf
    f(x, out)
    assert out[0] == np.inf


def test_add_reduction_with_an_accumulator_operand():
    text = """
    func.func @reduce_acc(%x: memref<16xf32>, %acc: memref<1xf32>, %out: memref<1xf32>) {
      %c0 = arith.constant 0 : index
      %v = vector.load %x[%c0] : memref<16xf32>, vector<16xf32>
      %a = memref.load %acc[%c0] : memref<1xf32>
      %r = vector.reduction <add>, %v, %a : vector<16xf32> into f32
      memref.store %r, %out[%c0] : memref<1xf32>
      func.return
    }
    """
    f = compile_text(text, "reduce_acc")
    x = np.arange(16, dtype=np.float32)  # exact in f32 in any order
    out = np.zeros(1, np.float32)
    f(x, np.array([100.0], np.float32), out)
    assert out[0] == 100.0 + 120.0


# -- vector.broadcast + vector.store (an axpy on one chunk, misaligned) -----------------------------


def axpy_program(T: str, n: int, start: int) -> str:
    L = LANES[T]
    V = f"vector<{L}x{T}>"
    return f"""
    func.func @axpy(%a: memref<1x{T}>, %x: memref<{n}x{T}>, %y: memref<{n}x{T}>) {{
      %c0 = arith.constant 0 : index
      %s = arith.constant {start} : index
      %av = memref.load %a[%c0] : memref<1x{T}>
      %splat = vector.broadcast %av : {T} to {V}
      %xv = vector.load %x[%s] : memref<{n}x{T}>, {V}
      %yv = vector.load %y[%s] : memref<{n}x{T}>, {V}
      %p = arith.mulf %splat, %xv : {V}
      %r = arith.subf %yv, %p : {V}
      vector.store %r, %y[%s] : memref<{n}x{T}>, {V}
      func.return
    }}
    """


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("start", [0, 3])
def test_broadcast_and_store_update_exactly_one_chunk(T, start):
    n = 40
    f = compile_text(axpy_program(T, n, start), "axpy", fastmath=())
    a = np.array([0.75], NP[T])
    x = rng_values(n, NP[T], seed=1)
    y = rng_values(n, NP[T], seed=2)
    want = y.copy()
    L = LANES[T]
    want[start : start + L] = y[start : start + L] - a[0] * x[start : start + L]
    f(a, x, y)
    np.testing.assert_array_equal(y, want)  # untouched outside the chunk, exact inside (no fma: fastmath=())
    assert "shufflevector" in f.llvm_ir and "insertelement" in f.llvm_ir
    assert re.search(rf"store <{L} x (double|float)>", f.llvm_ir)


def test_broadcast_of_a_non_lane_scalar_is_refused():
    text = """
    func.func @bad(%a: memref<1xf32>, %y: memref<8xf64>) {
      %c0 = arith.constant 0 : index
      %av = memref.load %a[%c0] : memref<1xf32>
      %splat = vector.broadcast %av : f32 to vector<8xf64>
      vector.store %splat, %y[%c0] : memref<8xf64>, vector<8xf64>
      func.return
    }
    """
    with pytest.raises(CompileError, match="element type"):  # the verifier, before any emission
        compile_text(text, "bad")


# -- vector.bitcast + vector.reduction <or> (the chunk test of skip-zero-chunks) ---------------------


def any_bits_program(T: str, n: int, start: int) -> str:
    L, B = LANES[T], BITS[T]
    return f"""
    func.func @any_bits(%x: memref<{n}x{T}>, %out: memref<1x{B}>) {{
      %c0 = arith.constant 0 : index
      %s = arith.constant {start} : index
      %v = vector.load %x[%s] : memref<{n}x{T}>, vector<{L}x{T}>
      %w = vector.bitcast %v : vector<{L}x{T}> to vector<{L}x{B}>
      %r = vector.reduction <or>, %w : vector<{L}x{B}> into {B}
      memref.store %r, %out[%c0] : memref<1x{B}>
      func.return
    }}
    """


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("start", [0, 3])
def test_bitcast_or_reduction_is_the_union_of_the_bits(T, start):
    n, L, B = 35, LANES[T], BITS[T]
    f = compile_text(any_bits_program(T, n, start), "any_bits")
    out = np.zeros(1, NP[B])
    cases = {
        "zeros": np.zeros(n, NP[T]),
        "negative zero": np.full(n, -0.0, NP[T]),
        "one value": np.where(np.arange(n) == start + L - 1, 2.5, 0.0).astype(NP[T]),
        "outside the chunk only": np.where(np.arange(n) == start + L, 1.0, 0.0).astype(NP[T]),
        "nan": np.where(np.arange(n) == start + 1, np.nan, 0.0).astype(NP[T]),
        "random": rng_values(n, NP[T]),
    }
    for name, x in cases.items():
        f(x, out)
        want = np.bitwise_or.reduce(x[start : start + L].view(NP[B]))
        assert out[0] == want, name
    f(cases["zeros"], out)
    assert out[0] == 0
    f(cases["outside the chunk only"], out)
    assert out[0] == 0
    f(cases["negative zero"], out)
    assert out[0] != 0  # the sign bit: a -0.0 chunk is not skipped (harmless)
    assert f"llvm.vector.reduce.or.v{L}{B}" in f.llvm_ir
    assert "bitcast" in f.llvm_ir


@pytest.mark.parametrize("B", ["i64", "i32"])
def test_or_reduction_of_integer_buffers(B):
    L = 8
    text = f"""
    func.func @or_ints(%x: memref<11x{B}>, %out: memref<1x{B}>) {{
      %c0 = arith.constant 0 : index
      %s = arith.constant 3 : index
      %v = vector.load %x[%s] : memref<11x{B}>, vector<{L}x{B}>
      %r = vector.reduction <or>, %v : vector<{L}x{B}> into {B}
      memref.store %r, %out[%c0] : memref<1x{B}>
      func.return
    }}
    """
    f = compile_text(text, "or_ints")
    x = (np.int64(1) << np.arange(11)).astype(NP[B])  # one distinct bit per element; the chunk is [3, 11)
    out = np.zeros(1, NP[B])
    f(x, out)
    assert out[0] == np.bitwise_or.reduce(x[3:11]) == sum(1 << k for k in range(3, 11))
    x[:3] = -1  # bits outside the chunk do not leak in
    f(x, out)
    assert out[0] == sum(1 << k for k in range(3, 11))


def test_unsupported_reductions_are_refused():
    for kind, T in (("mul", "f64"), ("add", "i64"), ("or", "f64")):
        text = f"""
        func.func @r(%x: memref<8x{T}>, %out: memref<1x{T}>) {{
          %c0 = arith.constant 0 : index
          %v = vector.load %x[%c0] : memref<8x{T}>, vector<8x{T}>
          %r = vector.reduction <{kind}>, %v : vector<8x{T}> into {T}
          memref.store %r, %out[%c0] : memref<1x{T}>
          func.return
        }}
        """
        with pytest.raises(CompileError, match="vector.reduction"):
            compile_text(text, "r")


def test_xor_reduction_is_refused_by_name():
    # Not supported yet: refused with the op and the type, never compiled into something else.
    text = """
    func.func @x(%x: memref<8xi64>, %out: memref<1xi64>) {
      %c0 = arith.constant 0 : index
      %v = vector.load %x[%c0] : memref<8xi64>, vector<8xi64>
      %r = vector.reduction <xor>, %v : vector<8xi64> into i64
      memref.store %r, %out[%c0] : memref<1xi64>
      func.return
    }
    """
    with pytest.raises(CompileError, match=r"vector.reduction <xor> on vector<8xi64> is not supported"):
        compile_text(text, "x")


# -- a chunk loop: vector accumulator through scf.for, indices read from a list ------------------------


def chunk_dot_program(T: str, rows: int, n: int) -> str:
    """out[i] = sum over the chunks listed in list[0:count] of W[i, c:c+L] * x[c:c+L] (the pass's dot form)."""
    L = LANES[T]
    V = f"vector<{L}x{T}>"
    chunks = n // L
    return f"""
    func.func @chunk_dot(%W: memref<{rows}x{n}x{T}>, %x: memref<{n}x{T}>, %list: memref<{chunks}xi64>,
                         %count: memref<1xi64>, %out: memref<{rows}x{T}>) {{
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %rows = arith.constant {rows} : index
      %zero = arith.constant 0.0 : {T}
      %n64 = memref.load %count[%c0] : memref<1xi64>
      %n = arith.index_cast %n64 : i64 to index
      scf.for %i = %c0 to %rows step %c1 {{
        %init = vector.broadcast %zero : {T} to {V}
        %acc = scf.for %q = %c0 to %n step %c1 iter_args(%a = %init) -> ({V}) {{
          %c64 = memref.load %list[%q] : memref<{chunks}xi64>
          %c = arith.index_cast %c64 : i64 to index
          %w = vector.load %W[%i, %c] : memref<{rows}x{n}x{T}>, {V}
          %xv = vector.load %x[%c] : memref<{n}x{T}>, {V}
          %p = arith.mulf %w, %xv : {V}
          %s = arith.addf %a, %p : {V}
          scf.yield %s : {V}
        }}
        %r = vector.reduction <add>, %acc : {V} into {T}
        memref.store %r, %out[%i] : memref<{rows}x{T}>
      }}
      func.return
    }}
    """


def chunk_update_program(T: str, rows: int, n: int) -> str:
    """W[i, c:c+L] -= e[i] * x[c:c+L] for the listed chunks (the pass's update form)."""
    L = LANES[T]
    V = f"vector<{L}x{T}>"
    chunks = n // L
    return f"""
    func.func @chunk_update(%W: memref<{rows}x{n}x{T}>, %e: memref<{rows}x{T}>, %x: memref<{n}x{T}>,
                            %list: memref<{chunks}xi64>, %count: memref<1xi64>) {{
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %rows = arith.constant {rows} : index
      %n64 = memref.load %count[%c0] : memref<1xi64>
      %n = arith.index_cast %n64 : i64 to index
      scf.for %i = %c0 to %rows step %c1 {{
        %ei = memref.load %e[%i] : memref<{rows}x{T}>
        %ev = vector.broadcast %ei : {T} to {V}
        scf.for %q = %c0 to %n step %c1 {{
          %c64 = memref.load %list[%q] : memref<{chunks}xi64>
          %c = arith.index_cast %c64 : i64 to index
          %xv = vector.load %x[%c] : memref<{n}x{T}>, {V}
          %p = arith.mulf %ev, %xv : {V}
          %w = vector.load %W[%i, %c] : memref<{rows}x{n}x{T}>, {V}
          %r = arith.subf %w, %p : {V}
          vector.store %r, %W[%i, %c] : memref<{rows}x{n}x{T}>, {V}
        }}
      }}
      func.return
    }}
    """


def chunk_list(x: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = x.size // lanes
    bits = x[: chunks * lanes].view(np.int64 if x.dtype == np.float64 else np.int32).reshape(chunks, lanes)
    starts = np.flatnonzero(np.bitwise_or.reduce(bits, axis=1) != 0) * lanes
    padded = np.zeros(chunks, np.int64)
    padded[: starts.size] = starts
    return padded, np.array([starts.size], np.int64)


def sparse_vector(n: int, lanes: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    for c in range(0, n, lanes):
        if rng.random() < 0.6:
            x[c : c + lanes] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("T", ["f64", "f32"])
@pytest.mark.parametrize("jam", [0, 4])
def test_chunk_dot_loop_equals_numpy(T, jam):
    rows, L = 7, LANES[T]
    n = 12 * L
    f = compile_text(chunk_dot_program(T, rows, n), "chunk_dot", jam=jam)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(rows, n)).astype(NP[T])
    x = sparse_vector(n, L, NP[T], seed=4)
    starts, count = chunk_list(x, L)
    assert 0 < count[0] < n // L
    out = np.zeros(rows, NP[T])
    f(W, x, starts, count, out)
    want = W.astype(np.float64) @ x.astype(np.float64)
    rtol = 1e-13 if T == "f64" else 1e-5
    np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * np.abs(W).sum(axis=1).max())
    count[0] = 0  # no chunk: every sum is zero
    f(W, x, starts, count, out)
    np.testing.assert_array_equal(out, np.zeros(rows))


@pytest.mark.parametrize("T", ["f64", "f32"])
def test_chunk_update_loop_equals_numpy_and_leaves_skipped_chunks_alone(T):
    rows, L = 5, LANES[T]
    n = 9 * L
    f = compile_text(chunk_update_program(T, rows, n), "chunk_update", fastmath=())
    rng = np.random.default_rng(5)
    W = rng.normal(size=(rows, n)).astype(NP[T])
    e = rng.normal(size=rows).astype(NP[T])
    x = sparse_vector(n, L, NP[T], seed=6)
    starts, count = chunk_list(x, L)
    want = W - e[:, None] * x[None, :]
    before = W.copy()
    f(W, e, x, starts, count)
    np.testing.assert_array_equal(W, want)
    skipped = np.ones(n, bool)
    for c in starts[: count[0]]:
        skipped[c : c + L] = False
    assert skipped.any()
    np.testing.assert_array_equal(W[:, skipped], before[:, skipped])


# -- loop_hints.indexes_through_memory and the vectorize.width hint -------------------------------------


def loops_of(text: str) -> dict[str, scf.ForOp]:
    """The scf.for ops of a module, by the name hint of their induction variable."""
    module = parse(text)
    return {op.body.block.args[0].name_hint: op for op in module.walk() if isinstance(op, scf.ForOp)}


PLAIN_AND_INDIRECT = """
func.func @f(%W: memref<4x64xf64>, %x: memref<64xf64>, %list: memref<8xi64>, %idx: memref<8xindex>,
             %out: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f64
  scf.for %outer = %c0 to %c4 step %c1 {
    %s = scf.for %plain = %c0 to %c64 step %c1 iter_args(%a = %zero) -> (f64) {
      %w = memref.load %W[%outer, %plain] : memref<4x64xf64>
      %v = memref.load %x[%plain] : memref<64xf64>
      %p = arith.mulf %w, %v : f64
      %t = arith.addf %a, %p : f64
      scf.yield %t : f64
    }
    memref.store %s, %out[%outer] : memref<4xf64>
  }
  %g = scf.for %gather = %c0 to %c8 step %c1 iter_args(%a = %zero) -> (f64) {
    %k = memref.load %idx[%gather] : memref<8xindex>
    %v = memref.load %x[%k] : memref<64xf64>
    %t = arith.addf %a, %v : f64
    scf.yield %t : f64
  }
  memref.store %g, %out[%c0] : memref<4xf64>
  %h = scf.for %derived = %c0 to %c8 step %c1 iter_args(%a = %zero) -> (f64) {
    %k64 = memref.load %list[%derived] : memref<8xi64>
    %k = arith.index_cast %k64 : i64 to index
    %k1 = arith.addi %k, %c1 : index
    %v = memref.load %x[%k1] : memref<64xf64>
    %t = arith.addf %a, %v : f64
    scf.yield %t : f64
  }
  memref.store %h, %out[%c1] : memref<4xf64>
  scf.for %scatter = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%scatter] : memref<8xindex>
    %v = memref.load %x[%scatter] : memref<64xf64>
    memref.store %v, %out[%k] : memref<4xf64>
  }
  scf.for %data = %c0 to %c8 step %c1 {
    %k64 = memref.load %list[%data] : memref<8xi64>
    %v = arith.sitofp %k64 : i64 to f64
    memref.store %v, %x[%data] : memref<64xf64>
  }
  func.return
}
"""


def test_indexes_through_memory():
    loops = loops_of(PLAIN_AND_INDIRECT)
    assert not indexes_through_memory(loops["plain"])
    assert not indexes_through_memory(loops["outer"])  # not innermost
    assert indexes_through_memory(loops["gather"])  # x[idx[q]]
    assert indexes_through_memory(loops["derived"])  # x[index_cast(list[q]) + 1]
    assert indexes_through_memory(loops["scatter"])  # out[idx[q]] = ...
    assert not indexes_through_memory(loops["data"])  # a loaded value stored as data, not used as an index


def test_the_chunk_loops_are_indexed_through_memory():
    for text in (chunk_dot_program("f64", 3, 64), chunk_update_program("f32", 3, 64)):
        loops = loops_of(text)
        assert indexes_through_memory(loops["q"])
        assert not indexes_through_memory(loops["i"])


WIDTH_1 = re.compile(r'!\{ *!"llvm.loop.vectorize.width", i32 1 *\}')


def test_loops_indexed_through_memory_get_vectorize_width_1():
    f = compile_text(chunk_dot_program("f64", 3, 64), "chunk_dot", jam=0)
    assert WIDTH_1.search(f.llvm_ir), f.llvm_ir[-2000:]
    # The chunk loop (the only innermost loop) carries it, and no loop asks for vectorize.enable;
    # the row loop around it carries unroll.disable only (loop_hints.rolls_over_a_long_reduction).
    assert "llvm.loop.vectorize.enable" not in f.llvm_ir
    assert len(re.findall(r"!llvm.loop !\d+", f.llvm_ir)) == 2
    assert f.llvm_ir.count('!"llvm.loop.unroll.disable"') == 1


def test_jammed_chunk_loop_gets_vectorize_width_1():
    f = compile_text(chunk_dot_program("f64", 8, 64), "chunk_dot", jam=4)
    assert WIDTH_1.search(f.llvm_ir)
    # Jammed: four rows share one walk of the chunk list (four W loads per chunk, four accumulators).
    unjammed = compile_text(chunk_dot_program("f64", 8, 64), "chunk_dot", jam=0)
    assert f.llvm_ir.count("load <8 x double>") > unjammed.llvm_ir.count("load <8 x double>") == 2


def test_plain_and_indirect_loops_get_different_hints():
    specs = [
        ArgSpec((4, 64), "float64"),
        ArgSpec((64,), "float64", written=True),
        ArgSpec((8,), "int64"),
        ArgSpec((8,), "int64"),
        ArgSpec((4,), "float64", written=True),
    ]
    text = PLAIN_AND_INDIRECT.replace("memref<8xindex>", "memref<8xi64>")
    text = text.replace(
        "%k = memref.load %idx[%gather] : memref<8xi64>",
        "%kg = memref.load %idx[%gather] : memref<8xi64>\n    %k = arith.index_cast %kg : i64 to index",
    ).replace(
        "%k = memref.load %idx[%scatter] : memref<8xi64>",
        "%ks = memref.load %idx[%scatter] : memref<8xi64>\n    %k = arith.index_cast %ks : i64 to index",
    )
    f = compile_text(text, "f", specs, jam=0)
    assert WIDTH_1.search(f.llvm_ir)
    assert '"llvm.loop.vectorize.enable", i1 1' in f.llvm_ir  # the plain dot loop keeps its hint
    ids = re.findall(r"!llvm.loop (!\d+)", f.llvm_ir)
    assert len(set(ids)) == len(ids) >= 4  # distinct loop IDs
    # And the program runs: out = [sum x[idx], sum x[list+1], ...] then the scatter.
    W = np.ones((4, 64))
    x = np.arange(64.0)
    idx = np.array([1, 2, 3, 0, 1, 2, 3, 0])
    lst = np.arange(8) * 3
    out = np.zeros(4)
    f(W, x, lst, idx, out)
    # The dot rows give sum(x) = 2016, then out[0] = sum x[idx] = 12 and out[1] = sum x[3k + 1] = 92,
    # which the scatter out[idx[q]] = x[q] overwrites in order: out = [7, 4, 5, 6].
    np.testing.assert_array_equal(out, [7.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(x[:8], lst.astype(np.float64))  # the data loop ran last
    np.testing.assert_array_equal(x[8:], np.arange(8.0, 64.0))


def test_no_loop_hints_at_all_when_turned_off():
    f = compile_text(chunk_dot_program("f64", 3, 64), "chunk_dot", loop_vectorize_hints=False)
    assert "llvm.loop" not in f.llvm_ir
