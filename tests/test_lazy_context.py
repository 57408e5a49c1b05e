"""make_context registers raster_mlir's dialects without loading them; a lookup loads what it needs.

Loading the nine dialects eagerly cost the first compile of a process 1.2 ms (each
non-type attribute class's `issubclass(attr, TypeAttribute)` walks TypeAttribute's
subclasses), and a compile looks up no name. Parsing still finds every op and type.
"""

from __future__ import annotations

import textwrap

import numpy as np
from xdsl.context import Context
from xdsl.parser import Parser

import raster_mlir as rm
from raster_mlir.compiler import make_context

DIALECTS = {"builtin", "func", "arith", "cf", "math", "memref", "scf", "vector", "raster"}


def test_dialects_are_registered_and_loaded_on_first_lookup():
    ctx = make_context()
    assert set(ctx.registered_dialect_names) == DIALECTS
    assert not set(ctx.loaded_dialects)
    assert ctx.get_op("raster.add").name == "raster.add"
    assert {d.name for d in ctx.loaded_dialects} == {"raster"}
    assert ctx.get_optional_op("arith.no_such_op") is None
    assert ctx.get_op("builtin.module").name == "builtin.module"
    assert make_context(every_dialect=True).get_type("tensor").name == "tensor"  # raster-opt's: builtin loaded


def test_a_module_of_every_dialect_parses():
    text = textwrap.dedent(
        """\
        func.func @f(%x: tensor<4xf64>, %m: memref<8xf64>, %i: index) -> tensor<4xf64> {
          %y = raster.neg %x : tensor<4xf64>
          %v = vector.load %m[%i] : memref<8xf64>, vector<4xf64>
          %s = memref.load %m[%i] : memref<8xf64>
          %t = math.exp %s : f64
          %u = arith.addf %s, %t : f64
          scf.for %j = %i to %i step %i {
            scf.yield
          }
          cf.br ^bb1
        ^bb1:
          func.return %y : tensor<4xf64>
        }
        """
    )
    module = Parser(make_context(), text).parse_module()
    module.verify()
    assert len(list(module.walk())) == 11


def test_a_compile_loads_no_dialect(monkeypatch):
    loaded = []
    original = Context.load_registered_dialect

    def recording(self, name):
        loaded.append(name)
        original(self, name)

    monkeypatch.setattr(Context, "load_registered_dialect", recording)
    x = np.linspace(-1.0, 1.0, 5)
    f = rm.compile(lambda v: rm.sum(rm.tanh(v) * v), x)
    assert np.isclose(f(x), np.sum(np.tanh(x) * x))
    assert loaded == []
