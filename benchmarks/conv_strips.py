"""The weight gradient in row strips (`ops.conv_strips`) against XLA's own: the rows that
justify the segmenters' `nnx.Conv` layers calling `conv_strips.conv_general_dilated`.

    python -m benchmarks.conv_strips                  # ~4.5 min on 2 cores
    python -m benchmarks.conv_strips --part layers    # or --part steps; --models tinyfcn,fcn8s

Part "layers": ∂L/∂w of one 3x3 "SAME" convolution (the shapes of TinyFCN's layers, at
N = 1, 2, 4, 8 images), jitted alone with `train.CPU_OPTIONS`: XLA's weight gradient
(jax.vjp of lax.conv_general_dilated), the strips (`weight_gradient_in_strips` with
`strip_count`'s S) and PyTorch's (`aten.convolution_backward`, weight only, channels_last);
checked equal (to float rounding), then ms per call, the median of 7 interleaved windows.

Part "steps": each family's train step at batch 4 (the segmenter recipes' batch; `train_step.py`'s
step, Adam(1e-3), `parts="auto"`) built twice from the same seed: as the library builds it, and
with every `nnx.Conv` on the strips set back to `lax.conv_general_dilated` (since 2026-12-07,
19:00, all but the first, whose one input channel takes `ops.conv_one_channel` in both; the
run below predates it and set every layer back). Checks that the two models'
gradients on one batch agree to float rounding (every layer's, so a wrong weight gradient
anywhere shows), that the first 3 losses agree, and that the strips were traced in the
library's step and not in the other (equal numbers cannot show it), then img/s, the median of
7 interleaved windows of about 1 s, and the ratio.
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
from segen_jax.ops import conv_strips
from segen_jax.train import CPU_OPTIONS

LAYERS = [(64, 32, 16), (64, 16, 16), (32, 32, 32), (32, 16, 32)]   # (H = W, C_in, C_out)
BATCHES = (1, 2, 4, 8)
MODELS = ("tinyfcn", "fcn8s", "deeplabv3", "deeplabv3plus")
DN = ("NHWC", "HWIO", "NHWC")
SAME = ((1, 1), (1, 1))


def _layer_runs(torch, n, size, c_in, c_out):
    x = jax.random.normal(jax.random.key(0), (n, size, size, c_in))
    dy = jax.random.normal(jax.random.key(1), (n, size, size, c_out))
    shape = (3, 3, c_in, c_out)

    def xla(x, dy):
        conv = lambda w: lax.conv_general_dilated(x, w, (1, 1), SAME, dimension_numbers=DN)
        return jax.vjp(conv, jnp.zeros(shape))[1](dy)[0]

    def strips(x, dy):
        return conv_strips.weight_gradient_in_strips(
            x, dy, shape, strides=(1, 1), padding=SAME, dilation=(1, 1),
            strips=conv_strips.strip_count(n, size))

    jitted = {name: jax.jit(f, compiler_options=CPU_OPTIONS)
              for name, f in (("xla", xla), ("strips", strips))}
    to_torch = lambda a: torch.tensor(np.asarray(a)).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last)
    xt, dyt, wt = to_torch(x), to_torch(dy), torch.zeros(c_out, c_in, 3, 3)

    def torch_dw():
        return torch.ops.aten.convolution_backward(dyt, xt, wt, None, [1, 1], [1, 1], [1, 1],
                                                   False, [0, 0], 1, [False, True, False])[1]

    want = np.asarray(jitted["xla"](x, dy))
    scale = 1e-5 * np.sqrt(n * size * size) * np.abs(want).max()
    for name, got in (("strips", jitted["strips"](x, dy)),
                      ("torch", torch_dw().permute(2, 3, 1, 0).numpy())):
        error = np.abs(np.asarray(got) - want).max()
        assert error < scale, f"{name} differs from XLA's weight gradient by {error}"

    return {"xla": _common.call_runner(lambda: jitted["xla"](x, dy), True),
            "strips": _common.call_runner(lambda: jitted["strips"](x, dy), True),
            "torch": _common.call_runner(torch_dw, False)}


def layers(repeats):
    import torch
    rows = []
    for size, c_in, c_out in LAYERS:
        for n in BATCHES:
            runs = _layer_runs(torch, n, size, c_in, c_out)
            for run in runs.values():
                run(3)
            rate, _ = _common.rates(runs, repeats=repeats, target_s=0.3)
            ms = {name: 1e3 / r for name, r in rate.items()}
            rows.append([f"{n}x{size}x{size}, {c_in} → {c_out}",
                         conv_strips.strip_count(n, size), f"{ms['xla']:.2f}",
                         f"{ms['strips']:.2f}", f"{ms['torch']:.2f}",
                         f"{ms['xla'] / ms['strips']:.2f}"])
            print(rows[-1], flush=True)
    print(_common.table(["x (N, H, W), channels", "S", "XLA ms", "strips ms", "PyTorch ms",
                         "XLA / strips"], rows))


TRACES = {"strips": 0}


def _counting(conv):
    """conv_strips.conv_general_dilated's strip path, counting its traces."""
    def counted(*args):
        TRACES["strips"] += 1
        return conv(*args)
    return counted


