"""Facts about a loop-level module that the emitter and the call path need.

Algorithm:
1. Check every buffer type: a `memref` with a static shape, an element type in
   `ELEMENT_DTYPES`, and the identity (row-major, offset 0) layout. Anything
   else is a `CompileError` naming the function and value.
2. Root every memref SSA value: the loop-level IR has no views, so each memref
   value is either a function argument or the result of one
   `memref.alloc`/`memref.alloca`. A memref flowing through anything else
   (an `scf.for` iter_arg, an `scf.if` result) is refused.
3. Written arguments: an argument is written if a `memref.store` or
   `memref.copy` targets it, or if it is passed to a callee parameter that is
   written. Computed callee-first over the call graph; recursion is refused
   (it would also make the workspace size unbounded).
4. Workspace layout, one byte region per function, callee-first:
   `[own allocs, each at a 64-byte aligned offset][callee scratch]`. The
   callee scratch is shared by all callees of the function because calls run
   one after another; its size is the largest callee workspace. A
   `memref.alloca` larger than `STACK_ALLOCA_LIMIT` bytes also goes into the
   workspace, because a thread's stack may be small (Python threads get
   8 MiB or less). `memref.dealloc` of a workspace buffer is therefore a
   no-op: the caller owns the workspace, and it is reused on every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects.builtin import (
    AffineMapAttr,
    Float32Type,
    Float64Type,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StridedLayoutAttr,
)
from xdsl.dialects.func import FuncOp
from xdsl.ir import BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.utils.exceptions import VerifyException

from ..errors import CompileError
from ..ir_walk import region_ops

WORKSPACE_ALIGN = 64  # one cache line and one AVX-512 vector
STACK_ALLOCA_LIMIT = 64 * 1024


def _element_dtype(elem) -> str | None:
    if isinstance(elem, Float64Type):
        return "float64"
    if isinstance(elem, Float32Type):
        return "float32"
    if isinstance(elem, IntegerType) and elem.width.data in (32, 64):
        return f"int{elem.width.data}"
    return None


ITEMSIZE = {"float64": 8, "float32": 4, "int64": 8, "int32": 4}


@dataclass(frozen=True)
class BufferType:
    """A static, row-major buffer: what a memref type means to the backend."""

    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: float64, float32, int64, int32

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def strides(self) -> tuple[int, ...]:
        """Row-major strides in elements."""
        out = []
        step = 1
        for d in reversed(self.shape):
            out.append(step)
            step *= d
        return tuple(reversed(out))


def _is_identity_layout(t: MemRefType) -> bool:
    layout = t.layout
    if isinstance(layout, NoneAttr):
        return True
    rank = len(t.get_shape())
    if isinstance(layout, StridedLayoutAttr):
        return t.get_offset() == 0 and tuple(t.get_strides()) == BufferType(tuple(t.get_shape()), "float64").strides
    if isinstance(layout, AffineMapAttr):
        return layout.data == AffineMap.identity(rank)
    return False


def buffer_type(t, where: str) -> BufferType:
    """The BufferType of memref type `t`, or CompileError saying why not."""
    if not isinstance(t, MemRefType):
        raise CompileError(f"{where}: expected a memref type, got {t}")
    if not t.has_static_shape():
        raise CompileError(f"{where}: memref {t} has a dynamic shape; the backend needs static shapes")
    dtype = _element_dtype(t.get_element_type())
    if dtype is None:
        raise CompileError(
            f"{where}: memref {t} has element type {t.get_element_type()}; supported: f64, f32, i64, i32"
        )
    if not _is_identity_layout(t):
        raise CompileError(f"{where}: memref {t} has a non-identity layout; the backend needs row-major, offset 0")
    if not isinstance(t.memory_space, NoneAttr):
        raise CompileError(f"{where}: memref {t} has a memory space; the backend supports only the default one")
    return BufferType(tuple(int(d) for d in t.get_shape()), dtype)


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass
class FunctionInfo:
    """Per-function facts (see the module docstring for how they are computed)."""

    op: FuncOp
    name: str
    is_private: bool
    arg_types: list  # BufferType for memref args, the xDSL type for scalar args
    written_args: set[int] = field(default_factory=set)
    workspace_offsets: dict[Operation, int] = field(default_factory=dict)  # alloc op -> byte offset
    stack_allocas: list[Operation] = field(default_factory=list)
    callees: list[str] = field(default_factory=list)
    callee_scratch_offset: int = 0
    workspace_bytes: int = 0
    called_internally: bool = False

    def buffer_arg_indices(self) -> list[int]:
        return [i for i, t in enumerate(self.arg_types) if isinstance(t, BufferType)]


@dataclass
class ModuleInfo:
    functions: dict[str, FunctionInfo]
    order: list[str]  # callees before callers


LOADS = ("memref.load", "vector.load")  # operands: buffer, indices...
STORES = ("memref.store", "vector.store")  # operands: value, buffer, indices...
MASKED = {"vector.maskedload": False, "vector.maskedstore": True}  # operands: buffer, indices..., mask, value


def indexed_access(op: Operation) -> tuple[SSAValue, tuple[SSAValue, ...], bool] | None:
    """(buffer, indices, is_store) of a scalar, vector or masked vector load or store; None for any other op."""
    if op.name in LOADS:
        return op.operands[0], tuple(op.operands[1:]), False
    if op.name in STORES:
        return op.operands[1], tuple(op.operands[2:]), True
    if op.name in MASKED:
        return op.operands[0], tuple(op.operands[1:-2]), MASKED[op.name]
    return None


def memref_root(value: SSAValue, fn_name: str) -> BlockArgument | Operation:
    """The function argument or alloc/alloca op a memref value comes from."""
    if isinstance(value, BlockArgument):
        owner = value.block.parent_op()
        if isinstance(owner, FuncOp) and value.block is owner.body.blocks.first:
            return value
        through = "a branch to another block" if isinstance(owner, FuncOp) else (owner.name if owner else "a block")
        raise CompileError(
            f"@{fn_name}: a memref flows through {through}; "
            "the backend supports memrefs only as function arguments or alloc/alloca results"
        )
    owner = value.owner
    if owner.name in ("memref.alloc", "memref.alloca"):
        return owner
    raise CompileError(f"@{fn_name}: memref produced by {owner.name}, which the backend does not support")


def _function_body(op: FuncOp) -> Region:
    if op.is_declaration:
        raise CompileError(f"@{op.sym_name.data}: external function declarations are not supported")
    return op.body  # every block (a function may branch between blocks with cf.br / cf.cond_br)


def analyse_module(module: ModuleOp, verified: bool = False) -> ModuleInfo:
    """Compute FunctionInfo for every function of `module` (see module docstring).

    The module is verified first, unless the caller has just done so (`verified`).
    """
    if not verified:
        try:
            module.verify()
        except VerifyException as exc:
            raise CompileError(f"the loop-level module does not verify: {exc}") from exc
    functions: dict[str, FunctionInfo] = {}
    for op in module.ops:
        if not isinstance(op, FuncOp):
            raise CompileError(f"top-level op {op.name} is not supported; the module may only hold func.func ops")
        name = op.sym_name.data
        if name in functions:
            raise CompileError(f"function @{name} is defined twice")
        vis = op.sym_visibility.data if op.sym_visibility is not None else "public"
        arg_types: list = []
        for i, t in enumerate(op.function_type.inputs.data):
            if isinstance(t, MemRefType):
                arg_types.append(buffer_type(t, f"@{name} argument {i}"))
            else:
                arg_types.append(t)
        functions[name] = FunctionInfo(op=op, name=name, is_private=(vis != "public"), arg_types=arg_types)

    nested: dict[str, list[Operation]] = {}  # each function's ops, walked once for both analyses
    for info in functions.values():
        nested[info.name] = region_ops(_function_body(info.op))
        for inner in nested[info.name]:
            if inner.name == "func.call":
                callee = inner.callee.string_value()
                if callee not in functions:
                    raise CompileError(f"@{info.name} calls @{callee}, which the module does not define")
                info.callees.append(callee)
                functions[callee].called_internally = True

    order = _callee_first_order(functions)
    for name in order:
        _analyse_function(functions[name], functions, nested[name])
    return ModuleInfo(functions=functions, order=order)


def _callee_first_order(functions: dict[str, FunctionInfo]) -> list[str]:
    # Iterative DFS (no recursion limit); a grey node reached again is a cycle.
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    for root in functions:
        if state.get(root) == 2:
            continue
        stack = [(root, iter(functions[root].callees))]
        state[root] = 1
        while stack:
            name, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif state.get(nxt) == 1:
                raise CompileError(f"recursive call @{name} -> @{nxt}: the backend does not support recursion")
            elif state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, iter(functions[nxt].callees)))
    return order


def _analyse_function(info: FunctionInfo, functions: dict[str, FunctionInfo], ops: list[Operation]) -> None:
    """Workspace layout, stack slots and written arguments of `info` from `ops`, its nested ops."""
    offset = 0
    for inner in ops:
        name = inner.name
        if name in ("memref.alloc", "memref.alloca"):
            buf = buffer_type(inner.results[0].type, f"@{info.name} {name}")
            if name == "memref.alloca" and buf.nbytes <= STACK_ALLOCA_LIMIT:
                info.stack_allocas.append(inner)
                continue
            offset = _align_up(offset, WORKSPACE_ALIGN)
            info.workspace_offsets[inner] = offset
            offset += buf.nbytes
        elif name in ("memref.store", "memref.copy"):
            target = inner.operands[1]
            root = memref_root(target, info.name)
            if isinstance(root, BlockArgument):
                info.written_args.add(root.index)
        elif name == "func.call":
            callee = functions[inner.callee.string_value()]
            for pos, operand in enumerate(inner.operands):
                if pos in callee.written_args:
                    root = memref_root(operand, info.name)
                    if isinstance(root, BlockArgument):
                        info.written_args.add(root.index)
    scratch = max((functions[c].workspace_bytes for c in info.callees), default=0)
    if scratch:
        info.callee_scratch_offset = _align_up(offset, WORKSPACE_ALIGN)
        info.workspace_bytes = info.callee_scratch_offset + scratch
    else:
        # Callees that need no workspace get the function's own pointer, so
        # no pointer past the end of the workspace is ever formed.
        info.callee_scratch_offset = 0
        info.workspace_bytes = offset
