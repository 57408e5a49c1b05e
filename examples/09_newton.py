"""Step 9: second-order optimisation with forward mode over reverse mode.

1. Newton's method on Rosenbrock's function with rm.hessian:
       x <- x - H(x)^-1 grad f(x)
   The gradient and the Hessian come from ONE native function (the Hessian
   is jacfwd(jacrev(f)): a jvp of the generated gradient per coordinate).

2. A Hessian-free Newton-CG step on the seed's MLP loss with rm.hvp: the
   conjugate-gradient solver of (H + damping I) p = -g only needs products
   H v, each a forward-over-reverse pass (the jvp of the gradient) that never
   forms H. Compared with gradient descent on the same data.

    python examples/09_newton.py
"""

import numpy as np

import raster_mlir as rm
from raster_mlir import nn

# ---------------------------------------------------------------------------
# 1. Newton's method on Rosenbrock: f(x) = sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2


def rosenbrock(x):
    return rm.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1.0 - x[:-1]) ** 2.0)


@rm.jit
def newton_system(x):
    """(f, gradient, Hessian) at x, one compiled function."""
    return rosenbrock(x), rm.grad(rosenbrock, argnums=0)(x), rm.hessian(rosenbrock)(x)


x = np.array([-1.2, 1.0])
print("Newton's method on Rosenbrock, from", x)
for it in range(20):
    f, g, H = newton_system(x)
    print(f"  iter {it:2d}  f = {f:.6e}  |grad| = {np.linalg.norm(g):.3e}  x = {np.round(x, 6)}")
    if np.linalg.norm(g) < 1e-10:
        break
    x = x - np.linalg.solve(H, g)
assert np.allclose(x, 1.0, atol=1e-8), x
print(f"converged to {x} in {it} Newton steps (the minimum is (1, 1))")

# ---------------------------------------------------------------------------
# 2. Hessian-free Newton-CG on the seed's MLP (4 -> 8 -> 3), a batch of 60 samples


def mlp_loss(W1, b1, W2, b2, x, y):
    h = nn.relu(nn.dense(W1, x, b1))
    p = nn.softmax(nn.dense(W2, h, b2))
    return nn.cross_entropy(p, y)  # mean over the batch


rng = np.random.default_rng(0)
centres = rng.normal(0.0, 2.0, size=(3, 4))
labels = rng.integers(0, 3, size=60)
X = centres[labels] + rng.normal(0.0, 1.0, size=(60, 4))
Y = np.eye(3)[labels]
params0 = [rng.normal(0.0, 0.5, (8, 4)), np.zeros(8), rng.normal(0.0, 0.5, (3, 8)), np.zeros(3)]
value_and_grad = rm.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))


def dot(us, vs):
    return sum(float(np.sum(u * v)) for u, v in zip(us, vs))


HVP_CALLS = [0]


def newton_cg_direction(params, g, damping, cg_iterations=25):
    """p with (H + damping I) p = -g, by conjugate gradients (stopped at negative curvature)."""
    p = [np.zeros_like(a) for a in params]
    r = [-gi for gi in g]  # the residual at p = 0
    d = list(r)
    rr = dot(r, r)
    for _ in range(cg_iterations):
        Hd = rm.hvp(mlp_loss, (*params, X, Y), tuple(d), argnums=(0, 1, 2, 3))
        HVP_CALLS[0] += 1
        Hd = [h + damping * di for h, di in zip(Hd, d)]
        curvature = dot(d, Hd)
        if curvature <= 0:  # H + damping I is not positive definite along d: keep what we have
            break
        alpha = rr / curvature
        p = [pi + alpha * di for pi, di in zip(p, d)]
        r = [ri - alpha * hi for ri, hi in zip(r, Hd)]
        rr_new = dot(r, r)
        if rr_new < 1e-24:
            break
        d = [ri + (rr_new / rr) * di for ri, di in zip(r, d)]
        rr = rr_new
    return p


def newton_cg(params, steps, damping=1.0):
    """Newton-CG with Levenberg-Marquardt damping: more damping after a step that does not help."""
    loss, g = value_and_grad(*params, X, Y)
    history = [loss]
    for _ in range(steps):
        while True:
            p = newton_cg_direction(params, g, damping)
            trial = [a + pi for a, pi in zip(params, p)]
            trial_loss, trial_g = value_and_grad(*trial, X, Y)
            if trial_loss < loss:
                params, loss, g, damping = trial, trial_loss, trial_g, damping / 3
                break
            damping *= 10
        history.append(loss)
    return params, history


def gradient_descent(params, steps, lr=0.5):
    history = []
    for _ in range(steps):
        loss, g = value_and_grad(*params, X, Y)
        history.append(loss)
        params = [a - lr * gi for a, gi in zip(params, g)]
    history.append(value_and_grad(*params, X, Y)[0])
    return params, history


print("\nHessian-free Newton-CG on the seed's MLP (60 samples, 3 classes), against gradient descent")
newton, newton_losses = newton_cg([a.copy() for a in params0], steps=10)
descent, descent_losses = gradient_descent([a.copy() for a in params0], steps=100)
for step in range(0, 11, 2):
    print(f"  Newton-CG step {step:2d}: loss {newton_losses[step]:.6f}   gradient descent step {10 * step:3d}: loss {descent_losses[10 * step]:.6f}")
print(f"after 10 Newton-CG steps ({HVP_CALLS[0]} Hessian-vector products) the loss is {newton_losses[-1]:.2e}, "
      f"after 100 gradient steps {descent_losses[-1]:.2e}")
assert newton_losses[-1] < descent_losses[-1]

# One Hessian-vector product checked against the full Hessian of the output layer's bias.
v = rng.normal(size=3)
hv = rm.hvp(mlp_loss, (*newton, X, Y), (v,), argnums=3)
H_b2 = rm.hessian(mlp_loss, 3)(*newton, X, Y)
print("hvp matches the Hessian of b2 times v:", np.allclose(hv, H_b2 @ v, rtol=1e-12, atol=1e-14))
