"""The experiment scripts (chapter 3's tables, the DCGAN probes of issue 10) still run and
report what they promise."""
import json

from experiments import fcn_digit_scenes


def test_fcn_digit_scenes_reports_scores_and_diagnostics(capsys):
    fcn_digit_scenes.main(["--steps", "2", "--batch-size", "4", "--n-train", "8",
                           "--init", "classifier", "--norm", "group", "--dropout", "0.5",
                           "--overlap", "no", "--eval-every", "1"])
    report = json.loads(capsys.readouterr().out)
    assert report["args"]["init"] == "classifier" and report["args"]["steps"] == 2
    assert set(report["test"]) == {"mean_iou", "pixel_accuracy", "boundary_f1"}
    assert all(0 <= v <= 1 for v in report["test"].values())
    assert len(report["per_class_iou"]) == 11
    wrong = report["wrong_digit_fraction"]     # None when two steps found no digit pixel yet
    assert wrong is None or 0 <= wrong <= 1
    assert [step for step, _ in report["test_curve"]] == [1, 2]


def test_fcn_shift_average_reports_each_way_of_predicting(capsys):
    from experiments import fcn_shift_average
    fcn_shift_average.main(["fcn8s", "--pretrained", "--shifts", "0", "4", "--n-test", "8"])
    report = json.loads(capsys.readouterr().out)
    assert report["n_test"] == 8 and report["weights"] == "shipped weights"
    assert list(report["mean_iou"]) == ["one pass", "margin 8", "margin 8 + shifts [0, 4]"]
    assert all(0 < v <= 1 for v in report["mean_iou"].values())


def test_dcgan_probes_report_the_fd_of_the_run_and_its_averages(capsys):
    from experiments import dcgan_probes
    dcgan_probes.main(["--steps", "2", "--eval-every", "1", "--r1", "1", "--r1-samples", "8",
                       "--ema", "0.5"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    for row in rows:
        assert row["fd"] > 0 and row["fd_ema_0.5"] > 0 and row["r1_penalty"] >= 0
    # after one step the average is half the initial and half the trained generator: not either
    assert rows[0]["fd_ema_0.5"] != rows[0]["fd"]


def test_dcgan_probes_take_the_peak_rate_and_the_cosine_length(capsys):
    from experiments import dcgan_probes

    def fds(*options):
        dcgan_probes.main(["--steps", "2", "--eval-every", "1", *options])
        return [json.loads(line)["fd"] for line in capsys.readouterr().out.splitlines()]

    # η(0) = lr whatever the cosine's length; η(1) = 0.05·lr over 1 step, ≈ lr over 1,000
    short, long = fds("--schedule", "1"), fds("--schedule", "1000")
    assert short[0] == long[0] and short[1] != long[1]
    assert fds("--schedule", "1", "--lr", "0.0005")[0] != short[0]
    assert fds("--schedule", "1", "--seed", "1")[0] != short[0]     # other networks and batches
    assert fds("--schedule", "1", "--width", "8")[0] != short[0]    # narrower networks
    # D shown shifted and cut-out images trains G differently from the first step
    assert fds("--schedule", "1", "--shift", "2", "--cutout", "4")[0] != short[0]


def test_toy_gans_full_reports_modes_and_quality_per_seed_and_snapshot(capsys):
    from experiments import toy_gans_full
    toy_gans_full.main(["--steps", "8", "--toys", "ring", "--variants", "PacGAN2"])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["toy"] == "ring" and row["variant"] == "PacGAN2" and row["steps"] == [2, 4, 6, 8]
    assert len(row["modes"]) == len(row["high_quality_pct"]) == 3           # seeds 0, 1, 2
    assert all(len(s) == 4 and all(0 <= m <= 8 for m in s) for s in row["modes"])
    assert all(0 <= q <= 100 for s in row["high_quality_pct"] for q in s)
