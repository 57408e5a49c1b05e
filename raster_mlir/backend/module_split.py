"""One LLVM module as several, so that LLVM optimises and generates code for them on two threads.

LLVM's optimisation and code generation took about half of a train step's
cold compile, on one core. A kernel cut into segment functions
(segment_emit.py) can be compiled as several modules at once: jit.py gives
each its own LLVM context, compiles them on two threads and loads all the
objects into one engine, where the kernel's calls to its segments are
linked by name.

Algorithm, on the IR text that llvmlite prints (`define` line, `{`, body,
`}`; one line per global and per metadata node):
1. The movable functions are the internal `noinline` functions (the
   segments): nothing but their callers' call sites depends on them. The
   rest of the module (entry points, kernel, everything else) is part 0,
   except that when it has `optnone` entry points, the other external
   functions (the kernel, a sequence of segment calls) are packed like a
   segment, so that part 0 holds only the entry points and the globals and
   is compiled without optimisation (`ModulePart.entry_points_only`, jit.py).
2. The movable functions (and that kernel), heaviest first (`llvm_cost`, with
   the helpers they reach), are packed into at most MAX_PARTS - 1 more parts,
   one per segment at most, each into the lightest so far. jit.py compiles
   the heaviest parts first.
3. A part holds its functions, the internal functions they reach (helpers
   such as vector maths or an outlined parallel loop: copied into each part
   that uses them, internal linkage keeps the copies apart), the vector
   variants that a function it holds names in its
   `vector-function-abi-variant` attribute (vmath/fallback.py: the loop
   vectoriser finds them in the module by name; without them the part's
   loops calling that function stay scalar; they are external during the
   pipeline and internalised after it, jit.py), declarations of
   the other functions it calls, every declaration and metadata node of the
   module, and the globals: defined in part 0, `external` elsewhere (internal
   constants are copied instead).
   A function moved out loses `internal` (part 0 calls it by name) and is
   declared in part 0. Vector variants are not roots of part 0: they go
   where a function names them.
A module without segments is still split in two when it has `optnone`
entry points: they and the kernel, compiled apart on two threads, cost
1-2 ms less CPU than the whole module (code generation at O0, no pass
pipeline; measured on a 10-element softmax, logsumexp, a 64x64 matmul,
the damped spring's gradient), and the kernel's compile is the wait.
Modules without two movable functions or entry points, not in llvmlite's
layout, or whose segments reference a global that is neither external nor
an internal constant (copied into each part that reads it) are not split
(None).

    part 0: define void @k(...) { call @k.segment1(...) ... }     declare {i64} @k.segment1(...)
    part 1: define {i64} @k.segment1(...) noinline { ... }
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PART_SEPARATOR = "; ---- raster_mlir: the next LLVM module of this compile ----"
MAX_PARTS = 8  # fixed, not the number of CPUs: the object code is then the same on every machine
_NAME = re.compile(r'@("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)')
_DEFINE = re.compile(r"^define (?:(internal|private) )?")
_VECTOR_VARIANT = re.compile(r"_ZGV\w+?_[^(,\"]+\(([^)]+)\)")  # in a vector-function-abi-variant attribute


@dataclass
class _Function:
    name: str
    prototype: str  # the `define ...` line
    text: str  # prototype, braces and body
    internal: bool
    movable: bool
    references: set[str]  # names in its body, and the vector variants its attribute names
    weight: int  # an estimate of LLVM's work (`llvm_cost`), an eighth of it for `optnone` functions
    optnone: bool


class _NotOurFormat(Exception):
    pass


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


def _parse(text: str) -> tuple[list[str], dict[str, _Function], list[tuple[str, str]]]:
    """(lines before the first global, functions by name, other top-level lines as (name or '', line))."""
    lines = text.split("\n")
    header: list[str] = []
    functions: dict[str, _Function] = {}
    others: list[tuple[str, str]] = []
    k = 0
    while k < len(lines) and not (lines[k].startswith(("define ", "declare ", "@", "!"))):
        header.append(lines[k])
        k += 1
    while k < len(lines):
        line = lines[k]
        if line.startswith("define "):
            if k + 1 == len(lines) or lines[k + 1] != "{" or "}" not in lines[k + 1 :]:
                raise _NotOurFormat  # not llvmlite's layout (e.g. hand-written IR): leave the module whole
            end = lines.index("}", k)
            f = _function(lines[k : end + 1])
            functions[f.name] = f
            k = end + 1
            continue
        name = _NAME.match(line)
        others.append((_unquote(name.group(1)) if name else "", line))
        k += 1
    return header, functions, others


def _function(lines: list[str]) -> _Function:
    """The function whose text is `lines` (its `define` line, `{`, body, `}`)."""
    line = lines[0]
    found = _NAME.search(line)
    if found is None:
        raise _NotOurFormat
    name = _unquote(found.group(1))
    body = "\n".join(lines[2:-1])
    internal = _DEFINE.match(line).group(1) is not None
    refs = {_unquote(m.group(1)) for m in _NAME.finditer(body)}
    variants = _VECTOR_VARIANT.findall(line)  # its attribute names them (then it is no segment)
    refs.update(variants)
    attrs = line[line.rindex(")") :]
    optnone = " optnone" in attrs
    movable = internal and " noinline" in attrs and not optnone and not variants
    function_text = "\n".join(lines)
    weight = llvm_cost(function_text) // 8 if optnone else llvm_cost(function_text)
    return _Function(name, line, function_text, internal, movable, refs, weight, optnone)


# A branch back to a block seen before in the function (a loop's latch) costs LLVM as much as
# this many instructions: each loop goes through the loop passes (rotation, LICM, IndVarSimplify,
# unrolling, vectorisation) and usually comes out as several (vector body, remainder, unrolled copies).
LOOP_COST = 25
_LABEL_OR_BRANCH = re.compile(r'\n(?:"?([^\s"]+)"?:(?=\n)|  br ([^\n]*))')  # a block's label, or a branch
_BRANCH_TARGET = re.compile(r'label %"?([^\s",]+)')


def llvm_cost(function_text: str) -> int:
    """An estimate of LLVM's work (optimisation and code generation) on a function printed by llvmlite:
    its instruction lines + LOOP_COST per loop (a branch back to an earlier block).

    Why not the text's size, used before: over the 27 optimised parts of the 2-, 4-, 8- and
    16-layer train steps, LLVM's CPU time per part correlates 0.98 with this count and 0.82 with
    the size (names, constants and vector maths copies cost little per character; a 13.7 KB part
    with loops cost 37 ms, a 36 KB one 28 ms). A least-squares fit gives 2 ms + 0.085 ms per
    instruction + 1.45 ms per loop (17 instructions; 10-25 fit as well). A function of the IR
    text alone, so the parts and their order are the same on every run (docs/compile-time.md)."""
    instructions = function_text.count("\n  ")
    seen: set[str] = set()
    loops = 0
    for label, branch in _LABEL_OR_BRANCH.findall(function_text):
        if branch:
            loops += sum(target in seen for target in _BRANCH_TARGET.findall(branch))
        else:
            seen.add(label)
    return instructions + LOOP_COST * loops


def parse_function(text: str) -> _Function:
    """The function that llvmlite printed as `text` (`str(ir.Function)`, a definition)."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) < 3 or lines[1] != "{" or lines[-1] != "}":
        raise _NotOurFormat
    return _function(lines)


