"""Every script in examples/ runs to completion and prints what it shows."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What each script must print (its point, and proof it got there).
EXPECTED_OUTPUT = {
    "01_dense_layer.py": ["array([0.5, 1.1])", "raster.dense"],
    "02_activations.py": ["nn.relu(z)    = [0. 0. 1. 2.]", "0.6439142598879724", "sum(softmax)  = 1.0"],
    "03_mlp_loss.py": ["compiled loss = 0.86292733", "float", "batch of 5"],
    "04_value_and_grad.py": ["6 gradients", "d loss / d y", "|grad W1| = 1.860207e+00", "finite difference"],
    "05_training_loop.py": ["step 199", "200 steps in"],
    "06_compiled_train_step.py": ['step.ir("after:fuse-loops")', "scf.for", "us per step"],
    "07_ode_fit.py": ["recovered k = 2.50, c = 0.30", "through 1000 RK4 steps", "999 carries"],
    "08_heat_equation.py": ["recovered D = 0.37000000 (true 0.37)", "by central difference", "1 loop over the grid"],
    "09_newton.py": ["converged to [1. 1.] in 7 Newton steps", "Hessian-vector products", "hvp matches the Hessian of b2 times v: True"],
}


def run_example(name: str, *args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    """Run examples/<name> as a script (optionally after `prelude`, e.g. to hide a package)."""
    script = EXAMPLES / name
    if prelude:
        code = "\n".join([
            "import runpy, sys",
            prelude,
            f"sys.argv = {[str(script), *args]!r}",
            f"runpy.run_path({str(script)!r}, run_name='__main__')",
        ])  # fmt: skip
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, str(script), *args]
    # The scripts' default outputs go to the temporary directory: a private one per test.
    scratch = cwd / "tmp"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(scratch))
    return subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("[0-9]*.py")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_example(name, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for text in EXPECTED_OUTPUT[name]:
        assert text in result.stdout, f"{name} did not print {text!r}:\n{result.stdout}"
    left = sorted(p.name for p in cwd.iterdir() if p.name != "tmp")
    assert left == [], f"{name} left files in the folder it ran from: {left}"


def test_training_loop_saves_a_png(tmp_path):
    png = tmp_path / "loss.png"
    result = run_example("05_training_loop.py", str(png), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    if importlib.util.find_spec("matplotlib") is None:
        assert "plot skipped" in result.stdout
        pytest.skip("matplotlib is not installed: the script ran and skipped its plot")
    assert f"saved the loss curve to {png}" in result.stdout
    assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 5000


def test_training_loop_without_matplotlib_still_trains(tmp_path):
    png = tmp_path / "loss.png"
    result = run_example("05_training_loop.py", str(png), cwd=tmp_path, prelude="sys.modules['matplotlib'] = None")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "step 199" in result.stdout
    assert "matplotlib is not installed: plot skipped" in result.stdout
    assert not png.exists()
