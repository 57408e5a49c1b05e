"""The pass tooling: registry, pipeline strings with options, IR dumps, verification, timing.

Covers `raster_mlir.passes.registry` (names, `register_pass`, entry-point
plug-ins, `parse_pipeline` errors) and what `rm.compile` / `StagedPipeline`
do between passes (print_ir_after_all / before / after, dump_dir,
verify_each, pass_seconds, timing_report). The driver has its own tests in
test_cli.py; the inline pass has filecheck tests in tests/filecheck/inline/.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest
from xdsl.dialects import func, scf
from xdsl.dialects.builtin import UnitAttr
from xdsl.parser import Parser
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.compiler import DEFAULT_PIPELINE, DumpOptions, StagedPipeline, make_context, print_module
from raster_mlir.passes import registry

from helpers import InsertBadFill

OWN_PASSES = {
    "inline": "raster_mlir.passes.inline",
    "autodiff": "raster_mlir.passes.autodiff",
    "lower-to-loops": "raster_mlir.passes.lower_to_loops",
    "fuse-loops": "raster_mlir.passes.fuse_loops",
    "canonicalize": "raster_mlir.passes.canonicalize",  # xDSL's, bounded
    "cse": "raster_mlir.passes.cse",  # xDSL's, cheaper keys
    "dce": "raster_mlir.passes.dce",  # xDSL's, traits asked per op class
}
XDSL_PASSES = ("licm", "scf-for-loop-unroll", "convert-scf-to-cf")

HEADER = re.compile(r"^// -----// IR Dump (Before|After) (\S+) //----- //$", re.M)


@pytest.fixture
def passes(monkeypatch):
    """A private copy of the registry, so passes registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    return registry


def relu_of_sum(x, y):
    return nn.relu(x + y)


def loss(x, y):
    return rm.sum(nn.relu(x * y))


def parse(text: str):
    return Parser(make_context(), text).parse_module()


def pass_names(spec: str) -> list[str]:
    return [p.name for p in registry.parse_pipeline(spec).passes]


# --- registry ------------------------------------------------------------------------------


def test_registry_has_our_passes_and_the_reused_xdsl_ones():
    available = registry.available_passes()
    for name, module in OWN_PASSES.items():
        cls = available[name]()
        assert issubclass(cls, ModulePass) and cls.name == name and cls.__module__ == module
    for name in XDSL_PASSES:
        cls = available[name]()
        assert issubclass(cls, ModulePass) and cls.name == name and cls.__module__.startswith("xdsl.transforms.")


