"""The reverse and tangent rules of the raster dialect and the named rule sets the AD passes use.

The rules live in files beside this one (elementwise, nn, linalg, maths, array),
each filling its own `RuleSet`; `DEFAULT_RULES` is their union plus the ops
marked non-differentiable (comparisons and creation ops, whose results are
constants as far as gradients go). See `raster_rules_core` for the rule
signature.

Choosing rules: `AutodiffPass` and `ForwardADPass` take their rule set by
name (`autodiff{rules=default}`, `forward-ad{rules=default}`), looked up here. A research pass registers its
own set without touching the default one:

    from raster_mlir.dialects.raster_rules import DEFAULT_RULES, register_rule_set
    mine = DEFAULT_RULES.copy("straight-through")
    @mine.register(R.GreaterOp)
    def greater_surrogate(b, op, cts): ...
    register_rule_set(mine)            # then: pipeline "inline,autodiff{rules=straight-through},..."

or ships it in an installed package, found by name whatever was imported
before (from `raster-opt` too):

    [project.entry-points."raster_mlir.rule_sets"]
    straight-through = "my_package.rules:STRAIGHT_THROUGH"   # a RuleSet, or a function returning one

or subclasses `AutodiffPass` and overrides `rule_set()`.

Custom rules of user functions (`rm.custom_rule`) are not ops, so they are
not in a rule set: the traced function carries the attribute `raster.rrule`
naming the traced rule function, and `raster.rrule_inputs` listing the
inputs the rule returns cotangents for (see `custom_rule_of`); an optional
tangent rule is named by `raster.tangent_rule` (`custom_tangent_rule_of`).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, SymbolRefAttr, i64

from raster_mlir.dialects import raster as R
from raster_mlir.errors import GradientError

from .raster_rules_array import ARRAY_RULES
from .raster_rules_core import ReverseBuilder, RuleSet, TangentBuilder, describe_location
from .raster_rules_control import CONTROL_RULES
from .raster_rules_elementwise import ELEMENTWISE_RULES
from .raster_rules_index import INDEX_RULES
from .raster_rules_while import WHILE_RULES
from . import raster_tangents_control  # noqa: F401, E402  (the loops' tangent rules, in CONTROL/WHILE_RULES)
from . import raster_tangents_tape  # noqa: F401, E402  (growable tapes' tangent rules, in WHILE_RULES)
from .raster_rules_linalg import LINALG_RULES
from .raster_rules_maths import MATHS_RULES
from .raster_rules_nn import NN_RULES

DEFAULT_RULES = RuleSet("default").extend(ELEMENTWISE_RULES).extend(NN_RULES).extend(LINALG_RULES)
DEFAULT_RULES.extend(MATHS_RULES).extend(ARRAY_RULES)
DEFAULT_RULES.extend(INDEX_RULES).extend(CONTROL_RULES).extend(WHILE_RULES)  # traced integers; loops, branches
DEFAULT_RULES.mark_nondifferentiable(R.GreaterOp, R.EqualOp, R.FillOp, R.ConstantOp)
DEFAULT_RULES.mark_nondifferentiable(*R.ROUNDING_OPS)  # piecewise constant: zero derivative, as JAX

# Why each raster op without both rules has none, by op name (tests/autodiff/test_dialect_coverage.py
# holds every op of the dialect to this: a reverse and a tangent rule, or a reason here).
_COMPARISON = "a comparison: a 0/1 mask, piecewise constant (marked non-differentiable)"
_INTEGER = "integer arithmetic on traced integers (marked non-differentiable)"
_TAPE = ("a growable tape of a loop's reverse pass: forward mode over that pass (hvp, jacfwd) gives it a tangent "
         "tape (raster_tangents_tape.py); reverse mode over it (grad of grad through a loop with a run-time "
         "trip count) is a GradientError")  # fmt: skip
_LOOP_LEVEL = "loop level (made by lower-tape): no AD pass sees it"
WITHOUT_RULES: dict[str, str] = {
    **dict.fromkeys(["raster.greater", "raster.equal", "raster.less", "raster.less_equal", "raster.greater_equal",
                     "raster.not_equal"], _COMPARISON),
    **dict.fromkeys(["raster.sign", "raster.floor", "raster.ceil", "raster.trunc", "raster.rint"],
                    "piecewise constant: derivative 0 wherever it exists (marked non-differentiable)"),
    "raster.fill": "a constant (marked non-differentiable)",
    "raster.constant": "a constant (marked non-differentiable)",
    "raster.empty": "uninitialised storage, always overwritten (marked non-differentiable)",
    "raster.floordiv": _INTEGER,
    "raster.mod": _INTEGER,
    **dict.fromkeys(["raster.grad", "raster.value_and_grad", "raster.jvp"],
                    "an AD op: the AD passes expand it (innermost first) before differentiating what holds it"),
    **dict.fromkeys(["raster.yield", "raster.condition"], "a region terminator: its loop's or branch's rules handle it"),
    **dict.fromkeys(["raster.tape_new", "raster.tape_push", "raster.tape_get"], _TAPE),
    **dict.fromkeys(["raster.rt_tape_init", "raster.rt_tape_reset", "raster.rt_tape_free", "raster.rt_tape_push",
                     "raster.rt_tape_read"], _LOOP_LEVEL),
}  # fmt: skip

_RULE_SETS: dict[str, RuleSet] = {DEFAULT_RULES.name: DEFAULT_RULES}


def register_rule_set(rules: RuleSet, name: str | None = None) -> RuleSet:
    """Make `rules` selectable as `autodiff{rules=<name>}`; a given `name` also renames the set."""
    if name is not None:
        rules.name = name
    _RULE_SETS[rules.name] = rules
    return rules


def registered_rule_sets() -> dict[str, RuleSet]:
    """Every rule set registered from Python so far, by name (installed plug-ins load when named)."""
    return dict(_RULE_SETS)


RULE_SET_ENTRY_POINTS = "raster_mlir.rule_sets"


def _rule_set_plugin(name: str) -> RuleSet | None:
    """The rule set an installed package declares under `name` in the entry-point group
    `raster_mlir.rule_sets` (value `module:OBJECT`, a RuleSet or a function returning one)."""
    for ep in entry_points(group=RULE_SET_ENTRY_POINTS):
        if ep.name != name:
            continue
        try:
            rules = ep.load()
            if callable(rules) and not isinstance(rules, RuleSet):
                rules = rules()
        except Exception as e:  # a broken plug-in: say which one
            raise GradientError(f"rule set plug-in {name!r} ({ep.value}) failed to load: {e}") from e
        if not isinstance(rules, RuleSet):
            raise GradientError(f"rule set plug-in {name!r} ({ep.value}) is not a RuleSet")
        return register_rule_set(rules, name)
    return None


def rule_set(name: str) -> RuleSet:
    """The rule set called `name`: registered from Python, else an installed plug-in; a GradientError lists the known ones."""
    rules = _RULE_SETS.get(name) or _rule_set_plugin(name)
    if rules is None:
        plugins = {ep.name for ep in entry_points(group=RULE_SET_ENTRY_POINTS)}
        known = ", ".join(sorted(set(_RULE_SETS) | plugins))
        raise GradientError(f"no rule set named {name!r}; registered rule sets: {known}")
    return rules


# ---------------------------------------------------------------------------
# Custom rules of user functions (attributes on the traced func.func)

CUSTOM_RULE_ATTR = "raster.rrule"
CUSTOM_RULE_INPUTS_ATTR = "raster.rrule_inputs"
CUSTOM_TANGENT_RULE_ATTR = "raster.tangent_rule"


def custom_rule_of(function: func.FuncOp) -> tuple[str, tuple[int, ...]] | None:
    """(rule function symbol, input positions it returns cotangents for), or None."""
    rule = function.attributes.get(CUSTOM_RULE_ATTR)
    if not isinstance(rule, SymbolRefAttr):
        return None
    inputs = function.attributes.get(CUSTOM_RULE_INPUTS_ATTR)
    positions = tuple(inputs.get_values()) if isinstance(inputs, DenseArrayBase) else ()
    return rule.root_reference.data, positions


def attach_custom_rule(function: func.FuncOp, rule_symbol: str, inputs: tuple[int, ...]) -> None:
    function.attributes[CUSTOM_RULE_ATTR] = SymbolRefAttr(rule_symbol)
    function.attributes[CUSTOM_RULE_INPUTS_ATTR] = DenseArrayBase.from_list(i64, list(inputs))


def custom_tangent_rule_of(function: func.FuncOp) -> str | None:
    """The symbol of the function's custom tangent rule (inputs, outputs, input tangents) -> output tangents."""
    rule = function.attributes.get(CUSTOM_TANGENT_RULE_ATTR)
    return rule.root_reference.data if isinstance(rule, SymbolRefAttr) else None


def attach_custom_tangent_rule(function: func.FuncOp, rule_symbol: str) -> None:
    function.attributes[CUSTOM_TANGENT_RULE_ATTR] = SymbolRefAttr(rule_symbol)


__all__ = [
    "DEFAULT_RULES", "WITHOUT_RULES", "RuleSet", "ReverseBuilder", "TangentBuilder", "register_rule_set", "rule_set",
    "describe_location", "CUSTOM_RULE_ATTR", "CUSTOM_RULE_INPUTS_ATTR", "CUSTOM_TANGENT_RULE_ATTR",
    "custom_rule_of", "attach_custom_rule", "custom_tangent_rule_of", "attach_custom_tangent_rule",
]  # fmt: skip
