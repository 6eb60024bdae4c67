"""End-to-end tests of the Python API and the command line (in-process) on tiny IDX data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchattacks

import biaskit
import biaskit.api
import biaskit.plugins
from biaskit import checkpoints
from biaskit.cli import main
from biaskit.errors import UsageError
from biaskit.recipes import Recipe
from biaskit.runs import RunContext
from biaskit.training import TrainSettings
from biaskit_plugins.attacks import TorchattacksPGD, pick_targets
from biaskit_plugins.datasets import FILES, load_idx_dataset
from conftest import make_tiny_base


pytestmark = pytest.mark.usefixtures("single_thread")


RECIPE = "tiny-lazy"
DATASET = "tiny-idx"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_idx(folder: Path) -> Path:
    """Write `make_tiny_base(200, 50)` as the four IDX files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    base = make_tiny_base(200, 50)
    arrays = {
        "train_images": base.train_images, "train_labels": base.train_labels,
        "test_images": base.test_images, "test_labels": base.test_labels,
    }
    for key, stem in FILES.items():
        write_idx(folder / stem, arrays[key].numpy())
    return folder


def tiny_dataset(data_dir: str | None = None, download: bool = False):
    """Tiny 10-class squares read from IDX files in a ``tiny-idx`` folder."""
    return load_idx_dataset(DATASET, [DATASET], [f"class{k}" for k in range(10)], "MNIST",
                            data_dir=data_dir, download=download)


def tiny_recipe(preset: str = "quick") -> Recipe:
    """A small-cnn trained for three steps on stroke-coloured tiny squares."""
    return Recipe(
        name=RECIPE, preset=preset, dataset=DATASET, bias="colour", model="small-cnn",
        model_params={"width": 4}, settings=TrainSettings(epochs=1, batch_size=32, lr=1e-2, max_steps=3),
        data_params={"aligned_ratio": 0.95, "test_offset": 5, "val_fraction": 0.2},
    )


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Register the tiny dataset and recipe on fresh process-wide registries; drop them afterwards."""
    write_tiny_idx(tmp_path / "data" / DATASET)
    monkeypatch.setenv("BIASKIT_DATA_DIR", str(tmp_path / "data"))
    biaskit.plugins.reset()
    registries = biaskit.plugins.registries()
    registries.datasets.add(DATASET, tiny_dataset)
    registries.recipes.add(RECIPE, tiny_recipe)
    yield registries
    biaskit.plugins.reset()


@pytest.fixture(autouse=True)
def restore_logging():
    """Undo the logging setup that each CLI call makes, so later tests see the default."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def train_calls(monkeypatch) -> list:
    """Count calls of the trainer that `biaskit.api` uses."""
    calls = []
    original = biaskit.api.train

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(biaskit.api, "train", counting)
    return calls


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return the exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def run_folder(output: str) -> Path:
    lines = [line for line in output.splitlines() if line.startswith("run folder: ")]
    assert len(lines) == 1
    return Path(lines[0].removeprefix("run folder: "))


def cached_checkpoint() -> Path:
    return biaskit.api.checkpoint_path(tiny_recipe(), 0)


def assert_one_error_line(err: str) -> None:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err


# train


