"""Differential fuzzing of the array ops and loops against JAX (value and gradient).

A seeded generator writes small random programs as Python source over a namespace
`xp`, so one text runs three ways:

- eagerly with raster_mlir's ops (`xp` = raster_mlir itself),
- compiled (`rm.jit` for the value, `rm.grad` for the gradient),
- with JAX (float64 enabled; `xp` = the JAX adapter below: masks as floats,
  `where`/`cond` on non-zero, loops as lax loops, `while_loop` unrolled in Python
  because JAX has no reverse mode through it).

Programs use slices with negative steps, concatenate/stack/pad/roll/flip/squeeze/
expand_dims/transpose, comparisons as masks with `where`, cumsum, sum/min/max/prod/
mean/logsumexp/norm, the maths ops, and fori_loop/scan/while_loop/cond with small
bodies, on shapes with sides 0..4, in float32 and float64. The value of the last
statement and the gradient of `sum(out * weights)` with respect to both inputs are
compared; a mismatch is reported with the program's text and inputs' shapes.

Run: `python tests/fuzz/program_fuzz.py --programs 300 --seed 0` (prints failures);
tests/fuzz/test_fuzz_programs.py runs a small seeded budget in the suite.
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback
from dataclasses import dataclass, field

import numpy as np

# -- the JAX side ---------------------------------------------------------------------


def jax_namespace():
    """An `xp` with raster_mlir's names over jax.numpy (float masks, non-zero predicates)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    class JaxOps:
        pass

    ns = JaxOps()
    for name in ("sin cos tan tanh exp exp2 log log1p expm1 abs sign square reciprocal sqrt arctan2 minimum "
                 "maximum clip sum min max prod mean cumsum concatenate stack pad roll flip squeeze "
                 "expand_dims transpose reshape").split():  # fmt: skip
        setattr(ns, name, getattr(jnp, name))
    ns.erf = jax.scipy.special.erf
    ns.logsumexp = jax.scipy.special.logsumexp
    ns.softplus = jax.nn.softplus
    ns.sigmoid = jax.nn.sigmoid
    ns.norm = jnp.linalg.norm

    def mask(compare):
        return lambda a, b: compare(a, b).astype(jnp.result_type(a, b))

    ns.less, ns.less_equal, ns.greater = mask(jnp.less), mask(jnp.less_equal), mask(jnp.greater)
    ns.greater_equal, ns.equal, ns.not_equal = mask(jnp.greater_equal), mask(jnp.equal), mask(jnp.not_equal)
    ns.where = lambda p, a, b: jnp.where(p != 0, a, b)
    ns.cond = lambda p, t, f, *ops: lax.cond(p != 0, t, f, *ops)
    ns.fori_loop = lax.fori_loop
    ns.scan = lambda f, init, xs, reverse=False: lax.scan(f, init, xs, reverse=reverse)

    def while_loop(cond_fun, body_fun, init):
        carry = init
        while bool(cond_fun(carry)):  # the programs' conditions count steps: concrete under jax.grad
            carry = body_fun(carry)
        return carry

    ns.while_loop = while_loop
    return ns


def raster_namespace():
    import raster_mlir as rm

    return rm


# -- the generator ----------------------------------------------------------------------

