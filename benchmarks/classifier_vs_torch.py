"""The library's classifier train step against the same network in PyTorch eager, on CPU.

Network (both): conv3x3 'same' 1→16, ReLU, conv 16→16, ReLU, maxpool 2, conv 16→32, ReLU,
conv 32→32, ReLU, maxpool 2, flatten 7·7·32 → 128, ReLU → 10: 218,490 parameters (asserted).
Batch 64 of 28x28x1 shipped MNIST digits, Adam(lr 1e-3), softmax cross-entropy.

Checked first: with the JAX init copied into the PyTorch model, the logits agree and the
first training losses agree (so both sides run the same maths). Then measured:

- train-step img/s of segen_jax (variant c: jax.jit over split state, donated; and d: the
  library's `segen_jax.train.nnx_step`) and of PyTorch eager with NCHW tensors, with
  channels_last, and with NCHW on 1 thread (a reference for when another process holds a
  core); the median of interleaved windows after warm-up steps;
- the same split into forward only (loss, no gradient), forward + backward (loss and
  gradients, no update) and the full step, for segen_jax (jax.jit) and PyTorch (NCHW);
- forward + backward of each conv layer alone (gradients w.r.t. input and kernel), and the
  XLA:CPU time per op kind of the JAX forward + backward (jax.profiler), to see which ops
  lose the time; plus one experiment: max-pool written as reshape + max.

Skips with a message (exit 0) when torch isn't installed: `pip install -r benchmarks/requirements.txt`.

    python -m benchmarks.classifier_vs_torch [--repeats 7] [--window 1.0]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import _common
from benchmarks.step_variants import LibraryStep, SplitJit, factory, loss_fn, runner
from segen_jax.models import Classifier

BATCH = 64
N_PARAMS = 218_490
CHECK_STEPS = 3
CHECK_TOL = 1e-4  # float32 conv algorithms differ between XLA and oneDNN/ATen


def torch_classifier(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Linear(128, 10))


def copy_jax_to_torch(torch, jax_model, net):
    """Load the JAX parameters into the PyTorch net (HWIO→OIHW; NHWC flatten → NCHW)."""
    convs = [jax_model.conv1a, jax_model.conv1b, jax_model.conv2a, jax_model.conv2b]
    t_convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    t_linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy
    with torch.no_grad():
        for src, dst in zip(convs, t_convs):
            dst.weight.copy_(t(np.asarray(src.kernel[...]).transpose(3, 2, 0, 1)))
            dst.bias.copy_(t(src.bias[...]))
        k = np.asarray(jax_model.hidden.kernel[...])  # (7*7*32 in h, w, c order, 128)
        k = k.reshape(7, 7, 32, 128).transpose(2, 0, 1, 3).reshape(7 * 7 * 32, 128)
        t_linears[0].weight.copy_(t(k.T))
        t_linears[0].bias.copy_(t(jax_model.hidden.bias[...]))
        t_linears[1].weight.copy_(t(np.asarray(jax_model.out.kernel[...]).T))
        t_linears[1].bias.copy_(t(jax_model.out.bias[...]))


class TorchStep:
    """One PyTorch train step, eager (or with compile=True the network under torch.compile);
    channels_last converts net and inputs to NHWC memory."""

    def __init__(self, torch, net, batches, *, channels_last: bool, compile: bool = False):
        self.torch, self.net = torch, net
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=fmt)
        self.batches = [(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt),
                         torch.tensor(y, dtype=torch.long)) for x, y in batches]
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        if compile:     # the forward (and by AOTAutograd its backward); Adam stays eager
            self.net = torch.compile(net)
        self.label = ("PyTorch torch.compile, " if compile else "PyTorch eager, ") + (
            "channels_last" if channels_last else "NCHW")

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.net(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def forward(self, x, y):
        with self.torch.no_grad():
            return self.torch.nn.functional.cross_entropy(self.net(x), y)

    def forward_backward(self, x, y):
        self.net.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.net(x), y)
        loss.backward()
        return loss

    def run(self, fn, threads=None):
        """run(n): n calls of fn; with threads, torch.set_num_threads(threads) meanwhile."""
        def run(n):
            before = self.torch.get_num_threads()
            if threads is not None:
                self.torch.set_num_threads(threads)
            try:
                for i in range(n):
                    loss = fn(*self.batches[i % len(self.batches)])
                loss.item()  # eager CPU is synchronous; .item() to be explicit
            finally:
                self.torch.set_num_threads(before)
        return run


def check_same_maths(torch, make_model, batches):
    """Same init → same logits and same first CHECK_STEPS losses in JAX and PyTorch."""
    model, _ = make_model()
    results = {}
    for channels_last in (False, True):
        net = torch_classifier(torch.nn)
        copy_jax_to_torch(torch, model, net)
        ts = TorchStep(torch, net, batches, channels_last=channels_last)
        x_t, y_t = ts.batches[0]
        with torch.no_grad():
            logits_diff = float(np.max(np.abs(
                net(x_t).numpy() - np.asarray(model(jnp.asarray(batches[0][0]))))))
        assert logits_diff <= CHECK_TOL, f"logits differ by {logits_diff:.2e}"
        results[ts.label] = (logits_diff, [ts.step(*ts.batches[i]).item() for i in range(CHECK_STEPS)])
    jax_step = SplitJit(make_model)
    jax_losses = np.array([float(jax_step(*map(jnp.asarray, batches[i]))) for i in range(CHECK_STEPS)])
    worst = 0.0
    for label, (_, losses) in results.items():
        diff = float(np.max(np.abs(np.array(losses) - jax_losses)))
        assert diff <= CHECK_TOL, f"{label}: losses {losses} vs JAX {jax_losses} ({diff:.2e})"
        worst = max(worst, diff)
    return jax_losses, max(r[0] for r in results.values()), worst


def reshape_max_pool(x):
    """2x2 max-pool as reshape + max: its gradient is a compare/select, not select-and-scatter."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def features_reshape_pool(model, images):
    """Classifier.features with reshape_max_pool in place of nnx.max_pool (an experiment)."""
    x = jax.nn.relu(model.conv1b(jax.nn.relu(model.conv1a(images))))
    x = reshape_max_pool(x)
    x = jax.nn.relu(model.conv2b(jax.nn.relu(model.conv2a(x))))
    x = reshape_max_pool(x)
    return jax.nn.relu(model.hidden(x.reshape(x.shape[0], -1)))


