"""Rounding ops of the `raster` dialect: floor, ceil, trunc and rint (round half to even, numpy's np.round).

Elementwise on float tensors, same shape and type (`ElementwiseUnaryOp` of raster_base.py), registered in
the `Raster` dialect by raster.py. Each is piecewise constant: marked non-differentiable (zero derivative,
as JAX). They lower to `math.floor` / `math.ceil` / `math.trunc` / `math.roundeven`, which the backend
emits as LLVM's intrinsics (one vector instruction per lane group on x86 with SSE4.1 or AVX-512).
"""

from __future__ import annotations

from xdsl.irdl import irdl_op_definition

from .raster_base import ElementwiseUnaryOp, RasterOp


@irdl_op_definition
class FloorOp(ElementwiseUnaryOp):
    """y = the largest integer <= x (-0.0, inf and NaN stay).  `%y = raster.floor %x : tensor<4xf64>`"""

    name = "raster.floor"


@irdl_op_definition
class CeilOp(ElementwiseUnaryOp):
    """y = the smallest integer >= x.  `%y = raster.ceil %x : tensor<4xf64>`"""

    name = "raster.ceil"


@irdl_op_definition
class TruncOp(ElementwiseUnaryOp):
    """y = x rounded toward zero.  `%y = raster.trunc %x : tensor<4xf64>`"""

    name = "raster.trunc"


@irdl_op_definition
class RintOp(ElementwiseUnaryOp):
    """y = x rounded to the nearest integer, halves to even (numpy's rint and round).  `%y = raster.rint %x : tensor<4xf64>`"""

    name = "raster.rint"


ROUNDING_OPS: tuple[type[RasterOp], ...] = (FloorOp, CeilOp, TruncOp, RintOp)

__all__ = ["ROUNDING_OPS", *(op.__name__ for op in ROUNDING_OPS)]
