"""The worked examples of docs/writing-a-pass.md, end to end.

Loads docs/example_passes/*.py by path and registers them; runs the
walk-through's pass (fold-add-of-neg) in pipelines from Python (bit-for-bit
the same numbers, the IR changed as the doc says, the options matter), the
29-line peephole (div-by-power-of-two) and the loop-level pass
(unroll-small-loops); runs the examples' lit tests through `raster-opt` with
the passes found through installed entry points; and checks that the doc
shows the files' code, only pipelines that parse, and Python that runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir.compiler import DEFAULT_PIPELINE, StagedPipeline, make_context, print_module
from raster_mlir.passes import registry

from helpers import mlp_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "example_passes")
DOC = os.path.join(ROOT, "docs", "writing-a-pass.md")
EXAMPLE_FILES = {
    "fold_add_of_neg": "FoldAddOfNegPass",
    "div_by_power_of_two": "DivByPowerOfTwoPass",
    "unroll_small_loops": "UnrollSmallLoopsPass",
}

PIPELINE = "inline,autodiff,inline,canonicalize,fold-add-of-neg,cse,dce,lower-to-loops,fuse-loops"
WITHOUT = PIPELINE.replace("fold-add-of-neg,", "")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


examples = {name: load(name) for name in EXAMPLE_FILES}
fold = examples["fold_add_of_neg"]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    for name, cls in EXAMPLE_FILES.items():
        registry.register_pass(getattr(examples[name], cls))


def loss(a, b):
    d = a - b
    return rm.sum(d * d + a * b)


def args_of(n=5, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype)


ADD_OF_NEG = re.compile(r"^\s*%\w+ = raster\.add (%\w+), (%\w+) ", re.M)
NEG = re.compile(r"^\s*(%\w+) = raster\.neg ", re.M)


def adds_of_neg(ir: str) -> int:
    negs = set(NEG.findall(ir))
    return sum(lhs in negs or rhs in negs for lhs, rhs in ADD_OF_NEG.findall(ir))


def parse(text: str):
    from xdsl.parser import Parser

    return Parser(make_context(), textwrap.dedent(text)).parse_module()


def run_pass_on(text: str, spec: str) -> str:
    module = parse(text)
    StagedPipeline(spec).run(module)
    return print_module(module)


def assert_same_bits(got, want):
    for g, w in zip(got, want):
        g, w = np.atleast_1d(np.asarray(g)), np.atleast_1d(np.asarray(w))
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8))


# --- the walk-through's pass ---------------------------------------------------------------------


def test_pass_is_a_frozen_dataclass_with_name_and_options():
    cls = fold.FoldAddOfNegPass
    assert cls.name == "fold-add-of-neg"
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert [(f.name, f.default) for f in dataclasses.fields(cls)] == [("commute", True), ("max_rewrites", 0)]
    (p,) = registry.parse_pipeline("fold-add-of-neg{commute=false max-rewrites=100}").passes
    assert p == cls(commute=False, max_rewrites=100)
    assert "Before" in fold.__doc__ and "After" in fold.__doc__


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_bit_for_bit_and_additions_of_negations_gone(dtype):
    args = args_of(dtype=dtype)
    c = rm.compile(rm.value_and_grad(loss), *args, pipeline=PIPELINE)
    plain = rm.compile(rm.value_and_grad(loss), *args, pipeline=WITHOUT)
    before, after = c.ir("after:canonicalize"), c.ir("after:fold-add-of-neg")
    assert adds_of_neg(before) == 1 and adds_of_neg(after) == 0
    assert after.count("raster.sub") == before.count("raster.sub") + 1
    assert "raster.neg" not in after and "raster.neg" in plain.ir("after:dce")
    assert c.ir().count("arith.negf") < plain.ir().count("arith.negf")  # one op fewer per element
    (value, grads), (want, want_grads) = c(*args), plain(*args)
    assert_same_bits([value, *grads], [want, *want_grads])
    a, b = args
    np.testing.assert_allclose(grads[1], a - 2 * (a - b), rtol=1e-6 if dtype == np.float32 else 1e-14)


SPECIAL = np.array([-0.0, 0.0, 1.5, -2.0, np.inf, -np.inf, np.nan])


def test_exact_on_special_values_and_broadcasting():
    x = SPECIAL
    y = np.stack([SPECIAL, SPECIAL[::-1]])
    f = lambda x, y: (-x) + y + x + (-y)  # noqa: E731 - both sides, with broadcasting
    c = rm.compile(f, x, y, pipeline="fold-add-of-neg,lower-to-loops")
    plain = rm.compile(f, x, y, pipeline="lower-to-loops")
    assert "raster.neg" not in re.sub(r"%\w+ = raster\.neg[^\n]*\n", "", c.ir("after:fold-add-of-neg"))
    assert adds_of_neg(c.ir("after:fold-add-of-neg")) == 0
    assert_same_bits([c(x, y)], [plain(x, y)])


def test_commute_option():
    text = """
        func.func @f(%x: tensor<3xf64>, %y: tensor<3xf64>) -> (tensor<3xf64>, tensor<3xf64>) {
          %n = raster.neg %x : tensor<3xf64>
          %a = raster.add %n, %y : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
          %b = raster.add %y, %n : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
          func.return %a, %b : tensor<3xf64>, tensor<3xf64>
        }
        """
    both = run_pass_on(text, "fold-add-of-neg")
    assert both.count("raster.sub %y, %x") == 2 and "raster.add" not in both
    one = run_pass_on(text, "fold-add-of-neg{commute=false}")
    assert "%a = raster.add %n, %y" in one and "%b = raster.sub %y, %x" in one


def test_the_bound_stops_a_rewrite_that_does_not_converge():
    text = """
        func.func @f(%x: tensor<3xf64>, %y: tensor<3xf64>) -> tensor<3xf64> {
          %n = raster.neg %x : tensor<3xf64>
          %a = raster.add %y, %n : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
          %m = raster.neg %a : tensor<3xf64>
          %b = raster.add %y, %m : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
          func.return %b : tensor<3xf64>
        }
        """
    assert run_pass_on(text, "fold-add-of-neg{max-rewrites=2}").count("raster.sub") == 2
    with pytest.raises(rm.CompileError, match="fold-add-of-neg: the greedy rewrite did not converge after 1 rewrites"):
        run_pass_on(text, "fold-add-of-neg{max-rewrites=1}")


# --- the peephole and the loop-level pass ---------------------------------------------------------


def test_the_peephole_is_at_most_30_lines():
    with open(os.path.join(EXAMPLES, "div_by_power_of_two.py")) as f:
        assert len(f.read().splitlines()) <= 30


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_division_by_a_power_of_two_is_a_multiplication_bit_for_bit(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([*SPECIAL, tiny, 3 * tiny, np.finfo(dtype).max], dtype=dtype)
    for divisor in (2.0, 0.25, -8.0, 2.0**-100, 2.0**-130, 3.0):
        f = lambda x: x / divisor  # noqa: E731
        c = rm.compile(f, x, pipeline="div-by-power-of-two,lower-to-loops")
        plain = rm.compile(f, x, pipeline="lower-to-loops")
        rewritten = "raster.div" not in c.ir("after:div-by-power-of-two")
        overflows = dtype == np.float32 and divisor == 2.0**-130  # 1/c = 2^130 is not an f32
        assert rewritten == (divisor != 3.0 and not overflows)
        assert_same_bits([c(x)], [plain(x)])


def test_unroll_small_loops_keeps_the_numbers_and_removes_the_small_loops():
    rng = np.random.default_rng(2)
    args = (rng.normal(size=(16, 8)), rng.normal(size=16), rng.normal(size=(3, 16)), rng.normal(size=3),
            rng.normal(size=(2, 8)), np.eye(3)[[1, 0]])  # fmt: skip
    unrolled = rm.compile(rm.value_and_grad(mlp_loss), *args, pipeline=DEFAULT_PIPELINE + ",unroll-small-loops")
    plain = rm.compile(rm.value_and_grad(mlp_loss), *args)
    assert unrolled.ir().count("scf.for") < plain.ir().count("scf.for")
    (value, grads), (want, want_grads) = unrolled(*args), plain(*args)
    np.testing.assert_allclose(value, want, rtol=1e-14)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


# --- from the command line and lit, found through an installed entry point -----------------------


def install_entry_points(site) -> dict:
    """A dist-info as pip writes it for a package declaring the example passes; env for subprocesses.

    The example folder is copied into `site` (and used from there), so lit's Output/ and
    test-times file and Python's __pycache__ land in the temporary directory, not in docs/.
    """
    shutil.copytree(EXAMPLES, site / "example_passes", ignore=shutil.ignore_patterns("Output", "__pycache__", ".lit*"))
    info = site / "raster_example_passes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raster-example-passes\nVersion: 0.1\n")
    lines = [f"{registry_name(m)} = {m}:{cls}" for m, cls in EXAMPLE_FILES.items()]
    (info / "entry_points.txt").write_text("[raster_mlir.passes]\n" + "\n".join(lines) + "\n")
    path = [str(site), str(site / "example_passes"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))


def registry_name(module: str) -> str:
    return getattr(examples[module], EXAMPLE_FILES[module]).name


def test_lit_tests_of_the_example_passes(tmp_path):
    pytest.importorskip("lit")
    env = install_entry_points(tmp_path)
    env["PATH"] = "/usr/bin:/bin"  # filecheck is found through the interpreter, not PATH
    result = subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-v", str(tmp_path / "example_passes")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    for name in EXAMPLE_FILES:
        assert f"PASS: raster_mlir_example_passes :: {name}.mlir" in result.stdout


def test_lit_test_fails_without_the_pass(tmp_path):
    """The walk-through's CHECK lines are not satisfied by the pipeline without fold-add-of-neg."""
    env = install_entry_points(tmp_path)
    source = str(tmp_path / "example_passes" / "fold_add_of_neg.mlir")
    opt = subprocess.run(
        [sys.executable, "-m", "raster_mlir.apps.raster_opt", source, "-p", "autodiff,inline,canonicalize,dce"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert opt.returncode == 0, opt.stderr
    check = subprocess.run([sys.executable, "-m", "filecheck", source], input=opt.stdout, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert check.returncode != 0


# --- the doc shows this code and these pipelines -------------------------------------------------


def fenced_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, re.M | re.S)


def shows_in_order(source: str, start: str) -> None:
    code = source[source.index(start) :]
    wanted = [line for line in code.splitlines() if line.strip()]
    shown = [line for block in fenced_blocks(open(DOC).read(), "python") for line in block.splitlines()]
    position = 0
    for line in wanted:
        assert line in shown[position:], f"docs/writing-a-pass.md does not show, in order: {line!r}"
        position = shown.index(line, position) + 1


def test_doc_shows_the_examples_code():
    shows_in_order(open(os.path.join(EXAMPLES, "fold_add_of_neg.py")).read(), "from __future__")
    shows_in_order(open(os.path.join(EXAMPLES, "div_by_power_of_two.py")).read(), '"""')
    unroll = open(os.path.join(EXAMPLES, "unroll_small_loops.py")).read()
    shows_in_order(unroll[: unroll.index("def trip_count")], "def constant_index")
    shows_in_order(unroll[: unroll.index("@dataclass")], "def unroll(")


def test_doc_shows_the_default_pipeline():
    assert f"```\n{DEFAULT_PIPELINE}\n```" in open(DOC).read()


def test_doc_pipelines_parse():
    doc = open(DOC).read()
    specs = re.findall(r"raster-opt \S+ -p '([^']+)'", doc) + re.findall(r'^pipeline = "([^"]+)"', doc, re.M)
    specs += re.findall(r"`((?:fold-add-of-neg|fuse-loops)\{[^}]*\})`", doc)
    assert len(specs) >= 10
    assert "fold-add-of-neg{commute=false max-rewrites=100}" in specs  # two options, space-separated
    for spec in specs:
        registry.parse_pipeline(spec)
    assert PIPELINE in specs


def test_doc_commands_run(tmp_path):
    """Each raster-opt command of the doc on the example's .mlir file, as written (--emit=llvm included)."""
    env = install_entry_points(tmp_path)
    commands = re.findall(r"^raster-opt (docs/example_passes/\S+\.mlir) -p '([^']+)'(.*)$", open(DOC).read(), re.M)
    assert len(commands) >= 2 and any("--emit=llvm" in rest for _, _, rest in commands)
    for path, spec, rest in commands:
        argv = [os.path.join(ROOT, path), "-p", spec, *rest.split()]
        result = subprocess.run([sys.executable, "-m", "raster_mlir.apps.raster_opt", *argv], capture_output=True, text=True,
                                timeout=300, env=env)  # fmt: skip
        assert result.returncode == 0, (argv, result.stderr)


def test_doc_entry_point_snippet_names_the_group_and_the_class():
    toml = "\n".join(fenced_blocks(open(DOC).read(), "toml"))
    assert '[project.entry-points."raster_mlir.passes"]' in toml
    assert re.search(r'^fold-add-of-neg = "[\w.]+\.fold_add_of_neg:FoldAddOfNegPass"$', toml, re.M)


def test_doc_python_blocks_run_in_order(tmp_path, monkeypatch, capsys):
    """Every Python block of the doc, executed top to bottom as a reader would paste them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(EXAMPLES)
    module = types.ModuleType("writing_a_pass_doc")  # dataclasses need the module in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for i, block in enumerate(fenced_blocks(open(DOC).read(), "python")):
        exec(compile(block, f"docs/writing-a-pass.md (python block {i})", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "%8 = raster.neg %7 : tensor<5xf64>" in printed
    assert "%10 = raster.add %0, %8 : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>" in printed
    assert "%9 = raster.sub %0, %7 : tensor<5xf64>, tensor<5xf64> -> tensor<5xf64>" in printed
    c = namespace["c"]
    assert c.stages[5] == "after:fold-add-of-neg"
    dumped = tmp_path / "ir" / "10_after_fold-add-of-neg.mlir"
    assert dumped.read_text() == c.ir("after:fold-add-of-neg")
    assert (tmp_path / "ir" / "09_before_fold-add-of-neg.mlir").read_text() == c.ir("after:canonicalize")
    assert "// -----// IR Dump Before fold-add-of-neg //----- //" in printed
    assert "// -----// IR Dump After fold-add-of-neg //----- //" in printed
    assert "fold-add-of-neg" in c.pass_seconds
    assert np.isfinite(namespace["value"])
    assert namespace["unrolled"].ir().count("scf.for") == 0
