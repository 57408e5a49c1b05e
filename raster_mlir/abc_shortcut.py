"""Subclass checks against xDSL's op and attribute classes answered from the MRO, without a walk.

xDSL's `Operation` and `Attribute` are abstract base classes, so every op and attribute
class is one too, and `isinstance(x, SomeOp)` goes through `ABCMeta.__subclasscheck__`.
When the answer is no, ABCMeta cannot stop at the MRO: a subclass of `SomeOp` might have
registered `type(x)` as a virtual subclass, so it asks every subclass of `SomeOp`,
recursively, and caches a "no" in each (a weak reference and a callback per entry). For
`isinstance(block_argument, Operation)` that is all 254 op classes raster_mlir loads. The
first compile of a process made thousands of such entries (a few ms, and weak references that
the collection after the compile walks), each pair of a class and an ABC once per process;
docs/compile-time.md (the `abc_shortcut` paragraph) has the measured counts, with and without the hook.

Nothing registers virtual subclasses of op or attribute classes (xDSL and raster_mlir
define subclasses), so the MRO is the whole answer. `install()` gives `Operation` and
`Attribute` a `__subclasshook__` (the hook ABCMeta consults first) that answers from the
MRO while no class of the two hierarchies has a registered virtual subclass. It checks that
by a scan of the hierarchies (about 0.3 ms) at its first use and again whenever ABCMeta's
cache token has changed since the last scan (any `register()` in the process: numpy's
imports make a few); once a registration is found it answers NotImplemented for good, and
ABCMeta does its usual walk. Either way the answers are ABCMeta's. A class that defines its
own `__subclasshook__` keeps it.
"""

from __future__ import annotations

import abc

from xdsl.ir import Attribute, Operation

_scanned_at: object = None  # ABCMeta's cache token at the last scan that found no registration
_registered = False  # a scan found a registered virtual subclass: the hook steps aside for good


def _subclass_from_mro(cls, subclass):
    if abc.get_cache_token() != _scanned_at and not _still_unregistered():
        return NotImplemented  # a virtual subclass is registered somewhere: ABCMeta's own walk
    return cls in subclass.__mro__


def _still_unregistered() -> bool:
    """Scan both hierarchies for registered virtual subclasses (after the token changed)."""
    global _scanned_at, _registered
    if _registered:
        return False
    token = abc.get_cache_token()  # read first: a registration during the scan changes it again
    for base in (Operation, Attribute):
        for cls in _hierarchy(base):
            if isinstance(cls, abc.ABCMeta) and abc._get_dump(cls)[0]:  # its registry of virtual subclasses
                _registered = True
                return False
    _scanned_at = token
    return True


def _hierarchy(base: type) -> set[type]:
    classes, stack = {base}, [base]
    while stack:
        for sub in type.__subclasses__(stack.pop()):
            if sub not in classes:
                classes.add(sub)
                stack.append(sub)
    return classes


def _can_read_registries() -> bool:
    """Whether `abc._get_dump` exists and gives (registry, cache, negative cache, version) as C `_abc` does.

    The scan reads each class's registry of virtual subclasses through it; the pure-Python `_py_abc`
    (and other Pythons) have no such function, and without the scan the hook could not step aside.
    """
    get_dump = getattr(abc, "_get_dump", None)
    if get_dump is None:
        return False
    try:
        dump = get_dump(Operation)
    except Exception:  # noqa: BLE001 (any failure: do not rely on it)
        return False
    return isinstance(dump, tuple) and len(dump) == 4 and all(isinstance(part, set) for part in dump[:3])


def install() -> None:
    """Give Operation and Attribute the MRO hook (idempotent; checked lazily, see the module docstring).

    Patches nothing where the registries cannot be read (`_can_read_registries`): ABCMeta's own walk.
    """
    if not _can_read_registries():
        return
    for base in (Operation, Attribute):
        if "__subclasshook__" not in base.__dict__:
            base.__subclasshook__ = _HOOK


_HOOK = classmethod(_subclass_from_mro)
