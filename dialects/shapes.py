"""Shape and element-type rules shared by the raster dialect's verifiers and the tracer.

Each rule takes plain Python shapes (tuples of ints) and returns the result
shape, or raises `ShapeError` / `DTypeError` with a message naming the op and
the shapes involved. The tracer calls the same rules before it creates an op,
so a user sees the error at their own source line, and the verifier calls
them again on parsed IR.
"""

from __future__ import annotations

from collections.abc import Sequence

from raster_mlir.errors import DTypeError, ShapeError

Shape = tuple[int, ...]


def fmt(shape: Sequence[int]) -> str:
    """A shape as numpy prints it: (3,), (2, 4), ()."""
    return str(tuple(shape))


def broadcast(op: str, a: Shape, b: Shape) -> Shape:
    """numpy broadcasting: align trailing dimensions; a 1 stretches to the other size.

    The other size may be 0: (1, 3) with (0, 3) is (0, 3), as in numpy (a 1 is
    stretched, never kept, so the result is empty).
    """
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise ShapeError(
                f"{op}: shapes {fmt(a)} and {fmt(b)} do not broadcast "
                f"(dimension -{i} is {da} vs {db})"
            )
    return tuple(reversed(out))


def normalize_axis(op: str, axis: int, rank: int, shape: Shape | None = None) -> int:
    """Python-style negative axes; an error names the valid range (and the shape, when known)."""
    if not -rank <= axis < rank:
        of = f"shape {fmt(shape)}" if shape is not None else f"rank {rank}"
        raise ShapeError(f"{op}: axis {axis} is out of range for an array of {of} (valid: {-rank} to {rank - 1})")
    return axis % rank


def nonempty_axis(op: str, shape: Shape, axis: int | None) -> None:
    """Reductions without an identity (max, mean, softmax) need at least one element."""
    if axis is None:
        empty = _size(shape) == 0
    else:
        empty = shape[normalize_axis(op, axis, len(shape), shape)] == 0
    if empty:
        where = "the array" if axis is None else f"axis {axis}"
        raise ShapeError(f"{op}: {where} of shape {fmt(shape)} is empty; there is nothing to reduce")


def reduce(op: str, shape: Shape, axis: int | None, keepdims: bool) -> Shape:
    """Result shape of a reduction over one axis (or all axes when axis is None)."""
    if axis is None:
        return tuple(1 for _ in shape) if keepdims else ()
    axis = normalize_axis(op, axis, len(shape), shape)
    if keepdims:
        return shape[:axis] + (1,) + shape[axis + 1 :]
    return shape[:axis] + shape[axis + 1 :]


def dense(op: str, w: Shape, x: Shape, b: Shape) -> Shape:
    """y = W x + b with W (out, in); x (in,) or (batch, in); b (out,)."""
    if len(w) != 2:
        raise ShapeError(f"{op}: weight must be 2-D (out, in), got shape {fmt(w)}")
    if len(x) not in (1, 2):
        raise ShapeError(f"{op}: input must be (in,) or (batch, in), got shape {fmt(x)}")
    if x[-1] != w[1]:
        raise ShapeError(
            f"{op}: weight {fmt(w)} takes {w[1]} inputs but input {fmt(x)} has {x[-1]}"
        )
    if b != (w[0],):
        raise ShapeError(f"{op}: bias must have shape ({w[0]},) for weight {fmt(w)}, got {fmt(b)}")
    return (w[0],) if len(x) == 1 else (x[0], w[0])


def matmul(op: str, a: Shape, b: Shape) -> Shape:
    """numpy matmul for 1-D and 2-D operands: (m,k)@(k,n), (m,k)@(k,), (k,)@(k,n), (k,)@(k,)."""
    if len(a) not in (1, 2) or len(b) not in (1, 2):
        raise ShapeError(f"{op}: operands must be 1-D or 2-D, got {fmt(a)} and {fmt(b)}")
    k_a = a[-1]
    k_b = b[0]
    if k_a != k_b:
        raise ShapeError(
            f"{op}: contraction dimensions differ: {fmt(a)} @ {fmt(b)} ({k_a} vs {k_b})"
        )
    return a[:-1] + b[1:]


def transpose(op: str, shape: Shape, perm: Sequence[int]) -> Shape:
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"{op}: perm {tuple(perm)} is not a permutation of the axes of {fmt(shape)}")
    return tuple(shape[p] for p in perm)


def reshape(op: str, shape: Shape, new: Shape) -> Shape:
    if _size(shape) != _size(new):
        raise ShapeError(f"{op}: cannot reshape {fmt(shape)} ({_size(shape)} elements) to {fmt(new)}")
    return tuple(new)


