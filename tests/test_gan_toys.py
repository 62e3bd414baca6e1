"""Mode-collapse experiments: seeds trained side by side are the runs each seed gives alone,
the mixture sampler draws the mixture, a short run learns, bad arguments are named."""
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segen_jax import data
from segen_jax import gan_toys
from segen_jax.gan_toys import (_padded, mixture_samples, train_toy_gans,
                                train_toy_gans_on_threads)

RING = data.ring_of_gaussians(0, modes=4, radius=1.0, sigma=0.05)


def test_mixture_samples_draw_each_mode_equally_with_sigma():
    centers = jnp.asarray([[0.0, 0.0], [10.0, 0.0]])
    x = np.asarray(mixture_samples(jax.random.key(0), centers, 0.5, 20000))
    right = x[:, 0] > 5
    assert abs(right.mean() - 0.5) < 0.02
    assert np.allclose(x[right].mean(0), [10, 0], atol=0.03)
    assert np.allclose(x[~right].std(0), 0.5, atol=0.02)


def test_padded_mixture_samples_only_the_real_centres():
    centers, count, sigma = _padded(RING)
    assert centers.shape == (32, 2) and int(count) == 4 and float(sigma) == pytest.approx(0.05)
    assert _padded(data.grid_of_gaussians(0, side=6))[0].shape == (64, 2)   # 36 -> 64 rows
    x = np.asarray(mixture_samples(jax.random.key(1), centers, sigma, 10000, count=count))
    nearest = np.linalg.norm(x[:, None] - RING.centers[None], axis=-1).argmin(1)
    assert np.linalg.norm(x, axis=1).min() > 0.5          # none from the zero padding rows
    assert np.allclose(np.bincount(nearest, minlength=4) / len(x), 0.25, atol=0.02)


@pytest.mark.parametrize("count", [0, 5])
def test_mixture_samples_count_must_fit_the_centres(count):
    with pytest.raises(ValueError, match=rf"count must be in \[1, 4\].*got {count}"):
        mixture_samples(jax.random.key(0), jnp.asarray(RING.centers), 0.05, 10, count=count)


def test_shapes_snapshots_and_history():
    run = train_toy_gans(RING, seeds=(0, 1), steps=40, snapshots=2, n_eval=300)
    assert run.steps.tolist() == [20, 40]
    assert run.samples.shape == (2, 2, 300, 2)
    assert len(run.coverage) == 2 and all(len(c) == 2 for c in run.coverage)
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} <= set(run.history)
    assert run.history["d_loss"].shape == (2, 40)
    assert run.seconds > 0


@pytest.mark.parametrize("options", [dict(loss="non-saturating"),
                                     dict(loss="wgan-gp", n_critic=2),
                                     dict(loss="minimax", pack=2)])
def test_seeds_side_by_side_equal_each_seed_alone(options):
    both = train_toy_gans(RING, seeds=(3, 4), steps=30, snapshots=1, n_eval=200, **options)
    alone = train_toy_gans(RING, seeds=(4,), steps=30, snapshots=1, n_eval=200, **options)
    np.testing.assert_allclose(both.samples[1], alone.samples[0], atol=1e-4)
    assert not np.allclose(both.samples[0], both.samples[1], atol=1e-2)   # seeds differ


def test_runs_on_threads_equal_each_run_alone():
    grid = data.grid_of_gaussians(0, side=3, spacing=2.0, sigma=0.05)
    jobs = {"ring": (RING, dict(loss="non-saturating")),
            "grid": (grid, dict(loss="non-saturating")),     # the ring's configuration at once
            "grid wgan": (grid, dict(loss="wgan-gp", n_critic=2)),
            "ring pac": (RING, dict(loss="minimax", pack=2))}
    small = dict(seeds=(0, 1), steps=20, snapshots=2, n_eval=200)
    together = train_toy_gans_on_threads(
        {name: (dataset, {**options, **small}) for name, (dataset, options) in jobs.items()})
    assert list(together) == list(jobs)
    for name, (dataset, options) in jobs.items():
        alone = train_toy_gans(dataset, **options, **small)
        np.testing.assert_array_equal(together[name].samples, alone.samples)
        np.testing.assert_array_equal(together[name].history["d_loss"], alone.history["d_loss"])
        assert together[name].coverage == alone.coverage
    assert not np.allclose(together["ring"].samples, together["ring pac"].samples, atol=1e-2)


