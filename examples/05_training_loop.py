"""Step 5: a training loop, 200 SGD steps with rm.value_and_grad.

Each step computes the loss and the six gradients in one compiled call and
updates the weights in numpy. The loss curve is saved as a log-scale PNG when
matplotlib is installed (pip install -e '.[demo]'); without it the plot is
skipped with a message and the script still trains. Without a path argument the
PNG goes to the system's temporary directory (the script prints where), so running
it leaves nothing in the folder you run it from.

    python examples/05_training_loop.py [loss.png]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import raster_mlir as rm
from raster_mlir import nn


@rm.jit
def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)


def save_plot(losses, path):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: plot skipped (pip install -e '.[demo]' to get it)")
        return
    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(losses)
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("4 -> 8 -> 3 MLP, one sample, lr 0.5")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    print(f"saved the loss curve to {path}")


rng = np.random.default_rng(0)
W1 = rng.normal(0.0, 0.5, size=(8, 4))
b1 = np.zeros(8)
W2 = rng.normal(0.0, 0.5, size=(3, 8))
b2 = np.zeros(3)
x = np.array([0.5, -1.0, 0.25, 2.0])
y = np.array([0.0, 1.0, 0.0])
lr = 0.5

value_and_grad = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))
losses = []
start = time.perf_counter()
for step in range(200):
    loss, (dW1, db1, dW2, db2) = value_and_grad(W1, b1, W2, b2, x, y)
    losses.append(loss)
    W1 -= lr * dW1
    b1 -= lr * db1
    W2 -= lr * dW2
    b2 -= lr * db2
    if step % 20 == 0 or step == 199:
        print(f"step {step:3d}  loss {loss:.6e}")
print(f"200 steps in {time.perf_counter() - start:.3f} s (the first call traces and compiles)")
assert losses[-1] < losses[0] / 100, "the loss should fall by more than 100x"

default_png = Path(tempfile.gettempdir()) / "raster_mlir_examples" / "05_training_loop_loss.png"
if len(sys.argv) > 1:
    save_plot(losses, sys.argv[1])
else:
    default_png.parent.mkdir(exist_ok=True)
    save_plot(losses, default_png)
