"""One training loop for every model: a Python loop over a compiled step.

    state, history = train(step, state, data, steps=N, out_dir=DIR, ...)

- `step(state, batch) -> (state, metrics)` is any jitted function; `metrics` is a dict of
  scalars (the loss, a gradient norm, ...). `nnx_step` builds the standard one for Flax NNX
  models: split state, `jax.jit` with the state donated, `nnx.merge` inside.
- `data(start_step)` returns an iterator of batches starting at that step (for example
  `lambda s: segen_jax.data.batches(arrays, 128, seed=0, start_step=s)`), so a resumed run
  sees exactly the batches the interrupted one would have seen.
- Batches are sharded over a data-parallel mesh of every visible device, the state replicated
  (`segen_jax.parallel`): the same call trains on 1 CPU, 8 GPUs or a TPU slice.

Why a Python loop and not `lax.scan` over steps: on XLA:CPU a conv-net step inside `scan` ran
11x slower than the same step jitted alone (DESIGN.md, "Training"), because inside the `while`
loop that `scan` compiles to, XLA:CPU runs the convolutions with its generic kernels instead of
YNNPACK's; unrolled (no loop in the HLO) the scan is fast again (benchmarks/RESULTS_scan.md).
"""
import functools
import json
import pathlib
import time

import jax
import numpy as np
import optax
from flax import nnx

from segen_jax import checkpoint, parallel


class TrainingDiverged(FloatingPointError):
    """A guarded metric (loss, gradient norm, ...) stopped being finite."""


def nnx_state(model, optimizer, *, seed: int = 0):
    """(graphdef, state) for training an NNX `model` with its `nnx.Optimizer`.

    state = {"nnx": the arrays of (model, optimizer), "key": a PRNG key}: a plain pytree that
    jit donates, orbax checkpoints and the mesh replicates; graphdef is the static rest.
    """
    graphdef, arrays = nnx.split((model, optimizer))
    return graphdef, {"nnx": arrays, "key": jax.random.key(seed)}


MIN_PART = 8   # examples per part below which splitting a batch stopped paying (benchmarks/)


def default_parts(batch_size: int) -> int:
    """How many parts `nnx_step(parts="auto")` splits a batch of `batch_size` into.

    On a single CPU device: the largest of 8, 4, 2 that divides the batch and leaves at least
    MIN_PART examples per part, else 1. On GPU/TPU, or with several devices (the batch is
    already split over them): 1. Why: XLA:CPU runs independent ops at the same time on its
    thread pool, but runs many single ops of a conv net's backward pass on one thread; with
    the batch in parts, the parts' forward and backward passes are independent chains that
    keep every core busy. Measured on 2 cores (benchmarks/README.md, "Train step per
    family"): with XLA's default options (YNNPACK convolutions) 1.58x for the classifier at
    batch 64, 1.41x for TinyFCN and 1.25x for FCN-8s at batch 32; with CPU_OPTIONS, whose
    convolutions use both cores by themselves, 1.00x for the classifier at batch 64, 1.13x for
    TinyFCN, 1.08x for FCN-8s and 1.11x for DeepLabV3+ at batch 32, and 1.5x for the VAE
    (which keeps XLA's defaults). Parts that
    are too small lose: at batch 4, 4 parts of 1 ran FCN-8s at 111
    against 133 img/s (`python -m benchmarks.train_step --model fcn8s --batch 4 --parts 4
    --quick`), hence MIN_PART.
    """
    if jax.default_backend() != "cpu" or jax.device_count() > 1:
        return 1
    for parts in (8, 4, 2):
        if batch_size % parts == 0 and batch_size // parts >= MIN_PART:
            return parts
    return 1


# XLA:CPU's YNNPACK fusions, which jaxlib 0.10.2 gives both the matrix products and the
# convolutions, keep only the products: XLA's own convolutions then run, on every core. One
# 3x3 64→64 convolution's forward and backward pass took 70.7 ms with this against 932.8 ms
# (1.94 against 1.01 threads busy); whole train steps ran 1.06-1.37x faster, the VAE's 0.65x
# (it keeps the defaults). benchmarks/RESULTS_xla_cpu.md has the measurements.
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def xla_options(fn, choice):
    """The `compiler_options` of a train step's jax.jit: "auto" gives CPU_OPTIONS on the CPU
    backend and None (XLA's defaults) elsewhere; None gives XLA's defaults everywhere; a dict
    is passed to jax.jit as it is. jax.jit accepts options only at the top level: a step
    called inside another jit or a lax.scan must be built with None (else JAX raises
    "`compiler_options` can only be passed to top-level `jax.jit`"); the outer jit's apply."""
    if isinstance(choice, str) and choice == "auto":
        return dict(CPU_OPTIONS) if jax.default_backend() == "cpu" else None
    if choice is None or isinstance(choice, dict):
        return choice
    raise ValueError(f"{fn}: compiler_options must be 'auto', None or a dict of XLA options, "
                     f"got {choice!r}")