def jax_parts(make_model, batches):
    """run(n) functions for the JAX forward (loss only), forward + backward (grads), and
    forward + backward with the max-pools as reshape + max (gradients asserted equal)."""
    graphdef, params = nnx.split(make_model()[0])
    loss_of = lambda p, x, y: loss_fn(nnx.merge(graphdef, p), x, y)
    forward = jax.jit(loss_of)
    forward_backward = jax.jit(jax.value_and_grad(loss_of))

    def loss_reshape_pool(p, x, y):
        model = nnx.merge(graphdef, p)
        logits = model.out(features_reshape_pool(model, x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    forward_backward_rs = jax.jit(jax.value_and_grad(loss_reshape_pool))
    (l1, g1), (l2, g2) = forward_backward(params, *batches[0]), forward_backward_rs(params, *batches[0])
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves((l1, g1)),
                                                                  jax.tree.leaves((l2, g2))))
    assert diff <= 1e-6, f"reshape + max pool changes the loss or gradients by {diff:.1e}"

    def run_with(fn):
        def run(n):
            for i in range(n):
                out = fn(params, *batches[i % len(batches)])
            jax.block_until_ready(out)
        return run
    return run_with(forward), run_with(forward_backward), run_with(forward_backward_rs), diff


# What each XLA:CPU op kind is, read from the compiled HLO of the forward + backward (jax 0.10.2).
OP_KINDS = {
    "ynn_fusion": "convolutions and matmuls (YNNPACK fusions)",
    "convolution": "convolution (Eigen)",
    "conv_general_dilated": "convolution (Eigen)",
    "wrapped_iota": "max-pool backward: int32 index tensors, 4 per pool (select-and-scatter expanded)",
    "wrapped_reduce-window": "max-pool: forward, and the backward's variadic argmax reduce-window",
    "wrapped_scatter": "max-pool backward: scatter of the gradients",
    "transpose_copy_fusion": "layout transposes",
    "wrapped_broadcast": "broadcasts (biases, gradients)",
    "broadcast_maximum_fusion": "ReLU fused with a broadcast",
    "compare_select_fusion": "ReLU backward (compare + select)",
    "concatenate_bitcast_fusion": "concatenation (gradient outputs)",
    "add_maximum_fusion": "bias add + ReLU",
    "dot": "matmul (Eigen)",
}


