"""Held-out mIoU of a trained segmenter predicted in one pass, with a margin, and with shifted
copies (`recipes.predict_shift_average`): the numbers of chapter 3, section 5.4.

    python -m experiments.fcn_shift_average fcn8s --pretrained --shifts 0 2 4 6
    python -m experiments.fcn_shift_average fcn8s --out /tmp/runs/fcn8s_full   # a CLI run

prints one JSON line: the model, where its weights came from (and the run's step), and the
held-out mIoU of each way of predicting on the recipe's held-out scenes.
"""
import argparse
import json
import pathlib
import time

from segen_jax import metrics, weights
from segen_jax.cli import _int_at_least, _restore_run
from segen_jax.recipes import SEGMENTERS, digit_scene_data, predict, predict_shift_average
from segen_jax.train import nnx_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=sorted(SEGMENTERS))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained", action="store_true", help="the shipped weights")
    source.add_argument("--out", type=pathlib.Path, help="a folder `segen-jax train` wrote")
    parser.add_argument("--shifts", type=_int_at_least(0), nargs="+", default=[0, 4],
                        help="pixel offsets per axis (all pairs are used)")
    parser.add_argument("--margin", type=_int_at_least(0), default=8)
    parser.add_argument("--n-test", type=_int_at_least(1), default=500,
                        help="how many of the recipe's held-out scenes")
    args = parser.parse_args(argv)
    if args.pretrained:
        model, origin = weights.load(args.model), "shipped weights"
    else:
        _, graphdef, state, step = _restore_run(args)
        model, origin = nnx_model(graphdef, state), f"{args.out} at step {step}"
    _, (images, labels) = digit_scene_data()
    images, labels = images[:args.n_test], labels[:args.n_test]
    ways = {"one pass": lambda: predict(model, images),
            f"margin {args.margin}": lambda: predict_shift_average(
                model, images, shifts=(0,), margin=args.margin),
            f"margin {args.margin} + shifts {args.shifts}": lambda: predict_shift_average(
                model, images, shifts=args.shifts, margin=args.margin)}
    report = {"model": args.model, "weights": origin, "n_test": len(images), "mean_iou": {},
              "seconds": {}}
    for way, predicted in ways.items():
        start = time.perf_counter()
        report["mean_iou"][way] = round(float(metrics.mean_iou(predicted(), labels, 11)[0]), 4)
        report["seconds"][way] = round(time.perf_counter() - start, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
