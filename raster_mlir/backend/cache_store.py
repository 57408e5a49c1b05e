"""The cache directory: checksummed entry files, least-recently-used eviction, clearing.

Two kinds of entries live side by side, one file per key:
- `<key>.rmo`: object code keyed by LLVM IR (cache.py);
- `<key>.rmf`: a compiled function keyed by its traced IR, taken before the
  pass pipeline runs (raster_mlir/compile_cache.py).

Every file has the same frame:

    magic  b"RMLIRobj"   8 bytes
    format version       4 bytes little-endian
    key                 32 bytes (the sha256 the file is named after)
    payload length       8 bytes little-endian
    payload sha256      32 bytes
    payload

A file whose magic, version, key, length or checksum does not match (a
truncated write, a flipped bit, another program's file, an intact entry
copied or renamed over another key's file) is deleted and never used. Writes
go to a temporary file in the same directory followed by `os.replace`,
which is atomic on POSIX, so a concurrent reader sees either no file or a
whole one. A directory that cannot be written (read-only, full disk) is
skipped silently: caching is an optimisation, never a reason to fail.

Size bound: `RASTER_MLIR_CACHE_MAX_MB` (default 512). A hit refreshes the
entry's modification time; after a write, if the directory holds more than
the bound, the least recently used entries are deleted until it fits.
Knowing what the directory holds takes a scan of it (a `stat` per entry:
6 ms at 1,000 entries, 29 ms at 3,000, and a compile writes two or three
entries), so a process scans a directory at its first write there, then
adds the sizes it writes itself and scans again only when that running
total passes the bound or it has written another eighth of the bound since
the last scan (other processes' writes are seen at that scan: the bound may
be exceeded by what they wrote meanwhile, never for long).
`clear()` deletes every entry; `info()` describes the directory.

Directory: `$RASTER_MLIR_CACHE_DIR` if set, else `$XDG_CACHE_HOME/raster_mlir`,
else `~/.cache/raster_mlir`. `RASTER_MLIR_CACHE=0` disables caching. The
environment is read on every use, so tests can redirect it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
from pathlib import Path

FORMAT_VERSION = 5  # 3: objects with LLVM's remarks; 4: + function entries; 5: + further objects
MAGIC = b"RMLIRobj"
HEADER = struct.Struct("<8sI32sQ32s")
SUFFIXES = (".rmo", ".rmf")
DEFAULT_MAX_MB = 512


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


def max_bytes() -> int:
    """The size bound from `RASTER_MLIR_CACHE_MAX_MB` (megabytes; default 512; bad values: the default)."""
    text = os.environ.get("RASTER_MLIR_CACHE_MAX_MB", "")
    try:
        mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(max(mb, 0.0) * 1024 * 1024)


# ---- frame -------------------------------------------------------------------


def encode_blob(key: str, payload: bytes) -> bytes:
    digest = hashlib.sha256(payload).digest()
    return HEADER.pack(MAGIC, FORMAT_VERSION, bytes.fromhex(key), len(payload), digest) + payload


def decode_blob(blob: bytes, key: str) -> bytes | None:
    """The payload of `blob` if it is a complete, intact entry recorded for `key`, else None."""
    if len(blob) < HEADER.size:
        return None
    magic, version, recorded_key, length, digest = HEADER.unpack_from(blob)
    payload = blob[HEADER.size :]
    if magic != MAGIC or version != FORMAT_VERSION or length != len(payload):
        return None
    if recorded_key != bytes.fromhex(key):
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


# ---- files -------------------------------------------------------------------


def entry_path(key: str, suffix: str = ".rmo") -> Path:
    return cache_dir() / f"{key}{suffix}"


def read(key: str, suffix: str) -> bytes | None:
    """The intact payload stored for `key`, or None (a damaged file is deleted)."""
    path = entry_path(key, suffix)
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    payload = decode_blob(blob, key)
    try:
        if payload is None:
            path.unlink()  # corrupt, truncated or another key's entry: the fresh compile replaces it
        else:
            os.utime(path)  # most recently used now
    except OSError:
        pass
    return payload


def write(key: str, suffix: str, payload: bytes) -> bool:
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(encode_blob(key, payload))
            os.replace(tmp, directory / f"{key}{suffix}")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    _account(directory, HEADER.size + len(payload))
    return True


# Per directory: [bytes it held at this process's last scan plus what the process wrote since,
# bytes written since that scan] (module docstring, "Size bound").
_ledger: dict[Path, list[int]] = {}
_ledger_lock = threading.Lock()


def _account(directory: Path, written: int) -> None:
    """Count `written` bytes into `directory`; scan and evict when the bound may be passed."""
    bound = max_bytes()
    with _ledger_lock:
        known = _ledger.get(directory)
        if known is not None:
            known[0] += written
            known[1] += written
            if known[0] <= bound and known[1] <= bound // 8:
                return
    evict(directory, bound)


def _forget(directory: Path) -> None:
    with _ledger_lock:
        _ledger.pop(directory, None)


def _entries(directory: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every entry file in `directory`."""
    found = []
    try:
        with os.scandir(directory) as it:
            for item in it:
                if item.name.endswith(SUFFIXES) and not item.name.startswith("."):
                    try:
                        st = item.stat()
                    except OSError:
                        continue
                    found.append((st.st_mtime, st.st_size, Path(item.path)))
    except OSError:
        pass
    return found


def evict(directory: Path | None = None, bound: int | None = None) -> int:
    """Delete least-recently-used entries until the directory holds at most `bound` bytes; returns how many."""
    directory = directory or cache_dir()
    bound = max_bytes() if bound is None else bound
    entries = _entries(directory)
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in sorted(entries):
        if total <= bound:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed += 1
    with _ledger_lock:
        _ledger[directory] = [total, 0]
    return removed


def clear() -> int:
    """Delete every entry (and stale temporary files) of the cache directory; returns how many entries."""
    directory = cache_dir()
    _forget(directory)
    removed = 0
    for _, _, path in _entries(directory):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    try:
        for tmp in directory.glob(".*.tmp"):
            tmp.unlink()
    except OSError:
        pass
    return removed


def info() -> dict:
    """The cache directory, its entries and bytes, and the size bound."""
    entries = _entries(cache_dir())
    return {
        "directory": str(cache_dir()),
        "enabled": cache_enabled(),
        "entries": len(entries),
        "objects": sum(1 for *_, p in entries if p.suffix == ".rmo"),
        "functions": sum(1 for *_, p in entries if p.suffix == ".rmf"),
        "bytes": sum(size for _, size, _ in entries),
        "max_bytes": max_bytes(),
    }
