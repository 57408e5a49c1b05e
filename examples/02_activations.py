"""Step 2: activations, relu and softmax of [-1, 0, 1, 2].

relu clips negatives to zero; softmax turns scores into probabilities that
sum to one (computed stably: the row maximum is subtracted before exp).

    python examples/02_activations.py
"""

import numpy as np

import raster_mlir as rm
from raster_mlir import nn

z = np.array([-1.0, 0.0, 1.0, 2.0])

r = nn.relu(z)
p = nn.softmax(z)
print("z             =", z)
print("nn.relu(z)    =", r)
print("nn.softmax(z) =", np.array2string(p, precision=17))
print("sum(softmax)  =", p.sum())
assert np.array_equal(r, [0.0, 0.0, 1.0, 2.0])
assert abs(p.sum() - 1.0) < 1e-15


@rm.jit
def activations(z):
    return nn.relu(z), nn.softmax(z)


r_jit, p_jit = activations(z)
print("compiled relu, softmax:", r_jit, np.array2string(p_jit, precision=17))
print("largest difference from eager:", float(np.max(np.abs(p_jit - p))))
assert np.array_equal(r_jit, r) and np.allclose(p_jit, p, rtol=1e-14, atol=0)
