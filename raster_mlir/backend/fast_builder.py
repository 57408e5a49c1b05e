"""An `ir.IRBuilder` whose most used methods build their instructions with less Python work.

Why: about a third of building a module's llvmlite objects went to llvmlite's
instruction constructors (a chain of four `__init__`s with their asserts,
the `_binop` decorator, type comparisons through `Type.__eq__`, a new
`VoidType` per store and branch). The methods here make the very same
llvmlite objects - same class, same attributes, same name taken from the
function's name scope in the same order, so the same IR text - directly:
`_add` sets what `NamedValue.__init__` and `Instruction.__init__`
would set. They keep llvmlite's checks that can fail on IR the verifier let
through (operand types of a binary op, a load or store from a non-pointer,
an unknown comparison); anything less common (a named
value, typed pointers, debug metadata on the builder) goes to llvmlite's own
method. A test builds the same functions with both builders and compares
the objects' text (tests/backend/test_fast_builder.py).
"""

from __future__ import annotations

from llvmlite import ir
from llvmlite.ir import instructions as ins
from llvmlite.ir._utils import NameScope

from .llvm_print import _CACHED_REF  # llvmlite's cache of `get_reference()`

_VOID = ir.VoidType()
_I1 = ir.IntType(1)
_CMP = {">": "gt", "<": "lt", "==": "eq", "!=": "ne", ">=": "ge", "<=": "le"}
_new = object.__new__


def _same_type(a, b) -> bool:
    return a is b or a == b


def _arguments_match(args, types) -> bool:
    """Each argument has its parameter's type, and none is metadata (llvmlite's call wraps those)."""
    for a, t in zip(args, types):
        if not (a.type is t or a.type == t) or isinstance(t, ir.MetaDataType):
            return False
    return True


_FAST_MATH, _CALL_ATTRIBUTES = ins.FastMathFlags, ins.CallInstrAttributes
_FAST_MATH_NAMES = _FAST_MATH._known
_new_set = set.__new__


