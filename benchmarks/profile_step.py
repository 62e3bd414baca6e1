"""Where a train step's time goes: the library's step under jax.profiler and its PyTorch twin
under torch.profiler, for the families below 1.0x (issue 8).

    python -m benchmarks.profile_step --model dcgan|vae [--steps 40]

For the JAX step: the wall time per step, the XLA:CPU op time per step summed over threads
and grouped by HLO op kind (convolutions, fusions, dots, ...), and their ratio, the average
number of busy threads (2.0 would keep both cores busy). For PyTorch (NCHW and channels_last):
the wall time per step and the self CPU time of its top operators. Prints a Markdown report;
the results and their reading are in RESULTS_profile.md.

The JAX op names come from jax._src.profiler.ProfileData, which is not public API (as in
scan_vs_loop.py); a later JAX may rename its trace lines.
"""
import argparse
import time

import jax
import jax.numpy as jnp

from benchmarks import _common
from segen_jax import data
from segen_jax.recipes import RECIPES


def _jax_runner(model, batches):
    """run(n) of the recipe's compiled step (state donated), compiled and warmed up."""
    recipe = RECIPES[model]
    graphdef, state, step = recipe.build(0, recipe.defaults["lr"], recipe.defaults["steps"])
    box = {"state": state}

    def run(n):
        for i in range(n):
            box["state"], metrics = step(box["state"], batches[i % len(batches)])
        jax.block_until_ready((metrics, box["state"]))

    run(3)
    return run


def _torch_runner(model, np_batches, channels_last):
    import torch
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


def jax_profile(run, steps):
    """(wall ms per step, {op kind: op ms per step summed over threads})."""
    wall, kinds = _common.xla_op_times(lambda: run(steps))
    return wall / steps * 1e3, {k: v / steps for k, v in kinds.items()}


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
    parser.add_argument("--model", required=True, choices=["dcgan", "vae"])
    parser.add_argument("--steps", type=int, default=40, help="profiled steps (after warm-up)")
    parser.add_argument("--top", type=int, default=10, help="rows per table")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1:
        parser.error(f"--steps and --top must be >= 1, got {args.steps} and {args.top}")
    images, _ = data.load_mnist("train")
    np_batches = [images[i * 64:(i + 1) * 64] for i in range(4)]
    before = _common.load_now()
    wall, kinds = jax_profile(_jax_runner(args.model, [jnp.asarray(b) for b in np_batches]),
                              args.steps)
    total = sum(kinds.values())
    print(f"## {args.model}, batch 64, {args.steps} steps profiled ({before})\n")
    print(f"segen_jax: {wall:.1f} ms per step wall, {total:.1f} ms of XLA op time per step "
          f"summed over threads: {total / wall:.2f} threads busy on average\n")
    print(_common.table(["op kind", "ms per step", "share of op time"],
                        [(k, f"{v:.2f}", f"{v / total:.0%}") for k, v in
                         sorted(kinds.items(), key=lambda kv: -kv[1])[:args.top]]))
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
