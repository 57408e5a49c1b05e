"""Running a pass pipeline over a module: verification after every pass, timings, IR dumps.

`StagedPipeline` runs the passes of a pipeline string, verifies after every
pass (xDSL's verifiers and SSA dominance, raster_mlir/verifier.py), times
everything (`timing.CompileTimer`), and prints or dumps stages in MLIR's
style (`// -----// IR Dump After inline //----- //`) when asked. A pass that
runs twice is labelled `inline#2` in stage names, headers and dump files.
The IR text of a stage is produced only on request: `rm.compile(...).ir(stage)`
re-runs the deterministic pipeline with recording on (see jit.py).
"""

from __future__ import annotations

import functools
import io
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, cf, func, math, memref, scf, vector
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.passes import ModulePass
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from raster_mlir.dialects.raster import Raster
from raster_mlir.errors import CompileError, RasterError
from raster_mlir.ir_clone import clone_op
from raster_mlir.pass_failure import pass_crash_error
from raster_mlir.passes.registry import parse_pipeline
from raster_mlir.timing import CompileTimer
from raster_mlir.verifier import verify_module

# Tensor-level passes; the default pipeline stops here when no native backend is asked for.
TENSOR_PIPELINE = "inline,autodiff,forward-ad,inline,canonicalize,cse,dce"
LOOP_PIPELINE = (
    "lower-to-loops,fuse-loops,fuse-epilogues,skip-zero-updates,skip-zero-chunks,skip-masked-terms,parallelize-loops"
)
DEFAULT_PIPELINE = f"{TENSOR_PIPELINE},{LOOP_PIPELINE}"
# Without the sparsity passes, whose skipped terms (W * 0, W - e * 0, a masked-out tangent * 0) would
# have turned an inf or NaN in W, e or x into NaN: results keep numpy's NaN/inf semantics everywhere
# (bench/bench_strict_nan.py measures the cost).
SPARSITY_PASSES = ("skip-zero-updates", "skip-zero-chunks", "skip-masked-terms")
STRICT_PIPELINE = ",".join(p for p in DEFAULT_PIPELINE.split(",") if p not in SPARSITY_PASSES)


def needs_builtin_loaded(passes: Sequence[ModulePass]) -> bool:
    """Whether a pass of `passes` is not one of raster_mlir's (xDSL's, a plug-in, a user's): it may
    look up builtin's undotted names in the context it is given (`make_context`: about 0.2 ms of CPU
    on the first load of a process, 0.03 ms after)."""
    return any(not type(p).__module__.startswith("raster_mlir.") for p in passes)


def make_context(every_dialect: bool = False) -> Context:
    """An xDSL context with every dialect raster_mlir's IR may contain.

    With `every_dialect` (raster-opt's parser), every other dialect xDSL and its
    plug-ins know (entry points `xdsl.universe`) is registered too, loaded on
    first use (finding the plug-ins costs ~50 ms once per process).
    """
    ctx = Context(allow_unregistered=False)
    # Registered, not loaded: the context loads a dialect when a dotted name of it is first looked
    # up (the parser's lookups are all dotted). A compile by raster_mlir's own passes looks up
    # none; loading the nine was 1.2 ms of the first compile of a process before abc_shortcut
    # (each non-type attribute class's `issubclass(attr, TypeAttribute)` walked every subclass of
    # TypeAttribute), about half a millisecond since. Only builtin has undotted names ("tensor", "f64"),
    # which a lookup cannot trace to their dialect (xDSL raises ValueError): raster-opt's parser
    # context loads it at once, and so does StagedPipeline.run's context for a pipeline with a
    # pass that is not raster_mlir's (`needs_builtin_loaded`).
    for dialect in (Builtin, func.Func, arith.Arith, cf.Cf, math.Math, memref.MemRef, scf.Scf, vector.Vector, Raster):
        ctx.register_dialect(dialect.name, functools.partial(_itself, dialect))
    if not every_dialect:
        return ctx
    ctx.load_registered_dialect(Builtin.name)
    loaded = set(ctx.registered_dialect_names)
    for name, factory in _multiverse_dialects().items():
        if name not in loaded:
            ctx.register_dialect(name, factory)
    return ctx


def _itself(dialect):
    return dialect


@functools.cache
def _multiverse_dialects() -> dict:
    from xdsl.universe import Universe

    try:
        return dict(Universe.get_multiverse().all_dialects)
    except ValueError as e:  # two installed plug-ins define the same name
        raise CompileError(f"the installed xdsl.universe plug-ins clash: {e}") from None


def print_module(module: ModuleOp, locations: bool = False, generic: bool = False) -> str:
    """The module's text: custom assembly formats (generic op syntax with `generic`), locations on request."""
    out = io.StringIO()
    Printer(stream=out, print_debuginfo=locations, print_generic_format=generic).print_op(module)
    return out.getvalue() + "\n"


