"""The host CPU as LLVM sees it: triple, CPU name, feature string, target machine.

Algorithm: initialise LLVM's native target once per process, ask LLVM for the
host CPU name and feature map, and build target machines from them. Every
compiled function is specialised for exactly this host (`-march=native`
semantics); the CPU name and feature string are therefore part of the object
cache key (see `cache.py`), so a cache directory shared between different
machines can never hand one machine code built for another.

`prefer_vector_width` answers the one tuning question LLVM gets wrong by
default on AVX-512 hosts: without the `"prefer-vector-width"="512"` function
attribute the x86 backend limits the vectoriser to 256-bit vectors (to avoid
frequency drops on old Skylake-X parts), and a 128x784 f64 matvec then runs at
about half of numpy's speed.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm

# The x86 code generator supports -O0..-O3; anything else is a caller bug.
VALID_OPT_LEVELS = (0, 1, 2, 3)

_init_lock = threading.Lock()
_initialised = False


def ensure_llvm_initialised() -> None:
    """Initialise LLVM's native target, asm printer and asm parser (idempotent)."""
    global _initialised
    with _init_lock:
        if _initialised:
            return
        # llvmlite >= 0.45 initialises the core itself; only the native
        # target pieces need an explicit call.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        # LLVM 22 (llvmlite 0.50) aborts the whole process in X86 instruction selection
        # (matchShuffleWithSHUFPD: "Illegal shuffle mask") on a shuffle the SLP vectoriser
        # builds for a horizontal reduction in long straight-line code (found on one function
        # computing a small MLP's jvp, vjp, hvp, Jacobians and Hessian: tests/autodiff/
        # test_vs_torch.py). An abort cannot be caught, so SLP's horizontal reductions are
        # off; loop vectorisation (which vectorises our reduction loops) is unaffected.
        llvm.set_option("", "-slp-vectorize-hor=false")
        _initialised = True


@dataclass(frozen=True)
class HostTarget:
    """What we compile for: the process triple, the host CPU and its features."""

    triple: str
    cpu_name: str
    features: str  # LLVM's "+avx2,-amx-fp8,..." form, sorted as LLVM returns it
    llvm_version: str

    @functools.cached_property
    def feature_set(self) -> frozenset[str]:
        """Names of the features the host has (those marked '+')."""
        return frozenset(f[1:] for f in self.features.split(",") if f.startswith("+"))

    @property
    def has_avx512f(self) -> bool:
        return "avx512f" in self.feature_set

    @property
    def prefer_vector_width(self) -> int | None:
        """Vector width (bits) to request per function, or None to keep LLVM's choice."""
        return 512 if self.has_avx512f else None

    @property
    def data_layout(self) -> str:
        """LLVM's data layout string for this host (pointer sizes, alignments)."""
        return _data_layout(self)

    def create_target_machine(self, opt_level: int = 3) -> llvm.TargetMachine:
        """A target machine for JIT use on this host.

        `codemodel="jitdefault"` (the large code model on x86-64) because MCJIT
        may place an object's code and constant sections more than 2 GiB
        apart; the small model's 32-bit PC-relative references could then
        overflow. `jit=True` tells LLVM the code is for in-process execution.
        """
        if opt_level not in VALID_OPT_LEVELS:
            raise ValueError(f"opt_level must be one of {VALID_OPT_LEVELS}, got {opt_level!r}")
        ensure_llvm_initialised()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(
            cpu=self.cpu_name,
            features=self.features,
            opt=opt_level,
            reloc="default",
            codemodel="jitdefault",
            jit=True,
        )


@functools.lru_cache(maxsize=8)
def _data_layout(target: HostTarget) -> str:
    return str(target.create_target_machine(3).target_data)


@functools.lru_cache(maxsize=1)
def host_target() -> HostTarget:
    """The HostTarget of this process (computed once)."""
    ensure_llvm_initialised()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:
        # Some virtualised hosts do not expose a feature list; the CPU name
        # alone still selects a sensible default feature set.
        features = ""
    version = ".".join(str(v) for v in llvm.llvm_version_info)
    return HostTarget(
        triple=llvm.get_process_triple(),
        cpu_name=llvm.get_host_cpu_name(),
        features=features,
        llvm_version=version,
    )


@functools.lru_cache(maxsize=1)
def l1_data_cache_bytes(default: int = 32768) -> int:
    """Size of the host's level-1 data cache, for passes that block loops to fit it.

    Read from Linux's sysfs (cpu0, the first cache of type Data at level 1);
    `default` (32 KiB, the common size) where that is not available.
    """
    import glob
    import os

    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(os.path.join(index, "level")) as f:
                level = f.read().strip()
            with open(os.path.join(index, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(index, "size")) as f:
                size = f.read().strip()
        except OSError:
            continue
        if level == "1" and kind in ("Data", "Unified"):
            units = {"K": 1024, "M": 1024 * 1024}
            if size[-1:] in units and size[:-1].isdigit():
                return int(size[:-1]) * units[size[-1]]
            if size.isdigit():
                return int(size)
    return default
