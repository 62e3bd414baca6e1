"""Data parallelism (segen_jax.parallel) through the training loop: 8 simulated devices train
like 1, batches really are split over the devices, and two processes on localhost (gloo CPU
collectives) train like one process on the global batches.

Every JAX run happens in a subprocess (tests/_parallel_worker.py): the device count is fixed
when JAX starts (XLA_FLAGS=--xla_force_host_platform_device_count=8), and a multi-host process
must call `jax.distributed.initialize` before any other JAX call, so this file imports no JAX.
All runs train the same tiny MLP from the same seed on the same 32-row global batches.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("_parallel_worker.py")
ROOT = WORKER.parents[1]
TIMEOUT_S = 120
# float32 tolerance for "the same losses": D devices sum their B/D rows and an all-reduce adds
# the D partial sums, so the mean loss and the gradients are summed in another order than on
# one device; each step differs in the last bits (float32 eps = 1.2e-7) and Adam carries that
# into the next steps. Measured on this machine: max relative difference ~5e-7 over 20 steps.
# rtol 1e-5 leaves ~20x headroom, while a device training on its own shard only (or on other
# batches) moves the first loss by ~0.5. Adam is blind to the scale of the gradient, so the
# gradient norms are compared too: gradients summed over devices instead of averaged are 8x.
RTOL, ATOL = 1e-5, 1e-7


def _env(device_count=None):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["JAX_PLATFORMS"] = "cpu"
    if device_count is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
    return env


def _run_together(commands, tmp_path, *, env, timeout=TIMEOUT_S):
    """Start every command at once; wait for all of them (at most `timeout` s in total).

    If one fails, the others (which may wait forever on a collective) get 10 s, then are
    killed. Output goes to files, so a chatty process cannot block on a full pipe. Returns
    [(returncode, stdout, stderr)]; every process is dead when this returns.
    """
    procs, files = [], []
    try:
        for i, args in enumerate(commands):
            out = open(tmp_path / f"worker{i}.out", "w+")
            err = open(tmp_path / f"worker{i}.err", "w+")
            files += [out, err]
            procs.append(subprocess.Popen([sys.executable, str(WORKER), *args], cwd=ROOT,
                                          env=env, stdout=out, stderr=err,
                                          stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still running after {timeout} s: {commands}")
            if any(p.returncode not in (None, 0) for p in procs):
                deadline = min(deadline, time.monotonic() + 10)
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        results = []
        for p, i in zip(procs, range(len(procs))):
            results.append((p.returncode, (tmp_path / f"worker{i}.out").read_text(),
                            (tmp_path / f"worker{i}.err").read_text()))
        for f in files:
            f.close()
    return results


def _result(returncode, stdout, stderr):
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert returncode == 0 and len(lines) == 1, (
        f"worker failed (exit {returncode})\nstdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-3000:]}")
    return json.loads(lines[0][len("RESULT "):])


@pytest.fixture(scope="module")
def single_process_runs(tmp_path_factory):
    """The same training on 1 and on 8 simulated devices, both in one process each."""
    (one,), (eight,) = [
        _run_together([["local"]], tmp_path_factory.mktemp(f"devices{n}"), env=_env(n))
        for n in (1, 8)]
    return {1: _result(*one), 8: _result(*eight)}


def test_eight_devices_train_like_one(single_process_runs):
    one, eight = single_process_runs[1], single_process_runs[8]
    assert one["device_count"] == 1 and one["mesh_shape"] == {"data": 1}
    assert eight["device_count"] == 8 and eight["mesh_shape"] == {"data": 8}
    assert one["steps"] == eight["steps"] == list(range(1, 21))  # log_every=1: one row a step
    assert one["losses"][-1] < 0.5 * one["losses"][0]  # it trains, so the losses carry weight
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(eight["grad_norms"], one["grad_norms"], rtol=RTOL, atol=ATOL)


def test_eight_devices_shard_the_batch_and_replicate_the_state(single_process_runs):
    eight = single_process_runs[8]
    assert eight["batch_global_shape"] == [32, 6]
    assert eight["batch_device_set"] == 8
    assert eight["batch_shard_shapes"] == [[4, 6]]  # B/D = 32/8 rows on each device
    assert eight["shards_hold_their_rows"]
    assert eight["state_replicated"] and eight["state_leaves"] > 0
    one = single_process_runs[1]
    assert one["batch_shard_shapes"] == [[32, 6]] and one["state_replicated"]


def test_batch_size_not_divisible_by_the_devices(single_process_runs):
    message = single_process_runs[8]["indivisible_error"]  # shard_batch of 12 rows on 8 devices
    assert message is not None and message.startswith("shard_batch:")
    assert "(12, 6)" in message and "number of devices (8" in message
    assert "multiple of 8" in message


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(tmp_path, *extra):
    address = f"127.0.0.1:{_free_port()}"
    return _run_together([["multihost", address, "2", str(i), *extra] for i in range(2)],
                         tmp_path, env=_env())


def _check_two_processes_train_like_one(runs, reference):
    results = [_result(*run) for run in runs]
    for i, r in enumerate(results):
        assert (r["process_index"], r["process_count"]) == (i, 2)
        assert r["device_count"] == 2 and r["local_device_count"] == 1
        assert r["mesh_shape"] == {"data": 2}
        # Each process passed its 16 local rows; the global array holds all 32, one half on
        # each process's device, and this process's shard is its rows of the global batch.
        assert r["batch_global_shape"] == [32, 6] and r["batch_device_set"] == 2
        assert r["batch_shard_shapes"] == [[16, 6]] and r["shards_hold_their_rows"]
        assert r["state_replicated"]
        assert r["steps"] == list(range(1, 21))
    for metric in ("losses", "grad_norms"):
        assert results[0][metric] == results[1][metric]  # one replicated value, fetched twice
        np.testing.assert_allclose(results[0][metric], reference[metric], rtol=RTOL, atol=ATOL)


def test_two_processes_on_localhost_train_like_one(tmp_path, single_process_runs):
    """Two processes (gloo CPU collectives), one CPU device each, each feeding `train` its half
    of every global batch, give the losses of one process on the full batches. The state is
    used as `nnx_state` makes it: `parallel.replicate` must place its typed PRNG key on the
    global mesh too."""
    runs = _two_processes(tmp_path)
    _check_two_processes_train_like_one(runs, single_process_runs[1])
