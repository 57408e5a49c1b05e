"""Keyword arguments of `@rm.jit` functions: `f(x, scale=3.0)` as JAX and Python allow.

A compiled signature takes its arguments by position (the native dispatcher
checks an array of them), so a call with keywords is rewritten once per set of
keyword names into a positional call of a *keyword variant*: a function of
the positional arguments followed by the keyword values, in the order given,
which calls the user's function with those keywords. The variant is an
`@rm.jit` function of its own (its signatures compile and are cached like any
other), so keyword values are run-time arguments exactly as positional ones
are; parameters not passed keep their Python defaults, which the trace sees
as constants (`def f(x, axis=None)` works with `f(x, scale=2.0)`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from raster_mlir.errors import DTypeError


def check_binding(name: str, fn: Callable, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """A DTypeError (a TypeError) naming the function and the keyword it cannot take, if `fn` cannot be
    called with `args` and `kwargs` (a missing, repeated or unknown argument)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # Python cannot tell (a builtin): the call itself will say
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise DTypeError(f"{name}: called with {len(args)} positional argument(s) and keyword(s) {', '.join(kwargs)}: {e}") from None


def keyword_variant(fn: Callable, positional_names: Sequence[str], n_positional: int, keywords: tuple[str, ...]) -> Callable:
    """`fn` as a function of `n_positional` positional arguments followed by the values of `keywords`;
    its signature names every parameter (the messages about an argument name it as the user did)."""

    def call(*values):
        return fn(*values[:n_positional], **dict(zip(keywords, values[n_positional:])))

    names = [positional_names[i] if i < len(positional_names) else f"arg{i}" for i in range(n_positional)]
    only = inspect.Parameter.POSITIONAL_ONLY
    call.__signature__ = inspect.Signature([inspect.Parameter(n, only) for n in (*names, *keywords)])
    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(call, attribute, getattr(fn, attribute, None) or getattr(call, attribute))
    return call


def as_positional(name: str, fn: Callable, args: tuple, kwargs: dict[str, Any], count: int) -> tuple:
    """`args` and `kwargs` as the `count` positional arguments of one compiled signature (`rm.compile`
    fixed them by position): keywords may name positional parameters, in any order; anything else (a
    keyword-only parameter, a gap filled by a default) is a DTypeError."""
    check_binding(name, fn, args, kwargs)
    bound = inspect.signature(fn).bind(*args, **kwargs)
    if bound.kwargs or len(bound.args) != count:
        raise DTypeError(
            f"{name}: this compiled signature takes {count} argument(s) by position, as rm.compile was given them; "
            f"keyword(s) {', '.join(kwargs)} do not name the remaining ones (compile a function with @rm.jit to "
            "pass other keywords)"
        )
    return bound.args