def xla_op_profile(make_model, batches, *, calls=20, top=10):
    """Time per XLA:CPU op kind in the JAX forward + backward, from a jax.profiler trace.

    Uses jax._src.profiler.ProfileData (not public API): returns a message if it fails.
    Op time is summed over XLA's threads, so it can exceed the wall time of a call.
    """
    try:
        graphdef, params = nnx.split(make_model()[0])
        fb = jax.jit(jax.value_and_grad(lambda p, x, y: loss_fn(nnx.merge(graphdef, p), x, y)))
        x, y = batches[0]
        for _ in range(3):
            jax.block_until_ready(fb(params, x, y))

        def run():
            for _ in range(calls):
                out = fb(params, x, y)
            jax.block_until_ready(out)
        wall, per_kind = _common.xla_op_times(run)
        wall, per_kind = wall / calls, {k: v / calls for k, v in per_kind.items()}
    except Exception as e:  # noqa: BLE001 - a private API; never fail the benchmark over it
        return f"(XLA op profile unavailable: {type(e).__name__}: {e})"
    total = sum(per_kind.values())
    rows = [[f"`{k}`", OP_KINDS.get(k, ""), f"{v:.1f}", f"{100 * v / total:.0f}%"]
            for k, v in sorted(per_kind.items(), key=lambda kv: -kv[1])[:top]]
    return (_common.table(["XLA op kind", "what it is", "ms per call", "share"], rows)
            + f"\n\nAll op kinds: {total:.1f} ms of op time per call (summed over threads); "
              f"wall time per call while tracing: {1e3 * wall:.1f} ms.")


