"""The text of an llvmlite module: the same bytes as `str(module)`, in less Python time.

Why: printing the llvmlite objects was about 45% of LLVM IR emission (the
2-layer train step: 10.6 of 23 ms). llvmlite builds each instruction's line
through `str.format` calls, `_to_string`/`descr` layers and a `rstrip` per
object; here each common instruction class has one f-string with the same
layout (spacing, trailing blanks that the `rstrip` removes included), looked
up by exact class. Anything else - other instruction classes, subclasses,
a function prototype, a global, a loop ID node - is printed by llvmlite
itself, so the text is llvmlite's for every module; a test compares the two
on representative programs (tests/backend/test_llvm_print.py).

    module_text(llmod) == str(llmod)          function_text(fn) == str(fn)

An instruction llvmlite has already printed keeps llvmlite's cached text
(its `str` would return that cache too).
"""

from __future__ import annotations

from llvmlite import ir
from llvmlite.ir import instructions as ins
from llvmlite.ir._utils import _StringReferenceCaching

# llvmlite's per-object caches of `str(value)` and `value.get_reference()` (ir/_utils.py)
_CACHED_STR = "_StrCaching__cached_str"
_CACHED_REF = "_StringReferenceCaching__cached_refstr"


def _ref(v) -> str:
    """`v.get_reference()`, filling llvmlite's cache the same way but without the AttributeError
    that its first call per object raises and catches (most references are computed once: that
    exception was a third of the printing time)."""
    d = v.__dict__
    ref = d.get(_CACHED_REF)
    if ref is not None:  # most operands: built by FastBuilder or printed before
        return ref
    if not isinstance(v, _StringReferenceCaching):
        return v.get_reference()
    ref = d[_CACHED_REF] = v._get_reference()
    return ref


def _metadata(i) -> str:
    """`_stringify_metadata(leading_comma=True)`: computed by `instruction_text` when `i.metadata` is not
    empty (most instructions have none), and given to the formatters below as `md`."""
    md = i.metadata
    if not md:
        return ""
    return "".join([f", !{k} {_ref(v)}" for k, v in md.items()])


def _typed(values) -> str:
    return ", ".join([f"{v.type} {v.__dict__.get(_CACHED_REF) or _ref(v)}" for v in values])


def _generic(i, md: str) -> str:
    opname = " ".join([i.opname, *i.flags]) if i.flags else i.opname
    # `v.__dict__.get(_CACHED_REF) or _ref(v)`: `_ref` without a call when the reference is cached
    # (every operand FastBuilder made), here and in the other formatters of the commonest instructions
    operands = ", ".join([v.__dict__.get(_CACHED_REF) or _ref(v) for v in i.operands])
    return f"{opname} {i.type} {operands}{md}"


def _terminator(i, md: str) -> str:
    return f"{i.opname} {_typed(i.operands)}{md}"


def _ret(i, md: str) -> str:
    if i.operands:
        v = i.operands[0]
        return f"{i.opname} {v.type} {_ref(v)}{md}"
    return f"{i.opname}{md}"


def _compare(i, md: str) -> str:
    lhs, rhs = i.operands[0], i.operands[1]
    flags = "".join([" " + f for f in i.flags])
    return f"{i.opname}{flags} {i.op} {lhs.type} {_ref(lhs)}, {_ref(rhs)} {md}"


def _cast(i, md: str) -> str:
    v = i.operands[0]
    return f"{i.opname} {v.type} {_ref(v)} to {i.type} {md}"


def _load(i, md: str) -> str:
    p = i.operands[0]
    align = "" if i.align is None else ", align %d" % i.align
    return f"load {i.type}, {p.type} {p.__dict__.get(_CACHED_REF) or _ref(p)}{align}{md}"


def _store(i, md: str) -> str:
    v, p = i.operands
    align = "" if i.align is None else ", align %d" % i.align
    v_ref, p_ref = v.__dict__.get(_CACHED_REF) or _ref(v), p.__dict__.get(_CACHED_REF) or _ref(p)
    return f"store {v.type} {v_ref}, {p.type} {p_ref}{align}{md}"


def _gep(i, md: str) -> str:
    op = "getelementptr inbounds" if i.inbounds else "getelementptr"
    p = i.pointer
    return f"{op} {i.source_etype}, {p.type} {p.__dict__.get(_CACHED_REF) or _ref(p)}, {_typed(i.indices)} {md}"


