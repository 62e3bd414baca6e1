"""Solutions to the exercises of notebooks/04_deeplab.ipynb (try them first!)."""
import jax
import numpy as np


def dilate_kernel(w, r):
    """Exercise 4.1: w[p, q] at (p·r, q·r) of a zero kernel of side k + (k − 1)(r − 1)."""
    k = w.shape[0]
    dense = np.zeros((k + (k - 1) * (r - 1),) * 2, np.float32)
    dense[::r, ::r] = w
    return dense


def atrous_support(rates):
    """Exercise 4.2: the sum set of each layer's taps {0, r, 2r}, starting from {0}."""
    reached = {0}
    for r in rates:
        reached = {o + t for o in reached for t in (0, r, 2 * r)}
    support = np.zeros(1 + 2 * sum(rates), bool)
    support[sorted(reached)] = True
    return support


def mean_field_step(unary, kernel, q):
    """Exercise 4.3: Q_i(l) ∝ exp(−ψ_i(l) + Σ_j k_ij Q_j(l))."""
    return jax.nn.softmax(-unary + kernel @ q, -1)
