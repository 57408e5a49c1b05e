"""The worked example of docs/writing-a-pass.md, end to end.

Loads docs/example_passes/fold_mul_by_one.py by path, registers it, runs it
in pipelines from Python (numbers unchanged, IR changed as the doc says, the
option matters), runs the example's lit test through `raster-opt` with the
pass found through an installed entry point, and checks that the doc shows
the file's code and only pipelines that parse.
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
from raster_mlir import nn
from raster_mlir.compiler import DEFAULT_PIPELINE, StagedPipeline, make_context, print_module
from raster_mlir.passes import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "docs", "example_passes")
EXAMPLE = os.path.join(EXAMPLES, "fold_mul_by_one.py")
DOC = os.path.join(ROOT, "docs", "writing-a-pass.md")

PIPELINE = "inline,autodiff,inline,fold-mul-by-one,canonicalize,cse,dce,lower-to-loops,fuse-loops"
WITHOUT = PIPELINE.replace("fold-mul-by-one,", "")


def load_example():
    spec = importlib.util.spec_from_file_location("fold_mul_by_one", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    registry.register_pass(example.FoldMulByOnePass)


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def sum_relu_layer(W, b, x):
    return rm.sum(nn.relu(nn.dense(W, x, b)))


def mlp_args():
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(16, 8)), rng.normal(size=16), rng.normal(size=(3, 16)), rng.normal(size=3),
        rng.normal(size=8), np.eye(3)[1],
    )  # fmt: skip


ONE = re.compile(r"^\s*(%\w+) = raster\.fill 1\.000000e\+00 ", re.M)
BROADCAST = re.compile(r"^\s*(%\w+) = raster\.broadcast_to (%\w+) ", re.M)
MUL = re.compile(r"^\s*%\w+ = raster\.mul (%\w+), (%\w+) ", re.M)


def products_with_ones(ir: str, through_broadcast: bool = True) -> int:
    """How many raster.mul ops in the printed IR take a fill of 1.0 (or its broadcast) as an operand."""
    ones = set(ONE.findall(ir))
    if through_broadcast:
        ones |= {result for result, source in BROADCAST.findall(ir) if source in ones}
    return sum(lhs in ones or rhs in ones for lhs, rhs in MUL.findall(ir))


def parse(text: str):
    from xdsl.parser import Parser

    return Parser(make_context(), textwrap.dedent(text)).parse_module()


# --- the pass class follows the conventions ------------------------------------------------


def test_pass_is_a_frozen_dataclass_with_name_and_option():
    cls = example.FoldMulByOnePass
    assert cls.name == "fold-mul-by-one"
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert [(f.name, f.default) for f in dataclasses.fields(cls)] == [("through_broadcast", True)]
    (p,) = registry.parse_pipeline("fold-mul-by-one{through-broadcast=false}").passes
    assert p == cls(through_broadcast=False)
    assert "Before" in example.__doc__ and "After" in example.__doc__


# --- from Python: numbers unchanged, IR changed --------------------------------------------


def test_mlp_gradient_unchanged_and_products_with_ones_removed():
    args = mlp_args()
    c = rm.compile(rm.value_and_grad(mlp_loss), *args, pipeline=PIPELINE)
    plain = rm.compile(rm.value_and_grad(mlp_loss), *args, pipeline=WITHOUT)

    before, after = c.ir("after:inline#2"), c.ir("after:fold-mul-by-one")
    assert products_with_ones(before) == 2  # the seed cotangent times both cross-entropy cotangents
    assert products_with_ones(after) == 0
    assert after.count("raster.mul") == before.count("raster.mul") - 2
    assert "raster.fill 1.000000e+00" not in c.ir("after:dce")
    assert "raster.fill 1.000000e+00" in plain.ir("after:dce")

    loss, grads = c(*args)
    ref_loss, ref_grads = plain(*args)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    assert len(grads) == len(ref_grads) == len(args)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-15)
    # ...and with the default pipeline, and with the tensor-level reference interpreter.
    default_loss, default_grads = rm.compile(rm.value_and_grad(mlp_loss), *args)(*args)
    assert loss == pytest.approx(default_loss, rel=1e-13)
    for g, r in zip(grads, default_grads):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-15)
    ref_loss2, ref_grads2 = plain.run_reference(*args)
    assert loss == pytest.approx(ref_loss2, rel=1e-12)
    np.testing.assert_allclose(grads[0], ref_grads2[0], rtol=1e-10, atol=1e-13)


def test_through_broadcast_option_and_the_effect_on_the_loops():
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(8, 4)), rng.normal(size=8), rng.normal(size=4))
    f = rm.value_and_grad(sum_relu_layer, argnums=(0, 1))
    folded = rm.compile(f, *args, pipeline=PIPELINE)
    no_broadcast = PIPELINE.replace("fold-mul-by-one", "fold-mul-by-one{through-broadcast=false}")
    kept = rm.compile(f, *args, pipeline=no_broadcast)
    plain = rm.compile(f, *args, pipeline=WITHOUT)

    assert products_with_ones(folded.ir("after:inline#2")) == 1  # broadcast seed times relu's mask
    assert products_with_ones(folded.ir("after:fold-mul-by-one")) == 0
    assert products_with_ones(kept.ir("after:fold-mul-by-one")) == 1
    assert kept.ir("after:fold-mul-by-one") == kept.ir("after:inline#2")

    # One multiplication fewer per element in the fused loops, and no more temporaries.
    assert folded.ir().count("arith.mulf") < plain.ir().count("arith.mulf")
    assert folded.ir().count("memref.alloc") <= plain.ir().count("memref.alloc")
    assert kept.ir() == plain.ir()

    (loss, (dW, db)), (ref_loss, (ref_dW, ref_db)) = folded(*args), plain(*args)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-13, atol=0)
    np.testing.assert_allclose(db, ref_db, rtol=1e-13, atol=0)
    W, b, x = args
    np.testing.assert_array_equal(db, (W @ x + b > 0).astype(float))


def run_pass_on(text: str, spec: str = "fold-mul-by-one") -> str:
    module = parse(text)
    StagedPipeline(spec).run(module)
    return print_module(module)


def test_ones_on_either_side_fold_other_factors_stay():
    out = run_pass_on(
        """
        func.func @f(%x: tensor<3xf64>, %s: tensor<f64>) -> (tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<f64>) {
          %one = raster.fill 1.0 : f64 : tensor<f64>
          %two = raster.fill 2.0 : f64 : tensor<f64>
          %a = raster.mul %one, %x : tensor<f64>, tensor<3xf64> -> tensor<3xf64>
          %b = raster.mul %x, %two : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
          %c = raster.add %x, %one : tensor<3xf64>, tensor<f64> -> tensor<3xf64>
          %d = raster.mul %s, %one : tensor<f64>, tensor<f64> -> tensor<f64>
          func.return %a, %b, %c, %d : tensor<3xf64>, tensor<3xf64>, tensor<3xf64>, tensor<f64>
        }
        """
    )
    assert "raster.mul %one" not in out and "raster.mul %s" not in out
    assert "%b = raster.mul %x, %two" in out  # 2.0 is not one
    assert "%c = raster.add %x, %one" in out  # only products are folded
    assert "func.return %x, %b, %c, %s :" in out


def test_f32_ones_fold_and_broadcasting_products_stay():
    out = run_pass_on(
        """
        func.func @f(%x: tensor<3xf32>, %v: tensor<3xf64>) -> (tensor<3xf32>, tensor<2x3xf64>, tensor<3xf64>) {
          %one = raster.fill 1.0 : f32 : tensor<3xf32>
          %a = raster.mul %x, %one : tensor<3xf32>, tensor<3xf32> -> tensor<3xf32>
          %ones = raster.fill 1.0 : f64 : tensor<2x3xf64>
          %b = raster.mul %v, %ones : tensor<3xf64>, tensor<2x3xf64> -> tensor<2x3xf64>
          %o = raster.fill 1.0 : f64 : tensor<f64>
          %wide = raster.broadcast_to %o : tensor<f64> -> tensor<3xf64>
          %c = raster.mul %wide, %v : tensor<3xf64>, tensor<3xf64> -> tensor<3xf64>
          func.return %a, %b, %c : tensor<3xf32>, tensor<2x3xf64>, tensor<3xf64>
        }
        """
    )
    assert "%b = raster.mul %v, %ones" in out  # the ones broadcast %v to 2x3: not an identity
    assert "func.return %x, %b, %v :" in out


# --- from the command line and lit, found through an installed entry point -----------------


def install_entry_point(site) -> dict:
    """A dist-info as pip writes it for a package declaring the example pass; env for subprocesses.

    The example folder is copied into `site` (and used from there), so lit's Output/ and
    test-times file and Python's __pycache__ land in the temporary directory, not in docs/.
    """
    shutil.copytree(EXAMPLES, site / "example_passes", ignore=shutil.ignore_patterns("Output", "__pycache__", ".lit*"))
    info = site / "fold_mul_by_one_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fold-mul-by-one-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[raster_mlir.passes]\nfold-mul-by-one = fold_mul_by_one:FoldMulByOnePass\n")
    path = [str(site), str(site / "example_passes"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p))


def test_lit_test_of_the_example_passes(tmp_path):
    pytest.importorskip("lit")
    env = install_entry_point(tmp_path)
    lit_test = str(tmp_path / "example_passes" / "fold_mul_by_one.mlir")
    result = subprocess.run(
        [sys.executable, "-c", "from lit.main import main; main()", "-v", lit_test],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "PASS: raster_mlir_example_passes :: fold_mul_by_one.mlir" in result.stdout


def test_lit_test_fails_without_the_pass(tmp_path):
    """The example's CHECK lines are not satisfied by the pipeline without fold-mul-by-one."""
    env = install_entry_point(tmp_path)
    source = str(tmp_path / "example_passes" / "fold_mul_by_one.mlir")
    opt = subprocess.run(
        [sys.executable, "-m", "raster_mlir.cli", source, "-p", "autodiff,inline,dce"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert opt.returncode == 0, opt.stderr
    check = subprocess.run(["filecheck", source], input=opt.stdout, capture_output=True, text=True, timeout=120)
    assert check.returncode != 0


# --- the doc shows this code and these pipelines -------------------------------------------


def fenced_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, re.M | re.S)


def test_doc_shows_the_whole_example_in_order():
    source = open(EXAMPLE).read()
    code = source[source.index("from __future__") :]
    wanted = [line for line in code.splitlines() if line.strip()]
    shown = [line for block in fenced_blocks(open(DOC).read(), "python") for line in block.splitlines()]
    position = 0
    for line in wanted:
        assert line in shown[position:], f"docs/writing-a-pass.md does not show, in order: {line!r}"
        position = shown.index(line, position) + 1


def test_doc_shows_the_default_pipeline():
    assert f"```\n{DEFAULT_PIPELINE}\n```" in open(DOC).read()


def test_doc_pipelines_parse():
    doc = open(DOC).read()
    specs = re.findall(r"raster-opt \S+ -p '([^']+)'", doc) + re.findall(r'^pipeline = "([^"]+)"', doc, re.M)
    specs += re.findall(r"`((?:fold-mul-by-one|fuse-loops)\{[^}]*\})`", doc)
    assert len(specs) >= 6
    for spec in specs:
        registry.parse_pipeline(spec)
    assert PIPELINE in specs


def test_doc_entry_point_snippet_names_the_group_and_the_class():
    toml = "\n".join(fenced_blocks(open(DOC).read(), "toml"))
    assert '[project.entry-points."raster_mlir.passes"]' in toml
    assert re.search(r'^fold-mul-by-one = "[\w.]+\.fold_mul_by_one:FoldMulByOnePass"$', toml, re.M)


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
    assert "%15 = raster.mul %14, %11 : tensor<3xf64>, tensor<f64> -> tensor<3xf64>" in printed
    assert "%15 = raster.neg %14 : tensor<3xf64>" in printed
    c = namespace["c"]
    assert c.stages[4] == "after:fold-mul-by-one"
    assert (tmp_path / "ir" / "04_after_fold-mul-by-one.mlir").read_text() == c.ir("after:fold-mul-by-one")
    assert "// -----// IR Dump Before fold-mul-by-one //----- //" in printed
    assert "// -----// IR Dump After fold-mul-by-one //----- //" in printed
    assert "fold-mul-by-one" in c.pass_seconds
    assert np.isfinite(namespace["loss"])
