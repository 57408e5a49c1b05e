"""Kernel segments with the same code compiled once (issue 13: cold compile time).

Why: a deep MLP's train step repeats the same hidden layer, and its kernel
segments (segment_emit.py) repeat with it: at 8 layers segments 7 and 9 are
the same code on other buffers. LLVM optimised and generated code for each.
Now the emitter asks `SegmentDedup.same_as(fn)` when a segment is finished;
for a duplicate it deletes the new function and calls the first one instead:

    before: define internal void @"k.segment7"(...) { A }   define internal void @"k.segment9"(...) { A' }
            call @"k.segment7"(%x, ...)   call @"k.segment9"(%y, ...)
    after:  define internal void @"k.segment7"(...) { A }
            call @"k.segment7"(%x, ...)   call @"k.segment7"(%y, ...)

Two segments are the same when their printed texts are equal once their own
names are replaced by one placeholder and their metadata references by what
they mean inside the function. Exact text equality finds none: each buffer
has its own alias scope across all segments, and each loop its own loop id.
So the key (`segment_key`) replaces:

- `!alias.scope !N` by the function's own numbering of the scopes in N's list
  (in order of first use in the function), with each scope's domain numbered
  the same way; `!noalias !M` by the scopes of M's list that the function
  itself uses, in that numbering. Scoped no-alias analysis decides a pair of
  the function's accesses from those alone (all of A's scopes in one domain
  are in B's no-alias list); a segment is `noinline` and its accesses are
  never compared with another function's, so the scopes' names and the other
  buffers' scopes in the lists do not matter.
- `!llvm.loop !L` by its loop properties (the loop id itself is distinct per
  loop; its `raster.loop` description, a name for diagnostics, is left out:
  the kept segment's loops keep their own names in llvm_remarks' reports).
- Any other metadata reference stays as it is (the same node, or no match).

Everything else must be equal: instructions, constants, attributes, types,
callees. The key is built from text only, so which segments merge, and the
module, depend on the IR alone (deterministic); the kept function is the
code the duplicate would have been, so results are bitwise the same
(tests/backend/test_segment_dedup.py compares with a compile without it).
"""

from __future__ import annotations

import re

from llvmlite import ir

from .llvm_print import metadata_text
from .llvm_remarks import LOOP_NAME_KEY

# `merge_identical_segments` of EmitOptions; tests switch it off to compare.
MERGE_IDENTICAL_SEGMENTS = True

_REF = re.compile(r"!(\d+)")
_STRING = re.compile(r'!"(?:[^"\\]|\\.)*"')
_SCOPES = re.compile(r"!(alias\.scope|noalias) !(\d+)")
_LOOP = re.compile(r"!llvm\.loop !(\d+)")


