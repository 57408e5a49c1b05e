"""Fit the spring constant and the damping of an oscillator by gradient descent through its simulation.

The oscillator x'' = -k x - c x' is integrated with 1,000 classical Runge-Kutta
(RK4) steps in one `rm.scan`, which records the position at every step. The
"observed" trajectory comes from k = 2.5, c = 0.3 plus measurement noise.
Starting from k = 1, c = 1, gradient descent (Adam) on the mean squared
distance between simulated and observed positions recovers both parameters:
every gradient is one native function that runs the 1,000 steps forwards,
then backwards through a tape of the states, never unrolled.

Run: python examples/07_ode_fit.py
"""

from __future__ import annotations

import time

import numpy as np

import raster_mlir as rm

STEPS, DT = 1000, 0.01


def simulate(theta, state0):
    """Positions after each of STEPS RK4 steps; theta = (k, c), state0 = (x0, v0)."""
    k, c = theta[0], theta[1]

    def rates(x, v):
        return v, -k * x - c * v

    def rk4_step(state, _):
        x, v = state[0], state[1]
        dx1, dv1 = rates(x, v)
        dx2, dv2 = rates(x + 0.5 * DT * dx1, v + 0.5 * DT * dv1)
        dx3, dv3 = rates(x + 0.5 * DT * dx2, v + 0.5 * DT * dv2)
        dx4, dv4 = rates(x + DT * dx3, v + DT * dv3)
        x = x + DT / 6.0 * (dx1 + 2.0 * dx2 + 2.0 * dx3 + dx4)
        v = v + DT / 6.0 * (dv1 + 2.0 * dv2 + 2.0 * dv3 + dv4)
        return rm.stack([x, v]), x

    _, positions = rm.scan(rk4_step, state0, length=STEPS)
    return positions


def loss(theta, state0, observed):
    return rm.mean((simulate(theta, state0) - observed) ** 2.0)


def main():
    rng = np.random.default_rng(0)
    state0 = np.array([1.0, 0.0])
    true_theta = np.array([2.5, 0.3])
    observed = rm.jit(simulate)(true_theta, state0) + 0.01 * rng.standard_normal(STEPS)

    value_and_grad = rm.value_and_grad(loss, argnums=0)
    theta = np.array([1.0, 1.0])
    m, v = np.zeros(2), np.zeros(2)  # Adam
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    start = time.perf_counter()
    for step in range(1, 201):
        value, g = value_and_grad(theta, state0, observed)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        theta = theta - lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-12)
        if step % 50 == 0:
            print(f"step {step:3d}: loss {value:.3e}  k = {theta[0]:.4f}  c = {theta[1]:.4f}")
    elapsed = time.perf_counter() - start
    print(f"200 gradient steps through {STEPS} RK4 steps each in {elapsed:.2f} s (first includes compiling)")
    print(f"recovered k = {theta[0]:.2f}, c = {theta[1]:.2f} (true k = {true_theta[0]}, c = {true_theta[1]})")
    compiled = value_and_grad.lower(theta, state0, observed)
    print(compiled.tape_report())


if __name__ == "__main__":
    main()
