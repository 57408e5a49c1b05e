"""A cache hit before the pass pipeline: a warm compile is trace, hash, load.

Key: sha256 over everything that decides the machine code and what the call
path needs, known before any pass runs:
- the traced module: what printing it says (ir_fingerprint.py, without
  locations: they change no code);
- the pipeline string, exactly as given (another spelling of the same
  pipeline only misses) and the backend options of the compile;
- the target: triple, CPU name, CPU features and LLVM version (the vector
  width follows from them);
- versions: raster_mlir's, plus a fingerprint of its source files (path,
  size and modification time of every .py file of the package, its
  dialects and passes: an edited pass is a different compiler), xDSL's
  (where it is installed, size and modification time of its core files) and
  llvmlite's;
- every `RASTER_MLIR_*` environment variable except those that change no code
  (the cache's own, `RASTER_MLIR_VERIFY_EACH`, `RASTER_MLIR_FLUSH_DENORMAL`);
- the code of the extensions a compile may run: passes named in the pipeline
  that are registered (`register_pass`) or plug-ins, every registered rule
  set's rules (`register_rule_set`, or a rule added to a shipped set), and
  lower-to-loops' recipes (one added for a new op).
  An extension outside raster_mlir is identified by its module, name, source
  file and that file's size and modification time, and by the values its
  closure captured; one that cannot be identified that way (no source file,
  a captured object with no stable text) makes the compile skip this cache.

Value: `<key>.rmf` in the cache directory, checksummed like every entry
(backend/cache_store.py): the key of the object entry (`<key>.rmo`, keyed by
LLVM IR, backend/cache.py), the entry's ABI (symbols, argument specs,
workspace bytes) and the constant arrays passed as hidden arguments
(`raster.constants`). Everything else the call path needs (result shapes,
aliases, the output tree) comes from the trace. Both files are needed; if
the object entry was evicted, the lookup misses and the pipeline runs.

The IR stages, the LLVM IR before optimisation, and the modules the
reference interpreter and data loops start from are not stored: on a hit
they are recomputed on first use by re-running the deterministic pipeline
(jit.py, `CompiledFunction`).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import struct
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import llvmlite
import numpy as np
import xdsl
from xdsl.dialects.builtin import ModuleOp

from raster_mlir.backend import cache_store
from raster_mlir.backend.cache import load_cached
from raster_mlir.backend.jit import warm_up
from raster_mlir.backend.call import NativeFunction
from raster_mlir.backend.llvm_emit import EntryABI
from raster_mlir.backend.specs import ArgSpec
from raster_mlir.backend.target import host_target
from raster_mlir.ir_fingerprint import fingerprint
from raster_mlir.timing import NO_TIMER

FORMAT = "raster_mlir function cache 1"
_LEN = struct.Struct("<Q")
MEMORY_ENTRIES = 256
# Environment variables that change no code: where or whether to cache, how much to verify,
# the flush-to-zero mode (read at run time, backend/fp_mode.py).
_NO_CODE_VARIABLES = (
    "RASTER_MLIR_CACHE",
    "RASTER_MLIR_CACHE_DIR",
    "RASTER_MLIR_CACHE_MAX_MB",
    "RASTER_MLIR_TEST_CACHE_DIR",
    "RASTER_MLIR_VERIFY_EACH",
    "RASTER_MLIR_FLUSH_DENORMAL",
    "RASTER_MLIR_PREPARE_RUNTIME",  # when the runtime modules are built, not what (backend/runtime_prep.py)
)


@dataclass(frozen=True)
class FunctionEntry:
    """What a warm compile loads instead of running the pipeline."""

    object_key: str
    abi: EntryABI
    constants: tuple[np.ndarray, ...]
    extra: dict = field(default_factory=dict)  # JSON-serialisable facts of the compile (a data loop's schedule)


_memory: collections.OrderedDict[str, FunctionEntry] = collections.OrderedDict()
_memory_lock = threading.Lock()


# ---- the key -------------------------------------------------------------------


LOWERINGS_MODULE = "raster_mlir.passes.lowerings"
OWN_DIALECTS = ("builtin", "func", "raster")  # lowered without looking up plug-ins


@functools.lru_cache(maxsize=1)
def _package_dirs() -> tuple[str, ...]:
    import raster_mlir
    import raster_mlir.dialects
    import raster_mlir.passes

    return tuple(os.path.realpath(d) for m in (raster_mlir, raster_mlir.dialects, raster_mlir.passes) for d in m.__path__)


@functools.lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """Path, size and modification time of every .py file of raster_mlir (computed once per process)."""
    h = hashlib.sha256()

    def visit(directory: str, relative: str) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            if entry.name.endswith(".py") and entry.is_file():
                st = entry.stat()
                h.update(f"{relative}{entry.name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
            elif entry.is_dir() and entry.name != "__pycache__":
                visit(entry.path, f"{relative}{entry.name}/")

    for root in _package_dirs():
        visit(root, "")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def library_versions() -> str:
    """raster_mlir's version and source fingerprint, xDSL's and llvmlite's (once per process).

    xDSL is identified by where it is installed and its files' size and modification time
    (`xdsl.__version__` asks importlib.metadata, which costs tens of milliseconds).
    """
    import raster_mlir

    xdsl_dir = os.path.dirname(os.path.realpath(xdsl.__file__))
    stats = []
    for name in ("__init__.py", "ir/core.py", "printer.py", "parser/core.py"):
        try:
            st = os.stat(os.path.join(xdsl_dir, name))
            stats.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            stats.append(f"{name}:-")
    return (
        f"raster_mlir={raster_mlir.__version__} source={source_fingerprint()} "
        f"xdsl={xdsl_dir} {' '.join(stats)} llvmlite={llvmlite.__version__}"
    )


@functools.lru_cache(maxsize=4096)
def _inside_package(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(d + os.sep) for d in _package_dirs())


_STABLE = (bool, int, float, str, bytes, type(None))


def code_identity(obj) -> str | None:
    """A text that changes when the code of `obj` (a function or class) may have changed; None if unknown."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    code = getattr(obj, "__code__", None)
    if code is not None:
        path = code.co_filename
    else:
        path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return None
    if _inside_package(path):
        return f"{module}.{name}"  # covered by source_fingerprint()
    try:
        st = os.stat(path)
    except OSError:  # defined in a notebook cell, `python -c`, ...: no file to follow
        return None
    captured = ""
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, types.ModuleType):
            captured += f"|module {value.__name__}"
        elif callable(value):
            inner = code_identity(value)
            if inner is None:
                return None
            captured += f"|{inner}"
        elif isinstance(value, _STABLE) or (isinstance(value, tuple) and all(isinstance(v, _STABLE) for v in value)):
            captured += f"|{value!r}"
        else:
            return None
    return f"{module}.{name}@{path}:{st.st_size}:{st.st_mtime_ns}{captured}"


