"""Where a train step's time goes: the library's step under jax.profiler and its PyTorch twin
under torch.profiler, for the families below 1.0x (issue 8).

    python -m benchmarks.profile_step --model dcgan|vae [--steps 40]
    python -m benchmarks.profile_step --model tinyfcn [--batch 4] [--ops 15]
    (also classifier, fcn8s, deeplabv3, deeplabv3plus: train_step.py's families and step)

For the JAX step: the wall time per step, the XLA:CPU op time per step summed over threads
and grouped by HLO op kind (convolutions, fusions, dots, ...), and their ratio, the average
number of busy threads (2.0 would keep both cores busy); with --ops N also the N slowest single
ops of the compiled step, each with its shape, opcode and the JAX operation it came from
("transpose(jvp(...))" marks the backward pass). For PyTorch (NCHW and channels_last):
the wall time per step and the self CPU time of its top operators. Prints a Markdown report;
the results and their reading are in RESULTS_profile.md.

The JAX op names come from jax._src.profiler.ProfileData, which is not public API (as in
scan_vs_loop.py); a later JAX may rename its trace lines. XLA's own (Eigen) convolutions run
asynchronously and their events hold only their start, so the op time undercounts steps that
use them (train.CPU_OPTIONS) and "threads busy" reads low (RESULTS_profile.md, "Correction").
"""
import argparse
import time

import jax
import jax.numpy as jnp

from benchmarks import _common
from benchmarks.train_step import FAMILIES, JaxStep
from segen_jax import data
from segen_jax.recipes import RECIPES
from segen_jax.train import default_parts


def _jax_runner(model, batches):
    """(run(n) of the compiled step (state donated), compiled and warmed up; the step's
    compiled HLO text): the recipe's step for dcgan and vae, train_step.py's for the others."""
    if model in FAMILIES:
        library = JaxStep(FAMILIES[model][0], batches, default_parts(len(batches[0][0])))
        step, box = library.step, {"state": library.state}
    else:
        recipe = RECIPES[model]
        _, state, step = recipe.build(0, recipe.defaults["lr"], recipe.defaults["steps"])
        box = {"state": state}

    def run(n):
        for i in range(n):
            box["state"], metrics = step(box["state"], batches[i % len(batches)])
        jax.block_until_ready((metrics, box["state"]))

    run(3)
    return run, step.lower(box["state"], batches[0]).compile().as_text()


def _torch_runner(model, np_batches, channels_last):
    import torch
    if model in FAMILIES:
        from benchmarks.classifier_vs_torch import TorchStep
        torch.manual_seed(0)
        step = TorchStep(torch, FAMILIES[model][1](torch), np_batches,
                         channels_last=channels_last)
        run = step.run(step.step)
        run(3)
        return torch, run
    if model == "dcgan":
        from benchmarks.gan_step import TorchGANStep, torch_dcgan
        step = TorchGANStep(torch, *torch_dcgan(torch), np_batches, channels_last=channels_last)
    else:
        from benchmarks.vae_step import TorchVAEStep, torch_vae
        recipe = RECIPES["vae"]
        step = TorchVAEStep(torch, torch_vae(torch), np_batches, channels_last=channels_last,
                            lr=recipe.defaults["lr"], steps=recipe.defaults["steps"])
    step.run(3)
    return torch, step.run


def jax_profile(run, steps, by="kind"):
    """(wall ms per step, {op kind (or name): op ms per step summed over threads})."""
    wall, ops = _common.xla_op_times(lambda: run(steps), by=by)
    return wall / steps * 1e3, {k: v / steps for k, v in ops.items()}


def torch_profile(torch, run, steps, top):
    """(wall ms per step, [(operator, self CPU ms per step)] of the `top` largest)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run(steps)
        wall = (time.perf_counter() - start) / steps * 1e3
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return wall, [(e.key, e.self_cpu_time_total / 1e3 / steps) for e in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, choices=["dcgan", "vae", *FAMILIES])
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (train_step.py's families; default the recipe's)")
    parser.add_argument("--steps", type=int, default=40, help="profiled steps (after warm-up)")
    parser.add_argument("--top", type=int, default=10, help="rows per table")
    parser.add_argument("--ops", type=int, default=0, help="also list the N slowest single ops")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1 or args.ops < 0:
        parser.error(f"--steps and --top must be >= 1 and --ops >= 0, got {args.steps}, "
                     f"{args.top} and {args.ops}")
    if args.batch is not None and (args.model not in FAMILIES or args.batch < 1):
        parser.error(f"--batch takes a size >= 1 for {', '.join(FAMILIES)}; got --batch "
                     f"{args.batch} for {args.model}")
    if args.model in FAMILIES:
        batch = args.batch or FAMILIES[args.model][4]
        np_batches = FAMILIES[args.model][3](batch, 4)
        jax_batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in np_batches]
    else:
        batch = 64
        images, _ = data.load_mnist("train")
        np_batches = [images[i * 64:(i + 1) * 64] for i in range(4)]
        jax_batches = [jnp.asarray(b) for b in np_batches]
    before = _common.load_now()
    run, hlo = _jax_runner(args.model, jax_batches)
    wall, kinds = jax_profile(run, args.steps)
    total = sum(kinds.values())
    print(f"## {args.model}, batch {batch}, {args.steps} steps profiled ({before})\n")
    print(f"segen_jax: {wall:.1f} ms per step wall, {total:.1f} ms of XLA op time per step "
          f"summed over threads: {total / wall:.2f} threads busy on average\n")
    print(_common.table(["op kind", "ms per step", "share of op time"],
                        [(k, f"{v:.2f}", f"{v / total:.0%}") for k, v in
                         sorted(kinds.items(), key=lambda kv: -kv[1])[:args.top]]))
    if args.ops:
        _, ops = jax_profile(run, args.steps, by="name")
        names = _common.hlo_ops(hlo)
        print(f"\nThe {args.ops} slowest single ops ({args.steps} more steps profiled):\n")
        print(_common.table(["op", "ms per step", "share", "shape, opcode (JAX operation)"],
                            [(k, f"{v:.2f}", f"{v / total:.0%}", names.get(k, "?")) for k, v in
                             sorted(ops.items(), key=lambda kv: -kv[1])[:args.ops]]))
    for channels_last in (False, True):
        torch, run = _torch_runner(args.model, np_batches, channels_last)
        t_wall, ops = torch_profile(torch, run, args.steps, args.top)
        layout = "channels_last" if channels_last else "NCHW"
        print(f"\nPyTorch eager {layout}: {t_wall:.1f} ms per step wall (under the profiler)\n")
        print(_common.table(["operator", "self CPU ms per step"], [(k, f"{v:.2f}") for k, v in ops]))
    print(f"\n{_common.load_now()}; " + ", ".join(
        f"{k} {v}" for k, v in _common.run_record(torch)["versions"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
