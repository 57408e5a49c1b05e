"""A structural fingerprint of a module: what printing it says, without printing it.

The compile cache keys a compile by its traced module. Printing the module
with xDSL's printer would do (the text says everything that matters), but
costs about as much as a pass over the module. This walk feeds the same
facts to a hash, op by op: the op's name; its operands, as numbers of the
values in definition order; its properties and attributes, sorted by name;
its results' types and name hints; its successors, as block numbers; and its
regions, block by block with the blocks' argument types and name hints.
Attributes and types are turned into text by xDSL's printer (`str(attr)`),
memoised per distinct attribute, so a type used a thousand times is printed
once. Locations are left out, as in printed IR without debug info: they
change no code.
"""

from __future__ import annotations

from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

_SEP = "\x1f"
_ATTRIBUTE_TEXT: dict[Attribute, str] = {}
_MEMO_LIMIT = 100_000


def _text(attribute: Attribute) -> str:
    text = _ATTRIBUTE_TEXT.get(attribute)
    if text is None:
        if len(_ATTRIBUTE_TEXT) > _MEMO_LIMIT:
            _ATTRIBUTE_TEXT.clear()
        text = _ATTRIBUTE_TEXT[attribute] = str(attribute)
    return text


class _Walk:
    def __init__(self) -> None:
        self.values: dict[SSAValue, int] = {}
        self.blocks: dict[Block, int] = {}
        self.out: list[str] = []

    def define(self, value: SSAValue) -> None:
        self.values[value] = len(self.values)
        self.out.append(_text(value.type))
        self.out.append(value.name_hint or "")

    def op(self, op: Operation) -> None:
        out = self.out
        out.append("(" + op.name)
        values = self.values
        out.append(",".join(str(values.get(v, -1)) for v in op.operands))
        for table, mark in ((op.properties, "<"), (op.attributes, "{")):
            out.append(mark)
            for name in sorted(table):
                out.append(name)
                out.append(_text(table[name]))
        for result in op.results:
            self.define(result)
        if op.successors:
            out.append("^" + ",".join(str(self.blocks.get(b, -1)) for b in op.successors))
        for region in op.regions:
            self.region(region)
        out.append(")")

    def region(self, region: Region) -> None:
        self.out.append("[")
        for block in region.blocks:  # numbered first: a branch may name a later block
            self.blocks[block] = len(self.blocks)
        for block in region.blocks:
            self.out.append("^")
            for arg in block.args:
                self.define(arg)
            for op in block.ops:
                self.op(op)
        self.out.append("]")


def fingerprint(op: Operation) -> str:
    """A text standing for `op` and everything in it (for hashing; not meant to be read)."""
    walk = _Walk()
    walk.op(op)
    return _SEP.join(walk.out)