def required_options(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # fmt: skip


def test_every_registered_pass_parses_as_a_one_pass_pipeline():
    available = registry.available_passes()
    assert len(available) > 100  # every xDSL transform, not a hand-picked few
    for name, load in available.items():
        cls = load()
        assert issubclass(cls, ModulePass) and cls.name == name
        if required_options(cls):  # e.g. apply-individual-rewrite needs matched_operation_index
            with pytest.raises(rm.CompileError, match=f"{name} requires argument"):
                registry.parse_pipeline(name)
            continue
        (p,) = registry.parse_pipeline(name).passes
        assert p.name == name


@pytest.mark.parametrize("name", ["scf-for-loop-unroll", "scf-for-loop-flatten", "convert-scf-to-cf", "licm"])
def test_xdsl_transforms_run_by_name_in_a_pipeline(name):
    x = np.arange(12.0).reshape(3, 4)
    c = rm.compile(relu_of_sum, x, x, pipeline=f"{DEFAULT_PIPELINE},{name}")
    assert c.stages[-1] == f"after:{name}"
    np.testing.assert_array_equal(c(x, -x / 2), np.maximum(x / 2, 0))


@pytest.mark.parametrize(
    "spec, named",
    [
        ("inline,no-such-pass,cse", "no-such-pass"),
        ("fuse-loops{no-such-option=2}", "no_such_option"),
        ("fuse-loops{max-depth=deep}", "deep"),
    ],
)
def test_unknown_pass_or_bad_option_is_a_compile_error(spec, named):
    x = np.ones(3)
    with pytest.raises(rm.CompileError) as info:
        rm.compile(relu_of_sum, x, x, pipeline=spec)
    message = str(info.value)
    assert spec in message and named in message
    assert "known passes: " in message and "fuse-loops" in message


@pytest.mark.parametrize("spec", ["fuse-loops{max-depth=1", "inline,,cse", "inline{"])
def test_malformed_pipeline_spec_is_a_compile_error(spec):
    with pytest.raises(rm.CompileError, match="bad pass pipeline"):
        registry.parse_pipeline(spec)


def test_register_pass_needs_a_name(passes):
    class Nameless(ModulePass):
        def apply(self, ctx, op):
            pass

    with pytest.raises(rm.CompileError, match="Nameless needs a class attribute `name`"):
        passes.register_pass(Nameless)

    class EmptyName(Nameless):
        name = ""

    with pytest.raises(rm.CompileError, match="EmptyName"):
        passes.register_pass(EmptyName)
    assert "" not in passes.available_passes()


def test_register_pass_is_a_decorator_and_the_pass_runs_with_its_options(passes):
    @passes.register_pass
    @dataclass(frozen=True)
    class TagFunctions(ModulePass):
        name = "tag-functions"
        tag: str = "tagged"

        def apply(self, ctx, op):
            for f in op.ops:
                if isinstance(f, func.FuncOp):
                    f.attributes[f"test.{self.tag}"] = UnitAttr()

    assert TagFunctions.name == "tag-functions"  # the decorator returns the class itself
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, pipeline="inline,tag-functions{tag=marked},cse")
    assert c.stages == ["traced", "after:inline", "after:tag-functions", "after:cse"]
    assert "test.marked" in c.ir("after:tag-functions")
    assert "test.marked" not in c.ir("after:inline")
    np.testing.assert_array_equal(c(x, -2 * x), np.zeros(3))


def test_register_pass_replaces_a_pass_of_the_same_name(passes):
    @passes.register_pass
    @dataclass(frozen=True)
    class NoCSE(ModulePass):
        name = "cse"

        def apply(self, ctx, op):
            pass

    x = np.ones(3)
    c = rm.compile(lambda a: (a + a) * (a + a), x, pipeline="cse")
    assert c.ir("after:cse").count("raster.add") == 2  # the real cse would merge them


