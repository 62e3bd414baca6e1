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


# ---- chapter 1 ---------------------------------------------------------------------------------
from solutions import ch01_convolution as sol1  # noqa: E402


@pytest.mark.parametrize("check, fn", [
    (exercises.check_output_size, sol1.output_size),
    (exercises.check_im2col, sol1.im2col),
    (exercises.check_conv_weight_grad, sol1.conv_weight_grad),
])
def test_chapter1_solutions_pass(capsys, check, fn):
    ok, out = verdict(capsys, check, fn)
    assert ok and out.startswith("✓ correct"), out


@pytest.mark.parametrize("fn, hint", [
    (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1, "dilation d spreads"),
    (lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1, "*both* sides"),
    (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s, "+ 1"),
    (lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1, "round the number of strides down"),
    (lambda n, k, s, p, d: n, "the output has"),
    (unsolved, "not implemented yet"),
])
def test_output_size_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_output_size, fn)
    assert not ok and hint in out, out


def im2col_channel_first(x, k):
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    return jnp.stack([x[p:p + h, q:q + w, c] for c in range(x.shape[2])
                      for p in range(k) for q in range(k)], axis=-1)


@pytest.mark.parametrize("fn, hint", [
    (im2col_channel_first, "wrong order"),
    (lambda x, k: x, "expected patches of shape"),
    (lambda x, k: sol1.im2col(x, k) + 1.0, "must hold x[i:i+k, j:j+k, :]"),
    (unsolved, "not implemented yet"),
])
def test_im2col_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_im2col, fn)
    assert not ok and hint in out, out


@pytest.mark.parametrize("fn, hint", [
    (lambda x, dy: sol1.conv_weight_grad(x, dy)[::-1, ::-1], "flipped"),
    (lambda x, dy: jnp.zeros((2, 2)), "shape of w"),
    (lambda x, dy: 2 * sol1.conv_weight_grad(x, dy), "wrong values"),
    (unsolved, "not implemented yet"),
])
def test_conv_weight_grad_mistakes(capsys, fn, hint):
    ok, out = verdict(capsys, exercises.check_conv_weight_grad, fn)
    assert not ok and hint in out, out
