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


def _fresh_answers(classes, candidates) -> dict:
    """issubclass(candidate, cls) for every pair, each class's ABCMeta caches emptied first."""
    for cls in classes:
        cls._abc_caches_clear()
    return {(cls, candidate): issubclass(candidate, cls) for cls in classes for candidate in candidates}


def test_answers_are_abcmeta_s(monkeypatch):
    classes = [*abc_shortcut._hierarchy(Operation), *abc_shortcut._hierarchy(Attribute)]
    others = [Block, SSAValue, list, int, type(None), builtin.IntegerType, arith.AddfOp, arith.MulfOp]
    assert Operation.__dict__["__subclasshook__"] is abc_shortcut._HOOK  # the hook is on
    with_hook = _fresh_answers(classes, others)
    with monkeypatch.context() as patched:  # the hook off: ABCMeta's own walk answers
        for base in (Operation, Attribute):
            patched.delattr(base, "__subclasshook__")
        without_hook = _fresh_answers(classes, others)
    _fresh_answers(classes, [])  # leave no answers cached by the walk
    assert with_hook == without_hook
    assert any(with_hook.values()) and not all(with_hook.values())
    assert isinstance(builtin.i64, Attribute) and not isinstance(builtin.i64, Operation)


def test_not_installed_where_abc_registries_cannot_be_read(monkeypatch):
    for base in (Operation, Attribute):
        monkeypatch.delattr(base, "__subclasshook__")
    for unreadable in (None, lambda cls: (set(), set())):
        with monkeypatch.context() as patched:
            if unreadable is None:
                patched.delattr(abc, "_get_dump")
            else:
                patched.setattr(abc, "_get_dump", unreadable)
            abc_shortcut.install()
            assert "__subclasshook__" not in Operation.__dict__ and "__subclasshook__" not in Attribute.__dict__
    abc_shortcut.install()
    assert Operation.__dict__["__subclasshook__"] is abc_shortcut._HOOK


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
