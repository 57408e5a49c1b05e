"""Flatten nested tuples/lists of outputs into a list of leaves, and back.

A traced function may return `loss`, `(loss, probs)` or `(loss, (dW, db))`;
the compiled function returns the same nesting. Only tuples and lists nest;
everything else is a leaf.
"""

from __future__ import annotations

from typing import Any

# A tree is either None (a leaf) or (container type, [subtrees]).
Tree = Any


def flatten(obj: Any) -> tuple[list[Any], Tree]:
    leaves: list[Any] = []
    tree = _flatten_into(obj, leaves)
    return leaves, tree


def _flatten_into(obj: Any, leaves: list[Any]) -> Tree:
    if isinstance(obj, (tuple, list)):
        return (type(obj), [_flatten_into(o, leaves) for o in obj])
    leaves.append(obj)
    return None


def unflatten(tree: Tree, leaves: list[Any]) -> Any:
    it = iter(leaves)
    out = _build(tree, it)
    return out


def _build(tree: Tree, it) -> Any:
    if tree is None:
        return next(it)
    kind, children = tree
    return kind(_build(c, it) for c in children)
