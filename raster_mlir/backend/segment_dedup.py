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

from .llvm_print import function_text

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
        self.kept: dict[str, ir.Function] = {}
        self.merged = 0  # segments replaced by a kept one
        self._nodes: dict[str, str] = {}  # metadata number -> its operands' text ("!{ ... }")
        self._known = 0  # llmod.metadata[:_known] are in _nodes

    def same_as(self, fn: ir.Function) -> ir.Function | None:
        """The kept segment `fn` duplicates (then `fn` is removed from the module), or None.

        Only `noinline` functions: the key's reading of alias scopes holds only for accesses
        that LLVM never compares with another function's (inlined, they would be)."""
        if "noinline" not in fn.attributes:
            return None
        key = segment_key(function_text(fn), fn.name, self._node)
        kept = self.kept.setdefault(key, fn)
        if kept is fn:
            return None
        del self.llmod.globals[fn.name]
        self.merged += 1
        return kept

    def _node(self, number: str) -> str:
        if number not in self._nodes:
            for md in self.llmod.metadata[self._known :]:
                text = str(md)
                self._nodes[text[1 : text.index(" ")]] = text[text.index(" = ") + 3 :]
            self._known = len(self.llmod.metadata)
        return self._nodes[number]


def segment_key(text: str, name: str, node) -> str:
    """`text` (a function's) with its name and metadata references replaced as the module docstring says.

    `node(number)` is the text of metadata node !number after its `=` (`!{ !1, !2 }`, `distinct !{ ... }`)."""
    header, _, body = text.partition("\n")
    header = header.replace(f'@"{name}"(', "@SELF(", 1)
    scopes: dict[str, int] = {}  # scope node -> its number in this function
    domains: dict[str, int] = {}
    table: list[str] = []  # each scope's domain, in the function's numbering
    for kind, ref in _SCOPES.findall(body):
        if kind == "alias.scope":
            for scope in _REF.findall(node(ref)):
                if scope not in scopes:
                    scopes[scope] = len(scopes)
                    operands = _REF.findall(_STRING.sub("", node(scope)))
                    table.append(",".join(f"d{domains.setdefault(d, len(domains))}" for d in operands))

    def scope_list(match: re.Match) -> str:
        used = sorted(scopes[s] for s in _REF.findall(node(match.group(2))) if s in scopes)
        return f"!{match.group(1)} {{{','.join(map(str, used))}}}"

    def loop(match: re.Match) -> str:
        ref = match.group(1)
        operands = [r for r in _REF.findall(node(ref)) if r != ref]  # the loop id refers to itself first
        return "!llvm.loop <" + ";".join(_loop_property(node(r)) for r in operands) + ">"

    body = _LOOP.sub(loop, _SCOPES.sub(scope_list, body))
    return header + "\n" + body + "\nscopes " + "|".join(table)


def _loop_property(text: str) -> str:
    """A loop property node's text; a `raster.loop` description (a diagnostic name) is left out."""
    if text.startswith('!{ !"raster.loop"'):
        return "raster.loop"
    return text  # with its references as they are: the same nodes, or no match
