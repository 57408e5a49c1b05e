"""Public extension points: `register_lowering`, and entry-point plug-ins for lowerings, rule sets, dialects.

The worked example docs/example_extensions/softsign.py (a new op with its
kernel, lowering and rule set) runs here: eagerly, compiled, differentiated
with its rule set, registered from Python, and as an installed plug-in
found by its entry points, from Python (without registering anything: the
rule set is found by name whatever was imported) and from raster-opt.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from xdsl.irdl import irdl_op_definition

import raster_mlir as rm
from raster_mlir.compiler import DEFAULT_PIPELINE
from raster_mlir.dialects import raster as R
from raster_mlir.dialects import raster_rules
from raster_mlir.ops import apply
from raster_mlir.passes import lowerings
from raster_mlir.passes.loop_recipes import elementwise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DIR = os.path.join(ROOT, "docs", "example_extensions")
WITH_SOFTSIGN = DEFAULT_PIPELINE.replace("autodiff", "autodiff{rules=with-softsign}", 1)


def load_example():
    spec = importlib.util.spec_from_file_location("softsign", os.path.join(EXAMPLE_DIR, "softsign.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture
def clean_registries(monkeypatch):
    """Lowerings and rule sets registered by a test vanish after it."""
    monkeypatch.setattr(lowerings, "_REGISTERED", {})
    monkeypatch.setattr(lowerings, "_plugins_loaded", True)  # no installed plug-ins in these tests
    monkeypatch.setattr(raster_rules, "_RULE_SETS", dict(raster_rules._RULE_SETS))


@irdl_op_definition
class CubeOp(R.ElementwiseUnaryOp):
    name = "test.cube"


def cube(x):
    return apply(CubeOp, [x])


# --- register_lowering --------------------------------------------------------------------------


def test_an_op_without_lowering_is_a_compile_error_naming_it_and_the_remedy(clean_registries):
    def f(x):
        return cube(x) + 1.0

    with pytest.raises(rm.CompileError) as info:
        rm.compile(f, np.ones(3))
    message = str(info.value)
    assert "no lowering for test.cube (CubeOp)" in message and "register_lowering(OpClass, recipe)" in message
    assert "test_extension_points.py" in message and "apply(CubeOp, [x])" in message  # the op's source line


def test_register_lowering_as_a_decorator(clean_registries):
    @lowerings.register_lowering(CubeOp)
    def cube_loops(b, op, ins, outs):
        elementwise(lambda b, x: b.mulf(x, b.mulf(x, x)))(b, op, ins, outs)

    x = np.array([[-2.0, 0.5, 3.0], [1.0, -0.0, 4.0]])
    f = rm.compile(lambda x: cube(x) + 1.0, x)
    assert "test.cube" in f.ir("traced") and "test.cube" not in f.ir()
    np.testing.assert_array_equal(f(x), x**3 + 1.0)


def cubed(b, x):
    return b.mulf(x, b.mulf(x, x))


def squared(b, x):
    return b.mulf(x, x)


def test_the_compile_cache_knows_which_lowering_compiled_a_function(clean_registries):
    x = np.array([2.0, -3.0])
    lowerings.register_lowering(CubeOp, elementwise(cubed))
    np.testing.assert_array_equal(rm.jit(lambda x: cube(x))(x), x**3)
    lowerings.register_lowering(CubeOp, elementwise(squared))  # another recipe: not the cached function
    np.testing.assert_array_equal(rm.jit(lambda x: cube(x))(x), x**2)


def test_register_lowering_refuses_what_is_not_an_op_or_a_recipe(clean_registries):
    with pytest.raises(rm.CompileError, match="not an xDSL operation class"):
        lowerings.register_lowering(int, lambda *a: None)
    with pytest.raises(rm.CompileError, match="is not callable"):
        lowerings.register_lowering(CubeOp, "cube")


# --- the worked example, registered from Python --------------------------------------------------

X = np.array([-3.0, -0.5, -0.0, 0.0, 0.25, 2.0, 1e300])


def test_softsign_eager_and_compiled_agree():
    want = X / (1 + np.abs(X))
    np.testing.assert_array_equal(example.softsign(X), want)
    lowerings_before = dict(lowerings._REGISTERED)
    try:
        example.register()
        np.testing.assert_array_equal(rm.jit(example.softsign)(X), want)
        np.testing.assert_array_equal(np.signbit(rm.jit(example.softsign)(X)), np.signbit(want))
    finally:
        lowerings._REGISTERED.clear()
        lowerings._REGISTERED.update(lowerings_before)


def test_softsign_gradient_with_its_rule_set(clean_registries):
    example.register()
    x = X[:6]
    g = rm.compile(rm.grad(lambda x: rm.sum(example.softsign(x) * x)), x, pipeline=WITH_SOFTSIGN)
    s = x / (1 + np.abs(x))
    (dx,) = g(x)
    np.testing.assert_allclose(dx, s + x / (1 + np.abs(x)) ** 2, rtol=1e-15)
    with pytest.raises(rm.GradientError, match="example.softsign has no reverse rule in rule set 'default'"):
        rm.compile(rm.grad(lambda x: rm.sum(example.softsign(x))), x)


# --- installed plug-ins: entry points ------------------------------------------------------------


def install_example(root) -> dict:
    """A dist-info declaring the example's entry points (as pip writes it); the environment that sees it."""
    info = root / "raster_softsign_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raster-softsign-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[xdsl.universe]\nexample = softsign:UNIVERSE\n\n"
        "[raster_mlir.lowerings]\nexample = softsign:LOWERINGS\n\n"
        "[raster_mlir.rule_sets]\nwith-softsign = softsign:RULES\n"
    )
    path = os.pathsep.join(filter(None, [str(root), EXAMPLE_DIR, os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def test_plugin_found_from_python_whatever_was_imported(tmp_path):
    env = install_example(tmp_path)
    script = textwrap.dedent(
        f"""
        import numpy as np, raster_mlir as rm
        from softsign import softsign           # the op only: register() is never called
        x = np.array([-3.0, 0.5, 2.0])
        g = rm.compile(rm.grad(lambda x: rm.sum(softsign(x))), x, pipeline={WITH_SOFTSIGN!r})
        print(repr(g(x)[0].tolist()))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    x = np.array([-3.0, 0.5, 2.0])
    np.testing.assert_allclose(eval(result.stdout), 1 / (1 + np.abs(x)) ** 2, rtol=1e-15)


SOFTSIGN_IR = textwrap.dedent(
    """\
    func.func private @f(%x: tensor<4xf64>) -> tensor<f64> {
      %y = example.softsign %x : tensor<4xf64>
      %s = raster.sum %y : tensor<4xf64> -> tensor<f64>
      func.return %s : tensor<f64>
    }
    func.func @main(%x: tensor<4xf64>) -> tensor<4xf64> {
      %g = raster.grad @f(%x) argnums = [0] : (tensor<4xf64>) -> tensor<4xf64>
      func.return %g : tensor<4xf64>
    }
    """
)


def test_plugin_found_from_raster_opt(tmp_path):
    env = install_example(tmp_path)
    path = tmp_path / "softsign.mlir"
    path.write_text(SOFTSIGN_IR)
    result = subprocess.run(
        [sys.executable, "-m", "raster_mlir.apps.raster_opt", str(path), "-p", "autodiff{rules=with-softsign},inline,canonicalize,dce"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "func.func @main" in result.stdout and "raster.div" in result.stdout and "raster.grad" not in result.stdout
    lowered = subprocess.run(
        [sys.executable, "-m", "raster_mlir.apps.raster_opt", str(path), "-p", "autodiff{rules=with-softsign},inline,lower-to-loops",
         "--emit=llvm"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert lowered.returncode == 0, lowered.stderr[-3000:]
    assert "fdiv" in lowered.stdout


def test_unknown_rule_set_lists_the_known_ones(clean_registries):
    with pytest.raises(rm.GradientError, match="no rule set named 'nope'; registered rule sets: .*default"):
        rm.compile(rm.grad(lambda x: rm.sum(x * x)), np.ones(2), pipeline="inline,autodiff{rules=nope}")


# --- the doc shows this code ---------------------------------------------------------------------

DOC = os.path.join(ROOT, "docs", "writing-a-lowering-and-a-rule-set.md")


def test_doc_shows_the_example_in_order_and_its_entry_points():
    import re

    doc = open(DOC).read()
    shown = [line for block in re.findall(r"^```python\n(.*?)^```$", doc, re.M | re.S) for line in block.splitlines()]
    source = open(os.path.join(EXAMPLE_DIR, "softsign.py")).read()
    code = source[source.index("@irdl_op_definition") :]
    position = 0
    for line in code.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert line in shown[position:], f"{DOC} does not show, in order: {line!r}"
        position = shown.index(line, position) + 1
    toml = "".join(re.findall(r"^```toml\n(.*?)^```$", doc, re.M | re.S))
    for group, entry in (("xdsl.universe", "example = \"softsign:UNIVERSE\""),
                         ("raster_mlir.lowerings", "example = \"softsign:LOWERINGS\""),
                         ("raster_mlir.rule_sets", "with-softsign = \"softsign:RULES\"")):  # fmt: skip
        assert f'[project.entry-points."{group}"]\n{entry}' in toml