def write_plugin(root, module: str, dist: str, pass_name: str, class_name: str) -> None:
    """An installed distribution as pip writes it: a module and a dist-info with an entry point."""
    (root / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            from dataclasses import dataclass
            from xdsl.dialects import func
            from xdsl.dialects.builtin import UnitAttr
            from xdsl.passes import ModulePass

            @dataclass(frozen=True)
            class {class_name}(ModulePass):
                name = "{pass_name}"

                def apply(self, ctx, op):
                    for f in op.ops:
                        if isinstance(f, func.FuncOp):
                            f.attributes["plugin.seen"] = UnitAttr()
            """
        )
    )
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[raster_mlir.passes]\n{pass_name} = {module}:{class_name}\n")


def test_entry_point_plugin_is_found_and_runs_in_a_pipeline(passes, tmp_path, monkeypatch):
    module = "raster_plugin_mark_functions"
    write_plugin(tmp_path, module, "raster-plugin-mark-functions", "mark-functions", "MarkFunctions")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "mark-functions" in passes.available_passes()
        passes.parse_pipeline("inline,cse")
        assert module not in sys.modules  # imported only when a pipeline uses the pass
        x = np.ones(3)
        c = rm.compile(relu_of_sum, x, x, pipeline="inline,mark-functions,lower-to-loops")
        assert "after:mark-functions" in c.stages
        assert "plugin.seen" in c.ir("after:mark-functions")
        assert "plugin.seen" in c.ir()  # kept through lowering
        np.testing.assert_array_equal(c(x, x), 2 * x)
    finally:
        sys.modules.pop(module, None)


def test_entry_point_does_not_shadow_a_builtin_pass(passes, tmp_path, monkeypatch):
    module = "raster_plugin_fake_inline"
    write_plugin(tmp_path, module, "raster-plugin-fake-inline", "inline", "FakeInline")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert passes.available_passes()["inline"]().__module__ == "raster_mlir.passes.inline"
    finally:
        sys.modules.pop(module, None)


# --- pipeline strings and options ----------------------------------------------------------


def test_default_pipeline_runs_every_stage_of_the_design_in_order():
    design = ["inline", "autodiff", "inline", "canonicalize", "cse", "dce", "lower-to-loops", "fuse-loops"]
    names = iter(pass_names(DEFAULT_PIPELINE))
    assert all(name in names for name in design)  # in this order; passes may be added between them


def labels(spec: str) -> list[str]:
    """Stage labels of a pipeline's passes: the name, with #n from a pass's second run on."""
    seen: dict[str, int] = {}
    out = []
    for name in pass_names(spec):
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


@pytest.mark.parametrize("spec", ["fuse-loops{max-depth=1}", "fuse-loops{max_depth=1}"])
def test_option_spelled_with_dash_or_underscore(spec):
    (p,) = registry.parse_pipeline(spec).passes
    assert p.max_depth == 1
    # xDSL prints options back with the field's name.
    assert str(p.pipeline_pass_spec()) == "fuse-loops{max_depth=1}"


def _loops(block) -> list[scf.ForOp]:
    return [op for op in block.ops if isinstance(op, scf.ForOp)]


def test_fuse_loops_max_depth_1_fuses_outer_loops_only():
    """dense + relu on a batch: two (row, unit) loop nests. Depth 1 merges the row loops;
    the unit loops inside stay apart, so the pre-activation buffer stays too."""
    rng = np.random.default_rng(0)
    W, x, b = rng.normal(size=(8, 4)), rng.normal(size=(2, 4)), rng.normal(size=8)

    def layer(W, x, b):
        return nn.relu(nn.dense(W, x, b))

    shallow = rm.compile(layer, W, x, b, pipeline="lower-to-loops,fuse-loops{max-depth=1}")
    deep = rm.compile(layer, W, x, b, pipeline="lower-to-loops,fuse-loops")
    unfused = rm.compile(layer, W, x, b, pipeline="lower-to-loops")

    def nest(c):
        (f,) = [op for op in c.module.ops if isinstance(op, func.FuncOp)]
        outer = _loops(f.body.block)
        return len(outer), [len(_loops(o.body.block)) for o in outer]

    assert nest(unfused) == (2, [1, 1])
    assert nest(shallow) == (1, [2])  # rows fused, units not
    assert nest(deep) == (1, [1])  # both levels fused
    assert "memref.alloc" in shallow.ir() and "memref.alloc" not in deep.ir()
    assert "loops_fused = 1 : i64" in shallow.ir() and "loops_fused = 2 : i64" in deep.ir()
    expected = np.maximum(x @ W.T + b, 0.0)
    for c in (shallow, deep, unfused):
        np.testing.assert_allclose(c(W, x, b), expected, rtol=1e-12)


# --- printing and dumping IR between passes ------------------------------------------------


def test_print_ir_after_all_prints_one_dump_per_pass_in_order(capsys):
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, print_ir_after_all=True)
    out = capsys.readouterr().out
    headers = HEADER.findall(out)
    assert headers == [("After", label) for label in labels(DEFAULT_PIPELINE)]  # inline, ..., inline#2, ...
    assert [f"after:{label}" for _, label in headers] == c.stages[1:]  # one naming in headers and stages
    # Each dump is the IR the stage recorded.
    bodies = HEADER.split(out)[3::3]
    assert [body.strip() for body in bodies] == [c.ir(stage).strip() for stage in c.stages[1:]]


def test_no_dumps_unless_asked(capsys):
    x = np.ones(3)
    rm.compile(relu_of_sum, x, x)
    assert capsys.readouterr().out == ""


def test_print_ir_before_one_pass(capsys):
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, print_ir_before=["lower-to-loops"])
    out = capsys.readouterr().out
    assert HEADER.findall(out) == [("Before", "lower-to-loops")]
    dumped = out.split("\n", 1)[1]
    received = c.stages[c.stages.index("after:lower-to-loops") - 1]
    assert dumped.strip() == c.ir(received).strip()  # the tensor-level IR lower-to-loops receives
    assert "tensor<3xf64>" in dumped and "memref" not in dumped


def test_print_ir_after_a_repeated_pass_prints_each_run(capsys):
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, print_ir_after=["inline", "fuse-loops"])
    out = capsys.readouterr().out
    assert HEADER.findall(out) == [("After", "inline"), ("After", "inline#2"), ("After", "fuse-loops")]
    assert c.ir().strip() in out


def test_print_ir_before_one_run_of_a_repeated_pass_by_its_label(capsys):
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, print_ir_before=["inline#2"])
    out = capsys.readouterr().out
    assert HEADER.findall(out) == [("Before", "inline#2")]
    assert out.split("\n", 1)[1].strip() == c.ir("after:autodiff").strip()


def test_print_ir_before_all_and_generic_form_with_locations(capsys):
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, pipeline="inline,cse", print_ir_before_all=True,
                   print_op_generic=True, print_debuginfo=True)  # fmt: skip
    out = capsys.readouterr().out
    assert HEADER.findall(out) == [("Before", "inline"), ("Before", "cse")]
    assert '"raster.add"(' in out and "raster.add %" not in out  # generic op syntax
    assert re.search(r'loc\(".*test_pass_tooling.py":\d+:\d+\)', out)  # the user's source lines
    assert '"raster.add"(' not in c.ir("after:cse")  # the recorded stages keep the custom syntax


def test_print_ir_before_given_one_name_as_a_string(capsys):
    x = np.ones(3)
    rm.compile(relu_of_sum, x, x, print_ir_before="lower-to-loops")  # one name, not its letters
    assert HEADER.findall(capsys.readouterr().out) == [("Before", "lower-to-loops")]


def test_dump_dir_writes_the_ir_before_and_after_every_pass_in_order(tmp_path):
    x = np.ones(3)
    c = rm.compile(rm.value_and_grad(loss), x, x, dump_dir=tmp_path / "ir")
    files = sorted(os.listdir(tmp_path / "ir"))
    passes = labels(DEFAULT_PIPELINE)
    assert len(files) == 1 + 2 * len(passes)
    assert files[0] == "00_traced.mlir"
    k = passes.index("inline#2")  # the second run of inline, named as its stage
    assert files[1 + 2 * k : 3 + 2 * k] == [f"{1 + 2 * k:02d}_before_inline#2.mlir", f"{2 + 2 * k:02d}_after_inline#2.mlir"]
    for i, label in enumerate(passes):
        before = (tmp_path / "ir" / files[1 + 2 * i]).read_text()
        after = (tmp_path / "ir" / files[2 + 2 * i]).read_text()
        assert before == c.ir(c.stages[i]) and after == c.ir(f"after:{label}")
        module = parse(after)
        module.verify()
        assert print_module(module) == after


# --- verification after each pass ----------------------------------------------------------


@dataclass(frozen=True)
class RaiseVerifyException(ModulePass):
    name = "raise-verify-exception"

    def apply(self, ctx, op):
        raise VerifyException("operand 0 does not dominate its use")


def test_verification_after_each_pass_names_the_pass(passes):
    passes.register_pass(InsertBadFill)
    x = np.ones(3)
    with pytest.raises(rm.CompileError) as info:
        rm.compile(relu_of_sum, x, x, pipeline="inline,insert-bad-fill,cse")
    assert "after pass insert-bad-fill" in str(info.value)
    assert "value type f32 differs from the result element type f64" in str(info.value)


def test_verify_each_false_lets_invalid_ir_through(passes):
    passes.register_pass(InsertBadFill)
    x = np.ones(3)
    c = rm.compile(relu_of_sum, x, x, pipeline="inline,insert-bad-fill,inline", verify_each=False)
    assert c.stages[-1] == "after:inline#2"  # the pipeline went on after the bad pass
    assert "raster.fill 1.000000e+00 : f32 : tensor<f64>" in c.ir()
    with pytest.raises(VerifyException):
        parse(c.ir()).verify()


def test_verify_exception_inside_a_pass_becomes_a_compile_error(passes):
    passes.register_pass(RaiseVerifyException)
    x = np.ones(3)
    with pytest.raises(rm.CompileError, match="pass raise-verify-exception produced invalid IR: operand 0"):
        rm.compile(relu_of_sum, x, x, pipeline="inline,raise-verify-exception", verify_each=False)


# --- timing --------------------------------------------------------------------------------


def test_pass_seconds_has_one_entry_per_pass_run(monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")  # a cache hit runs no pass
    x = np.ones(3)
    c = rm.compile(rm.grad(loss), x, x)
    assert list(c.pass_seconds) == [stage.removeprefix("after:") for stage in c.stages[1:]]
    assert list(c.pass_seconds) == labels(DEFAULT_PIPELINE)
    assert "inline#2" in c.pass_seconds
    assert all(isinstance(s, float) and s >= 0.0 for s in c.pass_seconds.values())


def test_timing_report_lists_every_pass_and_the_total():
    module = parse(
        "func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {\n"
        "  %y = raster.exp %x : tensor<4xf64>\n"
        "  func.return %y : tensor<4xf64>\n"
        "}\n"
    )
    pipeline = StagedPipeline("inline,cse,inline", DumpOptions())
    pipeline.run(module, first_stage="input")
    assert pipeline.stage_names == ["input", "after:inline", "after:cse", "after:inline#2"]
    assert pipeline.stages == {}  # nothing printed unless asked
    report = pipeline.timing_report().splitlines()
    assert "Pass execution timing report" in report[1]
    rows = [line.split("%  ") for line in report[4:]]
    assert [row[-1] for row in rows] == ["inline", "verification (3x)", "cse", "inline#2", "Total"]
    total = sum(pipeline.timer.seconds.values())
    assert sum(pipeline.pass_seconds.values()) <= total
    assert float(rows[-1][0].split()[0]) == pytest.approx(total, abs=1e-4)
    assert sum(float(row[0].split()[1]) for row in rows[:-1]) == pytest.approx(100.0, abs=0.5)


def test_recorded_pipeline_keeps_every_stage_text():
    module = parse(
        "func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {\n"
        "  %y = raster.exp %x : tensor<4xf64>\n"
        "  func.return %y : tensor<4xf64>\n"
        "}\n"
    )
    pipeline = StagedPipeline("inline,cse", DumpOptions(), record=True)
    pipeline.run(module, first_stage="input")
    assert list(pipeline.stages) == pipeline.stage_names == ["input", "after:inline", "after:cse"]
    assert "IR printing (3x)" in pipeline.timing_report()


# --- inline (more in tests/filecheck/inline/) ----------------------------------------------


def test_inline_through_rm_jit_calls():
    @rm.jit
    def inner(a):
        return rm.exp(a)

    @rm.jit
    def middle(a):
        return nn.relu(inner(a))

    def outer(a):
        return middle(a) + a

    x = np.linspace(-1.0, 1.0, 5)
    c = rm.compile(outer, x, pipeline="inline")
    assert c.ir("traced").count("func.call") == 2 and "func.call" not in c.ir()
    assert c.ir().count("func.func") == 1  # private callees erased
    np.testing.assert_allclose(c(x), np.maximum(np.exp(x), 0.0) + x, rtol=1e-14)


def test_inline_leaves_calls_to_declarations():
    module = parse(
        "func.func private @ext(tensor<3xf64>) -> tensor<3xf64>\n"
        "func.func @f(%x: tensor<3xf64>) -> tensor<3xf64> {\n"
        "  %y = func.call @ext(%x) : (tensor<3xf64>) -> tensor<3xf64>\n"
        "  func.return %y : tensor<3xf64>\n"
        "}\n"
    )
    StagedPipeline("inline").run(module)
    text = print_module(module)
    assert "func.call @ext" in text and "func.func private @ext" in text
