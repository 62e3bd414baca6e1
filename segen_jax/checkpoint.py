"""Checkpoints of any pytree of arrays with orbax-checkpoint: no pickles, exact restore.

A checkpoint of `state` at step s is the folder DIR/checkpoints/<s>/ holding
- `arrays`: every leaf of the pytree (tensorstore/zarr, written by orbax), under the names
  leaf_00000, leaf_00001, ... in `jax.tree_util` flattening order;
- `meta`: JSON with the leaves' paths (e.g. "nnx/0/conv1a/kernel/value"), shapes and dtypes,
  plus whatever the caller adds (the loop stores the data position there).
Typed PRNG keys (`jax.random.key`) are saved as their raw uint32 key data and rewrapped on
restore. Restoring checks the stored paths and shapes against the template first, so restoring
into a different model fails with the first mismatched path and both shapes.
"""
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatch(ValueError):
    """The checkpoint does not fit the state it is restored into."""


def path_name(path) -> str:
    """'nnx/0/conv1a/kernel/value' for a jax.tree_util key path."""
    parts = []
    for entry in path:
        for attr in ("key", "idx", "name"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def _describe(state):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    paths = [path_name(p) for p, _ in leaves]
    arrays = [x for _, x in leaves]
    return paths, arrays, treedef


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _manager(directory, *, max_to_keep=None, create=False):
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(pathlib.Path(directory).absolute(), options=options)


def save(directory, step: int, state, *, extra: dict | None = None, max_to_keep: int = 2):
    """Write `state` (any pytree of arrays) as checkpoint `step` under `directory`.

    extra: JSON-serialisable metadata stored beside the arrays. Keeps the newest `max_to_keep`.
    """
    paths, arrays, _ = _describe(state)
    leaves = {}
    keys = {}
    for i, x in enumerate(arrays):
        if _is_key(x):
            keys[str(i)] = str(jax.random.key_impl(x))
            x = jax.random.key_data(x)
        leaves[f"leaf_{i:05d}"] = x
    meta = {"step": int(step), "paths": paths, "prng_key_leaves": keys,
            "shapes": [list(np.shape(x)) for x in leaves.values()],
            "dtypes": [str(x.dtype) for x in arrays], "extra": extra or {}}
    with _manager(directory, max_to_keep=max_to_keep, create=True) as manager:
        manager.save(int(step), args=ocp.args.Composite(arrays=ocp.args.StandardSave(leaves),
                                                        meta=ocp.args.JsonSave(meta)))
        manager.wait_until_finished()


def latest_step(directory):
    """The newest checkpoint step under `directory`, or None when there is none."""
    if not pathlib.Path(directory).is_dir():
        return None
    with _manager(directory) as manager:
        return manager.latest_step()


def restore(directory, template, *, step: int | None = None):
    """Load checkpoint `step` (default: the newest) into the structure of `template`.

    template: a pytree like the saved one (e.g. a freshly initialised state); only its
    structure, shapes, dtypes and shardings are used. Returns (state, extra).
    Raises FileNotFoundError when there is no checkpoint, CheckpointMismatch when the stored
    leaves do not match the template's paths and shapes.
    """
    step = latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"restore: no checkpoint under {str(directory)!r}")
    paths, arrays, treedef = _describe(template)
    with _manager(directory) as manager:
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        _check_fits(meta, paths, arrays, directory, step)
        abstract = {}
        for i, x in enumerate(arrays):
            data = jax.random.key_data(x) if _is_key(x) else x
            sharding = getattr(data, "sharding", None)
            abstract[f"leaf_{i:05d}"] = jax.ShapeDtypeStruct(np.shape(data), data.dtype,
                                                             sharding=sharding)
        loaded = manager.restore(step, args=ocp.args.Composite(
            arrays=ocp.args.StandardRestore(abstract)))["arrays"]
    leaves = []
    for i, x in enumerate(arrays):
        value = loaded[f"leaf_{i:05d}"]
        if _is_key(x):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(x))
        leaves.append(value if isinstance(x, jax.Array) else np.asarray(value))
    return jax.tree_util.tree_unflatten(treedef, leaves), meta.get("extra", {})


def _check_fits(meta, paths, arrays, directory, step):
    where = f"checkpoint {step} in {str(directory)!r}"
    stored = dict(zip(meta["paths"], meta["shapes"]))
    for i, (path, x) in enumerate(zip(paths, arrays)):
        shape = list(np.shape(jax.random.key_data(x)) if _is_key(x) else np.shape(x))
        if path not in stored:
            raise CheckpointMismatch(f"{where} has no parameter {path!r} (shape {tuple(shape)}) "
                                     "that the model being restored has: it was saved from a "
                                     "different model")
        if i >= len(meta["paths"]) or meta["paths"][i] != path or stored[path] != shape:
            saved = stored[path]
            raise CheckpointMismatch(f"{where} does not fit this model: parameter {path!r} has "
                                     f"shape {tuple(saved)} in the checkpoint and "
                                     f"{tuple(shape)} in the model")
    if len(meta["paths"]) != len(paths):
        extra = [p for p in meta["paths"] if p not in set(paths)]
        raise CheckpointMismatch(f"{where} has parameters the model lacks, first {extra[0]!r} "
                                 f"(shape {tuple(stored[extra[0]])}): it was saved from a "
                                 "different model")
