"""`@rm.jit` on methods: `instance.method(x)` binds like a Python (and a JAX) function.

`JitFunction.__get__` returns a `BoundJitMethod`; calling it calls the method
with the instance as `self`. What the compiled code sees of `self`:

- its array attributes (numpy arrays, and tuples/lists/dicts of them) are
  run-time arguments, like any other argument: assigning `m.W = new_W` is
  seen by the next call, without recompiling (the same shapes and dtypes);
- its other attributes (numbers, strings, None, booleans, functions and
  `@rm.jit` functions) are constants of the trace, and the compiled variant
  is chosen by their values: `m.scale = 2.0` compiles (once) a variant for 2.0;
- anything else (a nested object, a list of objects) is a DTypeError naming
  the attribute: its arrays would be baked in and go stale.

The method body receives a fresh instance of the same class (made with
`cls.__new__`, without `__init__`) whose attributes are the traced arrays and
the constants: methods may read `self.W`, call other methods and properties,
but assignments to `self` inside the method are not seen by the caller (as
in JAX). A class without `__dict__` (`__slots__`) is refused.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from numbers import Number
from typing import Any

import numpy as np

from raster_mlir.call_variants import named_after
from raster_mlir.errors import DTypeError, with_location
from raster_mlir.frontend.pytree import flatten
from raster_mlir.frontend.source import user_location
from raster_mlir.frontend.tracer import TracedArray

_CONSTANT_TYPES = (type(None), bool, Number, str, bytes, types.FunctionType, types.BuiltinFunctionType)


class BoundJitMethod:
    """`instance.method` for an `@rm.jit` method: calls it with `instance` as its first argument."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, jit_fn, instance):
        self.__func__ = jit_fn
        self.__self__ = instance

    def __call__(self, *args, **kwargs):
        return call_method(self.__func__, self.__self__, args, kwargs)

    @property
    def __signature__(self) -> inspect.Signature:  # (rm.grad(m.loss) names the parameters after self)
        parameters = list(inspect.signature(self.__func__.fn).parameters.values())
        return inspect.Signature(parameters[1:])

    @property
    def __name__(self) -> str:
        return self.__func__.name

    def __repr__(self) -> str:
        return f"<bound compiled method {self.__func__.name} of {self.__self__!r}>"


def call_method(jit_fn, instance, args: tuple, kwargs: dict):
    """`jit_fn(instance, *args, **kwargs)` through the variant for `instance`'s class, array attribute
    names and constants (made once per such key, kept by `jit_fn`)."""
    arrays, constants = _split_attributes(jit_fn.name, instance)
    key = (type(instance), tuple(arrays), tuple((name, type(v), v) for name, v in constants.items()))
    variant = jit_fn.variant(jit_fn._method_variants, key, "methods", _method_variant, jit_fn.fn, type(instance), constants, bool(arrays))
    if not arrays:
        return variant(*args, **kwargs)
    if kwargs or any(isinstance(a, (tuple, list, dict)) for a in args):
        return variant(arrays, *args, **kwargs)
    leaves, tree = flatten((arrays, *args))  # (what variant(arrays, *args) does, with one flatten less)
    return variant.tree_variant(tree)(*leaves)


def _split_attributes(name: str, instance) -> tuple[dict[str, Any], dict[str, Any]]:
    """`instance`'s attributes as (arrays and containers of arrays, constants), or a DTypeError naming
    the first attribute that is neither."""
    state = getattr(instance, "__dict__", None)
    if state is None:
        raise _refused(name, f"self is a {type(instance).__name__} without __dict__ (a class with __slots__)")
    arrays, constants = {}, {}
    for attribute, value in state.items():
        if _holds_arrays(value):
            arrays[attribute] = value
        elif (isinstance(value, _CONSTANT_TYPES) or _is_compiled_function(value)) and _hashable(value):
            constants[attribute] = value
        else:
            raise _refused(name, f"self.{attribute} is a {type(value).__name__}")
    return arrays, constants


def _holds_arrays(value) -> bool:
    if isinstance(value, (np.ndarray, TracedArray)):
        return True
    if isinstance(value, (tuple, list, dict)):
        leaves = flatten(value)[0]
        return bool(leaves) and all(isinstance(v, (np.ndarray, TracedArray, Number)) for v in leaves) and any(
            isinstance(v, (np.ndarray, TracedArray)) for v in leaves
        )
    return False


def _is_compiled_function(value) -> bool:
    """An `@rm.jit` function (jit.py imports this module, so it is recognised by its class's names)."""
    return any(cls.__name__ == "JitFunction" and cls.__module__ == "raster_mlir.jit" for cls in type(value).__mro__)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _refused(name: str, what: str) -> DTypeError:
    error = DTypeError(
        f"{name}: {what}; a compiled method takes self's arrays (numpy arrays, tuples/lists/dicts of them) as "
        "run-time arguments and its numbers, strings, None and functions (@rm.jit ones too) as constants; "
        "pass other values as arguments"
    )
    return with_location(error, user_location())


def _method_variant(method: Callable, cls: type, constants: dict[str, Any], has_arrays: bool) -> Callable:
    """`method` as a function of self's array attributes (a dict; absent when there are none) followed
    by its other arguments; its signature is `method`'s, so keywords bind as the user wrote them."""

    def call(*args, **kwargs):
        self = cls.__new__(cls)
        self.__dict__.update(constants)
        if has_arrays:
            self.__dict__.update(args[0])
            args = args[1:]
        return method(self, *args, **kwargs)

    signature = inspect.signature(method)
    if not has_arrays:
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    call.__signature__ = signature
    return named_after(call, method)
