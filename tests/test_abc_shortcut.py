"""abc_shortcut: subclass checks against op and attribute classes answered from the MRO, ABCMeta's answers kept.

- a "no" from isinstance(x, Operation) no longer walks (and caches a "no" in) every op class:
  a deterministic count of ABCMeta's negative-cache entries;
- the answers stay ABCMeta's: for every op and attribute class against a sample of classes;
  a virtual subclass registered after raster_mlir's import is seen (the hook steps aside), and one
  registered before it is seen too (fresh processes: a registration on an op class turns the
  hook off for the rest of the process).
"""

from __future__ import annotations

import abc
import subprocess
import sys
import textwrap

from xdsl.dialects import arith, builtin
from xdsl.ir import Attribute, Block, Operation, SSAValue

import raster_mlir  # noqa: F401  (installs the hook)
from raster_mlir import abc_shortcut


def test_a_negative_check_caches_one_entry_not_one_per_op_class():
    class Stranger:
        pass

    assert not isinstance(Stranger(), Operation)
    assert not isinstance(Stranger(), Attribute)
    holding = [
        cls
        for base in (Operation, Attribute)
        for cls in abc_shortcut._hierarchy(base)
        if any(ref() is Stranger for ref in abc._get_dump(cls)[2])  # its negative cache
    ]
    assert sorted(c.__name__ for c in holding) == ["Attribute", "Operation"]


def test_answers_are_the_mro_s():
    ops, attrs = abc_shortcut._hierarchy(Operation), abc_shortcut._hierarchy(Attribute)
    others = [Block, SSAValue, list, int, type(None), builtin.IntegerType, arith.AddfOp]
    for cls in [*ops, *attrs]:
        for candidate in others:
            assert issubclass(candidate, cls) == (cls in candidate.__mro__)
    assert isinstance(builtin.i64, Attribute) and not isinstance(builtin.i64, Operation)


SCRIPT = textwrap.dedent(
    """
    import sys
    from xdsl.dialects import arith
    from xdsl.ir import Operation

    class Early: pass
    class Late: pass
    if sys.argv[1] == "before":
        arith.AddfOp.register(Early)
    import raster_mlir
    if sys.argv[1] == "before":
        assert issubclass(Early, Operation) and isinstance(Early(), arith.AddfOp)
        assert not issubclass(Late, Operation)
    else:
        assert not issubclass(Late, Operation)
        arith.MulfOp.register(Late)
        assert issubclass(Late, Operation) and isinstance(Late(), arith.MulfOp)
        assert not issubclass(Late, arith.AddfOp)
    print("ok")
    """
)


def test_virtual_subclasses_registered_before_or_after_the_import_are_seen():
    for when in ("before", "after"):
        out = subprocess.run([sys.executable, "-c", SCRIPT, when], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
