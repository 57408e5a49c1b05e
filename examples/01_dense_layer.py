"""Step 1: a dense layer, y = W x + b.

nn.dense runs eagerly on plain lists and numpy arrays, and the same call
inside an @rm.jit function is traced to the raster dialect and compiled to
native code. Both give the seed's numbers: [0.5, 1.1].

    python examples/01_dense_layer.py
"""

import numpy as np

import raster_mlir as rm
from raster_mlir import nn

W = [[0.1, 0.2], [0.3, 0.4]]
x = [1.0, 2.0]
b = [0.0, 0.0]

eager = nn.dense(W, x, b)
print("nn.dense(W, x, b)         =", repr(eager))


@rm.jit
def dense_layer(W, x, b):
    return nn.dense(W, x, b)


args = [np.array(a) for a in (W, x, b)]
compiled = dense_layer(*args)
print("@rm.jit dense_layer(...)  =", repr(compiled))
assert np.allclose(eager, [0.5, 1.1]) and np.allclose(compiled, [0.5, 1.1])

print("\nThe traced IR (rm.compile(dense_layer, ...).ir('traced')):")
print(rm.compile(dense_layer, *args).ir("traced"))