UNARY = {
    "sin": "xp.sin({a})",
    "cos": "xp.cos({a})",
    "tanh": "xp.tanh({a})",
    "tan": "xp.tan(0.5 * xp.tanh({a}))",
    "exp2": "xp.exp2(0.5 * {a})",
    "log1p": "xp.log1p(xp.square({a}))",
    "expm1": "xp.expm1(0.5 * {a})",
    "abs": "xp.abs({a})",
    "sign": "xp.sign({a}) * {a}",
    "reciprocal": "xp.reciprocal(xp.square({a}) + 1.0)",
    "sqrt": "xp.sqrt(xp.square({a}) + 0.25)",
    "log": "xp.log(xp.square({a}) + 0.5)",
    "erf": "xp.erf({a})",
    "softplus": "xp.softplus({a})",
    "sigmoid": "xp.sigmoid({a})",
    "clip": "xp.clip({a}, -0.6, 0.7)",
    "neg": "-{a}",
}
BINARY = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "minimum": "xp.minimum({a}, {b})",
    "maximum": "xp.maximum({a}, {b})",
    "arctan2": "xp.arctan2({a}, {b} + 2.5)",
    "where": "xp.where(xp.{cmp}({a}, {b}), {a}, 0.5 * {b})",
    "mask": "xp.{cmp}({a}, {b}) * {a}",
}
COMPARISONS = ["less", "less_equal", "greater", "greater_equal", "equal", "not_equal"]
REDUCTIONS = ["sum", "min", "max", "prod", "mean", "logsumexp"]
# Ops whose gradient depends on a choice at ties (several equal elements): JAX splits, others may not.
TIE_SENSITIVE = {"min", "max", "minimum", "maximum", "where", "mask", "clip", "abs", "sign"}


@dataclass
class Value:
    name: str
    shape: tuple
    tied: bool  # may hold equal elements (padding, broadcasting, clipping...)


@dataclass
class Program:
    lines: list = field(default_factory=list)
    shapes: tuple = ()
    dtype: str = "float64"
    grad_comparable: bool = True

    def source(self) -> str:
        body = "\n".join("    " + line for line in self.lines)
        return f"def program(xp, a, b):\n{body}\n"


