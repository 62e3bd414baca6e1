"""FCN-8s's train step (batch 4, `train_step.py`'s) with its fc6 through XLA's convolution
against the same step with fc6 as one im2col matrix product (`ops.conv2d_im2col`), issue 8.

    python -m benchmarks.fcn_fc6            # ~1 min on 2 cores

fc6 is a 3x3 convolution from 128 to 256 channels on the 2x2 map left after five pools; on a
2-core CPU its forward and input gradient were the step's two slowest XLA ops (1.11 and 1.17 ms
of 16.8 ms of op time, `RESULTS_profile.md`). Checks first that both steps give the same losses
over 3 Adam steps from the same initial parameters, then prints the median img/s of 7
interleaved windows of about 1 s for each (`_common.interleaved_windows`), and their ratio. A probe: the library's FCN keeps XLA's
convolution until this is measured on more hosts and the notebooks are re-run with it.
"""
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import _common
from benchmarks.train_step import FAMILIES, JaxStep
from segen_jax.ops import conv2d_im2col


class Im2colConv(nnx.Module):
    """An nnx.Conv's kernel and bias (3x3, padding 1, stride 1) applied by conv2d_im2col."""

    def __init__(self, conv):
        self.conv = conv

    def __call__(self, x):
        return conv2d_im2col(x, self.conv.kernel[...], self.conv.bias[...], padding=1)


def main():
    make, _, _, make_batches, batch = FAMILIES["fcn8s"]
    batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in make_batches(batch, 4)]

    def with_im2col_fc6():
        model = make()
        model.fc6 = Im2colConv(model.fc6)
        return model

    steps = {"fc6 by XLA's conv": JaxStep(make, batches, 1),
             "fc6 by im2col": JaxStep(with_im2col_fc6, batches, 1)}
    losses = {k: [float(s.run(1)["loss"]) for _ in range(3)] for k, s in steps.items()}
    diff = float(np.abs(np.subtract(*losses.values())).max())
    assert diff < 1e-4, f"the two steps differ: {losses}"
    runs = {k: s.run for k, s in steps.items()}
    counts = {k: _common.calibrate(run, target_s=1.0) for k, run in runs.items()}
    per_step = _common.interleaved_windows(runs, counts, repeats=7)
    rates = {k: batch / _common.median(v) for k, v in per_step.items()}
    for k, v in per_step.items():
        print(f"{k:<18} {rates[k]:7.1f} img/s  (windows {_common.spread(v)})")
    base, im2col = rates.values()
    print(f"im2col ÷ XLA: {im2col / base:.2f}x; first 3 losses agree to {diff:.1e}; "
          f"{_common.load_now()}")

if __name__ == "__main__":
    main()