def _without_strips(make_model):
    def make():
        model = make_model()
        for _, module in nnx.iter_graph(model):   # not the first layer (ops.conv_one_channel)
            if (isinstance(module, nnx.Conv)
                    and module.conv_general_dilated is conv_strips.conv_general_dilated):
                module.conv_general_dilated = lax.conv_general_dilated
        return model
    return make


def _gradient_difference(make_model, batch):
    """max over parameters of max|g_strips − g_xla| / max|g_xla| on one batch, same seed."""
    loss = lambda m: cross_entropy(m, batch, None)[0]
    grads = {name: jax.tree.leaves(nnx.grad(loss)(make()))
             for name, make in (("strips", make_model), ("xla", _without_strips(make_model)))}
    return max(float(jnp.abs(a - b).max() / jnp.abs(b).max())
               for a, b in zip(grads["strips"], grads["xla"]))


def step(model, repeats, batch=4):
    make_model, _, _, make_batches, _ = FAMILIES[model]
    batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in make_batches(batch, 4)]
    gradient_diff = _gradient_difference(make_model, batches[0])
    assert gradient_diff < 1e-4, f"{model}: the gradients differ by {gradient_diff:.1e}"
    built, losses, traced = {}, {}, {}
    original = conv_strips._conv_strips
    conv_strips._conv_strips = _counting(original)
    try:
        for name, make in (("strips", make_model), ("xla", _without_strips(make_model))):
            before = TRACES["strips"]
            built[name] = JaxStep(make, batches, "auto")
            losses[name] = [float(built[name].run(1)["loss"]) for _ in range(3)]
            traced[name] = TRACES["strips"] - before
    finally:
        conv_strips._conv_strips = original
    assert traced["strips"] > 0 and traced["xla"] == 0, f"{model}: the swap failed: {traced}"
    diff = max(abs(a - b) / abs(b) for a, b in zip(losses["strips"], losses["xla"]))
    assert diff < 1e-5, f"{model}: the two steps' first losses differ: {losses}"
    runs = {name: s.run for name, s in built.items()}
    rate, spread = _common.rates(runs, per_call=batch, repeats=repeats)
    return {"model": model, "batch": batch, "strips_img_s": round(rate["strips"], 1),
            "xla_img_s": round(rate["xla"], 1), "ratio": round(rate["strips"] / rate["xla"], 3),
            "spread": spread,
            "first_losses_max_rel_diff": diff, "gradients_max_rel_diff": gradient_diff,
            "strips_traced": traced["strips"], "load": _common.load_now()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("layers", "steps", "both"), default="both")
    parser.add_argument("--models", default=list(MODELS), type=_common.model_list(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)} (part steps)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    models = args.models
    print(_common.environment())
    if args.part in ("layers", "both"):
        layers(args.repeats)
    if args.part in ("steps", "both"):
        for model in models:
            print(json.dumps(step(model, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
