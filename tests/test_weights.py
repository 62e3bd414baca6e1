"""Shipped weights: save/load round trip, clear errors, and every shipped file still loads into
today's model and reproduces the metrics recorded beside it."""
import json

import jax
import numpy as np
import pytest
from flax import nnx, serialization

from segen_jax import cli, weights
from segen_jax.recipes import RECIPES


def params(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_save_then_load_gives_the_same_parameters_and_a_record(tmp_path):
    model = RECIPES["tinyfcn"].model(nnx.Rngs(7))
    paths = weights.save("tinyfcn", model, {"command": "test", "metrics": {"mean_iou": 0.5}},
                         folder=tmp_path)
    assert [p.name for p in paths] == ["tinyfcn.msgpack", "tinyfcn.json"]
    loaded = weights.load("tinyfcn", folder=tmp_path)
    for a, b in zip(params(loaded), params(model)):
        np.testing.assert_array_equal(a, b)
    record = weights.info("tinyfcn", folder=tmp_path)
    assert record["metrics"] == {"mean_iou": 0.5} and record["versions"]["jax"] == jax.__version__
    assert "cores" in record["machine"]
    # a fresh model with another seed differs, so the equality above is the file's doing
    fresh = params(RECIPES["tinyfcn"].model(nnx.Rngs(0)))
    assert not all(np.allclose(a, b) for a, b in zip(fresh, params(model)))


def test_damaged_mismatched_and_missing_files_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no shipped weights for 'fcn8s'"):
        weights.load("fcn8s", folder=tmp_path)
    with pytest.raises(ValueError, match=r"name must be one of"):
        weights.load("resnet", folder=tmp_path)
    (tmp_path / "tinyfcn.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"is not a msgpack parameter file"):
        weights.load("tinyfcn", folder=tmp_path)
    stored = nnx.to_pure_dict(nnx.state(RECIPES["tinyfcn"].model(nnx.Rngs(0)), nnx.Param))
    stored["classify"]["kernel"] = np.zeros((1, 1, 16, 5), np.float32)   # 5 classes, not 11
    (tmp_path / "tinyfcn.msgpack").write_bytes(serialization.msgpack_serialize(stored))
    with pytest.raises(ValueError, match=r"does not fit today's tinyfcn model .*classify.*"
                                         r"stored \(1, 1, 16, 5\), model \(1, 1, 16, 11\)"):
        weights.load("tinyfcn", folder=tmp_path)


def test_export_writes_the_run_and_its_metrics(tmp_path, capsys):
    run, shipped = tmp_path / "run", tmp_path / "shipped"
    assert cli.main(["train", "classifier", "--steps", "3", "--out", str(run), "--batch-size", "8",
                     "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["export", "classifier", "--out", str(run), "--to", str(shipped)]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = weights.info("classifier", folder=shipped)
    assert record["steps"] == 3 and record["train_seconds"] > 0
    assert record["command"].startswith("segen-jax train classifier --steps 3 ")
    assert record["metrics"] == printed["metrics"]
    # the held-out evaluation at the end of training (step 3) is the run's learning curve
    assert [row["step"] for row in record["history"]] == [3]
    assert record["history"][0]["accuracy"] == pytest.approx(record["metrics"]["accuracy"])
    model = weights.load("classifier", folder=shipped)
    assert RECIPES["classifier"].evaluate_model(model) == record["metrics"]


@pytest.mark.parametrize("name", weights.available())
def test_shipped_weights_load_and_reproduce_their_metrics(name, capsys):
    """Recorded on the machine that trained them; another CPU may round a few logits the other
    way, so each metric may move by at most 0.005."""
    record = weights.info(name)
    assert cli.main(["eval", name, "--pretrained"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert set(measured) == set(record["metrics"])
    for key, value in record["metrics"].items():
        assert measured[key] == pytest.approx(value, abs=0.005), key


def test_eval_pretrained_without_shipped_weights_is_a_one_line_error(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setattr(weights, "FOLDER", tmp_path)
    assert cli.main(["eval", "fcn8s", "--pretrained"]) == 2
    assert "no shipped weights for 'fcn8s'" in capsys.readouterr().err
