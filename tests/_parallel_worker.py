"""Subprocess entry point for tests/test_parallel.py: trains a tiny NNX MLP with
`segen_jax.train.train` over `parallel.data_mesh()` and prints one JSON line, prefixed RESULT.

    python _parallel_worker.py local                 # every visible device (set XLA_FLAGS)
    python _parallel_worker.py multihost ADDR N ID   # process ID of N, coordinator ADDR

Every run sees the same global batches (32 rows, the same seed); a process of a multi-host
run feeds only its own rows of each (process-local data), as `train` expects.
"""
import json
import sys

GLOBAL_BATCH = 32
STEPS = 20


def main(argv):
    mode = argv[0]
    if mode == "multihost":
        from segen_jax import parallel
        address, n, pid = argv[1], int(argv[2]), int(argv[3])
        parallel.initialize(address, n, pid)  # before any other JAX call
    elif mode != "local":
        raise SystemExit(f"unknown mode {mode!r}")

    import jax
    import numpy as np
    import optax
    from flax import nnx

    from segen_jax import parallel
    from segen_jax.data import batches
    from segen_jax.train import nnx_state, nnx_step, train

    rng = np.random.default_rng(0)
    x_all = rng.normal(size=(128, 6)).astype(np.float32)
    y_all = (x_all[:, 0] + 0.5 * x_all[:, 1] > 0).astype(np.int32)

    class Tiny(nnx.Module):
        def __init__(self, *, rngs):
            self.a = nnx.Linear(6, 16, rngs=rngs)
            self.b = nnx.Linear(16, 2, rngs=rngs)

        def __call__(self, x):
            return self.b(jax.nn.relu(self.a(x)))

    def loss_fn(model, batch, key):
        x, y = batch
        # Noise from the (replicated) key on a sharded x: must not depend on the sharding.
        x = x + 0.01 * jax.random.normal(key, x.shape)
        logits = model(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), {}

    model = Tiny(rngs=nnx.Rngs(0))
    graphdef, state = nnx_state(model, nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param), seed=0)
    step = nnx_step(graphdef, loss_fn)
    mesh = parallel.data_mesh()

    pid, nproc = jax.process_index(), jax.process_count()
    rows = GLOBAL_BATCH // nproc

    def data(start):  # this process's rows of each global batch
        for x, y in batches((x_all, y_all), GLOBAL_BATCH, seed=1, start_step=start):
            yield x[pid * rows:(pid + 1) * rows], y[pid * rows:(pid + 1) * rows]

    result = {"device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
              "process_count": nproc, "process_index": pid,
              "mesh_shape": dict(mesh.shape)}

    # How a batch is laid out: sharded over every device of the mesh, B/D rows per device.
    first = next(data(0))
    sharded = parallel.shard_batch(first, mesh)
    result["batch_global_shape"] = list(sharded[0].shape)
    result["batch_device_set"] = len(sharded[0].sharding.device_set)
    result["batch_shard_shapes"] = sorted({tuple(s.data.shape) for s in sharded[0].addressable_shards})
    global_x = next(batches((x_all, y_all), GLOBAL_BATCH, seed=1))[0]
    result["shards_hold_their_rows"] = all(  # each device's shard = its rows of the global batch
        np.array_equal(np.asarray(s.data), global_x[s.index]) for s in sharded[0].addressable_shards)

    state, history = train(step, state, data, steps=STEPS, mesh=mesh, log_every=1, progress=False)
    result["steps"] = [row["step"] for row in history]
    result["losses"] = [row["loss"] for row in history]
    result["grad_norms"] = [row["grad_norm"] for row in history]
    leaves = jax.tree.leaves(state)
    result["state_replicated"] = all(
        leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == jax.device_count()
        for leaf in leaves)
    result["state_leaves"] = len(leaves)

    # A batch of 12 rows does not split over 8 devices (12 % 8 = 4).
    if jax.local_device_count() == 8:
        try:
            parallel.shard_batch((np.zeros((12, 6), np.float32),), mesh)
            result["indivisible_error"] = "no error raised"
        except ValueError as e:
            result["indivisible_error"] = str(e)

    print("RESULT " + json.dumps(result), flush=True)
    if mode == "multihost":
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
