"""Each checker accepts the solution and answers each typical mistake with its own hint."""
import jax
import jax.numpy as jnp
import pytest

from segen_jax import exercises
from solutions import ch00_jax_primer as sol


def verdict(capsys, check, fn):
    ok = check(fn)
    return ok, capsys.readouterr().out


def unsolved(*args):
    raise NotImplementedError


def test_log_softmax_solution_passes(capsys):
    ok, out = verdict(capsys, exercises.check_log_softmax, sol.stable_log_softmax)
    assert ok and out.startswith("✓ correct")


@pytest.mark.parametrize("fn, hint", [
    (unsolved, "not implemented yet"),
    (lambda z: jnp.log(jnp.exp(z) / jnp.exp(z).sum(-1, keepdims=True)), "exp(1000) overflows"),
    (lambda z: z - jnp.log(jnp.exp(z).sum(0, keepdims=True)), "axis 0"),
    (lambda z: jax.nn.softmax(z), "that is softmax itself"),
    (lambda z: z - jnp.log(jnp.exp(z).sum(-1)), "keepdims=True"),
    (lambda z: z - z.max(-1, keepdims=True) - jnp.log(jnp.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) + 1.0,
     "the values differ"),
    (lambda z: z - jnp.log(jnp.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)),
     "values differ"),
    (lambda z: sol.stable_log_softmax(z) if float(z.max()) < 1e9 else z, "not under jax.jit"),
])
def test_log_softmax_mistakes_get_their_hint(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_log_softmax, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out


def test_per_example_grads_solution_passes(capsys):
    ok, out = verdict(capsys, exercises.check_per_example_grads, sol.per_example_grads)
    assert ok and out.startswith("✓ correct")


def batch_loss(params, x, y):
    logits = x @ params["w"] + params["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])


@pytest.mark.parametrize("fn, hint", [
    (unsolved, "not implemented yet"),
    (lambda p, x, y: jax.grad(batch_loss)(p, x, y), "you differentiated the batch loss"),
    (lambda p, x, y: jax.tree.map(lambda g: g / len(y), sol.per_example_grads(p, x, y)),
     "too small"),
    (lambda p, x, y: jax.tree.map(lambda g: -g, sol.per_example_grads(p, x, y)), "sign is flipped"),
    (lambda p, x, y: jax.tree.map(lambda g: 2 * g, sol.per_example_grads(p, x, y)), "wrong values"),
    (lambda p, x, y: [1, 2], "return a dict"),
    (lambda p, x, y: {"w": jnp.zeros((1, 2)), "b": jnp.zeros(3)}, "expected shapes"),
])
def test_per_example_grads_mistakes_get_their_hint(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_per_example_grads, fn)
    assert not ok and out.startswith("✗ not yet") and hint in out