_GLOBAL = re.compile(r"^@\S+ = ((?:[a-z_]+ )*?)(global|constant) ")
_OPEN, _CLOSE = "[{<(", "]}>)"


def _global_type(line: str) -> tuple[str, str, bool]:
    """(linkage, value type, copyable) of the global variable that `line` defines or declares (llvmlite's
    layout); copyable: an internal or private constant whose initialiser names no other symbol."""
    found = _GLOBAL.match(line)
    if found is None:
        raise _NotOurFormat
    words = found.group(1).split()
    linkage = next((w for w in words if w in ("internal", "private", "external", "weak", "common", "linkonce")), "external")
    rest = line[found.end() :]
    copyable = linkage in ("internal", "private") and found.group(2) == "constant" and "@" not in rest
    if rest[:1] not in _OPEN:
        return linkage, rest.split(" ", 1)[0].rstrip(","), copyable
    depth = 0
    for k, ch in enumerate(rest):
        depth += (ch in _OPEN) - (ch in _CLOSE)
        if depth == 0:
            return linkage, rest[: k + 1], copyable
    raise _NotOurFormat


def vector_variants(text: str) -> set[str]:
    """The names of the vector variants that functions of the module `text` name in their attributes."""
    return set(_VECTOR_VARIANT.findall(text))


def _reach(roots: list[str], functions: dict[str, _Function], copied: set[str]) -> set[str]:
    """`roots` and the internal functions and vector variants (`copied`) they reach, not through a
    movable function (those are roots of their own)."""
    seen = set(roots)
    stack = list(roots)
    while stack:
        for ref in functions[stack.pop()].references:
            f = functions.get(ref)
            if f is not None and (f.internal or ref in copied) and not f.movable and ref not in seen:
                seen.add(ref)
                stack.append(ref)
    return seen


@dataclass(frozen=True)
class ModulePart:
    text: str
    weight: int  # the estimate of LLVM's work in it (module docstring)
    entry_points_only: bool = False  # every function it defines is `optnone` (jit.py: no pipeline, O0 code generation)


