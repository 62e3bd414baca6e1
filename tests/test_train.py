"""The training loop: history, metrics.jsonl, eval, exact resume, NaN guard, checkpoints."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from segen_jax import checkpoint
from segen_jax.data import batches
from segen_jax.train import (CPU_OPTIONS, TrainingDiverged, nnx_model, nnx_state, nnx_step, train,
                             xla_options)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 6)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)


class Tiny(nnx.Module):
    def __init__(self, hidden=8, *, rngs):
        self.a = nnx.Linear(6, hidden, rngs=rngs)
        self.b = nnx.Linear(hidden, 2, rngs=rngs)

    def __call__(self, x):
        return self.b(jax.nn.relu(self.a(x)))


def loss_fn(model, batch, key):
    x, y = batch
    x = x + 0.01 * jax.random.normal(key, x.shape)  # uses the key: resume must restore it
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}


def setup(hidden=8, lr=0.05, seed=0):
    model = Tiny(hidden, rngs=nnx.Rngs(seed))
    graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param), seed=seed)
    return graphdef, state, nnx_step(graphdef, loss_fn)


def data(start):
    return batches((X, Y), 16, seed=1, start_step=start)


def test_history_rows_and_metrics_file(tmp_path):
    graphdef, state, step = setup()

    def evaluate(state):
        logits = nnx_model(graphdef, state)(X)
        return {"test_accuracy": jnp.mean(jnp.argmax(logits, -1) == Y)}

    state, history = train(step, state, data, steps=40, log_every=10, eval_fn=evaluate,
                           eval_every=20, out_dir=tmp_path, progress=False)
    assert [row["step"] for row in history] == [10, 20, 30, 40]
    assert {"loss", "grad_norm", "accuracy"} <= set(history[0])
    assert "test_accuracy" in history[1] and "test_accuracy" not in history[0]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["test_accuracy"] > 0.85
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == history


def test_log_rows_average_the_steps_they_cover():
    def step(state, batch):
        return state + 1, {"loss": state.astype(jnp.float32)}

    _, history = train(step, jnp.zeros((), jnp.int32), data, steps=6, log_every=3, progress=False)
    assert [(r["step"], r["loss"]) for r in history] == [(3, 1.0), (6, 4.0)]


def test_resume_continues_exactly(tmp_path):
    _, state, step = setup()
    _, full = train(step, state, data, steps=30, log_every=1, progress=False)

    _, state, step = setup()
    train(step, state, data, steps=15, log_every=1, out_dir=tmp_path, progress=False)
    _, fresh, step = setup(seed=5)  # a different init: everything must come from the checkpoint
    _, resumed = train(step, fresh, data, steps=30, log_every=1, out_dir=tmp_path, progress=False)

    assert [r["step"] for r in resumed] == list(range(1, 31))
    np.testing.assert_array_equal([r["loss"] for r in resumed], [r["loss"] for r in full])
    stored = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert stored == list(range(1, 31))


def test_resume_after_a_crash_past_the_last_checkpoint(tmp_path):
    _, state, step = setup()
    train(step, state, data, steps=10, log_every=1, out_dir=tmp_path, checkpoint_every=5,
          progress=False)
    # Pretend the run died at step 8: checkpoint 5 is the newest, rows 6..10 are stale.
    import shutil
    shutil.rmtree(tmp_path / "checkpoints" / "10")
    _, state, step = setup()
    _, history = train(step, state, data, steps=10, log_every=1, out_dir=tmp_path, progress=False)
    stored = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert stored == list(range(1, 11)) and [r["step"] for r in history] == stored


def test_nothing_to_do_when_already_trained(tmp_path):
    _, state, step = setup()
    trained, _ = train(step, state, data, steps=5, out_dir=tmp_path, progress=False)
    _, state, step = setup()
    again, history = train(step, state, data, steps=5, out_dir=tmp_path, progress=False)
    assert len(history) == 1
    for a, b in zip(jax.tree.leaves(trained["nnx"]), jax.tree.leaves(again["nnx"])):
        np.testing.assert_array_equal(a, b)


def test_nan_guard_names_step_metric_last_value_and_advice():
    def step(state, batch):
        loss = jnp.where(state >= 6, jnp.nan, 1.0 / (state + 1.0))
        return state + 1, {"loss": loss, "grad_norm": jnp.float32(1.0)}

    with pytest.raises(TrainingDiverged) as info:
        train(step, jnp.zeros((), jnp.float32), data, steps=20, log_every=4, progress=False)
    message = str(info.value)
    assert "at step 7: loss is nan" in message
    assert "last finite value was 0.1667 at step 6" in message
    for advice in ("learning rate", "data range", "clip_by_global_norm"):
        assert advice in message


def test_nan_guard_on_gradient_norm_from_a_real_divergence():
    graphdef, state, step = setup(lr=1e30)  # absurd learning rate
    with pytest.raises(TrainingDiverged, match=r"at step \d+: (loss|grad_norm|accuracy) is (nan|inf)"):
        train(step, state, data, steps=200, progress=False)


def test_checkpoint_into_a_different_model_names_path_and_shapes(tmp_path):
    _, state, step = setup(hidden=8)
    train(step, state, data, steps=2, out_dir=tmp_path, progress=False)
    _, other, step = setup(hidden=4)
    with pytest.raises(checkpoint.CheckpointMismatch,
                       match=r"parameter 'nnx/0/a/bias/value' has shape \(8,\) in the "
                             r"checkpoint and \(4,\) in the model"):
        train(step, other, data, steps=4, out_dir=tmp_path, progress=False)


def test_checkpoints_are_not_pickles(tmp_path):
    _, state, step = setup()
    train(step, state, data, steps=3, out_dir=tmp_path, progress=False)
    files = [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()]
    assert files
    for f in files:
        head = f.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"), f"{f} is a pickle"


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=-1), "steps must be an int >= 0, got -1"),
    (dict(steps=5, log_every=0), "log_every must be an int >= 1, got 0"),
    (dict(steps=5, checkpoint_every=2), "checkpoint_every needs out_dir"),
])
def test_bad_arguments(kwargs, match):
    _, state, step = setup()
    with pytest.raises(ValueError, match=match):
        train(step, state, data, progress=False, **kwargs)


def test_data_that_runs_out():
    _, state, step = setup()
    finite = lambda start: batches((X, Y), 16, epochs=1, start_step=start)
    with pytest.raises(ValueError, match="data ran out after step 6 of 10"):
        train(step, state, finite, steps=10, progress=False)


def _plain_loss(model, batch, key):   # no random draws: the parts must not change the maths
    x, y = batch
    logits = model(x)
    return (optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
            {"accuracy": jnp.mean(jnp.argmax(logits, -1) == y)})


@pytest.mark.parametrize("parts", [2, 4, 8])
def test_a_batch_in_parts_gives_the_whole_batchs_step(parts):
    results = []
    for p in (1, parts):
        model = Tiny(rngs=nnx.Rngs(0))
        graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param))
        step = nnx_step(graphdef, _plain_loss, parts=p)
        history = []
        for i in range(3):
            state, metrics = step(state, (X[32 * i:32 * i + 32], Y[32 * i:32 * i + 32]))
            history.append({k: float(v) for k, v in metrics.items()})
        results.append((history, nnx.to_pure_dict(state["nnx"])))
    (h1, s1), (hp, sp) = results
    for a, b in zip(h1, hp):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(a[k])), (k, a[k], b[k])
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(sp)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_parts_draw_their_own_keys():
    # Each part gets fold_in(key, i): the noise added to a part differs from the noise the
    # whole batch would get, so the losses differ a little but not much.
    losses = []
    for p in (1, 2):
        m = Tiny(rngs=nnx.Rngs(0))
        graphdef, state = nnx_state(m, nnx.Optimizer(m, optax.adam(0.05), wrt=nnx.Param))
        _, metrics = nnx_step(graphdef, loss_fn, parts=p)(state, (X[:32], Y[:32]))
        losses.append(float(metrics["loss"]))
    assert losses[0] != losses[1] and abs(losses[0] - losses[1]) < 1e-2


def test_default_parts_keeps_at_least_eight_examples_per_part(monkeypatch):
    from segen_jax import train as train_module
    monkeypatch.setattr(train_module.jax, "default_backend", lambda: "cpu")
    monkeypatch.setattr(train_module.jax, "device_count", lambda: 1)
    expected = {64: 8, 128: 8, 32: 4, 16: 2, 24: 2, 8: 1, 4: 1, 1: 1, 15: 1}
    assert {b: train_module.default_parts(b) for b in expected} == expected
    monkeypatch.setattr(train_module.jax, "device_count", lambda: 8)   # split over devices
    assert train_module.default_parts(64) == 1
    monkeypatch.setattr(train_module.jax, "device_count", lambda: 1)
    monkeypatch.setattr(train_module.jax, "default_backend", lambda: "gpu")
    assert train_module.default_parts(64) == 1


def test_auto_splits_like_the_parts_it_picks_and_the_default_keeps_the_batch_whole():
    from segen_jax.train import default_parts
    losses = {}
    for parts in ("auto", default_parts(32), 1, None):
        m = Tiny(rngs=nnx.Rngs(0))
        graphdef, state = nnx_state(m, nnx.Optimizer(m, optax.adam(0.05), wrt=nnx.Param))
        step = nnx_step(graphdef, loss_fn) if parts is None else nnx_step(graphdef, loss_fn,
                                                                           parts=parts)
        losses[parts] = float(step(state, (X[:32], Y[:32]))[1]["loss"])
    assert losses["auto"] == losses[default_parts(32)]
    assert losses[None] == losses[1]


class WithBatchNorm(nnx.Module):
    def __init__(self, *, rngs):
        self.a = nnx.Linear(6, 8, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.b = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.b(jax.nn.relu(self.norm(self.a(x))))


def test_parts_refuse_batch_statistics_and_auto_keeps_the_batch_whole():
    outputs = []
    for parts in ("auto", 1):
        model = WithBatchNorm(rngs=nnx.Rngs(0))
        graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param))
        _, metrics = nnx_step(graphdef, _plain_loss, parts=parts)(state, (X[:64], Y[:64]))
        outputs.append(float(metrics["loss"]))
    assert outputs[0] == outputs[1]
    model = WithBatchNorm(rngs=nnx.Rngs(0))
    graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param))
    with pytest.raises(ValueError, match=r"parts=2 splits the batch, but the model has batch"):
        nnx_step(graphdef, _plain_loss, parts=2)(state, (X[:64], Y[:64]))


@pytest.mark.parametrize("parts", [0, -2, 1.5, True, "two"])
def test_bad_parts(parts):
    graphdef, _, _ = setup()
    with pytest.raises(ValueError, match="parts must be 'auto' or an int >= 1"):
        nnx_step(graphdef, _plain_loss, parts=parts)


def test_parts_must_divide_the_batch():
    graphdef, state, _ = setup()
    with pytest.raises(ValueError, match=r"parts=3 must divide the batch size, got a batch of 32"):
        nnx_step(graphdef, _plain_loss, parts=3)(state, (X[:32], Y[:32]))


class TinyConv(nnx.Module):
    def __init__(self, *, rngs):
        self.a = nnx.Conv(1, 4, (3, 3), padding="SAME", rngs=rngs)
        self.b = nnx.Conv(4, 8, (3, 3), strides=2, padding="SAME", rngs=rngs)
        self.out = nnx.Linear(4 * 4 * 8, 2, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.b(jax.nn.relu(self.a(x))))
        return self.out(x.reshape(x.shape[0], -1))


def _conv_loss(model, batch, key):
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean(), {}


CPU_ONLY = pytest.mark.skipif(jax.default_backend() != "cpu",
                              reason="CPU_OPTIONS apply on the CPU backend only")


@CPU_ONLY
def test_cpu_options_leave_the_maths_of_a_conv_net_step_unchanged():
    # The same three Adam steps compiled with train.CPU_OPTIONS ("auto" on a CPU) and with
    # XLA's defaults (None): the options choose kernels, not the computation.
    images = RNG.normal(size=(3, 16, 8, 8, 1)).astype(np.float32)
    labels = (images.mean(axis=(2, 3, 4)) > 0).astype(np.int32)
    runs = []
    for options in ("auto", None):
        model = TinyConv(rngs=nnx.Rngs(0))
        graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(0.01), wrt=nnx.Param))
        step = nnx_step(graphdef, _conv_loss, compiler_options=options)
        losses = []
        for x, y in zip(images, labels):
            state, metrics = step(state, (x, y))
            losses.append(float(metrics["loss"]))
        runs.append((losses, jax.tree.leaves(nnx.state(nnx_model(graphdef, state), nnx.Param))))
    (losses_a, params_a), (losses_b, params_b) = runs
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-5)
    for a, b in zip(params_a, params_b):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_compiler_options_reach_the_compiler():
    graphdef, state, _ = setup()
    step = nnx_step(graphdef, _plain_loss, compiler_options={"xla_no_such_option": True})
    with pytest.raises(Exception, match="xla_no_such_option"):
        step(state, (X[:16], Y[:16]))


@CPU_ONLY
def test_xla_options_per_backend(monkeypatch):
    options = {"xla_cpu_enable_fast_math": False}
    assert xla_options("f", None) is None and xla_options("f", options) is options
    assert xla_options("f", "auto") == CPU_OPTIONS          # the tests run on the CPU
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert xla_options("f", "auto") is None


@pytest.mark.parametrize("options", ["fast", 1, ["xla_cpu_enable_fast_math"], np.zeros(2)])
def test_bad_compiler_options(options):
    graphdef, _, _ = setup()
    with pytest.raises(ValueError, match=r"nnx_step: compiler_options must be 'auto', None or a "
                                         r"dict of XLA options, got"):
        nnx_step(graphdef, _plain_loss, compiler_options=options)
