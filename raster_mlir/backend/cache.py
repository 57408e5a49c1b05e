"""Two-level cache of compiled code: in this process, and on disk.

Key: sha256 over (cache format version, llvmlite version, LLVM version,
target triple, host CPU name, host CPU features, opt level, the version of
jit.py's pipeline and module split, LLVM IR text).
Everything that changes the machine code is in the key, so a cache
directory shared by several machines or library versions can only miss,
never return foreign code.

Memory level: key -> loaded `JitModule` (an LRU of `MEMORY_ENTRIES`), so one
process compiles the same IR once.

Disk level: one checksummed file per key, `<dir>/<key>.rmo` (frame, size
bound, eviction and directory in cache_store.py), whose payload is

    object-code length (8 bytes LE) | object code |
    optimised-IR length (8 bytes LE) | optimised IR (utf-8) |
    number of further objects (8 bytes LE) | (length | object code) each |
    LLVM's remarks (utf-8, one per line)

(further objects: the other parts of a module compiled as two, jit.py).

The key check of the frame matters most: the Python side checks arguments
against the signature it traced, so a kernel compiled for other shapes,
loaded under this key, would read and write out of bounds.

`raster_mlir/compile_cache.py` adds a level above this one, keyed before the
pass pipeline runs; its entries name the object entry they need here
(`load_cached`).
"""

from __future__ import annotations

import collections
import hashlib
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llvmlite

from . import cache_store
from .cache_store import FORMAT_VERSION, cache_dir, cache_enabled  # noqa: F401  (re-exported)
from .jit import PIPELINE_VERSION, CompiledObject, JitModule, optimize_and_codegen
from .target import HostTarget
from ..timing import NO_TIMER

_LEN = struct.Struct("<Q")
MEMORY_ENTRIES = 256

_memory: collections.OrderedDict[str, JitModule] = collections.OrderedDict()
_memory_lock = threading.Lock()
# One lock per key, so two threads asking for the same IR compile it once.
_key_locks: dict[str, threading.Lock] = {}


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
        f"pipeline={PIPELINE_VERSION}",
    ):
        h.update(part.encode())
        h.update(b"\0")
    h.update(llvm_ir.encode())
    return h.hexdigest()


def entry_path(key: str) -> Path:
    return cache_store.entry_path(key, ".rmo")


# ---- disk format -----------------------------------------------------------


def encode_entry(key: str, compiled: CompiledObject) -> bytes:
    return cache_store.encode_blob(key, _encode_payload(compiled))


def _encode_payload(compiled: CompiledObject) -> bytes:
    ir_text = compiled.llvm_ir_optimized.encode()
    remarks = "\n".join(compiled.llvm_remarks).encode()
    more = b"".join(_LEN.pack(len(obj)) + obj for obj in compiled.more_objects)
    return (
        _LEN.pack(len(compiled.object_code))
        + compiled.object_code
        + _LEN.pack(len(ir_text))
        + ir_text
        + _LEN.pack(len(compiled.more_objects))
        + more
        + remarks
    )


def _decode_payload(payload: bytes) -> CompiledObject | None:
    if len(payload) < _LEN.size:
        return None
    (obj_len,) = _LEN.unpack_from(payload)
    ir_at = _LEN.size + obj_len
    if ir_at + _LEN.size > len(payload):
        return None
    obj = payload[_LEN.size : ir_at]
    (ir_len,) = _LEN.unpack_from(payload, ir_at)
    more_at = ir_at + _LEN.size + ir_len
    if more_at + _LEN.size > len(payload):
        return None
    try:
        ir_text = payload[ir_at + _LEN.size : more_at].decode()
    except UnicodeDecodeError:
        return None
    (count,) = _LEN.unpack_from(payload, more_at)
    at = more_at + _LEN.size
    more = []
    for _ in range(count):
        if at + _LEN.size > len(payload):
            return None
        (length,) = _LEN.unpack_from(payload, at)
        if at + _LEN.size + length > len(payload):
            return None
        more.append(payload[at + _LEN.size : at + _LEN.size + length])
        at += _LEN.size + length
    try:
        remarks = payload[at:].decode()
    except UnicodeDecodeError:
        return None
    return CompiledObject(obj, ir_text, tuple(remarks.splitlines()), tuple(more))


