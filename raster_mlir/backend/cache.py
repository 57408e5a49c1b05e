"""Two-level cache of compiled code: in this process, and on disk.

Key: sha256 over (cache format version, llvmlite version, LLVM version,
target triple, host CPU name, host CPU features, opt level, LLVM IR text).
Everything that changes the machine code is in the key, so a cache
directory shared by several machines or library versions can only miss,
never return foreign code.

Memory level: key -> loaded `JitModule` (an LRU of `MEMORY_ENTRIES`), so one
process compiles the same IR once.

Disk level, one file per key, `<dir>/<key>.rmo`:

    magic  b"RMLIRobj"   8 bytes
    format version       4 bytes little-endian
    key                 32 bytes (the sha256 the file is named after)
    payload length       8 bytes little-endian
    payload sha256      32 bytes
    payload              object-code length (8 bytes LE) | object code |
                         optimised-IR length (8 bytes LE) | optimised IR (utf-8) |
                         LLVM's remarks (utf-8, one per line)

A file whose magic, version, key, length or checksum does not match (a
truncated write, a flipped bit, another program's file, an intact entry
copied or renamed over another key's file) is deleted and compiled afresh:
it is never handed to the loader. The key check matters most: the Python
side checks arguments against the signature it traced, so a kernel compiled
for other shapes, loaded under this key, would read and write out of bounds. Writes go to a temporary
file in the same directory followed by `os.replace`, which is atomic on
POSIX, so a concurrent reader sees either no file or a whole one.

Directory: `$RASTER_MLIR_CACHE_DIR` if set, else `$XDG_CACHE_HOME/raster_mlir`,
else `~/.cache/raster_mlir`. `RASTER_MLIR_CACHE=0` disables both levels.
The environment is read on every compile, so tests can redirect it.
A cache that cannot be written (read-only directory, full disk) is skipped
silently: caching is an optimisation, never a reason to fail a compile.
"""

from __future__ import annotations

import collections
import hashlib
import os
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import llvmlite

from .jit import CompiledObject, JitModule, optimize_and_codegen
from .target import HostTarget

FORMAT_VERSION = 3
MAGIC = b"RMLIRobj"
_HEADER = struct.Struct("<8sI32sQ32s")
_LEN = struct.Struct("<Q")
MEMORY_ENTRIES = 256

_memory: collections.OrderedDict[str, JitModule] = collections.OrderedDict()
_memory_lock = threading.Lock()
# One lock per key, so two threads asking for the same IR compile it once.
_key_locks: dict[str, threading.Lock] = {}


def cache_enabled() -> bool:
    return os.environ.get("RASTER_MLIR_CACHE", "1") != "0"


def cache_dir() -> Path:
    explicit = os.environ.get("RASTER_MLIR_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "raster_mlir"
    return Path.home() / ".cache" / "raster_mlir"


def cache_key(llvm_ir: str, target: HostTarget, opt_level: int) -> str:
    h = hashlib.sha256()
    for part in (
        f"format={FORMAT_VERSION}",
        f"llvmlite={llvmlite.__version__}",
        f"llvm={target.llvm_version}",
        f"triple={target.triple}",
        f"cpu={target.cpu_name}",
        f"features={target.features}",
        f"opt={opt_level}",
    ):
        h.update(part.encode())
        h.update(b"\0")
    h.update(llvm_ir.encode())
    return h.hexdigest()


def entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.rmo"


# ---- disk format -----------------------------------------------------------


def encode_entry(key: str, compiled: CompiledObject) -> bytes:
    ir_text = compiled.llvm_ir_optimized.encode()
    remarks = "\n".join(compiled.llvm_remarks).encode()
    payload = _LEN.pack(len(compiled.object_code)) + compiled.object_code + _LEN.pack(len(ir_text)) + ir_text + remarks
    digest = hashlib.sha256(payload).digest()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, bytes.fromhex(key), len(payload), digest) + payload


def decode_entry(blob: bytes, key: str) -> CompiledObject | None:
    """The entry in `blob` if it is a complete, intact entry recorded for `key`, else None."""
    if len(blob) < _HEADER.size:
        return None
    magic, version, recorded_key, length, digest = _HEADER.unpack_from(blob)
    payload = blob[_HEADER.size :]
    if magic != MAGIC or version != FORMAT_VERSION or length != len(payload):
        return None
    if recorded_key != bytes.fromhex(key):
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    (obj_len,) = _LEN.unpack_from(payload)
    ir_at = _LEN.size + obj_len
    if ir_at + _LEN.size > len(payload):
        return None
    obj = payload[_LEN.size : ir_at]
    (ir_len,) = _LEN.unpack_from(payload, ir_at)
    remarks_at = ir_at + _LEN.size + ir_len
    if remarks_at > len(payload):
        return None
    try:
        ir_text = payload[ir_at + _LEN.size : remarks_at].decode()
        remarks = payload[remarks_at:].decode()
    except UnicodeDecodeError:
        return None
    return CompiledObject(object_code=obj, llvm_ir_optimized=ir_text, llvm_remarks=tuple(remarks.splitlines()))


def read_disk(key: str) -> CompiledObject | None:
    path = entry_path(key)
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    compiled = decode_entry(blob, key)
    if compiled is None:
        # Corrupt, truncated or another key's entry: remove it so the fresh compile replaces it.
        try:
            path.unlink()
        except OSError:
            pass
    return compiled


def write_disk(key: str, compiled: CompiledObject) -> bool:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(encode_entry(key, compiled))
            os.replace(tmp, directory / f"{key}.rmo")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    return True


# ---- the lookup ------------------------------------------------------------


@dataclass(frozen=True)
class CacheResult:
    module: JitModule
    source: str | None  # "memory", "disk" or None (compiled now)
    seconds: float  # wall time of this lookup, compile included
    key: str

    @property
    def hit(self) -> bool:
        return self.source is not None


def _remember(key: str, jm: JitModule) -> None:
    with _memory_lock:
        _memory[key] = jm
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)


def load_or_compile(llvm_ir: str, target: HostTarget, opt_level: int = 3, use_cache: bool = True) -> CacheResult:
    """A loaded JitModule for `llvm_ir`, from memory, from disk or compiled now."""
    t0 = time.perf_counter()
    key = cache_key(llvm_ir, target, opt_level)
    if not (use_cache and cache_enabled()):
        compiled = optimize_and_codegen(llvm_ir, target, opt_level)
        jm = JitModule(compiled, target, opt_level, llvm_ir)
        return CacheResult(jm, None, time.perf_counter() - t0, key)
    with _memory_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _memory_lock:
            jm = _memory.get(key)
            if jm is not None:
                _memory.move_to_end(key)
        if jm is not None:
            return CacheResult(jm, "memory", time.perf_counter() - t0, key)
        source = "disk"
        compiled = read_disk(key)
        if compiled is None:
            source = None
            compiled = optimize_and_codegen(llvm_ir, target, opt_level)
            write_disk(key, compiled)
        jm = JitModule(compiled, target, opt_level, llvm_ir)
        _remember(key, jm)
        return CacheResult(jm, source, time.perf_counter() - t0, key)


def clear_memory_cache() -> None:
    """Forget every loaded module (those still referenced stay alive)."""
    with _memory_lock:
        _memory.clear()
