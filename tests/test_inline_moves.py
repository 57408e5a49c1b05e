"""`inline` moves the body of a private function into its only call instead of copying it
(passes/inline.py, `move_body`), and into the last of its calls after copying it into the others:
the IR is the same as with a copy every time, including when inlining a copy adds calls to a
function that had one call when the round started."""

from __future__ import annotations

import textwrap

import pytest
from xdsl.parser import Parser

from raster_mlir.compiler import make_context, print_module
from raster_mlir.passes import inline

ONE_CALL_EACH = """
func.func private @g(%x: tensor<3xf64>) -> tensor<3xf64> {
  %e = raster.exp %x : tensor<3xf64>
  func.return %e : tensor<3xf64>
}
func.func private @twice(%x: tensor<3xf64>) -> tensor<3xf64> {
  %n = raster.neg %x : tensor<3xf64>
  func.return %n : tensor<3xf64>
}
func.func @main(%p: tensor<3xf64>) -> tensor<3xf64> {
  %a = func.call @g(%p) : (tensor<3xf64>) -> tensor<3xf64>
  %b = func.call @twice(%a) : (tensor<3xf64>) -> tensor<3xf64>
  %c = func.call @twice(%b) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %c : tensor<3xf64>
}
"""

# @g has one call when the first round starts (in @a), but @main copies @a before that call is
# reached and moves it into its second call: @g must then be copied once, not moved at once (its
# other call would lose its callee), and moved into its last call in the next round.
COPIES_ADD_CALLS = """
func.func @main(%p: tensor<3xf64>) -> tensor<3xf64> {
  %a = func.call @a(%p) : (tensor<3xf64>) -> tensor<3xf64>
  %b = func.call @a(%a) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %b : tensor<3xf64>
}
func.func private @a(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @g(%x) : (tensor<3xf64>) -> tensor<3xf64>
  %r = raster.relu %y : tensor<3xf64>
  func.return %r : tensor<3xf64>
}
func.func private @g(%x: tensor<3xf64>) -> tensor<3xf64> {
  %e = raster.exp %x : tensor<3xf64>
  func.return %e : tensor<3xf64>
}
"""


def inlined(text: str) -> str:
    module = Parser(make_context(), textwrap.dedent(text)).parse_module()
    inline.InlinePass().apply(make_context(), module)
    module.verify()
    return print_module(module)


# @h is called from @main and from @k (called twice): copied into @k (the first call the walk
# reaches), moved into @main; @k is copied once (after its body changed) and moved once.
CALLS_IN_A_CALLEE = """
func.func private @k(%x: tensor<3xf64>) -> tensor<3xf64> {
  %y = func.call @h(%x) : (tensor<3xf64>) -> tensor<3xf64>
  %r = raster.relu %y : tensor<3xf64>
  func.return %r : tensor<3xf64>
}
func.func @main(%p: tensor<3xf64>) -> tensor<3xf64> {
  %a = func.call @k(%p) : (tensor<3xf64>) -> tensor<3xf64>
  %b = func.call @h(%a) : (tensor<3xf64>) -> tensor<3xf64>
  %c = func.call @k(%b) : (tensor<3xf64>) -> tensor<3xf64>
  func.return %c : tensor<3xf64>
}
func.func private @h(%x: tensor<3xf64>) -> tensor<3xf64> {
  %e = raster.exp %x : tensor<3xf64>
  %n = raster.neg %e : tensor<3xf64>
  func.return %n : tensor<3xf64>
}
"""

MOVED = {"one-call-each": ["g", "twice"], "copies-add-calls": ["a", "g"], "calls-in-a-callee": ["h", "k"]}


@pytest.mark.parametrize(
    "text", [ONE_CALL_EACH, COPIES_ADD_CALLS, CALLS_IN_A_CALLEE], ids=["one-call-each", "copies-add-calls", "calls-in-a-callee"]
)
def test_moving_gives_the_ir_of_copying(text, monkeypatch, request):
    moved = []
    real_move = inline.move_body
    monkeypatch.setattr(inline, "move_body", lambda call, callee: moved.append(callee.sym_name.data) or real_move(call, callee))
    ours = inlined(text)
    monkeypatch.setattr(inline, "_moves", lambda call, callee, references: False)
    assert ours == inlined(text)
    assert "func.call" not in ours and "private" not in ours
    assert moved == MOVED[request.node.callspec.id]


def test_a_body_is_counted_once_per_round_while_unchanged(monkeypatch):
    """A helper called n times is copied n - 1 times and moved once; the references its copies
    add are counted on the first copy only (each count walks the helper's body)."""
    calls = "\n".join(f"  %v{i + 1} = func.call @h(%v{i}) : (tensor<3xf64>) -> tensor<3xf64>" for i in range(6))
    text = f"""
func.func private @h(%x: tensor<3xf64>) -> tensor<3xf64> {{
  %e = raster.exp %x : tensor<3xf64>
  func.return %e : tensor<3xf64>
}}
func.func @main(%v0: tensor<3xf64>) -> tensor<3xf64> {{
{calls}
  func.return %v6 : tensor<3xf64>
}}
"""
    copies, counted = [], []
    real_copy, real_count = inline.inline_call, inline.calls_and_references
    monkeypatch.setattr(inline, "inline_call", lambda call, callee: copies.append(1) or real_copy(call, callee))
    monkeypatch.setattr(
        inline, "calls_and_references", lambda root: counted.append(type(root).__name__) or real_count(root)
    )
    ours = inlined(text)
    assert ours.count("raster.exp") == 6 and "func.call" not in ours
    assert len(copies) == 5
    assert counted == ["ModuleOp", "Region", "ModuleOp"]  # round 1, @h's body once, round 2 (nothing left)
