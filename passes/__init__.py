"""Passes of raster_mlir (importable as `raster_mlir.passes`); see `registry.py`."""
