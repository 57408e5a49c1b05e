"""The estimate of LLVM's work that orders and packs the parts of a compile (module_split.llvm_cost):
instructions + LOOP_COST per loop, counted on the printed IR alone."""

from __future__ import annotations

from llvmlite import ir

from raster_mlir.backend.llvm_print import function_text
from raster_mlir.backend.module_split import LOOP_COST, llvm_cost, parse_function, split_module
from raster_mlir.backend.part_handoff import SegmentHandOff

I64 = ir.IntType(64)


def counted_loop(b: ir.IRBuilder, fn: ir.Function, n: int, name: str, body=None) -> None:
    """for (i = 0; i < n; i++) body(b): header, body, latch branch back to the header, exit."""
    pre = b.block
    header, loop_body, exit_ = (fn.append_basic_block(f"{name}.{part}") for part in ("header", "body", "exit"))
    b.branch(header)
    b.position_at_end(header)
    i = b.phi(I64, name=f"{name}.i")
    i.add_incoming(ir.Constant(I64, 0), pre)
    b.cbranch(b.icmp_signed("<", i, ir.Constant(I64, n)), loop_body, exit_)
    b.position_at_end(loop_body)
    if body is not None:
        body(b)
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, b.block)
    b.branch(header)
    b.position_at_end(exit_)


def function_with(llmod: ir.Module, name: str, loops: int, straight: int, branches: bool = False) -> ir.Function:
    """A function with `loops` nested loops (a forward if/else first when `branches`) and `straight` adds."""
    fn = ir.Function(llmod, ir.FunctionType(I64, [I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    x = fn.args[0]
    if branches:  # forward branches only: no loop
        then, other, end = (fn.append_basic_block(n) for n in ("then", "other", "end"))
        b.cbranch(b.icmp_signed("<", x, ir.Constant(I64, 0)), then, other)
        for block in (then, other):
            b.position_at_end(block)
            b.branch(end)
        b.position_at_end(end)
    for _ in range(straight):
        x = b.add(x, ir.Constant(I64, 1))

    def nest(depth):
        return None if depth == loops else (lambda b: counted_loop(b, fn, 4, f"l{depth}", nest(depth + 1)))

    if loops:
        counted_loop(b, fn, 4, "l0", nest(1))
    b.ret(x)
    return fn


def test_instructions_and_loops_are_counted():
    llmod = ir.Module()
    flat = function_with(llmod, "flat", loops=0, straight=10, branches=True)
    nested = function_with(llmod, "nested", loops=2, straight=0)
    # flat: compare, branch, 2 branches, 10 adds, ret; forward branches are no loops
    assert llvm_cost(function_text(flat)) == 15
    # nested: a branch into each loop; per loop: phi, compare, branch (header), add, latch branch; ret
    assert llvm_cost(function_text(nested)) == 2 + 2 * 5 + 1 + 2 * LOOP_COST


def test_a_short_text_with_loops_outweighs_a_longer_one_without():
    """What the text's size got wrong: a long straight function is cheap for LLVM, a loop nest is not."""
    llmod = ir.Module()
    straight = function_with(llmod, "straight_line_function_with_a_long_name", loops=0, straight=60)
    loops = function_with(llmod, "l", loops=3, straight=0)
    a, b = (parse_function(function_text(f)) for f in (straight, loops))
    assert len(a.text) > len(b.text) and a.weight < b.weight


class _Parts:
    def __init__(self):
        self.parts = []

    def submit(self, part):
        self.parts.append(part)


def module_with_segments() -> ir.Module:
    llmod = ir.Module()
    segments = [function_with(llmod, f"k.segment{k}", loops=k % 3, straight=5 * k) for k in range(5)]
    kernel = ir.Function(llmod, ir.FunctionType(I64, [I64]), name="k")
    b = ir.IRBuilder(kernel.append_basic_block("entry"))
    x = kernel.args[0]
    for fn in segments:
        x = b.call(fn, [x])
    b.ret(x)
    return llmod


def test_part_weights_are_the_estimate_of_what_they_define_and_a_function_of_the_text():
    llmod = module_with_segments()
    text = str(llmod)
    first, second = split_module(text), split_module(text)
    assert [(p.text, p.weight) for p in first] == [(p.text, p.weight) for p in second]
    # each handed-off part weighs what its functions cost
    queue = _Parts()
    handoff = SegmentHandOff(queue)
    segments = [g for g in llmod.globals.values() if g.name.startswith("k.segment")]
    for fn in segments:
        assert handoff.hand_off(llmod, [fn])
    assert [p.weight for p in queue.parts] == [llvm_cost(function_text(fn)) for fn in segments]
