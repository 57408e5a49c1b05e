"""Freeing an llvmlite module by reference counting once its text has been compiled.

An llvmlite `ir.Module` is a web of reference cycles: the module holds its
functions and each function its module, a function its blocks and each block
its function, a block its instructions and each instruction its block, a phi
its incoming values and a loop's values the phi. Dropped after a compile, none
of it is freed until Python's cyclic collector walks it: for the 784-128-...-10
train step with 8 layers, 21,000 of the 26,000 objects the collection after
the compile found garbage (compile-time.md, "No garbage collection pauses").
`release_module` clears the instance dictionaries of the module, its global
values, their blocks and instructions (objects that belong to this module
alone; types and constants, which modules may share, are left as they are), so
every cycle is cut and reference counting frees the module at once. Measured
(8 layers, CPU, loaded machine): the collection 16.7 -> 6.8 ms, the release
2.2 ms.

Call it only when nothing will read the module again (its text printed and
compiled, no inspection holding it).
"""

from __future__ import annotations

from llvmlite import ir


def release_module(llmod: ir.Module) -> None:
    """Cut every reference cycle of `llmod`; the module is unusable afterwards."""
    for value in list(llmod.globals.values()):
        if isinstance(value, ir.Function):
            for block in value.blocks:
                for instruction in block.instructions:
                    instruction.__dict__.clear()
                block.__dict__.clear()
            for argument in value.args:
                argument.__dict__.clear()
        value.__dict__.clear()
    llmod.__dict__.clear()
