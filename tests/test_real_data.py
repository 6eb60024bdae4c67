"""End-to-end checks on the real IDX files: the quick recipes must show the shortcut.

Models are trained once per test session into a shared cache and reused by the
later tests, as a user's cache would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from biaskit import api
from biaskit.cli import main

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def real_env(monkeypatch, shared_cache, real_data_dir):
    monkeypatch.setenv("BIASKIT_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("BIASKIT_DATA_DIR", str(real_data_dir))
    return real_data_dir


def trained_metrics(recipe_name: str, dataset: str) -> dict:
    recipe = api.get_recipe(recipe_name, "quick", dataset)
    trained, _ = api.train_recipe(recipe, seed=0, progress=False)
    return trained.metadata["metrics"]


# Fashion-MNIST's follow rate is lower because green and dark green (and cyan and
# teal) differ only in brightness, and the lazy model uses shape to tell them apart.
@pytest.mark.parametrize("dataset, follow_floor", [("fashion-mnist", 0.80), ("mnist", 0.90)])
def test_lazy_quick_follows_colour(real_env, dataset, follow_floor):
    metrics = trained_metrics("lazy", dataset)
    assert metrics["val"]["accuracy"] >= 0.95
    assert metrics["test"]["accuracy"] <= 0.20
    assert metrics["counterfactual"]["follow_rate"] >= follow_floor


@pytest.mark.parametrize("dataset, floor", [("fashion-mnist", 0.85), ("mnist", 0.95)])
def test_control_quick_learns_shape(real_env, dataset, floor):
    metrics = trained_metrics("control", dataset)
    assert metrics["test"]["accuracy"] >= floor
    assert metrics["counterfactual"] is None


def test_fashion_split_sizes_and_cues(real_env):
    data = api.build_data(api.get_recipe("lazy", "quick"), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (48000, 12000, 10000)
    # 95% get their own colour by construction; 1 in 10 of the other 5% draws it by chance.
    assert data.train.aligned.float().mean().item() == pytest.approx(0.955, abs=0.003)
    assert not data.test.aligned.any()
    assert torch.equal(data.test.cue_values, (data.test.labels + 5) % 10)


def test_same_seed_same_tensors(real_env):
    recipe = api.get_recipe("lazy", "quick", "mnist")
    first = api.build_data(recipe, seed=3)
    second = api.build_data(recipe, seed=3)
    other = api.build_data(recipe, seed=4)
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.val.cue_values, second.val.cue_values)
    assert not torch.equal(first.train.labels, other.train.labels)


def test_cli_train_reuses_checkpoint(real_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "lazy", "--dataset", "mnist", "-q", "--out", str(tmp_path)])
    assert done.value.code == 0
    output = capsys.readouterr().out
    assert "run folder:" in output
    run_dir = Path(output.rsplit("run folder:", 1)[1].strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["test"]["accuracy"] <= 0.20
    assert (run_dir / "confusion-test.png").stat().st_size > 0


def test_cli_attack_reports_success(real_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "attack", "pgd-torchattacks", "--model", "lazy", "--dataset", "mnist",
              "-p", "images=32", "-q", "--out", str(tmp_path)])
    assert done.value.code == 0
    output = capsys.readouterr().out
    assert "targeted success" in output
    assert "already on the target" in output
    run_dir = Path(output.rsplit("run folder:", 1)[1].strip())
    results = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= results["targeted_success_rate"] <= 1.0
    assert results["max_linf"] <= 0.05 + 1e-6
    assert 0.0 <= results["target_before_attack_rate"] <= results["targeted_success_rate"] + 1e-6


def test_cli_gradcam_main_job(real_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "probe", "gradcam", "--model", "lazy", "-p", "images=200", "-q", "--out", str(tmp_path)])
    assert done.value.code == 0
    output = capsys.readouterr().out
    run_dir = Path(output.rsplit("run folder:", 1)[1].strip())
    results = json.loads((run_dir / "metrics.json").read_text())
    lazy, control = results["models"]["studied"], results["models"]["compare"]
    assert (run_dir / "gradcam-grid.png").stat().st_size > 10_000
    # The lazy model reads colour, so its accuracy collapses on conflicting images; the control's does not.
    assert lazy["aligned"]["accuracy"] - lazy["conflicting"]["accuracy"] >= 0.5
    assert abs(control["aligned"]["accuracy"] - control["conflicting"]["accuracy"]) <= 0.05
    # Relative to its area, the lazy model's map weighs the flat stroke interior more than the control's.
    assert lazy["conflicting"]["lift"]["interior"] > control["conflicting"]["lift"]["interior"]
