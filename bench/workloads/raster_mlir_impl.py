"""raster_mlir: the loss written with `nn` ops, the step from `rm.compile_train_step`.

- train step: `step(*params, x, y)` from Python, one native call per step
  (forward, backward and the in-place SGD update fused into one function);
- data loop: `step.run(*params, X, Y)`, every sample of X/Y in one native
  call: by default with deferred first-layer updates; `update_block=1` for
  the bitwise cross-step rotation; `cross_step_fusion=False` step by step;
- inference: `rm.jit` of the forward pass to probabilities.

Parameters are 64-byte aligned with `rm.aligned`, as `raster-mlir train` does.
Threads: `rm.set_num_threads(threads)` when the harness limits threads, else
raster_mlir's default (the CPUs the process may use); per-sample steps stay
on one thread either way (too little work per loop to pay a dispatch).
"""

from __future__ import annotations

import raster_mlir as rm
from bench.workloads import Contender, Implementation, cycling
from bench.workloads.model import LR
from raster_mlir import nn


def mlp_logits(params, x):
    """Dense layers with relu between them; the last layer's output (logits)."""
    h = x
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = nn.dense(params[2 * k], h, params[2 * k + 1])
        if k < n_layers - 1:
            h = nn.relu(h)
    return h


def mlp_loss(*args):
    """mlp_loss(W1, b1, ..., WL, bL, x, y): cross-entropy of the softmax of the logits."""
    *params, x, y = args
    return nn.cross_entropy(nn.softmax(mlp_logits(params, x)), y)


def mlp_predict(*args):
    """mlp_predict(W1, b1, ..., WL, bL, x): softmax probabilities."""
    *params, x = args
    return nn.softmax(mlp_logits(params, x))


def sgd_train_step(layers: int, batch: int | None = None, lr: float = LR, **options):
    """The f64 784 -> 128 x (layers - 1) -> 10 train step the compile-time benchmarks build, uncompiled:
    (step, its 64-byte aligned parameters, one aligned sample x, y - or a batch of them); `options`
    go to rm.compile_train_step (e.g. `pipeline`)."""
    import numpy as np

    from bench.workloads import model

    params = [rm.aligned(p) for p in model.init_params(model.Spec(model.mlp_sizes(128, layers), "f64"))]
    rng = np.random.default_rng(1)
    if batch is None:
        x, y = rm.aligned(rng.random(model.N_IN)), rm.aligned(np.eye(model.N_OUT)[3])
    else:
        x, y = rm.aligned(rng.random((batch, model.N_IN))), rm.aligned(np.eye(model.N_OUT)[rng.integers(0, 10, batch)])
    step = rm.compile_train_step(mlp_loss, params=tuple(range(len(params))), optimizer=rm.optim.SGD(lr=lr), **options)
    return step, params, x, y


def cache_source(compiled) -> str:
    source = compiled.native.function.cache_source
    return source or "compiled"


class RasterMlir(Implementation):
    key = "raster_mlir"
    label = "raster_mlir"

    def __init__(self, threads=None):
        super().__init__(threads)
        if threads:
            rm.set_num_threads(threads)

    def details(self):
        return {"threads": rm.get_num_threads(), "parameters": "64-byte aligned (rm.aligned)"}

    def _step(self, spec, params):
        P = [rm.aligned(p) for p in params]
        step = rm.compile_train_step(mlp_loss, params=tuple(range(len(P))), optimizer=rm.optim.SGD(lr=LR))
        return step, P

    def train_step(self, spec, params, xs, ys):
        step, P = self._step(spec, params)
        arguments = [(*P, x, y) for x, y in zip(xs, ys)]
        return Contender(
            cycling(step, arguments), lambda: P, info=lambda: {"cache_source": cache_source(step.lower(*arguments[0]))}
        )

    def data_loop(self, spec, params, xs, ys, schedule):
        step, P = self._step(spec, params)
        options = {
            "deferred": {},  # the default: rank-one updates deferred over blocks of samples
            "rotated": {"update_block": 1},
            "stepwise": {"cross_step_fusion": False},
        }[schedule]

        def run():
            return step.run(*P, xs, ys, **options)

        return Contender(
            run,
            lambda: P,
            note=f"step.run over {len(xs)} samples",
            info=lambda: {"schedule": step.run_schedule},
        )

    def predictor(self, spec, params, xs):
        P = [rm.aligned(p) for p in params]
        predict = rm.jit(mlp_predict)
        return Contender(cycling(predict, [(*P, x) for x in xs]))
