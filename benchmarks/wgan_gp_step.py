"""The WGAN-GP recipe's train step (five critic updates with the gradient penalty, then one
generator update, batch 64) with the penalty through `DCGANDiscriminator.r1_forward` (im2col
convolutions on a CPU), as `gan_step` runs it, against the same step with the penalty through
XLA's convolutions (the critic's `__call__`): the row that justifies the choice.

    python -m benchmarks.wgan_gp_step        # ~1.5 min on 2 cores

The penalty E[(‖∇_x̂ D(x̂)‖ − 1)²] is differentiated twice (once in x̂ inside the loss, once in
the critic's parameters), and XLA:CPU's second-order convolution passes are slow
(`r1_conv.py`). Checks first that both steps give the same critic losses and penalties over 3
steps from the same initial state, then prints the median steps/s of 7 interleaved windows of
about 1.5 s for each (`_common.interleaved_windows`), and their ratio.
"""
import jax
import numpy as np

from benchmarks import _common
from segen_jax import recipes
from segen_jax.models import DCGANDiscriminator
from segen_jax.recipes import RECIPES


class XlaCritic(DCGANDiscriminator):
    """The library's critic with the penalty's passes through XLA's convolutions too. traces
    counts the traces of its r1_forward: both steps compute the same numbers, so only this
    shows that the recipe built this class."""

    traces = 0

    def r1_forward(self, images):
        XlaCritic.traces += 1
        return self(images)


def _step(critic_class):
    """([state], step, batches): the recipe's build, with its critic made as critic_class."""
    recipe = RECIPES["wgan-gp"]
    original = recipes.DCGANDiscriminator
    recipes.DCGANDiscriminator = critic_class         # the class the recipe's build constructs
    try:
        _, state, step = recipe.build(0, recipe.defaults["lr"], recipe.defaults["steps"])
    finally:
        recipes.DCGANDiscriminator = original
    return [state], step, recipe.batches(64, 0)(0)


def main():
    steps = {"penalty by XLA's conv": _step(XlaCritic),
             "penalty by im2col": _step(DCGANDiscriminator)}

    def runner(holder, step, batches):
        def run(n):
            for _ in range(n):
                holder[0], metrics = step(holder[0], next(batches))
            jax.block_until_ready((metrics, holder[0]))
            return metrics
        return run

    runs = {k: runner(*v) for k, v in steps.items()}
    first = {k: [run(1) for _ in range(3)] for k, run in runs.items()}
    values = {k: np.array([[float(m["d_loss"]), float(m["gradient_penalty"])] for m in ms])
              for k, ms in first.items()}
    diff = float(np.abs(np.subtract(*values.values())).max())
    assert diff < 1e-4, f"the two steps differ: {values}"
    assert XlaCritic.traces > 0, "the XLA-convolution step never called XlaCritic.r1_forward"
    rates, spread = _common.rates(runs, repeats=7, target_s=1.5, minimum=2)
    for k, rate in rates.items():
        print(f"{k:<22} {rate:6.2f} steps/s  (windows {spread[k]})")
    xla, im2col = rates.values()
    print(f"im2col ÷ XLA: {im2col / xla:.2f}x; critic losses and penalties of the first 3 steps "
          f"agree to {diff:.1e}; {_common.load_now()}")


if __name__ == "__main__":
    main()
