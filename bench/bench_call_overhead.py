"""Per-call cost of compiled functions called from Python, on small inputs, against numpy and the native floor.

    python bench/bench_call_overhead.py [--quick] [--clock thread]

Rows (ns per call, median of interleaved rounds; the contenders of a row run
in a random order each round, in the same process):

- `rm.jit` of `sum(x)` (returns a Python float) and of `exp`, `tanh`,
  `sigmoid`, `softmax` (return a fresh array) on 1,000 elements, f64 and f32,
  against numpy's own call (`np.sum`, `np.exp`, ...);
- `rm.hvp(f, (x,), (v,))` of a small scalar function (`sum(tanh(x) * exp(-x*x))`)
  and of the 4->8->3 MLP loss;
- the 784-128-10 SGD train step (`rm.compile_train_step`) called from Python
  on dense random data, f64 and f32, per sample.

Beside each raster_mlir row: `native` is the floor, the entry's checked
native call on a prebuilt argument tuple (argument checks and the kernel, no
Python); `overhead` = call - native is what the Python call path costs. The
first call (trace and compile, or the disk cache) is reported once per
function. Timings are noisy on a shared machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import raster_mlir as rm  # noqa: E402
from raster_mlir import nn  # noqa: E402


CLOCK = time.perf_counter_ns  # --clock thread: this thread's CPU time (a loaded machine's descheduling left out)


def interleaved(contenders: dict, rounds: int, number: int, clock=None) -> dict[str, float]:
    """Median ns per call of each contender over `rounds` rounds of `number` calls, random order per round
    (`clock`: a nanosecond clock, CLOCK by default)."""
    clock = clock or CLOCK
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for _ in range(rounds):
        random.shuffle(names)
        for k in names:
            fn = contenders[k]
            t0 = clock()
            for _ in range(number):
                fn()
            times[k].append((clock() - t0) / number)
    return {k: statistics.median(v) for k, v in times.items()}


def first_call_ms(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1e3


def native_floor(jit_fn, args):
    """The checked native call of `jit_fn`'s compiled entry on a prebuilt tuple (outputs included)."""
    native = jit_fn.lower(*args).native
    outs = tuple(np.empty(shape, dtype) for shape, dtype in native.out_shapes)
    full = (*args, *outs, *native.constants)
    call = getattr(native.function, "checked_call", None) or native.function._fast  # (_fast: before checked_call existed)
    assert not call(full), "the native check refused the bench's own arguments"
    return lambda: call(full)


def row(table, label, measured, call_key, peer_key=None, native_key=None, first_ms=None):
    call = measured[call_key]
    native = measured.get(native_key)
    peer = measured.get(peer_key)
    table.append((
        label, call, native, call - native if native is not None else None,
        peer, peer / call if peer is not None else None, first_ms,
    ))  # fmt: skip


def print_table(table) -> None:
    print(f"{'row':44s} {'call ns':>9s} {'native':>8s} {'overhead':>9s} {'peer ns':>9s} {'peer/call':>9s} {'1st call ms':>11s}")
    for label, call, native, over, peer, ratio, first in table:
        cells = [f"{call:9.0f}"]
        cells.append(f"{native:8.0f}" if native is not None else f"{'':8s}")
        cells.append(f"{over:9.0f}" if over is not None else f"{'':9s}")
        cells.append(f"{peer:9.0f}" if peer is not None else f"{'':9s}")
        cells.append(f"{ratio:9.2f}" if ratio is not None else f"{'':9s}")
        cells.append(f"{first:11.1f}" if first is not None else f"{'':11s}")
        print(f"{label:44s} " + " ".join(cells))


def elementwise_rows(table, dtype, rounds, number) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, 1000).astype(dtype)

    def softmax_np(a):
        e = np.exp(a - a.max())
        return e / e.sum()

    cases = {
        "sum": (lambda a: rm.sum(a), np.sum),
        "exp": (lambda a: rm.exp(a), np.exp),
        "tanh": (lambda a: rm.tanh(a), np.tanh),
        "sigmoid": (lambda a: nn.sigmoid(a), lambda a: 1.0 / (1.0 + np.exp(-a))),
        "softmax": (lambda a: nn.softmax(a), softmax_np),
    }
    name = np.dtype(dtype).name
    for op, (body, peer) in cases.items():
        fn = rm.jit(body)
        first = first_call_ms(fn, x)
        measured = interleaved(
            {"call": lambda: fn(x), "native": native_floor(fn, (x,)), "peer": lambda: peer(x)}, rounds, number
        )
        row(table, f"rm.jit {op}, 1e3 {name} (peer numpy)", measured, "call", "peer", "native", first)


