"""Running a pass pipeline over a traced module, keeping the IR of every stage.

`Compiled` is what `rm.compile` returns and what `@rm.jit` caches per
signature. It records the IR after each pass (`c.ir("after:autodiff")`),
verifies after every pass, times passes, and optionally prints or dumps
each stage in MLIR's style (`// -----// IR Dump After inline //----- //`).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, cf, func, math, memref, scf, vector
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from raster_mlir.dialects.raster import Raster
from raster_mlir.errors import CompileError
from raster_mlir.passes.registry import parse_pipeline

# Tensor-level passes; the default pipeline stops here when no native backend is asked for.
TENSOR_PIPELINE = "inline,autodiff,forward-ad,inline,canonicalize,cse,dce"
LOOP_PIPELINE = "lower-to-loops,fuse-loops,fuse-epilogues,skip-zero-updates,skip-zero-chunks,parallelize-loops"
DEFAULT_PIPELINE = f"{TENSOR_PIPELINE},{LOOP_PIPELINE}"
# Without the two sparsity passes, whose skipped terms (W * 0, W - e * 0) would have turned an inf or
# NaN in W, e or x into NaN: results keep numpy's NaN/inf semantics everywhere (bench/bench_strict_nan.py
# measures the cost).
SPARSITY_PASSES = ("skip-zero-updates", "skip-zero-chunks")
STRICT_PIPELINE = ",".join(p for p in DEFAULT_PIPELINE.split(",") if p not in SPARSITY_PASSES)


def make_context() -> Context:
    """An xDSL context with every dialect raster_mlir's IR may contain."""
    ctx = Context(allow_unregistered=False)
    for dialect in (Builtin, func.Func, arith.Arith, cf.Cf, math.Math, memref.MemRef, scf.Scf, vector.Vector, Raster):
        ctx.load_dialect(dialect)
    return ctx


def print_module(module: ModuleOp, locations: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_debuginfo=locations).print_op(module)
    return out.getvalue() + "\n"


@dataclass
class DumpOptions:
    """Where IR goes between passes (MLIR's --print-ir-after-all and friends)."""

    print_ir_after_all: bool = False
    print_ir_before: Sequence[str] = ()
    print_ir_after: Sequence[str] = ()
    dump_dir: str | os.PathLike | None = None
    verify_each: bool = True
    stream: object = None  # default: sys.stdout at print time


class StagedPipeline:
    """Runs a pipeline, recording `stages` {name: IR text} and `pass_seconds` {name: s}."""

    def __init__(self, spec: str, dump: DumpOptions | None = None, snapshot_before: str | Sequence[str] = ()):
        self.spec = spec
        self.dump = dump or DumpOptions()
        self.passes: tuple[ModulePass, ...] = parse_pipeline(spec).passes if spec.strip() else ()
        names = {p.name for p in self.passes}
        for option in ("print_ir_before", "print_ir_after"):
            wanted = getattr(self.dump, option)
            if isinstance(wanted, str):  # one pass name given as a string
                wanted = (wanted,)
                setattr(self.dump, option, wanted)
            unknown = [w for w in wanted if w not in names]
            if unknown:
                raise CompileError(
                    f"{option}={unknown}: not in the pipeline {spec!r} (its passes: {', '.join(sorted(names))})"
                )
        self.stages: dict[str, str] = {}
        self.last_stage = ""
        self.pass_seconds: dict[str, float] = {}
        # Copies of the module just before the first run of these passes (e.g. the
        # tensor-level IR before lower-to-loops, which the reference interpreter runs).
        self.snapshot_before = (snapshot_before,) if isinstance(snapshot_before, str) else tuple(snapshot_before)
        self.snapshots: dict[str, ModuleOp] = {}

    def run(self, module: ModuleOp, first_stage: str = "traced") -> ModuleOp:
        ctx = make_context()
        self._record(first_stage, module, header=None)
        seen: dict[str, int] = {}
        for p in self.passes:
            seen[p.name] = seen.get(p.name, 0) + 1
            label = p.name if seen[p.name] == 1 else f"{p.name}#{seen[p.name]}"
            if p.name in self.snapshot_before and p.name not in self.snapshots:
                self.snapshots[p.name] = module.clone()
            if p.name in self.dump.print_ir_before:
                self._emit(f"// -----// IR Dump Before {p.name} //----- //", self.stages[self.last_stage])
            start = time.perf_counter()
            try:
                p.apply(ctx, module)
            except CompileError:
                raise
            except VerifyException as e:
                raise CompileError(f"pass {p.name} produced invalid IR: {e}") from None
            self.pass_seconds[label] = time.perf_counter() - start
            if self.dump.verify_each:
                try:
                    module.verify()
                except VerifyException as e:
                    raise CompileError(f"IR does not verify after pass {p.name}: {e}") from None
            self._record(f"after:{label}", module, header=p.name)
        return module

    def _record(self, stage: str, module: ModuleOp, header: str | None) -> None:
        text = print_module(module)
        self.stages[stage] = text
        self.last_stage = stage
        index = len(self.stages) - 1
        if self.dump.dump_dir is not None:
            os.makedirs(self.dump.dump_dir, exist_ok=True)
            filename = f"{index:02d}_{stage.replace(':', '_').replace('#', '_')}.mlir"
            with open(os.path.join(self.dump.dump_dir, filename), "w") as f:
                f.write(text)
        if header is not None and (self.dump.print_ir_after_all or header in self.dump.print_ir_after):
            self._emit(f"// -----// IR Dump After {header} //----- //", text)

    def _emit(self, title: str, text: str) -> None:
        stream = self.dump.stream or sys.stdout
        stream.write(f"{title}\n{text}\n")

    def timing_report(self) -> str:
        total = sum(self.pass_seconds.values()) or 1e-12
        lines = ["===-------------------------------------------------------------------------===",
                 "                         ... Pass execution timing report ...",
                 "===-------------------------------------------------------------------------===",
                 "  Wall Time (s)   (%)   Name"]  # fmt: skip
        for name, s in self.pass_seconds.items():
            lines.append(f"  {s:12.4f}  {100 * s / total:5.1f}%  {name}")
        lines.append(f"  {total:12.4f}  100.0%  Total")
        return "\n".join(lines)