def test_train_writes_run_folder(tiny, capsys, isolated_folders):
    code, out, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    assert code == 0, err
    folder = run_folder(out)
    assert folder.parent == isolated_folders / "runs"
    for name in ("config.json", "metrics.json", "confusion-val.png", "confusion-test.png", "summary.txt"):
        assert (folder / name).is_file(), name
    assert (folder / "confusion-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    config = json.loads((folder / "config.json").read_text())
    assert config["recipe"]["name"] == RECIPE
    assert config["device"] == "cpu"
    assert config["data"]["dataset"] == DATASET
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["model"] == f"{RECIPE}/quick"
    assert len(metrics["metrics"]["test"]["confusion"]) == 10
    summary = (folder / "summary.txt").read_text()
    assert summary.startswith(f"model: {RECIPE}/quick (small-cnn {{'width': 4}}) on {DATASET}")
    assert "accuracy: train " in out


def test_train_caches_checkpoint(tiny, capsys, train_calls):
    run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    assert len(train_calls) == 1
    checkpoint = cached_checkpoint()
    assert checkpoint.is_file()
    assert checkpoint.with_suffix(".json").is_file()


def test_train_reuses_checkpoint(tiny, capsys, train_calls):
    _, first, _ = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    stamp = cached_checkpoint().stat().st_mtime_ns
    code, second, _ = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    assert code == 0
    assert len(train_calls) == 1
    assert cached_checkpoint().stat().st_mtime_ns == stamp
    assert f"checkpoint: {cached_checkpoint()}" in second
    assert run_folder(first) != run_folder(second)


def test_train_retrain_flag(tiny, capsys, train_calls):
    run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    code, _, _ = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q", "--retrain")
    assert code == 0
    assert len(train_calls) == 2


def test_train_out_option(tiny, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q", "--out", str(tmp_path / "elsewhere"))
    assert code == 0
    assert run_folder(out).parent == tmp_path / "elsewhere"


def test_train_corrupt_cache_then_retrain(tiny, capsys):
    run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    weights = cached_checkpoint()
    weights.write_bytes(weights.read_bytes()[:-10])
    code, _, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    assert code == 1
    assert_one_error_line(err)
    assert "--retrain" in err
    code, _, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q", "--retrain")
    assert code == 0, err


# Errors


def test_unknown_recipe(tiny, capsys):
    code, out, err = run_cli(capsys, "train", "tiny-lazzy", "--device", "cpu")
    assert code == 2
    assert_one_error_line(err)
    assert "unknown recipe 'tiny-lazzy'" in err
    assert "did you mean 'tiny-lazy'" in err
    assert out == ""


def test_unknown_dataset(tiny, capsys):
    code, _, err = run_cli(capsys, "train", RECIPE, "--dataset", "nope", "--device", "cpu")
    assert code == 2
    assert_one_error_line(err)
    assert "unknown dataset 'nope'" in err


def test_unknown_param(tiny, capsys):
    code, _, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model", RECIPE, "-p", "bogus=1")
    assert code == 2
    assert_one_error_line(err)
    assert "unknown parameter 'bogus'" in err
    assert "eps, alpha, steps" in err


def test_invalid_param_value(tiny, capsys):
    code, _, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model", RECIPE, "-p", "steps=many")
    assert code == 2
    assert_one_error_line(err)
    assert "invalid value 'many' for parameter 'steps'" in err


@pytest.mark.parametrize("pair", ["steps", "=3"])
def test_bad_param_syntax(tiny, capsys, pair):
    code, _, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model", RECIPE, "-p", pair)
    assert code == 2
    assert_one_error_line(err)
    assert "is not KEY=VALUE" in err
    assert "-p" in err


def test_bad_device(tiny, capsys):
    code, _, err = run_cli(capsys, "train", RECIPE, "--device", "tpu")
    assert code == 2
    assert_one_error_line(err)
    assert "'tpu'" in err
    assert "--device" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_gpu(tiny, capsys):
    code, _, err = run_cli(capsys, "train", RECIPE, "--device", "cuda")
    assert code == 2
    assert_one_error_line(err)
    assert "no CUDA device is available" in err


def test_unknown_command(capsys):
    code, _, err = run_cli(capsys, "trian")
    assert code == 2
    assert_one_error_line(err)


def test_missing_data(tiny, capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "--data-dir", str(empty))
    assert code == 1
    assert_one_error_line(err)
    assert str(empty / DATASET) in err
    assert "--download" in err
    assert out == ""


def test_data_dir_not_a_folder(tiny, capsys, tmp_path):
    missing = tmp_path / "no-such-folder"
    code, out, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "--data-dir", str(missing))
    assert code == 2
    assert err.count("\n") == 1
    assert str(missing) in err
    assert not missing.exists()


def test_missing_data_verbose_traceback(tiny, capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "train", RECIPE, "--device", "cpu", "--data-dir", str(empty), "-v")
    assert code == 1
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_corrupt_checkpoint_path(tiny, capsys, tmp_path):
    run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    copy = tmp_path / "copy"
    copy.mkdir()
    weights = cached_checkpoint()
    (copy / "model.safetensors").write_bytes(weights.read_bytes())
    (copy / "model.json").write_text("{corrupt")
    code, _, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model",
                           str(copy / "model.safetensors"), "--device", "cpu")
    assert code == 1
    assert_one_error_line(err)
    assert str(copy / "model.json") in err


def test_missing_checkpoint_path(tiny, capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model",
                           str(tmp_path / "absent.safetensors"), "--device", "cpu")
    assert code == 2
    assert_one_error_line(err)
    assert "not found" in err


# list and plugins


