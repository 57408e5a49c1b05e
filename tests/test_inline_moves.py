"""`inline` moves the body of a private function into its only call instead of copying it
(passes/inline.py, `move_body`): the IR is the same as with a copy every time, including when
inlining a copy adds calls to a function that had one call when the round started."""

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

# @g has one call when the first round starts (in @a), but @main copies @a twice before that
# call is reached: @g must then be copied, not moved (its other calls would lose their callee).
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


@pytest.mark.parametrize("text", [ONE_CALL_EACH, COPIES_ADD_CALLS], ids=["one-call-each", "copies-add-calls"])
def test_moving_gives_the_ir_of_copying(text, monkeypatch):
    moved = []
    real_move = inline.move_body
    monkeypatch.setattr(inline, "move_body", lambda call, callee: moved.append(callee.sym_name.data) or real_move(call, callee))
    ours = inlined(text)
    monkeypatch.setattr(inline, "_moves", lambda call, callee, references: False)
    assert ours == inlined(text)
    assert "func.call" not in ours and "private" not in ours
    assert moved == (["g"] if text is ONE_CALL_EACH else [])
