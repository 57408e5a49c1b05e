"""xDSL dialects of raster_mlir (importable as `raster_mlir.dialects`)."""

# raster.py registers the ops of raster_maths.py / raster_array.py, which import its
# base classes: importing it first keeps that cycle in one order whatever is imported.
from . import raster  # noqa: F401
