"""Loop recipes of static slicing, slice insertion and concatenation (`dialects/raster_array.py`).

Each is a loop nest over the elements it moves, reading or writing at an
affine index `start + i * step` per axis:

- slice: one nest over the result, out[i] = in[start + i * step]. The result
  is written at the loop's own index, so fuse-loops merges the nest with its
  consumers, and store forwarding then reads the input directly: the stencil
  `u[1:-1] + c * (u[2:] - 2 * u[1:-1] + u[:-2])` becomes one loop that loads
  u[i], u[i + 1] and u[i + 2];
- insert_slice with unit steps: one nest over the result, out[i] = i in the box ?
  source[i - start] : dest[i] (the source loaded under `scf.if`, a masked vector
  load after LLVM); it fuses with its consumers, so a gradient's slice
  transposes summed together become one loop. With other steps: copy the
  destination, then a nest over the source writing out[start + i * step];
- concatenate: one nest per operand writing out[.., offset + i, ..]; each nest
  reads its operand at its own index, so it fuses with the operand's producer
  (the interior of `concatenate([u[:1], interior, u[-1:]])` is computed
  straight into the result). When every operand is only a copy (a function
  argument, a constant, or a slice / broadcast of one: `np.roll`, `np.pad`),
  there is no producer to fuse with: one nest over the result instead, loading
  the piece that holds i under `scf.if`, so it fuses with its consumers, and
  fuse-loops reads the sliced pieces straight from their source
  (forward_gathers.py): a periodic stencil with np.roll is one loop.
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
    start, step = params["start"], params["step"]
    if all(t == 1 for t in step):
        _insert_by_select(b, source, dest, out, start)
        return
    # Strided boxes: copy the destination, then write the source's elements into their places.
    copy_into(b, dest, out)
    b.nest(source.shape, lambda idx: b.store(at(b, source, idx), out.ref, _box_index(b, idx, start, step)))


def _insert_by_select(b: LoopBuilder, source, dest, out, start) -> None:
    """out[i] = i in the box ? source[i - start] : dest[i], one nest over the result.

    The result is written at the loop's own index, so the nest fuses with the
    loops that consume it (a gradient's slice transposes summed together
    become one loop) and with dest's producer. A source element is loaded
    only inside the box (`scf.if`), which LLVM vectorises as a masked load.
    """

    def body(idx):
        inside, src_idx = None, []
        for i, s, n, full in zip(idx, start, source.shape, out.shape):
            if s == 0 and n == full:
                src_idx.append(i)
                continue
            j = i if s == 0 else b.subi(i, b.index(s))
            # One unsigned compare: j < 0 wraps to a huge value.
            in_range = b.add(arith.CmpiOp(j, b.index(n), "ult"))
            inside = in_range if inside is None else b.add(arith.AndIOp(inside, in_range))
            src_idx.append(j)
        if inside is None:  # the box is the whole array
            b.store(at(b, source, idx), out.ref, idx)
            return
        if isinstance(source, Scalar):
            value = b.select(inside, source.value, at(b, dest, idx))
        else:
            value = b.if_else(inside, lambda: [b.load(source.ref, src_idx)], lambda: [at(b, dest, idx)])[0]
        b.store(value, out.ref, idx)

    b.nest(out.shape, body)


def _copies(value: SSAValue) -> bool:
    """The value is a function argument, a constant or a slice / broadcast of one: reading it
    at any index is a load of another buffer once forward-gathers has run."""
    owner = value.owner
    if not isinstance(owner, R.RasterOp):
        return True  # a block argument
    if isinstance(owner, (R.FillOp, R.ConstantOp)):
        return True
    return isinstance(owner, (R.SliceOp, R.BroadcastToOp)) and _copies(owner.operands[0])


def concatenate(b: LoopBuilder, op, ins, outs):
    out = outs[0]
    axis = op.params()["axis"]
    offsets = np.cumsum([0] + [piece.shape[axis] for piece in ins])
    if all(_copies(v) for v in op.operands):
        _concatenate_by_select(b, ins, out, axis, offsets)
        return
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


def _concatenate_by_select(b: LoopBuilder, ins, out, axis: int, offsets) -> None:
    """out[.., i, ..] = the piece k with offsets[k] <= i < offsets[k + 1], read at i - offsets[k]:
    one nest over the result (the pieces loaded under `scf.if`), which fuses with its consumers."""

    def body(idx):
        i = idx[axis]

        def piece(k: int) -> SSAValue:
            at_piece = list(idx)
            at_piece[axis] = i if offsets[k] == 0 else b.subi(i, b.index(int(offsets[k])))
            return at(b, ins[k], at_piece)

        def choose(k: int) -> SSAValue:
            if k == len(ins) - 1:
                return piece(k)
            inside = b.add(arith.CmpiOp(i, b.index(int(offsets[k + 1])), "ult"))
            return b.if_else(inside, lambda: [piece(k)], lambda: [choose(k + 1)])[0]

        b.store(choose(0), out.ref, idx)

    b.nest(out.shape, body)


ARRAY_RECIPES = {R.SliceOp: slice_, R.InsertSliceOp: insert_slice, R.ConcatenateOp: concatenate}
RECIPES.update(ARRAY_RECIPES)
