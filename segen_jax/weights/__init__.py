"""Trained weights shipped with the package, so chapters can show well-trained results on a CPU.

Each model name of `segen_jax.recipes.RECIPES` may have, in this folder:
    <name>.msgpack   the model's parameters and batch-norm averages (nnx.Param and nnx.BatchStat
                     leaves as a nested dict of arrays),
                     written with flax.serialization.msgpack_serialize: no pickle
    <name>.json      how they were made: the `segen-jax train` command, training wall time,
                     machine, library versions, and the held-out metrics they reached
`segen-jax export NAME --out DIR` writes both from a finished `segen-jax train` run;
`load(NAME)` rebuilds today's model and fills in the parameters; `segen-jax eval NAME
--pretrained` evaluates them. tests/test_weights.py checks that every shipped file still loads
and reproduces its recorded metrics.
"""
import json
import os
import pathlib
import platform

import jax
import numpy as np
from flax import nnx, serialization

FOLDER = pathlib.Path(__file__).resolve().parent


def available():
    """Names of the models with shipped weights (both files present), sorted."""
    return sorted(p.stem for p in pathlib.Path(FOLDER).glob("*.msgpack") if p.with_suffix(".json").exists())


def _paths(name, folder):
    """(<folder>/<name>.msgpack, <folder>/<name>.json); folder None: this package folder."""
    folder = pathlib.Path(FOLDER if folder is None else folder)
    return folder / f"{name}.msgpack", folder / f"{name}.json"


def info(name, *, folder=None):
    """The record of how NAME's shipped weights were made (the <name>.json file) as a dict."""
    _, record = _paths(name, folder)
    if not record.exists():
        raise FileNotFoundError(f"weights.info: no shipped weights for {name!r} in "
                                f"{str(record.parent)!r}; available: {available() or 'none'}")
    return json.loads(record.read_text())


_SAVED = (nnx.Param, nnx.BatchStat)   # parameters, and batch norm's running averages


def _params(model):
    return nnx.to_pure_dict(nnx.state(model, _SAVED))


def load(name, *, folder=None):
    """Today's NAME model (recipes.RECIPES[name].model) with the shipped parameters, in eval
    mode (batch norm uses the shipped running averages; call .train() to fine-tune)."""
    from segen_jax.recipes import RECIPES

    if name not in RECIPES:
        raise ValueError(f"weights.load: name must be one of {sorted(RECIPES)}, got {name!r}")
    params_path, _ = _paths(name, folder)
    if not params_path.exists():
        raise FileNotFoundError(f"weights.load: no shipped weights for {name!r} "
                                f"({str(params_path)!r} is missing); available: "
                                f"{available() or 'none'}; `segen-jax export` writes them")
    model = RECIPES[name].model(nnx.Rngs(0))
    expected = _params(model)
    try:
        stored = serialization.msgpack_restore(params_path.read_bytes())
    except Exception as err:  # noqa: BLE001 - any decoding failure means a damaged file
        raise ValueError(f"weights.load: {str(params_path)!r} is not a msgpack parameter file "
                         f"({type(err).__name__}: {err})") from None
    want = {jax.tree_util.keystr(k): np.shape(v)
            for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): np.shape(v)
           for k, v in jax.tree_util.tree_leaves_with_path(stored)}
    if want != got:
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        shapes = [f"{k}: stored {got[k]}, model {want[k]}" for k in sorted(set(want) & set(got))
                  if want[k] != got[k]][:3]
        raise ValueError(f"weights.load: {str(params_path)!r} does not fit today's {name} model "
                         f"(missing {missing}, unexpected {extra}, other shapes {shapes}); "
                         "retrain and export it again")
    state = nnx.state(model, _SAVED)
    nnx.replace_by_pure_dict(state, stored)
    nnx.update(model, state)
    model.eval()   # batch norm on the shipped running averages (a no-op for models without)
    return model


def _machine():
    """CPU model name (from /proc/cpuinfo where there is one), core count, architecture."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.machine()}"


def save(name, model, record, *, folder=None):
    """Write <name>.msgpack (model's parameters) and <name>.json (record, plus machine and
    versions) into folder; returns their paths."""
    import segen_jax

    params_path, record_path = _paths(name, folder)
    params_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = jax.tree.map(np.asarray, _params(model))
    params_path.write_bytes(serialization.msgpack_serialize(arrays))
    full = {"model": name, **record, "machine": _machine(), "versions": segen_jax.versions()}
    record_path.write_text(json.dumps(full, indent=2) + "\n")
    return params_path, record_path
