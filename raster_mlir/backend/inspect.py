"""`LLVMInspection`: the `llvm_ir` / `llvm_ir_optimized` / `asm` properties, written once.

Every compiled object (the JIT module, a native function, a compiled jit
function, a train step) shows its code the same way; each says where the
code comes from by implementing `_llvm_source()`.
"""

from __future__ import annotations


class LLVMInspection:
    __slots__ = ()  # (a subclass may then declare slots of its own: jit.CompiledFunction's `_dispatch`)

    def _llvm_source(self):
        """The object holding the code (it has llvm_ir, llvm_ir_optimized and asm)."""
        raise AttributeError(f"{type(self).__name__} must define _llvm_source()")

    @property
    def llvm_ir(self) -> str:
        """LLVM IR as emitted from the loop-level IR, before LLVM's optimisation."""
        return self._llvm_source().llvm_ir

    @property
    def llvm_ir_optimized(self) -> str:
        """LLVM IR after the O3 pipeline (vectorised loops show as `<8 x double>` etc.)."""
        return self._llvm_source().llvm_ir_optimized

    @property
    def llvm_remarks(self) -> tuple[str, ...]:
        """LLVM's diagnostics while optimising this code (captured, never printed to stderr)."""
        return self._llvm_source().llvm_remarks

    @property
    def loops_not_vectorized(self) -> list[str]:
        """Loops the backend asked LLVM to vectorise (`llvm.loop.vectorize.enable`) that it did not.

        Each is named "@function forced loop k: ..."; LLVM's own warning about
        them is in `llvm_remarks`. A non-empty list is a performance bug.
        """
        return self._llvm_source().loops_not_vectorized

    @property
    def asm(self) -> str:
        """Host assembly of the compiled module."""
        return self._llvm_source().asm
