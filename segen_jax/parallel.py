"""Data parallelism over every visible device: one mesh axis "data", batch sharded, state
replicated. The same code runs on 1 CPU, 8 GPUs or a TPU slice; with several processes
(multi-host), call `initialize()` first in each process and every process sees the global mesh.

With a batch of B examples on D devices, each device gets B/D examples; XLA inserts the
all-reduce of the gradients (a mean over the batch is a mean over the devices' partial sums).
Tests simulate devices with XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis "data" over `devices` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh: devices must hold at least one device, got none")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Every array of `tree` copied to every device of `mesh` (parameters, optimizer state)."""
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            # With several processes, device_put of a typed key onto the global mesh raises
            # (JAX 0.10.2); its raw uint32 data goes through, then is wrapped back into a key.
            data = jax.device_put(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.device_put(x, sharding)

    return jax.tree.map(put, tree)


def shard_batch(batch, mesh: Mesh):
    """Split each array of `batch` along its first (batch) axis over the mesh's "data" axis.

    Single process: `batch` holds the global batch. Several processes: each passes its own
    part (the process-local rows) and gets back the global array.
    """
    n = mesh.shape[DATA_AXIS]
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)

    def put(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % local_devices:
            raise ValueError(f"shard_batch: the batch size must be divisible by the number of "
                             f"devices ({n}; {local_devices} in this process), got an array of "
                             f"shape {x.shape}; choose a batch size that is a multiple of {n}")
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)


def initialize(coordinator_address: str, num_processes: int, process_id: int, *,
               cpu_collectives: str = "gloo"):
    """Start multi-host JAX: call once per process before any other JAX call.

    coordinator_address: "host:port" of process 0. On CPU, collectives across processes use
    `cpu_collectives` ("gloo"); GPUs and TPUs use their own interconnect. On a cluster that
    JAX detects (SLURM, TPU pods), `jax.distributed.initialize()` with no arguments suffices.
    """
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
