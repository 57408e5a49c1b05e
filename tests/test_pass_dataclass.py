"""`@pass_dataclass` makes the same pass classes as `@dataclass(frozen=True)`, with less generated code.

Twins of the same class body, one per decorator, must agree on everything xDSL
and users see: fields, construction, options parsed from and printed to a
pipeline spec, equality, hashing, repr and immutability. Every shipped pass
uses the decorator and still parses, compares and refuses assignment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from xdsl.passes import ModulePass

from raster_mlir.passes import registry
from raster_mlir.passes.pass_dataclass import pass_dataclass


def twins(body: dict) -> tuple[type, type]:
    """The same class made by each decorator."""

    def make(decorate):
        namespace = {"name": "twin-pass", "apply": lambda self, ctx, op: None, **body}
        namespace["__qualname__"] = "TwinPass"
        return decorate(type("TwinPass", (ModulePass,), dict(namespace)))

    return make(dataclass(frozen=True)), make(pass_dataclass)


BODIES = {
    "no options": {},
    "one option": {"__annotations__": {"depth": "int"}, "depth": 8},
    "options": {
        "__annotations__": {"depth": "int", "flag": "bool", "label": "str", "hidden": "int"},
        "depth": 8,
        "flag": True,
        "label": "x",
        "hidden": field(default=3, compare=False, repr=False),
    },
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_twins_agree(body):
    reference, ours = twins(body)
    assert [(f.name, f.default) for f in dataclasses.fields(ours)] == [(f.name, f.default) for f in dataclasses.fields(reference)]
    names = [f.name for f in dataclasses.fields(ours)]
    variants = [{}] + [{n: v} for n, v in zip(names, (2, False, "y", 4))]
    for kwargs in variants:
        a, b = reference(**kwargs), ours(**kwargs)
        assert repr(a) == repr(b)
        assert str(a.spec(include_default=True)) == str(b.spec(include_default=True))
        assert hash(a) == hash(b)
        for other in variants:
            assert (a == reference(**other)) == (b == ours(**other))
            assert (hash(a) == hash(reference(**other))) == (hash(b) == hash(ours(**other)))
        assert ours.from_spec(b.spec()) == b
        assert b != a  # another class: not equal, as two dataclasses of different classes
        with pytest.raises(FrozenInstanceError):
            b.depth = 1
        with pytest.raises(FrozenInstanceError):
            del b.name


def test_a_subclass_made_with_dataclass_stays_frozen_and_keeps_its_fields():
    _, base = twins(BODIES["one option"])

    @dataclass(frozen=True)
    class Sub(base):
        extra: int = 1

    s = Sub(depth=2, extra=5)
    assert (s.depth, s.extra) == (2, 5) and s == Sub(depth=2, extra=5) and s != Sub(depth=2)
    with pytest.raises(FrozenInstanceError):
        s.extra = 3


@pytest.mark.parametrize("name", sorted(registry._SHIPPED))
def test_every_shipped_pass_parses_compares_and_is_frozen(name):
    cls = registry._SHIPPED[name]()
    assert "__setattr__" in cls.__dict__ and cls.__eq__.__module__ == "raster_mlir.passes.pass_dataclass"
    try:
        (p,) = registry.parse_pipeline(name).passes
    except registry.CompileError:  # a pass with a required option
        return
    assert p == cls() and hash(p) == hash(cls()) and repr(p).startswith(f"{cls.__qualname__}(")
    (again,) = registry.parse_pipeline(str(p.spec(include_default=True))).passes
    assert again == p
    with pytest.raises(FrozenInstanceError):
        p.anything = 1
