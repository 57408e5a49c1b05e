"""How each raster op becomes loops: one recipe per op, used by `lower-to-loops`.

A recipe receives the LoopBuilder, the op, the storage of its operands and the
output buffers of its results, and emits the loop nest that computes them.
Loop orders keep the innermost loop on the unit-stride (last) dimension so
LLVM can vectorise it:

- elementwise ops: one nest over the result, operands read with numpy
  broadcasting (a size-1 or missing dimension reads index 0);
- reduction over the last axis or over everything: an accumulator carried in
  `iter_args` (a dot-product shape, vectorised with `reassoc`);
- reduction over an outer axis: initialise the result, then accumulate whole
  rows into it (the inner loop walks the kept last axis);
- dense and matrix-vector: one dot product per output element; a batched
  dense computes 4x4 tiles (rows of W x samples) per pass over k, so each
  loaded vector feeds four products;
- matrix-matrix of two buffers: register tiles (`vector` ops) accumulated over
  k, every element stored once with its final value (matmul_tiles.py); i-k-j
  order, accumulating rows of the result, for a constant operand;
- softmax / log_softmax / cross-entropy: per row, a max pass, a sum-of-exp
  pass and a normalisation pass (the row max is subtracted before exp).
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith, vector
from xdsl.dialects.builtin import Float32Type, IntegerType, VectorType
from xdsl.ir import Attribute, Operation, SSAValue

from raster_mlir.dialects import raster as R

from .loop_builder import LoopBuilder
from .matmul_tiles import matmul_tiles


@dataclass(frozen=True)
class Buffer:
    """A value stored in a memref of `shape` (row-major)."""

    ref: SSAValue
    shape: tuple[int, ...]

    @property
    def element_type(self) -> Attribute:
        return self.ref.type.element_type


@dataclass(frozen=True)
class Scalar:
    """A value whose every element is the same SSA scalar (a `raster.fill`)."""

    value: SSAValue
    shape: tuple[int, ...]

    @property
    def element_type(self) -> Attribute:
        return self.value.type


Storage = Buffer | Scalar
Recipe = Callable[[LoopBuilder, Operation, Sequence[Storage], Sequence[Buffer]], None]


def read(b: LoopBuilder, s: Storage, idx: Sequence[SSAValue], out_shape: Sequence[int]) -> SSAValue:
    """Element of `s` at result index `idx`, with numpy broadcasting to `out_shape`."""
    if isinstance(s, Scalar):
        return s.value
    offset = len(out_shape) - len(s.shape)
    indices = [b.index(0) if d == 1 else idx[offset + k] for k, d in enumerate(s.shape)]
    return b.load(s.ref, indices)


def at(b: LoopBuilder, s: Storage, idx: Sequence[SSAValue]) -> SSAValue:
    """Element of `s` at its own index `idx` (no broadcasting)."""
    return read(b, s, idx, s.shape)


def copy_into(b: LoopBuilder, src: Storage, dst: Buffer) -> None:
    """dst[...] = src broadcast to dst's shape."""
    b.nest(dst.shape, lambda idx: b.store(read(b, src, idx, dst.shape), dst.ref, idx))


def _lowest(element_type: Attribute) -> float:
    return -pymath.inf


def _tiny(element_type: Attribute) -> float:
    """Smallest normal number: the cross-entropy clamp, as in runtime/reference.py."""
    return float(np.finfo(np.float32 if isinstance(element_type, Float32Type) else np.float64).tiny)


# ---------------------------------------------------------------------------
# Elementwise


def elementwise(scalar_fn: Callable[..., SSAValue]) -> Recipe:
    def recipe(b, op, ins, outs):
        out = outs[0]

        def body(idx):
            args = [read(b, s, idx, out.shape) for s in ins]
            b.store(scalar_fn(b, *args), out.ref, idx)

        b.nest(out.shape, body)

    recipe.scalar_fn = scalar_fn  # lower-to-loops computes all-scalar operands without a loop
    return recipe


def by_type(float_fn: Callable[..., SSAValue], int_fn: Callable[..., SSAValue]) -> Callable[..., SSAValue]:
    """A scalar function for float operands and one for traced integers (i64)."""

    def fn(b, *args):
        return (int_fn if isinstance(args[0].type, IntegerType) else float_fn)(b, *args)

    return fn


