"""`TrainStep.run`: many training steps in one native call, with cross-step fusion.

The compiled step's loop-level IR is wrapped by the `data-loop` pass into a
function that loops over the leading dimension of the data arguments (every
argument that is not a parameter). Then, with cross-step fusion, one of two
schedules:

- `defer-updates{block=K}` (unless `update_block` is 1, when the first layer is
  a dense layer trained by a rank-one update, as with SGD): the first
  layer's updates of K steps are applied in one pass over its weights, which
  also computes the next K steps' dot products; equal to the step-by-step
  loop up to rounding;
- otherwise the `data-loop` rotation: `fuse-loops` merges the weight update
  of step n with the forward pass of step n+1, bitwise equal to separate
  steps.

`skip-zero-updates` then guards the rows of inactive ReLU units and
`skip-zero-chunks` (when the step's pipeline has it) skips the all-zero
chunks of each sample. No Python runs between samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func

from raster_mlir import backend, compile_cache
from raster_mlir.backend.llvm_emit import EmitOptions, emit_module
from raster_mlir.backend.target import host_target
from raster_mlir.backend.target import l1_data_cache_bytes
from raster_mlir.compiler import DumpOptions, StagedPipeline
from raster_mlir.dialects import raster as R
from raster_mlir.passes.defer_updates import SCHEDULE_ATTR
from raster_mlir.frontend.tracer import NUMPY_DTYPES
from raster_mlir.gc_pause import paused_gc
from raster_mlir.ir_clone import clone_op
from raster_mlir.replay import Replay
from raster_mlir.timing import CompileTimer


class DataLoop:
    """One compiled loop over `steps` samples for one step signature.

    Cached like a compiled function (compile_cache.py): the key is the step's
    key plus the loop's parameters, so a warm `step.run` loads the loop
    without running the step's or the loop's pipeline; `ir()` and `module`
    then re-run them on first use.
    """

    def __init__(
        self, compiled, sliced_inputs: Sequence[int], steps: int, cross_step: bool, update_block: int | None = 1
    ):
        """`update_block`: steps per deferred-update block; None: chosen from the L1 data cache size; 1: none."""
        self.timer = CompileTimer()
        with paused_gc(self.timer):
            self._build_loop(compiled, sliced_inputs, steps, cross_step, update_block)

    def _build_loop(self, compiled, sliced_inputs, steps, cross_step, update_block) -> None:
        native = compiled.native
        self.compiled = compiled
        self.steps = steps
        n_inputs = len(compiled.specs)
        loss_slot = n_inputs  # the loss is the first (and only) fresh output
        sliced = (*sliced_inputs, loss_slot)
        self.entry = f"{compiled.entry}_loop"
        self.loss_dtype = NUMPY_DTYPES[R.dtype_of(compiled.result_types[0])]
        self.constants = tuple(native.constants)
        self._module = None
        self._pipeline: StagedPipeline | None = None
        self._recorded = None
        arg_specs = []
        for i, s in enumerate(native.function.arg_specs):
            shape = (steps, *s.shape) if i in sliced else s.shape
            arg_specs.append(backend.ArgSpec(shape, s.dtype, written=s.written, name=s.name))
        loop = f"data-loop{{entry={compiled.entry} steps={steps} sliced={','.join(map(str, sliced))} cross-step=%s}}"
        step_passes = set(compiled.pass_names)
        tail = "fuse-loops"
        if "skip-zero-updates" in step_passes:  # the step's own sparsity passes, no others (STRICT_PIPELINE)
            tail += ",skip-zero-updates"
        if "skip-zero-chunks" in step_passes:
            tail += ",skip-zero-chunks"  # last: its chunk scans would block the rotation and defer-updates
        if "parallelize-loops" in compiled.pass_names:  # the loops inside each step that are worth several threads
            parallel = next(p for p in compiled.passes if p.name == "parallelize-loops")
            tail += f",parallelize-loops{{min-work={parallel.min_work}}}"
        defer = f"defer-updates{{function={self.entry} block={update_block or 0} l1-bytes={l1_data_cache_bytes()}}}"
        key = None
        if compiled.cache_key is not None:
            with self.timer.phase("cache key"):
                key = compile_cache.derived_key(compiled.cache_key, loop, tail, defer, cross_step, update_block)
            if self._load(key):
                return
        module = None
        if cross_step and update_block != 1:
            module = self._build(compiled, f"{loop % 'false'},{defer},{tail}")
            if not self.schedule.startswith("defer-updates"):
                module = None  # not applicable: the bitwise-equal rotation below instead
        if module is None:
            module = self._build(compiled, f"{loop % ('true' if cross_step else 'false')},{tail}")
            self.schedule = "cross-step fusion" if cross_step else "step by step"
        self._module = module
        self.spec = self._pipeline.spec
        verified = self._pipeline.verified
        self.function = backend.compile_module(module, self.entry, arg_specs, timer=self.timer, verified=verified)
        if key is not None and self.function.cache_key is not None:
            extra = {"schedule": self.schedule, "spec": self.spec}
            with self.timer.phase("cache write"):
                compile_cache.store(key, compile_cache.FunctionEntry(self.function.cache_key, self.function.abi, (), extra))

    def _load(self, key: str) -> bool:
        loaded = compile_cache.load_function(key, 3, self._llvm_ir_text, self.timer)
        if loaded is None:
            return False
        stored, self.function = loaded
        self.schedule, self.spec = stored.extra["schedule"], stored.extra["spec"]
        return True

    def _build(self, compiled, spec: str):
        module = clone_op(self._step_module())
        self._pipeline = StagedPipeline(spec, DumpOptions(), timer=self.timer)
        self._pipeline.run(module, first_stage="step", fresh_input=lambda: clone_op(self._step_module()))
        function = next(f for f in module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == self.entry)
        attr = function.attributes.get(SCHEDULE_ATTR)
        self.schedule = attr.data if attr is not None else ""
        return module

    def _step_module(self):
        # The step's IR before skip-zero-chunks: its per-step chunk scans would stand between one
        # step's update and the next forward (the pass runs again last, on the whole loop).
        return self.compiled.ir_before.get("skip-zero-chunks", self.compiled.module)

    def _replay(self) -> StagedPipeline:
        """The loop's pipeline re-run with every stage recorded (for `ir`, and `module` after a cache hit)."""
        if self._recorded is None:
            replay = Replay(self._step_module(), self.spec, first_stage="step")
            with paused_gc(self.timer):
                self._recorded = replay.recorded()
            if self._module is None:
                self._module = replay.final_module()
        return self._recorded

    @property
    def pipeline(self) -> StagedPipeline:
        return self._pipeline if self._pipeline is not None else self._replay()

    @property
    def module(self):
        if self._module is None:
            self._replay()
        return self._module

    def _llvm_ir_text(self) -> str:
        specs = {self.entry: list(self.function.arg_specs)}
        return emit_module(self.module, specs, EmitOptions(target=host_target())).llvm_ir

    def ir(self, stage: str | None = None) -> str:
        """IR text of a stage of the loop's pipeline (re-run with recording on first use)."""
        recorded = self._replay()
        return recorded.stages[stage or recorded.last_stage]

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        losses = np.empty(self.steps, self.loss_dtype)
        self.function(*inputs, losses, *self.constants)
        return losses
