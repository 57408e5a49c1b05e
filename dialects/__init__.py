"""xDSL dialects of raster_mlir (importable as `raster_mlir.dialects`)."""
