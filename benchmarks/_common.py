"""Shared helpers: timing windows (median of interleaved repeats), environment notes, tables."""
import argparse
import collections
import datetime
import glob
import json
import os
import pathlib
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

import numpy as np


def cpu_model() -> str:
    """`lscpu`'s model name (or platform.processor() where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_record(torch) -> dict:
    """The keys every train-step result records besides its numbers: device, PyTorch's thread
    count, versions and the date."""
    import jax

    return {"device": f"{jax.default_backend()}: {cpu_model()}, {os.cpu_count()} cores",
            "torch_threads": torch.get_num_threads(),
            "versions": {"python": platform.python_version(),
                         **{n: version(n) for n in ("jax", "jaxlib", "flax", "optax", "torch")}},
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def environment(extra=()) -> str:
    """A markdown list: date, versions, CPU, cores and the load average right now."""
    names = ["jax", "jaxlib", "flax", "optax", *extra]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `python -m {_module_name()}` (python = {sys.executable})",
        f"- python {platform.python_version()}, " + ", ".join(f"{n} {version(n)}" for n in names),
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores (os.cpu_count()), {platform.machine()}",
        f"- load average (1, 5, 15 min) at start: {load} (later lines: the mean CPU use of other "
        "processes while this one ran, from /proc/stat minus getrusage)",
    ]
    return "\n".join(lines)


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0])


def _cpu_seconds():
    """(busy CPU seconds of the whole machine, CPU seconds of this process) so far."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...: busy = all but idle, iowait
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy, own.ru_utime + own.ru_stime


_last = [time.monotonic(), *_cpu_seconds()]
DISTURBED_CORES = 0.25


def load_now() -> str:
    """The load average (it counts this process's own threads too) and, since the previous
    call (or the import), the mean number of cores busy with *other* processes."""
    now, (busy, own) = time.monotonic(), _cpu_seconds()
    wall, busy0, own0 = now - _last[0], _last[1], _last[2]
    _last[:] = [now, busy, own]
    others = max(0.0, (busy - busy0) - (own - own0)) / max(wall, 1e-9)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    note = (" (**disturbed**: another process held a core; PyTorch's OpenMP threads suffer most; "
            "rerun on an idle machine)" if others > DISTURBED_CORES else "")
    return (f"load average {load}; other processes used {others:.2f} of {os.cpu_count()} cores "
            f"over the last {wall:.0f} s{note}")


def calibrate(run, *, target_s: float, minimum: int = 10) -> int:
    """Steps per timing window so that one window lasts about target_s (run(n) runs n steps)."""
    n = minimum
    while True:
        t = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - t
        if elapsed > 0.2 * target_s or n >= 1_000_000:
            return max(minimum, int(n * target_s / max(elapsed, 1e-9)))
        n *= 4


def interleaved_windows(runs: dict, steps: dict, *, repeats: int) -> dict:
    """Seconds per step of each run, one list entry per window.

    runs[name](n) runs n steps and returns only once they are finished (block_until_ready).
    The windows go round-robin over the runs, so a burst of load from another process hits
    every variant alike; report the median.
    """
    per_step = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run(steps[name])
            per_step[name].append((time.perf_counter() - t) / steps[name])
    return per_step


def rates(runs: dict, *, per_call: float = 1.0, repeats: int, target_s: float = 1.0,
          minimum: int = 10):
    """Two or more variants of one step timed against each other: `calibrate` each run to
    windows of about target_s, `interleaved_windows` over them, and per_call / the median
    seconds per call (per_call = the batch size gives img/s, 1 gives steps/s).
    Returns ({name: rate}, {name: spread of its windows})."""
    counts = {name: calibrate(run, target_s=target_s, minimum=minimum)
              for name, run in runs.items()}
    per_step = interleaved_windows(runs, counts, repeats=repeats)
    return ({name: per_call / median(v) for name, v in per_step.items()},
            {name: spread(v) for name, v in per_step.items()})


def model_list(choices):
    """An argparse `type` for --models: a comma-separated list, each one of `choices`."""
    def parse(text):
        models = text.split(",")
        unknown = [m for m in models if m not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(choices)}")
        return models
    return parse


def median(values) -> float:
    return float(statistics.median(values))


def spread(values) -> str:
    """min..max of a list of seconds-per-step, as a relative spread around the median."""
    m = median(values)
    return f"±{100 * (max(values) - min(values)) / 2 / m:.0f}%"


def _numeric(cell) -> bool:
    text = str(cell).replace(",", "").replace("n/a", "0").split(" ")[0].lstrip("+-").rstrip("%x")
    try:
        float(text)
        return True
    except ValueError:
        return False


