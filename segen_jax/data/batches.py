"""A minibatch iterator that is shuffled from a seed and can start at any step (resume).

Step s (counted from 0 over all epochs) serves batch b = s mod S of epoch e = s div S, where S
is the number of batches per epoch; epoch e visits the examples in the order
`np.random.default_rng([seed, e]).permutation(N)`. So the batch at step s depends only on
(seed, s), and `batches(..., start_step=s)` continues a run exactly where it stopped.
"""
import math

import numpy as np


def steps_per_epoch(n: int, batch_size: int, *, drop_remainder: bool = True) -> int:
    """S = floor(N / B) when the last partial batch is dropped, else ceil(N / B)."""
    return n // batch_size if drop_remainder else math.ceil(n / batch_size)


def batches(data, batch_size: int, *, seed: int = 0, shuffle: bool = True,
            drop_remainder: bool = True, epochs=None, start_step: int = 0):
    """An iterator over minibatches of `data`, in the same structure; arguments are checked
    on the call, before the first batch.

    data: an array, or a tuple/list/dict of arrays, all with the same first dimension N.
    batch_size: B >= 1 (B <= N when drop_remainder).
    epochs: how many passes over the data; None repeats forever.
    start_step: the first step to serve (0 = from the start), for resuming.

    Yields numpy arrays of shape (B, ...) (the last batch of an epoch has N mod B rows when
    drop_remainder=False), C-contiguous and ready for `jax.device_put`.
    """
    arrays, rebuild = _flatten(data)
    n = len(arrays[0])
    for i, array in enumerate(arrays):
        if array.ndim == 0 or len(array) != n:
            shapes = [tuple(a.shape) for a in arrays]
            raise ValueError(f"batches: data must be arrays with the same first dimension, got "
                             f"shapes {shapes} (array {i} differs)")
    for arg, value in (("batch_size", batch_size), ("seed", seed), ("start_step", start_step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"batches: {arg} must be an int, got {type(value).__name__}")
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if drop_remainder and batch_size > n:
        raise ValueError(f"batches: batch_size must be <= the number of examples ({n}) when "
                         f"drop_remainder=True, got {batch_size}")
    if n == 0:
        raise ValueError("batches: data must hold at least one example, got N = 0")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0):
        raise ValueError(f"batches: epochs must be None or an int >= 0, got {epochs!r}")
    if start_step < 0:
        raise ValueError(f"batches: start_step must be >= 0, got {start_step}")

    per_epoch = steps_per_epoch(n, batch_size, drop_remainder=drop_remainder)
    return _generate(arrays, rebuild, batch_size, per_epoch, seed, shuffle, epochs, start_step)


def _generate(arrays, rebuild, batch_size, per_epoch, seed, shuffle, epochs, step):
    n = len(arrays[0])
    while epochs is None or step < epochs * per_epoch:
        epoch, b = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        while b < per_epoch and (epochs is None or step < epochs * per_epoch):
            index = order[b * batch_size:(b + 1) * batch_size]
            yield rebuild([np.ascontiguousarray(a[index]) for a in arrays])
            b += 1
            step += 1


def _flatten(data):
    if isinstance(data, dict):
        keys = list(data)
        return [np.asarray(data[k]) for k in keys], lambda xs: dict(zip(keys, xs))
    if isinstance(data, (tuple, list)):
        if not data:
            raise ValueError("batches: data must hold at least one array, got an empty "
                             f"{type(data).__name__}")
        return [np.asarray(a) for a in data], tuple
    return [np.asarray(data)], lambda xs: xs[0]
