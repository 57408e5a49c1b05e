"""Signatures of compiled functions and the argument policy, checked before anything runs.

A signature is the tuple of (shape, dtype) of the arguments. Python numbers
are accepted where a 0-d array makes sense; they take the dtype of the array
arguments when those agree (weak typing, as in JAX), float64 otherwise.

Policy: numpy float32/float64 arrays of exactly the traced shape and dtype.
Integer, boolean or object arrays, other shapes and other dtypes are refused
with a RasterError; nothing is cast or copied silently. Arrays a function
updates in place must be writeable and C-contiguous.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from raster_mlir.dialects import raster as R
from raster_mlir.errors import DTypeError, NotContiguousError, ReadOnlyError, ShapeError, argument_label
from raster_mlir.frontend.trace_state import DTYPES, NUMPY_DTYPES


def is_number(a: Any) -> bool:
    """A Python or numpy number that may stand for a 0-d array (bools are not numbers here)."""
    return isinstance(a, (float, int, np.floating, np.integer)) and not isinstance(a, (bool, np.bool_))


@dataclass(frozen=True)
class ArgSpec:
    """What one argument of a compiled function must be."""

    shape: tuple[int, ...]
    dtype: str  # "f32" | "f64"
    scalar: bool = False  # given as a Python number

    @property
    def tensor_type(self):
        return R.tensor(self.shape, self.dtype)


def parameter_names(fn: Callable) -> tuple[str, ...]:
    """Names of `fn`'s positional parameters, for messages (empty when Python cannot tell; a pytree
    variant's are the paths of its leaves, call_variants.py)."""
    leaf_names = getattr(fn, "leaf_names", None)
    if leaf_names is not None:
        return leaf_names
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in positional)


def _padded(names: Sequence[str | None], count: int) -> list[str | None]:
    return [*names[:count], *[None] * (count - len(names))]


def signature_of(fn_name: str, args: Sequence[Any], names: Sequence[str] = ()) -> tuple[ArgSpec, ...]:
    """The ArgSpecs of concrete arguments, or a RasterError naming the bad one (`names`: the parameters')."""
    names = _padded(names, len(args))
    array_dtypes = {DTYPES[a.dtype] for a in args if isinstance(a, np.ndarray) and a.dtype in DTYPES}
    weak = array_dtypes.pop() if len(array_dtypes) == 1 else "f64"
    specs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            if a.dtype not in DTYPES:
                raise DTypeError(
                    f"{fn_name}: {argument_label(i, names[i])} has dtype {a.dtype}; compiled functions take "
                    "float32 or float64 arrays (convert with .astype(np.float64))"
                )
            specs.append(ArgSpec(tuple(a.shape), DTYPES[a.dtype]))
        elif is_number(a):
            specs.append(ArgSpec((), weak, scalar=True))
        else:
            raise DTypeError(
                f"{fn_name}: {argument_label(i, names[i])} is a {type(a).__name__}; compiled functions take "
                "numpy float32/float64 arrays or Python numbers"
            )
    return tuple(specs)


def check_args(
    fn_name: str,
    specs: Sequence[ArgSpec],
    args: Sequence[Any],
    written: set[int] = frozenset(),
    names: Sequence[str | None] = (),
) -> list[np.ndarray]:
    """Arrays for the interpreter path, refusing anything that differs from the signature.

    Inputs in `written` are updated in place, so they must be writeable,
    C-contiguous arrays (not Python numbers); the errors are the backend's
    (ReadOnlyError, NotContiguousError), so every path raises the same class.
    """
    if len(args) != len(specs):
        raise DTypeError(f"{fn_name}: expected {len(specs)} argument(s), got {len(args)}")
    names = _padded(names, len(args))
    arrays = []
    for i, (spec, a) in enumerate(zip(specs, args)):
        if spec.scalar and is_number(a):
            arrays.append(np.asarray(a, dtype=NUMPY_DTYPES[spec.dtype]))
            continue
        if not isinstance(a, np.ndarray):
            wanted = "a number or a 0-d array" if spec.scalar else f"a numpy array of shape {spec.shape}"
            raise DTypeError(f"{fn_name}: {argument_label(i, names[i])} must be {wanted}, got {type(a).__name__}")
        if a.dtype != NUMPY_DTYPES[spec.dtype]:
            raise DTypeError(
                f"{fn_name}: {argument_label(i, names[i])} has dtype {a.dtype}, compiled for {NUMPY_DTYPES[spec.dtype]}"
            )
        if tuple(a.shape) != spec.shape:
            raise ShapeError(f"{fn_name}: {argument_label(i, names[i])} has shape {a.shape}, compiled for {spec.shape}")
        if i in written and not a.flags.c_contiguous:
            raise NotContiguousError(
                f"{fn_name}: {argument_label(i, names[i])} is updated in place, but the array with shape {a.shape} "
                f"and strides {a.strides} is not C-contiguous (use np.ascontiguousarray and keep that array)"
            )
        if i in written and not a.flags.writeable:
            raise ReadOnlyError(f"{fn_name}: {argument_label(i, names[i])} is updated in place, so it must be writeable, but the array is read-only")
        arrays.append(a)
    return arrays
