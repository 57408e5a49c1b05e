"""IR stages on demand: re-run a compile's (deterministic) pipeline from its traced module.

A compile prints no IR unless asked (printing a large module costs as much as
a pass over it), and a warm compile runs no pass at all. What somebody asks
for later — the text of a stage (`c.ir("after:fuse-loops")`), the module
before some pass (the reference interpreter's tensor-level IR, a train
step's IR before skip-zero-chunks for its data loops), the final module, the
LLVM IR — is recomputed here from the untouched traced module. The passes
are deterministic (same input, same output, same SSA names), so the result
is the IR the compile produced; tests check that the replayed final stage
equals the text printed during the compile.

Choice documented in README ("Compile time"): re-running instead of keeping
copies of every stage costs nothing until a stage is wanted, and the same
mechanism serves cache hits, where no stage was ever computed in this process.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from raster_mlir.compiler import DumpOptions, StagedPipeline
from raster_mlir.ir_clone import clone_op
from raster_mlir.timing import CompileTimer


# No dumps, and no verification: the compile verified this very pipeline's output already
# (or was told not to, with verify_each=False, and then a replay must not refuse it either).
_QUIET = DumpOptions(verify_each=False)


class Replay:
    """Re-runs pipeline `spec` on copies of `traced` (never modified), keeping what it computed."""

    def __init__(self, traced: ModuleOp, spec: str, first_stage: str = "traced"):
        self.traced = traced
        self.spec = spec
        self.first_stage = first_stage
        self.timer = CompileTimer()
        self._recorded: StagedPipeline | None = None
        self._final: ModuleOp | None = None
        self._before: dict[str, ModuleOp] = {}

    def recorded(self) -> StagedPipeline:
        """The pipeline run once more with every stage printed (`.stages`), on a copy of the traced module."""
        if self._recorded is None:
            module = clone_op(self.traced)
            pipeline = StagedPipeline(self.spec, _QUIET, record=True, timer=self.timer)
            pipeline.run(module, first_stage=self.first_stage)
            self._recorded = pipeline
            if self._final is None:
                self._final = module
        return self._recorded

    def final_module(self) -> ModuleOp:
        """The module after the whole pipeline (no stage printed unless `recorded()` ran already)."""
        if self._final is None:
            module = clone_op(self.traced)
            StagedPipeline(self.spec, _QUIET, timer=self.timer).run(module, first_stage=self.first_stage)
            self._final = module
        return self._final

    def module_before(self, pass_name: str) -> ModuleOp:
        """The module just before the first run of `pass_name` (the final module if it never runs)."""
        if pass_name not in self._before:
            pipeline = StagedPipeline(self.spec, _QUIET, timer=self.timer)
            if pass_name not in (p.name for p in pipeline.passes):
                return self.final_module()
            module = clone_op(self.traced)
            pipeline.run(module, first_stage=self.first_stage, stop_before=pass_name)
            self._before[pass_name] = module
        return self._before[pass_name]
