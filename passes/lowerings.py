"""Which recipe `lower-to-loops` uses for an op: the built-in ones, `register_lowering`, plug-ins.

A recipe (see `loop_recipes.py`) is a function `recipe(b, op, ins, outs)`:
`b` is the `LoopBuilder` positioned in the function being lowered, `op` the
tensor-level op, `ins` the storage of its operands (`Buffer`: a memref and
its shape, or `Scalar`: one SSA value for every element of a `raster.fill`),
`outs` the `Buffer`s its results must be written into. It emits loops
(`b.loop`, `b.nest`, `b.reduce_nest`) that compute every element.

Lookup for an op class (the class itself: a subclass of `raster.relu`'s
class is another op and does not silently get relu's loops), first hit wins:
1. recipes given to `register_lowering(OpClass, recipe)` (replaces a
   built-in recipe on purpose);
2. the built-in `loop_recipes.RECIPES`;
3. on a miss, once per process, the installed plug-ins: every entry point of
   the group `raster_mlir.lowerings` names a mapping {op class: recipe}

       [project.entry-points."raster_mlir.lowerings"]
       my_ops = "my_package.lowerings:LOWERINGS"

   whose entries are added where the op class has no recipe yet (a plug-in
   cannot replace a recipe; use `register_lowering` for that).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from xdsl.ir import Operation

from raster_mlir.errors import CompileError

from .loop_recipes import RECIPES, Recipe

ENTRY_POINT_GROUP = "raster_mlir.lowerings"

_REGISTERED: dict[type[Operation], Recipe] = {}
_plugins_loaded = False


def register_lowering(op_class: type[Operation], recipe: Recipe | None = None):
    """Make `recipe` the lowering of `op_class` in lower-to-loops.

    `register_lowering(MyOp, recipe)`, or as a decorator: `@register_lowering(MyOp)`.
    """
    if not (isinstance(op_class, type) and issubclass(op_class, Operation)):
        raise CompileError(f"register_lowering: {op_class!r} is not an xDSL operation class")
    if recipe is None:
        return lambda fn: register_lowering(op_class, fn)
    if not callable(recipe):
        raise CompileError(f"register_lowering({op_class.__name__}, ...): the recipe {recipe!r} is not callable")
    _REGISTERED[op_class] = recipe
    return recipe


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            table = ep.load()
        except Exception as e:  # a broken plug-in: say which one
            raise CompileError(f"lowering plug-in {ep.name} ({ep.value}) failed to load: {e}") from e
        if not isinstance(table, Mapping):
            raise CompileError(f"lowering plug-in {ep.name} ({ep.value}) is not a mapping {{op class: recipe}}")
        for op_class, recipe in table.items():
            if op_class not in _REGISTERED and op_class not in RECIPES:
                _REGISTERED[op_class] = recipe


def _lookup(op_class: type[Operation]) -> Recipe | None:
    return _REGISTERED.get(op_class) or RECIPES.get(op_class)


def lowering_for(op_class: type[Operation]) -> Recipe | None:
    """The recipe lower-to-loops uses for `op_class`, or None (module docstring)."""
    recipe = _lookup(op_class)
    if recipe is None and not _plugins_loaded:
        _load_plugins()
        recipe = _lookup(op_class)
    return recipe


# ---------------------------------------------------------------------------
# For the compile cache: a compile's key must change when a lowering it uses changes.


def resolve_lowerings(module: Operation) -> None:
    """Look up (loading plug-ins if needed) the recipe of every op of a dialect other than raster's."""
    for op in module.walk():
        if op.name.split(".", 1)[0] not in ("builtin", "func", "raster"):
            lowering_for(type(op))


def lowering_fingerprint() -> str | None:
    """The code of every lowering added to the built-in ones; None when some cannot be identified."""
    from raster_mlir.compile_cache import code_identity

    lines = []
    for op_class, recipe in _REGISTERED.items():
        # A recipe built by a helper (elementwise(fn)) is identified by the functions it captured too.
        captured = [c.cell_contents for c in getattr(recipe, "__closure__", None) or () if callable(c.cell_contents)]
        identities = [code_identity(f) for f in (recipe, *captured)]
        if None in identities:
            return None
        lines.append(f"lowering {getattr(op_class, 'name', op_class.__name__)}={' '.join(identities)}")
    return "\n".join(sorted(lines))
