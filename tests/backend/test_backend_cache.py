"""The object cache: memory and disk hits, damaged entries, the off switch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from backend_programs import load

from raster_mlir.backend import cache_dir, clear_memory_cache, compile_module
from raster_mlir.backend.cache import decode_entry, encode_entry
from raster_mlir.backend.jit import CompiledObject

HERE = Path(__file__).parent

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {here!r})
    from backend_programs import load
    from raster_mlir.backend import compile_module
    f = compile_module(load("matvec", "f64", M=16, K=33), "matvec")
    rng = np.random.default_rng(1)
    W, x, b = rng.standard_normal((16, 33)), rng.standard_normal(33), rng.standard_normal(16)
    y = np.zeros(16)
    f(W, x, b, y)
    print(f.cache_source, bool(np.allclose(y, W @ x + b, rtol=1e-12, atol=1e-12)))
    """
)


def matvec():
    return load("matvec", "f64", M=16, K=33)


def check_matvec(f):
    rng = np.random.default_rng(2)
    W, x, b = rng.standard_normal((16, 33)), rng.standard_normal(33), rng.standard_normal(16)
    y = np.zeros(16)
    f(W, x, b, y)
    np.testing.assert_allclose(y, W @ x + b, rtol=1e-12, atol=1e-12)


def entries(directory: Path):
    return sorted(directory.glob("*.rmo")) if directory.exists() else []


def run_child(env_updates=None):
    env = dict(os.environ)
    env.update(env_updates or {})
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(here=str(HERE))], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    source, ok = out.stdout.split()
    assert ok == "True"
    return source


def test_cache_dir_follows_environment(private_cache_dir, monkeypatch):
    assert cache_dir() == private_cache_dir
    monkeypatch.delenv("RASTER_MLIR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/some/xdg")
    assert cache_dir() == Path("/some/xdg/raster_mlir")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "raster_mlir"


def test_memory_then_disk_hits(private_cache_dir):
    first = compile_module(matvec(), "matvec")
    assert (first.cache_hit, first.cache_source) == (False, None)
    assert len(entries(private_cache_dir)) == 1
    second = compile_module(matvec(), "matvec")
    assert (second.cache_hit, second.cache_source) == (True, "memory")
    clear_memory_cache()
    third = compile_module(matvec(), "matvec")
    assert (third.cache_hit, third.cache_source) == (True, "disk")
    assert third.llvm_ir_optimized == first.llvm_ir_optimized
    for f in (first, second, third):
        check_matvec(f)
    # Writes are atomic via a temporary file: none may be left behind.
    assert [p.name for p in private_cache_dir.iterdir() if not p.name.endswith(".rmo")] == []


def test_fresh_process_hits_disk_cache(private_cache_dir):
    assert run_child() is not None and len(entries(private_cache_dir)) == 1
    assert run_child() == "disk"


def test_different_opt_level_is_a_different_entry(private_cache_dir):
    compile_module(matvec(), "matvec", opt_level=3)
    f = compile_module(matvec(), "matvec", opt_level=1)
    assert f.cache_source is None
    assert len(entries(private_cache_dir)) == 2
    check_matvec(f)


@pytest.mark.parametrize(
    "damage",
    ["flip_payload_byte", "truncate", "empty", "garbage_header", "wrong_length"],
)
def test_damaged_entry_is_detected_and_recompiled(private_cache_dir, damage):
    compile_module(matvec(), "matvec")
    (path,) = entries(private_cache_dir)
    good = path.read_bytes()
    if damage == "flip_payload_byte":
        blob = bytearray(good)
        blob[len(blob) // 2] ^= 0x40
        bad = bytes(blob)
    elif damage == "truncate":
        bad = good[: len(good) // 2]
    elif damage == "empty":
        bad = b""
    elif damage == "garbage_header":
        bad = b"\x7fELF" + good[4:]
    else:
        bad = good + b"trailing"
    path.write_bytes(bad)
    clear_memory_cache()
    f = compile_module(matvec(), "matvec")
    assert f.cache_source is None, "a damaged entry must never be loaded"
    check_matvec(f)
    assert path.read_bytes() == good  # replaced by a fresh, intact entry
    clear_memory_cache()
    assert compile_module(matvec(), "matvec").cache_source == "disk"


def test_damaged_entry_in_fresh_process(private_cache_dir):
    run_child()
    (path,) = entries(private_cache_dir)
    path.write_bytes(path.read_bytes()[:100])
    assert run_child() == "None"
    assert run_child() == "disk"


def test_cache_can_be_disabled(private_cache_dir, monkeypatch):
    monkeypatch.setenv("RASTER_MLIR_CACHE", "0")
    a = compile_module(matvec(), "matvec")
    b = compile_module(matvec(), "matvec")
    assert a.cache_source is None and b.cache_source is None
    assert entries(private_cache_dir) == []
    check_matvec(b)
    assert run_child() == "None"
    assert entries(private_cache_dir) == []


def test_use_cache_false_bypasses_both_levels(private_cache_dir):
    compile_module(matvec(), "matvec")
    f = compile_module(matvec(), "matvec", use_cache=False)
    assert f.cache_source is None
    check_matvec(f)


def test_unwritable_cache_dir_does_not_fail_the_compile(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("RASTER_MLIR_CACHE_DIR", str(blocker / "cache"))
    f = compile_module(matvec(), "matvec")
    assert f.cache_source is None
    check_matvec(f)


def test_entry_format_round_trip_and_rejection():
    compiled = CompiledObject(object_code=b"\x00\x01object", llvm_ir_optimized="; module\n")
    key, other_key = "ab" * 32, "ab" * 31 + "ac"
    blob = encode_entry(key, compiled)
    assert decode_entry(blob, key) == compiled
    assert decode_entry(blob, other_key) is None  # intact, but recorded for another key
    for bad in (blob[:-1], blob + b"x", blob[:10], b"RMLIRobj" + blob[8:11], blob.replace(b"object", b"objecT")):
        assert decode_entry(bad, key) is None


def test_two_processes_writing_at_once(private_cache_dir):
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD.format(here=str(HERE))], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(ok == "True" for _, ok in outs)
    (path,) = entries(private_cache_dir)
    assert decode_entry(path.read_bytes(), path.stem) is not None
    assert run_child() == "disk"