def _phi(i, md: str) -> str:
    incoming = ", ".join([f"[{_ref(v)}, {_ref(b)}]" for v, b in i.incomings])
    return f"phi {' '.join(i.flags)} {i.type} {incoming} {md}"


def _select(i, md: str) -> str:
    c, a, b = i.operands
    return (
        f"select {' '.join(i.flags)} {c.type} {_ref(c)}, {a.type} {_ref(a)}, "
        f"{b.type} {_ref(b)} {md}"
    )


_FAST_MATH = ins.FastMathFlags


def _call(i, md: str) -> str:
    callee = i.operands[0]
    fnty = callee.ftype if type(callee) is ir.Function else callee.function_type  # the same type
    ret = fnty.return_type
    arg_attributes = i.arg_attributes
    if arg_attributes:
        args = []
        for k, a in enumerate(i.operands[1:]):
            attrs = " ".join(arg_attributes[k]._to_list(a.type)) + " " if k in arg_attributes else ""
            args.append(f"{a.type} {attrs}{_ref(a)}")
    else:
        args = [f"{a.type} {a.__dict__.get(_CACHED_REF) or _ref(a)}" for a in i.operands[1:]]
    callee_ref = f"{fnty if fnty.var_arg else ret} {_ref(callee)}"
    if i.cconv:
        callee_ref = f"{i.cconv} {callee_ref}"
    tail = f"{i.tail} " if i.tail else ""
    fn_attrs = " " + " ".join(i.attributes._to_list(ret)) if i.attributes else ""
    fastmath = i.fastmath
    if fastmath:  # FastMathFlags._to_list is the sorted names (AttributeSet._expand keeps each name)
        fastmath = " " + " ".join(sorted(fastmath) if type(fastmath) is _FAST_MATH else fastmath._to_list(ret))
    else:
        fastmath = ""
    return f"{tail}{i.opname}{fastmath} {callee_ref}({', '.join(args)}){fn_attrs}{md}"


def _vector_element(i, md: str) -> str:
    return f"{i.opname} {_typed(i.operands)}"


def _shuffle(i, md: str) -> str:
    return f"shufflevector {_typed(i.operands)} {md}"


def _extract_value(i, md: str) -> str:
    a = i.aggregate
    return f"extractvalue {a.type} {_ref(a)}, {', '.join([str(k) for k in i.indices])} {md}"


def _insert_value(i, md: str) -> str:
    a, v = i.aggregate, i.value
    indices = ", ".join([str(k) for k in i.indices])
    return f"insertvalue {a.type} {_ref(a)}, {v.type} {_ref(v)}, {indices} {md}"


# Exact classes only: a subclass may print differently (it goes to llvmlite).
_FORMATS = {
    ins.Instruction: _generic,
    ins.Branch: _terminator,
    ins.ConditionalBranch: _terminator,
    ins.Ret: _ret,
    ins.ICMPInstr: _compare,
    ins.FCMPInstr: _compare,
    ins.CastInstr: _cast,
    ins.LoadInstr: _load,
    ins.StoreInstr: _store,
    ins.GEPInstr: _gep,
    ins.PhiInstr: _phi,
    ins.SelectInstr: _select,
    ins.CallInstr: _call,
    ins.ExtractElement: _vector_element,
    ins.InsertElement: _vector_element,
    ins.ShuffleVector: _shuffle,
    ins.ExtractValue: _extract_value,
    ins.InsertValue: _insert_value,
}
_VOID = ir.VoidType


def instruction_text(i) -> str:
    """`str(i)` for an instruction."""
    d = i.__dict__
    cached = d.get(_CACHED_STR)
    if cached is not None:
        return cached
    fmt = _FORMATS.get(type(i))
    if fmt is None:
        return str(i)
    md = _metadata(i) if i.metadata else ""
    if isinstance(i.type, _VOID):
        return fmt(i, md).rstrip()
    ref = d.get(_CACHED_REF)
    if ref is None:  # NamedValue._get_reference, inlined (the classes of _FORMATS do not override it)
        name = i._name
        ref = f'%"{name}"' if '"' not in name and "\\" not in name else i._get_reference()
        d[_CACHED_REF] = ref
    return f"{ref} = {fmt(i, md)}".rstrip()