def test_list_all(tiny, capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("dataset:", "model:", "recipe:", "attack:", "resnet18", "small-cnn", "lazy",
                 "control", "pgd-torchattacks", "colour", RECIPE, DATASET):
        assert name in out, name


def test_list_models(tiny, capsys):
    code, out, _ = run_cli(capsys, "list", "models")
    assert code == 0
    assert out.splitlines()[0] == "model:"
    assert "resnet18" in out
    assert "small-cnn" in out
    assert "recipe" not in out


def test_list_pattern(tiny, capsys):
    code, out, _ = run_cli(capsys, "list", "recipe", "tiny*")
    assert code == 0
    assert out.splitlines() == [
        "recipe:",
        f"  {RECIPE:<20} A small-cnn trained for three steps on stroke-coloured tiny squares.",
        f"  {'':<20} parameters: preset='quick'",
    ]


def test_list_unknown_kind(capsys):
    code, _, err = run_cli(capsys, "list", "widgets")
    assert code == 2
    assert_one_error_line(err)


def test_plugins_command(tiny, capsys):
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    for plugin in ("datasets:", "biases:", "models:", "strategies:", "recipes:", "attacks:", "<api>:"):
        assert plugin in out, plugin
    lines = out.splitlines()
    models_line = lines[lines.index("models:") + 1]
    assert models_line.startswith("  models: ")
    assert "resnet18" in models_line
    assert "small-cnn" in models_line
    assert f"  recipes: {RECIPE}" in lines


# run attack


def test_run_attack(tiny, capsys):
    code, out, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model", RECIPE,
                             "-p", "images=8", "-p", "steps=3", "--device", "cpu", "-q")
    assert code == 0, err
    assert "targeted success" in out
    folder = run_folder(out)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["images"] == 8
    assert 0.0 <= metrics["targeted_success_rate"] <= 1.0
    assert metrics["confident_success_rate"] <= metrics["targeted_success_rate"]
    assert metrics["max_linf"] <= 0.05 + 1e-6
    assert metrics["params"]["steps"] == 3
    config = json.loads((folder / "config.json").read_text())
    assert config["params"] == {"images": "8", "steps": "3"}
    assert (folder / "summary.txt").read_text().startswith("pgd-torchattacks on tiny-lazy/quick")


def test_run_attack_checkpoint_path(tiny, capsys, train_calls):
    run_cli(capsys, "train", RECIPE, "--device", "cpu", "-q")
    code, out, err = run_cli(capsys, "run", "attack", "pgd-torchattacks", "--model", str(cached_checkpoint()),
                             "-p", "images=8", "-p", "steps=3", "--device", "cpu", "-q")
    assert code == 0, err
    assert "targeted success" in out
    assert len(train_calls) == 1


def trained_tiny() -> tuple[biaskit.TrainedModel, biaskit.BiasedData]:
    return biaskit.load_model(RECIPE, progress=False)


def test_attack_matches_torchattacks(tiny):
    trained, data = trained_tiny()
    model = trained.model
    images = data.test.images[:6]
    targets = (data.test.labels[:6] + 1) % 10
    ours = TorchattacksPGD(eps=0.05, alpha=0.01, steps=5).attack(model, images, targets)
    reference = torchattacks.PGD(model, eps=0.05, alpha=0.01, steps=5, random_start=False)
    reference.set_mode_targeted_by_label(quiet=True)
    expected = reference(images, targets)
    assert torch.equal(ours, expected)
    assert float((ours - images).abs().max()) <= 0.05 + 1e-6


def test_attack_keeps_mode(tiny):
    trained, data = trained_tiny()
    model = trained.model.train()
    TorchattacksPGD(steps=2).attack(model, data.test.images[:2], torch.tensor([1, 2]))
    assert model.training


def test_attack_restores_mode_on_error(tiny, monkeypatch):
    class Exploding:
        def __init__(self, model, **kwargs):
            self.model = model

        def set_mode_targeted_by_label(self, quiet=False):
            pass

        def __call__(self, images, labels):
            self.model.eval()
            raise RuntimeError("attack failed")

    trained, data = trained_tiny()
    model = trained.model.train()
    monkeypatch.setattr(torchattacks, "PGD", Exploding)
    with pytest.raises(RuntimeError, match="attack failed"):
        TorchattacksPGD().attack(model, data.test.images[:2], torch.tensor([1, 2]))
    assert model.training


def test_attack_run_reproducible(tiny, tmp_path):
    trained, data = trained_tiny()
    results = []
    for attempt in range(2):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        context = RunContext(trained, data, folder, torch.device("cpu"), seed=3, progress=False)
        results.append(TorchattacksPGD(steps=3, images=10).run(context))
    assert results[0] == results[1]
    assert results[0]["images"] == 10


