"""JAX: `jax.jit` of value_and_grad plus the SGD update, parameters donated.

float64 needs `jax_enable_x64`, switched on when this module is imported
(float32 arrays stay float32). Every call waits for its result
(`block_until_ready`), so a step is timed to completion like the others'.
XLA keeps its own CPU thread pool: the harness's thread limit does not apply
(XLA_FLAGS' intra-op settings did not change its CPU use here), so JAX may
use every core on the batched rows. The data loop is `jax.lax.scan` of the same step over the samples, jitted
as one computation: the closest JAX has to `step.run`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bench.workloads import Contender, Implementation, cycling
from bench.workloads.model import LR

jax.config.update("jax_enable_x64", True)


def logits(params, x):
    h = x
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = h @ params[2 * k].T + params[2 * k + 1]
        if k < n_layers - 1:
            h = jax.nn.relu(h)
    return h


def loss_fn(params, x, y):
    per_sample = -jnp.sum(y * jax.nn.log_softmax(logits(params, x), axis=-1), axis=-1)
    return jnp.mean(per_sample) if x.ndim == 2 else per_sample


def sgd_step(params, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    return [p - LR * g for p, g in zip(params, grads)], loss


def predict(params, x):
    return jax.nn.softmax(logits(params, x), axis=-1)


def scan_loop(params, xs, ys):
    def body(params, xy):
        return sgd_step(params, *xy)

    return jax.lax.scan(body, params, (xs, ys))


class JaxJit(Implementation):
    key = "jax"
    label = "JAX jit"

    def __init__(self, threads=None):
        super().__init__(threads)
        self.step = jax.jit(sgd_step, donate_argnums=0)
        self.loop = jax.jit(scan_loop, donate_argnums=0)
        self.forward = jax.jit(predict)

    def details(self):
        return {
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "threads": "XLA's default CPU thread pool (no reliable per-process limit; may use every core)",
            "x64": bool(jax.config.jax_enable_x64),
            "donate_argnums": 0,
        }

    def train_step(self, spec, params, xs, ys):
        state = [[jnp.asarray(p) for p in params]]
        step = self.step
        data = [(jax.device_put(x), jax.device_put(y)) for x, y in zip(xs, ys)]

        def one(x, y):
            state[0], loss = step(state[0], x, y)
            return loss.block_until_ready()

        return Contender(cycling(one, data), lambda: [np.asarray(p) for p in state[0]])

    def data_loop(self, spec, params, xs, ys, schedule):
        if schedule != "deferred":  # one scan row, beside raster_mlir's fastest loop
            return None
        state = [[jnp.asarray(p) for p in params]]
        loop = self.loop
        xs, ys = jax.device_put(xs), jax.device_put(ys)

        def run():
            state[0], losses = loop(state[0], xs, ys)
            return losses.block_until_ready()

        return Contender(run, lambda: [np.asarray(p) for p in state[0]], note=f"jax.lax.scan over {len(xs)} samples")

    def predictor(self, spec, params, xs):
        P = [jnp.asarray(p) for p in params]
        forward = self.forward
        data = [(jax.device_put(x),) for x in xs]
        return Contender(cycling(lambda x: forward(P, x).block_until_ready(), data))
