"""Solutions to the exercises of notebooks/02_pooling.ipynb (try them first!)."""
import numpy as np


def max_pool(x, k):
    """Exercise 2.1: k x k max pooling, stride k, of a 2-D x: the elementwise max of the k·k
    strided views x[p::k, q::k], each cropped to the (H // k, W // k) whole windows."""
    h, w = x.shape[0] // k, x.shape[1] // k
    views = [x[p::k, q::k][:h, :w] for p in range(k) for q in range(k)]
    return np.maximum.reduce(views)


def max_pool_backward(x, dy, k):
    """Exercise 2.2: dy[i, j] to the first maximum (row-major) of window (i, j), 0 elsewhere."""
    h, w = dy.shape
    dx = np.zeros(x.shape, np.float32)
    for i in range(h):
        for j in range(w):
            window = x[i * k:(i + 1) * k, j * k:(j + 1) * k]
            p, q = divmod(int(np.argmax(window)), k)      # np.argmax: the first maximum
            dx[i * k + p, j * k + q] += dy[i, j]
    return dx


def avg_pool_counts(n, k, stride, padding):
    """Exercise 2.3: window i covers i·s − p .. i·s − p + k − 1; count the part inside [0, n)."""
    starts = np.arange((n + 2 * padding - k) // stride + 1) * stride - padding
    return np.minimum(starts + k, n) - np.maximum(starts, 0)
