"""Step 4: gradients. rm.value_and_grad returns the loss and six gradients.

The autodiff pass builds the backward pass from hand-written reverse rules;
each gradient has its argument's shape. One entry is checked here against a
central finite difference.

    python examples/04_value_and_grad.py
"""

import numpy as np

import raster_mlir as rm
from raster_mlir import nn


@rm.jit
def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


rng = np.random.default_rng(0)
args = [
    rng.normal(0.0, 0.5, size=(8, 4)),
    np.zeros(8),
    rng.normal(0.0, 0.5, size=(3, 8)),
    np.zeros(3),
    np.array([0.5, -1.0, 0.25, 2.0]),
    np.array([0.0, 1.0, 0.0]),
]
names = ["W1", "b1", "W2", "b2", "x", "y"]

loss, grads = rm.value_and_grad(mlp_loss)(*args)
print(f"loss = {loss:.6f}; {len(grads)} gradients:")
for name, g in zip(names, grads):
    print(f"  d loss / d {name:2s}  shape {g.shape!s:7s}  norm {np.linalg.norm(g):.6f}")
print(f"|grad W1| = {np.linalg.norm(grads[0]):.6e}")

# Central difference on the largest entry of grad W1.
i, j = np.unravel_index(np.argmax(np.abs(grads[0])), grads[0].shape)
eps = 1e-6
plus, minus = [a.copy() for a in args], [a.copy() for a in args]
plus[0][i, j] += eps
minus[0][i, j] -= eps
numeric = (mlp_loss(*plus) - mlp_loss(*minus)) / (2 * eps)
print(f"dW1[{i},{j}]: autodiff {grads[0][i, j]:.9f}, finite difference {numeric:.9f}")
assert abs(numeric - grads[0][i, j]) < 1e-6 * max(1.0, abs(numeric))

# Only some arguments: argnums picks them, as in JAX.
loss2, (dW1, db1) = rm.value_and_grad(mlp_loss, argnums=(0, 1))(*args)
assert loss2 == loss and np.array_equal(dW1, grads[0]) and np.array_equal(db1, grads[1])
print("argnums=(0, 1) gives the same two gradients")
