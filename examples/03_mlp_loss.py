"""Step 3: the seed's MLP, 4 -> 8 -> 3, and its cross-entropy loss.

    h = relu(W1 x + b1);  p = softmax(W2 h + b2);  loss = -sum(y * log p)

The loss is an ordinary Python function of six arrays; @rm.jit compiles it
per (shapes, dtypes) and returns a Python float.

    python examples/03_mlp_loss.py
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
W1 = rng.normal(0.0, 0.5, size=(8, 4))
b1 = np.zeros(8)
W2 = rng.normal(0.0, 0.5, size=(3, 8))
b2 = np.zeros(3)
x = np.array([0.5, -1.0, 0.25, 2.0])
y = np.array([0.0, 1.0, 0.0])  # one-hot: class 1

# The same maths eagerly, op by op, to see the intermediate values.
h = nn.relu(nn.dense(W1, x, b1))
p = nn.softmax(nn.dense(W2, h, b2))
print("hidden h      =", np.round(h, 4))
print("probabilities =", np.round(p, 4), " (sum", p.sum(), ")")
print("eager loss    =", nn.cross_entropy(p, y), " = -log p[1] =", -np.log(p[1]))

loss = mlp_loss(W1, b1, W2, b2, x, y)
print("compiled loss =", loss, type(loss).__name__)
assert isinstance(loss, float) and abs(loss + np.log(p[1])) < 1e-12

# A batch of inputs: x (batch, 4), y (batch, 3); the loss is the batch mean.
xs = rng.normal(size=(5, 4))
ys = np.eye(3)[[0, 1, 2, 1, 0]]
print("batch of 5    =", mlp_loss(W1, b1, W2, b2, xs, ys))
