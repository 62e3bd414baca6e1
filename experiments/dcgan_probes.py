"""The DCGAN recipe's run with one change, judged by the Fréchet distance along the way (issue 10:
what lowers the DCGAN's FD on the 4,000 shipped digits?).

    python -m experiments.dcgan_probes --steps 4000                    # the recipe, 4,000 steps
    python -m experiments.dcgan_probes --steps 4000 --r1 0             # without its R1 penalty
    python -m experiments.dcgan_probes --steps 4000 --r1-samples all   # R1 on the whole batch
    python -m experiments.dcgan_probes --steps 4000 --ema 0.99 0.999   # + averaged generators
    python -m experiments.dcgan_probes --steps 800 --schedule 20000 --eval-every 100 --lr 0.004
    python -m experiments.dcgan_probes --steps 4000 --width 64         # both networks twice as wide
    python -m experiments.dcgan_probes --steps 4000 --shift 2 --cutout 8   # DiffAugment

The run is the "dcgan" recipe's (networks, non-saturating loss, Adam(2e-3 or --lr,
β = (0.5, 0.999)) decayed along a cosine over --steps or --schedule, batch 64, seed 0 or --seed,
networks of width 32 or --width, D shown DiffAugment's shifted (--shift s) and cut-out
(--cutout c) images if asked (gan_step(augment=diff_augment)),
Mescheder et al.'s R1 penalty (γ/2)·E‖∇_x D(x)‖² on the first m real digits of each batch
added to D's loss, `recipes.DCGAN_R1`). --r1 γ and --r1-samples m change the penalty
(`gan_step(r1_weight=γ, r1_samples=m)`; γ = 0 leaves it out). --ema β also keeps an exponential moving average of the
generator's arrays (weights and batch-norm statistics), θ̄ ← β·θ̄ + (1 − β)·θ after every step
(Yazıcı et al. 2019), and evaluates it next to the trained generator. Each --eval-every steps
one JSON line: the step, the FD of the generator ("fd", `recipes.evaluate_generator`: 1,000
samples against 1,000 test digits, the floor fd_real = 19.1) and of each average
("fd_ema_<β>"), D's last loss and the seconds so far.

Measured, one seed, FD at step 4,000 (each run's cosine over 4,000 steps):
  2026-12-02, a 2-core Intel Xeon with AVX-512, both cores, one-off scripts doing the same
  computation (not rerun through this one), before the recipe had R1:
    no R1: 164.2 (364 s); with --ema 0.99 / 0.999: 165.9 / 170.2 (the cosine already ends on
        small steps, so the average adds nothing);
    R1 on all 64 digits, γ = 1: 128.7 (783 s), D's loss 1.36 (near log 4: D held close to
        chance), R1 about 0.07.
  2026-12-03, the same host type, this script, two runs at a time on one core each:
    R1 on the first m of 64 digits: m = 16, γ = 1: 124.9 (the recipe's choice); m = 8:
        γ = 0.3 / 1 / 3: 124.5 / 136.1 / 134.3;
    StyleGAN2's lazy R1 instead, (16·γ/2)·R1 on every 16th D update (a version of gan_step
        not kept): γ = 1: 174.2, γ = 10: 243.7. Under Adam the rare large term did not act like
        the steady one.
  2026-12-03, the same host type, this script, sharing the 2 cores with a training run:
    notebook 05's live run (400 steps of the cosine over the recipe's 20,000 of that day, 30,000
    since, so near a constant rate; --schedule 20000), for its target of FD <= 12x the floor
    (229): FD at steps 100/200/300/400 733.9/401.9/410.5/331.3, then 331.9/283.8/533.3/
    252.3/259.7 at 500/600/800/1000/1200;
    with its cosine over 400 steps instead: 386.0 at 400 (over 800: 303.4 at 800);
    --lr 0.004: 278.7/272.7/248.4/234.1/265.5 at 400-800; --lr 0.006: 300.1 at 400, 240.9 at
    600, 434.9 at 800; --ema 0.9 / 0.95: 214.5 / 215.4 at 800 with --lr 0.004 (265.5 without),
    340.7 / 340.9 at 400 with the recipe's rate (331.3 without). None held below 229 within
    the notebook's CPU budget then.
  2026-12-07, the same host type, this script with --seed, sharing the 2 cores with CI's tests:
    --steps 800 --schedule 30000 --eval-every 200 --lr 0.004 --ema 0.9 0.95 --seed 0 / 1 / 2:
    FD at 800 228.6 / 254.3 / 237.6, averages 230.6 / 229.7 / 220.2 (β = 0.9) and
    229.5 / 223.7 / 222.7 (β = 0.95): at the target, not below it;
    --steps 1200 --eval-every 400 --ema 0.95 0.99, the same otherwise: FD at 1200
    220.0 / 194.8 / 194.6, averages 193.5 / 172.8 / 196.4 (β = 0.95) and 200.2 / 177.1 / 193.8
    (β = 0.99); at 400 seed 1's generator had jumped to 514.5, its β = 0.95 average 300.0.
    Every seed below 229 at 1,200 steps: notebook 05's live run since takes 1,200 steps at
    --lr 0.004 and judges the β = 0.95 average (`gan_step(ema=...)`).
  2026-12-07, the same host type, --steps 4000 --width 64 --eval-every 1000 (R1 as the recipe;
    sharing the 2 cores with CI's tests): FD 248.6 / 129.7 / 106.9 / 97.4 at steps
    1,000-4,000 (1,069 s), against 124.9 for the recipe's width 32 (above) and 149 for width 64
    without R1 (recipes.py). With R1 the wider pair pays per step; per CPU second not yet: its
    step costs about 2.4x, and width 32's 10,000 steps reached 79.3 (recipes.py). For full mode's
    FD <= 2x the floor (38.2; the shipped width-32 run plateaued at 54.7-57.5), a long width-64
    run with R1 is the next thing to measure. --steps 10000 --width 64 --eval-every 2500 (the
    same day, cores shared with CI's tests for the first 40 min): FD 159.4 / 85.8 / 77.5 / 73.4
    at 2,500-10,000 (2,568 s), against 101.7 at 5,000 and 79.3 at 10,000 for width 32
    (recipes.py): ahead at every evaluation, by less at the end.
  2026-12-07, a 2-core AMD EPYC, two runs at a time on one core each (`taskset -c 0|1`),
    --steps 4000 --eval-every 1000, FD at steps 1,000-4,000: the recipe 240.9 / 155.3 / 131.7 /
    126.9 (556 s; 124.9 on 2026-12-03); --r1 0.3: 205.9 / 196.6 / 141.4 / 126.0; DiffAugment
    (Zhao et al. 2020) with R1 as the recipe: --shift 2: 281.9 / 220.1 / 173.7 / 163.8 (488 s),
    --shift 4 --cutout 14 (their "translation,cutout" policy at 28x28): 317.0 / 282.5 / 254.9 /
    238.5. With R1, D's loss stays near log 4 (1.35-1.39) in every run: D does not memorise
    the 4,000 digits, which is what the augmentation is for, and showing it shifted and cut
    digits only slowed G down (as translation did without R1, recipes.py).
  Step cost on both cores against no R1 (median of 5 interleaved windows of 40 steps): R1 on
  8 / 16 / 64 digits 1.20x / 1.42x / 2.42x through XLA's convolutions (27.3 steps/s without
  R1; the probes above ran so), 1.04x / 1.08x / 1.25x through DCGANDiscriminator.r1_forward
  (25.4 steps/s without R1), which gan_step's R1 now differentiates.
"""
import argparse
import functools
import json
import time

