"""`python -m raster_mlir`: the `raster-mlir` command (raster_mlir/apps/raster_mlir_command.py)."""

import sys

from raster_mlir.apps.raster_mlir_command import main

if __name__ == "__main__":
    sys.exit(main())
