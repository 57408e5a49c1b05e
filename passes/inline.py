"""`inline`: replace every `func.call` by a copy of the callee's body.

Algorithm: repeat until no call is left — take a `func.call` whose callee
is defined in the module, clone the callee's single block with its
arguments mapped to the call operands, move the cloned ops before the call,
and replace the call's results by the cloned `func.return` operands. A call
chain longer than the number of functions means recursion, which is an
error. Finally, private functions that nothing references any more (no
call, no `raster.grad` / `raster.value_and_grad`, no custom-rule attribute)
are erased, repeatedly, since erasing one may free another.

A private function whose only reference is the call being inlined (the gradient function that
autodiff builds for `rm.grad`, a helper called once, the last of a helper's calls) has its body
moved into the caller rather than copied, and is erased at once: the same IR, without copying
every op (inline#2 of the 100-step ODE gradient: about 1,900 ops, 46 -> 15 ms). Reference counts
come from the walk that finds the calls; each copy adds the references of the callee's body
(counted once per callee and round, while its body is unchanged) and removes its call's.

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

from collections import Counter

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, SymbolRefAttr
from xdsl.ir import Block, Operation, Region
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from raster_mlir.dialects.raster import AD_OPS
from raster_mlir.dialects.raster_rules import custom_rule_of
from raster_mlir.errors import CompileError
from raster_mlir.ir_walk import block_ops, region_ops, walk_ops
from raster_mlir.per_class import subclass_test
from raster_mlir.passes.pass_dataclass import pass_dataclass


def functions_of(module: ModuleOp) -> dict[str, func.FuncOp]:
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def calls_and_references(root: Operation | Region) -> tuple[list[func.CallOp], Counter[str]]:
    """In one walk: the `func.call`s nested in `root`, and how many times each function name is
    referenced from an op's properties or attributes (calls, grads...)."""
    calls: list[func.CallOp] = []
    names: Counter[str] = Counter()
    for op in walk_ops(root) if isinstance(root, Operation) else region_ops(root):
        if IS_CALL[type(op)]:
            calls.append(op)
        for attrs in (op.properties, op.attributes):
            if attrs:
                for attr in attrs.values():
                    if _IS_SYMBOL[type(attr)]:
                        names[attr.root_reference.data] += 1
    return calls, names


# isinstance(x, SymbolRefAttr / func.CallOp) per class (not an isinstance against an ABC per attribute / op)
_IS_SYMBOL, IS_CALL = subclass_test(SymbolRefAttr), subclass_test(func.CallOp)


def _only_block(callee: func.FuncOp) -> Block:
    if callee.body.blocks.first is None or len(callee.body.blocks) != 1:
        raise CompileError(f"inline: @{callee.sym_name.data} must have exactly one block")
    return callee.body.blocks.first


def inline_call(call: func.CallOp, callee: func.FuncOp) -> None:
    """Replace one call by a copy of the callee's body."""
    block = _only_block(callee)
    value_map = dict(zip(block.args, call.arguments))
    returned = None
    # A list made before the first insertion: when the call is in the callee itself (recursion),
    # the copies go into the block being copied and would be copied again, for ever.
    for op in block_ops(block):
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


def move_body(call: func.CallOp, callee: func.FuncOp) -> None:
    """Replace the only reference to a private callee by its body, moved rather than copied, and
    erase the callee (it would be erased as unused right after). The same IR as `inline_call`:
    the moved ops are the ones a copy would reproduce (operands, results and their name hints,
    properties, attributes, location)."""
    block = _only_block(callee)
    terminator = block.last_op
    if not isinstance(terminator, func.ReturnOp):
        raise CompileError(f"inline: @{callee.sym_name.data} has no func.return")
    for arg, operand in zip(block.args, call.arguments):
        for use in tuple(arg.uses):  # not replace_all_uses_with: it would pass the name of `arg` on
            use.operation.operands[use.index] = operand
    call_block = call.parent_block()
    assert call_block is not None
    while (op := block.first_op) is not terminator:
        block.detach_op(op)
        call_block.insert_op_before(op, call)
    for result, new in zip(call.results, terminator.arguments):
        result.replace_all_uses_with(new)
    Rewriter.erase_op(call)
    Rewriter.erase_op(callee)


def _moves(call: func.CallOp, callee: func.FuncOp, references: Counter[str]) -> bool:
    """The call is the callee's only reference (`references`: counts kept up to date by the
    caller), the callee is private and does not contain the call."""
    if references[callee.sym_name.data] != 1 or not _is_private(callee):
        return False
    return not callee.is_ancestor(call)


@pass_dataclass
class InlinePass(ModulePass):
    """Inline every call to a function defined in the module; drop unused private callees."""

    name = "inline"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        functions = functions_of(op)
        kept = _kept_for_autodiff(op, functions)
        # Declarations (no body) stay calls; so do custom-rule functions while autodiff needs them.
        inlinable = {name: f for name, f in functions.items() if name not in kept and not f.is_declaration}
        for _ in range(len(functions) + 1):
            calls, references = calls_and_references(op)
            local = [c for c in calls if c.callee.root_reference.data in inlinable]
            if not local:
                break
            # A function's body's references (what a copy of it adds), counted on its first copy in
            # the round and forgotten when a call inlined into it changes its body.
            body_references: dict[str, Counter[str]] = {}
            for call in local:
                name = call.callee.root_reference.data
                callee = inlinable[name]
                body_references.pop(_enclosing_function_name(call), None)
                if _moves(call, callee, references):  # its only use: no copy needed
                    move_body(call, callee)
                    continue
                inline_call(call, callee)
                copied = body_references.get(name)
                if copied is None:
                    copied = body_references[name] = calls_and_references(callee.body)[1]
                references.update(copied)
                references[name] -= 1  # the call is gone: its last call moves the body
        else:
            still_called = sorted({c.callee.root_reference.data for c in local})
            names = ", ".join(f"@{name}" for name in still_called)
            raise CompileError(f"inline: calls are recursive, they cannot all be inlined: {names}")
        # The last walk found no call to inline: its counts hold. Erasing a function removes the
        # references made from it (its attributes and body), which may free another function.
        while True:
            dead = [f for name, f in functions_of(op).items() if _is_private(f) and references[name] <= 0]
            if not dead:
                break
            for function in dead:
                references.subtract(calls_and_references(function)[1])
                Rewriter.erase_op(function)


def _enclosing_function_name(op: Operation) -> str | None:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, func.FuncOp):
        parent = parent.parent_op()
    return None if parent is None else parent.sym_name.data


def _kept_for_autodiff(module: ModuleOp, functions: dict[str, func.FuncOp]) -> set[str]:
    """Functions with a custom rule, while an AD op (grad, value_and_grad, jvp) still needs their rule."""
    ruled = {name for name, f in functions.items() if custom_rule_of(f) is not None}
    if not ruled or not any(isinstance(o, AD_OPS) for o in walk_ops(module)):
        return set()
    return ruled


def _is_private(function: func.FuncOp) -> bool:
    return function.sym_visibility is not None and function.sym_visibility.data == "private"
