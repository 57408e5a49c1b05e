"""PyTorch: eager autograd with a manual SGD update, and `torch.compile`.

- eager: parameters with `requires_grad`, `torch.autograd.grad` of the loss,
  then the update in place under `torch.no_grad()` (`torch._foreach_add_`);
- torch.compile: the whole step, `torch.func.grad_and_value` and the in-place
  update, compiled with `torch.compile(dynamic=False)`, so forward, backward
  and update are all in the compiled graph (compiling only the loss and
  running autograd eagerly measured slower than eager here).

Threads: `torch.set_num_threads(threads)` when the harness limits threads
(its default: 1, as raster_mlir uses one), else PyTorch's default (one per
core); the JSON records `torch.get_num_threads()`. Data and parameters
share memory with the 64-byte aligned numpy arrays (`torch.from_numpy`).

`torch.compile` needs a working C++ compiler. Before the first use a small
function is compiled in a subprocess with a time limit; if that fails or
takes longer than `PROBE_SECONDS`, the contender is reported as "failed" with
the reason, and a compile that raises later marks only its own workload.
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import grad_and_value

from bench.workloads import Contender, Failed, Implementation, cycling
from bench.workloads.model import LR

PROBE_SECONDS = 120
PROBE = """
import torch
f = torch.compile(lambda a: (a * 2.0).sin().sum(), dynamic=False)
print(float(f(torch.ones(8, dtype=torch.float64))))
"""


def logits(params, x):
    h = x
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = F.linear(h, params[2 * k], params[2 * k + 1])
        if k < n_layers - 1:
            h = torch.relu(h)
    return h


def loss_fn(params, x, y):
    per_sample = -(y * torch.log_softmax(logits(params, x), dim=-1)).sum(dim=-1)
    return per_sample.mean()  # the mean of one value for a single sample


def predict(params, x):
    return torch.softmax(logits(params, x), dim=-1)


def _tensors(arrays, requires_grad=False):
    return [torch.from_numpy(a).requires_grad_(requires_grad) for a in arrays]


def _numpy(params):
    return [p.detach().numpy().copy() for p in params]


class TorchEager(Implementation):
    key = "torch"
    label = "PyTorch eager"

    def __init__(self, threads=None):
        super().__init__(threads)
        if threads:
            torch.set_num_threads(threads)

    def details(self):
        return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                "update": "torch._foreach_add_ under torch.no_grad()"}  # fmt: skip

    def train_step(self, spec, params, xs, ys):
        P = _tensors(params, requires_grad=True)

        def step(x, y):
            loss = loss_fn(P, x, y)
            grads = torch.autograd.grad(loss, P)
            with torch.no_grad():
                torch._foreach_add_(P, grads, alpha=-LR)
            return loss

        return Contender(cycling(step, list(zip(_tensors(xs), _tensors(ys)))), lambda: _numpy(P))

    def predictor(self, spec, params, xs):
        P = _tensors(params)

        def forward(x):
            with torch.no_grad():
                return predict(P, x)

        return Contender(cycling(forward, [(x,) for x in _tensors(xs)]))


def _functional_step(*args):
    """(W1, b1, ..., x, y) -> loss; gradients by torch.func, parameters updated in place."""
    *params, x, y = args
    grads, loss = grad_and_value(loss_fn)(params, x, y)
    for p, g in zip(params, grads):
        p.sub_(g, alpha=LR)
    return loss


def _forward(*args):
    *params, x = args
    return predict(params, x)


class TorchCompile(Implementation):
    key = "torch_compile"
    label = "torch.compile"
    _probe_error: str | None = None
    _probed = False

    def __init__(self, threads=None):
        super().__init__(threads)
        if threads:
            torch.set_num_threads(threads)
        # Every configuration is a new specialisation of the same code; let dynamo keep them all.
        torch._dynamo.config.cache_size_limit = 256
        if hasattr(torch._dynamo.config, "recompile_limit"):
            torch._dynamo.config.recompile_limit = 256

    def check(self) -> None:
        cls = type(self)
        if not cls._probed:
            cls._probed = True
            cls._probe_error = self._probe()
        if cls._probe_error:
            raise Failed(cls._probe_error)

    @staticmethod
    def _probe() -> str | None:
        start = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-c", PROBE], check=False, capture_output=True, text=True, timeout=PROBE_SECONDS)
        except subprocess.TimeoutExpired:
            return f"compiling a one-line function took longer than {PROBE_SECONDS} s"
        if out.returncode != 0:
            lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
            return f"torch.compile failed: {lines[-1] if lines else 'exit status ' + str(out.returncode)}"
        TorchCompile.probe_seconds = time.perf_counter() - start
        return None

    def details(self):
        import torch._inductor.config as inductor

        return {"threads": torch.get_num_threads(), "backend": "inductor", "dynamic": False,
                "cpp_compiler": str(getattr(inductor.cpp, "cxx", "")), "step": "grad_and_value + in-place sub_",
                "probe_seconds": getattr(type(self), "probe_seconds", None)}  # fmt: skip

    def train_step(self, spec, params, xs, ys):
        P = _tensors(params)
        step = torch.compile(_functional_step, dynamic=False)
        data = [(*P, x, y) for x, y in zip(_tensors(xs), _tensors(ys))]
        return Contender(cycling(step, data), lambda: _numpy(P))

    def predictor(self, spec, params, xs):
        P = _tensors(params)
        forward = torch.compile(_forward, dynamic=False)
        return Contender(cycling(forward, [(*P, x) for x in _tensors(xs)]))
