"""The `vector` dialect ops the backend accepts, as LLVM vector instructions.

A pass that knows the shape of its data better than LLVM's vectorisers can
say so with 1-D vectors (`skip-zero-chunks` handles one 64-byte chunk of a
row per iteration of a loop over a list of chunks: the loop vectoriser would
need gathers and the SLP vectoriser packs 16 scalar accumulators poorly).
Supported, on `vector<N x f32|f64|i1>`:

    vector.load %m[%i, %j]        -> load <N x T> at &m[i, j] (element alignment)
    vector.store %v, %m[%i, %j]   -> store <N x T>
    vector.broadcast %s           -> insertelement + shufflevector (a splat)
    vector.reduction <add>, %v    -> llvm.vector.reduce.fadd (with the op's and
                                     the module's fast-math flags; reassoc makes it a tree)
    vector.reduction <or>, %v     -> llvm.vector.reduce.or (integer lanes)
    vector.bitcast %v             -> bitcast (same total width)
    vector.create_mask %n         -> icmp ult <0, 1, ..., N-1>, splat(n): lanes [0, n) set
    vector.maskedload %m[%i], %mask, %pass -> llvm.masked.load: only the set lanes touch memory,
                                     the others take %pass; the address need not be inside
                                     the buffer (a GEP without `inbounds`), as long as the set
                                     lanes are
    vector.maskedstore %m[%i], %mask, %v   -> llvm.masked.store, likewise

`arith` float ops, `arith.cmpf` and `arith.select` already work lane-wise on
vector values, and `scf.for` carries them like scalars.
"""

from __future__ import annotations

from llvmlite import ir
from xdsl.ir import Operation

from ..errors import CompileError
from .llvm_ops import _suffix
from .llvm_types import I32, PTR, llvm_type, splat_constant


class VectorTranslator:
    """Mixin for `FunctionBodyEmitter`: the vector-op half of the translation."""

    def _emit_vector_load(self, op: Operation) -> None:
        ptr, buf = self._address(op.operands[0], list(op.operands[1:]))
        ty = llvm_type(op.results[0].type)
        load = self.builder.load(ptr, typ=ty, align=buf.itemsize)
        self.tag_workspace_access(load, op.operands[0])
        self.define(op, load)

    def _emit_vector_store(self, op: Operation) -> None:
        value = self.value(op.operands[0])
        ptr, buf = self._address(op.operands[1], list(op.operands[2:]))
        self.tag_workspace_access(self.builder.store(value, ptr, align=buf.itemsize), op.operands[1])

    def _emit_create_mask(self, op: Operation) -> None:
        ty = llvm_type(op.results[0].type)
        if len(op.operands) != 1 or not isinstance(ty, ir.VectorType):
            raise CompileError(f"vector.create_mask: only 1-D masks are supported, got {op.results[0].type}")
        n = self.value(op.operands[0])
        lanes = ir.Constant(ir.VectorType(n.type, ty.count), list(range(ty.count)))
        # Signed: a negative n sets no lane, as in MLIR.
        self.define(op, self.builder.icmp_signed("<", lanes, self._splat(n, ty.count)))

    def _emit_masked_load(self, op: Operation) -> None:
        ptr, buf = self._address(op.operands[0], list(op.operands[1:-2]), inbounds=False)
        mask, passthru = self.value(op.operands[-2]), self.value(op.operands[-1])
        ty = passthru.type
        fn = self.mctx.declare(f"llvm.masked.load.{_suffix(ty)}.p0", ty, [PTR, I32, mask.type, ty])
        self.define(op, self.builder.call(fn, [ptr, ir.Constant(I32, buf.itemsize), mask, passthru]))

    def _emit_masked_store(self, op: Operation) -> None:
        ptr, buf = self._address(op.operands[0], list(op.operands[1:-2]), inbounds=False)
        mask, value = self.value(op.operands[-2]), self.value(op.operands[-1])
        fn = self.mctx.declare(f"llvm.masked.store.{_suffix(value.type)}.p0", ir.VoidType(), [value.type, PTR, I32, mask.type])
        self.builder.call(fn, [value, ptr, ir.Constant(I32, buf.itemsize), mask])

    def _splat(self, scalar: ir.Value, count: int) -> ir.Value:
        ty = ir.VectorType(scalar.type, count)
        b = self.builder
        undef = splat_constant(ty, ir.Undefined)
        one = b.insert_element(undef, scalar, ir.Constant(I32, 0))
        return b.shuffle_vector(one, undef, splat_constant(ir.VectorType(I32, count), 0))

    def _emit_vector_broadcast(self, op: Operation) -> None:
        ty = llvm_type(op.results[0].type)
        scalar = self.value(op.operands[0])
        if not isinstance(ty, ir.VectorType) or scalar.type != ty.element:
            raise CompileError(f"vector.broadcast: only a scalar of the lane type to a vector, got {op.operands[0].type}")
        self.define(op, self._splat(scalar, ty.count))

    def _emit_vector_bitcast(self, op: Operation) -> None:
        self.define(op, self.builder.bitcast(self.value(op.operands[0]), llvm_type(op.results[0].type)))

    def _emit_vector_reduction(self, op: Operation) -> None:
        flag = op.kind.data
        kind = getattr(flag, "value", str(flag))  # "add", "or", "xor", ...
        vec = self.value(op.operands[0])
        lane = vec.type.element
        b = self.builder
        if kind == "add" and isinstance(lane, (ir.FloatType, ir.DoubleType)):
            fn = self.mctx.declare(f"llvm.vector.reduce.fadd.{_suffix(vec.type)}", lane, [lane, vec.type])
            start = ir.Constant(lane, -0.0)  # the identity of fadd (+0.0 would turn a -0.0 sum into +0.0)
            total = b.call(fn, [start, vec], fastmath=self.fastmath(op))
            if len(op.operands) > 1:  # the optional accumulator
                total = b.fadd(self.value(op.operands[1]), total, flags=self.fastmath(op))
            self.define(op, total)
        elif kind == "or" and isinstance(lane, ir.IntType):
            fn = self.mctx.declare(f"llvm.vector.reduce.or.{_suffix(vec.type)}", lane, [vec.type])
            self.define(op, b.call(fn, [vec]))
        else:
            raise CompileError(f"vector.reduction <{kind}> on {op.operands[0].type} is not supported by the backend")


VECTOR_HANDLERS = {
    "vector.load": VectorTranslator._emit_vector_load,
    "vector.store": VectorTranslator._emit_vector_store,
    "vector.broadcast": VectorTranslator._emit_vector_broadcast,
    "vector.reduction": VectorTranslator._emit_vector_reduction,
    "vector.bitcast": VectorTranslator._emit_vector_bitcast,
    "vector.create_mask": VectorTranslator._emit_create_mask,
    "vector.maskedload": VectorTranslator._emit_masked_load,
    "vector.maskedstore": VectorTranslator._emit_masked_store,
}