class Generator:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.values: list[Value] = []
        self.lines: list[str] = []
        self.count = 0
        self.grad_comparable = True

    # helpers
    def fresh(self, expr: str, shape, tied: bool) -> Value:
        name = f"v{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {expr}")
        value = Value(name, tuple(shape), tied)
        self.values.append(value)
        return value

    def pick(self, min_ndim=0) -> Value | None:
        choices = [v for v in self.values if len(v.shape) >= min_ndim]
        if not choices:
            return None
        # favour recent values so programs are chains, not forests
        return choices[-1] if self.rng.random() < 0.5 else self.rng.choice(choices)

    def shape_of(self, expr_fn, *shapes):
        """The result shape by running the expression on numpy zeros."""
        args = [np.zeros(s) for s in shapes]
        return np.shape(expr_fn(*args))

    def random_axis(self, v: Value):
        return self.rng.randrange(len(v.shape)) - (len(v.shape) if self.rng.random() < 0.3 else 0)

    def note_ties(self, kind: str, *operands: Value):
        if kind in TIE_SENSITIVE and any(o.tied for o in operands):
            self.grad_comparable = False

    # statements
    def unary(self):
        v = self.pick()
        kind = self.rng.choice(list(UNARY))
        self.note_ties(kind, v)
        self.fresh(UNARY[kind].format(a=v.name), v.shape, v.tied or kind in {"clip", "abs", "sign"})

    def binary(self):
        a = self.pick()
        partners = [w for w in self.values if _broadcasts(a.shape, w.shape)]
        b = self.rng.choice(partners)
        kind = self.rng.choice(list(BINARY))
        shape = np.broadcast_shapes(a.shape, b.shape)
        tied = a.tied or b.tied or a.name == b.name or shape != a.shape or shape != b.shape
        self.note_ties(kind, Value("", shape, tied))
        if kind in {"minimum", "maximum", "where", "mask"} and a.name == b.name:
            self.grad_comparable = False
        expr = BINARY[kind].format(a=a.name, b=b.name, cmp=self.rng.choice(COMPARISONS))
        self.fresh(expr, shape, tied or kind in {"minimum", "maximum", "where", "mask"})

    def reduce(self):
        v = self.pick()
        kind = self.rng.choice(REDUCTIONS + ["norm", "cumsum"])
        axis = None if not v.shape or self.rng.random() < 0.3 else self.random_axis(v)
        size = int(np.prod(v.shape)) if axis is None else v.shape[axis]
        if kind in {"min", "max", "mean", "logsumexp"} and size == 0:
            # numpy and JAX refuse an empty min/max; raster_mlir also refuses an empty mean (numpy: nan
            # with a warning) and logsumexp (JAX: -inf) with a ShapeError, tested in the unit tests.
            kind = "sum"
        keepdims = self.rng.random() < 0.3 and kind != "cumsum"
        if kind == "cumsum":
            expr = f"xp.cumsum({v.name}, axis={axis})"
            shape = np.cumsum(np.zeros(v.shape), axis=axis).shape
        elif kind == "norm":
            expr = f"xp.norm({v.name} + 0.25)"  # no zeros: the gradient of |x| at 0 is a choice
            shape = ()
        else:
            expr = f"xp.{kind}({v.name}, axis={axis}, keepdims={keepdims})"
            shape = getattr(np, "sum" if kind == "logsumexp" else kind)(np.ones(v.shape), axis=axis, keepdims=keepdims).shape
        self.note_ties(kind, v)
        self.fresh(expr, shape, v.tied)

    def slice_(self):
        v = self.pick(min_ndim=1)
        if v is None:
            return self.unary()
        parts = []
        for d in v.shape:
            step = self.rng.choice([1, 1, -1, 2, -2, 3])
            start = self.rng.choice([None, None, 0, 1, -1, d, -d - 1])
            stop = self.rng.choice([None, None, 0, 1, -1, d + 1, -d - 1])
            parts.append(":".join("" if p is None else str(p) for p in (start, stop, step)))
        index = ", ".join(parts)
        shape = np.zeros(v.shape)[eval(f"np.s_[{index}]")].shape
        self.fresh(f"{v.name}[{index}]", shape, v.tied)

    def index(self):
        v = self.pick(min_ndim=1)
        if v is None or 0 in v.shape[:1]:
            return self.slice_()
        i = self.rng.randrange(-v.shape[0], v.shape[0])
        self.fresh(f"{v.name}[{i}]", v.shape[1:], v.tied)

    def structure(self):
        v = self.pick()
        kind = self.rng.choice(["concatenate", "stack", "pad", "roll", "flip", "expand_dims", "squeeze", "transpose"])
        if kind == "concatenate" and v.shape:
            axis = self.random_axis(v)
            other = self.rng.choice([f"xp.sin({v.name})", f"xp.flip({v.name}, axis={axis})", v.name])
            shape = list(v.shape)
            shape[axis] *= 2
            self.fresh(f"xp.concatenate([{v.name}, {other}], axis={axis})", shape, True)
        elif kind == "stack" or kind == "concatenate":
            axis = self.rng.randrange(len(v.shape) + 1)
            shape = np.stack([np.zeros(v.shape)] * 2, axis=axis).shape
            self.fresh(f"xp.stack([{v.name}, xp.cos({v.name})], axis={axis})", shape, v.tied)
        elif kind == "pad" and v.shape:
            mode = self.rng.choice(["constant", "edge", "wrap", "reflect", "symmetric"])
            widths = []
            for d in v.shape:
                limit = {"constant": 2, "edge": 2, "wrap": d, "symmetric": d, "reflect": d - 1}[mode]
                if mode != "constant" and d == 0:
                    limit = 0
                limit = max(0, min(limit, 2))
                widths.append((self.rng.randint(0, limit), self.rng.randint(0, limit)))
            widths = tuple(widths)
            extra = ", constant_values=0.25" if mode == "constant" and self.rng.random() < 0.5 else ""
            shape = tuple(d + lo + hi for d, (lo, hi) in zip(v.shape, widths))
            self.fresh(f"xp.pad({v.name}, {widths}, mode={mode!r}{extra})", shape, True)
        elif kind == "roll":
            shift = self.rng.randint(-5, 5)
            axis = None if not v.shape or self.rng.random() < 0.3 else self.random_axis(v)
            self.fresh(f"xp.roll({v.name}, {shift}, axis={axis})", v.shape, v.tied)
        elif kind == "flip":
            axis = None if not v.shape or self.rng.random() < 0.3 else self.random_axis(v)
            self.fresh(f"xp.flip({v.name}, axis={axis})", v.shape, v.tied)
        elif kind == "expand_dims":
            axis = self.rng.randrange(len(v.shape) + 1)
            self.fresh(f"xp.expand_dims({v.name}, {axis})", np.expand_dims(np.zeros(v.shape), axis).shape, v.tied)
        elif kind == "squeeze" and 1 in v.shape:
            axis = v.shape.index(1)
            self.fresh(f"xp.squeeze({v.name}, axis={axis})", v.shape[:axis] + v.shape[axis + 1 :], v.tied)
        elif kind == "transpose" and len(v.shape) >= 2:
            axes = list(range(len(v.shape)))
            self.rng.shuffle(axes)
            self.fresh(f"xp.transpose({v.name}, {tuple(axes)})", tuple(v.shape[i] for i in axes), v.tied)
        else:
            self.unary()

    def loop(self):
        v = self.pick()
        kind = self.rng.choice(["fori", "scan", "while", "cond"])
        n = self.rng.randint(0, 4)
        if kind == "fori":
            body = self.rng.choice([
                "lambda i, c: 0.6 * c + 0.3 * xp.sin(c) + 0.05 * i",
                "lambda i, c: c * xp.tanh(c) * 0.5 + 0.1",
                "lambda i, c: xp.where(xp.greater(c, 0.1 * i), 0.8 * c, xp.cos(c))",
            ])  # fmt: skip
            if v.shape and v.shape[0] > 0 and self.rng.random() < 0.4:  # a traced index into the carry
                body = f"lambda i, c: 0.8 * c + 0.2 * xp.sin(c[i % {v.shape[0]}])"
            if "where" in body:
                self.note_ties("where", v)
            self.fresh(f"xp.fori_loop(0, {n}, {body}, {v.name})", v.shape, v.tied)
        elif kind == "scan" and v.shape:
            reverse = self.rng.random() < 0.3
            carry, ys = f"c{self.count}", f"y{self.count}"
            self.lines.append(
                f"{carry}, {ys} = xp.scan(lambda c, x: (0.7 * c + xp.sin(x), c * x), "
                f"xp.sum({v.name}, axis=0) * 0.0 + 0.5, {v.name}, reverse={reverse})"
            )
            self.values.append(Value(carry, v.shape[1:], True))
            self.values.append(Value(ys, v.shape, v.tied))
        elif kind == "while":
            self.fresh(f"xp.while_loop(lambda s: s[0] < {n}, lambda s: (s[0] + 1, 0.9 * s[1] + 0.1 * xp.cos(s[1])), (0, {v.name}))[1]", v.shape, v.tied)
        else:
            pred = f"xp.sum({v.name}) - {self.rng.choice([-1.0, 0.0, 1.0])}"
            self.fresh(f"xp.cond({pred}, lambda t: xp.sin(t) * 2.0, lambda t: t - 1.0, {v.name})", v.shape, v.tied)

    def program(self, shapes, dtype, length) -> Program:
        self.values = [Value("a", shapes[0], False), Value("b", shapes[1], False)]
        steps = [self.unary, self.binary, self.reduce, self.slice_, self.index, self.structure, self.loop]
        weights = [3, 3, 2, 2, 1, 3, 2]
        for _ in range(length):
            self.rng.choices(steps, weights)[0]()
        out = self.values[-1]
        self.lines.append(f"return {out.name}")
        return Program(self.lines, shapes, dtype, self.grad_comparable)


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def random_program(seed: int, max_length: int = 6) -> Program:
    rng = random.Random(seed)
    side = lambda: rng.choice([0, 1, 1, 2, 3, 4])  # noqa: E731
    a = tuple(side() for _ in range(rng.randint(0, 3)))
    b = a[rng.randint(0, len(a)) :] if rng.random() < 0.6 else tuple(side() for _ in range(rng.randint(0, 2)))
    b = tuple(1 if rng.random() < 0.2 else d for d in b)
    dtype = rng.choice(["float64", "float64", "float32"])
    return Generator(rng).program((a, b), dtype, rng.randint(2, max_length))