def resolve_minus_one(op: str, shape: Shape, new: Shape) -> Shape:
    """numpy reshape's -1: the one dimension inferred from the element count."""
    if new.count(-1) > 1:
        raise ShapeError(f"{op}: at most one dimension of {fmt(new)} may be -1")
    if -1 not in new:
        return new
    known = _size([d for d in new if d != -1])
    if known == 0 or _size(shape) % known:
        raise ShapeError(f"{op}: cannot reshape {fmt(shape)} ({_size(shape)} elements) to {fmt(new)}")
    return tuple(_size(shape) // known if d == -1 else d for d in new)


def broadcast_to(op: str, shape: Shape, new: Shape) -> Shape:
    if broadcast(op, shape, new) != tuple(new):
        raise ShapeError(f"{op}: cannot broadcast {fmt(shape)} to {fmt(new)}")
    return tuple(new)


def same_shape(op: str, names: Sequence[str], shapes: Sequence[Shape]) -> Shape:
    first = shapes[0]
    for name, s in zip(names[1:], shapes[1:]):
        if s != first:
            raise ShapeError(f"{op}: {names[0]} {fmt(first)} and {name} {fmt(s)} must have the same shape")
    return first


def rank_at_least(op: str, what: str, shape: Shape, rank: int) -> None:
    if len(shape) < rank:
        raise ShapeError(f"{op}: {what} must have at least {rank} dimension(s), got shape {fmt(shape)}")


def rank_in(op: str, what: str, shape: Shape, ranks: Sequence[int]) -> None:
    if len(shape) not in ranks:
        allowed = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"{op}: {what} must be {allowed}, got shape {fmt(shape)}")


def slice_box(op: str, what: str, shape: Shape, start: Sequence[int], step: Sequence[int], box: Shape) -> None:
    """A strided box inside `shape`: along axis d, box[d] elements start[d] + i * step[d], all in bounds.

    Steps are non-zero and may be negative; an axis with no elements only
    needs 0 <= start <= size.
    """
    rank = len(shape)
    if not len(start) == len(step) == len(box) == rank:
        raise ShapeError(
            f"{op}: start {tuple(start)}, step {tuple(step)} and box {fmt(box)} must each have one entry "
            f"per axis of {what} {fmt(shape)}"
        )
    for d, (n, first, stride, count) in enumerate(zip(shape, start, step, box)):
        if stride == 0:
            raise ShapeError(f"{op}: step 0 on axis {d} of {what} {fmt(shape)}; steps must be non-zero")
        if count < 0:
            raise ShapeError(f"{op}: negative size {count} on axis {d}")
        last = first + (count - 1) * stride
        if count == 0 and not 0 <= first <= n:
            raise ShapeError(f"{op}: start {first} on axis {d} is outside {what} {fmt(shape)}")
        if count > 0 and not (0 <= first < n and 0 <= last < n):
            raise ShapeError(
                f"{op}: {count} element(s) from {first} with step {stride} on axis {d} reach index {last}, "
                f"outside {what} {fmt(shape)} (valid: 0 to {n - 1})"
            )


def concatenate(op: str, shapes: Sequence[Shape], axis: int) -> Shape:
    """Shapes joined along `axis`: same rank (>= 1), equal sizes on every other axis."""
    if not shapes:
        raise ShapeError(f"{op}: needs at least one array")
    first = shapes[0]
    if not first:
        raise ShapeError(f"{op}: 0-d arrays cannot be concatenated (stack them instead)")
    axis = normalize_axis(op, axis, len(first), first)
    for k, s in enumerate(shapes[1:], start=1):
        if len(s) != len(first) or any(a != b for d, (a, b) in enumerate(zip(s, first)) if d != axis):
            raise ShapeError(
                f"{op}: array {k} has shape {fmt(s)}, which does not match array 0's {fmt(first)} "
                f"outside axis {axis}"
            )
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1 :]


def same_dtype(op: str, dtypes: Sequence[str]) -> str:
    """All operands share one element type ('f32', 'f64', or 'i64' for traced integers); mixing is refused."""
    for d in dtypes:
        if d not in ("f32", "f64", "i64"):
            raise DTypeError(f"{op}: element type {d} is not supported (use float32 or float64)")
    if len(set(dtypes)) > 1:
        raise DTypeError(
            f"{op}: operands mix element types {', '.join(dtypes)}; "
            "convert them to one dtype first (raster_mlir does not promote silently)"
        )
    return dtypes[0]


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
