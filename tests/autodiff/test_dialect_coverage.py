"""Every op of the raster dialect, enumerated from the dialect itself, has both AD rules or a documented reason.

`raster_rules.WITHOUT_RULES` gives, by op name, why an op has no reverse or
no tangent rule (comparisons and constants are marked non-differentiable,
AD ops are expanded before anything holding them is differentiated,
terminators belong to their region op, growable tapes refuse a second
differentiation with a GradientError, loop-level tape ops come after AD).
A new op lands with both rules or with a reason there, or these tests fail.

The ops whose tangents test_op_tangents does not reach (loops, branches and
the traced-integer index ops) get the random-direction check
<jvp(f)(x; v), w> == <v, vjp(f)(x; w)> here (f64, and against finite
differences), through programs that use every one of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_op_gradients import CASES
from test_op_tangents import check_tangents

import raster_mlir as rm
from raster_mlir.dialects import raster as R
from raster_mlir.dialects.raster_rules import DEFAULT_RULES, WITHOUT_RULES

DIALECT_OPS = list(R.Raster.operations)


def _has_both_rules(op_cls) -> bool:
    return DEFAULT_RULES.rule_for(op_cls) is not None and DEFAULT_RULES.tangent_rule_for(op_cls) is not None


@pytest.mark.parametrize("op_cls", DIALECT_OPS, ids=lambda c: c.name)
def test_every_dialect_op_has_both_rules_or_a_reason(op_cls):
    if _has_both_rules(op_cls):
        assert op_cls.name not in WITHOUT_RULES, f"{op_cls.name} has both rules: drop its entry in WITHOUT_RULES"
    else:
        assert WITHOUT_RULES.get(op_cls.name), f"{op_cls.name} lacks a reverse or tangent rule and no reason is given"
    if DEFAULT_RULES.is_nondifferentiable(op_cls):
        assert "non-differentiable" in WITHOUT_RULES[op_cls.name]


def test_reasons_name_ops_of_the_dialect():
    assert set(WITHOUT_RULES) <= {op.name for op in DIALECT_OPS}


def loops_and_branches(x, w):
    def body(i, c):
        row = rm.at_add(c, i % 3, rm.sin(c[(i + 1) % 3]) * w[i % 3])
        return rm.at_set(row, 0, row[0] * 0.5 + i * 0.1)  # i * 0.1: raster.convert of the traced index

    y = rm.fori_loop(0, 5, body, x)
    c, ys = rm.scan(lambda c, r: (c * 0.9 + r * w, c * r), y, rm.stack([x, w, x * w]))
    z = rm.while_loop(lambda s: 2.0 > s[1], lambda s: (s[0] * w + 0.1, s[1] + 0.7), (c, 0.0))[0]
    return rm.cond(rm.sum(z) > 0.0, lambda a: a * a, lambda a: -a, z) + rm.sum(ys, axis=0)


LOOP_OPS = {"raster.for", "raster.scan", "raster.while", "raster.if", "raster.convert", "raster.dynamic_index",
            "raster.dynamic_update", "raster.dynamic_update_add"}  # fmt: skip


def test_every_op_with_rules_has_a_tangent_check():
    covered = {op.name for case in CASES for op in case.ops} | LOOP_OPS
    assert {op.name for op in DIALECT_OPS if _has_both_rules(op)} - covered == set()


@pytest.mark.parametrize("seed", [0, 1])
def test_loop_and_index_op_tangents_f64(seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    traced = rm.compile(loops_and_branches, x, w).ir("traced")
    assert all(f"{name} " in traced or f"{name}(" in traced for name in LOOP_OPS), traced  # it uses them all
    check_tangents(loops_and_branches, [x, w], rng)