def test_runs_on_threads_overlap(monkeypatch):
    # two runs must be inside train_toy_gans at the same time, or the barrier times out
    barrier = threading.Barrier(2, timeout=20)

    def meeting(dataset, **options):
        barrier.wait()
        return options["steps"]

    monkeypatch.setattr(gan_toys, "train_toy_gans", meeting)
    jobs = {name: (RING, dict(steps=steps, snapshots=1)) for name, steps in (("a", 1), ("b", 2))}
    assert train_toy_gans_on_threads(jobs, workers=2) == {"a": 1, "b": 2}


@pytest.mark.parametrize("jobs, workers, error, match", [
    ({}, 2, TypeError, "jobs must be a non-empty dict"),
    ([RING], 2, TypeError, "jobs must be a non-empty dict.*got list of length 1"),
    ({"a": RING}, 2, TypeError, r"jobs\['a'\] must be a \(dataset, options dict\) pair"),
    ({"a": (RING, dict(stepz=2))}, 2, TypeError, r"jobs\['a'\]: .*stepz"),
    ({"a": (RING, dict(steps=2, snapshots=1))}, 0, ValueError, "workers must be an int >= 1"),
])
def test_on_threads_bad_arguments_are_named(jobs, workers, error, match):
    with pytest.raises(error, match=match):
        train_toy_gans_on_threads(jobs, workers=workers)


def test_on_threads_checks_every_job_before_any_run(monkeypatch):
    started = []
    monkeypatch.setattr(gan_toys, "train_toy_gans", lambda dataset, **o: started.append(o))
    with pytest.raises(ValueError, match="lr must be a finite number > 0") as caught:
        train_toy_gans_on_threads({"good": (RING, dict(steps=2, snapshots=1)),
                                   "bad": (RING, dict(lr=-1.0))})
    assert started == []
    assert "jobs['bad']" in "".join(caught.value.__notes__)


def test_on_threads_a_failing_run_names_its_job_and_stops_the_rest(monkeypatch):
    started = []

    def run(dataset, **options):
        started.append(options["steps"])
        time.sleep(0.05)                      # 39 runs would take 2 s; the failure stops them
        if options["steps"] == 2:
            raise FloatingPointError("the generators produced NaN")
        return options["steps"]

    monkeypatch.setattr(gan_toys, "train_toy_gans", run)
    jobs = {f"job {steps}": (RING, dict(steps=steps, snapshots=1)) for steps in range(1, 40)}
    with pytest.raises(FloatingPointError, match="produced NaN") as caught:
        train_toy_gans_on_threads(jobs, workers=1)
    assert "jobs['job 2']" in "".join(caught.value.__notes__)
    assert len(started) < 39                  # the runs not yet started were cancelled


def test_a_short_run_moves_samples_onto_the_modes():
    run = train_toy_gans(RING, seeds=(0,), steps=1200, snapshots=4, lr=1e-3, n_eval=1000)
    modes, hq = run.coverage[0][-1]
    assert modes >= 3 and hq > 0.3, run.coverage
    untrained = train_toy_gans(RING, seeds=(0,), steps=1, snapshots=1, n_eval=1000)
    assert untrained.coverage[0][0][1] < 0.1 < hq      # the samples moved onto the modes


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss="vanilla"), "loss must be one of"),
    (dict(seeds=()), "seeds must be a non-empty"),
    (dict(seeds=(0.5,)), "seeds must be a non-empty"),
    (dict(steps=10, snapshots=3), r"steps \(10\) must be a multiple of snapshots \(3\)"),
    (dict(batch_size=63, pack=2), r"batch_size \(63\) must be divisible by pack \(2\)"),
    (dict(n_critic=0), "n_critic must be an int >= 1"),
    (dict(lr=-1e-3), "lr must be a finite number > 0, got -0.001"),
    (dict(lr="fast"), "lr must be a finite number > 0"),
    (dict(lr=float("nan")), "lr must be a finite number > 0"),
    (dict(betas=(0.5,)), r"betas must be two numbers in \[0, 1\)"),
    (dict(betas=(0.5, 1.0)), r"betas must be two numbers in \[0, 1\)"),
    (dict(lr_decay="yes"), "lr_decay must be True or False"),
    (dict(gp_weight=True), "gp_weight must be a finite number >= 0"),
    (dict(gp_weight=-0.1), "gp_weight must be a finite number >= 0"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_toy_gans(RING, **kwargs)


def test_dataset_must_be_a_toy():
    with pytest.raises(TypeError, match="dataset must be a data.Toy2D"):
        train_toy_gans(np.zeros((10, 2)))


def test_numpy_seeds_are_accepted():
    run = train_toy_gans(RING, seeds=np.arange(2), steps=2, snapshots=1, n_eval=50)
    assert run.samples.shape == (2, 1, 50, 2)
