"""Register tiles for (m,k)@(k,n) products of two buffers (used by `loop_recipes.matmul`).

A batch's weight gradient dzᵀx is such a product. Every output element is
computed in registers over the whole k loop and stored once (a final value,
never re-read): each tile keeps ROWS x VECTORS accumulators of 64 bytes,
loads VECTORS vectors of a row of rhs per k and broadcasts one element of
lhs per row, so each loaded vector feeds ROWS multiply-adds and rhs is
streamed once per ROWS rows (i-k-j order re-reads all of rhs for every row).

The output is cut into regions, each covered by the widest tile that fits:

    rows [0, m - m % ROWS)  x  columns [0, wide)        ROWS x VECTORS vectors
                               columns [wide, narrow)    ROWS x 1 vector
                               columns [narrow, n)       ROWS x 1 scalar
    the last m % ROWS rows     the same, one row per tile

(wide = n rounded down to VECTORS vectors, narrow = to one vector). That
every element is written once, by a store of its final value, is what lets
`fuse-epilogues` apply an elementwise consumer (an SGD update) right at the
store, so the product itself is never written to memory.
"""

from __future__ import annotations

from xdsl.dialects import memref, vector
from xdsl.dialects.builtin import UnitAttr, VectorType

VECTOR_BYTES = 64
# On a store: it writes the element's final value, and no other store writes that element.
FINAL_STORE_ATTR = "raster.final_store"
ROWS = 4
VECTORS = 2


def matmul_tiles(b, lhs, rhs, out) -> None:
    """out = lhs @ rhs for 2-D buffers lhs (m, k) and rhs (k, n), in the regions of the module docstring."""
    m, n = out.shape
    lanes = VECTOR_BYTES // (out.element_type.bitwidth // 8)
    tiled_rows = m - m % ROWS
    wide = n - n % (VECTORS * lanes)
    narrow = n - n % lanes
    for rows, (r0, r1) in ((ROWS, (0, tiled_rows)), (1, (tiled_rows, m))):
        for vectors, width, (c0, c1) in ((VECTORS, lanes, (0, wide)), (1, lanes, (wide, narrow)), (1, 1, (narrow, n))):
            if r0 < r1 and c0 < c1:
                _tiles(b, lhs, rhs, out, (r0, r1, rows), (c0, c1, vectors, width))


def _tiles(b, lhs, rhs, out, row_range, col_range) -> None:
    """Tiles of `rows` rows x `vectors` vectors of `width` lanes (1: scalars) over one region."""
    r0, r1, rows = row_range
    c0, c1, vectors, width = col_range
    ft = out.element_type
    k = lhs.shape[1]
    wide = VectorType(ft, [width]) if width > 1 else None

    def load(buffer, indices):
        return b.add(vector.LoadOp(buffer.ref, indices, wide)) if wide else b.load(buffer.ref, indices)

    def splat(value):
        return b.add(vector.BroadcastOp(value, wide)) if wide else value

    def store(value, buffer, indices):
        op = vector.StoreOp(value, buffer.ref, indices) if wide else memref.StoreOp.get(value, buffer.ref, indices)
        op.attributes[FINAL_STORE_ATTR] = UnitAttr()
        b.add(op)

    def tile_row(i0):
        def tile(j0):
            starts = [j0 if c == 0 else b.addi(j0, b.index(c * width)) for c in range(vectors)]
            row_ids = [i0 if r == 0 else b.addi(i0, b.index(r)) for r in range(rows)]
            zero = splat(b.float(0.0, ft))

            def over_k(p, *acc):
                xs = [load(rhs, [p, j]) for j in starts]
                sums = []
                for r in range(rows):
                    a = splat(b.load(lhs.ref, [row_ids[r], p]))
                    sums += [b.addf(acc[r * vectors + c], b.mulf(a, xs[c])) for c in range(vectors)]
                return sums

            acc = b.loop(k, [zero] * (rows * vectors), over_k)
            for r in range(rows):
                for c in range(vectors):
                    store(acc[r * vectors + c], out, [row_ids[r], starts[c]])

        b.range_loop(b.index(c0), b.index(c1), b.index(vectors * width), body=tile)

    b.range_loop(b.index(r0), b.index(r1), b.index(rows), body=tile_row)