def _split(fn, batch, parts):
    size = jax.tree.leaves(batch)[0].shape[0]
    if size % parts:
        raise ValueError(f"{fn}: parts={parts} must divide the batch size, got a batch of {size}")
    return [jax.tree.map(lambda a: a.reshape(parts, size // parts, *a.shape[1:])[i], batch)
            for i in range(parts)]


def nnx_step(graphdef, loss_fn, *, parts=1, compiler_options="auto"):
    """The compiled train step for `nnx_state`'s state.

    loss_fn(model, batch, key) -> (loss, metrics dict). The step splits the state's key,
    computes the loss and ∇loss, applies the optimizer, and returns
    (new state, {"loss", "grad_norm" = ‖∇loss‖₂, **metrics}). It is compiled once per batch
    shape, with the state donated (its buffers reused for the new state).

    parts=P > 1 cuts the batch into P equal consecutive parts B_i (P must divide the batch
    size) and uses the mean of the parts' losses and metrics,
        L = (1/P) Σ_i loss_fn(model, B_i, fold_in(key, i)),   ∇L = (1/P) Σ_i ∇loss_fn(...),
    a speed-up on CPU (`default_parts`). It equals the whole batch's loss (up to float
    rounding) only when loss_fn is a mean over examples with equal weights, such as
    `pixel_cross_entropy` without ignore_index or class weights; with those, each part is
    normalised by its own count of weighted pixels, and `dice_loss` is a ratio of sums, so the
    mean over parts is a slightly different objective. Draws made from the key (augmentation)
    come from each part's own key; draws from the model's own nnx.Rngs (dropout) are
    unchanged. parts="auto" picks P with `default_parts` for each batch shape, so the
    computation depends on the backend and the device count; the recipes use it, the default
    P = 1 keeps every machine on the same path. Models with batch statistics (`nnx.BatchStat`,
    batch norm) use P = 1 under "auto" and refuse P > 1, since statistics over a part are not
    those over the batch.

    compiler_options: "auto" (CPU_OPTIONS on the CPU backend, XLA's defaults elsewhere), None
    (XLA's defaults everywhere) or a dict of XLA options for jax.jit; they choose the kernels,
    not the computation (`xla_options`). A step called inside another jit or scan needs None.
    """
    if parts != "auto" and (isinstance(parts, bool) or not isinstance(parts, (int, np.integer))
                            or parts < 1):
        raise ValueError(f"nnx_step: parts must be 'auto' or an int >= 1, got {parts!r}")
    parts = parts if parts == "auto" else int(parts)

    @functools.partial(jax.jit, donate_argnums=0,
                       compiler_options=xla_options("nnx_step", compiler_options))
    def step(state, batch):
        model, optimizer = nnx.merge(graphdef, state["nnx"])
        key, subkey = jax.random.split(state["key"])
        size = jax.tree.leaves(batch)[0].shape[0]
        n = default_parts(size) if parts == "auto" else parts
        if n > 1 and jax.tree.leaves(nnx.state(model, nnx.BatchStat)):
            if parts != "auto":
                raise ValueError(f"nnx_step: parts={parts} splits the batch, but the model has "
                                 "batch statistics (nnx.BatchStat), which would then be computed "
                                 "per part; use parts=1")
            n = 1
        value_and_grad = nnx.value_and_grad(loss_fn, has_aux=True)
        if n == 1:
            (loss, metrics), grads = value_and_grad(model, batch, subkey)
        else:
            results = [value_and_grad(model, part, jax.random.fold_in(subkey, i))
                       for i, part in enumerate(_split("nnx_step", batch, n))]
            (loss, metrics), grads = jax.tree.map(lambda *v: sum(v) / n, *results)
        optimizer.update(model, grads)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
        return {"nnx": nnx.state((model, optimizer)), "key": key}, metrics

    return step


def nnx_model(graphdef, state):
    """The model (first element) of a state made by `nnx_state`, e.g. for evaluation."""
    return nnx.merge(graphdef, state["nnx"])[0]


def train(step_fn, state, data, *, steps: int, out_dir=None, log_every: int = 10,
          eval_fn=None, eval_every: int | None = None, checkpoint_every: int | None = None,
          keep_checkpoints: int = 2, examples_per_step: int | None = None, progress=True,
          mesh=None, description: str = "train"):
    """Run `step_fn` until `steps` steps are done; returns (state, history).

    state: any pytree of arrays, the input of step_fn (its key included).
    data: start_step -> iterator of batches (pytrees of arrays, batch axis first).
    out_dir: where `metrics.jsonl` (one JSON object per logged row) and the orbax checkpoints
        (`checkpoints/<step>/`) go. If it already holds a checkpoint, training resumes from the
        newest one: state, key and data position; the history is reloaded from metrics.jsonl.
    log_every: a history row every this many steps, with each metric averaged over the steps
        since the last row ("step" = the last of them); every step's metrics are checked.
    eval_fn(state) -> dict: evaluated every `eval_every` steps and at the end; its metrics
        join that step's row.
    checkpoint_every: save every this many steps (default: only at the end); needs out_dir.
    examples_per_step: shows examples/s in the progress bar (default: the batch size).
    progress: show a tqdm bar (a widget in Jupyter, text in logs).
    mesh: the device mesh (default: every visible device on a "data" axis).

    Raises TrainingDiverged when a metric of some step is not finite, naming that step (the
    first such), the metric, its last finite value and what to try. Metrics are fetched from
    the device once per history row, so the error comes at the end of that row's window.
    """
    _check_counts(steps=steps, log_every=log_every, eval_every=eval_every,
                  checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints)
    if checkpoint_every and out_dir is None:
        raise ValueError("train: checkpoint_every needs out_dir, got out_dir=None")
    mesh = parallel.data_mesh() if mesh is None else mesh
    state = parallel.replicate(state, mesh)
    start, history = 0, []
    writer = jax.process_index() == 0  # with several processes, one writes metrics.jsonl
    if out_dir is not None:
        out_dir = pathlib.Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if checkpoint.latest_step(out_dir / "checkpoints") is not None:
            state, extra = checkpoint.restore(out_dir / "checkpoints", state)
            start = int(extra["step"])
        # Keep the rows up to the restored step; a run that stopped after its last
        # checkpoint left rows that the resumed run will write again.
        history = _read_history(out_dir / "metrics.jsonl", up_to=start)
        if writer:
            (out_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    if start >= steps:
        return state, history

    guard = _Guard()
    window, window_start = [], time.perf_counter()
    bar = _progress_bar(progress, steps, start, description)
    batches = data(start)
    step = start
    try:
        while step < steps:
            try:
                batch = next(batches)
            except StopIteration:
                raise ValueError(f"train: data ran out after step {step} of {steps}; make data "
                                 "repeat (e.g. batches(..., epochs=None))") from None
            state, metrics = step_fn(state, parallel.shard_batch(batch, mesh))
            step += 1
            window.append(metrics)
            if examples_per_step is None:
                examples_per_step = len(jax.tree.leaves(batch)[0])
            is_eval = eval_fn is not None and (step == steps or _every(step, eval_every))
            if step % log_every == 0 or step == steps or is_eval:
                row = {"step": step, **guard.check(window, first_step=step - len(window) + 1)}
                elapsed = time.perf_counter() - window_start
                rate = len(window) * examples_per_step / max(elapsed, 1e-9)
                if is_eval:
                    row.update({k: _to_float(v) for k, v in eval_fn(state).items()})
                history.append(row)
                if out_dir is not None and writer:
                    with (out_dir / "metrics.jsonl").open("a") as f:
                        f.write(json.dumps(row) + "\n")
                shown = {k: row[k] for k in ("loss", "d_loss", "g_loss") if k in row}
                bar.set_postfix(**{k: f"{v:.4g}" for k, v in shown.items()},
                                rate=f"{rate:.0f} ex/s", refresh=False)
                window, window_start = [], time.perf_counter()
            bar.update(1)
            if out_dir is not None and (step == steps or _every(step, checkpoint_every)):
                checkpoint.save(out_dir / "checkpoints", step, state, extra={"step": step},
                                max_to_keep=keep_checkpoints)
    finally:
        bar.close()
    return state, history


class _Guard:
    """Checks every step's metrics; remembers the last finite value of each."""

    def __init__(self):
        self.last = {}

    def check(self, window, *, first_step):
        values = jax.device_get(window)  # one transfer per logged row, not per step
        for offset, metrics in enumerate(values):
            for name, value in metrics.items():
                value = np.asarray(value)
                if not np.all(np.isfinite(value)):
                    raise TrainingDiverged(self._message(first_step + offset, name, value))
                self.last[name] = (first_step + offset, float(np.mean(value)))
        return {name: float(np.mean([np.mean(v[name]) for v in values])) for name in values[0]}

    def _message(self, step, name, value):
        bad = "nan" if np.any(np.isnan(value)) else "inf"
        if name in self.last:
            last_step, last_value = self.last[name]
            before = f"its last finite value was {last_value:.4g} at step {last_step}"
        else:
            before = "it was never finite in this run"
        return (f"training diverged at step {step}: {name} is {bad} ({before}). Try: a lower "
                "learning rate (e.g. 10x smaller), checking the data range (inputs scaled to "
                "[0, 1] or standardised, no nan/inf in the data), or gradient clipping "
                "(optax.chain(optax.clip_by_global_norm(1.0), ...)).")


def _every(step, period):
    return period is not None and step % period == 0


def _to_float(value):
    value = np.asarray(jax.device_get(value))
    return float(value) if value.size == 1 else value.tolist()


def _check_counts(**values):
    """steps >= 0; the other counts >= 1 (or None where optional)."""
    for name, value in values.items():
        if value is None and name in ("eval_every", "checkpoint_every"):
            continue
        lowest = 0 if name == "steps" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
            raise ValueError(f"train: {name} must be an int >= {lowest}, got {value!r}")


def _progress_bar(progress, steps, start, description):
    from tqdm.auto import tqdm

    return tqdm(total=steps, initial=start, desc=description, disable=not progress,
                unit="step", dynamic_ncols=True, mininterval=0.5)


def _read_history(path: pathlib.Path, *, up_to: int):
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["step"] <= up_to]


