"""`segen-jax`: train and evaluate the course's models without a notebook.

    segen-jax train MODEL --steps N --out DIR [--seed S] [--batch-size B] [--lr LR]
    segen-jax eval MODEL (--out DIR | --pretrained)
    segen-jax export MODEL --out DIR [--to FOLDER]
    segen-jax sample GENERATOR (--out DIR | --pretrained) [--n 64] [--seed S] [--png PATH]

`train` writes DIR/metrics.jsonl, orbax checkpoints under DIR/checkpoints (every 1,000 steps
and at the end, the newest two kept), DIR/curves.png and DIR/config.json; run it again on the same DIR with a larger --steps to resume from the newest
checkpoint. `eval` prints one JSON line with the model's held-out metrics, of a run or of the
weights shipped in segen_jax/weights. `export` writes a run's newest parameters, the command
that trained them, its wall time and their metrics into segen_jax/weights (or FOLDER).
Mistakes in the options end with a one-line message and exit status 2.
"""
import argparse
import json
import pathlib
import sys
import time

MODELS = ("classifier", "tinyfcn", "fcn32s", "fcn16s", "fcn8s", "deeplabv3",
          "deeplabv3plus", "dcgan", "wgan-gp", "vae")   # = segen_jax.recipes.RECIPES
GENERATORS = ("dcgan", "wgan-gp", "vae")         # = segen_jax.recipes.GENERATORS


class UsageError(Exception):
    """A bad option: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _int_at_least(lowest):
    """An argparse type: a whole number >= lowest."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {value}")
        return value

    return parse


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def make_parser():
    parser = _Parser(prog="segen-jax", description="Train and evaluate the segen-jax models.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train MODEL, or resume it in --out DIR",
                                description="Train MODEL; resumes from DIR's newest checkpoint.")
    train.add_argument("model", choices=MODELS, help="which model: %(choices)s")
    train.add_argument("--steps", type=_int_at_least(0), required=True,
                       help="total number of training steps (a larger value resumes a run)")
    train.add_argument("--out", type=pathlib.Path, required=True,
                       help="output folder: metrics.jsonl, checkpoints/, curves.png, config.json")
    train.add_argument("--seed", type=_int_at_least(0), default=None,
                       help="seed for initialisation, data order and augmentation (default 0)")
    train.add_argument("--batch-size", type=_int_at_least(1), default=None,
                       help="examples per step (default: the model's, 64 for classifier, "
                            "4 for the segmenters)")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="peak learning rate (default: the model's, 2e-3 for classifier, "
                            "1e-3 for the segmenters)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate = commands.add_parser("eval", help="evaluate a run (--out DIR) or the shipped "
                                   "weights (--pretrained)",
                                   description="Print MODEL's held-out metrics as one JSON line.")
    evaluate.add_argument("model", choices=MODELS, help="which model: %(choices)s")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--out", type=pathlib.Path, help="the folder `segen-jax train` wrote")
    source.add_argument("--pretrained", action="store_true",
                        help="the weights shipped with the package (segen_jax/weights)")
    export = commands.add_parser("export", help="ship a run's weights with the package",
                                 description="Write MODEL's newest checkpoint in --out DIR as "
                                             "FOLDER/MODEL.msgpack + MODEL.json.")
    export.add_argument("model", choices=MODELS, help="which model: %(choices)s")
    export.add_argument("--out", type=pathlib.Path, required=True,
                        help="the folder `segen-jax train` wrote")
    export.add_argument("--to", type=pathlib.Path, default=None,
                        help="destination folder (default: the package's segen_jax/weights)")
    sample = commands.add_parser("sample", help="write a PNG grid of a generator's samples",
                                 description="Sample GENERATOR (batch norm in eval mode) and "
                                             "write the images as one PNG grid.")
    sample.add_argument("model", choices=GENERATORS, help="which generator: %(choices)s")
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--out", type=pathlib.Path, help="the folder `segen-jax train` wrote")
    source.add_argument("--pretrained", action="store_true",
                        help="the weights shipped with the package (segen_jax/weights)")
    sample.add_argument("--n", type=_int_at_least(1), default=64, help="how many samples (64)")
    sample.add_argument("--seed", type=_int_at_least(0), default=0, help="noise seed (0)")
    sample.add_argument("--png", type=pathlib.Path, default=None,
                        help="where to write the grid (default: DIR/samples.png with --out, "
                             "MODEL_samples.png here with --pretrained)")
    return parser


def main(argv=None) -> int:
    try:
        args = make_parser().parse_args(argv)
        if args.command == "train":
            return _train(args)
        if args.command == "export":
            return _export(args)
        if args.command == "sample":
            return _sample(args)
        return _evaluate(args)
    except UsageError as err:
        print(f"segen-jax: error: {err}", file=sys.stderr)
        return 2


def _writable_folder(path: pathlib.Path):
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".segen-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--out {str(path)!r} is not a writable folder ({err.strerror or err})")


def _config(args, defaults):
    """The run's settings: saved on the first run, reused (and checked) when resuming."""
    path = args.out / "config.json"
    given = {"seed": args.seed, "batch_size": args.batch_size, "lr": args.lr}
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["model"] != args.model:
            raise UsageError(f"--out {str(args.out)!r} holds a {saved['model']} run, not {args.model}")
        for name, value in given.items():
            if value is not None and value != saved[name]:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} {value} differs from the run in {str(args.out)!r} "
                                 f"({saved[name]}); use a new --out folder")
        return saved
    config = {"model": args.model, "seed": 0 if args.seed is None else args.seed,
              "batch_size": args.batch_size or defaults["batch_size"],
              "lr": args.lr or defaults["lr"], "schedule_steps": args.steps}
    path.write_text(json.dumps(config, indent=2) + "\n")
    return config


