"""Optimiser state belongs to the parameters, whatever the batch shape (as in torch.optim).

Regression (issue 18, item 2): momentum and Adam's moments were kept per call
signature while the update count was shared, so a smaller last batch, or single
samples alternating with batches, restarted the velocity or moments from zero
and got Adam's bias correction wrong; parameters drifted from torch.optim by up
to 0.1. Here K steps that alternate batch sizes (batches, single samples, a
`run` over samples) must equal torch.optim.SGD(momentum=0.9) and torch.optim.Adam
to 1e-12 relative in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import raster_mlir as rm
from raster_mlir import nn

torch = pytest.importorskip("torch")

SIZES = (5, 4, 3)  # in, hidden, out
# Each entry is one call: a batch size, "sample" (one 1-D sample) or ("run", N) (N samples in one run).
SCHEDULE = [4, "sample", 3, ("run", 3), "sample", 4, 1, ("run", 3), 3, "sample"]


def loss_fn(W1, b1, W2, b2, x, y):
    return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)


def torch_loss(params, x, y):
    W1, b1, W2, b2 = params
    h = torch.relu(x @ W1.T + b1)
    p = torch.softmax(h @ W2.T + b2, dim=-1)
    per_sample = -(y * torch.log(p)).sum(-1)
    return per_sample.mean() if x.ndim == 2 else per_sample


def batches(seed):
    rng = np.random.default_rng(seed)

    def draw(n):
        x = rng.standard_normal((n, SIZES[0]))
        y = np.eye(SIZES[2])[rng.integers(0, SIZES[2], n)]
        return x, y

    for item in SCHEDULE:
        if item == "sample":
            x, y = draw(1)
            yield "step", x[0], y[0]
        elif isinstance(item, tuple):
            yield "run", *draw(item[1])
        else:
            yield "step", *draw(item)


def initial_params(seed):
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = SIZES
    return [rng.normal(0, 0.5, (n_hidden, n_in)), rng.normal(0, 0.1, n_hidden),
            rng.normal(0, 0.5, (n_out, n_hidden)), rng.normal(0, 0.1, n_out)]  # fmt: skip


def train_with_raster_mlir(optimizer, seed):
    params = initial_params(seed)
    step = rm.compile_train_step(loss_fn, params=(0, 1, 2, 3), optimizer=optimizer)
    for kind, x, y in batches(seed):
        if kind == "run":
            step.run(*params, x, y)
        else:
            step(*params, x, y)
    return params, step


def train_with_torch(make_optimizer, seed):
    params = [torch.tensor(p, requires_grad=True) for p in initial_params(seed)]
    optimizer = make_optimizer(params)

    def one_step(x, y):
        optimizer.zero_grad()
        torch_loss(params, torch.tensor(x), torch.tensor(y)).backward()
        optimizer.step()

    for kind, x, y in batches(seed):
        if kind == "run":  # N steps of one sample each
            for xi, yi in zip(x, y):
                one_step(xi, yi)
        else:
            one_step(x, y)
    return [p.detach().numpy() for p in params]


OPTIMIZERS = {
    "sgd-momentum": (rm.optim.SGD(lr=0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    "adam": (rm.optim.Adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_alternating_batch_sizes_equal_torch_optim(name):
    ours, theirs = OPTIMIZERS[name]
    params, step = train_with_raster_mlir(ours, seed=3)
    expected = train_with_torch(theirs, seed=3)
    calls = sum(len(x) if kind == "run" else 1 for kind, x, _ in batches(3))
    assert step.steps_taken == calls
    for got, want, label in zip(params, expected, ["W1", "b1", "W2", "b2"]):
        assert not np.allclose(got, initial_params(3)[["W1", "b1", "W2", "b2"].index(label)]), f"{label} did not move"
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max(), err_msg=f"{name} {label}")


def test_parameters_of_other_shapes_get_their_own_state():
    """One step object used for two models: each keeps its own moments and update count."""
    opt = rm.optim.Adam(lr=0.01)
    step = rm.compile_train_step(loss_fn, params=(0, 1, 2, 3), optimizer=opt)
    big = [np.full((6, 5), 0.1), np.zeros(6), np.full((3, 6), 0.1), np.zeros(3)]
    small = initial_params(4)
    alone = [p.copy() for p in small]
    x, y = np.ones(5), np.eye(3)[0]
    alone_step = rm.compile_train_step(loss_fn, params=(0, 1, 2, 3), optimizer=opt)
    for _ in range(3):
        step(*big, x, y)
        step(*small, x, y)
        alone_step(*alone, x, y)
    assert step.steps_taken == 3
    for got, want in zip(small, alone):
        np.testing.assert_array_equal(got, want)
