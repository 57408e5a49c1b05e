"""Flatten nested tuples/lists/dicts of arrays into a list of leaves, and back.

A traced function may return `loss`, `(loss, probs)` or `(loss, (dW, db))`;
the compiled function returns the same nesting. Loop carries are the same
kind of tree (`rm.fori_loop(0, n, body, {"x": x0, "v": v0})`). Tuples,
lists and dicts nest (dict keys in sorted order, as JAX); `None` is a node
without leaves; everything else is a leaf.
"""

from __future__ import annotations

from typing import Any

# A tree is None (a leaf), or (container type, [subtrees]) for tuples and lists, or (dict, keys, [subtrees]).
Tree = Any


def flatten(obj: Any) -> tuple[list[Any], Tree]:
    leaves: list[Any] = []
    tree = _flatten_into(obj, leaves)
    return leaves, tree


def _flatten_into(obj: Any, leaves: list[Any]) -> Tree:
    if isinstance(obj, (tuple, list)):
        return (type(obj), [_flatten_into(o, leaves) for o in obj])
    if isinstance(obj, dict):
        keys = sorted(obj)
        return (dict, keys, [_flatten_into(obj[k], leaves) for k in keys])
    leaves.append(obj)
    return None


def unflatten(tree: Tree, leaves: list[Any]) -> Any:
    it = iter(leaves)
    out = _build(tree, it)
    return out


def _build(tree: Tree, it) -> Any:
    if tree is None:
        return next(it)
    if tree[0] is dict:
        _, keys, children = tree
        return {k: _build(c, it) for k, c in zip(keys, children)}
    kind, children = tree
    return kind(_build(c, it) for c in children)


def packer(tree: Tree, scalar_leaves=frozenset()):
    """`pack(leaves)` -> the nested value `unflatten(tree, leaves)` builds, or None for trees it does not cover.

    For the per-call path of compiled functions: `pack` is one generated
    expression (`lambda v: (v[0].item(), (v[1], v[2]))`), so a call builds its
    result without recursion, generators or iterators (each a Python frame or
    a garbage-collected object per call). Leaves whose index is in
    `scalar_leaves` become Python numbers (`.item()`). Covers tuples, lists and
    dicts with string keys; other containers get None (use `unflatten`).
    """
    counter = iter(range(1 << 62))

    def leaf() -> str:
        i = next(counter)
        return f"v[{i}].item()" if i in scalar_leaves else f"v[{i}]"

    def other(kind, inner: str) -> str:
        raise ValueError(f"container {kind.__name__}")

    try:
        body = _render(tree, leaf, other, string_keys_only=True)
    except ValueError:
        return None
    return eval(f"lambda v: {body}", {})  # noqa: S307 - built from the tree's structure and string keys' reprs


def describe(tree: Tree) -> str:
    """A readable structure: `(*, [*, *])`, `{'v': *, 'x': *}`; * is a leaf."""
    return _render(tree, lambda: "*", lambda kind, inner: f"{kind.__name__}({inner})")


def _render(tree: Tree, leaf, other, string_keys_only: bool = False) -> str:
    """The tree as Python-like text: `leaf()` per leaf, tuples, lists and dicts spelled out, `other(kind,
    inner)` for other containers; a ValueError for a non-string dict key if `string_keys_only`."""
    if tree is None:
        return leaf()
    if tree[0] is dict:
        _, keys, children = tree
        if string_keys_only and not all(type(k) is str for k in keys):
            raise ValueError("dict keys other than strings")
        return "{" + ", ".join(f"{k!r}: {_render(c, leaf, other, string_keys_only)}" for k, c in zip(keys, children)) + "}"
    kind, children = tree
    inner = ", ".join(_render(c, leaf, other, string_keys_only) for c in children)
    if kind is tuple:
        return f"({inner}{',' if len(children) == 1 else ''})"
    if kind is list:
        return f"[{inner}]"
    return other(kind, inner)


def leaf_paths(tree: Tree, prefix: str = "") -> list[str]:
    """The path of each leaf in flattening order: `[0]`, `['x']`, `[1][0]`..."""
    if tree is None:
        return [prefix or "(the value)"]
    if tree[0] is dict:
        _, keys, children = tree
        return [p for k, c in zip(keys, children) for p in leaf_paths(c, f"{prefix}[{k!r}]")]
    _, children = tree
    return [p for k, c in enumerate(children) for p in leaf_paths(c, f"{prefix}[{k}]")]