class SegmentDedup:
    """The segments of one module so far, by key: the first of each key is kept."""

    def __init__(self, llmod: ir.Module):
        self.llmod = llmod
        # (prototype without the name, number of lines) -> the kept segments of that shape, with their texts
        self._by_shape: dict[tuple[str, int], list[tuple[ir.Function, str]]] = {}
        self._keys: dict[str, str] = {}  # kept segment -> its key (segment_key), once needed
        self.merged = 0  # segments replaced by a kept one
        self._by_number: dict[str, object] = {}  # metadata number -> node (llmod.metadata[:_known])
        self._known = 0
        self._texts: dict[str, str] = {}  # metadata number -> the node's text after its `=`
        self._operand_refs: dict[str, tuple[str, ...]] = {}

    def drop(self, fn: ir.Function) -> None:
        """Remove the duplicate segment `fn` from the module (its calls call the kept one), counted."""
        del self.llmod.globals[fn.name]
        self.merged += 1

    def same_as(self, fn: ir.Function, text: str) -> ir.Function | None:
        """The kept segment `fn` (printed as `text`) duplicates, or None. A duplicate is
        removed from the module.

        Only `noinline` functions: the key's reading of alias scopes holds only for accesses
        that LLVM never compares with another function's (inlined, they would be)."""
        if "noinline" not in fn.attributes:
            return None
        # Keys are made only for functions with the same prototype and number of lines: most
        # segments have no such twin, and making a key costs about 0.2 ms.
        header, _, rest = text.partition("\n")
        shape = (header.replace(f'@"{fn.name}"(', "@SELF(", 1), rest.count("\n"))
        twins = self._by_shape.setdefault(shape, [])
        key = None
        for kept, kept_text in twins:
            if key is None:
                key = segment_key(text, fn.name, self._node, self._refs)
            kept_key = self._keys.get(kept.name)
            if kept_key is None:
                kept_key = self._keys[kept.name] = segment_key(kept_text, kept.name, self._node, self._refs)
            if kept_key == key:
                self.drop(fn)
                return kept
        twins.append((fn, text))
        if key is not None:
            self._keys[fn.name] = key
        return None

    def _md(self, number: str):
        if number not in self._by_number:
            for md in self.llmod.metadata[self._known :]:
                self._by_number[md.name] = md
            self._known = len(self.llmod.metadata)
        return self._by_number[number]

    def _node(self, number: str) -> str:
        text = self._texts.get(number)
        if text is None:
            md = self._md(number)
            if _is_loop_description(md):  # not printed: llvmlite escapes strings character by character
                return _LOOP_DESCRIPTION
            line = metadata_text(md)
            text = self._texts[number] = line[line.index(" = ") + 3 :]
        return text

    def _refs(self, number: str) -> tuple[str, ...]:
        """The nodes node !number refers to (what `_REF` finds in its text without strings),
        read from its operands: printing a no-alias list of every buffer costs more."""
        refs = self._operand_refs.get(number)
        if refs is None:
            md = self._md(number)
            if type(md) is ir.values.MDValue:
                refs = tuple([op._name for op in md.operands if type(op) is _MD_NODE])
            else:
                refs = tuple(_REF.findall(_STRING.sub("", self._node(number))))
            self._operand_refs[number] = refs
        return refs


def segment_key(text: str, name: str, node, refs) -> str:
    """`text` (a function's) with its name and metadata references replaced as the module docstring says.

    `node(number)`: the text of metadata node !number after its `=` (`!{ !1, !2 }`, `distinct !{ ... }`);
    `refs(number)`: the numbers of the nodes it refers to, in order."""
    header, _, body = text.partition("\n")
    header = header.replace(f'@"{name}"(', "@SELF(", 1)
    scopes: dict[str, int] = {}  # scope node -> its number in this function
    domains: dict[str, int] = {}
    table: list[str] = []  # each scope's domain, in the function's numbering
    for kind, ref in _SCOPES.findall(body):
        if kind == "alias.scope":
            for scope in refs(ref):
                if scope not in scopes:
                    scopes[scope] = len(scopes)
                    table.append(",".join(f"d{domains.setdefault(d, len(domains))}" for d in refs(scope)))
    lists: dict[str, str] = {}  # scope list node -> its scopes in the function's numbering

    def scope_list(match: re.Match) -> str:
        ref = match.group(2)
        used = lists.get(ref)
        if used is None:
            used = lists[ref] = ",".join(map(str, sorted(scopes[s] for s in refs(ref) if s in scopes)))
        return f"!{match.group(1)} {{{used}}}"

    def loop(match: re.Match) -> str:
        ref = match.group(1)
        operands = [r for r in refs(ref) if r != ref]  # the loop id refers to itself first
        return "!llvm.loop <" + ";".join(_loop_property(node(r)) for r in operands) + ">"

    body = _LOOP.sub(loop, _SCOPES.sub(scope_list, body))
    return header + "\n" + body + "\nscopes " + "|".join(table)


_MD_NODE = ir.values.MDValue
_LOOP_DESCRIPTION = '!{ !"raster.loop", ... }'  # a loop's name for diagnostics (llvm_remarks.py)


def _is_loop_description(md) -> bool:
    operands = getattr(md, "operands", ())
    return type(md) is _MD_NODE and bool(operands) and getattr(operands[0], "string", None) == LOOP_NAME_KEY


def _loop_property(text: str) -> str:
    """A loop property node's text; a `raster.loop` description (a diagnostic name) is left out."""
    if text.startswith(f'!{{ !"{LOOP_NAME_KEY}"'):
        return _LOOP_DESCRIPTION
    return text  # with its references as they are: the same nodes, or no match
