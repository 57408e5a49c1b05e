"""The exceptions raster_mlir raises for bad use.

Every error derives from `RasterError`, so `except rm.RasterError` catches all
of them. Shape errors are also `ValueError`s and dtype errors also
`TypeError`s, so code written against numpy's conventions keeps working.

This module imports nothing from the rest of the package: the dialect, the
passes and the frontend all raise these.
"""

from __future__ import annotations


class RasterError(Exception):
    """Base class of every error raster_mlir raises for bad use."""


class ShapeError(RasterError, ValueError):
    """Operand shapes that an op cannot accept (also a `ValueError`)."""


class DTypeError(RasterError, TypeError):
    """Element types or Python objects an op cannot accept (also a `TypeError`)."""


class TraceError(RasterError):
    """A Python construct that cannot be traced (data-dependent `if`, foreign objects...)."""


class GradientError(RasterError):
    """A differentiation request that cannot be honoured (no rule, non-scalar output...)."""


class CompileError(RasterError):
    """A pass pipeline or backend failure on IR the user controls (unknown pass, bad option...)."""


# Arrays refused at call time: raised alike by `@rm.jit` functions, train steps and the backend.


class NotContiguousError(ShapeError):
    """An argument array is not C-contiguous (arrays are never copied implicitly)."""


class ReadOnlyError(RasterError, ValueError):
    """A buffer the function writes (an output, a train step's parameter) was passed as a read-only array."""


class AliasingError(RasterError, ValueError):
    """A buffer the function writes overlaps another argument in memory."""


class AlignmentError(RasterError, ValueError):
    """An argument's data pointer is less aligned than its spec promises."""


def argument_label(index: int, name: str | None = None) -> str:
    """How messages name an argument: "argument 4 ('x')", or "argument 4" when it has no name; a leaf of
    a pytree argument by its path: "params['W1']" (its index counts leaves, not arguments)."""
    if name and not name.isidentifier():
        return name
    return f"argument {index} ({name!r})" if name else f"argument {index}"


def with_location(error: RasterError, where) -> RasterError:
    """`error` with the user's source location (any object with a str) appended to its message.

    The type is kept, so a `ShapeError` stays a `ValueError` for the caller.
    Idempotent: an error that already names a location (its `where`) is
    returned as it is, so a location found deep inside is never overwritten
    by an outer caller's.
    """
    if not where or getattr(error, "where", None):
        return error
    located = type(error)(f"{error}\n  at {where}")
    located.where = str(where)
    return located


class IndexOutOfBoundsError(ShapeError, IndexError):
    """A static index outside an array's shape (also an `IndexError`, as numpy raises)."""


class UnsupportedAttributeError(TraceError, AttributeError):
    """A numpy array attribute or method that traced arrays do not have (`x.argmax()`, `x.item()`); also
    an `AttributeError`, so `hasattr` and `getattr(x, name, default)` keep working."""
