"""The context StagedPipeline gives the passes: a pass that is not raster_mlir's (xDSL's, a plug-in,
a user's) may look up builtin's undotted names ("tensor", "string"), which the lazily loaded
context cannot trace to their dialect; raster_mlir's own pipeline does not pay for loading it."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType
from xdsl.passes import ModulePass

from raster_mlir.compiler import DEFAULT_PIPELINE, StagedPipeline, needs_builtin_loaded
from raster_mlir.passes.registry import parse_pipeline

found: list = []


@dataclass(frozen=True)
class LooksUpBuiltinNames(ModulePass):
    name = "looks-up-builtin-names"

    def apply(self, ctx, op) -> None:
        found.append((ctx.get_optional_type("tensor"), ctx.get_optional_attr("string")))


def test_a_plug_in_pass_finds_builtin_s_undotted_names():
    found.clear()
    StagedPipeline("looks-up-builtin-names", passes=[LooksUpBuiltinNames()]).run(ModuleOp([]))
    assert found == [(TensorType, StringAttr)]


def test_raster_mlir_s_own_pipeline_leaves_builtin_unloaded():
    assert not needs_builtin_loaded(parse_pipeline(DEFAULT_PIPELINE).passes)
    assert needs_builtin_loaded([*parse_pipeline(DEFAULT_PIPELINE).passes, LooksUpBuiltinNames()])
