"""xDSL scalar/memref types -> llvmlite types (shared by the emitters)."""

from __future__ import annotations

import struct

from llvmlite import ir
from xdsl.dialects.builtin import Float32Type, Float64Type, IndexType, IntegerType, MemRefType, VectorType

from ..errors import CompileError
from .analysis import BufferType

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()  # LLVM 22 has only opaque pointers


# (type text, key of the value: _value_key) -> its constant, for the process (shared_constant, splat_constant);
# emptied when it reaches MAX_SHARED_CONSTANTS (a process compiling many programs with many
# different constants keeps a bounded cache).
_CONSTANTS: dict[tuple[str, str], ir.Constant] = {}
MAX_SHARED_CONSTANTS = 4096


def _remember(key: tuple[str, str], constant: ir.Constant) -> ir.Constant:
    if len(_CONSTANTS) >= MAX_SHARED_CONSTANTS:
        _CONSTANTS.clear()
    return _CONSTANTS.setdefault(key, constant)


def _value_key(value) -> str:
    """A text that tells apart every two values `ir.Constant` may print differently.

    A float is keyed by its bits: its `repr` is 'nan' for every NaN (-nan and payload NaNs too), which
    `ir.Constant` prints by their bits. Other values (ints, `ir.Undefined`) by their `repr`, which tells
    1 from 1.0.
    """
    if isinstance(value, float):
        return f"{type(value).__name__} {struct.pack('<d', value).hex()}"
    return repr(value)


def shared_constant(ty: ir.Type, value) -> ir.Constant:
    """`ir.Constant(ty, value)` for a scalar `value`, one object per (type, value) (why: splat_constant)."""
    key = (str(ty), _value_key(value))
    constant = _CONSTANTS.get(key)
    if constant is None:
        constant = _remember(key, ir.Constant(ty, value))
    return constant


def splat_constant(ty: ir.VectorType, value) -> ir.Constant:
    """`ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)`, one object per (type, value).

    Why: llvmlite formats a vector constant lane by lane each time a new one is printed (a sixth of
    the printing of a vector kernel went to the splats of broadcasts, shuffle masks and vector maths
    coefficients); a constant is immutable and caches its text, so one object may serve every
    instruction of every module. The key is a float's bits (which tell -0.0 from 0.0 and one NaN from
    another) or another value's `repr` (which tells 1 from 1.0: both print alike, but this keeps the key
    exact); `ir.Undefined` gives `undef`.
    """
    key = (str(ty), "splat " + _value_key(value))
    constant = _CONSTANTS.get(key)
    if constant is None:
        if value is ir.Undefined:
            constant = ir.Constant(ty, ir.Undefined)
        else:
            constant = ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)
        constant = _remember(key, constant)
    return constant


def llvm_type(t) -> ir.Type:
    """The llvmlite type of an xDSL scalar or memref type (a memref is a bare pointer)."""
    fixed = _FIXED_TYPES.get(t.__class__)  # exact classes without parameters: no isinstance chain
    if fixed is not None:
        return fixed
    if isinstance(t, IndexType):
        return I64  # index is 64-bit on every host we target (x86-64)
    if isinstance(t, IntegerType):
        return ir.IntType(t.width.data)
    if isinstance(t, Float64Type):
        return F64
    if isinstance(t, Float32Type):
        return F32
    if isinstance(t, MemRefType):
        return PTR
    if isinstance(t, VectorType) and len(t.get_shape()) == 1:
        return ir.VectorType(llvm_type(t.element_type), t.get_shape()[0])
    raise CompileError(f"type {t} is not supported by the LLVM backend")


# The llvmlite type of each xDSL type class whose instances all map to one type (llvm_type).
_FIXED_TYPES = {IndexType: I64, Float64Type: F64, Float32Type: F32, MemRefType: PTR}

# One object per element type (types are immutable; each keeps its printed text once printed).
_ELEMENT_TYPES = {"float64": F64, "float32": F32, "int64": I64, "int32": I32}


def element_llvm_type(buf: BufferType) -> ir.Type:
    """The llvmlite element type of a buffer."""
    return _ELEMENT_TYPES[buf.dtype]
