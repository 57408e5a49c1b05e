"""Reverse mode through loops with a run-time trip count (raster.while, raster.for with traced bounds)."""

from __future__ import annotations

from raster_mlir.errors import GradientError

from .raster_rules_core import describe_location


def augment_dynamic_for(sweep, op, anchor):
    where = describe_location(op)
    raise GradientError(
        "autodiff: reverse mode through a raster.for whose trip count is only known at run time is not "
        "implemented yet" + (f"\n  at {where}" if where else "")
    )