@dataclass
class DumpOptions:
    """Where IR goes between passes (MLIR's --print-ir-after-all and friends).

    Passes are named by their stage label: `inline` for a pass's first run,
    `inline#2` for its second. `print_ir_before` / `print_ir_after` select a
    pass by name (every run) or by label (that run). `dump_dir` receives every
    stage in order, the IR before and after each pass:
    `00_traced.mlir, 01_before_inline.mlir, 02_after_inline.mlir, ...`.
    `generic` / `locations` apply to the dumps (printed and files), not to
    the recorded stages (`c.ir(...)`).
    """

    print_ir_after_all: bool = False
    print_ir_before: Sequence[str] = ()
    print_ir_after: Sequence[str] = ()
    dump_dir: str | os.PathLike | None = None
    # True: verify after every pass; False: never; None (default): see `verification_policy`.
    verify_each: bool | None = None
    stream: object = None  # default: sys.stdout at print time
    print_ir_before_all: bool = False
    generic: bool = False  # MLIR's --mlir-print-op-generic
    locations: bool = False  # MLIR's --mlir-print-debuginfo


# With the default policy, the IR is also verified before these passes (where it changes level:
# the tensor-level IR is small, and whatever reaches the lowering must be valid).
VERIFY_BEFORE = ("lower-to-loops",)


def verification_policy(verify_each: bool | None, can_rerun: bool) -> str:
    """"each" (after every pass), "end" (after the last pass and before `VERIFY_BEFORE`) or "none".

    The default (`verify_each=None`) is "each" when `RASTER_MLIR_VERIFY_EACH=1`
    (the test suite sets it) or when the input cannot be had again, else
    "end": verifying after every pass was 35-40% of compiling an unrolled ODE
    (README, "Compile time"). With "end", a failed verification or a pass
    that fails re-runs the pipeline from a fresh copy of its input with
    verification after every pass, so the error still names the pass that
    produced the invalid IR.
    """
    if verify_each is not None:
        return "each" if verify_each else "none"
    if os.environ.get("RASTER_MLIR_VERIFY_EACH", "") == "1" or not can_rerun:
        return "each"
    return "end"


