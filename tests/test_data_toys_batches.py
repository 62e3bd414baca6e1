"""The 2-D toy mixtures and the resumable batch iterator."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from segen_jax.data import batches, grid_of_gaussians, ring_of_gaussians, steps_per_epoch


def test_ring_centres_lie_on_the_circle_and_samples_near_them():
    toy = ring_of_gaussians(4000, modes=8, radius=2.0, sigma=0.02, seed=1)
    assert toy.samples.shape == (4000, 2) and toy.samples.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(toy.centers, axis=1), 2.0, rtol=1e-6)
    # Every sample is within 6 sigma of some centre, and the per-axis spread is sigma.
    d = toy.samples[:, None, :] - toy.centers[None]
    nearest = np.argmin((d ** 2).sum(-1), axis=1)
    offset = toy.samples - toy.centers[nearest]
    assert np.abs(offset).max() < 6 * toy.sigma
    assert abs(offset.std() - 0.02) < 0.002
    # The 8 modes are equally likely: counts within 5 standard errors of n/8.
    counts = np.bincount(nearest, minlength=8)
    assert np.all(np.abs(counts - 500) < 5 * np.sqrt(4000 * (1 / 8) * (7 / 8)))


def test_grid_centres():
    toy = grid_of_gaussians(10, side=5, spacing=2.0, seed=0)
    assert toy.centers.shape == (25, 2)
    assert sorted(set(toy.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert toy.sigma == 0.05


def test_toys_are_deterministic_from_the_seed():
    a, b = ring_of_gaussians(100, seed=3), ring_of_gaussians(100, seed=3)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, ring_of_gaussians(100, seed=4).samples)


@pytest.mark.parametrize("call, match", [
    (lambda: ring_of_gaussians(-1), "n must be >= 0, got -1"),
    (lambda: ring_of_gaussians(10, modes=0), "modes must be >= 1, got 0"),
    (lambda: ring_of_gaussians(10, sigma=0.0), "sigma must be > 0"),
    (lambda: ring_of_gaussians(10, radius=-1.0), "radius must be > 0"),
    (lambda: grid_of_gaussians(10, side=0), "side must be >= 1, got 0"),
    (lambda: grid_of_gaussians(10, spacing=0), "spacing must be > 0"),
])
def test_toys_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_toys_wrong_type():
    with pytest.raises(TypeError, match="n must be an int, got float"):
        ring_of_gaussians(10.0)


@given(n=st.integers(1, 40), batch_size=st.integers(1, 40), drop=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_each_epoch_serves_every_example_once(n, batch_size, drop, seed):
    if drop and batch_size > n:
        return
    x = np.arange(n)
    per_epoch = steps_per_epoch(n, batch_size, drop_remainder=drop)
    served = list(batches(x, batch_size, seed=seed, drop_remainder=drop, epochs=2))
    assert len(served) == 2 * per_epoch
    for epoch in range(2):
        seen = np.concatenate(served[epoch * per_epoch:(epoch + 1) * per_epoch])
        assert len(seen) == ((n // batch_size) * batch_size if drop else n)
        assert len(set(seen.tolist())) == len(seen)  # no example twice in an epoch
        if not drop:
            assert sorted(seen.tolist()) == list(range(n))


@given(n=st.integers(1, 30), batch_size=st.integers(1, 30), start=st.integers(0, 25),
       seed=st.integers(0, 1000))
def test_starting_at_a_step_continues_the_same_sequence(n, batch_size, start, seed):
    batch_size = min(batch_size, n)
    full = list(batches(np.arange(n), batch_size, seed=seed, epochs=4))
    resumed = list(batches(np.arange(n), batch_size, seed=seed, epochs=4, start_step=start))
    assert len(resumed) == max(len(full) - start, 0)
    for a, b in zip(full[start:], resumed):
        np.testing.assert_array_equal(a, b)


def test_structures_are_kept_and_rows_stay_paired():
    x, y = np.arange(20).reshape(10, 2), np.arange(10) * 10
    for xb, yb in batches((x, y), 4, seed=0, epochs=1):
        assert xb.shape == (4, 2) and xb.flags.c_contiguous
        np.testing.assert_array_equal(xb[:, 0] * 5, yb)
    first = next(batches({"image": x, "label": y}, 3))
    assert set(first) == {"image", "label"}
    np.testing.assert_array_equal(first["image"][:, 0] * 5, first["label"])


def test_unshuffled_order_and_remainder():
    out = list(batches(np.arange(7), 3, shuffle=False, drop_remainder=False, epochs=1))
    assert [o.tolist() for o in out] == [[0, 1, 2], [3, 4, 5], [6]]


def test_forever_by_default():
    it = batches(np.arange(5), 2)
    assert len([next(it) for _ in range(50)]) == 50


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(batch_size=11), ValueError, r"batch_size must be <= the number of examples \(10\)"),
    (dict(batch_size=2, start_step=-1), ValueError, "start_step must be >= 0, got -1"),
    (dict(batch_size=2, epochs=-1), ValueError, "epochs must be None or an int >= 0"),
    (dict(batch_size=2.5), TypeError, "batch_size must be an int, got float"),
])
def test_batches_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        batches(np.arange(10), **kwargs)  # raises on the call, before the first batch


def test_batches_mismatched_lengths():
    with pytest.raises(ValueError, match=r"same first dimension, got shapes \[\(10,\), \(9,\)\]"):
        batches((np.arange(10), np.arange(9)), 2)
