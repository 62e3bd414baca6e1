"""Why a train step inside `lax.scan` is slower on XLA:CPU than the same step in a Python loop.

The same Classifier step (Adam, softmax cross-entropy, batch 64 of shipped digits) run
  loop:  a jitted, donated step called K times from Python;
  scan:  one jitted function running K steps with `lax.scan` (one dispatch for K steps);
  scan, unroll=True: the same with the K steps unrolled (no `while` loop in the HLO);
both from the same init over the same K batches, so their losses must agree (asserted).
Printed: steps/s of each (median of interleaved windows), and for each the XLA:CPU op time
per step by op kind (jax.profiler) and the compiled HLO's op counts, to show where a scanned
step spends the extra time.

    python -m benchmarks.scan_vs_loop [--steps-per-scan 10] [--repeats 5]
"""
import argparse
import collections
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import _common
from segen_jax.models import Classifier

BATCH = 64


def loss_fn(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def make_state():
    model = Classifier(rngs=nnx.Rngs(0))
    return nnx.split((model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)))


def body(graphdef):
    def one_step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(loss_fn)(model, *batch)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss
    return one_step


def op_profile(fn, args, calls, steps_per_call):
    """XLA:CPU op time per train step by op kind (_common.xla_op_times)."""
    def run():
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
    _, kinds = _common.xla_op_times(run)
    return {k: v / calls / steps_per_call for k, v in kinds.items()}


def hlo_counts(compiled_text):
    ops = re.findall(r"=\s*\S+\s+([a-z][a-z0-9_-]*)\(", compiled_text)
    return collections.Counter(ops)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps-per-scan", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    k = args.steps_per_scan
    print("## Train step in a Python loop vs inside lax.scan (benchmarks/scan_vs_loop.py)\n")
    print(_common.environment())
    batches = _common.mnist_batches(BATCH, k)
    xs = jnp.stack([jnp.asarray(x) for x, _ in batches])
    ys = jnp.stack([jnp.asarray(y) for _, y in batches])
    graphdef, state0 = make_state()
    one_step = body(graphdef)
    loop_step = jax.jit(one_step, donate_argnums=0)
    scan_steps = jax.jit(lambda state, xs, ys: jax.lax.scan(one_step, state, (xs, ys)),
                         donate_argnums=0)
    unrolled = jax.jit(lambda state, xs, ys: jax.lax.scan(one_step, state, (xs, ys), unroll=True),
                       donate_argnums=0)

    fresh = lambda: jax.tree.map(jnp.copy, state0)
    state, loop_losses = fresh(), []
    for i in range(k):
        state, loss = loop_step(state, (xs[i], ys[i]))
        loop_losses.append(float(loss))
    _, scan_losses = scan_steps(fresh(), xs, ys)
    _, unrolled_losses = unrolled(fresh(), xs, ys)
    diff = max(float(np.abs(np.array(loop_losses) - np.asarray(other)).max())
               for other in (scan_losses, unrolled_losses))
    assert diff <= 1e-4, f"scan and loop disagree: {loop_losses} vs {scan_losses}, {unrolled_losses}"

    holders = {"loop": [fresh()], "scan": [fresh()], "unrolled": [fresh()]}
    step_batches = [(xs[i], ys[i]) for i in range(k)]   # sliced once, outside the timing

    def run_loop(n):
        for _ in range(n):
            for batch in step_batches:
                holders["loop"][0], loss = loop_step(holders["loop"][0], batch)
        jax.block_until_ready(holders["loop"][0])

    def run_scan(n):
        for _ in range(n):
            holders["scan"][0], losses = scan_steps(holders["scan"][0], xs, ys)
        jax.block_until_ready(holders["scan"][0])

    def run_unrolled(n):
        for _ in range(n):
            holders["unrolled"][0], losses = unrolled(holders["unrolled"][0], xs, ys)
        jax.block_until_ready(holders["unrolled"][0])

    runs = {"loop": run_loop, "scan": run_scan, "scan, unroll=True": run_unrolled}
    for run in runs.values():
        run(1)
    _common.load_now()
    per = _common.interleaved_windows(runs, {name: 3 for name in runs}, repeats=args.repeats)
    load = _common.load_now()
    step_s = {name: _common.median(v) / k for name, v in per.items()}
    rows = [[name, f"{1 / t:.1f}", f"{1e3 * t:.1f}", f"{step_s['loop'] / t:.2f}"]
            for name, t in step_s.items()]
    print(f"\nK = {k} steps per scan call; losses of the first {k} steps agree to {diff:.1e}; "
          f"{load}\n")
    print(_common.table(["how", "steps/s", "ms/step", "speed ÷ loop"], rows))

    profiles = {
        "loop": op_profile(lambda s: loop_step(s, (xs[0], ys[0]))[0], (fresh(),), 1, 1),
        "scan": op_profile(lambda s: scan_steps(s, xs, ys)[0], (fresh(),), 1, k),
    }
    kinds = sorted(set(profiles["loop"]) | set(profiles["scan"]),
                   key=lambda name: -(profiles["scan"].get(name, 0) + profiles["loop"].get(name, 0)))
    rows = [[f"`{name}`", f"{profiles['loop'].get(name, 0):.2f}",
             f"{profiles['scan'].get(name, 0):.2f}"] for name in kinds[:14]]
    print("\n### XLA:CPU op time per train step (ms, summed over threads)\n")
    print(_common.table(["op kind", "loop", "scan"], rows))
    print(f"\nAll op kinds: loop {sum(profiles['loop'].values()):.1f} ms, "
          f"scan {sum(profiles['scan'].values()):.1f} ms per step.")

    texts = {"loop": loop_step.lower(fresh(), (xs[0], ys[0])).compile().as_text(),
             "scan": scan_steps.lower(fresh(), xs, ys).compile().as_text()}
    counts = {name: hlo_counts(text) for name, text in texts.items()}
    ops = sorted(set(counts["loop"]) | set(counts["scan"]),
                 key=lambda o: -(counts["loop"][o] + counts["scan"][o]))
    rows = [[f"`{o}`", counts["loop"][o], counts["scan"][o]] for o in ops[:16]]
    print("\n### Ops in the compiled HLO (whole module; scan's step is the while body)\n")
    print(_common.table(["HLO op", "loop", "scan"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