def fill_value(b: LoopBuilder, op) -> SSAValue:
    """The scalar of a `raster.fill`: a float or (traced integers) an i64 constant."""
    element = op.result.type.element_type
    if isinstance(element, IntegerType):
        return b.integer(int(op.value.value.data), element)
    return b.float(op.value.value.data, element)


def _sigmoid(b, x):
    # e = exp(-|x|) in (0, 1]: sigmoid = 1/(1+e) for x >= 0 and e/(1+e) below, so nothing overflows
    # and the tiny values of sigmoid(x < -708) are kept (1/(1+exp(-x)) gave 1/inf = 0).
    # -|x| as -max(x, -x) keeps NaN; every step vectorises (exp is inline vector code, vmath/).
    one = b.float(1.0, x.type)
    e = b.exp(b.negf(b.maxf(x, b.negf(x))))
    r = b.divf(one, b.addf(one, e))
    return b.select(b.cmpf(x, b.float(0.0, x.type), "oge"), r, b.mulf(e, r))


# arith.cmpf predicate -> the arith.cmpi predicate of the same comparison on traced integers
_INT_PREDICATES = {"ogt": "sgt", "oge": "sge", "olt": "slt", "ole": "sle", "oeq": "eq", "une": "ne", "one": "ne"}


def _mask(predicate: str, int_predicate: str | None = None):
    int_predicate = int_predicate or _INT_PREDICATES[predicate]

    def fn(b, x, y):
        if isinstance(x.type, IntegerType):
            cond = b.add(arith.CmpiOp(x, y, int_predicate))
            return b.select(cond, b.integer(1, x.type), b.integer(0, x.type))
        return b.select(b.cmpf(x, y, predicate), b.float(1.0, x.type), b.float(0.0, x.type))

    return fn


# ---------------------------------------------------------------------------
# Reductions


def full_index(rank: int, kept, kept_idx, axes, red_idx) -> list[SSAValue]:
    """The index of an element of a reduction's input from the kept axes' and the reduced axes' indices."""
    full = [None] * rank
    for k, i in zip(kept, kept_idx):
        full[k] = i
    for k, i in zip(axes, red_idx):
        full[k] = i
    return full


def reduction(kind: str) -> Recipe:
    """sum / mean / max / min / prod over one axis (or all), with or without keepdims."""

    def recipe(b, op, ins, outs):
        x, out = ins[0], outs[0]
        params = op.params()
        rank = len(x.shape)
        axes = list(range(rank)) if params["axis"] is None else [params["axis"]]
        ft = out.element_type
        init = b.float({"max": _lowest(ft), "min": pymath.inf, "prod": 1.0}.get(kind, 0.0), ft)
        combine = {"max": b.maxf, "min": b.minf, "prod": b.mulf}.get(kind, b.addf)
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        kept = [k for k in range(rank) if k not in axes]

        def out_index(full_idx):
            if params["keepdims"]:
                return [b.index(0) if k in axes else full_idx[k] for k in range(rank)]
            return [full_idx[k] for k in kept]

        def finish(value):
            return b.divf(value, b.float(float(count), ft)) if kind == "mean" else value

        if rank == 0 or axes[-1] == rank - 1 or not kept:
            # Reduced dimensions innermost: carry an accumulator (unit stride over the last axis).
            def per_output(kept_idx):
                def merge(red_idx):
                    return full_index(rank, kept, kept_idx, axes, red_idx)

                total = b.reduce_nest(
                    [x.shape[a] for a in axes], [init], lambda ridx, acc: [combine(acc, at(b, x, merge(ridx)))]
                )[0]
                b.store(finish(total), out.ref, out_index(merge([b.index(0)] * len(axes))))

            b.nest([x.shape[k] for k in kept], per_output)
        else:
            # An outer axis: accumulate whole rows into the result (the inner loop stays unit-stride).
            b.nest(out.shape, lambda idx: b.store(init, out.ref, idx))

            def accumulate(idx):
                o = out_index(idx)
                b.store(combine(b.load(out.ref, o), at(b, x, idx)), out.ref, o)

            b.nest(x.shape, accumulate)
            if kind == "mean":
                b.nest(out.shape, lambda idx: b.store(finish(b.load(out.ref, idx)), out.ref, idx))

    return recipe