def table(header, rows) -> str:
    """A markdown table; columns whose cells all start with a number are right-aligned."""
    right = [all(_numeric(r[i]) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mnist_batches(batch_size: int, count: int, *, flat: bool = False):
    """`count` fixed batches (x, y) of the shipped MNIST digits, as numpy arrays."""
    from segen_jax.data import load_mnist

    images, labels = load_mnist("train")
    if flat:
        images = images.reshape(len(images), -1)
    out = []
    for i in range(count):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        out.append((np.ascontiguousarray(images[sl]), np.ascontiguousarray(labels[sl])))
    return out


def call_runner(fn, is_jax: bool):
    """run(n): n calls of fn(); for JAX, waits for the last result (block_until_ready)."""
    def run(n):
        for _ in range(n):
            out = fn()
        if is_jax:
            import jax
            jax.block_until_ready(out)
    return run


RESULTS = pathlib.Path(__file__).parent / "results"


def add_torch_compile(runs, make_run):
    """runs["torch_compile"] = make_run() if its first call (torch.compile's trace and
    compile, then one step) works; returns the record: {"torch_compile_first_call_s": s} or
    {"torch_compile": "failed: ..."} (the row is then left out, not the whole benchmark)."""
    start = time.perf_counter()
    try:
        run = make_run()
        run(1)
    except Exception as err:    # inductor needs a C++ compiler; say why and go on
        first_line = (str(err).splitlines() or [""])[0][:200]
        return {"torch_compile": f"failed: {type(err).__name__}: {first_line}"}
    runs["torch_compile"] = run
    return {"torch_compile_first_call_s": round(time.perf_counter() - start, 1)}


def compile_columns(rate, compiled, unit="img_s"):
    """The torch.compile keys of a result: its rate and the library's ratio to it (None when
    not asked for or failed), and the first call's seconds or why it failed."""
    ok = "torch_compile" in rate
    return {f"torch_compile_{unit}": round(rate["torch_compile"], 2 if unit == "steps_s" else 1)
            if ok else None,
            "ratio_vs_torch_compile": round(rate["segen"] / rate["torch_compile"], 3) if ok else None,
            **compiled}


def bench_main(argv, *, doc, module, measure, result_path, min_batch, why):
    """The command line that gan_step and vae_step share: --batch (in [min_batch, 1000], `why`
    says why), --quick (3 windows of 0.5 s instead of 7 of 1 s), --torch-compile (add
    torch.compile's step), --save (write RESULTS / result_path(batch)); prints
    measure(batch, repeats=, window=, torch_compile=) as one JSON line."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="3 windows of 0.5 s")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time the PyTorch step under torch.compile (NCHW)")
    parser.add_argument("--save", action="store_true",
                        help=f"write benchmarks/results/{result_path('<batch>')}")
    args = parser.parse_args(argv)
    if not min_batch <= args.batch <= 1000:
        parser.error(f"--batch must be in [{min_batch}, 1000] ({why}), got {args.batch}")
    repeats, window = (3, 0.5) if args.quick else (7, 1.0)
    result = measure(args.batch, repeats=repeats, window=window,
                     torch_compile=args.torch_compile)
    result["command"] = f"python -m benchmarks.{module} " + " ".join(
        sys.argv[1:] if argv is None else argv)
    print(json.dumps(result))
    if args.save:
        path = RESULTS / result_path(args.batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def op_kind(name: str) -> str:
    """An XLA op's kind: its name without the instance number ('fusion.3' -> 'fusion',
    'ynn_fusion_7' -> 'ynn_fusion')."""
    return re.sub(r"[._]\d+$", "", name)


def xla_op_times(run, by="kind"):
    """(wall seconds, {op: ms}) of run() (which must block until its results are ready) under
    jax.profiler: each XLA:CPU op's duration summed over every thread, grouped by op_kind
    (by="kind") or by the op's own name in the compiled HLO module (by="name"). Uses
    jax._src.profiler.ProfileData, which is not public API. An asynchronous op (XLA's Eigen
    convolutions) counts only its start event; its end is a separate "end: <op>" event."""
    import jax
    from jax._src.profiler import ProfileData
    if by not in ("kind", "name"):
        raise ValueError(f"xla_op_times: by must be 'kind' or 'name', got {by!r}")
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            start = time.perf_counter()
            run()
            wall = time.perf_counter() - start
        data = ProfileData.from_file(glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[0])
    per_op = collections.defaultdict(float)
    for plane in data.planes:
        for line in plane.lines:
            if line.name.startswith("tf_XLA"):
                for event in line.events:
                    if not event.name.startswith(("ThunkExecutor", "SlinkyThreadPool")):
                        key = op_kind(event.name) if by == "kind" else event.name
                        per_op[key] += event.duration_ns / 1e6
    return wall, dict(per_op)


def hlo_ops(compiled_text: str) -> dict:
    """{instruction name: "shape opcode (the JAX op it came from)"} of a compiled module's text
    (`jitted.lower(...).compile().as_text()`), to name the ops of xla_op_times(by="name")."""
    ops = {}
    pattern = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (\S+) ([\w-]+)\(")
    for line in compiled_text.splitlines():
        match = pattern.match(line)
        if match:
            name, opcode = match.group(1), match.group(3)
            shape = re.sub(r"\{[^}]*\}", "", match.group(2))     # without the layout
            source = re.search(r'op_name="([^"]*)"', line)
            ops[name] = f"{shape} {opcode}" + (f" ({source.group(1)})" if source else "")
    return ops