def test_pick_targets():
    labels = torch.tensor([0, 4, 9])
    generator = torch.Generator().manual_seed(0)
    assert pick_targets(labels, 10, "next", generator).tolist() == [1, 5, 0]
    assert pick_targets(labels, 10, "7", generator).tolist() == [7, 7, 7]
    random = pick_targets(labels.repeat(100), 10, "random", generator)
    assert not bool((random == labels.repeat(100)).any())
    assert int(random.min()) >= 0
    assert int(random.max()) <= 9


@pytest.mark.parametrize("target", ["10", "-1", "previous"])
def test_pick_targets_invalid(target):
    with pytest.raises(UsageError, match=f"invalid target '{target}'"):
        pick_targets(torch.tensor([0]), 10, target, torch.Generator())


@pytest.mark.parametrize(("params", "message"), [
    ({"eps": "0"}, "invalid eps 0"),
    ({"steps": "0"}, "must be positive"),
    ({"confidence": "1"}, "invalid confidence 1"),
])
def test_attack_invalid_parameters(params, message):
    with pytest.raises(UsageError, match=message):
        biaskit.registries().attacks.create("pgd-torchattacks", **params)


# Python API


def test_load_model_trains_once(tiny, train_calls):
    trained, data = trained_tiny()
    again, _ = trained_tiny()
    assert len(train_calls) == 1
    assert not trained.model.training
    assert trained.label == f"{RECIPE}/quick"
    assert trained.default_layer == "conv3"
    assert data.num_classes == 10
    assert len(data.train) == 160
    for key, tensor in trained.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], tensor)


def test_load_model_metrics_recorded(tiny):
    trained, _ = trained_tiny()
    metrics = trained.metadata["metrics"]
    assert set(metrics) >= {"train", "val", "test", "counterfactual"}
    assert trained.metadata["history"][-1]["steps"] == 3
    assert trained.metadata["data"]["in_chans"] == 3


def test_load_model_from_path(tiny):
    trained, _ = trained_tiny()
    loaded, data = biaskit.load_model(str(trained.path))
    assert loaded.recipe == trained.recipe
    assert len(data.test) == 50
    assert torch.equal(loaded.model.head.weight, trained.model.head.weight)


def test_load_model_path_dataset_mismatch(tiny):
    trained, _ = trained_tiny()
    with pytest.raises(UsageError, match="was trained on 'tiny-idx', not 'mnist'"):
        biaskit.load_model(str(trained.path), dataset="mnist")


def test_load_model_missing_path(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        biaskit.load_model(str(tmp_path / "nothing" / "model.safetensors"))


def test_build_data_matches_recipe(tiny):
    data = biaskit.build_data(tiny_recipe(), seed=0)
    again = biaskit.build_data(tiny_recipe(), seed=0)
    assert torch.equal(data.train.images, again.train.images)
    assert torch.equal(data.test.cue_values, (data.test.labels + 5) % 10)


def test_cache_key_depends_on_seed_and_settings():
    recipe = tiny_recipe()
    assert recipe.cache_key(0) == tiny_recipe().cache_key(0)
    assert recipe.cache_key(0) != recipe.cache_key(1)
    changed = Recipe(**{**recipe.__dict__, "model_params": {"width": 8}})
    assert changed.cache_key(0) != recipe.cache_key(0)


def test_cache_key_ignores_description():
    recipe = tiny_recipe()
    described = Recipe(**{**recipe.__dict__, "description": "other words"})
    assert described.cache_key(0) == recipe.cache_key(0)


@pytest.mark.parametrize("device", ["tpu", "gpu", ""])
def test_resolve_device_invalid(device):
    with pytest.raises(UsageError, match="invalid device"):
        biaskit.resolve_device(device)


def test_resolve_device_cpu():
    assert biaskit.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_resolve_device_cuda_missing():
    with pytest.raises(UsageError, match="no CUDA device is available"):
        biaskit.resolve_device("cuda")


def test_checkpoint_cache_folder(tiny, isolated_folders):
    trained, _ = trained_tiny()
    assert trained.path.parent.parent == isolated_folders / "cache" / "models"
    assert trained.path.parent.name.startswith(f"{RECIPE}-quick-{DATASET}-seed0-")
    assert checkpoints.read_metadata(trained.path)["seed"] == 0
