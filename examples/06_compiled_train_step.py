"""Step 6: the whole training step as ONE native function.

rm.compile_train_step(loss, params=(0, 1, 2, 3), optimizer=SGD(lr)) traces
forward pass, backward pass and update together; fuse-loops merges the
gradient's outer product into the update loop, so dW1 never exists as an
array. step(...) updates W1, b1, W2, b2 in place and returns the loss.

This script prints the head of the loop-level IR after fuse-loops and
compares the time per step with example 05's value_and_grad + numpy update.

    python examples/06_compiled_train_step.py
"""

import time

import numpy as np

import raster_mlir as rm
from raster_mlir import nn


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def init(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 0.5, size=(8, 4)), np.zeros(8), rng.normal(0.0, 0.5, size=(3, 8)), np.zeros(3)]


x = np.array([0.5, -1.0, 0.25, 2.0])
y = np.array([0.0, 1.0, 0.0])
lr, steps = 0.5, 2000

params = init()
step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=lr))
start = time.perf_counter()
first = step(*params, x, y)  # traces, runs the passes, JIT-compiles, then steps
print(f"first call (compile + step): {time.perf_counter() - start:.3f} s, loss {first:.6f}")

print("\nstages:", ", ".join(step.stages))
ir = step.ir("after:fuse-loops").splitlines()
print(f'\nstep.ir("after:fuse-loops"), first 25 of {len(ir)} lines:')
print("\n".join(ir[:25]))

start = time.perf_counter()
for _ in range(steps):
    loss = step(*params, x, y)
compiled_us = 1e6 * (time.perf_counter() - start) / steps
print(f"\ncompiled train step: {compiled_us:.2f} us per step, loss after {steps + 1} steps {loss:.3e}")

# The same SGD with value_and_grad and the update in numpy (example 05's loop).
reference = init()
value_and_grad = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
value_and_grad(*reference, x, y)  # compile outside the timing
reference = init()
start = time.perf_counter()
for _ in range(steps + 1):
    ref_loss, grads = value_and_grad(*reference, x, y)
    for p, g in zip(reference, grads):
        p -= lr * g
numpy_us = 1e6 * (time.perf_counter() - start) / (steps + 1)
print(f"value_and_grad + numpy update: {numpy_us:.2f} us per step")

gap = max(float(np.max(np.abs(a - b))) for a, b in zip(params, reference))
print(f"largest difference between the two sets of weights: {gap:.1e}")
assert gap < 1e-9