def extension_fingerprint(spec: str) -> str | None:
    """The code of passes and rule sets a compile with pipeline `spec` may run; None if not identifiable."""
    from raster_mlir.dialects.raster_rules import registered_rule_sets
    from raster_mlir.passes.registry import pass_origin, pipeline_pass_names

    parts = []
    for name in pipeline_pass_names(spec):
        origin = pass_origin(name)
        if origin is None:
            return None  # an unknown pass: the pipeline will fail, and say why
        if not isinstance(origin, str):
            identity = code_identity(origin)
            if identity is None:
                return None
            parts.append(f"pass {name}={identity}")
    for set_name, rules in sorted(registered_rule_sets().items()):
        rule_lines = []
        for op_class in rules.op_classes():
            entries = [f"{set_name}:{getattr(op_class, 'name', op_class.__name__)}"]
            if rules.is_nondifferentiable(op_class):
                entries.append("nondifferentiable")
            for rule in (rules.rule_for(op_class), rules.tangent_rule_for(op_class)):
                if rule is not None:
                    identity = code_identity(rule)
                    if identity is None:
                        return None
                    entries.append(identity)
            rule_lines.append(" ".join(entries))
        parts += sorted(rule_lines)  # op_classes() comes partly from a set: its order varies between processes
    # Recipes given with register_lowering or by plug-ins. Both go through that module: when it is
    # not imported there is none (and a warm start need not import lower-to-loops' recipes).
    registry = sys.modules.get(LOWERINGS_MODULE)
    lowerings = registry.lowering_fingerprint() if registry is not None else ""
    if lowerings is None:
        return None
    parts.append(lowerings)
    return "\n".join(parts)


