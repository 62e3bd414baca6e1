"""FCN-8s's train step (batch 4, `train_step.py`'s) with its fc6 as the library computes it on a
CPU, one im2col matrix product (`FCN._fc6`, `ops.conv2d_im2col`), against the same step with fc6
through XLA's convolution (issue 8): the row that justifies `FCN._fc6`.

    python -m benchmarks.fcn_fc6            # ~1 min on 2 cores

fc6 is a 3x3 convolution from 128 to 256 channels on the 2x2 map left after five pools; on a
2-core CPU its forward and input gradient were the step's two slowest XLA ops (1.11 and 1.17 ms
of 16.8 ms of op time, `RESULTS_profile.md`). Checks first that both steps give the same losses
over 3 Adam steps from the same initial parameters, then prints the median img/s of 7
interleaved windows of about 1 s for each (`_common.interleaved_windows`), and their ratio.
"""
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import _common
from benchmarks.train_step import FAMILIES, JaxStep
from segen_jax.models import FCN


class XlaFc6FCN(FCN):
    """The library's FCN with fc6 always through XLA's convolution (its nnx.Conv)."""

    def _fc6(self, x):
        return self.fc6(x)


def main():
    make, _, _, make_batches, batch = FAMILIES["fcn8s"]
    batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in make_batches(batch, 4)]
    model = make()
    assert type(model) is FCN and model.variant == "8s", "train_step's fcn8s is no longer FCN-8s"

    def with_xla_fc6():                  # the same parameters, fc6 through XLA's convolution
        twin = XlaFc6FCN(model.score.kernel.shape[-1], "8s", rngs=nnx.Rngs(0))
        nnx.update(twin, nnx.state(make()))
        return twin

    steps = {"fc6 by XLA's conv": JaxStep(with_xla_fc6, batches, 1),
             "fc6 by im2col": JaxStep(make, batches, 1)}
    losses = {k: [float(s.run(1)["loss"]) for _ in range(3)] for k, s in steps.items()}
    diff = float(np.abs(np.subtract(*losses.values())).max())
    assert diff < 1e-4, f"the two steps differ: {losses}"
    runs = {k: s.run for k, s in steps.items()}
    rates, spread = _common.rates(runs, per_call=batch, repeats=7)
    for k, rate in rates.items():
        print(f"{k:<18} {rate:7.1f} img/s  (windows {spread[k]})")
    base, im2col = rates.values()
    print(f"im2col ÷ XLA: {im2col / base:.2f}x; first 3 losses agree to {diff:.1e}; "
          f"{_common.load_now()}")


if __name__ == "__main__":
    main()
