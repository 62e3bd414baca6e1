"""The first convolution of one-channel images as scaled shifted copies (`ops.conv_one_channel`)
against XLA's: the rows that justify `fcn._conv` giving the segmenters' first layer that path.

    python -m benchmarks.conv_one_channel                  # ~4 min on 2 cores
    python -m benchmarks.conv_one_channel --part layers    # or --part steps; --models tinyfcn

Part "layers": what training needs of a first layer, its forward pass and ∂L/∂w (x is the
data, so no ∂L/∂x), for a 3x3 "SAME" convolution 1 → 16 channels at the shapes the models meet
(64x64 scenes at 1, 4 and 8 images; 28x28 digits at 8 and 64), jitted alone with
`train.CPU_OPTIONS`: XLA's (`lax.conv_general_dilated`), the copies
(`conv_one_channel.conv_general_dilated`) and PyTorch's (channels_last, `conv2d` then
`backward`); checked equal (to float rounding), then ms per call, the median of 7
interleaved windows.

Part "steps": each segmenter's train step (`train_step.py`'s step, Adam(1e-3), `parts="auto"`)
at batch 4 built twice from the same seed: as the library builds it, and with the first layer
on `conv_strips.conv_general_dilated` (what it ran before: XLA's forward, its weight gradient in
row strips). Checks equal gradients on one batch and equal first 3 losses, then img/s, the
median of --repeats interleaved windows of about 1 s, and the ratio.
"""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from benchmarks import _common
from benchmarks.train_step import FAMILIES, JaxStep, cross_entropy
from segen_jax.ops import conv_one_channel, conv_strips
from segen_jax.train import CPU_OPTIONS

LAYERS = [(1, 64), (4, 64), (8, 64), (8, 28), (64, 28)]   # (N, H = W), 1 → 16 channels
C_OUT = 16
MODELS = ("tinyfcn", "fcn8s", "deeplabv3", "deeplabv3plus")
DN = ("NHWC", "HWIO", "NHWC")


def _layer_runs(torch, n, size):
    x = jax.random.normal(jax.random.key(0), (n, size, size, 1))
    w = jax.random.normal(jax.random.key(1), (3, 3, 1, C_OUT)) / 3
    dy = jax.random.normal(jax.random.key(2), (n, size, size, C_OUT))

    def forward_and_dw(conv):
        def run(x, w, dy):
            y, pullback = jax.vjp(lambda v: conv(x, v, (1, 1), "SAME", dimension_numbers=DN), w)
            return y, pullback(dy)[0]
        return jax.jit(run, compiler_options=CPU_OPTIONS)

    jitted = {"xla": forward_and_dw(lax.conv_general_dilated),
              "copies": forward_and_dw(conv_one_channel.conv_general_dilated)}
    to_torch = lambda a: torch.tensor(np.asarray(a)).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last)
    xt, dyt = to_torch(x), to_torch(dy)
    wt = torch.tensor(np.asarray(w)).permute(3, 2, 0, 1).contiguous(
        memory_format=torch.channels_last).requires_grad_()

    def torch_step():
        wt.grad = None
        y = torch.nn.functional.conv2d(xt, wt, padding=1)
        y.backward(dyt)
        return y, wt.grad

    want_y, want_dw = (np.asarray(a) for a in jitted["xla"](x, w, dy))
    y_t, dw_t = torch_step()
    for name, (y, dw) in (("copies", jitted["copies"](x, w, dy)),
                          ("torch", (y_t.detach().permute(0, 2, 3, 1).numpy(),
                                     dw_t.permute(2, 3, 1, 0).numpy()))):
        np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-5, atol=1e-5 * 3,
                                   err_msg=f"{name}: forward")
        np.testing.assert_allclose(np.asarray(dw), want_dw, rtol=1e-5,     # sums of N·H·W
                                   atol=1e-5 * np.sqrt(n * size * size), err_msg=f"{name}: ∂L/∂w")
    return {"xla": _common.call_runner(lambda: jitted["xla"](x, w, dy)[1], True),
            "copies": _common.call_runner(lambda: jitted["copies"](x, w, dy)[1], True),
            "torch": _common.call_runner(torch_step, False)}


def layers(repeats):
    import torch
    rows = []
    for n, size in LAYERS:
        runs = _layer_runs(torch, n, size)
        for run in runs.values():
            run(3)
        rate, _ = _common.rates(runs, repeats=repeats, target_s=0.3)
        ms = {name: 1e3 / r for name, r in rate.items()}
        rows.append([f"{n}x{size}x{size}, 1 → {C_OUT}", f"{ms['xla']:.2f}",
                     f"{ms['copies']:.2f}", f"{ms['torch']:.2f}",
                     f"{ms['xla'] / ms['copies']:.2f}"])
        print(rows[-1], flush=True)
    print(_common.table(["x (N, H, W), channels", "XLA ms", "copies ms", "PyTorch ms",
                         "XLA / copies"], rows))


def _first_layer_on_strips(make_model):
    def make():
        model = make_model()
        first = [m for _, m in nnx.iter_graph(model)
                 if isinstance(m, nnx.Conv) and m.in_features == 1]
        assert len(first) == 1 and first[0].conv_general_dilated is \
            conv_one_channel.conv_general_dilated, "the model's first layer is not on the copies"
        first[0].conv_general_dilated = conv_strips.conv_general_dilated
        return model
    return make


def step(model, repeats, batch=4):
    make_model, _, _, make_batches, _ = FAMILIES[model]
    batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in make_batches(batch, 4)]
    variants = {"copies": make_model, "strips": _first_layer_on_strips(make_model)}
    loss = lambda m: cross_entropy(m, batches[0], None)[0]
    grads = {name: jax.tree.leaves(nnx.grad(loss)(make())) for name, make in variants.items()}
    gradient_diff = max(float(jnp.abs(a - b).max() / jnp.abs(b).max())
                        for a, b in zip(grads["copies"], grads["strips"]))
    assert gradient_diff < 1e-4, f"{model}: the gradients differ by {gradient_diff:.1e}"
    built = {name: JaxStep(make, batches, "auto") for name, make in variants.items()}
    losses = {name: [float(s.run(1)["loss"]) for _ in range(3)] for name, s in built.items()}
    diff = max(abs(a - b) / abs(b) for a, b in zip(losses["copies"], losses["strips"]))
    assert diff < 1e-5, f"{model}: the two steps' first losses differ: {losses}"
    rate, spread = _common.rates({name: s.run for name, s in built.items()}, per_call=batch,
                                 repeats=repeats)
    return {"model": model, "batch": batch, "copies_img_s": round(rate["copies"], 1),
            "strips_img_s": round(rate["strips"], 1),
            "ratio": round(rate["copies"] / rate["strips"], 3), "spread": spread,
            "first_losses_max_rel_diff": diff, "gradients_max_rel_diff": gradient_diff,
            "load": _common.load_now()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("layers", "steps", "both"), default="both")
    parser.add_argument("--models", default=list(MODELS), type=_common.model_list(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)} (part steps)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    models = args.models
    print(_common.environment())
    if args.part in ("layers", "both"):
        layers(7)
    if args.part in ("steps", "both"):
        for model in models:
            print(json.dumps(step(model, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
