"""What the reverse-mode tapes of a compiled function hold: `CompiledFunction.tape_report()`.

A loop differentiated in reverse mode records its carries on a tape, one row
per step (dialects/raster_loop_transforms.py); each carry leaf has its own
tape buffer, and the tapes of one loop hold the same steps. A tape of a loop
with a static trip count is a buffer of the function's workspace, allocated
once and reused by every call; its size is known at compile time and
reported here. (A loop with a run-time trip count keeps its tape in memory
that grows while it runs: its rows are only known then, so it is reported
as growable, with the bytes per row.)

    report = rm.compile(rm.grad(loss), theta).tape_report()
    report.carries     # rows stored, summed over the differentiated loops
    report.bytes       # their size
    print(report)      # one line per loop
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xdsl.dialects import memref
from xdsl.dialects.builtin import ModuleOp

from raster_mlir.dialects.raster_loop_transforms import GROWABLE_ATTR, TAPE_ATTR, TAPE_LOOP_ATTR



@dataclass
class LoopTape:
    rows: int  # carries stored (one row per step, for every leaf of the carry)
    bytes: int
    leaves: int  # tape buffers (carry leaves taped)


@dataclass
class TapeReport:
    loops: list[LoopTape] = field(default_factory=list)
    growable_row_bytes: list[int] = field(default_factory=list)

    @property
    def carries(self) -> int:
        """Carries stored at once by the static tapes (rows summed over loops)."""
        return sum(t.rows for t in self.loops)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.loops)

    def __str__(self) -> str:
        if not self.loops and not self.growable_row_bytes:
            return "no tape (no loop is differentiated in reverse mode)"
        lines = [f"tapes: {self.carries} carries, {self.bytes:,} bytes in the workspace"]
        for k, t in enumerate(self.loops):
            lines.append(f"  loop {k}: {t.rows} carries x {t.leaves} leaves, {t.bytes:,} bytes")
        for k, row in enumerate(self.growable_row_bytes):
            lines.append(f"  growable tape {k}: {row:,} bytes per step, allocated while the loop runs")
        return "\n".join(lines)


def tape_report(module: ModuleOp) -> TapeReport:
    """The tapes of a loop-level module (after lower-to-loops)."""
    by_loop: dict[int, LoopTape] = {}
    report = TapeReport()
    for op in module.walk():
        if not isinstance(op, memref.AllocOp):
            continue
        if GROWABLE_ATTR in op.attributes:
            report.growable_row_bytes.append(op.attributes[GROWABLE_ATTR].value.data)
        if TAPE_ATTR not in op.attributes:
            continue
        rows = op.attributes[TAPE_ATTR].value.data
        loop = op.attributes[TAPE_LOOP_ATTR].value.data if TAPE_LOOP_ATTR in op.attributes else id(op)
        t = op.memref.type
        nbytes = math.prod(t.get_shape()) * t.element_type.bitwidth // 8
        entry = by_loop.setdefault(loop, LoopTape(rows, 0, 0))
        entry.bytes += nbytes
        entry.leaves += 1
    report.loops = list(by_loop.values())
    return report
