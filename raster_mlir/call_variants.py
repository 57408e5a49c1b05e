"""Keyword and pytree arguments of `@rm.jit` functions: `f(x, scale=3.0)`, `f({"w": W, "b": b}, x)`.

A compiled signature takes its arguments by position, one array (or number)
each (the native dispatcher checks an array of them). So a call with keywords
or with containers is rewritten into a positional call of a *variant*: an
`@rm.jit` function of its own (its signatures compile and are cached like any
other), made once per set of keyword names or per argument structure.

- Keywords (`keyword_variant`): a function of the positional arguments
  followed by the keyword values, in the order given, which calls the user's
  function with those keywords. Keyword values are run-time arguments exactly
  as positional ones are; parameters not passed keep their Python defaults,
  which the trace sees as constants (`def f(x, axis=None)` works with
  `f(x, scale=2.0)`).
- Containers (`tree_variant`): tuples, lists and dicts of arrays nest (as
  JAX's pytrees, frontend/pytree.py; a container of numbers only is refused
  as before: numpy users mean an array); the variant takes their leaves and
  rebuilds the containers around the traced leaves. `rm.grad` differentiates
  every leaf of the selected arguments and returns gradients of the same
  structure (autodiff_api.py).
"""

from __future__ import annotations

import inspect
from numbers import Number
from collections.abc import Callable, Sequence
from typing import Any

from raster_mlir.errors import DTypeError
from raster_mlir.frontend.pytree import Tree, flatten, leaf_paths, unflatten


def check_binding(name: str, fn: Callable, args: Sequence[Any], kwargs: dict[str, Any]) -> inspect.BoundArguments | None:
    """A DTypeError (a TypeError) naming the function and the keyword it cannot take, if `fn` cannot be
    called with `args` and `kwargs` (a missing, repeated or unknown argument); else the binding, or None
    when Python cannot tell (a builtin: the call itself will say)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        return signature.bind(*args, **kwargs)
    except TypeError as e:
        raise DTypeError(f"{name}: called with {len(args)} positional argument(s) and keyword(s) {', '.join(kwargs)}: {e}") from None


def keyword_variant(fn: Callable, positional_names: Sequence[str], n_positional: int, keywords: tuple[str, ...]) -> Callable:
    """`fn` as a function of `n_positional` positional arguments followed by the values of `keywords`;
    its signature names every parameter (the messages about an argument name it as the user did)."""

    def call(*values):
        return fn(*values[:n_positional], **dict(zip(keywords, values[n_positional:])))

    names = [positional_names[i] if i < len(positional_names) else f"arg{i}" for i in range(n_positional)]
    return _dressed(call, fn, (*names, *keywords))


def as_positional(name: str, fn: Callable, args: tuple, kwargs: dict[str, Any], count: int) -> tuple:
    """`args` and `kwargs` as the `count` positional arguments of one compiled signature (`rm.compile`
    fixed them by position): keywords may name positional parameters, in any order; anything else (a
    keyword-only parameter, a gap filled by a default) is a DTypeError."""
    bound = positional_binding(name, fn, args, kwargs)
    if bound is None or len(bound) != count:
        raise DTypeError(
            f"{name}: this compiled signature takes {count} argument(s) by position, as rm.compile was given them; "
            f"keyword(s) {', '.join(kwargs)} do not name the remaining ones (compile a function with @rm.jit to "
            "pass other keywords)"
        )
    return bound


def positional_binding(name: str, fn: Callable, args: tuple, kwargs: dict[str, Any]) -> tuple | None:
    """`args` and `kwargs` as `fn`'s leading positional parameters (keywords may name them, in any
    order), or None when a keyword-only parameter or a gap filled by a default is left; a DTypeError
    when `fn` cannot be called so."""
    bound = check_binding(name, fn, args, kwargs)  # (one signature and one bind per keyword call)
    return None if bound is None or bound.kwargs else bound.args


def has_containers(args: Sequence[Any]) -> bool:
    """Whether any argument is a tuple, list or dict holding an array (a pytree of arrays). A container of
    Python numbers only (`[1.0, 2.0]`) is not: numpy users mean an array, which it is refused as (convert
    it with np.asarray)."""
    return any(isinstance(a, (tuple, list, dict)) and not all(isinstance(v, Number) for v in flatten(a)[0]) for a in args)


def tree_key(tree: Tree) -> Any:
    """A hashable key for the structure `tree` (its lists become tuples; container types are kept)."""
    if tree is None:
        return None
    if tree[0] is dict:
        _, keys, children = tree
        return (dict, tuple(keys), tuple(tree_key(c) for c in children))
    kind, children = tree
    return (kind, tuple(tree_key(c) for c in children))


def tree_variant(fn: Callable, positional_names: Sequence[str], tree: Tree) -> Callable:
    """`fn` as a function of the leaves of its arguments, whose structure (a tuple of the arguments) is
    `tree`; each leaf is named by its path (`params['W']`) in messages about it."""

    def call(*leaves):
        return fn(*unflatten(tree, list(leaves)))

    names = []
    for i, subtree in enumerate(tree[1]):
        name = positional_names[i] if i < len(positional_names) else f"arg{i}"
        names += [name] if subtree is None else leaf_paths(subtree, name)
    call.leaf_names = tuple(names)  # (runtime/arguments.parameter_names reads these)
    return _dressed(call, fn, [f"leaf{k}" for k in range(len(names))])


def leaves_of(args: Sequence[Any]) -> tuple[list[Any], Tree, list[int]]:
    """The leaves of `args`, their structure, and the index of the argument each leaf belongs to."""
    leaves, tree = flatten(tuple(args))
    owners = [i for i, a in enumerate(args) for _ in flatten(a)[0]]
    return leaves, tree, owners


def _dressed(call: Callable, fn: Callable, parameters: Sequence[str]) -> Callable:
    """`call` with positional-only parameters named `parameters` (what the tracer and the argument checks
    read) and `fn`'s name, qualified name, module and docstring."""
    only = inspect.Parameter.POSITIONAL_ONLY
    call.__signature__ = inspect.Signature([inspect.Parameter(n, only) for n in parameters])
    return named_after(call, fn)


def named_after(call: Callable, fn: Callable) -> Callable:
    """`call` with `fn`'s name, qualified name, module and docstring (where `fn` has them)."""
    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(call, attribute, getattr(fn, attribute, None) or getattr(call, attribute))
    return call