import jax
from flax import nnx

from segen_jax import recipes
from segen_jax.cli import _int_at_least
from segen_jax.gan_step import diff_augment, gan_models


def _beta(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"an EMA β must lie in (0, 1), got {text}")
    return value


def _gamma(text):
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"γ must be a finite number >= 0, got {text}")
    return value


def _samples(text):
    if text == "all":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"R1's sample count must be >= 1 or 'all', got {text}")
    return value


def _copy(tree):
    return jax.tree.map(lambda a: a.copy(), tree)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=_int_at_least(1), default=4000)
    parser.add_argument("--eval-every", type=_int_at_least(1), default=500)
    parser.add_argument("--r1", type=_gamma, default=recipes.DCGAN_R1["r1_weight"],
                        help="γ of the R1 penalty (0: none; default: the recipe's, %(default)s)")
    parser.add_argument("--r1-samples", type=_samples, default=recipes.DCGAN_R1["r1_samples"],
                        help="R1 on the first m real digits of each batch, or 'all' "
                             "(default: the recipe's, %(default)s)")
    parser.add_argument("--ema", type=_beta, nargs="*", default=[], help="EMA decays β")
    parser.add_argument("--schedule", type=_int_at_least(1), default=None,
                        help="the cosine's length in steps (default: --steps; notebook 05's "
                             "live run takes the recipe's default steps)")
    parser.add_argument("--lr", type=float, default=recipes.RECIPES["dcgan"].defaults["lr"],
                        help="peak learning rate of both Adams (default: the recipe's, "
                             "%(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the networks, the noise and the batches (default 0)")
    parser.add_argument("--shift", type=_int_at_least(0), default=0,
                        help="DiffAugment: D sees every image shifted by up to this many pixels "
                             "(gan_step.diff_augment; default 0: not shifted)")
    parser.add_argument("--cutout", type=_int_at_least(0), default=0,
                        help="DiffAugment: ... and with a square of this side cut out "
                             "(default 0: none)")
    parser.add_argument("--width", type=_int_at_least(1), default=32,
                        help="width of both networks (DCGANGenerator's and "
                             "DCGANDiscriminator's; default: the recipe's, 32)")
    args = parser.parse_args(argv)
    recipe = recipes.RECIPES["dcgan"]
    augment = None
    if args.shift or args.cutout:
        augment = functools.partial(diff_augment, shift=args.shift, cutout=args.cutout)
    build = recipes.gan_build("non-saturating", n_critic=1, betas=(0.5, 0.999), parts="auto",
                              cosine=True, r1_weight=args.r1,
                              r1_samples=args.r1_samples, width=args.width,
                              augment=augment)
    graphdef, state, step = build(args.seed, args.lr, args.schedule or args.steps)
    batches = recipe.batches(recipe.defaults["batch_size"], args.seed)(0)
    generator_arrays = lambda s: s["nnx"][0]
    averages = {beta: _copy(generator_arrays(state)) for beta in args.ema}
    blend = jax.jit(lambda avg, new, beta: jax.tree.map(lambda a, b: beta * a + (1 - beta) * b,
                                                        avg, new))
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        state, metrics = step(state, next(batches))
        for beta in averages:
            averages[beta] = blend(averages[beta], generator_arrays(state), beta)
        if i % args.eval_every and i != args.steps:
            continue
        # merge shares the arrays it is given: evaluate copies, never the live training state
        generator, _ = gan_models(graphdef, _copy(state))
        row = {"step": i, "fd": round(recipes.evaluate_generator(generator)["fd"], 1)}
        for beta, average in averages.items():
            generator, _ = gan_models(graphdef, _copy(state))
            nnx.update(generator, _copy(average))
            row[f"fd_ema_{beta}"] = round(recipes.evaluate_generator(generator)["fd"], 1)
        row["d_loss"] = round(float(metrics["d_loss"]), 3)
        if args.r1:
            row["r1_penalty"] = round(float(metrics["r1_penalty"]), 4)
        row["seconds"] = round(time.perf_counter() - start)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
