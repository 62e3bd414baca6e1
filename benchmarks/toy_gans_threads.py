"""Chapter 5's eight toy GAN runs (ring and grid × minimax, non-saturating, WGAN-GP, PacGAN2;
3 seeds vmapped each) one after another against two at a time on threads
(`gan_toys.train_toy_gans_on_threads`): the row that justifies the threads.

    python -m benchmarks.toy_gans_threads              # ~4.5 min on 2 cores
    python -m benchmarks.toy_gans_threads --steps 200  # a quicker check

Each timing includes the compiles, as in the notebook: before every timed set the compiled
programs are dropped (`gan_toys._programs.cache_clear()`, `jax.clear_caches()`). The sets
alternate (one after another, on threads, one after another, on threads, ...) so that load from
other processes hits both alike. Every set's samples must equal the first set's bit for bit, or
the script stops. Prints seconds per set, the median of each way and their ratio.
"""
import argparse
import time

import jax
import numpy as np

from benchmarks import _common
from experiments.toy_gans_full import TOYS, VARIANTS      # notebook 05's toys and variants
from segen_jax import gan_toys


def jobs(steps):
    """Notebook 05's jobs, the rings first: {(toy, variant): (dataset, options)}."""
    return {(toy, variant): (make(), dict(seeds=(0, 1, 2), steps=steps, **options))
            for toy, make in TOYS.items() for variant, options in VARIANTS.items()}


def one_set(steps, workers):
    """(seconds, samples of every run) of the eight runs, compiles included."""
    gan_toys._programs.cache_clear()
    jax.clear_caches()
    start = time.perf_counter()
    if workers == 1:
        runs = {name: gan_toys.train_toy_gans(dataset, **options)
                for name, (dataset, options) in jobs(steps).items()}
    else:
        runs = gan_toys.train_toy_gans_on_threads(jobs(steps), workers=workers)
    return time.perf_counter() - start, [run.samples for run in runs.values()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="generator steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="sets of each way")
    parser.add_argument("--workers", type=int, default=2, help="threads of the threaded way")
    args = parser.parse_args(argv)
    print(_common.environment())
    print(f"load before: {_common.load_now()}")
    seconds = {1: [], args.workers: []}
    reference = None
    for _ in range(args.repeats):
        for workers in seconds:
            elapsed, samples = one_set(args.steps, workers)
            if reference is None:
                reference = samples
            elif not all(np.array_equal(a, b) for a, b in zip(samples, reference)):
                raise SystemExit(f"the samples of the set with {workers} worker(s) differ from "
                                 "the first set's: the runs are not the same")
            seconds[workers].append(elapsed)
            print(f"{workers} worker(s): {elapsed:.1f} s", flush=True)
    alone, threaded = (_common.median(seconds[w]) for w in seconds)
    print(f"\n8 runs of {args.steps} steps, compiles included; every set's samples equal bit "
          f"for bit")
    print(_common.table(["way", "seconds per set (median)", "sets"],
                        [["one after another", f"{alone:.1f}", len(seconds[1])],
                         [f"{args.workers} at a time on threads", f"{threaded:.1f}",
                          len(seconds[args.workers])]]))
    print(f"threads ÷ one after another: {threaded / alone:.2f} ({alone / threaded:.2f}x faster)")
    print(f"load after: {_common.load_now()}")


if __name__ == "__main__":
    main()
