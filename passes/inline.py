"""`inline`: replace every `func.call` by a copy of the callee's body.

Algorithm: repeat until no call is left — take a `func.call` whose callee
is defined in the module, clone the callee's single block with its
arguments mapped to the call operands, move the cloned ops before the call,
and replace the call's results by the cloned `func.return` operands. A call
chain longer than the number of functions means recursion, which is an
error. Finally, private functions that nothing references any more (no
call, no `raster.grad` / `raster.value_and_grad`, no custom-rule attribute)
are erased, repeatedly, since erasing one may free another.

Calls to a function with a custom reverse rule (`rm.custom_rule`: the callee
carries a `raster.rrule` attribute) are kept while the module still holds an
AD op, so that the AD passes can use the rules; once they have run,
they are inlined like any other call.

Before:
    func.func private @square(%x: tensor<3xf64>) -> tensor<3xf64> {
      %y = raster.mul %x, %x : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
      func.return %y : tensor<3xf64>
    }
    func.func @f(%a: tensor<3xf64>) -> tensor<3xf64> {
      %r = func.call @square(%a) : (tensor<3xf64>) -> tensor<3xf64>
      func.return %r : tensor<3xf64>
    }
After:
    func.func @f(%a: tensor<3xf64>) -> tensor<3xf64> {
      %r = raster.mul %a, %a : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
      func.return %r : tensor<3xf64>
    }
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, SymbolRefAttr
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from raster_mlir.dialects.raster import AD_OPS
from raster_mlir.dialects.raster_rules import custom_rule_of
from raster_mlir.errors import CompileError


def functions_of(module: ModuleOp) -> dict[str, func.FuncOp]:
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def referenced_symbols(module: ModuleOp) -> set[str]:
    """Every function name referenced from an op's properties or attributes (calls, grads...)."""
    names: set[str] = set()
    for op in module.walk():
        for attr in [*op.properties.values(), *op.attributes.values()]:
            if isinstance(attr, SymbolRefAttr):
                names.add(attr.root_reference.data)
    return names


def inline_call(call: func.CallOp, callee: func.FuncOp) -> None:
    """Replace one call by a copy of the callee's body."""
    if callee.body.blocks.first is None or len(callee.body.blocks) != 1:
        raise CompileError(f"inline: @{callee.sym_name.data} must have exactly one block")
    block = callee.body.blocks.first
    value_map = dict(zip(block.args, call.arguments))
    returned = None
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            returned = [value_map.get(v, v) for v in op.arguments]
            break
        clone = op.clone(value_mapper=value_map)
        Rewriter.insert_op(clone, InsertPoint.before(call))
    if returned is None:
        raise CompileError(f"inline: @{callee.sym_name.data} has no func.return")
    for result, new in zip(call.results, returned):
        result.replace_all_uses_with(new)
    Rewriter.erase_op(call)


@dataclass(frozen=True)
class InlinePass(ModulePass):
    """Inline every call to a function defined in the module; drop unused private callees."""

    name = "inline"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        functions = functions_of(op)
        kept = _kept_for_autodiff(op, functions)
        # Declarations (no body) stay calls; so do custom-rule functions while autodiff needs them.
        inlinable = {name: f for name, f in functions.items() if name not in kept and not f.is_declaration}
        for _ in range(len(functions) + 1):
            calls = [c for c in op.walk() if isinstance(c, func.CallOp)]
            local = [c for c in calls if c.callee.root_reference.data in inlinable]
            if not local:
                break
            for call in local:
                inline_call(call, inlinable[call.callee.root_reference.data])
        else:
            raise CompileError("inline: calls are recursive, they cannot all be inlined")
        while True:
            used = referenced_symbols(op)
            dead = [f for name, f in functions_of(op).items() if _is_private(f) and name not in used]
            if not dead:
                break
            for function in dead:
                Rewriter.erase_op(function)


def _kept_for_autodiff(module: ModuleOp, functions: dict[str, func.FuncOp]) -> set[str]:
    """Functions with a custom rule, while an AD op (grad, value_and_grad, jvp) still needs their rule."""
    if not any(isinstance(o, AD_OPS) for o in module.walk()):
        return set()
    return {name for name, f in functions.items() if custom_rule_of(f) is not None}


def _is_private(function: func.FuncOp) -> bool:
    return function.sym_visibility is not None and function.sym_visibility.data == "private"
