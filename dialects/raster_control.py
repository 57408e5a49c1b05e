"""Region-holding raster ops: loops and branches on tensors (`raster.for`, `scan`, `while`, `if`).

They are what `rm.fori_loop`, `rm.scan`, `rm.while_loop` and `rm.cond` trace
into: a loop stays one op with a body region, whatever its trip count, so
tracing and every pass cost the same for 10 or 10,000 steps.

Conventions shared by all four ops:
- Carries are explicit: `iter_args` (loop-carried values) go in as operands,
  come out as results and enter the body as block arguments; the body ends
  with `raster.yield` of the next carries (same types, checked by `verify_`).
- Closures are explicit too: a value of the enclosing function used by a
  body (`lambda i, x: x + dt * f(x, k)` uses `dt` and `k`) is a `captures`
  operand, bound to a block argument of every region. The ops are therefore
  `IsolatedFromAbove`: every analysis sees all inputs of a loop as its
  operands (autodiff's dependence sweep, lower-to-loops' storage map).
- The loop index is a 0-d `tensor<i64>` (a traced integer; see
  raster_index.py for the ops on it). Bounds are `tensor<i64>` values,
  constants (`raster.fill 10 : i64`) or computed at run time.
- Calls to `@rm.jit` functions inside bodies stay `func.call` until `inline`
  (which reaches into regions).

    %x, %v = raster.for %i = %lb to %ub iter_args(%xc = %x0 : tensor<64xf64>, %vc = %v0 : tensor<64xf64>)
             captures(%k = %k0 : tensor<64xf64>) {
      %a = raster.mul %k, %xc : tensor<64xf64>, tensor<64xf64> -> tensor<64xf64>
      ...
      raster.yield %xn, %vn : tensor<64xf64>, tensor<64xf64>
    }

`raster.scan` adds `xs` operands sliced along axis 0 per iteration and
stacks the extra yielded values (`ys`) along axis 0; `raster.while` has a
`cond` region ending in `raster.condition %p` (non-zero = continue) and a
`do` region; `raster.if` picks one of two regions by a 0-d predicate
(non-zero = then). Properties: `reverse` (iterate from the last index down),
`checkpoint = K` (reverse mode stores every K-th carry and recomputes the
steps in between; see passes/autodiff_loops.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import IntegerAttr, TensorType, UnitAttr, i64
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.traits import HasParent, IsolatedFromAbove, IsTerminator, Pure, RecursiveMemoryEffect
from xdsl.utils.exceptions import VerifyException

from .raster_base import shape_of

INDEX = TensorType(i64, [])  # the type of a loop index and of loop bounds: a 0-d tensor<i64>


def _types(values: Sequence[SSAValue]) -> list[Attribute]:
    return [v.type for v in values]


def _fmt_types(types: Sequence[Attribute]) -> str:
    return ", ".join(str(t) for t in types) or "nothing"


def check_types(op_name: str, what: str, got: Sequence[Attribute], expected: Sequence[Attribute], names: str) -> None:
    """Raise a VerifyException naming each position where `got` differs from `expected`."""
    if len(got) != len(expected):
        raise VerifyException(
            f"{op_name}: {what} has {len(got)} value(s) ({_fmt_types(got)}) but the op has "
            f"{len(expected)} {names} ({_fmt_types(expected)})"
        )
    for k, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            raise VerifyException(f"{op_name}: {what}: {names} {k} has type {g}, expected {e}")


# ---------------------------------------------------------------------------
# Terminators


@irdl_op_definition
class YieldOp(IRDLOperation):
    """The end of a body: the next carries (then the `ys` slices of a scan, or an if's results).

    `raster.yield %x, %v : tensor<64xf64>, tensor<64xf64>`
    """

    name = "raster.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())
    assembly_format = "($values^ `:` type($values))? attr-dict"

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[list(values)])


@irdl_op_definition
class ConditionOp(IRDLOperation):
    """The end of a while loop's `cond` region: continue while `pred` is non-zero.

    `raster.condition %p : tensor<f64>`
    """

    name = "raster.condition"
    pred = operand_def(TensorType)
    traits = traits_def(IsTerminator(), Pure())
    assembly_format = "$pred attr-dict `:` type($pred)"

    def __init__(self, pred: SSAValue):
        super().__init__(operands=[pred])

    def verify_(self) -> None:
        if shape_of(self.pred.type) != ():
            raise VerifyException(
                f"{self.name}: the predicate must be a 0-d tensor, got {self.pred.type}"
            )


# ---------------------------------------------------------------------------
# Custom syntax shared by the ops: `name(%arg = %operand : type, ...)` bindings


def _print_bindings(printer: Printer, keyword: str, args: Sequence[SSAValue], operands: Sequence[SSAValue]) -> None:
    if not operands:
        return
    printer.print_string(f" {keyword}(")

    def one(pair):
        arg, operand = pair
        printer.print_ssa_value(arg)
        printer.print_string(" = ")
        printer.print_ssa_value(operand)
        printer.print_string(" : ")
        printer.print_attribute(operand.type)

    printer.print_list(list(zip(args, operands)), one)
    printer.print_string(")")


def _parse_bindings(parser: Parser, keyword: str):
    """[(unresolved block argument, operand)] for `keyword(%a = %v : type, ...)`, or [] when absent."""
    if parser.parse_optional_keyword(keyword) is None:
        return []

    def one():
        arg = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        operand: UnresolvedOperand = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        return arg.resolve(t), parser.resolve_operand(operand, t)

    return parser.parse_comma_separated_list(Parser.Delimiter.PAREN, one)


def _print_flags(printer: Printer, op: Operation) -> None:
    if op.properties.get("reverse") is not None:
        printer.print_string(" reverse")
    checkpoint = op.properties.get("checkpoint")
    if checkpoint is not None:
        printer.print_string(f" checkpoint {checkpoint.value.data}")


def _parse_flags(parser: Parser) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {}
    if parser.parse_optional_keyword("reverse") is not None:
        props["reverse"] = UnitAttr()
    if parser.parse_optional_keyword("checkpoint") is not None:
        props["checkpoint"] = IntegerAttr(parser.parse_integer(), i64)
    return props


def _print_attrs(printer: Printer, op: Operation) -> None:
    if op.attributes:
        printer.print_op_attributes(op.attributes, print_keyword=True)


def _parse_attrs(parser: Parser) -> dict[str, Attribute]:
    attrs = parser.parse_optional_attr_dict_with_keyword()
    return dict(attrs.data) if attrs is not None else {}


class LoopOp(IRDLOperation):
    """Shared parts of the loop ops: carries, captures, the reverse/checkpoint flags."""

    REGION_OPS: ClassVar[bool] = True

    @property
    def carry_count(self) -> int:
        return len(self.inits)

    def body_block(self) -> Block:
        return self.body.blocks.first

    def yielded(self) -> list[SSAValue]:
        return list(self.body_block().last_op.operands)

    @property
    def is_reverse(self) -> bool:
        return self.properties.get("reverse") is not None

    @property
    def checkpoint_every(self) -> int | None:
        attr = self.properties.get("checkpoint")
        return None if attr is None else attr.value.data

    def _verify_terminator(self, block: Block, expected: Sequence[Attribute], names: str) -> None:
        last = block.last_op
        if not isinstance(last, YieldOp):
            raise VerifyException(f"{self.name}: the body must end with raster.yield")
        check_types(self.name, "the body's raster.yield", _types(last.values), expected, names)

    def _verify_checkpoint(self) -> None:
        every = self.checkpoint_every
        if every is not None and every < 1:
            raise VerifyException(f"{self.name}: checkpoint {every} must be at least 1 (steps per stored carry)")


# ---------------------------------------------------------------------------
# The ops


@irdl_op_definition
class ForOp(LoopOp):
    """for i in range(lb, ub): carries = body(i, carries) (`rm.fori_loop`).

    Bounds are 0-d `tensor<i64>` values; zero trips when lb >= ub. With
    `reverse`, i runs from ub - 1 down to lb. Block arguments: the index, the
    carries, the captures.

        %r = raster.for %i = %lb to %ub iter_args(%x = %x0 : tensor<3xf64>) captures(%c = %c0 : tensor<f64>) {
          %y = raster.mul %x, %c : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
          raster.yield %y : tensor<3xf64>
        }
    """

    name = "raster.for"
    lb = operand_def(INDEX)
    ub = operand_def(INDEX)
    inits = var_operand_def()
    captures = var_operand_def()
    res = var_result_def()
    body = region_def("single_block")
    reverse = opt_prop_def(UnitAttr)
    checkpoint = opt_prop_def(IntegerAttr)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        lb: SSAValue,
        ub: SSAValue,
        inits: Sequence[SSAValue],
        captures: Sequence[SSAValue],
        body: Block,
        properties: dict[str, Attribute] | None = None,
    ):
        super().__init__(
            operands=[lb, ub, list(inits), list(captures)],
            result_types=[_types(inits)],
            regions=[Region(body)],
            properties=properties or {},
        )

    def index_arg(self) -> SSAValue:
        return self.body_block().args[0]

    def carry_args(self) -> list[SSAValue]:
        return list(self.body_block().args[1 : 1 + len(self.inits)])

    def capture_args(self) -> list[SSAValue]:
        return list(self.body_block().args[1 + len(self.inits) :])

    def verify_(self) -> None:
        block = self.body_block()
        carries = _types(self.inits)
        expected_args = [INDEX, *carries, *_types(self.captures)]
        check_types(self.name, "the body's arguments", _types(block.args), expected_args, "index, carries and captures")
        check_types(self.name, "the results", _types(self.res), carries, "carries")
        self._verify_terminator(block, carries, "carries")
        self._verify_checkpoint()

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.index_arg())
        printer.print_string(" = ")
        printer.print_ssa_value(self.lb)
        printer.print_string(" to ")
        printer.print_ssa_value(self.ub)
        _print_flags(printer, self)
        _print_bindings(printer, "iter_args", self.carry_args(), self.inits)
        _print_bindings(printer, "captures", self.capture_args(), self.captures)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)
        _print_attrs(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        index = parser.parse_argument(expect_type=False).resolve(INDEX)
        parser.parse_punctuation("=")
        lb = parser.resolve_operand(parser.parse_unresolved_operand(), INDEX)
        parser.parse_keyword("to")
        ub = parser.resolve_operand(parser.parse_unresolved_operand(), INDEX)
        props = _parse_flags(parser)
        carries = _parse_bindings(parser, "iter_args")
        captures = _parse_bindings(parser, "captures")
        args = [index, *(a for a, _ in carries), *(a for a, _ in captures)]
        region = parser.parse_region(args)
        body = region.blocks.first
        region.detach_block(body)
        op = cls(lb, ub, [v for _, v in carries], [v for _, v in captures], body, props)
        op.attributes.update(_parse_attrs(parser))
        return op


@irdl_op_definition
class ScanOp(LoopOp):
    """carry, y_k = body(k, carry, xs[k]) for k in range(length); ys stacked along axis 0 (`rm.scan`).

    Block arguments: the index k, the carries, one slice per `xs` operand
    (its type without the leading axis), the captures. The body yields the
    next carries, then one slice per `ys` result. With `reverse`, k runs from
    length - 1 down to 0 and ys[k] still pairs with xs[k] (as JAX).

        %c, %ys = raster.scan %k length 4 iter_args(%s = %s0 : tensor<f64>) xs(%x = %xs : tensor<4xf64>) -> (tensor<4xf64>) {
          %t = raster.add %s, %x : tensor<f64>, tensor<f64> -> tensor<f64>
          raster.yield %t, %t : tensor<f64>, tensor<f64>
        }
    """

    name = "raster.scan"
    length = opt_prop_def(IntegerAttr)
    inits = var_operand_def()
    xs = var_operand_def(TensorType)
    captures = var_operand_def()
    res = var_result_def()
    body = region_def("single_block")
    reverse = opt_prop_def(UnitAttr)
    checkpoint = opt_prop_def(IntegerAttr)
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(
        self,
        length: int,
        inits: Sequence[SSAValue],
        xs: Sequence[SSAValue],
        captures: Sequence[SSAValue],
        ys_types: Sequence[Attribute],
        body: Block,
        properties: dict[str, Attribute] | None = None,
    ):
        props = {"length": IntegerAttr(length, i64), **(properties or {})}
        super().__init__(
            operands=[list(inits), list(xs), list(captures)],
            result_types=[[*_types(inits), *ys_types]],
            regions=[Region(body)],
            properties=props,
        )

    @property
    def trip_count(self) -> int:
        return self.length.value.data

    def index_arg(self) -> SSAValue:
        return self.body_block().args[0]

    def carry_args(self) -> list[SSAValue]:
        return list(self.body_block().args[1 : 1 + len(self.inits)])

    def x_args(self) -> list[SSAValue]:
        start = 1 + len(self.inits)
        return list(self.body_block().args[start : start + len(self.xs)])

    def capture_args(self) -> list[SSAValue]:
        return list(self.body_block().args[1 + len(self.inits) + len(self.xs) :])

    def carry_results(self) -> list[SSAValue]:
        return list(self.res)[: len(self.inits)]

    def ys_results(self) -> list[SSAValue]:
        return list(self.res)[len(self.inits) :]

    @staticmethod
    def slice_type(t: TensorType) -> TensorType:
        return TensorType(t.element_type, list(t.get_shape())[1:])

    @staticmethod
    def stacked_type(t: TensorType, length: int) -> TensorType:
        return TensorType(t.element_type, [length, *t.get_shape()])

    def verify_(self) -> None:
        if self.length is None or self.trip_count < 0:
            raise VerifyException(f"{self.name}: needs a length >= 0")
        n = self.trip_count
        for k, x in enumerate(self.xs):
            shape = shape_of(x.type)
            if not shape or shape[0] != n:
                raise VerifyException(
                    f"{self.name}: xs {k} of type {x.type} must have a leading axis of the scan's length {n}"
                )
        block = self.body_block()
        carries = _types(self.inits)
        slices = [self.slice_type(x.type) for x in self.xs]
        expected_args = [INDEX, *carries, *slices, *_types(self.captures)]
        check_types(self.name, "the body's arguments", _types(block.args), expected_args, "index, carries, xs slices and captures")
        ys = list(self.res)[len(carries) :]
        check_types(self.name, "the results", _types(self.res)[: len(carries)], carries, "carries")
        for k, y in enumerate(ys):
            shape = shape_of(y.type)
            if not shape or shape[0] != n:
                raise VerifyException(f"{self.name}: ys {k} of type {y.type} must have a leading axis of length {n}")
        self._verify_terminator(block, [*carries, *(self.slice_type(y.type) for y in ys)], "carries and ys slices")
        self._verify_checkpoint()

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.index_arg())
        printer.print_string(f" length {self.trip_count}")
        _print_flags(printer, self)
        _print_bindings(printer, "iter_args", self.carry_args(), self.inits)
        _print_bindings(printer, "xs", self.x_args(), self.xs)
        _print_bindings(printer, "captures", self.capture_args(), self.captures)
        ys = self.ys_results()
        if ys:
            printer.print_string(" -> (")
            printer.print_list([y.type for y in ys], printer.print_attribute)
            printer.print_string(")")
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)
        _print_attrs(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> ScanOp:
        index = parser.parse_argument(expect_type=False).resolve(INDEX)
        parser.parse_keyword("length")
        length = parser.parse_integer()
        props = _parse_flags(parser)
        carries = _parse_bindings(parser, "iter_args")
        xs = _parse_bindings(parser, "xs")
        captures = _parse_bindings(parser, "captures")
        ys_types: list[Attribute] = []
        if parser.parse_optional_punctuation("->") is not None:
            ys_types = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_type)
        # An xs binding names the slice; its type is the operand's without the leading axis.
        x_args = [arg.__class__(arg.name, cls.slice_type(v.type)) for arg, v in xs]
        args = [index, *(a for a, _ in carries), *x_args, *(a for a, _ in captures)]
        region = parser.parse_region(args)
        body = region.blocks.first
        region.detach_block(body)
        op = cls(length, [v for _, v in carries], [v for _, v in xs], [v for _, v in captures], ys_types, body, props)
        op.attributes.update(_parse_attrs(parser))
        return op


@irdl_op_definition
class WhileOp(LoopOp):
    """while cond(carries): carries = body(carries) (`rm.while_loop`).

    Both regions take (carries..., captures...) as block arguments. `cond`
    ends with `raster.condition %p` (a 0-d tensor; non-zero continues), `do`
    with `raster.yield` of the next carries.

        %r = raster.while iter_args(%x = %x0 : tensor<f64>) captures(%t = %tol : tensor<f64>) cond {
          %p = raster.greater %x, %t : tensor<f64>, tensor<f64> -> tensor<f64>
          raster.condition %p : tensor<f64>
        } do {
        ^bb0(%x1: tensor<f64>, %t1: tensor<f64>):
          %h = raster.mul %x1, %half : ...
          raster.yield %h : tensor<f64>
        }
    """

    name = "raster.while"
    inits = var_operand_def()
    captures = var_operand_def()
    res = var_result_def()
    before = region_def("single_block")
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, inits: Sequence[SSAValue], captures: Sequence[SSAValue], cond: Block, body: Block):
        super().__init__(
            operands=[list(inits), list(captures)],
            result_types=[_types(inits)],
            regions=[Region(cond), Region(body)],
        )

    def cond_block(self) -> Block:
        return self.before.blocks.first

    def carry_args(self, block: Block | None = None) -> list[SSAValue]:
        block = block or self.body_block()
        return list(block.args[: len(self.inits)])

    def capture_args(self, block: Block | None = None) -> list[SSAValue]:
        block = block or self.body_block()
        return list(block.args[len(self.inits) :])

    def verify_(self) -> None:
        carries = _types(self.inits)
        expected_args = [*carries, *_types(self.captures)]
        for what, block in (("cond", self.cond_block()), ("do", self.body_block())):
            check_types(self.name, f"the {what} region's arguments", _types(block.args), expected_args, "carries and captures")
        if not isinstance(self.cond_block().last_op, ConditionOp):
            raise VerifyException(f"{self.name}: the cond region must end with raster.condition")
        check_types(self.name, "the results", _types(self.res), carries, "carries")
        self._verify_terminator(self.body_block(), carries, "carries")

    def print(self, printer: Printer) -> None:
        cond = self.cond_block()
        _print_bindings(printer, "iter_args", self.carry_args(cond), self.inits)
        _print_bindings(printer, "captures", self.capture_args(cond), self.captures)
        printer.print_string(" cond ")
        printer.print_region(self.before, print_entry_block_args=False)
        printer.print_string(" do ")
        printer.print_region(self.body, print_entry_block_args=True)
        _print_attrs(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> WhileOp:
        carries = _parse_bindings(parser, "iter_args")
        captures = _parse_bindings(parser, "captures")
        parser.parse_keyword("cond")
        cond_region = parser.parse_region([a for a, _ in carries] + [a for a, _ in captures])
        parser.parse_keyword("do")
        body_region = parser.parse_region()
        cond, body = cond_region.blocks.first, body_region.blocks.first
        cond_region.detach_block(cond)
        body_region.detach_block(body)
        op = cls([v for _, v in carries], [v for _, v in captures], cond, body)
        op.attributes.update(_parse_attrs(parser))
        return op


@irdl_op_definition
class IfOp(IRDLOperation):
    """results = then(captures) if pred != 0 else otherwise(captures) (`rm.cond`).

    `pred` is a 0-d tensor of any element type. Both regions take the
    captures as block arguments and yield values of the result types.

        %r = raster.if %p : tensor<f64> captures(%a = %x : tensor<3xf64>) -> (tensor<3xf64>) {
          %n = raster.neg %a : tensor<3xf64>
          raster.yield %n : tensor<3xf64>
        } else {
        ^bb0(%a1: tensor<3xf64>):
          raster.yield %a1 : tensor<3xf64>
        }
    """

    name = "raster.if"
    pred = operand_def(TensorType)
    captures = var_operand_def()
    res = var_result_def()
    then_region = region_def("single_block")
    else_region = region_def("single_block")
    traits = traits_def(IsolatedFromAbove(), RecursiveMemoryEffect())

    def __init__(
        self,
        pred: SSAValue,
        captures: Sequence[SSAValue],
        result_types: Sequence[Attribute],
        then_block: Block,
        else_block: Block,
    ):
        super().__init__(
            operands=[pred, list(captures)],
            result_types=[list(result_types)],
            regions=[Region(then_block), Region(else_block)],
        )

    def branches(self) -> tuple[Block, Block]:
        return self.then_region.blocks.first, self.else_region.blocks.first

    def verify_(self) -> None:
        if shape_of(self.pred.type) != ():
            raise VerifyException(f"{self.name}: the predicate must be a 0-d tensor, got {self.pred.type}")
        expected_args = _types(self.captures)
        results = _types(self.res)
        for what, block in zip(("then", "else"), self.branches()):
            check_types(self.name, f"the {what} region's arguments", _types(block.args), expected_args, "captures")
            last = block.last_op
            if not isinstance(last, YieldOp):
                raise VerifyException(f"{self.name}: the {what} region must end with raster.yield")
            check_types(self.name, f"the {what} region's raster.yield", _types(last.values), results, "results")

    def print(self, printer: Printer) -> None:
        then_block, _ = self.branches()
        printer.print_string(" ")
        printer.print_ssa_value(self.pred)
        printer.print_string(" : ")
        printer.print_attribute(self.pred.type)
        _print_bindings(printer, "captures", list(then_block.args), self.captures)
        printer.print_string(" -> (")
        printer.print_list(_types(self.res), printer.print_attribute)
        printer.print_string(") ")
        printer.print_region(self.then_region, print_entry_block_args=False)
        printer.print_string(" else ")
        printer.print_region(self.else_region, print_entry_block_args=True)
        _print_attrs(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> IfOp:
        unresolved = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        pred = parser.resolve_operand(unresolved, parser.parse_type())
        captures = _parse_bindings(parser, "captures")
        parser.parse_punctuation("->")
        result_types = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_type)
        then_region = parser.parse_region([a for a, _ in captures])
        parser.parse_keyword("else")
        else_region = parser.parse_region()
        then_block, else_block = then_region.blocks.first, else_region.blocks.first
        then_region.detach_block(then_block)
        else_region.detach_block(else_block)
        op = cls(pred, [v for _, v in captures], result_types, then_block, else_block)
        op.attributes.update(_parse_attrs(parser))
        return op


# The region ops, for passes that treat them alike.
REGION_OPS: tuple[type[Operation], ...] = (ForOp, ScanOp, WhileOp, IfOp)


def region_blocks(op: Operation) -> list[Block]:
    return [block for region in op.regions for block in region.blocks]


def clone_block_into(
    source: Block, target: Block, args: Sequence[SSAValue], skip: Callable[[Operation], bool] | None = None
) -> list[SSAValue]:
    """Clone `source`'s ops (all but its terminator, and those `skip` selects) to the end of `target`.

    Its arguments are bound to `args`. Returns the terminator's operands,
    mapped. Nested regions are cloned with the ops.
    """
    mapping = dict(zip(source.args, args))
    for op in source.ops:
        if op is source.last_op and op.has_trait(IsTerminator):
            return [mapping.get(v, v) for v in op.operands]
        if skip is not None and skip(op):
            continue
        target.add_op(op.clone(value_mapper=mapping))
    return []


CONTROL_OPS: tuple[type[Operation], ...] = (YieldOp, ConditionOp, ForOp, ScanOp, WhileOp, IfOp)
