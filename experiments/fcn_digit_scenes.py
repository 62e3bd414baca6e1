"""What limits FCN-8s on digit scenes: one training run per call, with diagnostics.

    python -m experiments.fcn_digit_scenes --steps 3200 --batch-size 4 --init classifier \
        --n-train 6000 --label-dilation 3 --overlap no

trains `FCN(11, "8s")` with the recipe's loss and optimizer (Adam, cosine decay) and prints
the held-out scores, the training-set mIoU (overfitting), the per-class IoU, the
digit-vs-background IoU (finding the digits) and the fraction of digit pixels found as a digit
but given the wrong digit (recognising them). Chapter 3's table of experiments comes from
these runs; each row there names its arguments. The defaults are the table's first row (the
plain FCN-8s the chapter starts from); the command above is the recipe's data and batch.
"""
import argparse
import json
import time

import numpy as np
from flax import nnx

from segen_jax import data, metrics, weights
from segen_jax.cli import _int_at_least, _positive_float
from segen_jax.models.fcn import FCN, from_classifier
from segen_jax.recipes import (SCENES, adam_cosine, predict, segmentation_loss,
                               segmentation_metrics)
from segen_jax.train import nnx_model, train


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {value}")
    return value


def build_model(args, rngs):
    model = FCN(11, "8s", rngs=rngs)
    if args.init == "classifier":
        from_classifier(model, weights.load("classifier"))
    if args.norm == "group":           # GroupNorm(8 groups) after every backbone conv
        for block in model.blocks:
            for i, conv in enumerate(block):
                norm = nnx.GroupNorm(conv.out_features, num_groups=8, rngs=rngs)
                block[i] = nnx.Sequential(conv, norm)
    if args.dropout:                   # dropout after fc6 and fc7, as in Long et al.'s VGG
        model.fc6 = nnx.Sequential(model.fc6, nnx.Dropout(args.dropout, rngs=rngs))
        model.fc7 = nnx.Sequential(model.fc7, nnx.Dropout(args.dropout, rngs=rngs))
    return model


def evaluation_model(graphdef, state):
    model = nnx_model(graphdef, state)
    model.eval()                       # dropout off
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=_int_at_least(1), default=400)
    parser.add_argument("--batch-size", type=_int_at_least(1), default=32)
    parser.add_argument("--lr", type=_positive_float, default=1e-3)
    parser.add_argument("--n-train", type=_int_at_least(1), default=2000)
    parser.add_argument("--label-dilation", type=_int_at_least(0), default=2)
    parser.add_argument("--overlap", choices=["yes", "no"], default="yes",
                        help="yes: the generator's default layout (1-3 digits of scale 0.8-1.6, "
                             "overlapping); no: the recipe's (boxes apart, scale 0.8-1.1)")
    parser.add_argument("--init", choices=["random", "classifier"], default="random")
    parser.add_argument("--norm", choices=["none", "group"], default="none")
    parser.add_argument("--dropout", type=_rate, default=0.0, help="a rate in [0, 1)")
    parser.add_argument("--eval-every", type=_int_at_least(1), default=None)
    args = parser.parse_args(argv)

    layout = {} if args.overlap == "yes" else {k: SCENES[k] for k in ("overlap", "scale")}
    (x_train, y_train), (x_test, y_test) = data.load_digit_scenes(
        n_train=args.n_train, n_test=500, label_dilation=args.label_dilation, **layout)
    build = adam_cosine(lambda rngs: build_model(args, rngs), segmentation_loss)
    graphdef, state, step = build(0, args.lr, args.steps)
    test_miou = lambda s: {"test_mean_iou": metrics.mean_iou(
        predict(evaluation_model(graphdef, s), x_test), y_test, 11)[0]}
    start = time.perf_counter()
    state, history = train(step, state, lambda s: data.batches(
        (x_train, y_train), args.batch_size, seed=0, start_step=s), steps=args.steps,
        progress=False, log_every=50, eval_fn=test_miou if args.eval_every else None,
        eval_every=args.eval_every)
    seconds = time.perf_counter() - start
    model = evaluation_model(graphdef, state)
    predicted = predict(model, x_test)
    found = (predicted > 0) & (y_test > 0)
    report = {
        "args": vars(args),
        "train_seconds": round(seconds, 1),
        "test": {k: round(float(v), 4) for k, v in segmentation_metrics(predicted, y_test).items()},
        "train_mean_iou": round(float(metrics.mean_iou(predict(model, x_train[:500]),
                                                       y_train[:500], 11)[0]), 4),
        "per_class_iou": np.round(metrics.mean_iou(predicted, y_test, 11)[1], 3).tolist(),
        "digit_vs_background_iou": round(float(metrics.mean_iou(
            (predicted > 0).astype(np.int32), (y_test > 0).astype(np.int32), 2)[1][1]), 4),
        "wrong_digit_fraction": (round(metrics.wrong_class_fraction(predicted, y_test, 11), 4)
                                 if found.any() else None),   # None: no digit pixel found
        "test_curve": [(r["step"], round(r["test_mean_iou"], 4)) for r in history
                       if "test_mean_iou" in r],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