# ---------------------------------------------------------------------------
# Neural-network ops


def _dot(b, n, ft, left, right):
    """sum_k left(k) * right(k) as a carried accumulator."""
    zero = b.float(0.0, ft)
    return b.loop(n, [zero], lambda k, acc: [b.addf(acc, b.mulf(left(k), right(k)))])[0]


# A batched dense computes TILE_ROWS x TILE_SAMPLES outputs per pass over k: each
# loaded vector of W feeds TILE_SAMPLES products and each vector of x TILE_ROWS,
# so the k-loop does half a load per FMA instead of two (16 accumulators, 8 loads).
TILE_ROWS, TILE_SAMPLES = 4, 4


def dense(b, op, ins, outs):
    w, x, bias = ins
    out = outs[0]
    n_out, n_in = w.shape
    ft = out.element_type

    def tile(o0, n0, rows: int, samples: int):
        """out[n0 + j, o0 + i] for i < rows, j < samples: one k-loop carrying rows * samples sums."""

        def step(k, *sums):
            ws = [at(b, w, [_offset(b, o0, i), k]) for i in range(rows)]
            xs = [at(b, x, [_offset(b, n0, j), k]) for j in range(samples)]
            return [b.addf(sums[i * samples + j], b.mulf(ws[i], xs[j])) for i in range(rows) for j in range(samples)]

        sums = b.loop(n_in, [b.float(0.0, ft)] * (rows * samples), step)
        for i in range(rows):
            o = _offset(b, o0, i)
            bias_o = at(b, bias, [o])
            for j in range(samples):
                out_idx = [_offset(b, n0, j), o] if len(x.shape) == 2 else [o]
                b.store(b.addf(sums[i * samples + j], bias_o), out.ref, out_idx)

    if len(x.shape) == 1 or x.shape[0] < TILE_SAMPLES or n_out < TILE_ROWS:
        # One sample (or a tiny batch): one dot product per output element.
        def body(idx):
            rows, o = idx[:-1], idx[-1]
            acc = _dot(b, n_in, ft, lambda k: at(b, w, [o, k]), lambda k: at(b, x, [*rows, k]))
            b.store(b.addf(acc, at(b, bias, [o])), out.ref, idx)

        b.nest(out.shape, body)
        return
    batch = x.shape[0]
    full_rows, full_samples = n_out - n_out % TILE_ROWS, batch - batch % TILE_SAMPLES

    def row_block(ob):
        o0 = b.add(arith.MuliOp(ob, b.index(TILE_ROWS)))
        b.loop(full_samples // TILE_SAMPLES, body=lambda nb: tile(o0, b.add(arith.MuliOp(nb, b.index(TILE_SAMPLES))), TILE_ROWS, TILE_SAMPLES))
        for n in range(full_samples, batch):  # the last samples of the batch
            tile(o0, b.index(n), TILE_ROWS, 1)

    b.loop(full_rows // TILE_ROWS, body=row_block)
    for o in range(full_rows, n_out):  # the last rows of W
        b.loop(batch, body=lambda n, o=o: tile(b.index(o), n, 1, 1))


def _offset(b, base, i: int):
    """base + i as an index value (base itself when i is 0)."""
    return base if i == 0 else b.add(arith.AddiOp(base, b.index(i)))


def _row_max_and_sum(b, x, row, n, ft):
    """(max_j x[row, j], sum_j exp(x[row, j] - max)) for one row."""
    m = b.loop(n, [b.float(_lowest(ft), ft)], lambda j, a: [b.maxf(a, at(b, x, [*row, j]))])[0]
    s = b.loop(n, [b.float(0.0, ft)], lambda j, a: [b.addf(a, b.exp(b.subf(at(b, x, [*row, j]), m)))])[0]
    return m, s


def softmax(b, op, ins, outs):
    x, out = ins[0], outs[0]
    n, ft = x.shape[-1], out.element_type

    def per_row(row):
        m = b.loop(n, [b.float(_lowest(ft), ft)], lambda j, a: [b.maxf(a, at(b, x, [*row, j]))])[0]

        def exp_pass(j, acc):
            e = b.exp(b.subf(at(b, x, [*row, j]), m))
            b.store(e, out.ref, [*row, j])
            return [b.addf(acc, e)]

        s = b.loop(n, [b.float(0.0, ft)], exp_pass)[0]
        inv = b.divf(b.float(1.0, ft), s)
        b.loop(n, body=lambda j: b.store(b.mulf(b.load(out.ref, [*row, j]), inv), out.ref, [*row, j]))

    b.nest(x.shape[:-1], per_row)


def log_softmax(b, op, ins, outs):
    x, out = ins[0], outs[0]
    n, ft = x.shape[-1], out.element_type

    def per_row(row):
        m, s = _row_max_and_sum(b, x, row, n, ft)
        log_s = b.log(s)
        # (x - m) - log(s), not x - (m + log(s)): for |x| ~ 1e4 the sum m + log(s) loses the digits of log(s).
        b.loop(n, body=lambda j: b.store(b.subf(b.subf(at(b, x, [*row, j]), m), log_s), out.ref, [*row, j]))

    b.nest(x.shape[:-1], per_row)


def _batch_mean_negated(b, total, shape, ft):
    """-total, divided by the batch size for 2-D inputs (the cross-entropy convention)."""
    loss = b.negf(total)
    return b.divf(loss, b.float(float(shape[0]), ft)) if len(shape) == 2 else loss


def cross_entropy(b, op, ins, outs):
    p, y = ins
    out = outs[0]
    ft = out.element_type
    tiny = b.float(_tiny(ft), ft)

    def term(idx, acc):
        logp = b.log(b.maxf(at(b, p, idx), tiny))
        return [b.addf(acc, b.mulf(at(b, y, idx), logp))]

    total = b.reduce_nest(p.shape, [b.float(0.0, ft)], term)[0]
    b.store(_batch_mean_negated(b, total, p.shape, ft), out.ref, [])


def softmax_cross_entropy(b, op, ins, outs):
    z, y = ins
    loss_out, probs = outs
    n, ft = z.shape[-1], loss_out.element_type

    def per_row(row, acc):
        m, s = _row_max_and_sum(b, z, row, n, ft)
        log_s = b.log(s)

        def column(j, row_acc):
            logp = b.subf(b.subf(at(b, z, [*row, j]), m), log_s)  # as in log_softmax
            b.store(b.exp(logp), probs.ref, [*row, j])
            return [b.addf(row_acc, b.mulf(at(b, y, [*row, j]), logp))]

        return [b.addf(acc, b.loop(n, [b.float(0.0, ft)], column)[0])]

    total = b.reduce_nest(z.shape[:-1], [b.float(0.0, ft)], per_row)[0]
    b.store(_batch_mean_negated(b, total, z.shape, ft), loss_out.ref, [])


# ---------------------------------------------------------------------------
# Linear algebra and layout


def matmul(b, op, ins, outs):
    lhs, rhs = ins
    out = outs[0]
    ft = out.element_type
    k = lhs.shape[-1]
    if len(rhs.shape) == 1:
        # (m,k)@(k,) or (k,)@(k,): a dot product per output element.
        def body(idx):
            acc = _dot(b, k, ft, lambda p: at(b, lhs, [*idx, p]), lambda p: at(b, rhs, [p]))
            b.store(acc, out.ref, idx)

        b.nest(out.shape, body)
        return
    # (m,k)@(k,n) of two buffers: register tiles (matmul_tiles.py). Otherwise ((k,)@(k,n), or a
    # constant operand) i-k-j, so the inner loop runs along rows of rhs and out.
    n = rhs.shape[1]
    zero = b.float(0.0, ft)
    if len(lhs.shape) == 2 and isinstance(lhs, Buffer) and isinstance(rhs, Buffer):
        matmul_tiles(b, lhs, rhs, out)
        return
    b.nest(out.shape, lambda idx: b.store(zero, out.ref, idx))

    def row(i_idx):
        def over_k(p):
            a = at(b, lhs, [*i_idx, p])

            def over_j(j):
                o = [*i_idx, j]
                b.store(b.addf(b.load(out.ref, o), b.mulf(a, at(b, rhs, [p, j]))), out.ref, o)

            b.loop(n, body=over_j)

        b.loop(k, body=over_k)

    b.nest(lhs.shape[:-1], row)


def transpose(b, op, ins, outs):
    x, out = ins[0], outs[0]
    perm = op.params()["perm"]

    def body(idx):
        src = [None] * len(perm)
        for k, p in enumerate(perm):
            src[p] = idx[k]
        b.store(at(b, x, src), out.ref, idx)

    b.nest(out.shape, body)


def reshape(b, op, ins, outs):
    x, out = ins[0], outs[0]
    if isinstance(x, Scalar):
        copy_into(b, x, out)
        return
    if 0 in out.shape:  # nothing to write (and the strides below would divide by the zero side)
        return
    in_dims = [d for d in x.shape if d != 1]
    out_dims = [d for d in out.shape if d != 1]
    if in_dims == out_dims:
        # Only size-1 axes change: index k of the non-1 axes maps straight across.
        def direct(idx):
            moving = iter([i for i, d in zip(idx, out.shape) if d != 1])
            src = [b.index(0) if d == 1 else next(moving) for d in x.shape]
            b.store(b.load(x.ref, src), out.ref, idx)

        b.nest(out.shape, direct)
        return

    def general(idx):
        # Row-major linear index of the result, decomposed in the input's shape.
        linear = b.index(0)
        for i, d in zip(idx, out.shape):
            linear = b.add(arith.AddiOp(b.add(arith.MuliOp(linear, b.index(d))), i))
        src = []
        stride = int(np.prod(x.shape, dtype=np.int64))
        for d in x.shape:
            stride //= d
            src.append(b.add(arith.RemSIOp(b.add(arith.DivSIOp(linear, b.index(stride))), b.index(d))))
        b.store(b.load(x.ref, src), out.ref, idx)

    b.nest(out.shape, general)


def broadcast_to(b, op, ins, outs):
    copy_into(b, ins[0], outs[0])


RECIPES: dict[type, Recipe] = {
    R.NegOp: elementwise(by_type(lambda b, x: b.negf(x), lambda b, x: b.subi(b.integer(0, x.type), x))),
    R.ExpOp: elementwise(lambda b, x: b.exp(x)),
    R.LogOp: elementwise(lambda b, x: b.log(x)),
    R.TanhOp: elementwise(lambda b, x: b.tanh(x)),
    R.SigmoidOp: elementwise(_sigmoid),
    R.SqrtOp: elementwise(lambda b, x: b.sqrt(x)),
    R.ReluOp: elementwise(lambda b, x: b.maxf(x, b.float(0.0, x.type))),
    R.AddOp: elementwise(by_type(lambda b, x, y: b.addf(x, y), lambda b, x, y: b.addi(x, y))),
    R.SubOp: elementwise(by_type(lambda b, x, y: b.subf(x, y), lambda b, x, y: b.subi(x, y))),
    R.MulOp: elementwise(by_type(lambda b, x, y: b.mulf(x, y), lambda b, x, y: b.add(arith.MuliOp(x, y)))),
    R.DivOp: elementwise(lambda b, x, y: b.divf(x, y)),
    R.PowOp: elementwise(lambda b, x, y: b.powf(x, y)),
    R.MaximumOp: elementwise(by_type(lambda b, x, y: b.maxf(x, y), lambda b, x, y: b.add(arith.MaxSIOp(x, y)))),
    R.GreaterOp: elementwise(_mask("ogt", "sgt")),
    R.EqualOp: elementwise(_mask("oeq", "eq")),
    R.DenseOp: dense,
    R.SoftmaxOp: softmax,
    R.LogSoftmaxOp: log_softmax,
    R.CrossEntropyOp: cross_entropy,
    R.SoftmaxCrossEntropyOp: softmax_cross_entropy,
    R.SumOp: reduction("sum"),
    R.MeanOp: reduction("mean"),
    R.MaxOp: reduction("max"),
    R.MatmulOp: matmul,
    R.TransposeOp: transpose,
    R.ReshapeOp: reshape,
    R.BroadcastToOp: broadcast_to,
}
