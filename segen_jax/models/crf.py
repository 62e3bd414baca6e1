"""The fully connected CRF with Gaussian edge potentials, by mean-field inference
(Krähenbühl & Koltun, NeurIPS 2011), which DeepLab v1/v2 put after the network.

A labelling x of the n = H·W pixels of one image, labels l = 1 … K, has the energy
    E(x) = Σ_i ψ_i(x_i) + Σ_{i<j} μ(x_i, x_j) k_ij,      ψ_i(l) = −log P_i(l) (the network),
    μ(l, l') = [l ≠ l']                                                      (Potts model)
    k_ij = w_b exp(−|p_i − p_j|²/2θ_α² − |I_i − I_j|²/2θ_β²)  (bilateral: near and alike)
         + w_s exp(−|p_i − p_j|²/2θ_γ²)                      (spatial: near)
with p the pixel position and I its colour (the image's C channels), and P(x) ∝ exp(−E(x)).
Every pair of pixels is connected, so exact inference is out of reach; mean field takes the
factorised Q(x) = Π_i Q_i(x_i) closest to P, minimising KL(Q‖P) = F(Q) + log Z with the free
energy
    F(Q) = Σ_i Σ_l Q_i(l) ψ_i(l) + ½ Σ_{i≠j} k_ij Σ_{l≠l'} Q_i(l) Q_j(l') + Σ_i Σ_l Q_i(l) log Q_i(l).
Setting ∂F/∂Q_i(l) = 0 under Σ_l Q_i(l) = 1, and Σ_{l'≠l} Q_j(l') = 1 − Q_j(l), gives the
update, applied to all pixels at once for a fixed number of iterations from Q⁰ = softmax(−ψ):
    Q_i(l) ∝ exp(−ψ_i(l) + Σ_j k_ij Q_j(l)).
We keep j = i in these sums (Krähenbühl & Koltun, ICML 2013). That is the update for
    F̃(Q) = F(Q) + ½ Σ_i k_ii (1 − Σ_l Q_i(l)²)  >=  F(Q),
equal to F at every hard labelling (so F̃ is still the CRF energy there, and F̃ + log Z bounds
the KL from above). Its pairwise term is const − ½ Σ_l Q(l)ᵀ K Q(l), concave because the
Gaussian kernel matrix K is positive semidefinite (weights >= 0); the rest is convex. Each
parallel update minimises the convex part plus the tangent of the concave part at Qᵗ, a
majoriser G_t >= F̃ with G_t(Qᵗ) = F̃(Qᵗ), so F̃(Qᵗ⁺¹) <= G_t(Qᵗ⁺¹) <= G_t(Qᵗ) = F̃(Qᵗ): F̃
never increases (the concave-convex procedure). `free_energy` computes F̃.

Cost: K has n² entries, 16.8 M (67 MB in float32) for a 64x64 scene, and one iteration is n²K
multiply-adds; fine at the course's sizes, hopeless at 513x513 (6.9·10¹⁰ entries). There the
sums Σ_j k_ij Q_j(l) are Gaussian filterings of Q, which the permutohedral lattice (Adams et
al. 2010) approximates in O(n·d) time, as Krähenbühl & Koltun do; the spatial term alone is a
separable Gaussian blur.
"""
import jax
import jax.numpy as jnp
from flax import nnx

# Within 0.001 mIoU of the best setting of chapter 4's grid on training digit scenes for the
# shipped DeepLabV3+: weights that pull harder move the labels of a digit's 3-pixel rim back
# onto its stroke and lower mIoU.
DEFAULTS = {"bilateral_weight": 0.03, "bilateral_xy": 2.0, "bilateral_color": 0.3,
            "spatial_weight": 0.3, "spatial_xy": 1.0}


