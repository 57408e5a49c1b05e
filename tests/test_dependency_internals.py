"""Every private name of xDSL and llvmlite that raster_mlir relies on, with the shape it expects.

The compile-time work reads and writes some internals of its two dependencies directly (fields
of xDSL's `Operation`, its CSE and dead-code drivers and pattern walker; llvmlite's reference
cache, name scopes, attribute sets and builder), and copies or skips some of their code on the
assumption that it does what the tested release does (`IRDLOperation.__post_init__` only fills
defaults, the verifiers `op_verifier._SIGNATURE_ONLY` runs once per signature, the walker loop
`greedy.PatternWalker.rewrite_region` copies). pyproject.toml pins the tested releases
(xdsl 0.75.x, llvmlite 0.50.x); when a new release is tried, this file fails with one test per
internal that moved, naming it, instead of a crash or a wrong answer somewhere in the pipeline.
A digest below changed: read the new code, adapt ours if needed, and record the new digest.
"""

from __future__ import annotations

import hashlib
import inspect
import re

import pytest
from llvmlite import ir
from llvmlite.ir import _utils as llvm_utils
from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.ir import Block, Operation, OpResult, SSAValue, Use
from xdsl.irdl import IRDLOperation
from xdsl.pattern_rewriter import PatternRewriteWalker
from xdsl.transforms.common_subexpression_elimination import CSEDriver, KnownOps
from xdsl.transforms.dead_code_elimination import LiveSet

from raster_mlir.op_verifier import _SIGNATURE_ONLY, _generated_parts


def _digest(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- xDSL ------------------------------

# Operation fields set directly by ir_create.create_op and ir_clone (around xDSL's checking
# setters), and `_next_op` read by ir_walk.
OPERATION_FIELDS = ("_operands", "_operand_uses", "_successors", "_successor_uses", "_next_op", "_prev_op")


@pytest.mark.parametrize("name", OPERATION_FIELDS)
def test_operation_private_fields(name):
    assert name in Operation.__dataclass_fields__, f"xdsl.ir.Operation has no field {name}"


def test_operation_fields_hold_what_we_write():
    a = arith.ConstantOp(IntegerAttr(1, i64))
    b = arith.AddiOp(a.result, a.result)
    block = Block([a, b])
    assert isinstance(b._operands, tuple) and b._operands == (a.result, a.result) == tuple(b.operands)
    assert all(type(u) is Use and u.operation is b for u in b._operand_uses)
    assert [u.index for u in b._operand_uses] == [0, 1]
    assert b._successors == () and tuple(b._successor_uses) == ()
    assert a._next_op is b and b._prev_op is a and b._next_op is None and block.first_op is a


def test_ssa_value_name_field():
    """ir_clone copies `_name` (what the `name_hint` property validates and stores)."""
    value = arith.ConstantOp(IntegerAttr(1, i64)).result
    assert isinstance(value, OpResult) and isinstance(value, SSAValue)
    value.name_hint = "x"
    assert value._name == "x"


def test_irdl_post_init_only_fills_defaults():
    """ir_create.fills_defaults skips `__post_init__` for classes without defaults: only right while
    IRDLOperation.__post_init__ fills in default properties / attributes and Operation's checks the name."""
    assert _digest(IRDLOperation.__post_init__) == "5b72899272219b01", "IRDLOperation.__post_init__ changed"
    assert _digest(Operation.__post_init__) == "68ed9fbafe8cb80b", "Operation.__post_init__ changed"


# The custom verifiers op_verifier runs once per signature (they read the types, the operand count
# and the properties only, in xDSL 0.75).
SIGNATURE_ONLY_VERIFIERS = {
    "memref.AllocOp": "fdc6275b3ac98a57",
    "memref.LoadOp": "8064963c56288899",
    "memref.StoreOp": "0c68650a441b8277",
    "vector.BitcastOp": "7b859fdc440ebd2d",
    "vector.BroadcastOp": "c85d946547c0e18a",
    "vector.CreateMaskOp": "2c6b8a1cde0376e0",
    "vector.LoadOp": "f1f1c1e2407697a2",
    "vector.MaskedLoadOp": "19a42a0f4bc36ee5",
    "vector.MaskedStoreOp": "e920946528804698",
    "vector.StoreOp": "baf35a9290320e21",
}


@pytest.mark.parametrize("cls", sorted(_SIGNATURE_ONLY, key=lambda c: (c.__module__, c.__qualname__)), ids=str)
def test_signature_only_verifiers(cls):
    name = f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"
    parts = _generated_parts(cls)  # (reads the closure irdl_op_definition makes of `verify_`)
    assert parts is not None and parts[1] is not None, f"{name}: verify_ is not the closure op_verifier reads"
    assert _digest(parts[1]) == SIGNATURE_ONLY_VERIFIERS.get(name), f"{name}'s verifier changed"


def test_pattern_walker_internals():
    """greedy.PatternWalker replaces the `_worklist` field by its OpWorklist, overrides
    `_populate_worklist` and copies `rewrite_region`'s loop (calling `_get_rewriter_listener`,
    `_populate_worklist`, `_process_worklist`)."""
    assert "_worklist" in PatternRewriteWalker.__dataclass_fields__
    for method in ("_get_rewriter_listener", "_populate_worklist", "_process_worklist"):
        assert callable(getattr(PatternRewriteWalker, method, None)), f"PatternRewriteWalker.{method} is gone"
    source = inspect.getsource(PatternRewriteWalker)
    used = set(re.findall(r"self\._worklist\.(\w+)", source))
    assert used <= {"push", "pop", "remove"}, f"the walker calls more of its worklist: {used}"
    assert _digest(PatternRewriteWalker.rewrite_region) == "03d85dd61353f7dc", "rewrite_region changed"
    assert _digest(PatternRewriteWalker._populate_worklist) == "0d304851899f0ebd", "_populate_worklist changed"


def test_cse_driver_internals():
    """cse.KeyedCSEDriver redeclares `_known_ops`, reads `KnownOps._known_ops` and re-implements
    `_simplify_operation` / `_simplify_block` / `_simplify_region` around `_mark_erasure` and
    `_replace_and_delete`."""
    assert "_known_ops" in CSEDriver.__dataclass_fields__
    for method in ("_mark_erasure", "_replace_and_delete", "_simplify_operation", "_simplify_block", "_simplify_region"):
        assert callable(getattr(CSEDriver, method, None)), f"CSEDriver.{method} is gone"
    assert isinstance(KnownOps()._known_ops, dict)
    for method, digest in (
        ("_simplify_operation", "f732918a68ef61d4"),
        ("_simplify_block", "e60a71a90376d86f"),
        ("_simplify_region", "94e70da3a92e6f73"),
    ):
        assert _digest(getattr(CSEDriver, method)) == digest, f"CSEDriver.{method} changed"


def test_live_set_internals():
    """dce._LiveSet redeclares `_live_ops` (ids instead of ops) and overrides is_live / set_live."""
    assert {"_live_ops", "changed"} <= set(LiveSet.__dataclass_fields__)
    for method in ("is_live", "set_live", "propagate_region_liveness"):
        assert method in vars(LiveSet), f"LiveSet.{method} is gone"
    source = inspect.getsource(LiveSet)
    assert set(re.findall(r"self\._live_ops\b", source)) and "_live_ops" not in re.sub(
        r"self\._live_ops|_live_ops:", "", source
    ), "LiveSet reads _live_ops other than through self"


# -------------------------------------------------------------- llvmlite ----------------------------


def _function() -> tuple[ir.Module, ir.Function, ir.IRBuilder]:
    module = ir.Module("m")
    fn = ir.Function(module, ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.PointerType()]), "f")
    return module, fn, ir.IRBuilder(fn.append_basic_block("entry"))


