"""`lower-to-loops`: raster ops on tensors -> scf.for + arith + math + memref on buffers.

Algorithm, per `func.func`:
1. The signature becomes destination-passing: `(inputs..., outputs..., constants...) -> ()`.
   Each tensor argument becomes a memref of the same shape; each result gets an
   output buffer the caller provides, except results that the function
   attribute `raster.result_aliases` (one input index or -1 per result) sends
   into an input's buffer (a train step's parameters, updated in place);
   each `raster.constant` becomes a hidden trailing argument whose value is
   kept in the function attribute `raster.constants` (the caller passes those
   arrays; no data in the IR body).
2. Ops are lowered in program order. A value's storage is decided once:
   a `raster.fill` stays a scalar constant folded into its consumers; a value
   returned from the function is computed straight into its output buffer (into
   an aliased input only when nothing reads that input afterwards, else it is
   copied there at the end);
   every other value gets a `memref.alloc` in the entry block (the backend
   turns those into one workspace; no allocation happens inside loops).
3. Each op becomes a loop nest whose innermost loop walks the unit-stride
   dimension (see `loop_recipes.py`): reductions over the last axis carry an
   accumulator (`iter_args`), reductions over an outer axis accumulate into
   the output row by row, dense/matvec is a dot product per output row, matmul
   runs i-k-j.

Before:
    func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
      %y = raster.relu %x : tensor<4xf64>
      func.return %y : tensor<4xf64>
    }
After:
    func.func @f(%x: memref<4xf64>, %out0: memref<4xf64>) {
      %c0 = arith.constant 0 : index
      ...
      scf.for %i = %c0 to %c4 step %c1 {
        %v = memref.load %x[%i] : memref<4xf64>
        %r = arith.maximumf %v, %zero : f64
        memref.store %r, %out0[%i] : memref<4xf64>
      }
      func.return
    }
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, MemRefType, ModuleOp, TensorType
from xdsl.ir import Block, Operation, OpResult, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter

from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules_core import describe_location
from raster_mlir.errors import CompileError, with_location
from raster_mlir.ir_release import release_erased
from raster_mlir.ir_walk import block_ops, walk_ops

from .elementwise_clusters import FUSION_ATTR, MAX_OPS, ElementwiseRun, FusionStats, scalar_function
from .loop_builder import LoopBuilder, memref_type
from . import loop_recipes_array, loop_recipes_index, loop_recipes_maths, loop_recipes_rounding  # noqa: F401  (they add their ops' recipes)
from .loop_recipes import Buffer, Scalar, Storage, copy_into, fill_value
from .lowerings import lowering_for
from .pass_dataclass import pass_dataclass


def memref_of(t: TensorType) -> MemRefType:
    return memref_type(t.element_type, tuple(t.get_shape()))


def result_aliases(function: func.FuncOp, n_results: int) -> list[int]:
    """Per result, the input it is written into (`raster.result_aliases`), or -1 for a fresh output."""
    attr = function.attributes.get("raster.result_aliases")
    if attr is None:
        return [-1] * n_results
    aliases = list(attr.get_values())
    if len(aliases) != n_results:
        raise CompileError(f"lower-to-loops: @{function.sym_name.data} has {n_results} results but "
                           f"raster.result_aliases lists {len(aliases)}")
    return aliases


def in_place_is_safe(block: Block, producer: Operation, target: SSAValue) -> bool:
    """May `producer` write its result straight into the buffer of input `target`?

    Yes when nothing reads `target` after `producer` runs, and `producer`
    itself reads `target` (if at all) elementwise at the index it writes.
    """
    if len(producer.results) != 1:
        return False
    position = {op: i for i, op in enumerate(block.ops)}
    for use in target.uses:
        user = use.operation
        if user is producer:
            elementwise = isinstance(producer, (R.ElementwiseUnaryOp, R.ElementwiseBinaryOp))
            if not elementwise or R.shape_of(target.type) != R.shape_of(producer.results[0].type):
                return False
        elif isinstance(user, func.ReturnOp):
            continue
        elif position.get(user, len(position)) > position[producer]:
            return False
    return True


def stored(storage: dict[SSAValue, Storage], value: SSAValue, user: Operation) -> Storage:
    """Where `value` is kept; a CompileError naming `user` when no op before it defines `value`."""
    try:
        return storage[value]
    except KeyError:
        owner = value.owner.name if isinstance(value.owner, Operation) else "a block argument"
        raise with_location(CompileError(
            f"lower-to-loops: {user.name} uses %{value.name_hint or '?'} ({owner}) before it is defined"
        ), describe_location(user)) from None  # fmt: skip


def lower_function(function: func.FuncOp, fuse_elementwise: bool = True, max_loop_ops: int = MAX_OPS) -> None:
    old_block = function.body.blocks.first
    inputs = list(function.function_type.inputs)
    ret = old_block.last_op
    if not isinstance(ret, func.ReturnOp):
        raise CompileError(f"lower-to-loops: @{function.sym_name.data} must end with func.return")
    results = list(ret.arguments)
    aliases = result_aliases(function, len(results))
    fresh = [k for k, a in enumerate(aliases) if a < 0]
    # Constants anywhere in the function (loop bodies too) become hidden trailing arguments.
    constants = [op for op in old_block.walk() if isinstance(op, R.ConstantOp)]
    for op in old_block.walk():
        if isinstance(op, func.CallOp):
            raise CompileError(
                f"lower-to-loops: @{function.sym_name.data} still calls @{op.callee.root_reference.data}; "
                "run `inline` first"
            )

    arg_types = [memref_of(t) for t in inputs]
    arg_types += [memref_of(results[k].type) for k in fresh]
    arg_types += [memref_of(c.result.type) for c in constants]
    block = Block(arg_types=arg_types)
    for new, old in zip(block.args, old_block.args):
        new.name_hint = old.name_hint
    for i, k in enumerate(fresh):
        block.args[len(inputs) + i].name_hint = f"out{k}"
    b = LoopBuilder(block)

    storage: dict[SSAValue, Storage] = {}
    for new, old in zip(block.args, old_block.args):
        storage[old] = Buffer(new, R.shape_of(old.type))
    for const, arg in zip(constants, block.args[len(inputs) + len(fresh) :]):
        storage[const.result] = Buffer(arg, R.shape_of(const.result.type))

    # Where each result must end up: a fresh output argument or an aliased input's buffer.
    slot: list[SSAValue] = []
    fresh_args = iter(block.args[len(inputs) : len(inputs) + len(fresh)])
    for k, a in enumerate(aliases):
        slot.append(block.args[a] if a >= 0 else next(fresh_args))
    aliased_inputs = {block.args[a] for a in aliases if a >= 0}

    # Results computed in place: the first slot of a value defined by an op here.
    destination: dict[SSAValue, SSAValue] = {}
    for k, (value, out) in enumerate(zip(results, slot)):
        if value in destination or not isinstance(value, OpResult):
            continue
        if isinstance(value.owner, (R.FillOp, R.ConstantOp)):
            continue
        if aliases[k] >= 0 and not in_place_is_safe(old_block, value.owner, old_block.args[aliases[k]]):
            continue
        destination[value] = out

    clusters = FusionStats() if fuse_elementwise else None
    lowering = BlockLowering(b, storage, clusters=clusters, max_loop_ops=max_loop_ops)
    lowering.lower(block_ops(old_block)[:-1], destination)

    # Slots not filled in place get a copy, after every op has read what it needs.
    for value, out in zip(results, slot):
        if destination.get(value) is out:
            continue
        source = stored(storage, value, ret)
        if isinstance(source, Buffer) and source.ref is out:
            continue  # an aliased input returned unchanged
        if isinstance(source, Buffer) and source.ref in aliased_inputs:
            raise CompileError(
                f"lower-to-loops: @{function.sym_name.data} returns input {source.ref.name_hint} into "
                "another input's buffer while that input is itself overwritten"
            )
        copy_into(b, source, Buffer(out, R.shape_of(value.type)))
    for release in lowering.at_return:  # growable tapes give their memory back (lower_tape.py)
        release()
    b.add(func.ReturnOp())

    new_function = func.FuncOp(
        function.sym_name.data,
        (arg_types, []),
        Region(block),
        visibility=function.sym_visibility,
    )
    new_function.attributes.update(function.attributes)
    if constants:
        new_function.attributes["raster.constants"] = ArrayAttr([c.value for c in constants])
    if clusters:  # (any count; fuse-loops adds its own)
        new_function.attributes[FUSION_ATTR] = clusters.as_attribute()
    tensor_level = walk_ops(function)
    Rewriter.replace_op(function, new_function)
    release_erased(tensor_level)  # freed now, not by the collection after the compile (ir_release.py)


class BlockLowering:
    """Lowers the ops of one tensor-level block at the builder's position (the function body or a region body).

    `storage` maps every tensor value already lowered to where it lives; a
    value in `destination` is computed straight into that buffer. Region ops
    (loops and branches) have their own lowerings (lower_control.py), which
    lower their bodies with a nested BlockLowering sharing this storage map.
    """

    def __init__(
        self, b: LoopBuilder, storage: dict[SSAValue, Storage], at_return: list | None = None,
        clusters: FusionStats | None = None, max_loop_ops: int = MAX_OPS,
    ):  # fmt: skip
        self.b = b
        self.storage = storage
        # Callbacks that emit ops just before the function returns (shared by nested lowerings).
        self.at_return = at_return if at_return is not None else []
        # Runs of element-wise ops become one loop nest each (elementwise_clusters.py); None: one nest per op.
        self.clusters = clusters
        self.max_loop_ops = max_loop_ops

    def nested(self) -> BlockLowering:
        """A lowering for a region body, sharing the storage map, the return actions and the cluster counts."""
        return type(self)(self.b, self.storage, self.at_return, self.clusters, self.max_loop_ops)

    def lower(self, ops, destination: dict[SSAValue, SSAValue]) -> None:
        b = self.b
        run = None if self.clusters is None else ElementwiseRun(b, self.storage, self.clusters, memref_of, self.max_loop_ops)
        for op in ops:
            if isinstance(op, R.ConstantOp):
                continue  # a hidden argument (lower_function)
            if isinstance(op, R.FillOp):
                self.storage[op.result] = Scalar(fill_value(b, op), R.shape_of(op.result.type))
                continue
            if run is not None:
                if self._join_run(run, op, destination):
                    continue
                run.flush(destination)
            ins = [stored(self.storage, o, op) for o in op.operands]
            if type(op) in STATE_LOWERINGS:  # ops on state (tapes): they place their own results
                STATE_LOWERINGS[type(op)](self, op, ins)
                continue
            region_lowering = REGION_LOWERINGS.get(type(op))
            recipe = lowering_for(type(op)) if region_lowering is None else None
            if recipe is not None and self._lower_scalar(op, recipe, ins, destination):
                continue
            if isinstance(op, (R.GradOp, R.ValueAndGradOp)):
                raise CompileError(f"lower-to-loops: {op.name} @{op.callee.root_reference.data} is still there; "
                                   "run `autodiff` first")  # fmt: skip
            if region_lowering is None and recipe is None:
                raise with_location(CompileError(
                    f"lower-to-loops: no lowering for {op.name} ({type(op).__name__}); give it one with "
                    "raster_mlir.passes.lowerings.register_lowering(OpClass, recipe)"), describe_location(op))  # fmt: skip
            outs = []
            for result in op.results:
                buf = destination.get(result) or b.alloc(memref_of(result.type))
                self.storage[result] = Buffer(buf, R.shape_of(result.type))
                outs.append(self.storage[result])
            if region_lowering is not None:
                region_lowering(self, op, ins, outs)
            else:
                recipe(b, op, ins, outs)
        if run is not None:
            run.flush(destination)

    def _join_run(self, run: ElementwiseRun, op, destination) -> bool:
        """Lower `op` as part of the pending run of element-wise ops, or as scalar code before it; else False."""
        op_type = type(op)
        if len(op.results) != 1 or op_type in STATE_LOWERINGS or op_type in REGION_LOWERINGS:
            return False
        recipe = lowering_for(op_type)
        fn = None if recipe is None else scalar_function(recipe, op)
        if fn is None:
            return False
        result = op.results[0]
        shape = R.shape_of(result.type)
        if result not in destination and not run.uses_pending(op):
            # Scalar code (0-d operands, or fills only) needs no loop and may go before the run's loop,
            # unless it writes a buffer (a destination, which the run may read).
            storage = self.storage
            ins = [storage.get(o) for o in op.operands]
            if all(s is not None and (isinstance(s, Scalar) or (s.shape == () and shape == ())) for s in ins):
                return self._lower_scalar(op, recipe, ins, destination)
        if shape == () or not run.accepts(op, shape):
            return False
        run.add(op, fn, shape)
        return True

    def _lower_scalar(self, op, recipe, ins, destination) -> bool:
        """An elementwise op on scalars (0-d values, splats) is one scalar computation, not a loop.

        The loop index and bounds, `i * dt`, `n - 1 - i`... stay SSA scalars
        this way; a 0-d buffer operand is loaded once.
        """
        scalar_fn = getattr(recipe, "scalar_fn", None)
        if hasattr(recipe, "scalar_fn_of"):
            scalar_fn = recipe.scalar_fn_of(op)
        if scalar_fn is None or len(op.results) != 1:
            return False
        shape = R.shape_of(op.results[0].type)
        if not all(isinstance(s, Scalar) or s.shape == () for s in ins):
            return False
        if shape != () and not all(isinstance(s, Scalar) for s in ins):
            return False
        b = self.b
        values = [s.value if isinstance(s, Scalar) else b.load(s.ref, []) for s in ins]
        value = scalar_fn(b, *values)
        dest = destination.get(op.results[0])
        if dest is not None:
            copy_into(b, Scalar(value, shape), Buffer(dest, shape))
            self.storage[op.results[0]] = Buffer(dest, shape)
        else:
            self.storage[op.results[0]] = Scalar(value, shape)
        return True


from .lower_control import REGION_LOWERINGS  # noqa: E402  (region ops; they use BlockLowering)
from .lower_tape import STATE_LOWERINGS  # noqa: E402  (growable tapes)


@pass_dataclass
class LowerToLoopsPass(ModulePass):
    """Lower every function of tensor-level raster IR to loops over memrefs."""

    name = "lower-to-loops"

    fuse_elementwise: bool = True
    """Lower each run of consecutive element-wise ops of one shape into one loop nest, its values kept in
    registers (elementwise_clusters.py); false: one loop nest and one buffer per op (fuse-loops merges them)."""

    max_loop_ops: int = MAX_OPS
    """Largest loop nest a run of element-wise ops becomes (ops, nested ones included), as fuse-loops'
    `max-body-ops`: LLVM's loop vectoriser takes time superlinear in a loop body's size."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            lower_function(function, self.fuse_elementwise, self.max_loop_ops)
