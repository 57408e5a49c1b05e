"""`ir_clone.clone_op` copies IR exactly as xDSL's `Operation.clone()` does (raster_mlir/ir_clone.py).

- after every pass of the default pipeline (and convert-scf-to-cf: several blocks, branches with
  arguments) on a train step, a time loop's gradient and an rm.cond program, the copy prints
  the same as xDSL's (generic form, with locations: name hints, block arguments, attributes),
  every value of the copy has the same use list as in xDSL's copy (users, operand indices, order), and the original is unchanged;
- a block that uses a value of a later block (which dominates it) gets the copied value;
- the value and block mappers receive the copies, and values from outside the copied op stay.
"""

from __future__ import annotations

import textwrap

import numpy as np
from helpers import damped_spring, mlp_loss, mlp_params
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

import raster_mlir as rm
from raster_mlir.compiler import DEFAULT_PIPELINE, StagedPipeline, make_context, print_module
from raster_mlir.ir_clone import clone_op


def _text(op) -> str:
    return print_module(op, locations=True, generic=True)


def _use_lists(op) -> list[list[tuple[int, int]]]:
    """Every value's use list, in its order, as (position of the user in the walk, operand index)."""
    ops = list(op.walk())
    position = {id(inner): k for k, inner in enumerate(ops)}

    def uses(value) -> list[tuple[int, int]]:
        return [(position.get(id(use.operation), -1), use.index) for use in value.uses]

    lists = []
    for inner in ops:
        lists += [uses(result) for result in inner.results]
        for region in inner.regions:
            for block in region.blocks:
                lists += [uses(arg) for arg in block.args]
    return lists


def _assert_same_copy(module: ModuleOp) -> None:
    before = _text(module)
    ours, theirs = clone_op(module), module.clone()
    assert _text(ours) == _text(theirs)  # (neither copies the names of parsed blocks: ^bb1, not ^second)
    assert _use_lists(ours) == _use_lists(theirs)
    # (the original's use lists hold the same uses, in the order its passes made them)
    assert _text(module) == before and [sorted(u) for u in _use_lists(module)] == [sorted(u) for u in _use_lists(theirs)]


def _every_stage(compiled, extra: str = "") -> None:
    module = clone_op(compiled.traced)
    _assert_same_copy(module)
    for p in StagedPipeline(DEFAULT_PIPELINE + extra).passes:
        StagedPipeline(p.name, passes=[p]).run(module)
        _assert_same_copy(module)


def test_every_stage_of_a_train_step_copies_as_xdsl_does():
    rng = np.random.default_rng(0)
    params = mlp_params(rng, 12, 8, 3)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.1))
    compiled = step.lower(*params, rng.random(12), np.eye(3)[1])
    _every_stage(compiled, ",convert-scf-to-cf")


def test_every_stage_of_a_time_loop_gradient_and_a_branch_copies_as_xdsl_does():
    x = np.linspace(0.0, 1.0, 5)
    _every_stage(rm.compile(rm.grad(damped_spring(7), argnums=(1,)), 2.0, x, x))
    _every_stage(rm.compile(lambda a, b: rm.cond(rm.sum(a) > 0.0, lambda: a * b, lambda: a - b), x, x))


# ^second is dominated by ^first but comes before it: its use of %c is copied after its user.
LATER_BLOCK = textwrap.dedent(
    """\
    func.func @f(%x: f64) -> f64 {
      cf.br ^first
    ^second:
      %d = arith.addf %c, %c : f64
      func.return %d : f64
    ^first:
      %c = arith.mulf %x, %x : f64
      cf.br ^second
    }
    """
)


def test_a_value_of_a_later_block_is_mapped_to_its_copy():
    module = Parser(make_context(), LATER_BLOCK).parse_module()
    _assert_same_copy(module)
    copy = clone_op(module)
    function = next(op for op in copy.ops if isinstance(op, func.FuncOp))
    second, first = list(function.body.blocks)[1:]
    add, mul = second.first_op, first.first_op
    assert add.operands[0] is mul.results[0] and add.operands[1] is mul.results[0]


def test_mappers_receive_the_copies_and_outside_values_stay():
    module = Parser(make_context(), LATER_BLOCK).parse_module()
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    first = list(function.body.blocks)[2]
    mul = first.first_op
    values, blocks = {}, {}
    copy = clone_op(mul, values, blocks)
    x = function.body.blocks.first.args[0]
    assert copy.operands[0] is x  # defined outside the copied op
    assert values[mul.results[0]] is copy.results[0]
    assert x.uses.get_length() == 4  # its two uses and the copy's two
    region_copy = clone_op(function, values, blocks)
    assert set(blocks) == set(function.body.blocks)
    assert all(blocks[b].parent is region_copy.body for b in function.body.blocks)
