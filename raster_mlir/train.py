"""`rm.compile_train_step`: forward, backward and optimiser update as ONE compiled function.

The step is traced as one function

    def step(*args, *optimizer_state, *step_scalars):
        loss, grads = value_and_grad(loss_fn, argnums=params)(*args)
        new_params, new_state = optimizer.update(params, grads, state, scalars)
        return loss, new_params, new_state

whose results alias its inputs: new parameters are written into the caller's
parameter arrays and new state into the state arrays the step object owns
(attribute `raster.result_aliases` on the traced function; lower-to-loops
writes those results in place). After inlining, autodiff and fusion, the
gradient of a weight matrix never exists as an array: its outer product is
fused into the update loop.

Optimiser state (momentum, Adam's moments) and the update count that Adam's
bias correction uses belong to the parameters, not to a call signature: every
batch size, a single sample and `run` update the same state, as a
`torch.optim` optimiser does for its parameters. Parameters of other shapes or
dtypes passed to the same step object get a state of their own
(`OptimizerState`, keyed by the parameters' shapes and dtypes).
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
import threading
from collections.abc import Callable, Sequence

import numpy as np

from raster_mlir.backend.arrays import aligned_copy, aligned_zeros
from raster_mlir.backend.inspect import LLVMInspection
from raster_mlir import call_variants
from raster_mlir.errors import DTypeError, RasterError, ShapeError, argument_label, with_location
from raster_mlir.runtime.arguments import ArgSpec, parameter_names, signature_of
from raster_mlir.frontend.pytree import flatten
from raster_mlir.frontend.source import user_location
from raster_mlir.jit import CompiledFunction, JitFunction
from raster_mlir.autodiff_api import value_and_grad
from raster_mlir.frontend.tracer import NUMPY_DTYPES
from raster_mlir.optim import SGD, Optimizer
from raster_mlir.train_loop import DataLoop


def _located(method):
    """Errors of a public TrainStep method name the caller's source line."""

    @functools.wraps(method)
    def located(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except RasterError as e:
            raise with_location(e, user_location()) from None

    return located


def _identifier(name: str, index: int) -> str:
    """A leaf's path (`params['W']`) as a parameter name (`params_W`), for the IR's argument names."""
    cleaned = re.sub(r"\W+", "_", name).strip("_")
    return cleaned if cleaned.isidentifier() else f"arg{index}"


class OptimizerState:
    """The optimiser's arrays for one set of parameters and the number of updates applied to them."""

    def __init__(self, optimizer: Optimizer, param_specs: Sequence[ArgSpec]):
        # 64-byte aligned: 512-bit loads of the state never straddle cache lines.
        self.arrays = [
            aligned_zeros(s.shape, dtype=NUMPY_DTYPES[s.dtype]) for s in param_specs for _ in range(optimizer.state_count())
        ]
        self.steps = 0


class TrainStep(LLVMInspection):
    """A compiled train step; call it like the loss function, it returns the loss (a float)."""

    def __init__(self, loss_fn: Callable, params: Sequence[int], optimizer: Optimizer, pipeline: str | None = None):
        self.loss_fn = loss_fn.fn if isinstance(loss_fn, JitFunction) else loss_fn
        self.name = getattr(self.loss_fn, "__name__", "loss")
        self.arg_names = parameter_names(self.loss_fn)
        self.params = tuple(params)
        self.optimizer = optimizer
        self.pipeline = pipeline
        # Per signature: the compiled step and the optimiser state it updates in place; the state is
        # shared by every signature whose parameters have the same shapes and dtypes (any batch shape).
        self._entries: dict[tuple[ArgSpec, ...], tuple[CompiledFunction, OptimizerState]] = {}
        self._states: dict[tuple[tuple[tuple[int, ...], str], ...], OptimizerState] = {}
        self._state: OptimizerState | None = None  # the most recently used
        self._last: CompiledFunction | None = None
        # What `step(*args)` calls (see __call__): the hot path of the most recently used
        # signature, or the slow path before there is one.
        self._dispatch = self._call
        self._loops: dict[tuple, DataLoop] = {}
        self._last_loop: DataLoop | None = None
        self._tree_steps: dict = {}  # argument structure -> TrainStep of the leaves (see _tree_step)

    # -- building -------------------------------------------------------------
    def _step_function(self, n_args: int):
        loss_fn, params, opt = self.loss_fn, self.params, self.optimizer
        n_state = opt.state_count() * len(params)

        def train_step(*flat):
            args = flat[:n_args]
            state_flat = flat[n_args : n_args + n_state]
            scalars = flat[n_args + n_state :]
            loss, grads = value_and_grad(loss_fn, argnums=params)(*args)
            per_param = opt.state_count()
            states = [list(state_flat[i * per_param : (i + 1) * per_param]) for i in range(len(params))]
            new_params, new_states = opt.update([args[i] for i in params], list(grads), states, list(scalars))
            return (loss, *new_params, *[s for group in new_states for s in group])

        train_step.__name__ = f"{self.name}_train_step"
        train_step.__signature__ = self._step_signature(n_args)  # argument names in the IR: %W1, %W1_m, ...
        return train_step

    def _step_signature(self, n_args: int) -> inspect.Signature:
        names = [n if n.isidentifier() else _identifier(n, i) for i, n in enumerate(self.arg_names[:n_args])]
        names += [f"arg{i}" for i in range(len(names), n_args)]
        per_param = self.optimizer.state_count()
        names += [f"{names[i]}_state{k}" for i in self.params for k in range(per_param)]
        names += [f"step_scalar{k}" for k in range(len(self.optimizer.step_scalars(1)))]
        kind = inspect.Parameter.POSITIONAL_ONLY
        return inspect.Signature([inspect.Parameter(n, kind) for n in names])

    def _label(self, i: int) -> str:
        return argument_label(i, self.arg_names[i] if i < len(self.arg_names) else None)

    @_located
    def lower(self, *args) -> CompiledFunction:
        """The compiled step for these arguments' signature (compiled if new)."""
        return self._entry(args)[0]

    @property
    def steps_taken(self) -> int:
        """Updates applied to the most recently used parameters (Adam's t); 0 before the first."""
        return self._state.steps if self._state is not None else 0

    def _entry(self, args) -> tuple[CompiledFunction, OptimizerState]:
        specs = signature_of(self.name, args, self.arg_names)
        for i in self.params:
            if not 0 <= i < len(args):
                raise RasterError(f"compile_train_step: parameter index {i} out of range for {len(args)} arguments")
            if specs[i].scalar:
                raise RasterError(
                    f"{self.name}: {self._label(i)} is a parameter the step updates in place: "
                    "it must be an array, not a Python number"
                )
        entry = self._entries.get(specs)
        if entry is None:
            n_state = self.optimizer.state_count() * len(self.params)
            state_specs = [specs[i] for i in self.params for _ in range(self.optimizer.state_count())]
            dtype = specs[self.params[0]].dtype if self.params else "f64"
            scalar_specs = [ArgSpec((), dtype, scalar=True) for _ in self.optimizer.step_scalars(1)]
            all_specs = (*specs, *state_specs, *scalar_specs)
            # Result k (after the loss) is written into input aliases[k].
            aliases = [-1, *self.params, *range(len(args), len(args) + n_state)]
            compiled = CompiledFunction(
                self._step_function(len(args)), all_specs, name=f"{self.name}_train_step",
                pipeline=self.pipeline, result_aliases=aliases, keep_ir_before=("skip-zero-chunks",),
            )  # fmt: skip
            params_key = tuple((specs[i].shape, specs[i].dtype) for i in self.params)
            state = self._states.get(params_key)
            if state is None:
                state = self._states[params_key] = OptimizerState(self.optimizer, [specs[i] for i in self.params])
            entry = self._entries[specs] = (compiled, state)
        self._last, self._state = entry
        return entry

    # -- calling ----------------------------------------------------------------
    # `step(*args)` calls `self._dispatch(*args)` with no Python frame in between (the
    # property's getter is C code): one frame less per step than a `__call__` method.
    __call__ = property(operator.attrgetter("_dispatch"), doc="One training step; returns the loss (a float).")

    def _call(self, *args, **keywords) -> float:
        if keywords:
            return self._keyword_call(args, keywords)
        return self._slow_call(args)

    @_located
    def _keyword_call(self, args: tuple, keywords: dict) -> float:
        """`step(w, b, x=X, y=Y)`: the keywords bound to the loss function's positional parameters, then
        a positional call (keyword-only parameters, or a gap left to a default, are refused: the step's
        arguments are positional)."""
        positional = call_variants.positional_binding(self.name, self.loss_fn, args, keywords)
        if positional is None:
            raise DTypeError(
                f"{self.name}: a train step takes the loss function's arguments by position; the keyword(s) "
                f"{', '.join(keywords)} do not name its leading positional parameters "
                f"({', '.join(self.arg_names) or 'none'})"
            )
        return self._dispatch(*positional)

    @_located
    def _slow_call(self, args) -> float:
        if call_variants.has_containers(args):
            return self._tree_step(args)
        compiled, state = self._entry(args)
        scalars = self.optimizer.step_scalars(state.steps + 1)
        outs = compiled.run_flat((*args, *state.arrays, *scalars))
        state.steps += 1
        if compiled.native is not None:
            self._dispatch = self._fast_caller(compiled, state)
        return float(outs[0])

    def _tree_step(self, args: tuple) -> float:
        """Arguments that are tuples, lists or dicts of arrays (`params = {"W": W, "b": b}`): the step of
        the loss function of their leaves (call_variants.tree_variant), made once per structure, whose
        parameters are the leaves of the selected arguments. It updates those leaves in place, so the
        caller's containers hold the new values."""
        step, leaves = self._step_of_leaves(args)
        loss = step(*leaves)
        self._state = step._state  # (steps_taken)
        return loss

    def _step_of_leaves(self, args: tuple) -> tuple[TrainStep, list]:
        """The TrainStep of the loss function of the leaves of `args` (made once per structure), and
        those leaves."""
        leaves, tree = flatten(args)  # (per step: the leaves and the structure only; the owners on a miss)
        key = call_variants.tree_key(tree)
        step = self._tree_steps.get(key)
        if step is None:
            owners = call_variants.leaves_of(args)[2]
            for i in self.params:
                if not 0 <= i < len(args):
                    raise RasterError(f"compile_train_step: parameter index {i} out of range for {len(args)} arguments")
            loss_of_leaves = call_variants.tree_variant(self.loss_fn, self.arg_names, tree)
            leaf_params = [k for k, owner in enumerate(owners) if owner in self.params]
            step = self._tree_steps[key] = TrainStep(loss_of_leaves, leaf_params, self.optimizer, self.pipeline)
        return step, leaves

    def _fast_caller(self, compiled: CompiledFunction, state: OptimizerState):
        """The hot path for one signature: no signature hashing, no allocation, native checks.

        The loss buffer is reused between calls; Adam's per-step scalars are
        written into 0-d arrays it owns. Any argument the native check refuses
        takes the slow path, which re-dispatches or raises the precise error.
        """
        native = compiled.native
        checked_call = native.function.checked_call  # truthy: declined, nothing ran
        dtype = NUMPY_DTYPES[compiled.specs[self.params[0]].dtype] if self.params else np.float64
        loss = np.empty((), dtype)
        scalars = [np.empty((), dtype) for _ in self.optimizer.step_scalars(1)]
        tail = (*state.arrays, *scalars, loss, *native.constants)
        slow, keyword_call = self._slow_call, self._keyword_call
        # The loss buffer, the step scalars and the step count are shared by every caller of this
        # step: a thread switch between the native call and `float(loss)` would hand one thread the
        # other's loss. The lock makes a step one unit (bound methods, not `with`: about 0.07 instead of
        # 0.15 us per step, measured with timeit; steps from one thread never wait).
        lock = threading.Lock()
        acquire, release = lock.acquire, lock.release
        if not scalars:

            def fast(*args, **keywords):
                if keywords:  # (about 25 ns per step for the empty dict: measured with timeit)
                    return keyword_call(args, keywords)
                acquire()
                try:
                    if checked_call(args + tail):
                        return slow(args)
                    state.steps += 1
                    return float(loss)
                finally:
                    release()

            return fast
        step_scalars = self.optimizer.step_scalars

        def fast_with_scalars(*args, **keywords):
            if keywords:
                return keyword_call(args, keywords)
            acquire()
            try:
                for array, value in zip(scalars, step_scalars(state.steps + 1)):
                    array[()] = value
                if checked_call(args + tail):
                    return slow(args)
                state.steps += 1
                return float(loss)
            finally:
                release()

        return fast_with_scalars

    # -- many steps in one native call ---------------------------------------------
    @_located
    def run(self, *args, epochs: int = 1, cross_step_fusion: bool = True, update_block: int | None = None) -> np.ndarray:
        """Train over a dataset without Python between samples; returns the loss of every step.

        Arguments are those of a step, except that every argument that is not a
        parameter is a stack of samples along a new leading dimension N (the
        same N for all): step n uses row n of each. With `epochs` > 1 the
        samples are visited again in the same order (shuffle between calls if
        you want).

        `cross_step_fusion` chooses the schedule (`run_schedule` tells which ran):
        - unless `update_block` is 1, when the first layer is dense and its update
          is rank one (SGD), its updates are applied K steps at a time (K =
          `update_block`, or when None the most whose rows fit in L1), in one pass
          over its weights that also computes the next K steps' dot products; later
          steps of a block correct their dot products for the updates still pending
          (pass `defer-updates`). Same results up to rounding (the dot products are
          reassociated: about 1e-15 relative in f64 over 1,000 steps);
        - otherwise (K = 1, or another optimizer) the update of step n is fused with
          the forward pass of step n+1: the same operations in the same order as
          separate steps (bitwise equal on the shapes the tests check in f64; LLVM's
          fusion of multiplies and adds can differ between the two functions by an
          ulp, seen in f32 and on a few tiny f64 shapes);
        - `cross_step_fusion=False`: the steps one after the other (the same).

        `epochs=0` checks the arguments, compiles the loop for them (so a later
        call is not timed with compiling) and returns an empty array of losses.

        Tuples, lists and dicts of arrays run the step of their leaves (as a
        step call does, `_tree_step`), each data leaf a stack of samples.
        """
        if call_variants.has_containers(args):
            step, leaves = self._step_of_leaves(args)
            options = dict(epochs=epochs, cross_step_fusion=cross_step_fusion, update_block=update_block)
            return step.run(*leaves, **options)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise RasterError(f"run: epochs must be a non-negative int, got {epochs!r}")
        if update_block is not None and (
            not isinstance(update_block, int) or isinstance(update_block, bool) or update_block < 1
        ):
            raise RasterError(f"run: update_block must be None or a positive int, got {update_block!r}")
        data = [i for i in range(len(args)) if i not in self.params]
        if not data:
            raise RasterError("run: every argument is a parameter; there is no data to loop over")
        for i in data:
            if not isinstance(args[i], np.ndarray) or args[i].ndim == 0:
                raise RasterError(
                    f"run: {self._label(i)} is data, so it must be an array of samples stacked along a new "
                    f"leading dimension (N, *sample shape), got {getattr(args[i], 'shape', type(args[i]).__name__)}"
                )
        n = self._sample_count(args, data)
        sample = list(args)
        for i in data:
            sample[i] = args[i][0]
        compiled, state = self._entry(tuple(sample))
        if compiled.native is None:
            raise RasterError(f"run needs native code; the pipeline {compiled.pipeline_spec!r} does not lower to loops")
        n_scalars = len(self.optimizer.step_scalars(1))
        first_scalar = len(args) + len(state.arrays)
        key = (id(compiled), n, cross_step_fusion, update_block)
        loop = self._loops.get(key)
        if loop is None:
            sliced = (*data, *range(first_scalar, first_scalar + n_scalars))
            loop = self._loops[key] = DataLoop(compiled, sliced, n, cross_step_fusion, update_block)
        self._last_loop = loop
        losses = [np.empty(0, loop.loss_dtype)]
        dtype = loop.loss_dtype
        staged, write_back = self._aligned_inputs(args)
        try:
            for _ in range(epochs):
                t0 = state.steps + 1
                per_step = [self.optimizer.step_scalars(t) for t in range(t0, t0 + n)]
                scalars = [np.array([values[k] for values in per_step], dtype=dtype) for k in range(n_scalars)]
                losses.append(loop((*staged, *state.arrays, *scalars)))
                state.steps += n
        finally:
            for i in write_back:  # the parameters were updated in aligned copies
                args[i][...] = staged[i]
        return np.concatenate(losses)

    def _sample_count(self, args, data: Sequence[int]) -> int:
        """N: every data argument holds the same number N > 0 of samples along its first dimension."""
        counts = {i: args[i].shape[0] for i in data}
        n = counts[data[0]]
        if n and all(c == n for c in counts.values()):
            return n
        listed = ", ".join(f"{self._label(i)} {args[i].shape}: N = {c}" for i, c in counts.items())
        raise ShapeError(
            f"run: the data arguments are stacks of samples, step n uses row n of each, so they need the same "
            f"number N > 0 of rows along their leading dimension; got {listed} (one sample is a stack of one: "
            "pass sample[None])"
        )

    def _aligned_inputs(self, args) -> tuple[list, list[int]]:
        """Arguments for a run, with large misaligned arrays replaced by 64-byte aligned copies.

        numpy aligns large arrays to 16 bytes, so every 512-bit load of a row
        straddles two cache lines (a 784-128-10 f64 loop: ~16 us per sample
        instead of ~11). Over a whole run, copying W1 in and out costs about
        0.1 us per sample. Returns the arguments and the indices of parameters
        to copy back. Arrays the native check will refuse (read-only, wrong
        layout) are passed as they are, so its error names them; a parameter
        sharing memory with another argument is refused here.
        """
        # Copies would hide an overlap from the native check: refuse it here first.
        for i in self.params:
            for j, b in enumerate(args):
                if j != i and isinstance(args[i], np.ndarray) and isinstance(b, np.ndarray):
                    if np.may_share_memory(args[i], b):
                        raise RasterError(
                            f"run: parameter {i} is updated in place but shares memory with argument {j}; "
                            "pass separate arrays"
                        )
        staged, write_back = list(args), []
        for i, a in enumerate(args):
            if not isinstance(a, np.ndarray) or a.nbytes < 4096 or not a.flags.c_contiguous:
                continue
            if a.__array_interface__["data"][0] % 64 == 0:
                continue
            if i in self.params:
                if not a.flags.writeable:
                    continue
                write_back.append(i)
            staged[i] = aligned_copy(a)
        return staged, write_back

    @property
    def run_schedule(self) -> str:
        """How the most recent `run` loop was scheduled: "defer-updates{block=4}", "cross-step fusion" or "step by step"."""
        if self._last_loop is None:
            raise RasterError("run has not been called yet")
        return self._last_loop.schedule

    def run_timing_report(self) -> str:
        """Where the time of building the most recent `run` loop went (cache, passes, LLVM...)."""
        if self._last_loop is None:
            raise RasterError("run has not been called yet")
        return self._last_loop.timer.report()

    def run_ir(self, stage: str | None = None) -> str:
        """IR of the most recent `run` loop: "step", "after:data-loop", "after:fuse-loops", ..."""
        if self._last_loop is None:
            raise RasterError("run has not been called yet")
        return self._last_loop.ir(stage)

    # -- inspection (the last compiled signature) --------------------------------
    def _inspected(self) -> CompiledFunction:
        if self._last is None:
            raise RasterError("the train step has not been compiled yet: call it (or .lower(*args)) first")
        return self._last

    def ir(self, stage: str | None = None) -> str:
        return self._inspected().ir(stage)

    @property
    def stages(self) -> list[str]:
        return self._inspected().stages

    def timing_report(self) -> str:
        """Where the compile time of the last compiled signature went (trace, cache, passes, LLVM...)."""
        return self._inspected().timing_report()

    def _llvm_source(self):
        return self._inspected()


def compile_train_step(
    loss_fn: Callable,
    params: Sequence[int] = (0,),
    optimizer: Optimizer | None = None,
    pipeline: str | None = None,
) -> TrainStep:
    """One native function per signature: loss, gradients and the in-place parameter update."""
    return TrainStep(loss_fn, params, optimizer or SGD(), pipeline)
