"""`cse`: xDSL's common-subexpression elimination, with a cheaper key for the ops it compares.

The same driver as `xdsl.transforms.common_subexpression_elimination` (ops visited in the same
order, the same scopes per region, read-only ops CSE'd when no write lies between, dead ops
erased), with two costs removed:

- xDSL keys its table of known ops with an `OperationInfo` whose hash sums the hashes of the op's
  attributes, properties, result types and operands, recomputed on each of the 2-3 lookups per op
  (the 100-step ODE gradient: 4,995 such hashes, half of cse's time). Here an op without regions
  is keyed by a tuple (name, attributes, properties, result types, operands), built once per
  lookup, with the same equality (dicts compared as sets of items); ops with regions keep
  `OperationInfo` (their regions are compared structurally).
- The trait questions (terminator? isolated from above? memory effects?) are answered once per op
  class (`op_facts.py`).

Before:
    %a = raster.mul %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
    %b = raster.mul %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
    %c = raster.add %a, %b : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
After:
    %a = raster.mul %x, %y : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
    %c = raster.add %a, %a : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, UnregisteredOp
from xdsl.ir import Block, Operation, Region
from xdsl.passes import ModulePass
from xdsl.transforms.common_subexpression_elimination import CSEDriver, KnownOps, OperationInfo

from raster_mlir.per_class import subclass_test

from .op_facts import facts, is_dead
from .pass_dataclass import pass_dataclass


_UNREGISTERED = subclass_test(UnregisteredOp)  # (isinstance against an ABC, once per op class)


def op_key(op: Operation) -> object:
    """What two ops must share to be the same computation (xDSL's `OperationInfo` equality)."""
    if op.regions or _UNREGISTERED[type(op)]:
        return OperationInfo(op)
    attributes, properties = op.attributes, op.properties
    return (
        op.name,
        frozenset(attributes.items()) if attributes else None,
        frozenset(properties.items()) if properties else None,
        tuple(r.type for r in op.results),
        tuple(map(id, op._operands)),  # values are equal when they are the same object (as SSAValue's hash says)
    )


class KeyedKnownOps(KnownOps):
    """xDSL's `KnownOps` (a dict from an op's key to the first op with that key) keyed by `op_key`."""

    def __getitem__(self, k: Operation):
        return self._known_ops[op_key(k)]

    def __setitem__(self, k: Operation, v: Operation):
        self._known_ops[op_key(k)] = v

    def __contains__(self, k: Operation):
        return op_key(k) in self._known_ops

    def get(self, k: Operation, default=None):
        return self._known_ops.get(op_key(k), default)

    def pop(self, k: Operation):
        return self._known_ops.pop(op_key(k))


@dataclass(eq=False, repr=False)
class KeyedCSEDriver(CSEDriver):
    """xDSL's `CSEDriver` with `KeyedKnownOps` and the trait questions asked per op class."""

    _known_ops: KnownOps = field(default_factory=KeyedKnownOps)

    def _simplify_operation(self, op: Operation):
        known = facts(type(op))
        if known.terminator:
            return
        if not known.no_effects:  # effects read from the op itself: xDSL's own path
            super()._simplify_operation(op)
            return
        if is_dead(op):
            self._mark_erasure(op)
            return
        for region in op.regions:
            if len(region.blocks) > 1:
                return
        key = op_key(op)
        table = self._known_ops._known_ops
        existing = table.get(key)
        if existing:
            self._replace_and_delete(op, existing)
            return
        table[key] = op

    def _simplify_block(self, block: Block):
        for op in block.ops:
            if op.regions:
                if facts(type(op)).isolated:  # a blank scope inside, as xDSL does
                    outer = self._known_ops
                    self._known_ops = KeyedKnownOps()
                    for region in op.regions:
                        self._simplify_region(region)
                    self._known_ops = outer
                else:
                    for region in op.regions:
                        self._simplify_region(region)
            self._simplify_operation(op)

    def _simplify_region(self, region: Region):
        if len(region.blocks) == 1:
            outer = self._known_ops
            self._known_ops = KeyedKnownOps(outer)
            self._simplify_block(region.block)
            self._known_ops = outer


@pass_dataclass
class CommonSubexpressionEliminationPass(ModulePass):
    """xDSL's `cse` with a cheaper key and per-class trait answers (module docstring)."""

    name = "cse"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        KeyedCSEDriver().simplify(op)
