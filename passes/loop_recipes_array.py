"""Loop recipes of static slicing, slice insertion and concatenation (`dialects/raster_array.py`).

Each is a loop nest over the elements it moves, reading or writing at an
affine index `start + i * step` per axis:

- slice: one nest over the result, out[i] = in[start + i * step]. The result
  is written at the loop's own index, so fuse-loops merges the nest with its
  consumers, and store forwarding then reads the input directly: the stencil
  `u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])` becomes one loop that loads
  u[i], u[i + 1] and u[i + 2];
- insert_slice: copy the destination, then a nest over the source writing
  out[start + i * step];
- concatenate: one nest per operand writing out[.., offset + i, ..]; each nest
  reads its operand at its own index, so it fuses with the operand's producer
  (the interior of `concatenate([u[:1], interior, u[-1:]])` is computed
  straight into the result).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import arith
from xdsl.ir import SSAValue

from raster_mlir.dialects import raster as R

from .loop_builder import LoopBuilder
from .loop_recipes import RECIPES, Scalar, at, copy_into


def _affine(b: LoopBuilder, i: SSAValue, start: int, step: int) -> SSAValue:
    """start + i * step as an index value, without ops for the trivial parts."""
    if i is b.index(0):  # the index of a loop of one iteration (LoopBuilder.loop builds none)
        return b.index(start)
    if step == 1:
        scaled = i
    elif step == -1:
        return b.subi(b.index(start), i)
    else:
        scaled = b.add(arith.MuliOp(i, b.index(step)))
    return scaled if start == 0 else b.addi(scaled, b.index(start))


def _box_index(b: LoopBuilder, idx: Sequence[SSAValue], start, step) -> list[SSAValue]:
    return [_affine(b, i, s, t) for i, s, t in zip(idx, start, step)]


def slice_(b: LoopBuilder, op, ins, outs):
    x, out = ins[0], outs[0]
    if isinstance(x, Scalar):
        copy_into(b, x, out)
        return
    params = op.params()
    b.nest(out.shape, lambda idx: b.store(b.load(x.ref, _box_index(b, idx, params["start"], params["step"])), out.ref, idx))


def insert_slice(b: LoopBuilder, op, ins, outs):
    source, dest = ins
    out = outs[0]
    params = op.params()
    copy_into(b, dest, out)
    b.nest(source.shape, lambda idx: b.store(at(b, source, idx), out.ref, _box_index(b, idx, params["start"], params["step"])))


def concatenate(b: LoopBuilder, op, ins, outs):
    out = outs[0]
    axis = op.params()["axis"]
    offsets = np.cumsum([0] + [piece.shape[axis] for piece in ins])
    step = (1,) * len(out.shape)
    # The pieces write disjoint parts of the result, so any order is right. The largest goes
    # first: it is usually computed by the loop just before (the interior of a boundary
    # condition), and small pieces read from it (edge padding) would otherwise sit between
    # that loop and its copy and keep fuse-loops from merging them.
    for k in sorted(range(len(ins)), key=lambda k: -int(np.prod(ins[k].shape))):
        piece = ins[k]
        start = tuple(int(offsets[k]) if d == axis else 0 for d in range(len(out.shape)))

        def body(idx, piece=piece, start=start):
            b.store(at(b, piece, idx), out.ref, _box_index(b, idx, start, step))

        b.nest(piece.shape, body)


ARRAY_RECIPES = {R.SliceOp: slice_, R.InsertSliceOp: insert_slice, R.ConcatenateOp: concatenate}
RECIPES.update(ARRAY_RECIPES)
