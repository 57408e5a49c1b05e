"""`PerClass` (raster_mlir/per_class.py): each class's answer is computed once, on its first lookup."""

from __future__ import annotations

from raster_mlir.per_class import PerClass


def test_each_class_is_computed_once_on_first_lookup():
    computed = []
    names = PerClass(lambda cls: computed.append(cls) or cls.__name__)
    assert not names and computed == []
    assert [names[int], names[str], names[int], names[str]] == ["int", "str", "int", "str"]
    assert computed == [int, str]
    assert dict(names) == {int: "int", str: "str"}