def decode_entry(blob: bytes, key: str) -> CompiledObject | None:
    """The entry in `blob` if it is a complete, intact entry recorded for `key`, else None."""
    payload = cache_store.decode_blob(blob, key)
    return None if payload is None else _decode_payload(payload)


def read_disk(key: str) -> CompiledObject | None:
    payload = cache_store.read(key, ".rmo")
    compiled = None if payload is None else _decode_payload(payload)
    if payload is not None and compiled is None:
        try:
            entry_path(key).unlink()
        except OSError:
            pass
    return compiled


def write_disk(key: str, compiled: CompiledObject) -> bool:
    return cache_store.write(key, ".rmo", _encode_payload(compiled))


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


def load_or_compile(
    llvm_ir: str, target: HostTarget, opt_level: int = 3, use_cache: bool = True, timer=NO_TIMER, handoff=None
) -> CacheResult:
    """A loaded JitModule for `llvm_ir`, from memory, from disk or compiled now.

    `handoff`: the pipelined compile (jit.pipelined_compile) whose parts LLVM may have started on
    during emission; dropped on a cache hit."""
    t0 = time.perf_counter()
    with timer.phase("cache lookup (LLVM IR key)"):
        key = cache_key(llvm_ir, target, opt_level)
    if not (use_cache and cache_enabled()):
        compiled = optimize_and_codegen(llvm_ir, target, opt_level, timer, handoff)
        with timer.phase("loading"):
            jm = JitModule(compiled, target, opt_level, llvm_ir)
        return CacheResult(jm, None, time.perf_counter() - t0, key)
    with _memory_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with timer.phase("cache lookup (LLVM IR key)"):
            jm = _from_memory(key)
            compiled = None if jm is not None else read_disk(key)
        if jm is not None:
            jm.offer_llvm_ir(llvm_ir)
            return CacheResult(jm, "memory", time.perf_counter() - t0, key)
        source = "disk"
        if compiled is None:
            source = None
            compiled = optimize_and_codegen(llvm_ir, target, opt_level, timer, handoff)
            with timer.phase("cache write"):
                write_disk(key, compiled)
        with timer.phase("loading"):
            jm = JitModule(compiled, target, opt_level, llvm_ir)
        _remember(key, jm)
        return CacheResult(jm, source, time.perf_counter() - t0, key)


def load_cached(
    key: str, target: HostTarget, opt_level: int, llvm_ir: Callable[[], str], timer=NO_TIMER
) -> CacheResult | None:
    """The JitModule of object entry `key` from memory or disk, or None; never compiles.

    `llvm_ir` produces the module's LLVM IR text if somebody asks for it (the
    entry stores only the optimised IR).
    """
    t0 = time.perf_counter()
    if not cache_enabled():
        return None
    with timer.phase("cache lookup"):
        jm = _from_memory(key)
        compiled = None if jm is not None else read_disk(key)
    if jm is not None:
        return CacheResult(jm, "memory", time.perf_counter() - t0, key)
    if compiled is None:
        return None
    with timer.phase("loading"):
        jm = JitModule(compiled, target, opt_level, llvm_ir)
    _remember(key, jm)
    return CacheResult(jm, "disk", time.perf_counter() - t0, key)


def _from_memory(key: str) -> JitModule | None:
    with _memory_lock:
        jm = _memory.get(key)
        if jm is not None:
            _memory.move_to_end(key)
    return jm


def clear_memory_cache() -> None:
    """Forget every loaded module (those still referenced stay alive)."""
    with _memory_lock:
        _memory.clear()