class FastBuilder(ir.IRBuilder):
    """Drop-in `ir.IRBuilder` (module docstring)."""

    def _insert(self, instr):
        if self.debug_metadata is not None:
            return super()._insert(instr)
        self._block.instructions.insert(self._anchor, instr)
        self._anchor += 1

    def _add(self, cls, typ, opname, operands, flags=()):
        """An unnamed `cls` instruction inserted at the builder's position, as `Instruction.__init__`
        and `_insert` make it.

        Its reference (`%".7"`) is stored in llvmlite's reference cache at once: the name is fresh
        and never has quotes or backslashes, so this is what `get_reference` would compute when
        printed."""
        block = self._block
        i = _new(cls)
        scope = block.scope
        # `scope.register("", deduplicate=True)`: the next free `.<n>` (llvmlite's NameScope, without its
        # generic loop and `str.format`; it was a tenth of building a module)
        if type(scope) is NameScope:
            used, counts = scope._useset, scope._basenamemap
            ident = counts[""] + 1
            name = f".{ident}"
            while name in used:
                ident += 1
                name = f".{ident}"
            counts[""] = ident
            used.add(name)
        else:
            name = scope.register("", deduplicate=True)
        d = i.__dict__
        d.update(parent=block, type=typ, _name=name, opname=opname, operands=operands, flags=list(flags), metadata={})
        d[_CACHED_REF] = f'%"{name}"'
        self._insert(i)
        return i

    def _binary(self, opname, lhs, rhs, name, flags):
        if name:
            return getattr(ir.IRBuilder, _BINARY_METHODS[opname])(self, lhs, rhs, name=name, flags=flags)
        if not _same_type(lhs.type, rhs.type):
            raise ValueError(f"Operands must be the same type, got ({lhs.type}, {rhs.type})")
        instr = self._add(ins.Instruction, lhs.type, opname, (lhs, rhs), flags)
        return instr

    def fneg(self, arg, name="", flags=()):
        if name:
            return super().fneg(arg, name=name, flags=flags)
        instr = self._add(ins.Instruction, arg.type, "fneg", [arg], flags)
        return instr

    def _compare(self, prefix, cmpop, lhs, rhs, name):
        op = _CMP.get(cmpop)
        if name or op is None:
            return ir.IRBuilder._icmp(self, prefix, cmpop, lhs, rhs, name)
        if cmpop not in ("==", "!="):
            op = prefix + op
        typ = ir.VectorType(_I1, lhs.type.count) if isinstance(lhs.type, ir.VectorType) else _I1
        instr = self._add(ins.ICMPInstr, typ, "icmp", [lhs, rhs])
        instr.op = op
        return instr

    def fcmp_ordered(self, cmpop, lhs, rhs, name="", flags=()):
        return self._float_compare("o", cmpop, lhs, rhs, name, flags)

    def fcmp_unordered(self, cmpop, lhs, rhs, name="", flags=()):
        return self._float_compare("u", cmpop, lhs, rhs, name, flags)

    def _float_compare(self, prefix, cmpop, lhs, rhs, name, flags):
        op = prefix + _CMP[cmpop] if cmpop in _CMP else cmpop
        if name or op not in ins.FCMPInstr.VALID_OP or any(f not in ins.FCMPInstr.VALID_FLAG for f in flags):
            method = ir.IRBuilder.fcmp_ordered if prefix == "o" else ir.IRBuilder.fcmp_unordered
            return method(self, cmpop, lhs, rhs, name=name, flags=flags)
        typ = ir.VectorType(_I1, lhs.type.count) if isinstance(lhs.type, ir.VectorType) else _I1
        instr = self._add(ins.FCMPInstr, typ, "fcmp", [lhs, rhs], flags)
        instr.op = op
        return instr

    def select(self, cond, lhs, rhs, name="", flags=()):
        if name or not _same_type(lhs.type, rhs.type):
            return super().select(cond, lhs, rhs, name=name, flags=flags)
        instr = self._add(ins.SelectInstr, lhs.type, "select", [cond, lhs, rhs], flags)
        return instr

    def _cast(self, opname, value, typ, name):
        if name or _same_type(value.type, typ):
            return getattr(ir.IRBuilder, opname)(self, value, typ, name=name)
        instr = self._add(ins.CastInstr, typ, opname, [value])
        return instr

    def call(self, fn, args, name="", cconv=None, tail=False, fastmath=(), attrs=(), arg_attrs=None):
        fnty = fn.ftype if type(fn) is ir.Function else None  # what `fn.function_type` returns
        # FastMathFlags takes one name or any iterable of names: a single pass (a generator) would be
        # consumed by the check below and the flags lost
        fastmath = (fastmath,) if isinstance(fastmath, str) else tuple(fastmath)
        if (
            fnty is None or name or cconv is not None or tail or attrs or arg_attrs
            or fnty.var_arg or len(args) != len(fnty.args) or not _arguments_match(args, fnty.args)
            or not _FAST_MATH_NAMES.issuperset(fastmath)
        ):
            return super().call(fn, args, name=name, cconv=cconv, tail=tail, fastmath=fastmath, attrs=attrs, arg_attrs=arg_attrs)
        instr = self._add(ins.CallInstr, fnty.return_type, "call", [fn, *args])
        instr.cconv = fn.calling_convention
        instr.tail = ""
        # `FastMathFlags(fastmath)` and `CallInstrAttributes(())`: sets of known names (checked above),
        # filled without AttributeSet's `add` per name
        flags = instr.fastmath = _new_set(_FAST_MATH)
        set.update(flags, fastmath)
        instr.attributes = _new_set(_CALL_ATTRIBUTES)
        instr.arg_attributes = {}
        return instr

    def icmp_signed(self, cmpop, lhs, rhs, name=""):
        return self._compare("s", cmpop, lhs, rhs, name)

    def icmp_unsigned(self, cmpop, lhs, rhs, name=""):
        return self._compare("u", cmpop, lhs, rhs, name)

    def ptrtoint(self, value, typ, name=""):
        if name or _same_type(value.type, typ):
            return super().ptrtoint(value, typ, name=name)
        instr = self._add(ins.CastInstr, typ, "ptrtoint", [value])
        return instr

    def load(self, ptr, name="", align=None, typ=None):
        if name or typ is None:
            return super().load(ptr, name=name, align=align, typ=typ)
        if not isinstance(ptr.type, ir.PointerType):
            raise TypeError(f"cannot load from value of type {ptr.type} ({str(ptr)!r}): not a pointer")
        instr = self._add(ins.LoadInstr, typ, "load", [ptr])
        instr.align = align
        return instr

    def store(self, value, ptr, align=None):
        pointer_type = ptr.type
        if not isinstance(pointer_type, ir.PointerType) or not pointer_type.is_opaque:
            return super().store(value, ptr, align=align)
        instr = self._add(ins.StoreInstr, _VOID, "store", [value, ptr])
        instr.align = align
        return instr

    def gep(self, ptr, indices, inbounds=False, name="", source_etype=None):
        if name or source_etype is None:
            return super().gep(ptr, indices, inbounds=inbounds, name=name, source_etype=source_etype)
        instr = self._add(ins.GEPInstr, ptr.type, "getelementptr", [ptr, *indices])
        instr.source_etype = source_etype
        instr.pointer = ptr
        instr.indices = indices
        instr.inbounds = inbounds
        return instr

    def phi(self, typ, name="", flags=()):
        if name:
            return super().phi(typ, name=name, flags=flags)
        instr = self._add(ins.PhiInstr, typ, "phi", (), flags)
        instr.incomings = []
        return instr

    def _terminate(self, cls, operands, opname="br"):
        block = self._block
        assert not block.is_terminated
        instr = self._add(cls, _VOID, opname, operands)
        block.terminator = instr
        return instr

    def ret(self, value):
        return self._terminate(ins.Ret, [value], "ret")

    def ret_void(self):
        return self._terminate(ins.Ret, [], "ret void")

    def branch(self, target):
        return self._terminate(ins.Branch, [target])

    def cbranch(self, cond, truebr, falsebr):
        return self._terminate(ins.ConditionalBranch, [cond, truebr, falsebr])


# IR opcode -> the IRBuilder method that makes it (also FastBuilder's, generated below).
_BINARY_METHODS = {"and": "and_", "or": "or_"}
_BINARY_METHODS.update({op: op for op in ("add", "sub", "mul", "xor", "fadd", "fsub", "fmul", "fdiv")})
_CASTS = ("trunc", "zext", "sext", "sitofp", "bitcast", "inttoptr")


def _binary_method(opname):
    def method(self, lhs, rhs, name="", flags=()):
        return self._binary(opname, lhs, rhs, name, flags)

    return method


def _cast_method(opname):
    def method(self, value, typ, name=""):
        return self._cast(opname, value, typ, name)

    return method


for _opname, _method in _BINARY_METHODS.items():
    setattr(FastBuilder, _method, _binary_method(_opname))
for _opname in _CASTS:
    setattr(FastBuilder, _opname, _cast_method(_opname))
