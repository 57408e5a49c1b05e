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

from raster_mlir import backend
from raster_mlir.backend.target import l1_data_cache_bytes
from raster_mlir.compiler import DumpOptions, StagedPipeline
from raster_mlir.dialects import raster as R
from raster_mlir.passes.defer_updates import SCHEDULE_ATTR
from raster_mlir.frontend.tracer import NUMPY_DTYPES


class DataLoop:
    """One compiled loop over `steps` samples for one step signature."""

    def __init__(
        self, compiled, sliced_inputs: Sequence[int], steps: int, cross_step: bool, update_block: int | None = 1
    ):
        """`update_block`: steps per deferred-update block; None: chosen from the L1 data cache size; 1: none."""
        native = compiled.native
        self.steps = steps
        n_inputs = len(compiled.specs)
        loss_slot = n_inputs  # the loss is the first (and only) fresh output
        sliced = (*sliced_inputs, loss_slot)
        self.entry = f"{compiled.entry}_loop"
        loop = f"data-loop{{entry={compiled.entry} steps={steps} sliced={','.join(map(str, sliced))} cross-step=%s}}"
        step_passes = {p.name for p in compiled.pipeline.passes}
        tail = "fuse-loops"
        if "skip-zero-updates" in step_passes:  # the step's own sparsity passes, no others (STRICT_PIPELINE)
            tail += ",skip-zero-updates"
        if "skip-zero-chunks" in step_passes:
            tail += ",skip-zero-chunks"  # last: its chunk scans would block the rotation and defer-updates
        parallel = next((p for p in compiled.pipeline.passes if p.name == "parallelize-loops"), None)
        if parallel is not None:  # the loops inside each step that are worth several threads
            tail += f",parallelize-loops{{min-work={parallel.min_work}}}"
        module = None
        if cross_step and update_block != 1:
            defer = f"defer-updates{{function={self.entry} block={update_block or 0} l1-bytes={l1_data_cache_bytes()}}}"
            module = self._build(compiled, f"{loop % 'false'},{defer},{tail}")
            if not self.schedule.startswith("defer-updates"):
                module = None  # not applicable: the bitwise-equal rotation below instead
        if module is None:
            module = self._build(compiled, f"{loop % ('true' if cross_step else 'false')},{tail}")
            self.schedule = "cross-step fusion" if cross_step else "step by step"
        self.module = module
        arg_specs = []
        for i, s in enumerate(native.function.arg_specs):
            shape = (steps, *s.shape) if i in sliced else s.shape
            arg_specs.append(backend.ArgSpec(shape, s.dtype, written=s.written, name=s.name))
        self.function = backend.compile_module(module, self.entry, arg_specs)
        self.loss_dtype = NUMPY_DTYPES[R.dtype_of(compiled.result_types[0])]
        self.constants = tuple(native.constants)

    def _build(self, compiled, spec: str):
        # The step's IR before skip-zero-chunks: its per-step chunk scans would stand between one
        # step's update and the next forward (the pass runs again last, on the whole loop).
        module = compiled.ir_before.get("skip-zero-chunks", compiled.module).clone()
        self.pipeline = StagedPipeline(spec, DumpOptions())
        self.pipeline.run(module, first_stage="step")
        function = next(f for f in module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == self.entry)
        attr = function.attributes.get(SCHEDULE_ATTR)
        self.schedule = attr.data if attr is not None else ""
        return module

    def ir(self, stage: str | None = None) -> str:
        return self.pipeline.stages[stage or self.pipeline.last_stage]

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        losses = np.empty(self.steps, self.loss_dtype)
        self.function(*inputs, losses, *self.constants)
        return losses
