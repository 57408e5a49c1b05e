"""The `xdsl.universe` entry point: upstream `xdsl-opt` parses, prints and runs raster IR.

xDSL discovers plug-ins through the entry-point group `xdsl.universe`
(see `xdsl.universe.Universe`); raster_mlir's `pyproject.toml` declares

    [project.entry-points."xdsl.universe"]
    raster_mlir = "raster_mlir.universe:RASTER_UNIVERSE"

so that after `pip install` of raster_mlir

    xdsl-opt model.mlir -p 'inline,autodiff,canonicalize,cse,lower-to-loops'

knows the `raster` dialect and raster_mlir's own passes. The loop-level IR
is made of upstream dialects that xDSL has already. xDSL refuses duplicate
names across universes, so only the names raster_mlir owns are given (the
dialect `raster`, the passes of `passes/registry.py`'s `RASTER_PASSES`),
never xDSL's own or plug-in passes.
"""

from __future__ import annotations

from xdsl.ir import Dialect
from xdsl.universe import Universe

from raster_mlir.passes.registry import RASTER_PASSES


def _raster_dialect() -> Dialect:
    from raster_mlir.dialects.raster import Raster

    return Raster


RASTER_UNIVERSE = Universe(all_dialects={"raster": _raster_dialect}, all_passes=dict(RASTER_PASSES))
