"""One model family's train step: segen_jax against the same network in PyTorch eager.

    python -m benchmarks.train_step --model fcn8s [--batch 32] [--quick] [--torch-compile] [--save]
    (models: classifier, tinyfcn, fcn8s, deeplabv3, deeplabv3plus)

prints one JSON line,
    {"model": ..., "batch": ..., "segen_img_s": ..., "torch_img_s": ..., "ratio": segen/torch, ...}
where segen is the library's step (`segen_jax.train.nnx_step`, state donated, `parts="auto"`)
and torch the faster of PyTorch eager NCHW and channels_last, both with Adam(1e-3) and the mean
softmax cross-entropy (per pixel for the segmenters). Extra keys: the library's step with the
batch kept whole (`segen_parts1_img_s`, the row that justifies `parts="auto"`), the library's
step compiled with XLA's default options (`segen_xla_defaults_img_s`, YNNPACK convolutions: the
row that justifies `compiler_options="auto"`, `train.CPU_OPTIONS`), each PyTorch
layout, Keras 3 on the JAX backend for FCN-8s when keras is installed (`keras_jax_img_s`,
`model.train_on_batch`; equal parameter count, logits and initial loss), the compile time (building the model and state, then the first call: trace, compile,
one step; also with parts=1), the peak resident memory of
the process after the JAX part and before PyTorch is imported (`jax_peak_rss_mb`, so it is the
JAX side's alone) and at the end, the machine's load, versions and device.

Checked before timing: equal parameter counts, and with the JAX parameters copied into
PyTorch, equal logits and equal losses over the first Adam steps (same maths). Timing: the
median of windows interleaved round-robin over the implementations after warm-up
(`--quick`: 3 windows of 0.5 s; default: 7 of 1 s). `--save` writes the JSON to
`benchmarks/results/<model>_b<batch>.json`; `python -m benchmarks.table` gathers them.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import _common, keras_twins
from segen_jax import data
from segen_jax.models import FCN, Classifier, DeepLabV3, DeepLabV3Plus, TinyFCN
from segen_jax.train import default_parts, nnx_state, nnx_step

RESULTS = pathlib.Path(__file__).parent / "results"
KERAS_TWINS = {"fcn8s": keras_twins.keras_fcn8s}   # Keras 3 on JAX, where the issue asks for it
CHECK_STEPS = 3
CHECK_TOL = 2e-4    # float32 convolutions sum in other orders in XLA and oneDNN


def _classifier_twin(torch):
    from benchmarks.classifier_vs_torch import torch_classifier
    return torch_classifier(torch.nn)


def _copy_classifier(torch, model, net):
    from benchmarks.classifier_vs_torch import copy_jax_to_torch
    copy_jax_to_torch(torch, model, net)


def _fcn_twin(name):
    def make(torch):
        from benchmarks import fcn_vs_torch
        return {"fcn8s": fcn_vs_torch.torch_fcn8s, "tinyfcn": fcn_vs_torch.torch_tinyfcn}[name](torch)
    return make


def _copy_fcn(name):
    def copy(torch, model, net):
        from benchmarks.fcn_vs_torch import copy_jax_to_torch
        copy_jax_to_torch(torch, name, model, net)
    return copy


def _deeplab_twin(plus):
    def make(torch):
        from benchmarks.deeplab_twins import torch_deeplab
        return torch_deeplab(torch, plus=plus)
    return make


def _copy_deeplab(torch, model, net):
    from benchmarks.deeplab_twins import copy_jax_to_torch
    copy_jax_to_torch(torch, model, net)


def _scenes(batch, count):
    images, labels = data.digit_scenes(batch * count, seed=0)
    return [(images[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch])
            for i in range(count)]


# name: (JAX model, PyTorch twin, parameter copy, batches, the recipe's batch size)
FAMILIES = {
    "classifier": (lambda: Classifier(rngs=nnx.Rngs(0)), _classifier_twin, _copy_classifier,
                   _common.mnist_batches, 64),
    "tinyfcn": (lambda: TinyFCN(11, rngs=nnx.Rngs(0)), _fcn_twin("tinyfcn"), _copy_fcn("tinyfcn"),
                _scenes, 4),
    "fcn8s": (lambda: FCN(11, "8s", rngs=nnx.Rngs(0)), _fcn_twin("fcn8s"), _copy_fcn("fcn8s"),
              _scenes, 4),
    "deeplabv3": (lambda: DeepLabV3(11, output_stride=8, rngs=nnx.Rngs(0)), _deeplab_twin(False),
                  _copy_deeplab, _scenes, 4),
    "deeplabv3plus": (lambda: DeepLabV3Plus(11, output_stride=8, rngs=nnx.Rngs(0)),
                      _deeplab_twin(True), _copy_deeplab, _scenes, 4),
}


def cross_entropy(model, batch, key):
    images, labels = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(images), labels).mean(), {}


class JaxStep:
    """The library's step on a fresh model: nnx_state + Adam(1e-3) + nnx_step(parts=...,
    compiler_options=...)."""

    def __init__(self, make_model, batches, parts, compiler_options="auto"):
        self.model = make_model()
        optimizer = nnx.Optimizer(self.model, optax.adam(1e-3), wrt=nnx.Param)
        self.graphdef, self.state = nnx_state(self.model, optimizer, seed=0)
        self.state = jax.tree.map(jnp.copy, self.state)   # the step donates; keep self.model
        self.step = nnx_step(self.graphdef, cross_entropy, parts=parts,
                             compiler_options=compiler_options)
        self.batches, self.calls = batches, 0

    def run(self, n):
        for _ in range(n):
            batch = self.batches[self.calls % len(self.batches)]
            self.state, metrics = self.step(self.state, batch)
            self.calls += 1
        jax.block_until_ready((metrics["loss"], self.state))
        return metrics


def _rss_mb(field):
    """VmHWM (peak) or VmRSS of this process from /proc/self/status, in MiB (None elsewhere)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def measure(name, batch, *, repeats, window, parts="auto", torch_compile=False):
    make_model, make_twin, copy, make_batches, _ = FAMILIES[name]
    np_batches = make_batches(batch, 4)
    jax_batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in np_batches]
    parts = default_parts(batch) if parts == "auto" else parts

    jax.block_until_ready(jax.jit(lambda v: v + 1)(jnp.ones(2)))   # the process's one-time
    make_model()                                                     # JAX and NNX set-up
    start = time.perf_counter()
    library = JaxStep(make_model, jax_batches, parts)
    first = library.run(1)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    whole = JaxStep(make_model, jax_batches, 1)
    whole.run(1)
    compile_parts1_s = time.perf_counter() - start
    xla_defaults = JaxStep(make_model, jax_batches, parts, compiler_options=None)
    xla_defaults.run(1)
    jax_losses = [float(first["loss"])] + [float(library.run(1)["loss"])
                                            for _ in range(CHECK_STEPS - 1)]
    jax_peak = _rss_mb("VmHWM")

    import torch
    from benchmarks.classifier_vs_torch import TorchStep
    torch.manual_seed(0)
    net = make_twin(torch)
    fresh = make_model()
    n_jax = sum(p.size for p in jax.tree.leaves(nnx.state(fresh, nnx.Param)))
    n_torch = sum(p.numel() for p in net.parameters())
    assert n_jax == n_torch, f"{name}: {n_jax} parameters in JAX, {n_torch} in PyTorch"
    copy(torch, fresh, net)
    check = TorchStep(torch, net, np_batches, channels_last=False)
    with torch.no_grad():
        t_logits = net(check.batches[0][0]).numpy()
    t_logits = t_logits.transpose(0, 2, 3, 1) if t_logits.ndim == 4 else t_logits
    logits_diff = float(np.abs(t_logits - np.asarray(fresh(jax_batches[0][0]))).max())
    assert logits_diff <= CHECK_TOL, f"{name}: logits differ by {logits_diff:.1e}"
    torch_losses = [check.step(*check.batches[i]).item() for i in range(CHECK_STEPS)]
    loss_diff = float(np.abs(np.array(torch_losses) - np.array(jax_losses)).max())
    assert loss_diff <= CHECK_TOL, f"{name}: losses {torch_losses} vs JAX {jax_losses}"

    runs = {"segen": library.run, "segen_parts1": whole.run,
            "segen_xla_defaults": xla_defaults.run}
    keras_check = None
    if name in KERAS_TWINS and keras_twins.load_keras() is not None:
        keras = keras_twins.load_keras()
        keras_model, keras_layers = KERAS_TWINS[name](keras)
        from benchmarks.fcn_vs_torch import jax_layers
        keras_twins.copy_jax_to_keras(jax_layers(name, fresh), keras_layers)
        k_logits = np.asarray(keras_model(np_batches[0][0]))
        k_logits_diff = float(np.abs(k_logits - np.asarray(fresh(jax_batches[0][0]))).max())
        assert k_logits_diff <= CHECK_TOL, f"{name}: Keras logits differ by {k_logits_diff:.1e}"
        assert keras_model.count_params() == n_jax, (keras_model.count_params(), n_jax)
        keras_step = keras_twins.KerasStep(keras, keras_model, np_batches)
        # The initial loss only: Keras's Adam adds epsilon outside the bias correction
        # (var -= lr_t m / (sqrt(v) + eps)), optax and PyTorch inside, so parameters with
        # tiny gradients move differently and later losses drift apart by ~1e-3.
        k_loss_diff = abs(keras_step.step() - jax_losses[0])
        assert k_loss_diff <= CHECK_TOL, f"{name}: Keras's initial loss differs by {k_loss_diff}"
        keras_check = {"parameters": int(keras_model.count_params()),
                       "logits_max_abs_diff": k_logits_diff,
                       "initial_loss_abs_diff": k_loss_diff, "keras": keras.__version__}
        runs["keras"] = keras_step.run
    for channels_last in (False, True):
        ts = TorchStep(torch, make_twin(torch), np_batches, channels_last=channels_last)
        runs["torch_cl" if channels_last else "torch_nchw"] = ts.run(ts.step)
    compiled = {}
    if torch_compile:
        def make_compiled():
            ts = TorchStep(torch, make_twin(torch), np_batches, channels_last=False, compile=True)
            return ts.run(ts.step)
        compiled = _common.add_torch_compile(runs, make_compiled)
    for run in runs.values():
        run(2)                                 # warm-up (oneDNN primitive caches)
    _common.load_now()
    steps = {k: _common.calibrate(r, target_s=window, minimum=2) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=repeats)
    load = _common.load_now()
    img_s = {k: batch / _common.median(v) for k, v in per.items()}
    torch_best = max(img_s["torch_nchw"], img_s["torch_cl"])
    return {
        "model": name, "batch": batch,
        "segen_img_s": round(img_s["segen"], 1),
        "torch_img_s": round(torch_best, 1),
        "ratio": round(img_s["segen"] / torch_best, 3),
        "segen_parts": parts,
        "segen_parts1_img_s": round(img_s["segen_parts1"], 1),
        "segen_xla_defaults_img_s": round(img_s["segen_xla_defaults"], 1),
        "torch_nchw_img_s": round(img_s["torch_nchw"], 1),
        "torch_channels_last_img_s": round(img_s["torch_cl"], 1),
        "ratio_vs_torch_nchw": round(img_s["segen"] / img_s["torch_nchw"], 3),
        **_common.compile_columns(img_s, compiled),
        "keras_jax_img_s": round(img_s["keras"], 1) if "keras" in img_s else None,
        "keras_same_maths": keras_check,
        "spread": {k: _common.spread(v) for k, v in per.items()},
        "parameters": int(n_jax),
        "same_maths": {"logits_max_abs_diff": logits_diff, "loss_max_abs_diff": loss_diff,
                       "first_losses": [round(v, 5) for v in jax_losses]},
        "compile_s": round(compile_s, 2), "compile_parts1_s": round(compile_parts1_s, 2),
        "jax_peak_rss_mb": jax_peak, "process_peak_rss_mb": _rss_mb("VmHWM"),
        "repeats": repeats, "window_s": window, "load": load,
        **_common.run_record(torch),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--batch", type=int, default=None,
                        help="examples per step (default: the recipe's)")
    parser.add_argument("--quick", action="store_true", help="3 windows of 0.5 s")
    parser.add_argument("--parts", type=int, default=None,
                        help="nnx_step's parts for the segen row (default: 'auto')")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time the PyTorch step with the network under torch.compile")
    parser.add_argument("--save", action="store_true",
                        help="write benchmarks/results/<model>_b<batch>.json")
    args = parser.parse_args(argv)
    batch = FAMILIES[args.model][4] if args.batch is None else args.batch
    if batch < 1:
        parser.error(f"--batch must be >= 1, got {batch}")
    if importlib.util.find_spec("torch") is None:   # found, not imported: RSS stays JAX's
        parser.error("PyTorch is missing: pip install -r benchmarks/requirements.txt")
    if jax.default_backend() != "cpu":
        parser.error(f"JAX runs on {jax.default_backend()}, but the PyTorch side of this "
                     "benchmark runs on the CPU only so far; GPU rows are not measured yet")
    repeats, window = (3, 0.5) if args.quick else (7, 1.0)
    if args.parts is not None and (args.parts < 1 or batch % args.parts):
        parser.error(f"--parts must be >= 1 and divide the batch {batch}, got {args.parts}")
    result = measure(args.model, batch, repeats=repeats, window=window,
                     parts="auto" if args.parts is None else args.parts,
                     torch_compile=args.torch_compile)
    result["command"] = "python -m benchmarks.train_step " + " ".join(argv or os.sys.argv[1:])
    print(json.dumps(result))
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.model}_b{batch}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
