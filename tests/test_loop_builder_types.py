"""loop_builder's fast type and alloc builders make what xDSL's own constructors make.

`memref_type` builds a MemRefType with `MemRefType.new` from its parameters in xDSL's order
(shape, element type, layout, memory space): a change of that order in xDSL would build a
different (or broken) type, which these tests catch. `aligned_alloc` copies the properties of the
first alloc the IRDL constructor builds: every later one must equal `memref.AllocOp.get(element, 64, shape)`."""

from __future__ import annotations

import pytest
from xdsl.dialects import memref
from xdsl.dialects.builtin import DYNAMIC_INDEX, MemRefType, f32, f64, i64

from raster_mlir.passes.loop_builder import aligned_alloc, memref_type

SHAPES = [(), (5,), (3, 4), (DYNAMIC_INDEX,), (2, DYNAMIC_INDEX)]


@pytest.mark.parametrize("element", [f64, f32, i64])
@pytest.mark.parametrize("shape", SHAPES)
def test_memref_type_is_the_constructors_type(element, shape):
    built = memref_type(element, shape)
    expected = MemRefType(element, shape)
    assert built == expected
    assert built.parameters == expected.parameters
    assert str(built) == str(expected)
    assert built.get_shape() == shape and built.get_element_type() == element
    built.verify()
    assert memref_type(element, shape) is built  # (made once per pair)


def _alloc_fields(op: memref.AllocOp) -> tuple:
    return (
        op.name,
        dict(op.properties),
        dict(op.attributes),
        [r.type for r in op.results],
        list(op.operands),
        [len(r.blocks) for r in op.regions],
        str(op),
    )


@pytest.mark.parametrize("element", [f64, i64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 4)])
def test_aligned_alloc_is_alloc_get_with_alignment_64(element, shape):
    memref_type_ = MemRefType(element, shape)
    expected = _alloc_fields(memref.AllocOp.get(element, 64, shape))
    for _ in range(2):  # (the first call of a process builds with the IRDL constructor, later ones copy it)
        op = aligned_alloc(memref_type_)
        op.verify()
        assert _alloc_fields(op) == expected