class StagedPipeline:
    """Runs a pipeline, timing each pass; keeps the IR text of a stage only when somebody wants it.

    The text of every stage is printed and kept in `stages` {name: IR text}
    when `record` is true; a dump option (`print_ir_after_all`,
    `print_ir_after`, `dump_dir`) prints the stages it needs and keeps them
    too. Otherwise nothing is printed: printing a large module costs as much
    as running a pass over it. `stage_names` lists every stage either way.
    `pass_seconds` {label: s} times the passes; `timer` (a CompileTimer)
    also gets verification, printing and snapshot rows.
    """

    def __init__(
        self,
        spec: str,
        dump: DumpOptions | None = None,
        snapshot_before: str | Sequence[str] = (),
        *,
        record: bool = False,
        timer: CompileTimer | None = None,
        passes: Sequence[ModulePass] | None = None,
    ):
        """`passes`: the parsed passes of `spec`, when the caller has them already."""
        self.spec = spec
        self.dump = dump or DumpOptions()
        self.record = record
        self.timer = timer if timer is not None else CompileTimer()
        if passes is None:  # (the caller's timer gets a row for the passes' imports, if any)
            passes = parse_pipeline(spec, timer=timer).passes if spec.strip() else ()
        self.passes: tuple[ModulePass, ...] = tuple(passes)
        self.labels = pass_labels(p.name for p in self.passes)
        names = {p.name for p in self.passes} | set(self.labels)
        for option in ("print_ir_before", "print_ir_after"):
            wanted = getattr(self.dump, option)
            if isinstance(wanted, str):  # one pass name given as a string
                wanted = (wanted,)
                setattr(self.dump, option, wanted)
            unknown = [w for w in wanted if w not in names]
            if unknown:
                raise CompileError(
                    f"{option}={unknown}: not in the pipeline {spec!r} (its passes: {', '.join(self.labels)})"
                )
        self.stages: dict[str, str] = {}
        self.stage_names: list[str] = []
        self.last_stage = ""
        self.pass_seconds: dict[str, float] = {}
        self.verified = False  # the module was verified after the last pass that ran
        # Copies of the module just before the first run of these passes (e.g. the
        # loop-level IR before skip-zero-chunks, from which a train step builds its data loops).
        self.snapshot_before = (snapshot_before,) if isinstance(snapshot_before, str) else tuple(snapshot_before)
        self.snapshots: dict[str, ModuleOp] = {}

    def run(
        self,
        module: ModuleOp,
        first_stage: str = "traced",
        stop_before: str | None = None,
        fresh_input: Callable[[], ModuleOp] | None = None,
    ) -> ModuleOp:
        """Run the passes over `module` in place; with `stop_before`, only those before that pass's first run.

        `fresh_input` returns a new copy of the input module: with it, the default
        verification policy verifies once at the end (`verification_policy`).
        """
        policy = verification_policy(self.dump.verify_each, fresh_input is not None)
        ctx = make_context()
        if needs_builtin_loaded(self.passes):
            ctx.load_registered_dialect(Builtin.name)
        self._dumps = 0
        self._record(first_stage, module)
        ran = 0
        try:
            for p, label in zip(self.passes, self.labels):
                if p.name == stop_before:
                    break
                if policy == "end" and ran and p.name in VERIFY_BEFORE:
                    self._verify(module, self.labels[ran - 1])
                self._run_pass(ctx, p, label, module, verify=policy == "each")
                ran += 1
            if policy == "end" and ran:
                self._verify(module, self.labels[ran - 1])
            self.verified = ran > 0 and policy != "none"
        except Exception:
            if policy == "end":
                assert fresh_input is not None
                self._name_the_culprit(fresh_input, ran + 1, first_stage)
            raise
        return module

    def _run_pass(self, ctx: Context, p: ModulePass, label: str, module: ModuleOp, verify: bool) -> None:
        if p.name in self.snapshot_before and p.name not in self.snapshots:
            with self.timer.phase("snapshot (module clone)"):
                self.snapshots[p.name] = clone_op(module)
        self._dump_before(p, label, module)
        start = time.perf_counter()
        try:
            p.apply(ctx, module)
        except RasterError:
            raise
        except VerifyException as e:
            raise CompileError(f"pass {label} produced invalid IR: {e}") from None
        except Exception as e:  # a crash inside the pass: name it and the op it held, keep the cause
            raise pass_crash_error(label, e) from e
        seconds = time.perf_counter() - start
        self.pass_seconds[label] = seconds
        self.timer.add_pass(label, seconds)
        if verify:
            self._verify(module, label)
        self._record(f"after:{label}", module, p, label)

    def _verify(self, module: ModuleOp, after: str) -> None:
        with self.timer.phase("verification"):
            verify_module(module, after=after)

    def _name_the_culprit(self, fresh_input: Callable[[], ModuleOp], passes: int, first_stage: str) -> None:
        """After a failure with verification deferred: re-run the first `passes` passes verifying after each.

        Raises the CompileError naming the first pass whose output does not verify; returns (so the
        caller re-raises its own error) when every pass before the failure produced valid IR.
        """
        rerun = StagedPipeline(self.spec, DumpOptions(verify_each=True), passes=self.passes[:passes])
        try:
            rerun.run(fresh_input(), first_stage=first_stage)
        except CompileError as e:
            if "does not verify after pass" in str(e) or "produced invalid IR" in str(e):
                raise e from None
        except Exception:
            pass

    def _selected(self, wanted: Sequence[str], p: ModulePass, label: str) -> bool:
        return p.name in wanted or label in wanted

    def _dump_text(self, module: ModuleOp, text: str | None) -> str:
        """The module as the dumps print it (`text`, the recorded stage, when the options are the default)."""
        if text is None or self.dump.generic or self.dump.locations:
            with self.timer.phase("IR printing"):
                return print_module(module, locations=self.dump.locations, generic=self.dump.generic)
        return text

    def _dump_before(self, p: ModulePass, label: str, module: ModuleOp) -> None:
        printed = self.dump.print_ir_before_all or self._selected(self.dump.print_ir_before, p, label)
        if not printed and self.dump.dump_dir is None:
            return
        text = self._dump_text(module, self.stages.get(self.last_stage))
        self._write_dump(f"before_{label}", text)
        if printed:
            self._emit(f"// -----// IR Dump Before {label} //----- //", text)

    def _record(self, stage: str, module: ModuleOp, p: ModulePass | None = None, label: str = "") -> None:
        """Note the stage after pass `p` (labelled `label`) or the first one; print and dump it if asked."""
        self.stage_names.append(stage)
        self.last_stage = stage
        shown = p is not None and (self.dump.print_ir_after_all or self._selected(self.dump.print_ir_after, p, label))
        if not (self.record or shown or self.dump.dump_dir is not None):
            return
        with self.timer.phase("IR printing"):
            text = print_module(module)
        self.stages[stage] = text
        dumped = self._dump_text(module, text)
        self._write_dump(stage.replace(":", "_"), dumped)
        if shown:
            self._emit(f"// -----// IR Dump After {label} //----- //", dumped)

    def _write_dump(self, name: str, text: str) -> None:
        if self.dump.dump_dir is None:
            return
        os.makedirs(self.dump.dump_dir, exist_ok=True)
        with open(os.path.join(self.dump.dump_dir, f"{self._dumps:02d}_{name}.mlir"), "w") as f:
            f.write(text)
        self._dumps += 1

    def _emit(self, title: str, text: str) -> None:
        stream = self.dump.stream or sys.stdout
        stream.write(f"{title}\n{text}\n")

    def timing_report(self) -> str:
        return self.timer.report()


def pass_labels(names) -> list[str]:
    """Stage labels of passes run in this order: a repeated pass gets `#2`, `#3`, ..."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels
