"""2-D toy distributions for GANs: mixtures of Gaussians on a ring and on a grid.

Both are equal-weight mixtures p(x) = (1/M) Σ_m N(x; c_m, σ² I) in the plane. Mode collapse is
measured on them with `segen_jax.metrics.mode_coverage(samples, centers, sigma)`.
"""
from typing import NamedTuple

import numpy as np


class Toy2D(NamedTuple):
    """samples float32 (n, 2); centers float32 (M, 2); sigma the per-axis standard deviation."""

    samples: np.ndarray
    centers: np.ndarray
    sigma: float


def ring_of_gaussians(n: int, *, modes: int = 8, radius: float = 2.0, sigma: float = 0.02,
                      seed: int = 0) -> Toy2D:
    """n samples from M = `modes` Gaussians with centres c_m = r·(cos 2πm/M, sin 2πm/M)."""
    _check(n=n, modes=modes, sigma=sigma, name="ring_of_gaussians")
    if not radius > 0:
        raise ValueError(f"ring_of_gaussians: radius must be > 0, got {radius}")
    angles = 2 * np.pi * np.arange(modes) / modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _sample(n, centers, sigma, seed)


def grid_of_gaussians(n: int, *, side: int = 5, spacing: float = 2.0, sigma: float = 0.05,
                      seed: int = 0) -> Toy2D:
    """n samples from side² Gaussians centred on a square grid with the given spacing, centred
    at the origin (side=5, spacing=2: centres at {-4, -2, 0, 2, 4}²)."""
    _check(n=n, modes=side, sigma=sigma, name="grid_of_gaussians", modes_name="side")
    if not spacing > 0:
        raise ValueError(f"grid_of_gaussians: spacing must be > 0, got {spacing}")
    ticks = spacing * (np.arange(side) - (side - 1) / 2)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    centers = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return _sample(n, centers, sigma, seed)


def _check(*, n, modes, sigma, name, modes_name="modes"):
    for arg, value in (("n", n), (modes_name, modes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: {arg} must be an int, got {type(value).__name__}")
    if n < 0:
        raise ValueError(f"{name}: n must be >= 0, got {n}")
    if modes < 1:
        raise ValueError(f"{name}: {modes_name} must be >= 1, got {modes}")
    if not sigma > 0:
        raise ValueError(f"{name}: sigma must be > 0, got {sigma}")


def _sample(n, centers, sigma, seed) -> Toy2D:
    rng = np.random.default_rng(seed)
    which = rng.integers(len(centers), size=n)
    samples = centers[which] + sigma * rng.standard_normal((n, 2))
    return Toy2D(samples.astype(np.float32), centers.astype(np.float32), float(sigma))
