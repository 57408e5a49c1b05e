"""`TrainStep.run`: many training steps in one native call, with cross-step fusion.

The compiled step's loop-level IR is wrapped by the `data-loop` pass into a
function that loops over the leading dimension of the data arguments (every
argument that is not a parameter), then `fuse-loops` merges the weight update
of step n with the forward pass of step n+1 and `skip-zero-updates` guards
the rows of inactive ReLU units. No Python runs between samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from raster_mlir import backend
from raster_mlir.compiler import DumpOptions, StagedPipeline
from raster_mlir.dialects import raster as R
from raster_mlir.frontend.tracer import NUMPY_DTYPES


class DataLoop:
    """One compiled loop over `steps` samples for one step signature."""

    def __init__(self, compiled, sliced_inputs: Sequence[int], steps: int, cross_step: bool):
        native = compiled.native
        self.steps = steps
        n_inputs = len(compiled.specs)
        loss_slot = n_inputs  # the loss is the first (and only) fresh output
        sliced = (*sliced_inputs, loss_slot)
        spec = (
            f"data-loop{{entry={compiled.entry} steps={steps} sliced={','.join(map(str, sliced))} "
            f"cross-step={'true' if cross_step else 'false'}}},fuse-loops,skip-zero-updates"
        )
        module = compiled.module.clone()
        self.pipeline = StagedPipeline(spec, DumpOptions())
        self.pipeline.run(module, first_stage="step")
        self.module = module
        self.entry = f"{compiled.entry}_loop"
        arg_specs = []
        for i, s in enumerate(native.function.arg_specs):
            shape = (steps, *s.shape) if i in sliced else s.shape
            arg_specs.append(backend.ArgSpec(shape, s.dtype, written=s.written, name=s.name))
        self.function = backend.compile_module(module, self.entry, arg_specs)
        self.loss_dtype = NUMPY_DTYPES[R.dtype_of(compiled.result_types[0])]
        self.constants = tuple(native.constants)

    def ir(self, stage: str | None = None) -> str:
        return self.pipeline.stages[stage or self.pipeline.last_stage]

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        losses = np.empty(self.steps, self.loss_dtype)
        self.function(*inputs, losses, *self.constants)
        return losses