def test_cached_reference_attribute():
    """llvm_print and fast_builder read and write the name-mangled cache of `get_reference()`."""
    _, fn, builder = _function()
    value = builder.fadd(fn.args[0], fn.args[0], name="s")
    assert isinstance(value, llvm_utils._StringReferenceCaching)
    reference = value.get_reference()
    assert value.__dict__["_StringReferenceCaching__cached_refstr"] == reference == value._get_reference()
    assert value._name == "s"


def test_name_scope_fields():
    scope = llvm_utils.NameScope()
    scope.register("a")
    scope.register("a", deduplicate=True)
    assert isinstance(scope._useset, set) and "a" in scope._useset
    assert scope._basenamemap["a"] == 1


def test_attribute_sets():
    assert {"fast", "nnan", "contract"} <= set(ir.FastMathFlags._known)
    known = ir.values.ArgumentAttributes._known
    assert dict(known).get("noalias") is False and dict(known).get("byval") is True
    attributes = ir.values.ArgumentAttributes()
    assert (attributes._align, attributes._dereferenceable, attributes._dereferenceable_or_null) == (0, 0, 0)
    attributes.align, attributes.dereferenceable, attributes.dereferenceable_or_null = 8, 16, 32
    assert (attributes._align, attributes._dereferenceable, attributes._dereferenceable_or_null) == (8, 16, 32)
    attributes.add("noalias")
    assert attributes._to_list(ir.PointerType()) == ["noalias", "align 8", "dereferenceable(16)", "dereferenceable_or_null(32)"]
    assert callable(ir.values.AttributeSet._expand)


def test_builder_module_and_block_internals():
    """FastBuilder inserts at `_block` / `_anchor` through `_insert`, calls `_icmp`; llvm_body
    shares metadata through `Module._metadatacache`; llvm_print calls `Block._format_name`,
    `Function._stringify_metadata` and `NamedValue._to_string`."""
    module, fn, builder = _function()
    assert builder._block is fn.blocks[0] and builder._anchor == 0
    builder._insert(ir.instructions.Ret(builder._block, "ret", fn.args[0]))
    assert builder._anchor == 1 and builder._block.instructions[-1].opname == "ret"
    assert callable(ir.IRBuilder._icmp)
    node = module.add_metadata([ir.IntType(32)(1)])
    assert isinstance(module._metadatacache, dict) and node in module._metadatacache.values()
    assert fn.blocks[0]._format_name() == "entry"
    assert fn._stringify_metadata(leading_comma=True) == ""
    assert node._to_string() == str(node)
