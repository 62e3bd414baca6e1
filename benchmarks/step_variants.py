"""Ways to compile one Flax NNX train step, compared on the same model, batches and init.

Measured, for the library's Classifier (CNN, 28x28x1, batch 64) and a tiny MLP 784-32-10
(batch 32, where Python dispatch dominates), each with Adam(1e-3) and softmax cross-entropy:

- train-step throughput (steps/s, img/s): the median of interleaved timing windows, each
  window n steps then `block_until_ready` on the last loss and the whole state;
- compile time: the first call of a fresh jitted function (trace + lower + compile + one
  step; min of 3); and, where the variant has `.lower`, `lower()` and `.compile()` timed
  apart (min of 2). Each repeat builds a new jitted function, so no JAX cache is hit;
- that every variant gives the same losses over the first steps from the same init.

Variants:
  a.  nnx.jit over the module graph: step(model, optimizer, x, y)
  a'. the same with nnx.jit(graph=False) ("tree mode", flax >= 0.12), for reference
  b.  nnx.cached_partial(step_a, model, optimizer)(x, y)
  c.  jax.jit over split state, state donated, nnx.merge inside
  d.  segen_jax.train.nnx_step (c plus a PRNG key split and a gradient-norm metric), with
      compiler_options=None (XLA's defaults, like a-c)

    python -m benchmarks.step_variants [--repeats 7] [--window 0.75] [--models classifier,mlp]
"""
import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import _common
from segen_jax.models import Classifier
from segen_jax.train import nnx_state, nnx_step

LOSS_STEPS = 5      # steps compared between variants
LOSS_TOL = 1e-5     # max |loss_variant - loss_reference| over those steps
FIRST_CALL_REPEATS = 3
AOT_REPEATS = 2


class MLP(nnx.Module):
    """784-32-10 with ReLU: small enough that the per-call Python work dominates."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(784, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


MODELS = {
    # name: (constructor, batch size, flat inputs)
    "classifier": (lambda: Classifier(rngs=nnx.Rngs(0)), 64, False),
    "mlp": (lambda: MLP(rngs=nnx.Rngs(0)), 32, True),
}


def loss_fn(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def factory(construct):
    """make() -> a fresh (model, Adam optimizer), always the same init, cheap to call.

    The init is computed once and kept on the host, so every variant starts from the same
    arrays and building an instance costs no compilation.
    """
    model = construct()
    graphdef, state = nnx.split((model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)))
    host = jax.device_get(state)
    return lambda: nnx.merge(graphdef, jax.tree.map(jnp.asarray, host))


def graph_step(**jit_kwargs):
    """A new nnx.jit-compiled step(model, optimizer, x, y) -> loss (updates in place)."""
    @nnx.jit(**jit_kwargs)
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

    return step


class NnxJit:
    """a. nnx.jit over (model, optimizer): the graph is walked on every call."""
    label = "a. `nnx.jit` (graph mode, default)"
    jit_kwargs = {}

    def __init__(self, make_model):
        self.model, self.optimizer = make_model()
        self.step = graph_step(**self.jit_kwargs)

    def __call__(self, x, y):
        return self.step(self.model, self.optimizer, x, y)

    def lower(self, x, y):
        return self.step.lower(self.model, self.optimizer, x, y)

    def block(self):
        jax.block_until_ready(nnx.state((self.model, self.optimizer)))


class NnxJitTree(NnxJit):
    """a'. nnx.jit(graph=False): modules treated as pytrees (no shared-reference tracking)."""
    label = "a'. `nnx.jit(graph=False)` (tree mode)"
    jit_kwargs = {"graph": False}


class CachedPartial(NnxJit):
    """b. nnx.cached_partial: the graph traversal of (model, optimizer) is cached."""
    label = "b. `nnx.cached_partial(step_a, model, opt)`"

    def __init__(self, make_model):
        super().__init__(make_model)
        self.cached = nnx.cached_partial(self.step, self.model, self.optimizer)

    def __call__(self, x, y):
        return self.cached(x, y)

    lower = None  # a plain Python wrapper: no AOT API of its own


class SplitJit:
    """c. jax.jit over the split state (donated); nnx.merge inside the traced function."""
    label = "c. `jax.jit` split state, donated"

    def __init__(self, make_model):
        graphdef, self.state = nnx.split(make_model())

        @functools.partial(jax.jit, donate_argnums=0)
        def step(state, x, y):
            model, optimizer = nnx.merge(graphdef, state)
            loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), loss

        self.step = step

    def __call__(self, x, y):
        self.state, loss = self.step(self.state, x, y)
        return loss

    def lower(self, x, y):
        return self.step.lower(self.state, x, y)

    def block(self):
        jax.block_until_ready(self.state)