def conv_layers(torch, *, repeats, window_s):
    """Forward + backward (d input, d kernel) of each conv layer alone: JAX vs PyTorch NCHW."""
    shapes = [(28, 1, 16), (28, 16, 16), (14, 16, 32), (14, 32, 32)]  # (H=W, C_in, C_out)
    runs, rows_spec = {}, []
    rng = np.random.default_rng(0)
    for hw, cin, cout in shapes:
        x = rng.normal(size=(BATCH, hw, hw, cin)).astype(np.float32)
        k = rng.normal(size=(3, 3, cin, cout)).astype(np.float32) * 0.1
        xj, kj = jnp.asarray(x), jnp.asarray(k)

        def conv_loss(x, k):
            y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return jnp.sum(y * y)
        grad = jax.jit(jax.grad(conv_loss, argnums=(0, 1)))
        fwd = jax.jit(conv_loss)

        def jrun(fn, xj=xj, kj=kj):
            def run(n):
                for _ in range(n):
                    out = fn(xj, kj)
                jax.block_until_ready(out)
            return run

        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
        kt = torch.from_numpy(k.transpose(3, 2, 0, 1).copy()).requires_grad_()

        def trun(backward, xt=xt, kt=kt):
            def run(n):
                for _ in range(n):
                    xt.grad = kt.grad = None
                    if backward:
                        (torch.nn.functional.conv2d(xt, kt, padding=1) ** 2).sum().backward()
                    else:
                        with torch.no_grad():
                            (torch.nn.functional.conv2d(xt, kt, padding=1) ** 2).sum()
            return run

        name = f"{hw}x{hw} {cin}→{cout}"
        runs.update({(name, "jf"): jrun(fwd), (name, "jb"): jrun(grad),
                     (name, "tf"): trun(False), (name, "tb"): trun(True)})
        rows_spec.append(name)
    for run in runs.values():
        run(3)
    steps = {k: _common.calibrate(r, target_s=window_s, minimum=3) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=repeats)
    ms = {k: 1e3 * _common.median(v) for k, v in per.items()}
    rows = []
    for name in rows_spec:
        jf, jb, tf, tb = (ms[(name, s)] for s in ("jf", "jb", "tf", "tb"))
        rows.append([name, f"{jf:.2f}", f"{tf:.2f}", f"{tf / jf:.2f}",
                     f"{jb:.2f}", f"{tb:.2f}", f"{tb / jb:.2f}"])
    return _common.table(["conv layer (batch 64)", "JAX fwd ms", "torch fwd ms", "JAX speed ÷ torch",
                          "JAX fwd+bwd ms", "torch fwd+bwd ms", "JAX speed ÷ torch"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing windows per row")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per window")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("classifier_vs_torch: skipped, PyTorch is not installed. It is only needed for "
              "this benchmark: pip install -r benchmarks/requirements.txt")
        return 0
    t0 = time.perf_counter()
    torch.manual_seed(0)
    print("## segen_jax classifier vs PyTorch eager (benchmarks/classifier_vs_torch.py)\n")
    print(_common.environment(extra=("torch",)))
    print(f"- torch.get_num_threads() = {torch.get_num_threads()}, "
          f"torch.get_num_interop_threads() = {torch.get_num_interop_threads()}; "
          f"XLA:CPU uses its own pool over all {jax.local_device_count()} device(s) "
          f"/ {os.cpu_count()} cores\n", flush=True)

    make_model = factory(lambda: Classifier(rngs=nnx.Rngs(0)))
    np_batches = _common.mnist_batches(BATCH, 8)
    batches = [tuple(jnp.asarray(a) for a in b) for b in np_batches]

    n_jax = sum(p.size for p in jax.tree.leaves(nnx.state(make_model()[0], nnx.Param)))
    n_torch = sum(p.numel() for p in torch_classifier(torch.nn).parameters())
    assert n_jax == n_torch == N_PARAMS, (n_jax, n_torch, N_PARAMS)
    jax_losses, logits_diff, loss_diff = check_same_maths(torch, make_model, np_batches)

    # Timed models: JAX from its init; PyTorch from its own init (torch.manual_seed(0)).
    jax_c, jax_d = SplitJit(make_model), LibraryStep(make_model)
    t_nchw = TorchStep(torch, torch_classifier(torch.nn), np_batches, channels_last=False)
    t_cl = TorchStep(torch, torch_classifier(torch.nn), np_batches, channels_last=True)
    t_one = TorchStep(torch, torch_classifier(torch.nn), np_batches, channels_last=False)
    fwd_j, fwdbwd_j, fwdbwd_rs, rs_diff = jax_parts(make_model, batches)
    runs = {
        "d": runner(jax_d, batches), "c": runner(jax_c, batches),
        "nchw": t_nchw.run(t_nchw.step), "cl": t_cl.run(t_cl.step),
        "one": t_one.run(t_one.step, threads=1),
    }
    parts = {"jf": fwd_j, "jb": fwdbwd_j, "jr": fwdbwd_rs, "js": runs["c"],
             "tf": t_nchw.run(t_nchw.forward), "tb": t_nchw.run(t_nchw.forward_backward),
             "ts": runs["nchw"]}
    for run in [*runs.values(), *parts.values()]:
        run(5)  # warm-up: compilation, oneDNN primitive caches, allocator
    steps = {k: _common.calibrate(r, target_s=args.window, minimum=5) for k, r in runs.items()}
    per = _common.interleaved_windows(runs, steps, repeats=args.repeats)
    med = {k: _common.median(v) for k, v in per.items()}

    labels = {"d": "segen_jax `nnx_step` (d)", "c": "segen_jax `jax.jit` split state (c)",
              "nchw": t_nchw.label, "cl": t_cl.label,
              "one": t_one.label + ", torch.set_num_threads(1)"}
    rows = [[labels[k], f"{BATCH / med[k]:,.0f}", f"{1 / med[k]:.1f}",
             f"{1e3 * med[k]:.1f} ({_common.spread(per[k])})",
             f"{med[k] / med['d']:.2f}", f"{med['nchw'] / med[k]:.2f}"] for k in runs]
    print(f"### Train step, batch {BATCH}, {args.repeats} windows of ~{args.window:g} s each\n")
    print(_common.table(["implementation", "img/s", "steps/s", "ms/step (spread)",
                         "segen_jax d ÷ this (speed)", "this ÷ torch NCHW (speed)"], rows))
    print(f"\nSame maths checked: JAX init copied into PyTorch, logits max |Δ| = {logits_diff:.1e}, "
          f"first {CHECK_STEPS} Adam-step losses max |Δ| = {loss_diff:.1e} (<= {CHECK_TOL:g}; "
          f"JAX: {', '.join(f'{v:.5f}' for v in jax_losses)}). "
          f"After: {_common.load_now()}.\n", flush=True)

    part_repeats = max(3, args.repeats - 2)
    psteps = {k: _common.calibrate(r, target_s=args.window / 2, minimum=5) for k, r in parts.items()}
    pper = _common.interleaved_windows(parts, psteps, repeats=part_repeats)
    pms = {k: 1e3 * _common.median(v) for k, v in pper.items()}
    prow = lambda name, j, t: [name, f"{pms[j]:.1f}", f"{pms[t]:.1f}", f"{pms[t] / pms[j]:.2f}"]
    print(f"### Where the step's time goes (ms per call, median of {part_repeats} interleaved "
          "windows; segen_jax = variant c)\n")
    print(_common.table(["part", "segen_jax (jax.jit)", "PyTorch NCHW", "JAX speed ÷ torch"], [
        prow("forward (loss, no grad)", "jf", "tf"),
        prow("forward + backward (loss, grads)", "jb", "tb"),
        prow("full step (+ Adam update)", "js", "ts"),
        ["backward alone (fwd+bwd − fwd)", f"{pms['jb'] - pms['jf']:.1f}",
         f"{pms['tb'] - pms['tf']:.1f}", f"{(pms['tb'] - pms['tf']) / (pms['jb'] - pms['jf']):.2f}"],
        ["forward + backward, max-pool as reshape + max (experiment)", f"{pms['jr']:.1f}",
         f"{pms['tb']:.1f}", f"{pms['tb'] / pms['jr']:.2f}"],
    ]))
    print(f"\nThe experiment row replaces `nnx.max_pool` by `x.reshape(b, h/2, 2, w/2, 2, c).max((2, 4))` "
          f"in a copy of the forward (not the library's model); loss and gradients equal to "
          f"{rs_diff:.1e}. After: {_common.load_now()}.\n", flush=True)

    print("### XLA:CPU op time in segen_jax's forward + backward (jax.profiler, 20 calls)\n")
    print(xla_op_profile(make_model, batches))
    print(f"\nAfter: {_common.load_now()}.\n", flush=True)

    print(f"### Each conv layer alone, loss = sum(conv(x, k)²) (ms per call, median of "
          f"{part_repeats} windows)\n")
    print(conv_layers(torch, repeats=part_repeats, window_s=args.window / 4))
    print(f"\nAfter: {_common.load_now()}. Total time {time.perf_counter() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
