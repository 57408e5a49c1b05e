"""xDSL's op verification, with each op's IRDL constraints checked once per signature.

`ModuleOp.verify()` checks every op of a module against its IRDL definition:
the types of its operands and results, its properties and attributes, the
shape of its regions and successors (`OpDef.verify`), then its traits and
its custom `verify_`. Most of that time goes to the IRDL constraints, and a
module repeats the same few signatures thousands of times (every
`arith.addf` on f64, every `memref.load` from a 2-d f64 buffer with two
indices): the 276 ops of the 784-128-10 train step's final module have 79
distinct signatures.

The constraints are a function of the op's class, its operand and result
types, its properties, its attributes, the number of its successors, and the
number of blocks and entry-argument types of each region: nothing else goes
into `OpDef.verify` before the traits. `verify_ops` walks the module as
xDSL does (the same structural checks, in the same order), and for an op
whose signature it has seen verified earlier in this walk, it skips the
constraints and runs the traits and the custom verifier only. The first op
of each signature gets the whole of xDSL's verification, so an op whose
constraints fail has a signature never seen verified and fails with xDSL's
own message. Ops whose class replaces `Operation.verify` or whose verifier
is not the one `irdl_op_definition` generates are verified by xDSL as they
are. The signatures are remembered for one walk only.

A few of xDSL's custom verifiers read nothing but the signature (the types of
the operands and results, the number of operands, the properties): those of
the vector and memref loads, stores, masks, bitcasts and broadcasts that the
lowering emits by the hundred. They give the same answer for the same
signature, so they too run once per signature (`_SIGNATURE_ONLY`); they were a
third of the final module's verification, because `isa(t, VectorType[Attribute])`
rebuilds an IRDL constraint on every call.

Measured (`module.verify()` against `verify_ops(module, dominance_follows=True)`,
same process, interleaved medians, loaded machine), the final loop-level module
of the 784-128-...-10 train step: 2 layers (276 ops) 11.1 -> 7.1 ms, 8 layers
(692 ops) 27.9 -> 12.7 ms, 16 layers (1,244 ops) 44.9 -> 19.4 ms.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import memref, vector
from xdsl.ir import Block, ErasedSSAValue, Operation, Region
from xdsl.irdl import IRDLOperation, OpDef, OptAttributeDef, OptPropertyDef, VarIRConstruct
from xdsl.irdl.constraints import VerificationContext
from xdsl.irdl.operations import irdl_op_verify_arg_list, irdl_op_verify_regions, verify_variadic_size
from xdsl.traits import IsolatedFromAbove, IsTerminator, NoTerminator
from xdsl.utils.exceptions import VerifyException

# Per op class: (its OpDef, the custom verifier its generated `verify_` calls after the
# constraints, or None), or None when the class's verifier is not the generated one.
_PARTS: dict[type, tuple[OpDef, Callable | None] | None] = {}

# Op classes whose custom verifier (xDSL 0.75's, read line by line) is a function of the op's
# signature alone: operand and result types, operand count (the indices), properties (alloc's
# alignment and segment sizes). No region, parent, use or other op is read. Only these exact
# classes: a subclass may verify more.
_SIGNATURE_ONLY = frozenset(
    (
        vector.LoadOp,  # element types of base and result, rank against the indices
        vector.StoreOp,
        vector.MaskedLoadOp,
        vector.MaskedStoreOp,
        vector.CreateMaskOp,  # rank of the mask against its operands
        vector.BitcastOp,  # bit widths of source and result
        vector.BroadcastOp,  # element types of source and result
        memref.LoadOp,  # rank against the indices
        memref.StoreOp,
        memref.AllocOp,  # dynamic dimensions against operands, alignment property
    )
)


def verify_ops(root: Operation, *, dominance_follows: bool = False) -> None:
    """Verify `root` and every op nested in it, as `root.verify()`; raises xDSL's VerifyException.

    `dominance_follows`: the caller checks next that every operand is defined where it is used
    (`verifier.dominance_problem`, which starts from an empty scope at an IsolatedFromAbove op),
    so the IsolatedFromAbove trait's own walk (every operand of every nested op, checked with
    `is_ancestor`: a tenth of the time) is left to it.
    """
    _verify_op(root, set(), (IsolatedFromAbove,) if dominance_follows else ())


def _generated_parts(cls: type) -> tuple[OpDef, Callable | None] | None:
    """The OpDef and custom verifier of an IRDL op class, read from its generated `verify_`.

    `irdl_op_definition` replaces `verify_` by a closure over the OpDef and (when the class
    had one) the custom verifier: `op_def.verify(self)` then `custom_verify(self)`.
    """
    if cls in _PARTS:
        return _PARTS[cls]
    parts = None
    verify_ = cls.__dict__.get("verify_")
    if issubclass(cls, IRDLOperation) and cls.verify is Operation.verify and verify_ is not None:
        names = verify_.__code__.co_freevars
        cells = dict(zip(names, (c.cell_contents for c in verify_.__closure__ or ())))
        op_def = cells.get("op_def")
        if isinstance(op_def, OpDef) and op_def is cls.get_irdl_definition() and set(names) <= {"op_def", "custom_verify"}:
            parts = (op_def, cells.get("custom_verify"))
    _PARTS[cls] = parts
    return parts


def _signature(op: Operation) -> tuple:
    """Everything `OpDef.verify` reads before the traits."""
    regions = tuple(
        (len(region.blocks), tuple(region.first_block.arg_types) if region.first_block else None)
        for region in op.regions
    )
    return (
        type(op),
        tuple(operand.type for operand in op.operands),
        tuple(result.type for result in op.results),
        tuple(op.properties.items()),
        tuple(op.attributes.items()),
        len(op.successors),
        regions,
    )


def _verify_op(op: Operation, verified: set[tuple], skipped: tuple[type, ...]) -> None:
    parts = _generated_parts(type(op))
    if parts is None:
        op.verify()  # xDSL's own walk, nested ops included
        return
    _check_placement(op)
    for region in op.regions:
        _verify_region(region, verified, skipped)
    op_def, custom = parts
    try:
        key = _signature(op)
        try:
            known = key in verified
        except TypeError:  # an attribute that cannot be hashed: check this op every time
            known, key = False, None
        if not known:
            _verify_constraints(op_def, op)
            if key is not None:
                verified.add(key)
        for trait in op_def.traits:
            if not isinstance(trait, skipped):
                trait.verify(op)
        if custom is not None and not (known and type(op) in _SIGNATURE_ONLY):
            custom(op)
    except VerifyException as err:
        op.emit_error(f"Operation does not verify: {err}", err)


def _verify_constraints(op_def: OpDef, op: Operation) -> None:
    """`OpDef.verify` before its traits: operands, results, regions, successors, properties, attributes."""
    context = VerificationContext()
    irdl_op_verify_arg_list(op, op_def, VarIRConstruct.OPERAND, context)
    irdl_op_verify_arg_list(op, op_def, VarIRConstruct.RESULT, context)
    irdl_op_verify_regions(op, op_def, context)
    verify_variadic_size(op, op_def, VarIRConstruct.SUCCESSOR)
    _verify_named("property", op_def.properties, op.properties, OptPropertyDef, op, context)
    for name in op.properties:
        if name not in op_def.properties:
            raise VerifyException(
                f"property '{name}' is not defined by the operation '{op.name}'. "
                "Use the dictionary attribute to add arbitrary information to the operation."
            )
    _verify_named("attribute", op_def.attributes, op.attributes, OptAttributeDef, op, context)


def _verify_named(kind: str, defs, values, optional: type, op: Operation, context: VerificationContext) -> None:
    """Each defined property or attribute present (unless optional) and meeting its constraint."""
    for name, attr_def in defs.items():
        if name not in values:
            if isinstance(attr_def, optional):
                continue
            raise VerifyException(f"{kind} '{name}' expected in operation '{op.name}'")
        attr_def.constr.verify(values[name], context)


def _check_placement(op: Operation) -> None:
    """`Operation.verify`'s checks of operands, successors and terminators (before the nested ops)."""
    for operand in op.operands:
        if isinstance(operand, ErasedSSAValue):
            raise ValueError("Erased SSA value is used by the operation")
    parent_block = op.parent
    parent_region = None if parent_block is None else parent_block.parent
    if op.successors:
        if parent_block is None or parent_region is None:
            raise VerifyException(
                f"Operation {op.name} with block successors does not belong to a block or a region"
            )
        if parent_block.last_op is not op:
            raise VerifyException(f"Operation {op.name} with block successors must terminate its parent block")
        for succ in op.successors:
            if succ.parent != parent_block.parent:
                raise VerifyException(f"Operation {op.name} is branching to a block of a different region")
    if parent_block is not None and parent_region is not None and parent_block.last_op is op:
        single = parent_region.blocks.first is parent_region.blocks.last
        if single:
            parent_op = parent_region.parent
            if parent_op is not None and not parent_op.has_trait(NoTerminator) and not op.has_trait(IsTerminator):
                raise VerifyException(
                    f"Operation {op.name} terminates block in single-block region but is not a terminator"
                )
        elif not op.has_trait(IsTerminator):
            raise VerifyException(f"Operation {op.name} terminates block in multi-block region but is not a terminator")


def _verify_region(region: Region, verified: set[tuple], skipped: tuple[type, ...]) -> None:
    for block in region.blocks:
        _verify_block(block, verified, skipped)
        if block.parent != region:
            raise ValueError("Parent pointer of block does not refer to containing region")


def _verify_block(block: Block, verified: set[tuple], skipped: tuple[type, ...]) -> None:
    for op in block.ops:
        if op.parent != block:
            raise ValueError("Parent pointer of operation does not refer to containing region")
        _verify_op(op, verified, skipped)
    if block.first_op is None:
        region = block.parent
        parent_op = region.parent if region is not None else None
        if parent_op is not None and region.blocks.first is region.blocks.last and not parent_op.has_trait(NoTerminator):
            raise VerifyException(
                f"Operation {parent_op.name} contains empty block in single-block region that expects at least a terminator"
            )
