"""Optimisers for `rm.compile_train_step`: the update rule written with rm ops.

An optimiser's `update` is ordinary array code (`rm.*` ops and operators), so
inside a compiled train step it is traced into the same function as the
forward and backward passes and fused with them, and outside it runs eagerly
on numpy arrays (the tests use that as the reference).

State (momentum, Adam's moments) lives in arrays the train-step object owns;
values that change every step (Adam's bias corrections) are passed in as
scalars (`step_scalars`), so the compiled code never has to be rebuilt.
Hyper-parameters (lr, betas...) are compile-time constants of the step.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

from raster_mlir import ops


class Optimizer(abc.ABC):
    """The protocol `compile_train_step` relies on."""

    @abc.abstractmethod
    def state_count(self) -> int:
        """How many state arrays (each shaped like its parameter) one parameter needs."""

    @abc.abstractmethod
    def step_scalars(self, t: int) -> list[float]:
        """Scalars for update number t (1-based), passed to `update` as 0-d arrays."""

    @abc.abstractmethod
    def update(self, params: Sequence, grads: Sequence, states: Sequence[Sequence], scalars: Sequence):
        """(new_params, new_states) from parameters, gradients, per-parameter states and scalars."""


@dataclass(frozen=True)
class SGD(Optimizer):
    """p <- p - lr * g; with momentum: v <- momentum * v + g; p <- p - lr * v."""

    lr: float = 0.01
    momentum: float = 0.0

    def state_count(self) -> int:
        return 1 if self.momentum else 0

    def step_scalars(self, t: int) -> list[float]:
        return []

    def update(self, params, grads, states, scalars):
        if not self.momentum:
            return [p - self.lr * g for p, g in zip(params, grads)], [[] for _ in params]
        velocities = [self.momentum * s[0] + g for s, g in zip(states, grads)]
        return [p - self.lr * v for p, v in zip(params, velocities)], [[v] for v in velocities]


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba): m, v moments with bias correction; eps added to sqrt(v_hat)."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def state_count(self) -> int:
        return 2

    def step_scalars(self, t: int) -> list[float]:
        # lr * sqrt(1 - b2^t) / (1 - b1^t) folds both bias corrections into one step size;
        # eps is scaled by the same sqrt(1 - b2^t) so the update equals the textbook form.
        c2 = math.sqrt(1.0 - self.b2**t)
        return [self.lr * c2 / (1.0 - self.b1**t), self.eps * c2]

    def update(self, params, grads, states, scalars):
        step_size, eps_hat = scalars
        new_params, new_states = [], []
        for p, g, (m, v) in zip(params, grads, states):
            m = self.b1 * m + (1.0 - self.b1) * g
            v = self.b2 * v + (1.0 - self.b2) * (g * g)
            new_params.append(p - step_size * m / (ops.sqrt(v) + eps_hat))
            new_states.append([m, v])
        return new_params, new_states
