"""Lowering recipes of the rounding ops (dialects/raster_rounding.py): one `math` op per element, inside
the element-wise loop nests of lower-to-loops like any unary op (the backend emits LLVM's intrinsics)."""

from __future__ import annotations

from xdsl.dialects import math

from raster_mlir.dialects import raster as R

from .loop_recipes import RECIPES
from .loop_recipes_maths import _unary

ROUNDING_RECIPES = {
    R.FloorOp: _unary(math.FloorOp),
    R.CeilOp: _unary(math.CeilOp),
    R.TruncOp: _unary(math.TruncOp),
    R.RintOp: _unary(math.RoundEvenOp),
}
RECIPES.update(ROUNDING_RECIPES)
