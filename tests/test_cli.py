"""`segen-jax`: train / resume / eval round trip, --help, and one-line errors for bad options."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from segen_jax import checkpoint, cli


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "segen_jax.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_train_resume_eval_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--out", str(out), "--batch-size", "16", "--no-progress"]
    assert cli.main(["train", "classifier", "--steps", "4", *common]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["step"] == 4 and "test_accuracy" in first
    assert checkpoint.latest_step(out / "checkpoints") == 4
    assert (out / "curves.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config == {"model": "classifier", "seed": 0, "batch_size": 16, "lr": 2e-3,
                      "schedule_steps": 4}

    # A larger --steps on the same folder resumes from checkpoint 4.
    assert cli.main(["train", "classifier", "--steps", "8", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [4, 8]
    assert checkpoint.latest_step(out / "checkpoints") == 8

    assert cli.main(["eval", "classifier", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) == {"accuracy"} and 0.0 <= result["accuracy"] <= 1.0
    assert result["accuracy"] == pytest.approx(rows[-1]["test_accuracy"])


def test_the_cli_offers_every_recipe():
    from segen_jax.recipes import RECIPES
    assert cli.MODELS == tuple(RECIPES)


def test_segmenter_train_and_eval_print_the_segmentation_metrics(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert cli.main(["train", "tinyfcn", "--steps", "2", "--out", str(out), "--batch-size", "4",
                     "--no-progress"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"test_mean_iou", "test_pixel_accuracy", "test_boundary_f1"} <= set(last)
    assert cli.main(["eval", "tinyfcn", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert set(result) == {"mean_iou", "pixel_accuracy", "boundary_f1"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert result["mean_iou"] == pytest.approx(last["test_mean_iou"])


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    (out).mkdir()
    (out / "config.json").write_text(json.dumps(
        {"model": "classifier", "seed": 0, "batch_size": 16, "lr": 0.002, "schedule_steps": 4}))
    assert cli.main(["train", "classifier", "--steps", "8", "--out", str(out), "--lr", "0.1"]) == 2
    assert "--lr 0.1 differs from the run" in capsys.readouterr().err


def test_console_script_is_installed():
    script = pathlib.Path(sys.executable).parent / "segen-jax"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout and "eval" in result.stdout


def test_help_documents_every_option():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for option in ("--steps", "--out", "--seed", "--batch-size", "--lr"):
        assert option in result.stdout
    assert "--out" in run_cli("eval", "--help").stdout


@pytest.mark.parametrize("args, message", [
    (["train", "resnet", "--steps", "3", "--out", "{tmp}"], "invalid choice: 'resnet'"),
    (["train", "classifier", "--steps", "-3", "--out", "{tmp}"], "--steps: must be >= 0, got -3"),
    (["train", "classifier", "--steps", "3", "--out", "{tmp}/file.txt/run"], "is not a writable folder"),
    (["train", "classifier", "--steps", "3", "--out", "{tmp}", "--lr", "0"], "--lr: must be > 0"),
    (["eval", "classifier", "--out", "{tmp}/empty"], "holds no trained classifier"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_options_exit_with_one_line(tmp_path, args, message):
    (tmp_path / "file.txt").write_text("not a folder")
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("segen-jax: error:"), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_leaves_the_environment_alone(tmp_path, capsys):
    """The CLI runs in-process here; an environment variable it set (e.g. MPLBACKEND) would
    leak into the notebook kernels that nbval starts later in the same test session."""
    before = dict(os.environ)
    cli.main(["train", "classifier", "--steps", "1", "--out", str(tmp_path / "r"),
              "--batch-size", "8", "--no-progress"])
    assert dict(os.environ) == before
