"""Chapter 5's networks: shapes, value ranges, batch-norm modes, packing, and input errors."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from segen_jax import losses
from segen_jax.models import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                              pack_samples)


def test_mlp_pair_shapes_and_packing():
    g = MLPGenerator(2, rngs=nnx.Rngs(0))
    d = MLPDiscriminator(pack=2, rngs=nnx.Rngs(1))
    x = g(jax.random.normal(jax.random.key(0), (8, 2)))
    assert x.shape == (8, 2)
    packed = pack_samples(x, 2)
    assert packed.shape == (4, 4)
    np.testing.assert_array_equal(packed[1], jnp.concatenate([x[2], x[3]]))
    assert d(packed).shape == (4, 1)
    assert len(g.hidden) == 3 and g.hidden[0].in_features == 2


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_dcgan_generator_makes_digits_sized_images_in_unit_range(upsample):
    g = DCGANGenerator(16, width=8, upsample=upsample, rngs=nnx.Rngs(0))
    images = g(jax.random.normal(jax.random.key(0), (4, 16)))
    assert images.shape == (4, 28, 28, 1)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    d = DCGANDiscriminator(width=8, rngs=nnx.Rngs(1))
    assert d(images).shape == (4, 1)


def test_generator_batch_norm_train_and_eval_modes():
    """train(): batch statistics (outputs of one z depend on the rest of the batch) and the
    running averages move; eval(): running averages, each output independent of the batch."""
    g = DCGANGenerator(16, width=8, rngs=nnx.Rngs(0))
    z = jax.random.normal(jax.random.key(1), (6, 16))
    before = np.asarray(g.bn0.mean[...]).copy()
    g.train()
    together, alone = g(z)[:2], g(z[:2])
    assert float(jnp.abs(together - alone).max()) > 1e-4
    assert float(np.abs(np.asarray(g.bn0.mean[...]) - before).max()) > 0
    g.eval()
    np.testing.assert_allclose(g(z)[:2], g(z[:2]), atol=1e-6)


def test_dcgan_trains_a_step_and_the_critic_takes_a_gradient_penalty():
    g = DCGANGenerator(16, width=8, rngs=nnx.Rngs(0))
    d = DCGANDiscriminator(width=8, rngs=nnx.Rngs(1))
    real = jax.random.uniform(jax.random.key(2), (8, 28, 28, 1))
    fake = g(jax.random.normal(jax.random.key(3), (8, 16)))
    penalty = losses.gradient_penalty(d, real, fake, jax.random.key(4))
    assert np.isfinite(float(penalty)) and float(penalty) > 0
    optimizer = nnx.Optimizer(d, optax.adam(1e-3), wrt=nnx.Param)

    def d_loss(d):
        return losses.discriminator_loss(d(real), d(jax.lax.stop_gradient(fake)))

    first = float(d_loss(d))
    for _ in range(5):
        optimizer.update(d, nnx.grad(d_loss)(d))
    assert float(d_loss(d)) < first


def test_r1_forward_is_the_discriminator_with_the_same_second_derivatives():
    """r1_forward (im2col convolutions on a CPU) against __call__ (XLA's convolutions): the
    logits, the input gradient and R1's gradient over the parameters (a second derivative)."""
    d = DCGANDiscriminator(width=8, rngs=nnx.Rngs(1))
    x = jax.random.uniform(jax.random.key(2), (6, 28, 28, 1))
    np.testing.assert_allclose(d.r1_forward(x), d(x), rtol=1e-5, atol=1e-6)
    input_grad = lambda f: jax.grad(lambda x_: jnp.sum(f(x_)))(x)
    np.testing.assert_allclose(input_grad(d.r1_forward), input_grad(d), rtol=1e-5, atol=1e-7)
    r1_grads = {name: nnx.grad(lambda m: losses.r1_penalty(getattr(m, name), x))(d)
                for name in ("__call__", "r1_forward")}
    want, got = (jax.tree.leaves(r1_grads[k]) for k in ("__call__", "r1_forward"))
    assert len(want) == 6 and any(float(jnp.abs(a).max()) > 0 for a in want)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * float(jnp.abs(a).max()))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 28, 28, 1\)"):
        d.r1_forward(jnp.zeros((2, 32, 32, 1)))


@pytest.mark.parametrize("call, match", [
    (lambda: MLPGenerator(0, rngs=nnx.Rngs(0)), r"latent_dim must be an int >= 1, got 0"),
    (lambda: MLPGenerator(2, rngs=nnx.Rngs(0))(jnp.zeros((4, 3))),
     r"MLPGenerator: z must have shape \(N, 2\), got \(4, 3\)"),
    (lambda: MLPDiscriminator(pack=2, rngs=nnx.Rngs(0))(jnp.zeros((4, 2))),
     r"x must have shape \(N, pack·in_dim\) = \(N, 4\)"),
    (lambda: pack_samples(jnp.zeros((5, 2)), 2), r"batch divisible by pack = 2"),
    (lambda: DCGANGenerator(upsample="bilinear", rngs=nnx.Rngs(0)),
     r"upsample must be one of \('resize', 'transpose'\)"),
    (lambda: DCGANDiscriminator(width=4, rngs=nnx.Rngs(0))(jnp.zeros((2, 32, 32, 1))),
     r"images must have shape \(N, 28, 28, 1\), got \(2, 32, 32, 1\)"),
])
def test_gan_model_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