# -- running and comparing --------------------------------------------------------------

TOLERANCE = {"float64": 1e-9, "float32": 2e-3}


@dataclass
class Outcome:
    seed: int
    program: Program
    problem: str | None  # None: agreed


def compile_program(program: Program):
    scope: dict = {}
    exec(program.source(), scope)  # the generator's own text
    return scope["program"]


def inputs(program: Program, seed: int):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.5, 1.5, s).astype(program.dtype) for s in program.shapes]


def close(got, want, dtype) -> str | None:
    scalar = isinstance(got, float)  # 0-d results come back as Python floats (DESIGN.md)
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    if got.dtype != np.dtype(dtype) and not scalar:
        return f"dtype {got.dtype} != {dtype}"
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)))
    if not np.allclose(got, want, rtol=tol, atol=tol * scale, equal_nan=True):
        worst = np.nanmax(np.abs(got.astype(np.float64) - want.astype(np.float64))) if got.size else 0
        return f"values differ (max abs diff {worst:.3g}, scale {scale:.3g})"
    return None


def check_program(seed: int, jx=None, max_length: int = 6) -> Outcome:
    import jax
    import jax.numpy as jnp

    import raster_mlir as rm

    jx = jx or jax_namespace()
    program = random_program(seed, max_length)
    fn = compile_program(program)
    a, b = inputs(program, seed)
    try:
        want = np.asarray(fn(jx, jnp.asarray(a), jnp.asarray(b)))
    except Exception as error:  # a program JAX refuses is not a test
        return Outcome(seed, program, f"skip: JAX refused: {type(error).__name__}: {error}")
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, want.shape).astype(program.dtype)

    def loss(xp):
        return lambda a, b: xp.sum(fn(xp, a, b) * weights)

    problems = []
    try:
        eager = fn(rm, a, b)
        if (p := close(eager, want, program.dtype)) is not None:
            problems.append(f"eager value: {p}")
        compiled = rm.jit(lambda a, b: fn(rm, a, b))(a, b)
        if (p := close(compiled, want, program.dtype)) is not None:
            problems.append(f"compiled value: {p}")
        if program.grad_comparable:
            want_grads = jax.grad(loss(jx), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
            got_grads = rm.grad(loss(rm), argnums=(0, 1))(a, b)
            for label, g, w in zip("ab", got_grads, want_grads):
                if (p := close(g, np.asarray(w), program.dtype)) is not None:
                    problems.append(f"gradient of {label}: {p}")
    except Exception as error:
        problems.append(f"raised {type(error).__name__}: {error}\n{traceback.format_exc(limit=-3)}")
    return Outcome(seed, program, "; ".join(problems) or None)


def describe(outcome: Outcome) -> str:
    p = outcome.program
    return f"seed {outcome.seed}: shapes {p.shapes} {p.dtype}\n{p.source()}-> {outcome.problem}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=6, help="statements per program, at most")
    parser.add_argument("--show", action="store_true", help="print every program")
    args = parser.parse_args(argv)
    jx = jax_namespace()
    failures = skipped = 0
    for seed in range(args.seed, args.seed + args.programs):
        outcome = check_program(seed, jx, args.max_length)
        if outcome.problem and outcome.problem.startswith("skip"):
            skipped += 1
        elif outcome.problem:
            failures += 1
            print(describe(outcome), flush=True)
        elif args.show:
            print(describe(outcome), flush=True)
    print(f"{args.programs} programs: {failures} failed, {skipped} skipped (JAX refused)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