class LibraryStep(SplitJit):
    """d. segen_jax.train.nnx_step, exactly as the training loop calls it."""
    label = "d. `segen_jax.train.nnx_step`"

    def __init__(self, make_model):
        graphdef, self.state = nnx_state(*make_model(), seed=0)
        # XLA's default options, as the other variants' plain jits (train.CPU_OPTIONS has its
        # own row in train_step.py)
        self.step = nnx_step(graphdef, lambda model, batch, key: (loss_fn(model, *batch), {}),
                             compiler_options=None)

    def __call__(self, x, y):
        self.state, metrics = self.step(self.state, (x, y))
        return metrics["loss"]

    def lower(self, x, y):
        return self.step.lower(self.state, (x, y))


VARIANTS = [NnxJit, NnxJitTree, CachedPartial, SplitJit, LibraryStep]


class SplitJitPlus(SplitJit):
    """c plus one of the two extras that nnx_step adds: a PRNG key split, a gradient norm."""

    def __init__(self, make_model, *, key: bool, grad_norm: bool):
        graphdef, arrays = nnx.split(make_model())
        self.state = {"nnx": arrays, "key": jax.random.key(0) if key else None}
        self.label = "c + " + " + ".join(
            n for n, on in [("key split", key), ("grad_norm output", grad_norm)] if on)

        @functools.partial(jax.jit, donate_argnums=0)
        def step(state, x, y):
            model, optimizer = nnx.merge(graphdef, state["nnx"])
            key = state["key"]
            if key is not None:
                key, _ = jax.random.split(key)
            loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
            optimizer.update(model, grads)
            metrics = {"loss": loss}
            if grad_norm:
                metrics["grad_norm"] = optax.tree.norm(grads)
            return {"nnx": nnx.state((model, optimizer)), "key": key}, metrics

        self.step = step

    def __call__(self, x, y):
        self.state, metrics = self.step(self.state, x, y)
        return metrics["loss"]


def runner(variant, batches):
    """run(n): n train steps over the cycled batches, returning once all are computed."""
    def run(n):
        loss = None
        for i in range(n):
            loss = variant(*batches[i % len(batches)])
        jax.block_until_ready(loss)
        variant.block()
    return run


def compile_times(cls, make_model, x, y):
    """Compile costs of fresh instances (each a new jitted function, so nothing is cached).

    Returns (first call s, lower s, compile s, the last instance, its first loss): the first
    call (trace + lower + compile + one step) is the min of FIRST_CALL_REPEATS, lower() and
    compile() the min of AOT_REPEATS (None where the variant has no .lower). The instance
    kept has done one step on (x, y) and goes on to the loss check and the timings.
    """
    first, lower, compile_ = [], [], []
    for _ in range(AOT_REPEATS if cls.lower is not None else 0):
        v = cls(make_model)
        t = time.perf_counter()
        lowered = v.lower(x, y)
        t_lower = time.perf_counter()
        lowered.compile()
        lower.append(t_lower - t)
        compile_.append(time.perf_counter() - t_lower)
    for _ in range(FIRST_CALL_REPEATS):
        v = cls(make_model)
        t = time.perf_counter()
        loss = v(x, y)
        jax.block_until_ready(loss)
        v.block()
        first.append(time.perf_counter() - t)
    best = lambda xs: min(xs) if xs else None
    return best(first), best(lower), best(compile_), v, float(loss)


def check_losses(instances, first_losses, batches):
    """The first LOSS_STEPS losses of every variant, asserted equal to variant c's.

    Each instance has already done step 0 on batches[0] (its loss in first_losses).
    """
    losses = {}
    for name, v in instances.items():
        rest = [float(v(*batches[i])) for i in range(1, LOSS_STEPS)]
        losses[name] = np.array([first_losses[name], *rest])
    ref = losses["SplitJit"]
    for name, values in losses.items():
        diff = float(np.max(np.abs(values - ref)))
        assert diff <= LOSS_TOL, (f"{name}: losses {values} differ from variant c's {ref} "
                                  f"by {diff:.2e} > {LOSS_TOL}")
    worst = max(float(np.max(np.abs(v - ref))) for v in losses.values())
    return ref, worst


