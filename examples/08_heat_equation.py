"""Step 8: an inverse problem. Recover the diffusion coefficient of a 1-D heat equation.

The temperature u(x, t) on [0, 1] with fixed (zero) ends obeys u_t = D u_xx.
The explicit scheme takes 500 steps of

    u[1:-1] <- u[1:-1] + r * (u[2:] - 2 u[1:-1] + u[:-2]),   r = D dt / dx^2

(stable for r <= 1/2). Given the initial profile and the final one, measured
with an unknown D, we recover D by gradient descent on the squared misfit:
`rm.value_and_grad` differentiates through all 500 steps. The steps run in
`rm.fori_loop`, a real loop in the compiled code (its gradient stores the
500 intermediate profiles and runs the steps' adjoints backwards), and the
slices of each step fuse into one loop over the grid.

    python examples/08_heat_equation.py
"""

import time

import numpy as np

import raster_mlir as rm

N, STEPS = 101, 500
x = np.linspace(0.0, 1.0, N)
dx = x[1] - x[0]
dt = 0.45 * dx**2  # r = D dt / dx^2 <= 0.45 for every D <= 1: the scheme stays stable
D_TRUE = 0.37
u0 = np.sin(np.pi * x) + 0.5 * np.sin(3 * np.pi * x) + 0.25 * np.sin(7 * np.pi * x)


def heat_step(u, r):
    interior = u[1:-1] + r * (u[2:] - 2.0 * u[1:-1] + u[:-2])
    return rm.concatenate([u[:1], interior, u[-1:]])  # the ends keep their values


def final_profile(D, u0):
    r = D * (dt / dx**2)
    return rm.fori_loop(0, STEPS, lambda i, u: heat_step(u, r), u0)


def misfit(D, u0, measured):
    return rm.mean((final_profile(D, u0) - measured) ** 2)


measured = rm.jit(final_profile)(np.array(D_TRUE), u0)  # the "measurement", made with the true D
print(f"{STEPS} explicit steps on {N} points, t_final = {STEPS * dt:.4f}; true D = {D_TRUE}")

value_and_grad = rm.value_and_grad(misfit, argnums=0)
start = time.perf_counter()
D = 1.0
loss, grad = value_and_grad(np.array(D), u0, measured)
print(f"first call (trace, differentiate, compile or load from the disk cache, run): {time.perf_counter() - start:.2f} s")
eps = 1e-6
central = (value_and_grad(np.array(D + eps), u0, measured)[0] - value_and_grad(np.array(D - eps), u0, measured)[0]) / (2 * eps)
print(f"d misfit / dD at D = {D}: {float(grad):.10e} by autodiff, {central:.10e} by central difference")
# Gradient descent D <- D - alpha * g. The step alpha is the Barzilai-Borwein one, the
# inverse of the secant curvature (D_k - D_k-1) / (g_k - g_k-1), halved while it does not
# lower the misfit (the misfit is flat near D = 1). D stays in (0, 1], where the scheme is stable.
alpha, calls, start = 5.0, 0, time.perf_counter()
for it in range(100):
    if it % 2 == 0:
        print(f"  iteration {it:2d}: D = {D:.10f}  misfit = {loss:.3e}  d misfit / dD = {float(grad):+.3e}")
    trial = float(np.clip(D - alpha * float(grad), 0.01, 1.0))
    trial_loss, trial_grad = value_and_grad(np.array(trial), u0, measured)
    calls += 1
    if trial_loss > loss:
        alpha *= 0.5
        continue
    secant = (float(trial_grad) - float(grad)) / (trial - D) if trial != D else 0.0
    D, loss, grad = trial, trial_loss, trial_grad
    alpha = 1.0 / secant if secant > 0 else 2.0 * alpha
    if abs(alpha * float(grad)) < 1e-12:
        break
elapsed = time.perf_counter() - start
print(f"  iteration {it:2d}: D = {D:.10f}  misfit = {loss:.3e}  d misfit / dD = {float(grad):+.3e}")
print(f"recovered D = {D:.8f} (true {D_TRUE}) after {calls} misfit-and-gradient calls, "
      f"{elapsed / calls * 1e3:.2f} ms each ({STEPS} steps forward and back)")

one_step = rm.compile(heat_step, u0, np.array(0.4))
print(f"one time step after fuse-loops: {one_step.ir('after:fuse-loops').count('scf.for')} loop over the grid "
      "(the slices read u[i], u[i+1], u[i+2]; the fixed ends are two stores)")
