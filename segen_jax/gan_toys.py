"""Mode-collapse experiments: GANs on 2-D mixtures of Gaussians, several seeds at once.

    run = train_toy_gans(ring_of_gaussians(0, radius=1.0, sigma=0.01), loss="non-saturating",
                         seeds=(0, 1, 2), steps=2000)
    run.coverage[s][t]   # (modes captured, fraction high quality) of seed s at snapshot t

One run trains len(seeds) generator/discriminator pairs (MLPs from models/gan.py) side by side:
their arrays are stacked on a leading seed axis and `gan_step` is `jax.vmap`ped over it, and
`steps // snapshots` steps are one `lax.scan`, compiled once and called `snapshots` times.
Scanning is the right choice for these tiny MLPs, where dispatching thousands of ~0.1 ms steps
from Python would cost more than the steps; it is not for conv nets on CPU (train.py).

Each step draws fresh real samples x ~ p = (1/M) Σ_m N(c_m, σ² I) in the step itself, so no
data set is held in memory: n_critic·batch_size samples for each seed.

`train_toy_gans_on_threads` runs several such runs at once on Python threads (each equal bit
for bit to the run alone), since one run of these small MLPs keeps only about one core busy.

After every chunk, `n_eval` samples of each generator are scored by
`metrics.mode_coverage(samples, centers, sigma)`: a sample is high quality within 3σ of its
nearest centre, a mode is captured when it holds at least one high-quality sample.
"""
import concurrent.futures
import functools
import inspect
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from segen_jax import metrics
from segen_jax.data.toys import Toy2D
from segen_jax.gan_step import LOSSES, gan_models, gan_step, gan_state
from segen_jax.models.gan import MLPDiscriminator, MLPGenerator


class ToyGANRun(NamedTuple):
    """steps (T,) the step of each snapshot; samples (S, T, n_eval, 2) float32; coverage[s][t]
    = (modes captured, high-quality fraction); history {name: (S, steps)} the step metrics
    (d_loss, g_loss, d_grad_norm, g_grad_norm, ...); seconds the wall time, compile
    included."""

    steps: np.ndarray
    samples: np.ndarray
    coverage: list
    history: dict
    seconds: float


