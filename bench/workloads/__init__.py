"""The contenders: one module per implementation of the same MLP training step.

Every implementation offers, for a `model.Spec` (layer sizes, dtype), the
initial parameters and the per-step inputs (64-byte aligned numpy arrays):

- `train_step(spec, params, xs, ys)`: one SGD step per call on the next row
  of xs/ys (cycling), called from Python; the loss is computed on every call.
- `predictor(spec, params, xs)`: softmax probabilities of the next row of xs.
- `data_loop(spec, params, xs, ys, schedule)`: every row of xs/ys in one call
  (a compiled loop), returning the losses; None when the library has none.

Each returns a `Contender`: a zero-argument callable for the timing loop and
a way to read the parameters back (as numpy) for the correctness gate.

Implementations are imported lazily and only when asked for, so a missing
optional library (JAX, PyTorch) makes its contender "unavailable" instead of
breaking the harness.
"""

from __future__ import annotations

import abc

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

# key -> (module, class, label); the order is the column order of the report.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "raster_mlir": ("raster_mlir_impl", "RasterMlir", "raster_mlir"),
    "numpy": ("numpy_impl", "NumpyMLP", "numpy"),
    "jax": ("jax_impl", "JaxJit", "JAX jit"),
    "torch": ("torch_impl", "TorchEager", "PyTorch eager"),
    "torch_compile": ("torch_impl", "TorchCompile", "torch.compile"),
}
# A deliberately wrong contender for the harness's own test (`--inject-wrong`).
WRONG = ("numpy_wrong", ("numpy_impl", "WrongNumpyMLP", "numpy, injected bug"))


class Unavailable(Exception):
    """The implementation cannot run here (its library is not installed); the message says why."""


class Failed(Exception):
    """The implementation is installed but crashed when tried (reported as "failed", not "unavailable")."""


class NotRunnable(str):
    """Why an implementation is not run (the reason, a str), with its report status."""

    def __new__(cls, reason: str, status: str = "unavailable"):
        self = super().__new__(cls, reason)
        self.status = status
        return self


@dataclass
class Contender:
    """One implementation ready to time on one workload."""

    call: Callable[[], object]  # one step / one prediction / one data loop
    parameters: Callable[[], list[np.ndarray]] | None = None  # current parameters, as numpy
    info: Callable[[], dict] = field(default=dict)  # extra facts for the JSON (cache source...)
    note: str = ""  # how this contender does the workload, when not obvious


class Implementation(abc.ABC):
    """Base class; subclasses override what their library can do."""

    key = ""
    label = ""

    def __init__(self, threads: int | None = None):
        """`threads`: how many threads the library may use for one op (None: its default)."""
        self.threads = threads

    def check(self) -> None:
        """Raise Unavailable if the library is installed but cannot work here (run once, before use)."""

    def details(self) -> dict:
        """Settings that matter to the comparison (threads, options), for the JSON."""
        return {}

    @abc.abstractmethod
    def train_step(self, spec, params: Sequence[np.ndarray], xs: np.ndarray, ys: np.ndarray) -> Contender:
        """One train step per call, cycling over the samples (or batches) in xs, ys."""

    @abc.abstractmethod
    def predictor(self, spec, params: Sequence[np.ndarray], xs: np.ndarray) -> Contender:
        """One forward pass to probabilities per call, cycling over xs."""

    def data_loop(self, spec, params, xs, ys, schedule: str) -> Contender | None:
        return None


def cycling(fn: Callable, arguments: Sequence[tuple]) -> Callable[[], object]:
    """A zero-argument callable: each call is fn(*arguments[i]) for the next i, wrapping around."""
    n = len(arguments)
    i = n - 1

    def call():
        nonlocal i
        i = i + 1 if i + 1 < n else 0
        return fn(*arguments[i])

    return call


def load(key: str, threads: int | None = None) -> Implementation:
    """The implementation registered under `key`, or Unavailable(reason) if it is not installed."""
    module_name, class_name, _ = dict([WRONG]).get(key) or REGISTRY[key]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as error:
        raise Unavailable(f"not installed ({error.name or error}); pip install -e '.[bench]'") from None
    return getattr(module, class_name)(threads)


def label(key: str) -> str:
    return (dict([WRONG]).get(key) or REGISTRY[key])[2]
