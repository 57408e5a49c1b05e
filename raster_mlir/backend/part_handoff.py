"""Kernel segments handed to LLVM while the rest of the module is still being emitted.

Why: emitting a train step's LLVM IR is tens of milliseconds of Python on one
core; before, LLVM started only when the whole module was printed and split
(module_split.py), so the second core idled during emission. Now the
emitter (segment_emit.py) plans its segments in groups before emitting them
and calls `SegmentHandOff.hand_off` when a group is done: the group becomes
an LLVM module of its own at once and goes to the compile's PartQueue
(llvm_worker.py), which the worker thread starts on while Python emits the
next group.

A handed-off part holds (in the module's order): the group's segment
functions, made external (the kernel calls them by name); every internal
function they reach (vector maths, outlined parallel loops, private callees:
all finished, since they are emitted before their first call) and the vector
variants those name (vmath/fallback.py), copied; declarations of the other
functions they call; the globals they use, as `external` declarations (a
group using a global that is not external is not handed off: it stays in the
module); and every metadata node made so far. Each function is printed once:
the module's text (`module_text`, the cache key and `llvm_ir`) is assembled
from the same printed texts (llvm_print.py's printers), and equals `str(llmod)` (a test checks it).

When emission ends, `rest_text` is the module without the handed-off
functions (declared instead); jit.py splits it as before (module_split.py) and
adds its parts to the same queue. Which functions share a part depends only
on the IR text (`segment_done`), so the object code does not
depend on threads or timing (a test compiles twice in fresh processes).

    group done:  "define {i64} @k.segment1(...) noinline {...}" + copied helpers -> part 1 (worker starts)
    emission end: rest = "define void @k(...) { call @k.segment1 ... }  declare {i64} @k.segment1(...)" + entry points
"""

from __future__ import annotations

from llvmlite import ir

from .llvm_print import function_text, global_text, header_lines, metadata_text, prototype_text
from .module_split import _DEFINE, ModulePart, _NotOurFormat, parse_function, vector_variants


# A kernel segment whose estimated LLVM work (module_split.llvm_cost, the measure that orders and
# packs the parts) reaches this is an LLVM module of its own (segment_done); smaller neighbours share one.
SMALL_SEGMENT = 400


