"""FastBuilder makes the same llvmlite objects as ir.IRBuilder: same text, same names, same errors."""

from __future__ import annotations

import pytest
from llvmlite import ir

from raster_mlir.backend.fast_builder import FastBuilder
from raster_mlir.backend.llvm_print import module_text

F64, I64, I32, I1, PTR = ir.DoubleType(), ir.IntType(64), ir.IntType(32), ir.IntType(1), ir.PointerType()


def _build(builder_class) -> ir.Module:
    """One function using every FastBuilder method, fast and fallback paths, beside llvmlite-made values."""
    module = ir.Module(name="m")
    fn = ir.Function(module, ir.FunctionType(F64, [F64, PTR, I64, ir.VectorType(I64, 4)]), name="f")
    x, p, n, v = fn.args
    entry, loop, exit_ = fn.append_basic_block("entry"), fn.append_basic_block("loop"), fn.append_basic_block("exit")
    b = builder_class(entry)
    s = b.fadd(x, x, flags=("reassoc", "contract"))
    s = b.fmul(s, x, name="named")  # a named value goes through llvmlite's method
    s = b.fsub(b.fdiv(s, x), ir.Constant(F64, 1.5), flags=["nsz"])
    s = b.fneg(s, flags=("contract",))
    i = b.add(n, ir.Constant(I64, 3), flags=("nsw",))
    i = b.mul(b.sub(i, n), n)
    i = b.xor(b.or_(b.and_(i, n), n), n)
    c = b.icmp_signed("<", i, n)
    c2 = b.icmp_unsigned(">=", b.ptrtoint(p, I64), n)
    b.icmp_signed("!=", v, v)  # a vector compare gives <4 x i1>
    b.ptrtoint(n, I64)  # same type: no instruction
    addr = b.gep(p, [i], inbounds=True, source_etype=F64)
    b.gep(p, [n, i], source_etype=ir.ArrayType(F64, 4), name="g")
    value = b.load(addr, typ=F64, align=8)
    b.load(addr, typ=F64, name="loaded")
    b.store(value, addr, align=8)
    b.store(value, p)
    ext = ir.Function(module, ir.FunctionType(F64, [F64]), name="ext")
    b.call(ext, [value], fastmath=("reassoc", "nnan"))
    b.call(ext, [value], fastmath=(flag for flag in ("ninf", "nsz")))  # one pass: must not be consumed
    b.call(ext, [value], fastmath="fast")  # one name
    b.call(ext, [value], cconv="fastcc", tail=True)  # llvmlite's own, between ours
    b.call(ir.Function(module, ir.FunctionType(I64, [PTR], var_arg=True), name="printf"), [p, x])
    b.fcmp_ordered("<", x, value, flags=("nnan",))
    b.fcmp_unordered("uno", x, value)
    b.fcmp_ordered("ord", x, value, name="named_compare")
    b.select(c, x, value, flags=("nnan",))
    narrow = b.trunc(n, I32)
    b.sitofp(b.sext(b.zext(narrow, I64), I64), F64)  # sext to the same type: no instruction
    b.inttoptr(b.bitcast(x, I64), PTR)
    b.cbranch(b.and_(c, c2), loop, exit_)
    b = builder_class(loop)
    phi = b.phi(F64, flags=("nnan",))
    phi.add_incoming(value, entry)
    phi.add_incoming(phi, loop)
    b.phi(I64, name="iv").add_incoming(n, entry)
    b.branch(loop).set_metadata("llvm.loop", module.add_metadata([ir.MetaDataString(module, "x")]))
    b = builder_class(exit_)
    b.ret(b.fadd(value, x))
    g = ir.Function(module, ir.FunctionType(ir.VoidType(), []), name="g")
    builder_class(g.append_basic_block()).ret_void()
    return module


def test_same_module_text_as_irbuilder():
    expected = str(_build(ir.IRBuilder))
    assert 'call ninf nsz double @"ext"' in expected and 'call fast double @"ext"' in expected
    assert str(_build(FastBuilder)) == expected
    assert module_text(_build(FastBuilder)) == expected


# FastBuilder fills llvmlite's reference cache when it makes an instruction (checked below).
_CACHED_REF = "_StringReferenceCaching__cached_refstr"


def test_same_instruction_objects_as_irbuilder():
    skipped = ("parent", "operands", "incomings", "pointer", "indices", _CACHED_REF)

    def attributes(module):
        return [
            (type(i), {k: v for k, v in vars(i).items() if k not in skipped})
            for block in module.get_global("f").blocks
            for i in block.instructions
        ]

    fast_module = _build(FastBuilder)
    for block in fast_module.get_global("f").blocks:
        for i in block.instructions:
            if _CACHED_REF in vars(i):  # what llvmlite's get_reference would compute
                assert vars(i)[_CACHED_REF] == i._get_reference()
    slow, fast = attributes(_build(ir.IRBuilder)), attributes(fast_module)
    assert [t for t, _ in fast] == [t for t, _ in slow]
    for (_, a), (_, b) in zip(fast, slow):
        assert a.keys() == b.keys()
        assert {k: str(v) for k, v in a.items()} == {k: str(v) for k, v in b.items()}


@pytest.mark.parametrize("builder_class", [ir.IRBuilder, FastBuilder])
def test_same_errors_as_irbuilder(builder_class):
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [F64, I64]), name="f")
    b = builder_class(fn.append_basic_block("entry"))
    x, n = fn.args
    with pytest.raises(ValueError, match="Operands must be the same type"):
        b.fadd(x, n)
    with pytest.raises(ValueError, match="invalid comparison"):
        b.icmp_signed("<>", n, n)
    with pytest.raises(TypeError, match="not a pointer"):
        b.load(n, typ=F64)
    with pytest.raises(TypeError, match="not a pointer"):
        b.store(x, n)
    with pytest.raises(ValueError, match="invalid comparison"):
        b.fcmp_ordered("<>", x, x)
    with pytest.raises(ValueError, match="invalid flag"):
        b.fcmp_unordered("<", x, x, flags=("nsw",))
    with pytest.raises(AssertionError):
        b.select(b.icmp_signed("<", n, n), x, n)
    with pytest.raises(TypeError, match="arg mismatch"):
        b.call(ir.Function(module, ir.FunctionType(F64, [F64]), name="h"), [n])
    b.ret_void()
    with pytest.raises(AssertionError):
        b.branch(fn.append_basic_block())