def mixture_samples(key, centers, sigma, n, *, count=None):
    """n samples (n, d) of the equal-weight mixture (1/M) Σ_m N(centers[m], σ² I) of the first
    M = count rows of centers (default: all of them)."""
    if count is None:
        count = centers.shape[0]
    elif isinstance(count, (int, np.integer)) and not 1 <= count <= centers.shape[0]:
        raise ValueError(f"mixture_samples: count must be in [1, {centers.shape[0]}] (the rows "
                         f"of centers), got {count}")
    which_key, noise_key = jax.random.split(key)
    which = jax.random.randint(which_key, (n,), 0, count)
    return centers[which] + sigma * jax.random.normal(noise_key, (n, centers.shape[1]))


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_args(dataset, loss, seeds, steps, snapshots, batch_size, pack, n_critic, n_eval, lr,
                betas, lr_decay, gp_weight):
    fn = "train_toy_gans"
    if not isinstance(dataset, Toy2D):
        raise TypeError(f"{fn}: dataset must be a data.Toy2D (ring_of_gaussians or "
                        f"grid_of_gaussians), got {type(dataset).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"{fn}: loss must be one of {sorted(LOSSES)}, got {loss!r}")
    if not hasattr(seeds, "__len__") or len(seeds) == 0 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"{fn}: seeds must be a non-empty sequence of ints, got {seeds!r}")
    for name, value in (("steps", steps), ("snapshots", snapshots), ("batch_size", batch_size),
                        ("pack", pack), ("n_critic", n_critic), ("n_eval", n_eval)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{fn}: {name} must be an int >= 1, got {value!r}")
    if steps % snapshots:
        raise ValueError(f"{fn}: steps ({steps}) must be a multiple of snapshots ({snapshots})")
    if batch_size % pack:
        raise ValueError(f"{fn}: batch_size ({batch_size}) must be divisible by pack ({pack})")
    if not (_number(lr) and 0 < lr < float("inf")):
        raise ValueError(f"{fn}: lr must be a finite number > 0, got {lr!r}")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(
            _number(b) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"{fn}: betas must be two numbers in [0, 1), got {betas!r}")
    if not isinstance(lr_decay, bool):
        raise ValueError(f"{fn}: lr_decay must be True or False, got {lr_decay!r}")
    if not (_number(gp_weight) and 0 <= gp_weight < float("inf")):
        raise ValueError(f"{fn}: gp_weight must be a finite number >= 0, got {gp_weight!r}")


def train_toy_gans(dataset: Toy2D, *, loss="non-saturating", seeds=(0, 1, 2), steps=2000,
                   snapshots=4, batch_size=64, pack=1, n_critic=1, lr=1e-3, betas=(0.5, 0.9),
                   lr_decay=True, gp_weight=0.1, latent_dim=2, hidden=128, layers=3,
                   n_eval=2500) -> ToyGANRun:
    """Train one GAN per seed on `dataset`'s mixture (module docstring) with `gan_step`'s
    `loss`, PacGAN packing `pack` and `n_critic` discriminator updates per generator update,
    both networks with Adam(lr, betas), and for "wgan-gp" the penalty weight λ = gp_weight (0.1,
    the value of Gulrajani et al.'s 2-D experiments; 10 is theirs for images). With lr_decay
    both learning rates follow a cosine from lr to 0.05·lr over the run (the discriminator's
    over its n_critic·steps updates), which is what brings the samples within 3σ of the
    modes; without, they stay at lr. Returns a ToyGANRun."""
    _check_args(dataset, loss, seeds, steps, snapshots, batch_size, pack, n_critic, n_eval, lr,
                betas, lr_decay, gp_weight)
    seeds = tuple(int(s) for s in seeds)
    start = time.perf_counter()
    graphdef, init, run_chunk, draw = _programs(
        loss, steps, steps // snapshots, batch_size, pack, n_critic, float(lr),
        tuple(float(b) for b in betas), lr_decay,
        float(gp_weight) if loss == "wgan-gp" else 0.0, latent_dim, hidden, layers, n_eval)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    states = init(keys)
    data_keys = jax.vmap(lambda k: _streams(k)[2])(keys)
    mixture = _padded(dataset)
    samples, logs = [], []
    for _ in range(snapshots):
        (states, data_keys), logged = run_chunk(states, data_keys, *mixture)
        logs.append(jax.tree.map(np.asarray, logged))
        samples.append(np.asarray(draw(states, keys)))
    samples = np.stack(samples, axis=1)
    history = {name: np.concatenate([log[name] for log in logs], axis=0).T for name in logs[0]}
    if not np.all(np.isfinite(samples)):
        bad = [s for s, x in zip(seeds, samples) if not np.all(np.isfinite(x))]
        raise FloatingPointError(f"train_toy_gans: the generators of seeds {bad} produced NaN "
                                 f"or inf with loss {loss!r} at lr {lr}; try a smaller lr")
    coverage = [[metrics.mode_coverage(x, dataset.centers, dataset.sigma) for x in per_seed]
                for per_seed in samples]
    return ToyGANRun(np.arange(1, snapshots + 1) * (steps // snapshots), samples, coverage, history,
                     time.perf_counter() - start)


# to check a job's arguments before its run: bind them as train_toy_gans would, then
# _check_args on the ones it checks
_SIGNATURE = inspect.signature(train_toy_gans)
_CHECKED = tuple(inspect.signature(_check_args).parameters)


def train_toy_gans_on_threads(jobs, *, workers=2) -> dict:
    """{name: ToyGANRun} of `train_toy_gans(dataset, **options)` for every name: (dataset,
    options) of the dict `jobs`, `workers` runs at a time on Python threads; the runs start in
    the order of jobs and the result keeps that order. Each run is the run it gives alone,
    equal bit for bit: the same compiled programs on the same inputs. Why: these MLPs' ops are
    too small for XLA:CPU to spread over the cores, so one run keeps about one core busy, and a
    second run on another thread fills the other core of a 2-core CPU (JAX releases Python's
    GIL while XLA compiles and runs a program; tracing holds it). Chapter 5's eight runs of
    1,000 steps, compiles included, took 59.0 s against 77.7 s one after another (1.32x;
    `python -m benchmarks.toy_gans_threads`, 2026-12-08, 2-core AMD EPYC). A run's `seconds`
    is its own wall time, which overlaps the others'.

    Every job's arguments are checked before any run starts; the first run that fails stops
    the runs not yet started and its error is raised with a note naming its job. Runs of one
    configuration share its compile (the ring and the grid of one variant) only if they do
    not start side by side: list them apart in jobs."""
    fn = "train_toy_gans_on_threads"
    if not isinstance(jobs, dict) or not jobs:
        raise TypeError(f"{fn}: jobs must be a non-empty dict of name: (dataset, options dict), "
                        f"got {type(jobs).__name__} of length {_length(jobs)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"{fn}: workers must be an int >= 1, got {workers!r}")
    for name, job in jobs.items():
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[1], dict)):
            raise TypeError(f"{fn}: jobs[{name!r}] must be a (dataset, options dict) pair, got "
                            f"{type(job).__name__} of length {_length(job)}")
        try:
            bound = _SIGNATURE.bind(job[0], **job[1])
        except TypeError as error:
            raise TypeError(f"{fn}: jobs[{name!r}]: {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        try:
            _check_args(**{key: arguments[key] for key in _CHECKED})
        except (TypeError, ValueError) as error:
            error.add_note(f"in {fn}'s jobs[{name!r}]")
            raise
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    try:
        futures = {pool.submit(train_toy_gans, dataset, **options): name
                   for name, (dataset, options) in jobs.items()}
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                error = future.exception()
                error.add_note(f"in {fn}'s jobs[{futures[future]!r}]")
                raise error
        return {futures[future]: future.result() for future in futures}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _length(value):
    return len(value) if hasattr(value, "__len__") else "(none)"


def _streams(key):
    """A seed's four independent keys: (initialisation, the step's own, real data, evaluation
    noise)."""
    return jax.random.split(key, 4)


def _padded(dataset):
    """(centers (P, 2) padded with zeros to P = max(32, next power of 2) rows, the number of
    real centres, sigma): the mixture as arguments, so a ring and a grid share one compile."""
    count = len(dataset.centers)
    size = max(32, 1 << (count - 1).bit_length())
    centers = np.zeros((size, dataset.centers.shape[1]), np.float32)
    centers[:count] = dataset.centers
    return jnp.asarray(centers), jnp.int32(count), jnp.float32(dataset.sigma)


@functools.lru_cache(maxsize=8)
def _programs(loss, steps, chunk, batch_size, pack, n_critic, lr, betas, lr_decay,
              gp_weight, latent_dim, hidden, layers, n_eval):
    """(graphdef, init(keys) -> stacked states, run_chunk(states, data_keys, centers, count,
    sigma) -> ((states, data_keys), metrics (chunk, S)), draw(states, keys) -> samples), compiled
    once per configuration: XLA:CPU spends seconds compiling the scanned, vmapped step, more
    than a ring run takes."""
    def adam(model, updates):
        rate = optax.cosine_decay_schedule(lr, updates, alpha=0.05) if lr_decay else lr
        return nnx.Optimizer(model, optax.adam(rate, b1=betas[0], b2=betas[1]), wrt=nnx.Param)

    def build(key):
        init_key, step_key, _, _ = _streams(key)
        rngs = nnx.Rngs(init_key)
        g = MLPGenerator(latent_dim, hidden=hidden, layers=layers, rngs=rngs)
        d = MLPDiscriminator(2, hidden=hidden, layers=layers, pack=pack, rngs=rngs)
        graphdef, state = gan_state(g, d, adam(g, steps), adam(d, n_critic * steps))
        return graphdef, {**state, "key": step_key}

    graphdef, _ = build(jax.random.key(0))
    # compiler_options=None: the step runs inside run_chunk's jit and scan, and jax.jit takes
    # compiler options only at the top level (these MLPs have no convolutions to gain anyway)
    step = jax.vmap(gan_step(graphdef, loss, latent_dim=latent_dim, n_critic=n_critic,
                             pack=pack, gp_weight=gp_weight, compiler_options=None))

    @jax.jit
    def init(keys):
        return jax.vmap(lambda k: build(k)[1])(keys)

    @jax.jit
    def run_chunk(states, data_keys, centers, count, sigma):
        def body(carry, _):
            states, data_keys = carry
            split = jax.vmap(jax.random.split)(data_keys)
            real = jax.vmap(lambda k: mixture_samples(k, centers, sigma, n_critic * batch_size,
                                                      count=count))(split[:, 1])
            states, logged = step(states, real)
            return (states, split[:, 0]), logged
        return jax.lax.scan(body, (states, data_keys), length=chunk)

    @jax.jit
    def draw(states, keys):
        def one(state, key):
            generator, _ = gan_models(graphdef, state)
            return generator(jax.random.normal(_streams(key)[3], (n_eval, latent_dim)))
        return jax.vmap(one)(states, keys)

    return graphdef, init, run_chunk, draw
