"""Per-op-class answers to the trait questions that canonicalize, cse and dce ask of every op.

xDSL's drivers ask each op, on every sweep, `has_trait(IsTerminator)`, `has_trait(HasFolder)`,
`get_effects(op)`, `get_traits_of_type(HasCanonicalizationPatternsTrait)` ...: each is a scan of
the class's traits with an `isinstance` per trait (canonicalize of the 100-step ODE gradient made
11,465 `get_trait` calls, a third of its time). Traits belong to the op's class, so the answers do
too, except memory effects, which a trait may compute from the op itself. `facts(cls)` computes
the class-level answers once per class (`per_class.PerClass`); `no_effects` is true only when every memory-effect trait of
the class is `NoMemoryEffect`'s own (effects: none, whatever the op), and the helpers below fall
back to xDSL's functions for every other class, so they answer exactly as xDSL does.
"""

from __future__ import annotations

from typing import NamedTuple

from xdsl.ir import Operation
from xdsl.traits import (
    ConstantLike,
    HasFolder,
    IsolatedFromAbove,
    IsTerminator,
    MemoryEffect,
    NoMemoryEffect,
    SymbolOpInterface,
)
from xdsl.transforms.dead_code_elimination import would_be_trivially_dead

from raster_mlir.per_class import PerClass

_NO_EFFECTS = NoMemoryEffect.get_effects.__func__


class OpClassFacts(NamedTuple):  # immutable; a fifth of a frozen dataclass's cost to make at import
    terminator: bool
    no_effects: bool
    """Every op of the class has no memory effect: its memory-effect traits are all `NoMemoryEffect`'s."""
    removable: bool
    """With `no_effects`: an op of the class whose results are unused may be erased (xDSL's
    `would_be_trivially_dead`: not a terminator, not a symbol)."""
    folds: bool
    """Canonicalize tries the class's folder (`HasFolder`, not `ConstantLike`)."""
    isolated: bool


def _compute(cls: type[Operation]) -> OpClassFacts:
    effect_traits = cls.get_traits_of_type(MemoryEffect)
    no_effects = bool(effect_traits) and all(
        getattr(type(t).get_effects, "__func__", None) is _NO_EFFECTS for t in effect_traits
    )
    terminator = cls.has_trait(IsTerminator)
    symbol = cls.has_trait(SymbolOpInterface)
    return OpClassFacts(
        terminator=terminator,
        no_effects=no_effects,
        removable=no_effects and not terminator and not symbol,
        folds=cls.has_trait(HasFolder) and not cls.has_trait(ConstantLike),
        isolated=cls.has_trait(IsolatedFromAbove),
    )


FACTS: PerClass[OpClassFacts] = PerClass(_compute)
facts = FACTS.__getitem__
"""`facts(cls)`: the class's `OpClassFacts`, computed on the first question about the class."""


def removable_if_unused(op: Operation) -> bool:
    """xDSL's `would_be_trivially_dead(op)`: erasing `op` loses nothing but its results."""
    known = FACTS[type(op)]
    if known.no_effects:
        return known.removable
    return would_be_trivially_dead(op)


def is_dead(op: Operation) -> bool:
    """xDSL's `is_trivially_dead(op)`: no result is used and erasing it loses nothing else."""
    for result in op.results:
        if result.first_use is not None:
            return False
    return removable_if_unused(op)