class SegmentHandOff:
    """The emitter's side of a pipelined compile: parts out as soon as they exist (module docstring)."""

    def __init__(self, queue):
        self.queue = queue  # llvm_worker.PartQueue (or anything with `submit(ModulePart)`)
        self._printed: dict[str, str] = {}  # function name -> its text (finished functions only)
        self._parsed: dict = {}
        self._metadata: list[str] = []  # printed metadata nodes, in order
        self.handed_off: list[str] = []  # names of the segment functions compiled in handed-off parts
        self._llmod: ir.Module | None = None  # the finished module (module_text)
        self._held: list[ir.Function] = []  # small finished segments, not handed off yet
        self._segments: set[str] = set()  # every kernel segment so far
        self._refused = False  # a group had to stay in the module (hand_off)

    # ---- during emission -------------------------------------------------

    def segment_done(self, llmod: ir.Module, fn: ir.Function, last: bool = False, text: str | None = None) -> None:
        """`fn`, a kernel segment, is finished: hand it off, alone or with its small neighbours.

        A segment whose estimated LLVM work (`llvm_cost`, the weight that orders and packs every
        part) reaches SMALL_SEGMENT is a part of its own (after the small ones held before it);
        smaller ones are held until together they reach it. Each LLVM module costs a fixed
        1.5-2 ms (parsing, the pass pipeline's fixed work, a code generation run: about 20 of
        `llvm_cost`'s units), worth paying for large segments, which then start early and balance
        the two threads, not for a run of small ones. Small segments still held at the `last`
        one wait for their kernel (`kernel_done`), which joins their part. The rule depends on
        the IR text alone, so the parts, and the object code, do not depend on threads or timing."""
        self._segments.add(fn.name)
        if self._function(fn, text).weight >= SMALL_SEGMENT:
            self._flush(llmod)
            self.hand_off(llmod, [fn])
            return
        self._held.append(fn)
        if not last and sum(self._parsed[f.name].weight for f in self._held) >= SMALL_SEGMENT:
            self._flush(llmod)

    def kernel_done(self, llmod: ir.Module, kernel: ir.Function) -> None:
        """The kernel whose segments these were is finished: a part with the segments still held.
        The kernel itself (`optnone`: segment calls only, segment_emit.py) stays in the module and
        is compiled with the entry points (module_split.py); another kernel joins the part."""
        if "optnone" not in kernel.attributes:
            self._held.append(kernel)
        self._flush(llmod)

    def _flush(self, llmod: ir.Module) -> None:
        if self._held:
            held, self._held = self._held, []
            self.hand_off(llmod, held)

    def hand_off(self, llmod: ir.Module, segments: list[ir.Function]) -> bool:
        """Submit `segments` (finished) as one part; False when they must stay in the module.

        After one such refusal, every later group stays too: the kernel's part would otherwise
        declare a segment that only the rest of the module defines, where nothing calls it."""
        if self._refused:
            return False
        try:
            text, weight = self._part_text(llmod, segments)
        except _NotOurFormat:
            self._refused = True
            return False
        self.queue.submit(ModulePart(text, weight))
        self.handed_off.extend(fn.name for fn in segments)
        return True

    def _function(self, fn: ir.Function, text: str | None = None):
        """`fn` parsed; `text`: its text when the caller printed it (segment_dedup.py did)."""
        parsed = self._parsed.get(fn.name)
        if parsed is None:
            text = self._printed[fn.name] = text or function_text(fn)
            parsed = self._parsed[fn.name] = parse_function(text)
        return parsed

    def _part_text(self, llmod: ir.Module, segments: list[ir.Function]) -> tuple[str, int]:
        roots = {fn.name for fn in segments}
        defined: set[str] = set()
        referenced: set[str] = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in defined:
                continue
            defined.add(name)
            f = self._function(llmod.globals[name])
            variants = vector_variants(f.prototype)
            for ref in f.references:
                g = llmod.globals.get(ref)
                if g is None or ref in defined:
                    continue
                copied = g.linkage == "internal" and ref not in self._segments or ref in variants
                if isinstance(g, ir.Function) and g.blocks and copied:
                    stack.append(ref)  # a finished helper: copied (internal, so copies do not clash)
                else:
                    referenced.add(ref)
        out = header_lines(llmod)
        globals_out = []
        for name, g in llmod.globals.items():
            if name in defined:
                text = self._printed[name]
                out.append(_DEFINE.sub("define ", text, count=1) if name in roots else text)
            elif name not in referenced:
                continue
            elif isinstance(g, ir.Function):
                out.append(_declaration(g))
            elif g.linkage in ("", "external"):
                globals_out.append(f'@"{name}" = external global {g.value_type}')
            else:
                raise _NotOurFormat  # a global another object cannot share
        out += globals_out
        out += self._metadata_lines(llmod)
        return "\n".join(out) + "\n", sum(self._parsed[n].weight for n in defined)

    def _metadata_lines(self, llmod: ir.Module) -> list[str]:
        named = [
            "!{name} = !{{ {operands} }}".format(name=k, operands=", ".join(i.get_reference() for i in v.operands))
            for k, v in llmod.namedmetadata.items()
        ]
        self._metadata.extend(metadata_text(md) for md in llmod.metadata[len(self._metadata) :])
        return named + self._metadata

    # ---- when emission ends ----------------------------------------------

    def module_text(self, llmod: ir.Module) -> str:
        """`str(llmod)` of the finished module, reusing the texts printed for the handed-off parts."""
        self._llmod = llmod
        return self._text(llmod, ())

    def rest_text(self) -> str:
        """The finished module with the handed-off functions declared, not defined (nor internal)."""
        return self._text(self._llmod, set(self.handed_off))

    def _text(self, llmod: ir.Module, declared) -> str:
        body = []
        for name, g in llmod.globals.items():
            if name in declared:
                body.append(_DEFINE.sub("declare ", prototype_text(g), count=1))
                continue
            printed = self._printed.get(name)
            if printed is None:
                printed = global_text(g)
                if isinstance(g, ir.Function):  # the module is finished: rest_text prints it no more
                    self._printed[name] = printed
            body.append(printed)
        return "\n".join(header_lines(llmod) + body + self._metadata_lines(llmod))


def _declaration(fn: ir.Function) -> str:
    """`fn` declared: its own text when it is a declaration, else its prototype as `declare`."""
    if not fn.blocks:
        return function_text(fn)
    return _DEFINE.sub("declare ", prototype_text(fn), count=1).rstrip("\n")