def _train(args) -> int:
    _writable_folder(args.out)
    import matplotlib.pyplot as plt

    from segen_jax import viz
    from segen_jax.recipes import RECIPES
    from segen_jax.train import train

    recipe = RECIPES[args.model]
    config = _config(args, recipe.defaults)
    # The learning-rate schedule spans the first run's --steps; a resumed run keeps it.
    graphdef, state, step = recipe.build(config["seed"], config["lr"], config["schedule_steps"])
    started = time.perf_counter()
    state, history = train(step, state, recipe.batches(config["batch_size"], config["seed"]),
                           steps=args.steps, out_dir=args.out, log_every=25,
                           eval_fn=lambda s: {f"test_{k}": v for k, v in recipe.evaluate(
                               graphdef, s, while_training=True).items()},
                           eval_every=250, checkpoint_every=1000,
                           progress=not args.no_progress, description=args.model)
    # wall time of all runs in this folder together (a resumed run adds its own)
    timing = args.out / "timing.json"
    seconds = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0
    timing.write_text(json.dumps({"seconds": round(seconds + time.perf_counter() - started, 1)}))
    if history:
        figure = viz.training_curves(history, title=f"segen-jax train {args.model}")
        figure.savefig(args.out / "curves.png", dpi=90, bbox_inches="tight")
        plt.close(figure)
    print(json.dumps({"model": args.model, **(history[-1] if history else {})}))
    return 0


def _restore_run(args):
    """(config, graphdef, state at the newest checkpoint) of the run in args.out."""
    from segen_jax import checkpoint
    from segen_jax.recipes import RECIPES

    config_path = args.out / "config.json"
    if not config_path.exists() or checkpoint.latest_step(args.out / "checkpoints") is None:
        raise UsageError(f"--out {str(args.out)!r} holds no trained {args.model}: run "
                         f"`segen-jax train {args.model} --steps N --out {args.out}` first")
    config = json.loads(config_path.read_text())
    if config["model"] != args.model:
        raise UsageError(f"--out {str(args.out)!r} holds a {config['model']} run, not {args.model}")
    graphdef, template, _ = RECIPES[args.model].build(config["seed"], config["lr"],
                                                      config["schedule_steps"])
    state, extra = checkpoint.restore(args.out / "checkpoints", template)
    return config, graphdef, state, int(extra["step"])


def _evaluate(args) -> int:
    from segen_jax.recipes import RECIPES

    recipe = RECIPES[args.model]
    if args.pretrained:
        from segen_jax import weights
        try:
            model = weights.load(args.model)
        except (FileNotFoundError, ValueError) as err:   # missing, damaged or outdated file
            raise UsageError(str(err)) from None
        print(json.dumps(recipe.evaluate_model(model)))
        return 0
    _, graphdef, state, _ = _restore_run(args)
    print(json.dumps(recipe.evaluate(graphdef, state)))
    return 0


def _export(args) -> int:
    from segen_jax import weights
    from segen_jax.recipes import RECIPES
    from segen_jax.train import nnx_model

    config, graphdef, state, step = _restore_run(args)
    model = nnx_model(graphdef, state)
    timing = args.out / "timing.json"
    seconds = json.loads(timing.read_text())["seconds"] if timing.exists() else None
    # The first run fixed the schedule (its --steps); a resumed run only continued it.
    first = (f"segen-jax train {args.model} --steps {config['schedule_steps']} --out {args.out} "
             f"--seed {config['seed']} --batch-size {config['batch_size']} --lr {config['lr']}")
    command = first if step == config["schedule_steps"] else \
        f"{first}, then resumed: segen-jax train {args.model} --steps {step} --out {args.out}"
    record = {"command": command,
              "steps": step, "schedule_steps": config["schedule_steps"],
              "train_seconds": seconds, "metrics": RECIPES[args.model].evaluate_model(model),
              "history": _held_out_history(args.out / "metrics.jsonl", up_to=step)}
    paths = weights.save(args.model, model, record, folder=args.to)
    print(json.dumps({"model": args.model, "files": [str(p) for p in paths],
                      "metrics": record["metrics"]}))
    return 0


def _held_out_history(path, *, up_to):
    """The run's held-out evaluations, [{"step": s, metric: value, ...}] (the rows of
    metrics.jsonl with test_ metrics, prefix dropped, steps <= up_to), so shipped weights
    carry their learning curve."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        held_out = {k[len("test_"):]: v for k, v in row.items() if k.startswith("test_")}
        if held_out and row["step"] <= up_to:
            rows.append({"step": row["step"], **held_out})
    return rows


def _sample(args) -> int:
    import matplotlib.pyplot as plt
    import numpy as np

    from segen_jax import viz, weights
    from segen_jax.recipes import RECIPES
    from segen_jax.train import nnx_model

    if args.pretrained:
        try:
            generator = weights.load(args.model)
        except (FileNotFoundError, ValueError) as err:
            raise UsageError(str(err)) from None
        png = args.png or pathlib.Path(f"{args.model}_samples.png")
    else:
        _, graphdef, state, _ = _restore_run(args)
        generator = nnx_model(graphdef, state)
        png = args.png or args.out / "samples.png"
    _writable_folder(png.parent if str(png.parent) else pathlib.Path("."))
    images = np.asarray(RECIPES[args.model].sample(generator, args.n, args.seed))
    figure = viz.image_grid(images, vmin=0, vmax=1,
                            title=f"{args.model}: {args.n} samples (seed {args.seed})")
    figure.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(figure)
    print(json.dumps({"model": args.model, "png": str(png), "n": args.n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