def _check(fn, logits, images):
    if getattr(logits, "ndim", None) != 4:
        raise ValueError(f"{fn}: logits must have shape (N, H, W, K), got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    if getattr(images, "ndim", None) != 4 or tuple(images.shape[:3]) != tuple(logits.shape[:3]):
        raise ValueError(f"{fn}: images must have shape (N, H, W, C) with the logits' N, H, W "
                         f"{tuple(logits.shape[:3])}, got "
                         f"{getattr(images, 'shape', type(images).__name__)}")


def _check_iterations(fn, iterations):
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{fn}: iterations must be an int >= 0, got {iterations!r}")


def _check_params(fn, params):
    """Known names only; weights >= 0 (K stays positive semidefinite), widths > 0."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"{fn}: unknown parameters {sorted(unknown)}, expected some of "
                        f"{sorted(DEFAULTS)}")
    bad = {k: v for k, v in params.items() if isinstance(v, (int, float)) and
           not (v >= 0 if k.endswith("weight") else v > 0)}
    if bad:
        raise ValueError(f"{fn}: weights must be >= 0 and widths (xy, color) > 0, got {bad}")


def _spatial_gaussian(h, w, theta):
    """exp(−|p_i − p_j|² / 2θ²) (n, n) over the pixels of an H x W grid, row-major. The Gaussian
    of a 2-D distance is the product of the row and column ones, so it is built from two small
    tables (H, H) and (W, W) by one broadcast product."""
    g = lambda m: jnp.exp(-(jnp.arange(m)[:, None] - jnp.arange(m)[None]) ** 2
                          / (2 * theta ** 2)).astype(jnp.float32)
    return (g(h)[:, None, :, None] * g(w)[None, :, None, :]).reshape(h * w, h * w)


def _kernel(image, bilateral_position, spatial, bilateral_weight, bilateral_color):
    """K for one image (H, W, C), from the parts every image shares: the bilateral kernel's
    position factor exp(−|p_i − p_j|²/2θ_α²) and w_s·exp(−|p_i − p_j|²/2θ_γ²)."""
    h, w, c = image.shape
    col = image.reshape(h * w, c).astype(jnp.float32)
    d_col = sum((col[:, ch, None] - col[None, :, ch]) ** 2 for ch in range(c))
    return (bilateral_weight * bilateral_position * jnp.exp(-d_col / (2 * bilateral_color ** 2))
            + spatial)


def crf_kernel(image, *, bilateral_weight, bilateral_xy, bilateral_color, spatial_weight,
               spatial_xy):
    """K (n, n), n = H·W, for one image (H, W, C): the k_ij of the module docstring, positions
    in pixels, colours in the image's units (θ_α = bilateral_xy, θ_β = bilateral_color,
    θ_γ = spatial_xy)."""
    h, w, _ = image.shape
    return _kernel(image, _spatial_gaussian(h, w, bilateral_xy),
                   spatial_weight * _spatial_gaussian(h, w, spatial_xy), bilateral_weight,
                   bilateral_color)


def mean_field(unary, kernel, iterations):
    """Q after `iterations` parallel updates Q_i(l) ∝ exp(−ψ_i(l) + Σ_j k_ij Q_j(l)) for one
    image: unary ψ (n, K), kernel (n, n) -> (n, K), rows summing to 1."""
    _check_iterations("mean_field", iterations)
    q = jax.nn.softmax(-unary, -1)
    for _ in range(iterations):
        q = jax.nn.softmax(-unary + kernel @ q, -1)
    return q


def free_energy(q, unary, kernel):
    """F̃(Q) of the module docstring (j = i kept) for one image: q, unary (n, K), kernel (n, n)
    -> scalar.
    The Potts pairwise sum is ½ Σ_ij k_ij (1 − Σ_l Q_i(l) Q_j(l)), summed term by term (every
    term >= 0, so no cancellation between two large totals in float32)."""
    pairwise = 0.5 * jnp.sum(kernel * (1 - q @ q.T))
    return jnp.sum(q * unary) + pairwise + jnp.sum(jax.scipy.special.xlogy(q, q))


def dense_crf(logits, images, *, iterations=5, **params):
    """Refined class probabilities (N, H, W, K) of a segmenter's logits (N, H, W, K) on its
    images (N, H, W, C): ψ = −log softmax(logits), then `iterations` mean-field updates with
    the kernel of crf_kernel(**params) (DEFAULTS for any left out, tuned on training scenes in
    chapter 4). Differentiable in logits, images and params; one image at a time (lax.map), so
    memory is one n x n kernel."""
    _check("dense_crf", logits, images)
    _check_params("dense_crf", params)
    _check_iterations("dense_crf", iterations)
    p = {**DEFAULTS, **params}
    n, h, w, k = logits.shape
    position = _spatial_gaussian(h, w, p["bilateral_xy"])   # the parts all images share, once
    spatial = p["spatial_weight"] * _spatial_gaussian(h, w, p["spatial_xy"])

    def one(args):
        lg, image = args
        unary = -jax.nn.log_softmax(lg.reshape(h * w, k).astype(jnp.float32), -1)
        kernel = _kernel(image, position, spatial, p["bilateral_weight"],
                         p["bilateral_color"])
        return mean_field(unary, kernel, iterations).reshape(h, w, k)

    return jax.lax.map(one, (logits, images))


class DenseCRF(nnx.Module):
    """dense_crf as a module: the five kernel parameters are nnx.Params (so a network and its
    CRF can be trained end to end, as in CRF-as-RNN; nothing then keeps the weights >= 0, and a
    negative weight voids the monotone free energy), the iteration count is fixed.
    __call__(logits (N, H, W, K), images (N, H, W, C)) -> probabilities (N, H, W, K)."""

    def __init__(self, *, iterations=5, **params):
        _check_params("DenseCRF", params)
        _check_iterations("DenseCRF", iterations)
        self.iterations = iterations
        self.params = nnx.Dict({k: nnx.Param(jnp.float32(v))
                                for k, v in {**DEFAULTS, **params}.items()})

    def __call__(self, logits, images):
        values = {k: v[...] for k, v in self.params.items()}
        return dense_crf(logits, images, iterations=self.iterations, **values)
