"""Vector maths with a rare slow path, still vectorised: libm for sin, cos, tan of |x| > MEDIUM,
the complete emitter (special values, subnormals) for log's non-normal inputs.

A branch to a libm call inside the loop body stops LLVM's loop vectoriser
("control flow cannot be substituted for a select"), and computing the
rare case for every lane would cost more than the common one. So these
functions are defined in three parts:

    define internal T @rm.vm.sin.f64(T %x) noinline readnone
        "vector-function-abi-variant"="_ZGV_LLVM_N8v_rm.vm.sin.f64(rm.vm.sin.v8f64),..."
        ; scalar: fast path, and `if |x| > limit: libm sin(x)`
    define <8 x double> @rm.vm.sin.v8f64(<8 x double> %x) alwaysinline
        ; fast path on all lanes; if any lane is out of range (one
        ; vector.reduce.or), call the cold fix-up below
    define internal <8 x double> @rm.vm.sin.fix.v8f64(<8 x double> %x, <8 x double> %fast) noinline cold
        ; libm sin on each out-of-range lane

The scalar function stays a call until the loop vectoriser has run, which
then replaces it by the variant of its chosen width (the attribute is the
VFABI mapping LLVM's vectoriser reads). The variants are externally visible
so that nothing deletes them before that, and `jit.py` runs an always-inline
pass after the O3 pipeline to inline them into the vectorised loops.
Widths: the host's vector register and half of it, per element type.

The same frame serves a second purpose (`FullBeyond`): log's fast path
assumes a positive normal x, so every lane skips the compares and selects
of the special values and of subnormal scaling (9 of its 32 vector
instructions); a lane that is zero, negative, subnormal, infinite or NaN
(one integer compare finds them) sends the whole vector through the
complete emitter, in the cold block. There the scalar function is the
complete emitter itself, and no libm is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llvmlite import ir

from ..fast_builder import FastBuilder
from ..llvm_ops import _suffix
from .builder import MathBuilder

VFABI_ATTRIBUTE = "vector-function-abi-variant"


def variant_widths(mctx, lane: ir.Type) -> list[int]:
    """The vector register's lane count for `lane` and half of it."""
    bits = mctx.options.vector_width or (512 if mctx.options.target.has_avx512f else 256)
    full = bits // (64 if isinstance(lane, ir.DoubleType) else 32)
    return [w for w in (full, full // 2) if w >= 2]


def _libm(mctx, name: str):
    """The C library's double-precision function (f32 lanes call it on the widened value and round)."""
    return mctx.declare(name, ir.DoubleType(), [ir.DoubleType()])


def _call_libm(b: ir.IRBuilder, fn, x):
    if isinstance(x.type, ir.DoubleType):
        return b.call(fn, [x])
    return b.fptrunc(b.call(fn, [b.fpext(x, ir.DoubleType())]), x.type)


@dataclass(frozen=True)
class LibmBeyond:
    """|x| > limit (and +-inf) goes to the C library's `libm` (lane by lane in a cold function)."""

    libm: str
    limit: float

    def is_rare(self, m: MathBuilder, x):
        # ordered: NaN stays on the fast path (which propagates it); +-inf goes to libm
        return m.cmp(">", m.abs(x), m.const(self.limit))


@dataclass(frozen=True)
class FullBeyond:
    """Lanes where `is_rare(m, x)` holds are computed by `full(m, x)` (the whole vector, in a cold block)."""

    full: Callable
    is_rare: Callable


def _finish_with_branch(b: ir.IRBuilder, fn: ir.Function, condition, y_fast, slow):
    """if condition: y = slow() else y = y_fast; return y (the slow side marked unlikely)."""
    fast_bb = b.block
    slow_bb, done_bb = fn.append_basic_block("libm"), fn.append_basic_block("done")
    b.cbranch(condition, slow_bb, done_bb).set_weights([1, 1 << 20])
    b.position_at_end(slow_bb)
    y_slow = slow()
    slow_end = b.block
    b.branch(done_bb)
    b.position_at_end(done_bb)
    phi = b.phi(y_fast.type)
    phi.add_incoming(y_fast, fast_bb)
    phi.add_incoming(y_slow, slow_end)
    b.ret(phi)


def define_scalar(mctx, stem: str, ty: ir.Type, fast, rare, variants) -> ir.Function:
    """The scalar function `<stem>.<ty>` (noinline, with the VFABI mapping to `variants`)."""
    fn = ir.Function(mctx.llmod, ir.FunctionType(ty, [ty]), name=mctx.symbol(f"{stem}.{_suffix(ty)}"))
    fn.linkage = "internal"
    mctx.set_target_attributes(fn)
    for attr in ("noinline", "readnone"):
        fn.attributes.add(attr)
    b = FastBuilder(fn.append_basic_block("entry"))
    m = MathBuilder.for_module(b, mctx, ty)
    x = fn.args[0]
    if isinstance(rare, FullBeyond):
        b.ret(rare.full(m, x))
    else:
        libm = _libm(mctx, rare.libm)
        _finish_with_branch(b, fn, rare.is_rare(m, x), fast(m, x), lambda: _call_libm(b, libm, x))
    add_vector_variants(fn, variants)
    return fn


def add_vector_variants(fn: ir.Function, variants) -> None:
    """Name `variants` (vector functions of `fn`'s lane type) as `fn`'s VFABI variants for the loop vectoriser."""
    fn.attributes.strings[VFABI_ATTRIBUTE] = ",".join(
        f"_ZGV_LLVM_N{v.function_type.return_type.count}v_{fn.name}({v.name})" for v in variants
    )


def define_variant(mctx, stem: str, vty: ir.VectorType, fast, rare) -> ir.Function:
    """The vector function `<stem>.<vty>`: fast path, and the cold slow path when any lane is rare."""
    fn = ir.Function(mctx.llmod, ir.FunctionType(vty, [vty]), name=mctx.symbol(f"{stem}.{_suffix(vty)}"))
    mctx.set_target_attributes(fn)
    fn.attributes.add("alwaysinline")
    b = FastBuilder(fn.append_basic_block("entry"))
    m = MathBuilder.for_module(b, mctx, vty)
    x = fn.args[0]
    y_fast = fast(m, x)
    lanes = rare.is_rare(m, x)
    reduce_or = mctx.declare(f"llvm.vector.reduce.or.{_suffix(lanes.type)}", ir.IntType(1), [lanes.type])
    if isinstance(rare, FullBeyond):
        slow = lambda: rare.full(m, x)  # noqa: E731
    else:
        fix = _define_fixup(mctx, stem, vty, rare)
        slow = lambda: b.call(fix, [x, y_fast])  # noqa: E731
    _finish_with_branch(b, fn, b.call(reduce_or, [lanes]), y_fast, slow)
    return fn


def _define_fixup(mctx, stem: str, vty: ir.VectorType, rare: LibmBeyond) -> ir.Function:
    """Lane by lane: libm where |x| > limit, the fast result elsewhere."""
    libm = _libm(mctx, rare.libm)
    fn = ir.Function(mctx.llmod, ir.FunctionType(vty, [vty, vty]), name=mctx.symbol(f"{stem}.fix.{_suffix(vty)}"))
    fn.linkage = "internal"
    mctx.set_target_attributes(fn)
    for attr in ("noinline", "cold"):
        fn.attributes.add(attr)
    x, y = fn.args
    b = FastBuilder(fn.append_basic_block("entry"))
    m = MathBuilder.for_module(b, mctx, vty.element)
    i32 = ir.IntType(32)
    for lane in range(vty.count):
        xi = b.extract_element(x, ir.Constant(i32, lane))
        slow_bb = fn.append_basic_block(f"lane{lane}.libm")
        next_bb = fn.append_basic_block(f"lane{lane}.next")
        here = b.block
        b.cbranch(rare.is_rare(m, xi), slow_bb, next_bb)
        b.position_at_end(slow_bb)
        patched = b.insert_element(y, _call_libm(b, libm, xi), ir.Constant(i32, lane))
        b.branch(next_bb)
        b.position_at_end(next_bb)
        phi = b.phi(vty)
        phi.add_incoming(y, here)
        phi.add_incoming(patched, slow_bb)
        y = phi
    b.ret(y)
    return fn
