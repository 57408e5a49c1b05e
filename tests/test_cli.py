"""The `raster-opt` driver: input, pipelines, IR dumps, --emit, errors.

Most flags are checked in-process through `raster_opt_main(argv)` (fast);
what depends on a real process — stdin, exit codes, the absence of Python
tracebacks, the console script, plug-ins found through installed entry
points — is checked with subprocesses. tests/filecheck/cli/ has lit tests
of the same driver.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

from raster_mlir.apps.raster_opt import raster_opt_main
from raster_mlir.compiler import DEFAULT_PIPELINE, pass_labels
from raster_mlir.passes import registry

from helpers import InsertBadFill

RELU = textwrap.dedent(
    """\
    func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
      %y = raster.relu %x : tensor<4xf64>
      func.return %y : tensor<4xf64>
    }
    """
)

CALLS = textwrap.dedent(
    """\
    func.func private @twice(%x: tensor<4xf64>) -> tensor<4xf64> {
      %y = raster.add %x, %x : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
      func.return %y : tensor<4xf64>
    }
    func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
      %a = func.call @twice(%x) : (tensor<4xf64>) -> tensor<4xf64>
      %b = func.call @twice(%x) : (tensor<4xf64>) -> tensor<4xf64>
      %c = raster.mul %a, %b : tensor<4xf64>, tensor<4xf64> -> tensor<4xf64>
      func.return %c : tensor<4xf64>
    }
    """
)

OWN_AND_XDSL = ["autodiff", "canonicalize", "cse", "dce", "fuse-loops", "inline", "licm", "lower-to-loops"]


def header(when: str, name: str) -> str:
    return f"// -----// IR Dump {when} {name} //----- //"


@pytest.fixture
def relu_file(tmp_path):
    path = tmp_path / "relu.mlir"
    path.write_text(RELU)
    return str(path)


@pytest.fixture
def calls_file(tmp_path):
    path = tmp_path / "calls.mlir"
    path.write_text(CALLS)
    return str(path)


def opt(capsys, *argv):
    """Run the driver in-process; (exit code, stdout, stderr)."""
    code = raster_opt_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run(*argv, stdin: str | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "raster_mlir.apps.raster_opt", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_clean_error(result, *fragments):
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("raster-opt: error: "), result.stderr
    assert sum(line.startswith("raster-opt:") for line in lines) == 1
    for fragment in fragments:
        assert fragment in result.stderr


# --- input and pipelines --------------------------------------------------------------------


def test_reads_stdin_and_runs_the_given_pipeline():
    result = run("-p", "inline,cse", stdin=CALLS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "func.call" not in result.stdout and "@twice" not in result.stdout
    assert result.stdout.count("raster.add") == 1  # the two inlined copies were merged by cse


def test_explicit_dash_reads_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(RELU))
    code, out, _ = opt(capsys, "-", "-p", "")
    assert code == 0 and "raster.relu %x : tensor<4xf64>" in out


def test_without_p_runs_the_default_pipeline(capsys, relu_file):
    code, out, err = opt(capsys, relu_file, "--print-ir-after-all")
    assert code == 0
    labels = pass_labels(p.name for p in registry.parse_pipeline(DEFAULT_PIPELINE).passes)  # inline, ..., inline#2
    assert [line for line in err.splitlines() if line.startswith("// -----//")] == [header("After", p) for p in labels]
    assert "memref<4xf64>" in out and "scf.for" in out and "raster.relu" not in out


def test_empty_pipeline_prints_the_input_back(capsys, relu_file):
    code, out, err = opt(capsys, relu_file, "-p", "")
    assert code == 0 and err == ""
    assert out == "builtin.module {\n" + textwrap.indent(RELU, "  ") + "}\n"


def test_pass_options_in_the_pipeline(capsys, tmp_path):
    path = tmp_path / "layer.mlir"
    path.write_text(
        textwrap.dedent(
            """\
            func.func @f(%W: tensor<8x4xf64>, %x: tensor<2x4xf64>, %b: tensor<8xf64>) -> tensor<2x8xf64> {
              %z = raster.dense %W, %x, %b : (tensor<8x4xf64>, tensor<2x4xf64>, tensor<8xf64>) -> tensor<2x8xf64>
              %h = raster.relu %z : tensor<2x8xf64>
              func.return %h : tensor<2x8xf64>
            }
            """
        )
    )
    _, shallow, _ = opt(capsys, str(path), "-p", "lower-to-loops,fuse-loops{max-depth=1}")
    _, deep, _ = opt(capsys, str(path), "-p", "lower-to-loops,fuse-loops{max-depth=8}")
    assert "loops_fused = 1 : i64" in shallow and "memref.alloc" in shallow
    assert "loops_fused = 2 : i64" in deep and "memref.alloc" not in deep


def test_list_passes(capsys):
    code, out, _ = opt(capsys, "--list-passes")
    assert code == 0
    names = out.split()
    assert names == sorted(names)
    assert set(OWN_AND_XDSL) <= set(names)


# --- dumps and timing on stderr -------------------------------------------------------------


def test_print_ir_after_all_goes_to_stderr(capsys, calls_file):
    code, out, err = opt(capsys, calls_file, "-p", "inline,cse", "--print-ir-after-all")
    assert code == 0
    assert "IR Dump" not in out
    dumps = err.split("\n\n")
    assert dumps[0].startswith(header("After", "inline") + "\nbuiltin.module {")
    assert dumps[1].startswith(header("After", "cse") + "\nbuiltin.module {")
    assert dumps[0].count("raster.add") == 2 and dumps[1].count("raster.add") == 1
    assert dumps[1].split("\n", 1)[1] + "\n" == out  # the last dump is the output


def test_print_ir_before_one_pass(capsys, relu_file):
    code, out, err = opt(capsys, relu_file, "-p", "inline,lower-to-loops", "--print-ir-before=lower-to-loops")
    assert code == 0
    assert [line for line in err.splitlines() if "IR Dump" in line] == [header("Before", "lower-to-loops")]
    assert "raster.relu" in err and "memref" not in err
    assert "scf.for" in out


def test_print_ir_after_repeated_and_comma_separated(capsys, relu_file):
    argv = [relu_file, "-p", "inline,cse,lower-to-loops,fuse-loops"]
    _, _, comma = opt(capsys, *argv, "--print-ir-after=inline,lower-to-loops")
    _, _, repeated = opt(capsys, *argv, "--print-ir-after", "inline", "--print-ir-after", "lower-to-loops")
    expected = [header("After", "inline"), header("After", "lower-to-loops")]
    assert [line for line in comma.splitlines() if "IR Dump" in line] == expected
    assert comma == repeated


def test_repeated_pass_is_named_by_its_label_in_headers(capsys, calls_file):
    code, _, err = opt(capsys, calls_file, "-p", "inline,cse,inline", "--print-ir-before-all", "--print-ir-after=inline#2")
    assert code == 0
    assert [line for line in err.splitlines() if "IR Dump" in line] == [
        header("Before", "inline"), header("Before", "cse"), header("Before", "inline#2"), header("After", "inline#2"),
    ]  # fmt: skip


def test_dump_dir_before_and_after_every_pass(capsys, calls_file, tmp_path):
    code, out, err = opt(capsys, calls_file, "-p", "inline,cse,inline", "--dump-dir", str(tmp_path / "ir"))
    assert code == 0 and err == ""
    files = sorted(os.listdir(tmp_path / "ir"))
    assert files == ["00_input.mlir", "01_before_inline.mlir", "02_after_inline.mlir", "03_before_cse.mlir",
                     "04_after_cse.mlir", "05_before_inline#2.mlir", "06_after_inline#2.mlir"]  # fmt: skip
    assert (tmp_path / "ir" / files[-1]).read_text() == out
    assert (tmp_path / "ir" / files[3]).read_text() == (tmp_path / "ir" / files[2]).read_text()
    assert "func.call" in (tmp_path / "ir" / files[1]).read_text()


def test_print_op_generic_and_locations(capsys, tmp_path):
    path = tmp_path / "located.mlir"
    path.write_text(RELU.replace("tensor<4xf64>\n  func.return", 'tensor<4xf64> loc("model.py":7:3)\n  func.return'))
    code, out, err = opt(capsys, str(path), "-p", "inline", "--print-op-generic", "--mlir-print-debuginfo",
                         "--print-ir-after-all")  # fmt: skip
    assert code == 0
    assert '%y = "raster.relu"(%x) : (tensor<4xf64>) -> tensor<4xf64> loc("model.py":7:3)' in out
    assert '"raster.relu"(%x)' in err and 'loc("model.py":7:3)' in err
    _, plain, _ = opt(capsys, str(path), "-p", "inline")
    assert "raster.relu %x" in plain and "loc(" not in plain


def test_time_passes_reports_on_stderr(capsys, relu_file):
    code, out, err = opt(capsys, relu_file, "-p", "inline,cse,inline", "--time-passes")
    assert code == 0
    assert "timing report" not in out
    assert "... Pass execution timing report ..." in err
    names = [line.split("%  ")[-1] for line in err.splitlines() if "%  " in line]
    assert names == ["parse", "verification (4x)", "inline", "cse", "inline#2", "output printing", "Total"]


def test_time_passes_covers_llvm_phases(capsys, relu_file):
    code, _, err = opt(capsys, relu_file, "-p", "inline,lower-to-loops", "--emit=asm", "--time-passes")
    assert code == 0
    names = [line.split("%  ")[-1] for line in err.splitlines() if "%  " in line]
    for phase in ("parse", "lower-to-loops", "LLVM IR emission", "assembly printing", "Total"):
        assert phase in names, names
    # A compile (not a cache hit) also shows LLVM's optimisation and code generation.
    assert ("LLVM optimisation" in names and "code generation" in names) or not any(
        name.startswith("cache write") for name in names
    )


def test_no_stderr_output_unless_asked(capsys, relu_file):
    code, _, err = opt(capsys, relu_file, "-p", "inline,lower-to-loops,fuse-loops")
    assert code == 0 and err == ""


# --- emit and output ------------------------------------------------------------------------


def test_emit_defaults_to_mlir(capsys, relu_file):
    _, default, _ = opt(capsys, relu_file, "-p", "lower-to-loops")
    _, mlir, _ = opt(capsys, relu_file, "-p", "lower-to-loops", "--emit=mlir")
    assert default == mlir and mlir.startswith("builtin.module {")


def test_emit_llvm_and_asm_from_loop_level_ir(capsys, relu_file):
    _, llvm, _ = opt(capsys, relu_file, "-p", "lower-to-loops", "--emit=llvm")
    _, llvm_opt, _ = opt(capsys, relu_file, "-p", "lower-to-loops", "--emit=llvm-opt")
    _, asm, _ = opt(capsys, relu_file, "-p", "lower-to-loops", "--emit=asm")
    assert 'define void @"f"(' in llvm and "llvm.maximum" in llvm
    assert "define void @f(" in llvm_opt
    lines = asm.splitlines()
    assert any(line.strip().startswith(".globl") and line.split()[1] == "f" for line in lines)
    assert "f:" in [line.split("#")[0].strip() for line in lines]


def test_output_file(capsys, relu_file, tmp_path):
    target = tmp_path / "out.mlir"
    code, out, _ = opt(capsys, relu_file, "-p", "lower-to-loops", "-o", str(target))
    assert code == 0 and out == ""
    _, expected, _ = opt(capsys, relu_file, "-p", "lower-to-loops")
    assert target.read_text() == expected


# --- verification ---------------------------------------------------------------------------


@pytest.fixture
def bad_pass(monkeypatch):
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    registry.register_pass(InsertBadFill)


def test_verify_each_is_on_by_default(capsys, relu_file, bad_pass):
    for flags in ([], ["--verify-each"]):
        code, out, err = opt(capsys, relu_file, "-p", "insert-bad-fill,inline", *flags)
        assert code == 1 and out == ""
        assert err.startswith("raster-opt: error: IR does not verify after pass insert-bad-fill: raster.fill")


def test_no_verify_each(capsys, relu_file, bad_pass):
    code, out, err = opt(capsys, relu_file, "-p", "insert-bad-fill,inline", "--no-verify-each")
    assert code == 0 and err == ""
    assert "raster.fill 1.000000e+00 : f32 : tensor<f64>" in out


# --- errors: exit code 1, one message line, no traceback ------------------------------------


def test_unknown_pass(relu_file):
    assert_clean_error(run(relu_file, "-p", "inline,no-such-pass"), "no-such-pass", "known passes:")


def test_bad_pass_option(relu_file):
    assert_clean_error(run(relu_file, "-p", "fuse-loops{max-depth=deep}"), "fuse-loops", "deep")


def test_parse_error_names_the_line(tmp_path):
    path = tmp_path / "bad.mlir"
    path.write_text("func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {\n  %y = raster.nope %x : tensor<4xf64>\n}\n")
    assert_clean_error(run(str(path), "-p", "inline"), f"{path}:2:", "raster.nope is not registered")


def test_input_that_does_not_verify():
    # Parses, but a full sum has a 0-d result, not tensor<4xf64>.
    text = textwrap.dedent(
        """\
        func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
          %z = raster.sum %x : tensor<4xf64> -> tensor<4xf64>
          func.return %z : tensor<4xf64>
        }
        """
    )
    assert_clean_error(run("-p", "inline", stdin=text), "raster.sum", "tensor<f64>")


def test_llvm_of_tensor_level_ir(relu_file):
    assert_clean_error(run(relu_file, "-p", "inline", "--emit=llvm"), "needs loop-level IR", "lower-to-loops")


@pytest.mark.parametrize("which", ["missing", "directory"])
def test_unreadable_input_file(tmp_path, which):
    path = tmp_path / "missing.mlir" if which == "missing" else tmp_path
    assert_clean_error(run(str(path), "-p", "inline"), str(path))


@pytest.mark.parametrize("spec", ["fuse-loops{max-depth=1", "inline,,cse"])
def test_malformed_pipeline(relu_file, spec):
    assert_clean_error(run(relu_file, "-p", spec), "bad pass pipeline")


# --- installation: the console script and plug-ins ------------------------------------------


def test_console_script_is_installed():
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "raster-opt"]
    assert script.load() is raster_opt_main
    path = shutil.which("raster-opt")
    assert path is not None, "raster-opt is declared but not on PATH"
    result = subprocess.run([path, "--list-passes"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fuse-loops" in result.stdout.split()


def test_plugin_pass_from_an_installed_entry_point(tmp_path):
    (tmp_path / "raster_cli_plugin.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from xdsl.dialects import func
            from xdsl.dialects.builtin import UnitAttr
            from xdsl.passes import ModulePass

            @dataclass(frozen=True)
            class MarkFunctions(ModulePass):
                name = "mark-functions"

                def apply(self, ctx, op):
                    for f in op.ops:
                        if isinstance(f, func.FuncOp):
                            f.attributes["plugin.seen"] = UnitAttr()
            """
        )
    )
    info = tmp_path / "raster_cli_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raster-cli-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[raster_mlir.passes]\nmark-functions = raster_cli_plugin:MarkFunctions\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    listed = run("--list-passes", env=env)
    assert "mark-functions" in listed.stdout.split()
    result = run("-p", "inline,mark-functions", stdin=RELU, env=env)
    assert result.returncode == 0, result.stderr
    assert "func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> attributes {plugin.seen}" in result.stdout
