"""Solutions to the exercises of notebooks/03_fcn.ipynb (try them first!)."""
import numpy as np


def conv_matrix(w, n):
    """Exercise 3.1: row i·m + j of C holds w[p, q] at column (i + p)·n + (j + q)."""
    k = w.shape[0]
    m = n - k + 1
    c = np.zeros((m * m, n * n), np.float32)
    for i in range(m):
        for j in range(m):
            for p in range(k):
                for q in range(k):
                    c[i * m + j, (i + p) * n + (j + q)] = w[p, q]
    return c


def transposed_output_size(n, k, stride, padding, output_padding):
    """Exercise 3.2: conv2d's n = (H' + 2p − k)/s + 1 solved for H', plus output_padding."""
    return (n - 1) * stride - 2 * padding + k + output_padding


def bilinear_tent(f):
    """Exercise 3.3: 2f − f mod 2 taps, 1 at the centre, falling by 1/f per tap."""
    size = 2 * f - f % 2
    return 1 - np.abs(np.arange(size) - (size - 1) / 2) / f
