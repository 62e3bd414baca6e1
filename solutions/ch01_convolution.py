"""Solutions to the exercises of notebooks/01_convolution.ipynb (try them first!)."""
import jax.numpy as jnp


def output_size(n, k, stride, padding, dilation):
    """Exercise 1.1: positions of a d(k−1)+1-wide window in n + 2p pixels, moved by s."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def im2col(x, k):
    """Exercise 1.2: (H, W, C) -> (H−k+1, W−k+1, k·k·C), patches flattened (p, q, c)."""
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    slices = [x[p:p + h, q:q + w, :] for p in range(k) for q in range(k)]  # each (h, w, C)
    return jnp.concatenate(slices, axis=-1)


def conv_weight_grad(x, dy):
    """Exercise 1.3: dL/dw[p, q] = Σ_{i,j} x[i+p, j+q] dy[i, j], a correlation of x with dy."""
    k_h, k_w = x.shape[0] - dy.shape[0] + 1, x.shape[1] - dy.shape[1] + 1
    return jnp.array([[jnp.sum(x[p:p + dy.shape[0], q:q + dy.shape[1]] * dy)
                       for q in range(k_w)] for p in range(k_h)])