def split_module(text: str, units: int = MAX_PARTS) -> list[ModulePart] | None:
    """The module `text` as at most `units` modules, or None when it has fewer than two movable
    functions and no entry points to compile apart."""
    try:
        header, functions, others = _parse(text)
        global_types = {name: _global_type(line) for name, line in others if name and line.startswith("@")}
    except _NotOurFormat:
        return None
    # A movable function that no function calls any more (its callers were compiled apart:
    # part_handoff.py) is dropped, as LLVM would drop it, instead of compiled as a root.
    called = set().union(*(f.references for f in functions.values()))
    movable = [f for f in functions.values() if f.movable and f.name in called]
    if units < 2:
        return None
    variants = {name for f in functions.values() for name in f.references if name in functions} & vector_variants(text)
    kept_roots = [name for name, f in functions.items() if not f.movable and not f.internal and name not in variants]
    # The optnone entry points stay in part 0 with the globals; the other kept functions (the
    # kernel: a sequence of segment calls) join the packed parts unless they use a global that
    # cannot be shared. Part 0 is then entry points only, compiled without optimisation.
    shared = lambda name: _shares_globals(_reach([name], functions, variants), functions, global_types)  # noqa: E731
    entry_roots = [name for name in kept_roots if functions[name].optnone]
    packed_roots = [name for name in kept_roots if not functions[name].optnone and entry_roots and shared(name)]
    part0_roots = [name for name in kept_roots if name not in packed_roots]
    items = [[f.name] for f in movable] + [packed_roots] * bool(packed_roots)
    # Nothing but entry points (the kernel and its segments were compiled apart: part_handoff.py):
    # one part, entry points only, without the unused functions of the module.
    only_entry_points = not items and entry_roots and all(functions[n].optnone for n in part0_roots)
    if len(movable) < 2 and not packed_roots and not only_entry_points:
        return None
    # the kernel joins a part of segments: a module more costs 3-5 ms
    bins = 0 if only_entry_points else max(1, min(units - 1, len(movable)))
    part_roots: list[list[str]] = [part0_roots] + [[] for _ in range(bins)]
    weights = [sum(functions[n].weight for n in _reach(part0_roots, functions, variants))] + [0] * bins
    item_weight = lambda roots: sum(functions[n].weight for n in _reach(roots, functions, variants))  # noqa: E731
    for roots in sorted(items, key=lambda roots: (-item_weight(roots), roots)):
        k = min(range(1, bins + 1), key=lambda j: (weights[j], j))
        part_roots[k].extend(roots)
        weights[k] += item_weight(roots)
    moved = {f.name for f in movable}
    parts = []
    for k, roots in enumerate(part_roots):
        defined = _reach(roots, functions, variants)
        referenced = set().union(*(functions[n].references for n in defined))
        if k > 0 and not _shares_globals(defined, functions, global_types):
            return None  # a non-external global cannot be shared between two objects
        text_k = _part_text(header, functions, others, defined, referenced, moved, global_types, k == 0)
        parts.append(ModulePart(text_k, weights[k], all(functions[n].optnone for n in defined)))
    return parts


def whole_module_part(text: str) -> ModulePart:
    """`text` as one part (split_module left it whole): entry points only when every function
    it defines is `optnone` (what remains once the kernel was compiled apart: part_handoff.py)."""
    try:
        _, functions, _ = _parse(text)
    except _NotOurFormat:
        return ModulePart(text, len(text))
    optnone = bool(functions) and all(f.optnone for f in functions.values())
    return ModulePart(text, sum(f.weight for f in functions.values()), optnone)


def _shares_globals(defined: set[str], functions: dict[str, _Function], global_types) -> bool:
    """True when the functions `defined` use only globals another part can see: external ones (defined
    in part 0) and internal constants without references (copied into each part that reads them, as
    internal functions are: a constant's copies cannot diverge)."""
    referenced = set().union(*(functions[n].references for n in defined))
    return all(
        global_types[name][0] == "external" or global_types[name][2]
        for name in referenced if name in global_types
    )


def _part_text(header, functions, others, defined, referenced, moved, global_types, first: bool) -> str:
    out = list(header)
    for name, f in functions.items():
        if name in defined:
            text = f.text
            if name in moved:
                text = _DEFINE.sub("define ", text, count=1)
            out.append(text)
        elif name in referenced:
            out.append(_DEFINE.sub("declare ", f.prototype, count=1))
    for name, line in others:
        if name in global_types and not first:
            if name in referenced:
                copied = global_types[name][2]
                out.append(line if copied else f'@"{name}" = external global {global_types[name][1]}')
            continue
        out.append(line)
    return "\n".join(out) + "\n"