_ARGUMENT_ATTRIBUTES = ir.values.ArgumentAttributes
_TYPED_ARGUMENT_ATTRIBUTES = frozenset(k for k, typed in _ARGUMENT_ATTRIBUTES._known.items() if typed)


def _argument_text(a) -> str:
    """`str(a)` for a function argument (`Argument.__str__`), without llvmlite's `_expand` and property
    calls per attribute: the prototypes of segment functions list dozens of buffer arguments."""
    attributes = a.attributes
    if type(a) is not ir.Argument or type(attributes) is not _ARGUMENT_ATTRIBUTES:
        return str(a)
    names = sorted(attributes)
    if _TYPED_ARGUMENT_ATTRIBUTES.intersection(names):  # byval(<type>)...: llvmlite's own text
        return str(a)
    if attributes._align:
        names.append(f"align {attributes._align:d}")
    if attributes._dereferenceable:
        names.append(f"dereferenceable({attributes._dereferenceable:d})")
    if attributes._dereferenceable_or_null:
        names.append(f"dereferenceable_or_null({attributes._dereferenceable_or_null:d})")
    if names:
        return f"{a.type} {' '.join(names)} {_ref(a)}"
    return f"{a.type} {_ref(a)}"


def prototype_text(fn: ir.Function) -> str:
    """The first line of `str(fn)` (`Function.descr_prototype`, with its arguments printed faster)."""
    if type(fn) is not ir.Function:
        buf: list[str] = []
        fn.descr_prototype(buf)
        return buf[0]
    ftype = fn.ftype
    state = "define" if fn.blocks else "declare"
    args = ", ".join([_argument_text(a) for a in fn.args])
    attrs = " " + " ".join(fn.attributes._to_list(ftype.return_type)) if fn.attributes else ""
    if any(fn.args):
        vararg = ", ..." if ftype.var_arg else ""
    else:
        vararg = "..." if ftype.var_arg else ""
    prefix = " ".join([str(x) for x in [state, fn.linkage, fn.calling_convention, fn.return_value] if x])
    metadata = fn._stringify_metadata()
    metadata = f" {metadata}" if metadata else ""
    section = f' section "{fn.section}"' if fn.section else ""
    return f"{prefix} {_ref(fn)}({args}{vararg}){attrs}{section}{metadata}\n"


def function_text(fn: ir.Function) -> str:
    """`str(fn)`: llvmlite's prototype, then the blocks."""
    buf: list[str] = [prototype_text(fn)]
    if fn.blocks:
        buf.append("{\n")
        for block in fn.blocks:
            buf.append(f"{block._format_name()}:\n")
            buf += [f"  {instruction_text(i)}\n" for i in block.instructions]
        buf.append("}\n")
    return "".join(buf)


def _metadata_node_text(md) -> str:
    """`str(md)` for an `MDValue` (`MDValue.descr` behind `NamedValue._to_string`)."""
    operands = []
    for op in md.operands:
        if isinstance(op.type, ir.MetaDataType):
            operands.append("null" if isinstance(op, ir.Constant) and op.constant is None else _ref(op))
        else:
            operands.append(f"{op.type} {_ref(op)}")
    return f"{_ref(md)} = !{{ {', '.join(operands)} }}"


def module_text(module: ir.Module) -> str:
    """`str(module)` (llvmlite's `Module.__repr__`, line for line)."""
    lines = header_lines(module)
    lines += [global_text(v) for v in module.globals.values()]
    for name, node in module.namedmetadata.items():
        lines.append(f"!{name} = !{{ {', '.join(_ref(i) for i in node.operands)} }}")
    lines += [metadata_text(md) for md in module.metadata]
    return "\n".join(lines)


def header_lines(module: ir.Module) -> list[str]:
    """The lines of `str(module)` before its globals: module ID, triple, data layout, identified types."""
    lines = [
        f'; ModuleID = "{module.name}"',
        f'target triple = "{module.triple}"',
        f'target datalayout = "{module.data_layout}"',
        "",
    ]
    return lines + [t.get_declaration() for t in module.get_identified_types().values()]


def global_text(v) -> str:
    """`str(v)` for a global value of a module (a function, a global variable)."""
    return function_text(v) if type(v) is ir.Function else str(v)


def metadata_text(md) -> str:
    """`str(md)` for a metadata node of `module.metadata`."""
    return _metadata_node_text(md) if type(md) is ir.values.MDValue and _CACHED_STR not in md.__dict__ else str(md)