def function_key(traced: ModuleOp | str, spec: str, backend_options: str) -> str | None:
    """The cache key of compiling `traced` (a module, or a text standing for one) with pipeline `spec`; None: do not cache."""
    if not isinstance(traced, str) and any(op.name.split(".", 1)[0] not in OWN_DIALECTS for op in traced.walk()):
        from raster_mlir.passes.lowerings import resolve_lowerings

        resolve_lowerings(traced)  # the recipes of its ops of other dialects, so that the key names them
    extensions = extension_fingerprint(spec)
    if extensions is None:
        return None
    target = host_target()
    environment = sorted(
        (k, v) for k, v in os.environ.items() if k.startswith("RASTER_MLIR_") and k not in _NO_CODE_VARIABLES
    )
    h = hashlib.sha256()
    for part in (
        FORMAT,
        library_versions(),
        f"llvm={target.llvm_version} triple={target.triple} cpu={target.cpu_name} features={target.features}",
        f"environment={environment}",
        f"pipeline={spec.strip()}",
        f"backend={backend_options}",
        extensions,
        traced if isinstance(traced, str) else fingerprint(traced),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def derived_key(base: str, *parameters) -> str:
    """The key of a compile made from another one's result (`base` is its key), such as a data loop."""
    h = hashlib.sha256()
    for part in (FORMAT, base, repr(parameters)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


# ---- entries -------------------------------------------------------------------


def encode(entry: FunctionEntry) -> bytes:
    abi = entry.abi
    constants, blobs, offset = [], [], 0
    for c in entry.constants:
        data = np.ascontiguousarray(c).tobytes()
        constants.append({"dtype": c.dtype.str, "shape": list(c.shape), "offset": offset, "nbytes": len(data)})
        blobs.append(data)
        offset += len(data)
    meta = {
        "object_key": entry.object_key,
        "abi": {
            "name": abi.name,
            "packed_symbol": abi.packed_symbol,
            "checked_symbol": abi.checked_symbol,
            "pycall_symbol": abi.pycall_symbol,
            "runtime_table_symbol": abi.runtime_table_symbol,
            "workspace_bytes": abi.workspace_bytes,
            "specs": [[list(s.shape), s.dtype, s.written, s.name, s.align] for s in abi.specs],
        },
        "constants": constants,
        "extra": entry.extra,
    }
    text = json.dumps(meta).encode()
    return _LEN.pack(len(text)) + text + b"".join(blobs)


def decode(payload: bytes) -> FunctionEntry | None:
    """The entry in `payload`, or None if it does not hold one (another format, damage the checksum missed)."""
    try:
        (n,) = _LEN.unpack_from(payload)
        meta = json.loads(payload[_LEN.size : _LEN.size + n].decode())
        data = payload[_LEN.size + n :]
        a = meta["abi"]
        specs = tuple(ArgSpec(tuple(shape), dtype, written, name, align) for shape, dtype, written, name, align in a["specs"])
        abi = EntryABI(
            a["name"], a["packed_symbol"], a["checked_symbol"], a["pycall_symbol"], a["runtime_table_symbol"],
            specs, a["workspace_bytes"],
        )  # fmt: skip
        constants = []
        for c in meta["constants"]:
            raw = data[c["offset"] : c["offset"] + c["nbytes"]]
            array = np.frombuffer(raw, dtype=np.dtype(c["dtype"])).reshape(c["shape"]).copy()
            constants.append(array)
        return FunctionEntry(meta["object_key"], abi, tuple(constants), meta["extra"])
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError):
        return None


def lookup(key: str) -> tuple[FunctionEntry, str] | None:
    """(entry, "memory" | "disk") stored for `key`, or None."""
    if not cache_store.cache_enabled():
        return None
    with _memory_lock:
        entry = _memory.get(key)
        if entry is not None:
            _memory.move_to_end(key)
            return entry, "memory"
    payload = cache_store.read(key, ".rmf")
    entry = None if payload is None else decode(payload)
    if entry is None:
        return None
    _remember(key, entry)
    return entry, "disk"


def load_function(key: str, opt_level: int, llvm_ir, timer=NO_TIMER) -> tuple[FunctionEntry, NativeFunction] | None:
    """The entry stored for `key` and its native function, loaded; None on a miss.

    `llvm_ir` produces the LLVM IR text if somebody asks for it (backend/cache.py,
    `load_cached`). Both entries are needed: if the object entry was evicted, this misses.
    """
    with timer.phase("cache lookup"):
        found = lookup(key)
    if found is None:
        warm_up(host_target(), opt_level)  # the pipeline runs now; LLVM gets ready on the other core
        return None
    stored, source = found
    loaded = load_cached(stored.object_key, host_target(), opt_level, llvm_ir, timer)
    if loaded is None:
        warm_up(host_target(), opt_level)
        return None
    with timer.phase("loading"):
        function = NativeFunction(loaded.module, stored.abi, cache_source=source, cache_key=stored.object_key)
    return stored, function


def store(key: str, entry: FunctionEntry) -> None:
    if not cache_store.cache_enabled():
        return
    _remember(key, entry)
    cache_store.write(key, ".rmf", encode(entry))


def _remember(key: str, entry: FunctionEntry) -> None:
    with _memory_lock:
        _memory[key] = entry
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)


def clear_memory() -> None:
    with _memory_lock:
        _memory.clear()


def backend_options(opt_level: int, fastmath: Sequence[str], hints: bool, vector_width, jam: int) -> str:
    return f"opt={opt_level} fastmath={sorted(set(fastmath))} hints={hints} vector-width={vector_width} jam={jam}"


# ---- user-facing -----------------------------------------------------------------


def clear_cache(memory: bool = True, disk: bool = True) -> int:
    """Forget compiled code: in this process (`memory`) and in the cache directory (`disk`).

    Returns the number of files deleted. Functions already compiled keep working.
    """
    if memory:
        from raster_mlir.backend.cache import clear_memory_cache

        clear_memory()
        clear_memory_cache()
    return cache_store.clear() if disk else 0


def cache_info() -> dict:
    """The cache directory, whether caching is on, its entries and bytes, and the size bound."""
    return cache_store.info()