def bench_model(name, *, repeats, window_s):
    construct, batch_size, flat = MODELS[name]
    make_model = factory(construct)
    batches = [tuple(jnp.asarray(a) for a in b)
               for b in _common.mnist_batches(batch_size, 8, flat=flat)]
    x, y = batches[0]

    # Warm the process (backend, lowering rules) so the first variant measured isn't penalised.
    jax.block_until_ready(SplitJit(make_model)(x, y))
    compiles, instances, first_losses = {}, {}, {}
    for cls in VARIANTS:
        *compiles[cls.__name__], instances[cls.__name__], first_losses[cls.__name__] = (
            compile_times(cls, make_model, x, y))
    ref_losses, worst = check_losses(instances, first_losses, batches)

    runs = {n: runner(v, batches) for n, v in instances.items()}
    for run in runs.values():
        run(3)  # warm-up (calibrate() runs more steps before any window is timed)
    steps = {n: _common.calibrate(run, target_s=window_s, minimum=5) for n, run in runs.items()}
    per_step = _common.interleaved_windows(runs, steps, repeats=repeats)

    med = {n: _common.median(v) for n, v in per_step.items()}
    best = min(med.values())
    fmt = lambda s: "n/a" if s is None else f"{s:.2f}"
    rows = []
    for cls in VARIANTS:
        n = cls.__name__
        first, lower, comp = compiles[n]
        rows.append([cls.label, f"{1 / med[n]:,.0f}", f"{batch_size / med[n]:,.0f}",
                     f"{best / med[n]:.2f}", f"{1e6 * med[n]:,.0f} ({_common.spread(per_step[n])})",
                     f"{1e6 * (med[n] - best):,.0f}", fmt(first), fmt(lower), fmt(comp)])
    n_params = sum(p.size for p in jax.tree.leaves(nnx.state(make_model()[0], nnx.Param)))
    title = (f"### {name}: {n_params:,} parameters, batch {batch_size}, "
             f"{repeats} windows of ~{window_s:g} s per variant")
    header = ["variant", "steps/s", "img/s", "vs fastest", "µs/step (spread)",
              "overhead µs/step", "first call s", "lower s", "compile s"]
    notes = (f"Losses of the first {LOSS_STEPS} steps equal across variants (max |Δ| = "
             f"{worst:.1e} <= {LOSS_TOL:g}): {', '.join(f'{v:.5f}' for v in ref_losses)}. "
             f"After: {_common.load_now()}.")
    parts = [title, _common.table(header, rows), notes]
    if name == "mlp":
        parts.append(library_extras(make_model, batches, repeats=repeats, window_s=window_s))
    return "\n\n".join(parts)


def library_extras(make_model, batches, *, repeats, window_s):
    """Where d's time over c goes on the tiny MLP: c with each of d's extras added alone."""
    instances = {"c": SplitJit(make_model),
                 "key": SplitJitPlus(make_model, key=True, grad_norm=False),
                 "norm": SplitJitPlus(make_model, key=False, grad_norm=True),
                 "d": LibraryStep(make_model)}
    runs = {n: runner(v, batches) for n, v in instances.items()}
    for run in runs.values():
        run(3)
    steps = {n: _common.calibrate(run, target_s=window_s / 2) for n, run in runs.items()}
    per_step = _common.interleaved_windows(runs, steps, repeats=repeats)
    base = _common.median(per_step["c"])
    rows = [[v.label, f"{1 / _common.median(per_step[n]):,.0f}",
             f"{1e6 * _common.median(per_step[n]):,.0f}",
             f"{1e6 * (_common.median(per_step[n]) - base):+,.0f}"]
            for n, v in instances.items()]
    return ("What d adds to c on the MLP (same interleaved method, windows of "
            f"~{window_s / 2:g} s):\n\n"
            + _common.table(["step", "steps/s", "µs/step", "vs c µs/step"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing windows per variant")
    parser.add_argument("--window", type=float, default=0.75, help="seconds per window")
    parser.add_argument("--models", default="classifier,mlp")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print("## Train-step variants (benchmarks/step_variants.py)\n")
    print(_common.environment() + "\n", flush=True)
    for name in args.models.split(","):
        print(bench_model(name, repeats=args.repeats, window_s=args.window) + "\n", flush=True)
    print(f"Total time {time.perf_counter() - t0:.0f} s.")  # per-model load lines above


if __name__ == "__main__":
    main()