def hvp_rows(table, rounds, number) -> None:
    rng = np.random.default_rng(1)

    def science(x):
        return rm.sum(rm.tanh(x) * rm.exp(-x * x))

    x, v = rng.standard_normal(1000), rng.standard_normal(1000)
    first = first_call_ms(rm.hvp, science, (x,), (v,))
    measured = interleaved({"call": lambda: rm.hvp(science, (x,), (v,))}, rounds, number)
    row(table, "rm.hvp sum(tanh(x)*exp(-x*x)), 1e3 f64", measured, "call", first_ms=first)

    def mlp(W1, b1, W2, b2, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)

    params = (rng.standard_normal((8, 4)), rng.standard_normal(8), rng.standard_normal((3, 8)), rng.standard_normal(3))
    data = (rng.standard_normal(4), np.eye(3)[1])
    tangents = tuple(rng.standard_normal(p.shape) for p in params)
    primals = (*params, *data)
    first = first_call_ms(rm.hvp, mlp, primals, tangents, (0, 1, 2, 3))
    measured = interleaved({"call": lambda: rm.hvp(mlp, primals, tangents, (0, 1, 2, 3))}, rounds, number)
    row(table, "rm.hvp MLP 4-8-3 loss, f64", measured, "call", first_ms=first)


def value_and_grad_rows(table, rounds, number) -> None:
    rng = np.random.default_rng(3)

    def mlp(W1, b1, W2, b2, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)

    args = (rng.standard_normal((8, 4)), rng.standard_normal(8), rng.standard_normal((3, 8)), rng.standard_normal(3),
            rng.standard_normal(4), np.eye(3)[1])  # fmt: skip
    vg = rm.value_and_grad(mlp, argnums=(0, 1, 2, 3))
    first = first_call_ms(vg, *args)
    measured = interleaved({"call": lambda: vg(*args), "native": native_floor(vg, args)}, rounds, number)
    row(table, "rm.value_and_grad MLP 4-8-3 loss, f64", measured, "call", None, "native", first)


def train_rows(table, dtype, rounds, number) -> None:
    rng = np.random.default_rng(2)
    W1 = (rng.standard_normal((128, 784)) * 0.05).astype(dtype)
    b1 = np.zeros(128, dtype)
    W2 = (rng.standard_normal((10, 128)) * 0.1).astype(dtype)
    b2 = np.zeros(10, dtype)
    x = rng.uniform(0.0, 1.0, 784).astype(dtype)
    y = np.eye(10, dtype=dtype)[3]

    def mlp_loss(W1, b1, W2, b2, x, y):
        return nn.cross_entropy(nn.softmax(nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)), y)

    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=rm.optim.SGD(lr=0.0))
    args = (W1, b1, W2, b2, x, y)
    first = first_call_ms(step, *args)
    compiled = step.lower(*args)
    native = compiled.native
    loss = np.empty((), dtype)
    full = (*args, *step._state.arrays, loss, *native.constants)
    call = getattr(native.function, "checked_call", None) or native.function._fast  # (_fast: before checked_call existed)
    assert not call(full), "the native check refused the bench's own arguments"
    measured = interleaved({"call": lambda: step(*args), "native": lambda: call(full)}, rounds, number)
    row(table, f"train step 784-128-10 SGD, {np.dtype(dtype).name}", measured, "call", None, "native", first)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument(
        "--clock", choices=("wall", "thread"), default="wall",
        help="wall time (default), or this thread's CPU time (steadier on a loaded machine; single-threaded rows only)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.thread_time_ns if args.clock == "thread" else time.perf_counter_ns
    rounds, number = (5, 2000) if args.quick else (21, 10000)
    table: list = []
    for dtype in (np.float64, np.float32):
        elementwise_rows(table, dtype, rounds, number)
    hvp_rows(table, rounds, number // 4)
    value_and_grad_rows(table, rounds, number // 4)
    for dtype in (np.float64, np.float32):
        train_rows(table, dtype, rounds, number // 10)
    print_table(table)
    print(f"clock: {args.clock}. native: the checked native call alone (checks + kernel, outputs reused); "
          "overhead = call - native. Noisy machine: use ratios.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
