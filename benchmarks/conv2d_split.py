"""`ops.conv2d` taking its per-offset kernels from w by one split (as the library does) against
indexing w offset by offset (as it did until 2026-12-07): the row that justifies the choice.

    python -m benchmarks.conv2d_split          # ~4 min on 2 cores
    python -m benchmarks.conv2d_split --models vae

`conv2d` (the direct method) computes y = Σ_(p,q) x_view(p,q) @ w[p, q], one einsum per kernel
offset. With w[p, q] taken by an index, the gradient ∂L/∂w is a sum of kh·kw copies of w's
shape, each zero except at one offset (the transpose of an index is a zero-padded update); with
one split, it is one concatenation of the offsets' gradients. The models meet `conv2d` through
`conv_transpose2d`'s sub-pixel form (the VAE's two decoder layers, TinyFCN's and FCN-8s's
upsampling), and with the batch in 8 parts XLA:CPU recomputed the padded sum inside each
consumer of the gradient (Adam's two moments and the gradient norm).

For each model: the recipe's train step (VAE: `recipes.RECIPES["vae"]`, batch 64; the others:
`train_step.py`'s step, Adam(1e-3), `parts="auto"`, at the batch in MODELS) built twice, the second with
`conv_transpose2d` calling the indexed variant below; checks the same losses over 3 steps,
then prints the median img/s of 7 interleaved windows of about 1 s and the ratio. Both compute
the same numbers, so equal losses do not show that the swap took effect: the indexed variant
counts its traces, and the script checks that only the indexed step made any.
"""
import argparse
import json

import jax
import jax.numpy as jnp
from jax import lax

import segen_jax.ops.conv_transpose as conv_transpose_module
from benchmarks import _common
from benchmarks.train_step import FAMILIES, JaxStep
from segen_jax.ops import conv as conv_module
from segen_jax.recipes import RECIPES

MODELS = {"vae": 64, "tinyfcn": 4, "tinyfcn32": 32, "fcn8s": 4}


TRACES = {"indexed": 0}


def conv2d_indexed(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """ops.conv2d with w[p, q] taken by lax.dynamic_index_in_dim, offset by offset."""
    TRACES["indexed"] += 1
    pads, s, d, out = conv_module._check_conv("conv2d", x, w, b, stride, padding, dilation)
    views = conv_module._patches(conv_module._pad(x, pads), w.shape[:2], s, d, out)
    w_pq = w.reshape(-1, *w.shape[2:])
    y = sum(jnp.einsum("nhwc,co->nhwo", v, lax.dynamic_index_in_dim(w_pq, i, keepdims=False))
            for i, v in enumerate(views))
    return y if b is None else y + b


class VaeStep:
    """The VAE recipe's step on the shipped digits (JaxStep's interface)."""

    def __init__(self):
        recipe = RECIPES["vae"]
        _, self.state, self.step = recipe.build(0, recipe.defaults["lr"],
                                                recipe.defaults["steps"])
        batches = recipe.batches(64, 0)(0)
        self.batches, self.calls = [next(batches) for _ in range(8)], 0

    def run(self, n):
        for _ in range(n):
            self.state, metrics = self.step(self.state, self.batches[self.calls % 8])
            self.calls += 1
        jax.block_until_ready((metrics["loss"], self.state))
        return metrics


def _build(model, conv2d):
    """A step whose transposed convolutions call `conv2d`; compiled (traced) by its first call,
    so the swap only lasts until then."""
    original = conv_transpose_module.conv2d
    conv_transpose_module.conv2d = conv2d
    try:
        if model == "vae":
            step = VaeStep()
        else:
            make_model, _, _, batches, _ = FAMILIES[model.removesuffix("32")]
            step = JaxStep(make_model, batches(MODELS[model], 4), "auto")
        losses = [float(step.run(1)["loss"]) for _ in range(3)]
    finally:
        conv_transpose_module.conv2d = original
    return step, losses


def measure(model, repeats):
    steps, first, traced = {}, {}, {}
    for name, conv2d in (("indexed", conv2d_indexed), ("split", conv_module.conv2d)):
        before = TRACES["indexed"]
        steps[name], first[name] = _build(model, conv2d)
        traced[name] = TRACES["indexed"] - before
    assert traced["indexed"] > 0 and traced["split"] == 0, f"{model}: the swap failed: {traced}"
    diff = max(abs(a - b) / abs(b) for a, b in zip(first["indexed"], first["split"]))
    assert diff < 1e-6, f"{model}: the two steps' first losses differ: {first}"
    runs = {name: step.run for name, step in steps.items()}
    batch = MODELS[model]
    rate, spread = _common.rates(runs, per_call=batch, repeats=repeats)
    return {"model": model.removesuffix("32"), "batch": batch,
            "split_img_s": round(rate["split"], 1), "indexed_img_s": round(rate["indexed"], 1),
            "ratio": round(rate["split"] / rate["indexed"], 3),
            "spread": spread,
            "first_losses_max_rel_diff": diff, "load": _common.load_now()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=list(MODELS), type=_common.model_list(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)} (tinyfcn32: batch 32)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    models = args.models
    print(_common.environment())
    for model in models:
        print(json.dumps(measure(model, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
